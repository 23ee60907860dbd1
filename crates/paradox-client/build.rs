//! Generates the gRPC client code from `proto/paradox/v1/paradox.proto` with `protox`
//! (a pure-Rust protobuf compiler), so building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read when the script runs, not baked in when it is compiled: a build script's
    // binary is reused by every checkout sharing the target directory.
    let proto_root = format!("{}/../../proto", std::env::var("CARGO_MANIFEST_DIR")?);
    let file = format!("{proto_root}/paradox/v1/paradox.proto");
    println!("cargo:rerun-if-changed={file}");
    let descriptors = protox::compile([file.as_str()], [proto_root.as_str()])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_fds(descriptors)?;
    Ok(())
}
