//! Benchmarks of the secure-api crates against peers that need a C toolchain (GMP through
//! `rug`, behind the `gmp` feature). Run them with
//! `cargo bench -p secure-api-benches --features gmp`.
