//! A tiny run of the benchmark (the real one: `cargo bench -p registry`).

use registry::RegistrarConfig;
use registry::bench::{BenchConfig, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn benchmark_smoke() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = BenchConfig {
        work_dir: dir.path().to_path_buf(),
        agents: vec![300],
        ops: 40,
        concurrency: vec![1, 4],
        registrar: RegistrarConfig::default(),
    };
    let (sizes, rows) = run(&config).await.expect("benchmark runs");
    assert_eq!(sizes.len(), 1);
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert_eq!(row.ops, 40);
        assert!(row.p50 <= row.p99 && row.p99 <= row.max, "{row}");
        assert!(row.bytes_per_op > 0.0, "{row}");
    }
    assert!(sizes[0].registry_bytes > 300 * 100, "{}", sizes[0]);
}
