//! Criterion benchmarks for Redis decisions per second: one round trip per decision (pipelining
//! off) and 100 decisions per pipeline (pipelining on). Needs `TEST_REDIS_URL`; skips without it.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use core::num::NonZeroU64;
use std::hash::{BuildHasher, RandomState};
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quota::{Policy, RedisBackend};

const BATCH: usize = 100;

fn bench(c: &mut Criterion) {
    let Ok(url) = std::env::var("TEST_REDIS_URL") else {
        eprintln!("skipped redis_throughput: set TEST_REDIS_URL to run it");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    let prefix = format!(
        "quota-bench:{:016x}",
        RandomState::new().hash_one(std::process::id())
    );
    let policy = Policy::per_day(NonZeroU64::MAX);
    let limiter = runtime
        .block_on(RedisBackend::builder(policy).prefix(prefix).connect(&url))
        .unwrap_or_else(|e| panic!("{e}"));
    let keys: Vec<String> = (0..BATCH).map(|i| format!("key-{i}")).collect();
    let calls: Vec<(&str, u64)> = keys.iter().map(|k| (k.as_str(), 1)).collect();

    let mut group = c.benchmark_group("quota_redis");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decide/pipelining_off", |b| {
        b.iter(|| runtime.block_on(async { black_box(limiter.decide("key-0", 1).await.is_ok()) }));
    });
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("decide_batch_100/pipelining_on", |b| {
        b.iter(|| {
            runtime.block_on(async { black_box(limiter.decide_batch(&calls).await.is_ok()) })
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
