//! `PROTOC=$(cargo run -q -p protoc-path)`: some dependencies' build scripts
//! (pulsar, danube-core) run protoc and read PROTOC; this hands them the one
//! shipped by the protoc-bin-vendored crate, so no system package is needed.
use std::process::ExitCode;

fn main() -> ExitCode {
    match protoc_bin_vendored::protoc_bin_path() {
        Ok(p) => {
            println!("{}", p.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("protoc-path: {e}");
            ExitCode::from(1)
        }
    }
}
