//! Criterion benchmarks for the key pool (pick + report) and a response cache hit.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use weather_keypool::{KeyPool, Location, Outcome, Selection, Units, UpstreamKey, WeatherCache};

fn pool(selection: Selection) -> KeyPool {
    let keys =
        (0..4).map(|i| UpstreamKey::new(format!("bench-key-{i:02}-0123456789abcdef")).unwrap());
    KeyPool::builder().selection(selection).build(keys).unwrap()
}

fn pick_and_report(c: &mut Criterion) {
    let mut group = c.benchmark_group("pick_and_report");
    for (name, selection) in [
        ("random", Selection::Random),
        ("round_robin", Selection::RoundRobin),
    ] {
        let pool = pool(selection);
        group.bench_function(name, |b| {
            b.iter(|| {
                let picked = pool.pick().unwrap();
                pool.report(black_box(picked.id()), Outcome::Accepted);
            });
        });
    }
    group.finish();
}

fn cache_hit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cache = WeatherCache::default();
    let sample =
        weather_keypool::parse_current(include_bytes!("../tests/data/london.json"), Units::Metric)
            .unwrap();
    let london = Location::city("London").unwrap();
    rt.block_on(cache.get_or_fetch(&london, Units::Metric, || async { Ok(sample.clone()) }))
        .unwrap();
    let mut group = c.benchmark_group("cache");
    group.bench_function("hit", |b| {
        b.iter(|| {
            rt.block_on(
                cache.get_or_fetch(black_box(&london), Units::Metric, || async {
                    unreachable!("a cached place is not fetched")
                }),
            )
            .unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, pick_and_report, cache_hit);
criterion_main!(benches);
