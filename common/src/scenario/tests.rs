use super::*;
use std::time::Duration;

const GOOD: &str = r#"
name: quick
broker:
  kind: memory
topics:
  - name: orders
    partitions: 2
  - name: events
producers:
  - name: order-producers
    topic: orders
    count: 3
    rate: 100
    message_size: 1KiB
  - name: event-producers
    topic: events
    total_rate: 1000
    count: 3
    keys: {round_robin: 10}
    message_size: {uniform: {min: 100, max: 200}}
consumers:
  - name: order-shared
    topic: orders
    type: shared
    count: 2
  - name: events-ks
    topic: events
    type: key_shared
    count: 2
phases:
  warmup: 1s
  duration: 5s
slo:
  p99_e2e: 20ms
"#;

fn err(text: &str) -> ScenarioError {
    load_str(text, "s.yaml", &[]).expect_err("should be rejected")
}

fn good_with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "fixture lacks {from}");
    GOOD.replacen(from, to, 1)
}

#[test]
fn good_scenario_validates() {
    let s = load_str(GOOD, "s.yaml", &[]).expect("valid");
    assert_eq!(s.producers[0].total_rate_milli, 300_000);
    assert_eq!(s.producers[1].total_rate_milli, 1_000_000);
    assert_eq!(s.producers[0].message_size, SizeDist::Fixed(1024));
    assert_eq!(s.producers[1].message_size, SizeDist::Uniform { min: 100, max: 200 });
    assert_eq!(s.consumers[0].subscription, "order-shared");
    assert_eq!(s.consumers[1].sub_type, SubType::KeyShared);
    assert_eq!(s.slo.p99_e2e, Some(Duration::from_millis(20)));
    assert_eq!(s.slo.max_loss, Some(0), "loss is checked by default");
    assert_eq!(s.phases.drain_timeout, Duration::from_secs(30));
    assert_eq!(s.report_interval, Duration::from_secs(1));
}

#[test]
fn unknown_key_names_line_and_key() {
    let e = err(&good_with("    rate: 100", "    rat: 100"));
    let msg = e.to_string();
    assert!(msg.starts_with("s.yaml:13:5: producers[0].rat: unknown field `rat`"), "{msg}");
    assert!(msg.contains("hint:"), "{msg}");
}

#[test]
fn wrong_units() {
    let e = err(&good_with("duration: 5s", "duration: 5"));
    assert!(e.to_string().contains("phases.duration: `5` has no unit"), "{e}");
    let e = err(&good_with("duration: 5s", "duration: 5 parsecs"));
    assert!(e.to_string().contains(":32:"), "{e}");
    let e = err(&good_with("message_size: 1KiB", "message_size: 1 furlong"));
    assert!(e.to_string().contains("producers[0].message_size"), "{e}");
}

#[test]
fn negative_or_zero_rates_and_counts() {
    let e = err(&good_with("rate: 100", "rate: -5"));
    assert!(e.to_string().contains("s.yaml:13:5: producers[0].rate: -5 is not a positive rate"), "{e}");
    let e = err(&good_with("rate: 100", "rate: 0"));
    assert!(e.to_string().contains("producers[0].rate"), "{e}");
    let e = err(&good_with("count: 3\n    rate", "count: 0\n    rate"));
    assert!(e.to_string().contains("producers[0].count: 0 is not a positive count"), "{e}");
    let e = err(&good_with("count: 3\n    rate", "count: 100000000\n    rate"));
    assert!(e.to_string().contains("more than this tool runs"), "{e}");
}

#[test]
fn unknown_topic_reference() {
    let e = err(&good_with("    topic: events\n    type: key_shared", "    topic: nowhere\n    type: key_shared"));
    let m = e.to_string();
    assert!(m.contains("consumers[1].topic: topic `nowhere` is not in `topics`"), "{m}");
    assert!(m.contains("known topics: orders, events"), "{m}");
}

#[test]
fn key_shared_needs_keys() {
    let e = err(&good_with("    keys: {round_robin: 10}\n", ""));
    assert!(e.to_string().contains("sends no keys"), "{e}");
}

#[test]
fn exclusive_with_two_consumers() {
    let e = err(&good_with("type: shared\n    count: 2", "type: exclusive\n    count: 2"));
    assert!(e.to_string().contains("exclusive subscription admits one consumer"), "{e}");
}

