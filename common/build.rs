//! Compiles `proto/loadgen/v1/agent.proto` into OUT_DIR with a vendored
//! protoc, so a fresh machine needs no system package.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        // SAFETY-free: build scripts are single-threaded at this point.
        std::env::set_var("PROTOC", protoc);
    }
    let proto_dir = "../proto";
    let file = "../proto/loadgen/v1/agent.proto";
    println!("cargo:rerun-if-changed={file}");
    tonic_prost_build::configure().build_server(true).build_client(true).compile_protos(&[file], &[proto_dir])?;
    Ok(())
}
