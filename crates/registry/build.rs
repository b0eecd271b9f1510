//! Compiles `proto/registry.proto` with protox (no `protoc`). Mesos types come from the `api`
//! crate (`extern_path`), so an `AgentInfo` in the registry is the same Rust type the master
//! already uses. Maps are BTreeMaps so that encoding is deterministic (replicas compare
//! snapshots byte for byte).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/registry.proto");
    println!("cargo:rerun-if-changed=../api/proto/mesos.proto");
    let descriptors = protox::compile(["proto/registry.proto"], ["proto", "../api/proto"])?;
    prost_build::Config::new()
        .extern_path(".mesos.v1", "::api::mesos::v1")
        .btree_map(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
