//! `danube-double [--fail-send-every N] [--drop-stream-after N]`: starts the
//! Danube-protocol test double (testkit::danube_double) on 127.0.0.1:0,
//! prints "danube double listening on http://ADDR" and serves until killed.
//! Test support, for trying the Danube driver by hand without a broker.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let num = |flag: &str| -> u64 {
        args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).and_then(|s| s.parse().ok()).unwrap_or(0)
    };
    let knobs = testkit::danube_double::Knobs {
        fail_send_every: num("--fail-send-every"),
        drop_stream_after: num("--drop-stream-after"),
    };
    let d = match testkit::danube_double::DanubeDouble::start(knobs) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("danube-double: {e}");
            std::process::exit(1);
        }
    };
    println!("danube double listening on {}", d.url);
    loop {
        std::thread::park();
    }
}
