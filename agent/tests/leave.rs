//! An agent told to go (`AgentOptions::leave`, what SIGTERM does in the
//! binary) in the middle of a run: health says not serving, its producers
//! stop, its consumers drain, its final report (range sets and all) and
//! `Leaving` go out, the session ends, no new session is taken, and the
//! server stops by itself.

mod common;

use std::time::{Duration, Instant};

use ::common::proto::agent_client::AgentClient;
use ::common::proto::{
    self, agent_message::Msg as AMsg, coordinator_message::Msg as CMsg, AgentMessage, CoordinatorMessage,
};
use common::start_agent;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// 200 msg/s for 30 s on the agent's own memory broker: far longer than the test.
const LONG: &str = "name: leave\nbroker: {kind: memory}\ntopics: [{name: t}]\n\
    producers: [{name: p, topic: t, rate: 200}]\nconsumers: [{name: c, topic: t}]\n\
    phases: {duration: 30s}\nreport_interval: 200ms\n";

fn cmd(m: CMsg) -> CoordinatorMessage {
    CoordinatorMessage { msg: Some(m) }
}

/// The count of a proto range set.
fn set_len(s: &Option<proto::RangeSet>) -> u64 {
    s.as_ref().map(|s| s.starts.iter().zip(&s.ends).map(|(a, b)| b - a).sum()).unwrap_or(0)
}

/// The next message within 10 s (None: the stream ended).
async fn next(rx: &mut tonic::Streaming<AgentMessage>) -> Option<AMsg> {
    let m = tokio::time::timeout(Duration::from_secs(10), rx.message()).await.expect("a message within 10 s");
    m.expect("stream").map(|m| m.msg.expect("a message"))
}

async fn health(url: &str) -> i32 {
    let channel =
        tonic::transport::Endpoint::from_shared(url.to_string()).expect("url").connect().await.expect("connect");
    let mut h = HealthClient::new(channel);
    h.check(HealthCheckRequest { service: "loadgen.v1.Agent".into() }).await.expect("check").into_inner().status
}

#[tokio::test]
async fn told_to_go_mid_run_it_reports_everything_says_leaving_and_stops() {
    let mut opts = agent::AgentOptions::new("leaver");
    opts.leave_drain = Duration::from_millis(500);
    let leave = opts.leave.clone();
    let agent = start_agent(opts).await;
    let url = agent.url();
    let mut client = AgentClient::connect(url.clone()).await.expect("connect");
    let (tx, rx) = mpsc::channel(16);
    let mut rx = client.session(ReceiverStream::new(rx)).await.expect("session").into_inner();
    let hello = proto::Hello {
        protocol_version: ::common::PROTOCOL_VERSION,
        coordinator_id: "t".into(),
        run_id: "r".into(),
        token: String::new(),
        lease_ms: 0,
    };
    tx.send(cmd(CMsg::Hello(hello))).await.expect("send");
    assert!(matches!(next(&mut rx).await, Some(AMsg::HelloAck(_))));
    let sc = ::common::scenario::load_str(LONG, "s.yaml", &[]).expect("scenario");
    let slots = [::common::plan::AgentSlot { name: "a".into(), instance: "i".into() }];
    let shard = ::common::plan::plan(&sc, "r", &slots).expect("plan").shards.remove(0);
    let prepare = proto::Prepare { shard_format: "json/v1".into(), shard: shard.to_json(), clock_offset_ns: 0 };
    tx.send(cmd(CMsg::Prepare(prepare))).await.expect("send");
    assert!(matches!(next(&mut rx).await, Some(AMsg::Ready(_))));
    let start_ns = ::common::clock::now_ns() + 50_000_000;
    tx.send(cmd(CMsg::Start(proto::Start { start_at_ns: start_ns }))).await.expect("send");
    // A few interval reports in: the run is under way.
    let mut intervals = 0;
    while intervals < 3 {
        if let Some(AMsg::Interval(_)) = next(&mut rx).await {
            intervals += 1;
        }
    }
    assert_eq!(health(&url).await, ServingStatus::Serving as i32);

    let told = Instant::now();
    leave.cancel();
    // Readiness fails while it leaves: no new coordinator picks it.
    let mut status = health(&url).await;
    for _ in 0..20 {
        if status == ServingStatus::NotServing as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        status = health(&url).await;
    }
    assert_eq!(status, ServingStatus::NotServing as i32, "not serving while leaving");
    let (mut last_final, mut leaving) = (None, None);
    while let Some(m) = next(&mut rx).await {
        match m {
            AMsg::Final(f) => last_final = Some(f),
            AMsg::Leaving(l) => leaving = Some(l),
            AMsg::Interval(_) | AMsg::Pong(_) => assert!(leaving.is_none(), "nothing after Leaving"),
            other => panic!("unexpected {other:?}"),
        }
    }
    let took = told.elapsed();
    let f = last_final.expect("the final report");
    let l = leaving.expect("Leaving, after the final report");
    assert!(l.reason.contains("told to go"), "{}", l.reason);
    assert!(l.at_ns > start_ns, "told to go after the start, in the run's time base");
    let (p, s) = (&f.producers[0], &f.subscriptions[0]);
    let acked = set_len(&p.acked);
    assert!(acked >= 100 && acked == p.sent, "stopped sending; every send in flight awaited: {acked} of {}", p.sent);
    let received: u64 = s.producers.iter().map(|r| set_len(&r.received)).sum();
    assert_eq!(received, acked, "the consumer drained everything acknowledged");
    assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(5), "drained for its bound: {took:?}");

    // Leaving: no new session, and the server stops by itself.
    let (_tx2, rx2) = mpsc::channel(1);
    if let Ok(mut c) = AgentClient::connect(url.clone()).await {
        let e = c.session(ReceiverStream::new(rx2)).await.expect_err("no session while leaving");
        assert_eq!(e.code(), tonic::Code::Unavailable, "{e}");
    }
    let served = tokio::time::timeout(Duration::from_secs(10), agent.served).await;
    served.expect("the server stopped within 10 s of the session's end").expect("join").expect("served");
}

#[tokio::test]
async fn told_to_go_without_a_session_it_stops_at_once() {
    let opts = agent::AgentOptions::new("idle");
    let leave = opts.leave.clone();
    let agent = common::start_agent_with_health(opts).await;
    let health_url = format!("http://{}", agent.health_addr.expect("health port"));
    assert_eq!(health(&health_url).await, ServingStatus::Serving as i32);
    leave.cancel();
    let served = tokio::time::timeout(Duration::from_secs(5), agent.served).await;
    served.expect("stopped within 5 s").expect("join").expect("served");
}
