//! The agent's side of the protocol, spoken by a raw gRPC client: version
//! check, a shard it cannot decode or run, and one run at a time.

mod common;

use ::common::proto::agent_client::AgentClient;
use ::common::proto::{
    self, agent_message::Msg as AMsg, coordinator_message::Msg as CMsg, AgentMessage, CoordinatorMessage,
};
use common::{start_agent, TestAgent};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

fn cmd(m: CMsg) -> CoordinatorMessage {
    CoordinatorMessage { msg: Some(m) }
}

fn hello(version: u32) -> CMsg {
    CMsg::Hello(proto::Hello {
        protocol_version: version,
        coordinator_id: "t".into(),
        run_id: "r".into(),
        token: String::new(),
        lease_ms: 0,
    })
}

async fn open(addr: &str) -> Result<(mpsc::Sender<CoordinatorMessage>, tonic::Streaming<AgentMessage>), tonic::Status> {
    let mut client = AgentClient::connect(format!("http://{addr}")).await.expect("connect");
    let (tx, rx) = mpsc::channel(16);
    let resp = client.session(ReceiverStream::new(rx)).await?;
    Ok((tx, resp.into_inner()))
}

#[tokio::test]
async fn refuses_other_protocol_versions() {
    let TestAgent { addr, stop, .. } = start_agent(agent::AgentOptions::new("test")).await;
    let addr = addr.to_string();
    let (tx, mut rx) = open(&addr).await.expect("session");
    tx.send(cmd(hello(99))).await.expect("send");
    match rx.message().await.expect("message") {
        Some(AgentMessage { msg: Some(AMsg::Error(e)) }) => {
            assert!(e.fatal);
            assert!(e.message.contains("protocol version 99"), "{}", e.message);
        }
        other => panic!("expected an error, got {other:?}"),
    }
    stop.cancel();
}

#[tokio::test]
async fn answers_a_bad_shard_with_an_error_and_stays_usable() {
    let TestAgent { addr, stop, .. } = start_agent(agent::AgentOptions::new("test")).await;
    let addr = addr.to_string();
    let (tx, mut rx) = open(&addr).await.expect("session");
    tx.send(cmd(hello(::common::PROTOCOL_VERSION))).await.expect("send");
    let ack = rx.message().await.expect("ack");
    assert!(matches!(ack, Some(AgentMessage { msg: Some(AMsg::HelloAck(_)) })), "{ack:?}");
    for (format, shard, expect) in
        [("json/v1", b"{not json".to_vec(), "shard does not decode"), ("xml/v9", b"<shard/>".to_vec(), "not supported")]
    {
        tx.send(cmd(CMsg::Prepare(proto::Prepare { shard_format: format.into(), shard, clock_offset_ns: 0 })))
            .await
            .expect("send");
        match rx.message().await.expect("message") {
            Some(AgentMessage { msg: Some(AMsg::Error(e)) }) => {
                assert_eq!(e.phase, "prepare");
                assert!(e.message.contains(expect), "{}", e.message);
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }
    // Start without a prepared run is refused, not obeyed.
    tx.send(cmd(CMsg::Start(proto::Start { start_at_ns: 0 }))).await.expect("send");
    match rx.message().await.expect("message") {
        Some(AgentMessage { msg: Some(AMsg::Error(e)) }) => assert_eq!(e.phase, "start"),
        other => panic!("expected an error, got {other:?}"),
    }
    stop.cancel();
}

#[tokio::test]
async fn one_session_at_a_time() {
    let TestAgent { addr, stop, .. } = start_agent(agent::AgentOptions::new("test")).await;
    let addr = addr.to_string();
    let (tx, mut rx) = open(&addr).await.expect("first session");
    tx.send(cmd(hello(::common::PROTOCOL_VERSION))).await.expect("send");
    let _ = rx.message().await.expect("ack");
    let second = open(&addr).await;
    let Err(err) = second else { panic!("second session must be refused") };
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    assert!(err.message().contains("busy"), "{}", err.message());
    // When the first session ends, the agent is free again.
    drop(tx);
    drop(rx);
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if open(&addr).await.is_ok() {
            ok = true;
            break;
        }
    }
    assert!(ok, "agent free after the session ended");
    stop.cancel();
}
