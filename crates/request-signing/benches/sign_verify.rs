//! Criterion benchmarks for request-signing: sign and verify per call for 1 KiB and 1 MiB
//! bodies, with the body's SHA-256 alone and a v0 verification as peers in the same group.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use request_signing::{
    FakeClock, MemoryReplayCache, Request, Secret, SignatureHeaders, Signer, StaticSecretStore,
    Verifier, body_sha256_hex, sign_v0,
};

const TARGET: &str = "/v1/orders/42?expand=items&lang=en";

/// Polls a future that is ready at once (the memory store and cache never wait).
fn now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("in-memory verification never waits"),
    }
}

fn bench(c: &mut Criterion) {
    // The signer's clock moves one second per signed request; the verifier's clock is set to
    // each request's timestamp just before verifying it (criterion signs a whole batch first).
    // So old replay entries keep expiring and the cache stays at about 300 entries.
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let verifier_clock = FakeClock::at_unix_secs(1_700_000_000);
    let secret = Secret::from("bench-secret-0123456789abcdef0123");
    let signer = Signer::new("svc-bench", secret.clone())
        .unwrap()
        .with_clock(clock.clone());
    let store = StaticSecretStore::new().with_secret("svc-bench", secret.clone());
    let cache = MemoryReplayCache::new(NonZeroUsize::new(1_000_000).unwrap());
    let verifier = Verifier::new(store, cache).with_clock(verifier_clock.clone());

    let mut group = c.benchmark_group("request-signing");
    for (label, size) in [("1KiB", 1024usize), ("1MiB", 1024 * 1024)] {
        let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("sha256-body", label), &body, |b, body| {
            b.iter(|| body_sha256_hex(black_box(body)));
        });
        group.bench_with_input(BenchmarkId::new("sign", label), &body, |b, body| {
            b.iter(|| {
                signer
                    .sign(black_box("POST"), black_box(TARGET), black_box(body))
                    .unwrap()
            });
        });
        group.bench_with_input(BenchmarkId::new("verify", label), &body, |b, body| {
            b.iter_batched(
                || {
                    clock.advance(Duration::from_secs(1));
                    (
                        signer.sign("POST", TARGET, body).unwrap(),
                        clock_now(&clock),
                    )
                },
                |(headers, ts)| {
                    verifier_clock.set_unix_secs(ts);
                    let sig = SignatureHeaders::from_signed(&headers);
                    now(verifier.verify(&sig, &Request::new("POST", TARGET, body))).unwrap()
                },
                BatchSize::SmallInput,
            );
        });
        group.bench_with_input(BenchmarkId::new("verify-v0", label), &body, |b, body| {
            b.iter_batched(
                || {
                    clock.advance(Duration::from_secs(1));
                    (
                        sign_v0("svc-bench", &secret, clock_now(&clock)).unwrap(),
                        clock_now(&clock),
                    )
                },
                |(headers, ts)| {
                    verifier_clock.set_unix_secs(ts);
                    let sig = SignatureHeaders::from_signed(&headers);
                    now(verifier.verify(&sig, &Request::new("POST", TARGET, body))).unwrap()
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

fn clock_now(clock: &FakeClock) -> u64 {
    use request_signing::Clock;
    clock.now_unix()
}

criterion_group!(benches, bench);
criterion_main!(benches);
