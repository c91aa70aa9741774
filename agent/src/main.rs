use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;

/// Load-generating agent: runs its shard of a scenario when a coordinator asks.
#[derive(Parser, Debug)]
#[command(name = "agent", version, about)]
struct Cli {
    /// Address to listen on, e.g. 0.0.0.0:7070 (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
    /// Name reported to the coordinator (default: the listen address).
    #[arg(long)]
    id: Option<String>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("agent: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(cli.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("agent: cannot listen on {}: {e}", cli.listen);
                return ExitCode::from(2);
            }
        };
        let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        // Scripts and tests read this line to learn the port.
        println!("agent listening on {addr}");
        let opts = agent::AgentOptions::new(cli.id.unwrap_or_else(|| addr.clone()));
        let shutdown = CancellationToken::new();
        let s2 = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            s2.cancel();
        });
        match agent::serve(listener, opts, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("agent: server failed: {e}");
                ExitCode::from(3)
            }
        }
    })
}
