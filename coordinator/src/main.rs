use std::process::ExitCode;

use clap::Parser;

/// The broker clients allocate several times per message (maps, strings,
/// futures, frames); mimalloc spends less CPU on that than the system allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = coordinator::Cli::parse();
    coordinator::init_logging(cli.verbose, cli.log_format);
    let rt = match common::runtime::build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    rt.block_on(coordinator::execute(cli))
}
