//! Criterion benchmarks for apikey-gen: per-call cost of generate, parse and hash.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;

use apikey_gen::{KeyConfig, KeyHasher, generate_token};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let config = KeyConfig::new("sk_live").unwrap().with_timestamp(true);
    let peppered = config
        .clone()
        .with_hasher(KeyHasher::hmac_sha256(&[7_u8; 32]).unwrap());
    let key = config.generate().unwrap();
    let text = key.key().expose_secret().to_owned();

    let mut group = c.benchmark_group("apikey-gen");
    group.bench_function("generate (sha256)", |b| {
        b.iter(|| black_box(config.generate().unwrap()));
    });
    group.bench_function("generate (hmac pepper)", |b| {
        b.iter(|| black_box(peppered.generate().unwrap()));
    });
    group.bench_function("generate_token(32)", |b| {
        b.iter(|| black_box(generate_token(32).unwrap()));
    });
    group.bench_function("parse", |b| {
        b.iter(|| black_box(config.parse(black_box(&text)).is_ok()));
    });
    group.bench_function("hash (sha256)", |b| {
        b.iter(|| black_box(config.hash(black_box(&text))));
    });
    group.bench_function("hash (hmac pepper)", |b| {
        b.iter(|| black_box(peppered.hash(black_box(&text))));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
