//! `pulsar-relay --upstream HOST:PORT [--listen 127.0.0.1:0]`: prints
//! "relay listening on ADDR" and relays until killed. Test support for
//! pulsar-lite (see testkit::relay).
use std::net::SocketAddr;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let Some(upstream) = get("--upstream").and_then(|s| s.parse::<SocketAddr>().ok()) else {
        eprintln!("usage: pulsar-relay --upstream HOST:PORT [--listen 127.0.0.1:0]");
        std::process::exit(2);
    };
    let listen: SocketAddr =
        get("--listen").and_then(|s| s.parse().ok()).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let (addr, handle) = testkit::relay::spawn(listen, upstream).await.expect("listen");
        println!("relay listening on {addr}");
        let _ = handle.await;
    });
}
