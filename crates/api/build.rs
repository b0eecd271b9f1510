//! Compiles `proto/*.proto` with protox (no `protoc` needed) into prost types, and keeps the
//! descriptor set so that the JSON codec can map messages by their proto field names.

use std::path::PathBuf;

use prost::Message;

const PROTOS: [&str; 8] = [
    "proto/mesos.proto",
    "proto/scheduler.proto",
    "proto/executor.proto",
    "proto/agent_protocol.proto",
    "proto/maintenance.proto",
    "proto/master.proto",
    "proto/messages.proto",
    "proto/authentication.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("descriptors.bin"), descriptors.encode_to_vec())?;
    prost_build::Config::new()
        .enable_type_names()
        .compile_fds(descriptors)?;
    Ok(())
}
