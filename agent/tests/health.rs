//! The gRPC health service beside the agent (Kubernetes `grpc:` probes):
//! open without the token, while the agent service itself requires it.

mod common;

use ::common::proto::agent_client::AgentClient;
use common::{start_agent, start_agent_with_health};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const TOKEN: &str = "health-test-token-0123456789";

#[tokio::test]
async fn health_answers_without_the_token_and_the_agent_service_does_not() {
    let mut opts = agent::AgentOptions::new("h");
    opts.token = Some(agent::safety::Token::parse(TOKEN, "test").expect("token"));
    let served = start_agent(opts).await;
    let (addr, stop) = (served.url(), served.stop.clone());

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

/// An agent serving mutual TLS: its health service answers in plaintext
/// on the separate health listener (Kubernetes `grpc:` probes speak
/// neither TLS nor client certificates), and on the main port only over
/// TLS with a client certificate, like the agent service.
#[tokio::test]
async fn with_mtls_health_answers_in_plaintext_on_its_own_port() {
    let dir = std::env::temp_dir().join(format!("lg-health-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let pki = testkit::pki::Pki::generate(&dir).expect("certificates");
    let mut opts = agent::AgentOptions::new("h");
    opts.tls = Some(
        agent::tls::ServerTls::from_files(pki.agent_cert.as_ref(), pki.agent_key.as_ref(), Some(pki.ca.as_ref()))
            .expect("tls"),
    );
    let served = start_agent_with_health(opts).await;
    let main = served.addr;
    let health_addr = format!("http://{}", served.health_addr.expect("health port"));
    let (stop, server) = (served.stop, served.served);

    let check = |channel: tonic::transport::Channel| async move {
        HealthClient::new(channel).check(HealthCheckRequest { service: "loadgen.v1.Agent".into() }).await
    };
    let plain = tonic::transport::Endpoint::from_shared(health_addr).expect("url").connect().await.expect("connect");
    let r = check(plain).await.expect("plaintext health check on the health port");
    assert_eq!(r.into_inner().status, ServingStatus::Serving as i32);

    // The main port: plaintext fails; TLS with the client certificate answers.
    let plain_main = tonic::transport::Endpoint::from_shared(format!("http://{main}")).expect("url");
    if let Ok(ch) = plain_main.connect().await {
        assert!(check(ch).await.is_err(), "plaintext on the TLS port");
    }
    let read = |p: &str| std::fs::read(p).expect("pem");
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(read(&pki.ca)))
        .identity(tonic::transport::Identity::from_pem(read(&pki.client_cert), read(&pki.client_key)))
        .domain_name("localhost");
    let ch = tonic::transport::Endpoint::from_shared(format!("https://{main}"))
        .expect("url")
        .tls_config(tls)
        .expect("tls config")
        .connect()
        .await
        .expect("TLS connect");
    let r = check(ch).await.expect("health over mTLS on the main port");
    assert_eq!(r.into_inner().status, ServingStatus::Serving as i32);

    stop.cancel();
    server.await.expect("join").expect("served");
    let _ = std::fs::remove_dir_all(dir);
}
