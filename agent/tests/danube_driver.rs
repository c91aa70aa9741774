//! The Danube driver, called directly, against the Danube-protocol test
//! double (tools/testkit): topic creation before subscription, every send
//! acknowledged and every message received and acknowledged at the broker,
//! client producers per logical producer, schemas, and the errors a user
//! sees for an unreachable broker or a topic name the broker refuses.

use std::time::Duration;

use agent::driver::danube::DanubeDriver;
use agent::driver::{ConsumerClient, Driver, DriverError, OutMessage, ProducerClient};
use bytes::Bytes;
use common::scenario::{load_str, Scenario};
use common::stamp::Stamp;
use testkit::danube_double::{DanubeDouble, Knobs};

fn scenario(url: &str, topics: &str, producer: &str, consumer: &str) -> Scenario {
    let text = format!(
        "name: t\nbroker: {{kind: danube, url: \"{url}\", connect_timeout: 3s}}\ntopics: [{topics}]\nproducers: [{producer}]\nconsumers: [{consumer}]\nphases: {{duration: 1s}}\n"
    );
    load_str(&text, "t.yaml", &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn msg(seq: u64, key: Option<u64>) -> OutMessage {
    OutMessage {
        stamp: Stamp { producer_id: 0, seq, intended_ns: 1, sent_ns: 2 },
        key,
        payload: Bytes::from_static(b"The quick brown fox jumps over the lazy dog, twice over."),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_receives_and_acks_every_message_with_several_client_producers() {
    let double = DanubeDouble::start(Knobs::default()).expect("double");
    let sc = scenario(
        &double.url,
        "{name: orders, partitions: 3, schema: json, reliable_dispatch: true}",
        "{name: p, topic: orders, rate: 10, clients: 3, keys: {round_robin: 7}}",
        "{name: c, topic: orders, type: shared, count: 2}",
    );
    let driver = DanubeDriver::connect(&sc.broker, "run-a").await.expect("connect");
    let topic = &sc.topics[0];
    driver.create_topic(topic).await.expect("create topic");
    let mut c0 = driver.consumer(topic, &sc.consumers[0], 0).await.expect("subscribe 0");
    let mut c1 = driver.consumer(topic, &sc.consumers[0], 1).await.expect("subscribe 1");
    let mut p = driver.producer(topic, &sc.producers[0], 0).await.expect("producer");
    let mut acks = Vec::new();
    for seq in 0..60 {
        acks.push(p.send(msg(seq, Some(seq))).await.expect("enqueue"));
    }
    for a in acks {
        assert!(matches!(a.await, Ok(Some(_))), "acknowledged, with its time");
    }
    let mut seqs = Vec::new();
    let mut parts = std::collections::BTreeSet::new();
    while seqs.len() < 60 {
        let d = tokio::select! {
            d = c0.recv() => d,
            d = c1.recv() => d,
            _ = tokio::time::sleep(Duration::from_secs(5)) => panic!("only {} of 60 arrived", seqs.len()),
        }
        .expect("delivery");
        let s = d.stamp.expect("our stamp");
        seqs.push(s.seq);
        parts.insert(d.partition.expect("partitioned"));
        assert_eq!(d.payload_len, 56, "JSON documents keep the scenario's size");
    }
    // Ack what each consumer got last is per consumer: ack through both.
    c0.ack_last().await.expect("ack");
    c1.ack_last().await.expect("ack");
    seqs.sort_unstable();
    assert_eq!(seqs, (0..60).collect::<Vec<_>>());
    assert_eq!(parts.len(), 3, "keys spread over every partition");
    let snap = double.snapshot();
    assert_eq!(double.published("/default/orders"), 60);
    assert_eq!(snap.schemas.get("lg.default.orders").map(String::as_str), Some("json_schema"));
    for i in 0..3 {
        let t = &snap.topics[&format!("/default/orders-part-{i}")];
        assert!(t.reliable);
        assert_eq!(t.keyed, t.published, "every message carried its key");
        assert_eq!(t.schema_subject.as_deref(), Some("lg.default.orders"));
    }
    p.close().await;
    c0.close().await;
    c1.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn received_equals_acked_at_the_broker() {
    let double = DanubeDouble::start(Knobs::default()).expect("double");
    let sc =
        scenario(&double.url, "{name: t1}", "{name: p, topic: t1, rate: 10}", "{name: c, topic: t1, type: exclusive}");
    let driver = DanubeDriver::connect(&sc.broker, "run-b").await.expect("connect");
    let topic = &sc.topics[0];
    driver.create_topic(topic).await.expect("create topic");
    let mut c = driver.consumer(topic, &sc.consumers[0], 0).await.expect("subscribe");
    let mut p = driver.producer(topic, &sc.producers[0], 0).await.expect("producer");
    for seq in 0..25 {
        // The answer's time: the send's (`sent_ns` 2) plus what it took.
        let t0 = std::time::Instant::now();
        let ack = p.send(msg(seq, None)).await.expect("enqueue");
        let Ok(Some(at)) = ack.await else { panic!("send {seq} not acknowledged with its time") };
        assert!(at >= 2 && at - 2 <= t0.elapsed().as_nanos() as i64, "answered at {at}");
    }
    for want in 0..25 {
        let d = tokio::time::timeout(Duration::from_secs(5), c.recv()).await.expect("in time").expect("delivery");
        assert_eq!(d.stamp.expect("stamp").seq, want, "one client producer keeps order");
        c.ack_last().await.expect("ack");
    }
    let sub = double.subscription("/default/t1", "c");
    assert_eq!(sub.acked, 25);
    assert_eq!(sub.delivered.values().sum::<u64>(), 25);
    assert_eq!(sub.sub_type, "Exclusive");
}

#[tokio::test]
async fn unreachable_broker_is_a_clear_connect_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let url = format!("http://127.0.0.1:{port}");
    let sc = scenario(&url, "{name: t}", "{name: p, topic: t, rate: 1}", "{name: c, topic: t}");
    let t0 = std::time::Instant::now();
    let Err(e) = DanubeDriver::connect(&sc.broker, "run-c").await else { panic!("no broker there") };
    assert!(t0.elapsed() < Duration::from_secs(4), "bounded by the connect timeout");
    assert!(matches!(e, DriverError::Connect { .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains(&url) && text.contains("cannot connect"), "{text}");
}

#[tokio::test]
async fn a_topic_name_the_broker_refuses_fails_at_topic_creation() {
    let double = DanubeDouble::start(Knobs::default()).expect("double");
    let mut sc = scenario(&double.url, "{name: t}", "{name: p, topic: t, rate: 1}", "{name: c, topic: t}");
    // Past validation (a hand-made shard): the broker's own check answers.
    sc.topics[0].name = "/default/bad.name".into();
    let driver = DanubeDriver::connect(&sc.broker, "run-d").await.expect("connect");
    let e = driver.create_topic(&sc.topics[0]).await.expect_err("refused");
    let text = e.to_string();
    assert!(text.contains("invalid format") && text.contains("bad.name"), "{text}");
}