#[test]
fn not_a_mapping_empty_binary_garbage() {
    assert!(err("- a\n- b\n").to_string().contains("top level is a list"));
    assert!(err("just a string").to_string().contains("top level is a string"));
    assert!(err("").to_string().contains("is empty"));
    assert!(err("# only a comment\n\n").to_string().contains("is empty"));
    let e = err("name: [unclosed\n");
    assert!(e.to_string().starts_with("s.yaml:"), "{e}");
    assert!(e.to_string().contains("not valid YAML"), "{e}");
    assert!(err("name: x\nbroker: 5\n").to_string().contains("broker"));
}

#[test]
fn hostile_yaml_does_not_hang_or_panic() {
    // Billion laughs.
    let mut bomb = String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    let mut prev = 'a';
    for c in 'b'..='j' {
        bomb.push_str(&format!(
            "{c}: &{c} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
        prev = c;
    }
    let _ = err(&bomb);
    // Deep nesting.
    let deep = format!("name: {}{}", "[".repeat(5000), "]".repeat(5000));
    let _ = err(&deep);
    let deep_map = "a:\n".to_string() + &(1..2000).map(|i| format!("{}b:\n", " ".repeat(i))).collect::<String>();
    let _ = err(&deep_map);
}

#[test]
fn file_checks() {
    let dir = std::env::temp_dir().join(format!("lg-scn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let bin = dir.join("bin.yaml");
    std::fs::write(&bin, [0u8, 159, 146, 150, 1, 2, 3]).expect("write");
    assert!(load_file(&bin, &[]).expect_err("binary").to_string().contains("binary file"));
    let latin = dir.join("latin.yaml");
    std::fs::write(&latin, b"name: caf\xe9\n").expect("write");
    assert!(load_file(&latin, &[]).expect_err("latin1").to_string().contains("not UTF-8"));
    let big = dir.join("big.yaml");
    let f = std::fs::File::create(&big).expect("create");
    f.set_len(100 * 1024 * 1024).expect("sparse file");
    let e = load_file(&big, &[]).expect_err("big");
    assert!(e.to_string().contains("a scenario is at most"), "{e}");
    let missing = load_file(&dir.join("nope.yaml"), &[]).expect_err("missing");
    assert!(missing.to_string().contains("cannot read"), "{missing}");
    assert!(load_file(&dir, &[]).expect_err("dir").to_string().contains("directory"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn overrides_are_checked_like_the_file() {
    let set = |s: &str| Override::parse(s).expect("parse");
    let s = load_str(
        GOOD,
        "s.yaml",
        &[set("broker.latency=2ms"), set("producers.order-producers.rate=50"), set("phases.duration=9s")],
    )
    .expect("valid");
    assert_eq!(s.broker.latency, Duration::from_millis(2));
    assert_eq!(s.producers[0].total_rate_milli, 150_000);
    assert_eq!(s.phases.duration, Duration::from_secs(9));
    let e = load_str(GOOD, "s.yaml", &[set("producers[0].rate=-1")]).expect_err("bad");
    assert_eq!(
        e.to_string(),
        "s.yaml: --set producers[0].rate: -1 is not a positive rate\n  hint: messages per second, e.g. 100"
    );
    let e = load_str(GOOD, "s.yaml", &[set("broker.bogus=1")]).expect_err("bad");
    assert!(e.to_string().contains("--set broker.bogus: unknown field `bogus`"), "{e}");
    let e = load_str(GOOD, "s.yaml", &[set("producers[7].rate=1")]).expect_err("bad");
    assert!(e.to_string().contains("out of range"), "{e}");
}

#[test]
fn broker_urls() {
    let e = err(&good_with("kind: memory", "kind: pulsar"));
    assert!(e.to_string().contains("broker.url: a pulsar broker needs a url"), "{e}");
    let e = err(&good_with("kind: memory", "kind: pulsar\n  url: http://x:1"));
    assert!(e.to_string().contains("not a Pulsar service URL"), "{e}");
    let e = err(&good_with("kind: memory", "kind: kafka"));
    assert!(e.to_string().contains("unknown broker kind `kafka`"), "{e}");
    let e = err(&good_with("kind: memory", "kind: danube\n  url: http://x:1\n  latency: 2ms"));
    assert!(e.to_string().contains("applies to the memory broker only"), "{e}");
}

#[test]
fn admin_urls() {
    let pulsar =
        |admin: &str| good_with("kind: memory", &format!("kind: pulsar\n  url: pulsar://x:1\n  admin_url: {admin}"));
    let s = load_str(&pulsar("http://x:8080/"), "s.yaml", &[]).expect("valid");
    assert_eq!(s.broker.admin_url.as_deref(), Some("http://x:8080"));
    assert!(load_str(&pulsar("http://x"), "s.yaml", &[]).is_ok(), "a bare host is a URL too");
    for bad in ["ftp://x:8080", "http://", "x:8080"] {
        let e = err(&pulsar(bad));
        assert!(e.to_string().contains("is not a Pulsar admin URL"), "{bad}: {e}");
    }
    let e = err(&good_with("kind: memory", "kind: danube\n  url: http://x:1\n  admin_url: http://x:8080"));
    assert!(e.to_string().contains("broker.admin_url: applies to the pulsar broker only"), "{e}");
}

#[test]
fn tcp_nodelay_is_on_by_default_and_pulsar_only() {
    let load = |text: String| load_str(&text, "s.yaml", &[]).expect("valid");
    let s = load(good_with("kind: memory", "kind: pulsar\n  url: pulsar://x:1"));
    assert!(s.broker.tcp_nodelay, "on unless the scenario says otherwise");
    let s = load(good_with("kind: memory", "kind: pulsar\n  url: pulsar://x:1\n  tcp_nodelay: false"));
    assert!(!s.broker.tcp_nodelay);
    let e = err(&good_with("kind: memory", "kind: danube\n  url: http://x:1\n  tcp_nodelay: false"));
    assert!(e.to_string().contains("broker.tcp_nodelay: applies to the pulsar broker only"), "{e}");
}

#[test]
fn several_issues_reported_together_in_line_order() {
    let text = good_with("rate: 100", "rate: -1").replace("duration: 5s", "duration: 5");
    let e = err(&text);
    assert_eq!(e.issues.len(), 2, "{e}");
    assert!(e.issues[0].line < e.issues[1].line);
}

#[test]
fn on_agent_loss_defaults_to_abort_and_takes_continue() {
    let s = load_str(GOOD, "s.yaml", &[]).expect("valid");
    assert_eq!(s.on_agent_loss, OnAgentLoss::Abort);
    let s = load_str(&format!("{GOOD}on_agent_loss: continue\n"), "s.yaml", &[]).expect("valid");
    assert_eq!(s.on_agent_loss, OnAgentLoss::Continue);
    let e = err(&format!("{GOOD}on_agent_loss: shrug\n"));
    assert!(e.to_string().contains("on_agent_loss: unknown policy `shrug`"), "{e}");
    assert!(e.to_string().contains("`abort` (default) or `continue`"), "{e}");
    // A shard from an older coordinator (no field) still decodes.
    let mut v = serde_json::to_value(&s).expect("json");
    v.as_object_mut().expect("object").remove("on_agent_loss");
    let back: Scenario = serde_json::from_value(v).expect("decodes");
    assert_eq!(back.on_agent_loss, OnAgentLoss::Abort);
}

#[test]
fn pulsar_specific_input_is_checked() {
    let pulsar = GOOD.replacen("kind: memory", "kind: pulsar\n  url: pulsar://127.0.0.1:6650", 1);
    assert!(load_str(&pulsar, "p.yaml", &[]).is_ok(), "{:?}", load_str(&pulsar, "p.yaml", &[]).err());
    let bad_topic = pulsar.replacen("- name: orders", "- name: \"or ders\"", 1);
    assert!(err(&bad_topic).to_string().contains("white space"), "{}", err(&bad_topic));
    let bad_topic = pulsar.replacen("- name: orders", "- name: \"kafka://x/y/orders\"", 1);
    assert!(err(&bad_topic).to_string().contains("not a valid Pulsar topic"), "{}", err(&bad_topic));
    let zero_delay =
        pulsar.replacen("    rate: 100\n", "    rate: 100\n    batching: {max_messages: 100, max_delay: 0s}\n", 1);
    let e = err(&zero_delay).to_string();
    assert!(e.contains("producers[0].batching.max_delay") && e.contains("max delay of 0"), "{e}");
    let cumulative =
        pulsar.replacen("type: shared\n    count: 2", "type: shared\n    count: 2\n    ack: cumulative", 1);
    assert!(
        err(&cumulative).to_string().contains("cumulative acks are not allowed on a shared"),
        "{}",
        err(&cumulative)
    );
    let file_and_size = pulsar.replacen("    rate: 100\n", "    rate: 100\n    payload: \"file:/data/p.json\"\n", 1);
    assert!(
        err(&file_and_size).to_string().contains("a payload file sets the message size"),
        "{}",
        err(&file_and_size)
    );
    let compression_on_memory = GOOD.replacen("    rate: 100\n", "    rate: 100\n    compression: zstd\n", 1);
    assert!(
        err(&compression_on_memory).to_string().contains("applies to the pulsar broker"),
        "{}",
        err(&compression_on_memory)
    );
    let secret_twice = pulsar.replacen(
        "url: pulsar://127.0.0.1:6650",
        "url: pulsar://127.0.0.1:6650\n  auth: {token_file: /t, token_env: T}",
        1,
    );
    assert!(
        err(&secret_twice).to_string().contains("exactly one of `token_file` or `token_env`"),
        "{}",
        err(&secret_twice)
    );
}

/// Longer than a screen: one table of cases, each a scenario edit and the
/// message it must give.
#[test]
fn danube_specific_input_is_checked() {
    let danube = GOOD.replacen("kind: memory", "kind: danube\n  url: http://127.0.0.1:6650", 1);
    let s = load_str(&danube, "d.yaml", &[]).expect("valid");
    assert_eq!(s.topics[0].schema, TopicSchema::None);
    assert!(!s.topics[0].reliable_dispatch);
    assert_eq!(s.producers[0].clients, 1);
    assert_eq!(danube_topic_name("orders"), "/default/orders");
    assert_eq!(danube_topic_name("/ns/orders"), "/ns/orders");

    // Schemas, reliable dispatch and clients; the schema decides payloads.
    let opts = danube
        .replacen("    partitions: 2\n", "    partitions: 2\n    schema: json\n    reliable_dispatch: true\n", 1)
        .replacen("  - name: events\n", "  - name: events\n    schema: int64\n", 1)
        .replacen("    rate: 100\n", "    rate: 100\n    clients: 4\n", 1)
        .replacen("    message_size: {uniform: {min: 100, max: 200}}\n", "", 1);
    let s = load_str(&opts, "d.yaml", &[]).expect("valid");
    assert_eq!(s.topics[0].schema, TopicSchema::Json(DEFAULT_JSON_SCHEMA.to_string()));
    assert!(s.topics[0].reliable_dispatch);
    assert_eq!(s.topics[1].schema, TopicSchema::Int64);
    assert_eq!(s.producers[0].clients, 4);
    assert_eq!(s.producers[0].payload, PayloadKind::Text, "json topics get text payloads");
    assert_eq!(s.producers[1].message_size, SizeDist::Fixed(8), "int64 payloads are 8 bytes");

    let cases: &[(String, &str)] = &[
        (danube.replacen("- name: orders", "- name: \"orders.v1\"", 1), "character `.` is not allowed"),
        (danube.replacen("- name: orders", "- name: /a/b/orders", 1), "not a valid Danube topic"),
        (danube.replacen("    partitions: 2\n", "    partitions: 2\n    schema: avro\n", 1), "unknown schema `avro`"),
        (
            danube.replacen(
                "    partitions: 2\n",
                "    partitions: 2\n    schema: json\n    json_schema: \"{nope\"\n",
                1,
            ),
            "json_schema: is not JSON",
        ),
        (
            danube.replacen("    partitions: 2\n", "    partitions: 2\n    json_schema: \"{}\"\n", 1),
            "applies with `schema: json` only",
        ),
        (danube.replacen("  - name: events\n", "  - name: events\n    schema: int64\n", 1), "every payload is 8 bytes"),
        (
            danube.replacen("    partitions: 2\n", "    partitions: 2\n    schema: string\n", 1).replacen(
                "    rate: 100\n",
                "    rate: 100\n    payload: random\n",
                1,
            ),
            "payloads must be text",
        ),
        (danube.replacen("    rate: 100\n", "    rate: 100\n    clients: 0\n", 1), "clients: 0 is out of range"),
        (
            danube.replacen("type: shared\n    count: 2", "type: failover\n    count: 1", 1),
            "failover subscription with one consumer has no standby",
        ),
        (
            danube.replacen("type: shared\n    count: 2", "type: exclusive\n    count: 1\n    ack: cumulative", 1),
            "no cumulative acks",
        ),
        (
            danube.replacen("type: shared\n    count: 2", "type: shared\n    count: 2\n    receiver_queue: 10", 1),
            "buffers 100 messages per partition",
        ),
        (
            GOOD.replacen("    partitions: 2\n", "    partitions: 2\n    reliable_dispatch: true\n", 1),
            "reliable_dispatch: applies to the danube broker only",
        ),
        (
            GOOD.replacen("    rate: 100\n", "    rate: 100\n    clients: 2\n", 1),
            "clients: applies to the danube broker",
        ),
    ];
    for (text, want) in cases {
        let e = err(text).to_string();
        assert!(e.contains(want), "want {want:?} in:\n{e}");
        assert!(e.contains("d.yaml:") || e.contains("s.yaml:") || e.contains(".yaml"), "{e}");
    }
    // Other brokers are unchanged: a failover subscription of one is fine on Pulsar.
    let pulsar = GOOD.replacen("kind: memory", "kind: pulsar\n  url: pulsar://127.0.0.1:6650", 1).replacen(
        "type: shared\n    count: 2",
        "type: failover\n    count: 1",
        1,
    );
    assert!(load_str(&pulsar, "p.yaml", &[]).is_ok());
}

#[test]
fn load_shapes_parse_into_group_totals() {
    let s = load_str(
        &good_with("    rate: 100\n", "    load: {ramp: {from: 1000, to: 100000, over: 60s}}\n    arrivals: poisson\n"),
        "s.yaml",
        &[],
    )
    .expect("ramp");
    let g = &s.producers[0];
    assert_eq!(g.load, LoadShape::Ramp { from_milli: 1_000_000, to_milli: 100_000_000, over: Duration::from_secs(60) });
    assert_eq!(g.total_rate_milli, 100_000_000, "the peak, for planning and rate caps");
    assert_eq!(g.arrivals, Arrivals::Poisson);
    let mean = g.target_rate(Duration::ZERO, Duration::from_secs(60)).expect("open loop");
    assert!((mean - 50_500.0).abs() < 1e-6, "{mean}");

    let s = load_str(
        &good_with("    rate: 100\n", "    load:\n      steps: [{rate: 1000, for: 10s}, {rate: 0, for: 1s}]\n"),
        "s.yaml",
        &[],
    )
    .expect("steps");
    assert_eq!(s.producers[0].total_rate_milli, 1_000_000);

    let s = load_str(
        &good_with("    rate: 100\n", "    load: {spike: {base: 1000, peak: 5000, every: 20s, for: 2s}}\n"),
        "s.yaml",
        &[],
    )
    .expect("spike");
    assert!(matches!(s.producers[0].load, LoadShape::Spike { peak_milli: 5_000_000, .. }));

    let s = load_str(&good_with("rate: 100", "rate: max"), "s.yaml", &[]).expect("max");
    assert!(s.producers[0].closed_loop());
    assert_eq!(s.producers[0].target_rate(Duration::ZERO, Duration::from_secs(1)), None);
}

#[test]
fn bad_load_shapes_name_the_key_and_line() {
    let e = err(&good_with("    rate: 100\n", "    rate: 100\n    load: {ramp: {from: 1, to: 2, over: 1s}}\n"));
    assert!(e.to_string().contains("s.yaml:14:5: producers[0].load: give one of"), "{e}");
    let e = err(&good_with("    rate: 100\n", "    load: {ramp: {from: 1, to: 2, over: 1s, by: 3}}\n"));
    assert!(e.to_string().contains("producers[0].load.ramp") && e.to_string().contains("unknown field `by`"), "{e}");
    let e = err(&good_with("    rate: 100\n", "    load: {spike: {base: 1, peak: 2, every: 2s, for: 2s}}\n"));
    assert!(e.to_string().contains("producers[0].load.spike.for: must be more than 0s and less than"), "{e}");
    let e = err(&good_with("    rate: 100\n", "    load: {steps: [{rate: -1, for: 1s}]}\n"));
    assert!(e.to_string().contains("producers[0].load.steps[0].rate: -1 is not a positive rate"), "{e}");
    let e = err(&good_with("rate: 100", "rate: fast"));
    assert!(e.to_string().contains("producers[0].rate: `fast` is not a rate"), "{e}");
    let e = err(&good_with("rate: 100", "rate: 100\n    arrivals: bursty"));
    assert!(e.to_string().contains("producers[0].arrivals: unknown arrivals `bursty`"), "{e}");
}

#[test]
fn ceiling_mode_fills_in_its_slo() {
    let s = load_str(
        &good_with(
            "slo:\n",
            "mode: ceiling\nceiling:\n  start: 500\n  max: 20000\n  step_duration: 2s\n  precision: 0.1\nslo:\n",
        ),
        "s.yaml",
        &[],
    )
    .expect("ceiling");
    let c = s.ceiling.expect("ceiling spec");
    assert_eq!((c.start, c.max, c.precision), (500.0, 20000.0, 0.1));
    assert_eq!(c.step_duration, Duration::from_secs(2));
    assert_eq!(c.slo.p99_e2e, Some(Duration::from_millis(20)));
    assert_eq!((c.slo.min_rate_ratio, c.slo.max_loss), (Some(0.98), Some(0)));
    let e = err(&good_with("slo:\n", "ceiling: {start: 5}\nslo:\n"));
    assert!(e.to_string().contains("ceiling: is set but `mode` is not `ceiling`"), "{e}");
    let e = err(&good_with("slo:\n", "mode: ceiling\nceiling: {precision: 2}\nslo:\n"));
    assert!(e.to_string().contains("ceiling.precision: 2 is out of range"), "{e}");
    let scaled = load_str(GOOD, "s.yaml", &[]).expect("valid").scaled_to(2600.0);
    assert_eq!(scaled.producers[0].total_rate_milli, 600_000);
    assert_eq!(scaled.producers[1].total_rate_milli, 2_000_000);
}

#[test]
fn consumer_spread_slos_are_read_and_checked() {
    let text = good_with("  p99_e2e: 20ms\n", "  p99_e2e: 20ms\n  max_consumer_imbalance: 20\n  max_key_overlaps: 0\n");
    let sc = load_str(&text, "s.yaml", &[]).expect("valid");
    assert_eq!((sc.slo.max_consumer_imbalance, sc.slo.max_key_overlaps), (Some(20.0), Some(0)));
    assert_eq!(load_str(GOOD, "s.yaml", &[]).expect("valid").slo.max_consumer_imbalance, None, "not judged unless set");
    let e = err(&good_with("  p99_e2e: 20ms\n", "  p99_e2e: 20ms\n  max_consumer_imbalance: -5\n"));
    assert!(e.to_string().contains("slo.max_consumer_imbalance: -5 is out of range"), "{e}");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn yamlish() -> impl Strategy<Value = String> {
        // Fragments of real scenarios shuffled with noise: reaches deep into
        // validation, not just the YAML parser.
        let frag = prop_oneof![
            Just("name: x\n".to_string()),
            Just("broker: {kind: memory}\n".to_string()),
            Just("broker: {kind: pulsar, url: \"pulsar://h:1\"}\n".to_string()),
            Just("topics: [{name: t, partitions: 3}]\n".to_string()),
            Just("producers: [{name: p, topic: t, rate: 10, keys: {zipf: {keys: 5, exponent: 1.1}}}]\n".to_string()),
            Just("producers: [{name: p, topic: t, load: {ramp: {from: 1, to: 5, over: 2s}}}]\n".to_string()),
            Just("consumers: [{name: c, topic: t, type: key_shared, count: 3}]\n".to_string()),
            Just("phases: {duration: 5s, warmup: 1s}\n".to_string()),
            Just("slo: {p99_e2e: 5ms, max_loss: 0}\n".to_string()),
            Just("faults: [{at: 1s, stop_consumers: {group: c, count: 1}}]\n".to_string()),
            "[a-z_]{1,8}: [-0-9a-zA-Z{}\\[\\]:, .\"]{0,20}\n",
            any::<String>(),
        ];
        proptest::collection::vec(frag, 0..10).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Whatever the text, the loader answers Ok or a located error: never a panic.
        #[test]
        fn loader_never_panics(text in yamlish(), set in proptest::option::of("[a-z_.\\[\\]0-9]{1,20}=[-a-z0-9:/]{0,10}")) {
            let overrides: Vec<Override> = set.iter().filter_map(|s| Override::parse(s).ok()).collect();
            if let Err(e) = load_str(&text, "fuzz.yaml", &overrides) {
                prop_assert!(!e.issues.is_empty());
                let _ = e.to_string();
            }
        }
    }
}

#[test]
fn late_starts_and_pauses_become_windows_and_must_end_in_the_run() {
    let s = load_str(
        &good_with(
            "    type: shared\n    count: 2",
            "    type: shared\n    count: 2\n    start_after: 2s\n    pause: {at: 3s, for: 1s}",
        ),
        "s.yaml",
        &[],
    )
    .expect("valid");
    let secs = Duration::from_secs;
    assert_eq!(
        s.consumers[0].pauses,
        vec![Pause { from: Duration::ZERO, until: secs(2) }, Pause { from: secs(3), until: secs(4) }]
    );
    assert_eq!(s.consumer_paused_until(0, Duration::from_millis(2500)), None);
    assert_eq!(s.consumer_paused_until(0, Duration::from_millis(3500)), Some(secs(4)));
    // Past the end of the run (1 s warmup + 5 s + 30 s drain timeout): never taken.
    let e = err(&good_with("    type: shared\n    count: 2", "    type: shared\n    count: 2\n    start_after: 40s"));
    assert!(e.to_string().contains("the run waits for consumers only until 36s"), "{e}");
    let e = err(&good_with(
        "    type: shared\n    count: 2",
        "    type: shared\n    count: 2\n    pause: {at: 3s, for: 0s}",
    ));
    assert!(e.to_string().contains("pause.for"), "{e}");
    let e = err(&good_with(
        "    type: shared\n    count: 2",
        "    type: shared\n    count: 2\n    start_after: 5s\n    pause: {at: 3s, for: 1s}",
    ));
    assert!(e.to_string().contains("falls before `start_after` ends"), "{e}");
}

#[test]
fn report_percentiles_default_sort_and_take_in_what_an_slo_names() {
    use crate::percentile::Percentile;
    let labels = |s: &Scenario| s.report.percentiles.iter().map(|p| p.label()).collect::<Vec<_>>();
    let s = load_str(GOOD, "s.yaml", &[]).expect("valid");
    assert_eq!(labels(&s), ["p50", "p90", "p95", "p99", "p99.9"]);
    let s = load_str(&format!("{GOOD}report: {{percentiles: [99.99, 50]}}\n"), "s.yaml", &[]).expect("valid");
    // Sorted; the fixture's p99_e2e is reported too.
    assert_eq!(labels(&s), ["p50", "p99", "p99.99"]);
    let text = good_with("  p99_e2e: 20ms", "  p95_e2e: 20ms\n  p9999_publish: 80ms\n  p055_e2e: 1s");
    let s = load_str(&format!("{text}report: {{percentiles: [50]}}\n"), "s.yaml", &[]).expect("valid");
    assert_eq!(labels(&s), ["p5.5", "p50", "p95", "p99.99"]);
    let other: Vec<(&str, f64, bool, Duration)> =
        s.slo.other.iter().map(|l| (l.key.as_str(), l.percentile.percent(), l.publish, l.limit)).collect();
    assert_eq!(
        other,
        [
            ("p055_e2e", 5.5, false, Duration::from_secs(1)),
            ("p95_e2e", 95.0, false, Duration::from_millis(20)),
            ("p9999_publish", 99.99, true, Duration::from_millis(80)),
        ]
    );
    assert_eq!(s.slo.p99_e2e, None, "the named key is not set by the general form");
    assert_eq!(s.slo.percentiles(), [Percentile::new(5.5).unwrap(), Percentile::P95, Percentile::new(99.99).unwrap()]);
}

#[test]
fn bad_percentile_lists_and_slo_keys_name_the_key() {
    let with = |list: &str| err(&format!("{GOOD}report: {{percentiles: {list}}}\n")).to_string();
    assert!(with("[]").contains("report.percentiles: is empty\n  hint: percent"), "{}", with("[]"));
    let e = with("[0, 50]");
    assert!(e.contains("report.percentiles[0]: 0 is not between 0 and 100 (both excluded)"), "{e}");
    assert!(with("[50, 100]").contains("report.percentiles[1]: 100 is not between"), "{}", with("[50, 100]"));
    assert!(with("[99.99999]").contains("has more than three decimals"), "{}", with("[99.99999]"));
    assert!(with("[50, 99, 50]").contains("report.percentiles[2]: 50 is listed twice"), "{}", with("[50, 99, 50]"));
    let many: Vec<String> = (1..=13).map(|i| i.to_string()).collect();
    let e = with(&format!("[{}]", many.join(", ")));
    assert!(e.contains("report.percentiles: 13 percentiles; at most 12"), "{e}");
    assert!(with("[fifty]").contains("report.percentiles"), "{}", with("[fifty]"));

    let slo = |key: &str| err(&good_with("  p99_e2e: 20ms", &format!("  {key}: 20ms"))).to_string();
    let e = slo("max_los");
    assert!(e.contains("slo.max_los: unknown key `max_los`\n  hint: a latency limit is `pDIGITS_e2e`"), "{e}");
    assert!(e.contains("for 99.99); other keys: max_e2e, max_loss"), "{e}");
    assert!(slo("p95_e2ee").contains("unknown key"), "{}", slo("p95_e2ee"));
    let e = slo("p990_e2e");
    assert!(e.contains("slo.p990_e2e: `p990_e2e` reads as p99\n  hint: write it `p99_e2e`"), "{e}");
    assert!(slo("p0_publish").contains("a percentile is above 0"), "{}", slo("p0_publish"));
    let e = err(&good_with("  p99_e2e: 20ms", "  p95_e2e: 20"));
    assert!(e.to_string().contains("slo.p95_e2e: `20` has no unit"), "{e}");
}

#[test]
fn ack_latency_and_client_bound_keys() {
    let s = load_str(GOOD, "s.yaml", &[]).expect("valid");
    assert!(!s.slo.fail_client_bound, "reported, not judged, by default");
    assert_eq!((s.slo.client_cpu_limit(), s.slo.client_lag_limit()), (0.9, Duration::from_millis(100)));
    assert_eq!(s.broker.ack_latency, Duration::ZERO);
    let s = load_str(
        &good_with(
            "  p99_e2e: 20ms\n",
            "  p99_e2e: 20ms\n  p99_ack: 5ms\n  allow_client_bound: false\n  max_client_cpu: 0.5\n  max_client_lag: 1s\n",
        )
        .replace("kind: memory", "kind: memory\n  ack_latency: 2ms"),
        "s.yaml",
        &[],
    )
    .expect("valid");
    assert_eq!((s.slo.p99_ack, s.broker.ack_latency), (Some(Duration::from_millis(5)), Duration::from_millis(2)));
    assert!(s.slo.fail_client_bound);
    assert_eq!((s.slo.client_cpu_limit(), s.slo.client_lag_limit()), (0.5, Duration::from_secs(1)));
    // The ceiling search takes them as its defaults.
    let c = default_ceiling(&s.slo);
    assert_eq!((c.max_client_cpu, c.max_client_lag), (0.5, Duration::from_secs(1)));
    let e = err(&good_with("  p99_e2e: 20ms\n", "  p99_e2e: 20ms\n  max_client_cpu: 1.5\n"));
    assert!(e.to_string().contains("slo.max_client_cpu: 1.5 is out of range"), "{e}");
    let e = err(&good_with("kind: memory", "kind: danube\n  url: http://x:1\n  ack_latency: 2ms"));
    assert!(e.to_string().contains("broker.ack_latency: applies to the memory broker only"), "{e}");
}
