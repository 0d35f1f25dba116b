//! Criterion benchmarks for the in-memory backend, with governor's keyed GCRA limiter in the same
//! group: one uncontended key, and 2 threads spread over 1,000 keys.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use core::num::{NonZeroU32, NonZeroU64};
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use governor::clock::FakeRelativeClock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use quota::{Clock, FakeClock, FastClock, MemoryBackend, Policy, SystemClock};

const KEYS: usize = 1_000;
/// High enough that every decision is granted: the common path of a server under its limits.
const RATE: u32 = 1_000_000_000;

fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("198.51.100.{i}")).collect()
}

fn governor_quota() -> Quota {
    Quota::per_second(NonZeroU32::new(RATE).unwrap_or(NonZeroU32::MAX))
}

fn gcra() -> Policy {
    Policy::gcra(
        NonZeroU64::new(u64::from(RATE)).unwrap_or(NonZeroU64::MAX),
        Duration::from_secs(1),
    )
    .unwrap_or_else(|_| Policy::per_day(NonZeroU64::MAX))
}

fn fixed() -> Policy {
    Policy::per_day(NonZeroU64::MAX)
}

fn memory<C: Clock>(policy: Policy, clock: C) -> MemoryBackend<C> {
    MemoryBackend::builder(policy)
        .clock(clock)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Two threads each make `iters` decisions over the 1,000 keys; returns the wall time.
fn two_threads(iters: u64, keys: &[String], decide: &(dyn Fn(&String) -> bool + Sync)) -> Duration {
    let barrier = Barrier::new(3);
    std::thread::scope(|s| {
        for t in 0..2 {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for i in (t * 500..).take(usize::try_from(iters).unwrap_or(usize::MAX)) {
                    black_box(decide(&keys[i % KEYS]));
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        start.elapsed()
    })
}

fn bench(c: &mut Criterion) {
    let keys = keys();
    let key = &keys[7];

    let mut group = c.benchmark_group("quota_vs_governor");

    // Uncontended, each with its default real clock (governor: quanta, quota: FastClock on quanta).
    let gov: DefaultKeyedRateLimiter<String> = RateLimiter::keyed(governor_quota());
    group.bench_function("uncontended/governor_keyed_gcra", |b| {
        b.iter(|| black_box(gov.check_key(black_box(key)).is_ok()));
    });
    let mem = memory(gcra(), FastClock::new());
    group.bench_function("uncontended/quota_memory_gcra", |b| {
        b.iter(|| black_box(mem.decide(black_box(key), 1).is_ok_and(|d| d.is_allowed())));
    });
    let mem_fixed = memory(fixed(), FastClock::new());
    group.bench_function("uncontended/quota_memory_fixed_day", |b| {
        b.iter(|| {
            black_box(
                mem_fixed
                    .decide(black_box(key), 1)
                    .is_ok_and(|d| d.is_allowed()),
            )
        });
    });

    // The same with fake clocks on both sides: the limiter's own cost, without the clock read.
    let gov_fake = RateLimiter::dashmap_with_clock(governor_quota(), FakeRelativeClock::default());
    group.bench_function("uncontended_fake_clock/governor_keyed_gcra", |b| {
        b.iter(|| black_box(gov_fake.check_key(black_box(key)).is_ok()));
    });
    let mem_fake = memory(gcra(), FakeClock::at_unix_secs(1_767_225_600));
    group.bench_function("uncontended_fake_clock/quota_memory_gcra", |b| {
        b.iter(|| {
            black_box(
                mem_fake
                    .decide(black_box(key), 1)
                    .is_ok_and(|d| d.is_allowed()),
            )
        });
    });

    // Two threads over 1,000 keys; the time is per decision per thread (wall time / iters).
    let gov: DefaultKeyedRateLimiter<String> = RateLimiter::keyed(governor_quota());
    group.bench_function("2_threads_1000_keys/governor_keyed_gcra", |b| {
        b.iter_custom(|iters| two_threads(iters, &keys, &|k| gov.check_key(k).is_ok()));
    });
    let mem = memory(gcra(), FastClock::new());
    group.bench_function("2_threads_1000_keys/quota_memory_gcra", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &keys, &|k| {
                mem.decide(k, 1).is_ok_and(|d| d.is_allowed())
            })
        });
    });
    let mem_fixed = memory(fixed(), FastClock::new());
    group.bench_function("2_threads_1000_keys/quota_memory_fixed_day", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &keys, &|k| {
                mem_fixed.decide(k, 1).is_ok_and(|d| d.is_allowed())
            })
        });
    });
    group.finish();

    // What each side pays to read its clock, to explain the difference with real clocks.
    let mut clocks = c.benchmark_group("clock_read");
    let quanta = governor::clock::QuantaClock::default();
    clocks.bench_function("governor_quanta_clock", |b| {
        b.iter(|| black_box(governor::clock::Clock::now(&quanta)));
    });
    clocks.bench_function("quota_system_clock", |b| {
        b.iter(|| black_box(SystemClock.now_nanos()))
    });
    let fast = FastClock::new();
    clocks.bench_function("quota_fast_clock", |b| {
        b.iter(|| black_box(fast.now_nanos()))
    });
    clocks.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
