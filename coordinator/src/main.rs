use std::process::ExitCode;

use clap::Parser;

/// The broker clients allocate several times per message (maps, strings,
/// futures, frames); mimalloc spends less CPU on that than the system allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = coordinator::Cli::parse();
    let rt = match common::runtime::build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    rt.block_on(coordinator::execute(cli))
}
