//! The gRPC health service beside the agent (Kubernetes `grpc:` probes):
//! open without the token, while the agent service itself requires it.

use common::proto::agent_client::AgentClient;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const TOKEN: &str = "health-test-token-0123456789";

#[tokio::test]
async fn health_answers_without_the_token_and_the_agent_service_does_not() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = format!("http://{}", listener.local_addr().expect("addr"));
    let stop = CancellationToken::new();
    let mut opts = agent::AgentOptions::new("h");
    opts.token = Some(agent::safety::Token::parse(TOKEN, "test").expect("token"));
    let s = stop.clone();
    tokio::spawn(async move { agent::serve(listener, opts, s).await });

    let channel = tonic::transport::Endpoint::from_shared(addr).expect("url").connect().await.expect("connect");
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "loadgen.v1.Agent"] {
        let r = health.check(HealthCheckRequest { service: service.into() }).await.expect("health check");
        assert_eq!(r.into_inner().status, ServingStatus::Serving as i32, "service {service:?}");
    }

    let (_tx, rx) = tokio::sync::mpsc::channel(1);
    let e = AgentClient::new(channel)
        .session(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect_err("no token, no session");
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    assert!(e.message().contains("agent h refused the coordinator: no token"), "{}", e.message());
    stop.cancel();
}
