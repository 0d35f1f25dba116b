//! Criterion benchmarks for `primality` against its peers: one group per input class, every
//! peer in the same group, so each ratio comes from one run.
//!
//! ```text
//! cargo bench -p primality
//! ```
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use num_bigint::BigUint;
use num_prime::PrimalityTestConfig;
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

/// Inputs per class; the benchmark cycles through them.
const U64_INPUTS: usize = 1024;

fn to04(n: &BigUint) -> num_bigint_04::BigUint {
    num_bigint_04::BigUint::from_bytes_le(&n.to_bytes_le())
}

/// A random prime of exactly `bits` bits.
fn random_prime(bits: u64, rng: &mut StdRng) -> BigUint {
    loop {
        let bytes: Vec<u8> = (0..bits.div_ceil(8)).map(|_| rng.random()).collect();
        let mut n = BigUint::from_bytes_le(&bytes) >> (bits.div_ceil(8) * 8 - bits);
        n.set_bit(bits - 1, true);
        n.set_bit(0, true);
        let p = primality::next_prime(&n);
        if p.bits() == bits {
            return p;
        }
    }
}

/// The classic test the service used to run: 40 Miller-Rabin rounds with random bases on
/// num-bigint's `modpow`.
fn classic_mr40(n: &BigUint, rng: &mut StdRng) -> bool {
    let one = BigUint::from(1u32);
    let two = BigUint::from(2u32);
    if *n < BigUint::from(4u32) {
        return *n >= two;
    }
    if !n.bit(0) {
        return false;
    }
    let n1 = n - 1u32;
    let s = n1.trailing_zeros().unwrap_or(0);
    let d = &n1 >> s;
    let span = n - 3u32;
    let len = n.to_bytes_le().len();
    'rounds: for _ in 0..40 {
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let a = BigUint::from_bytes_le(&bytes) % &span + 2u32;
        let mut x = a.modpow(&d, n);
        if x == one || x == n1 {
            continue;
        }
        for _ in 1..s {
            x = x.modpow(&two, n);
            if x == n1 {
                continue 'rounds;
            }
        }
        return false;
    }
    true
}

fn bench_u64(c: &mut Criterion, name: &str, inputs: &[u64]) {
    let mut group = c.benchmark_group(name);
    let big: Vec<BigUint> = inputs.iter().map(|&n| BigUint::from(n)).collect();
    let mut i = 0usize;
    let mut next = move || {
        i = (i + 1) % U64_INPUTS;
        i
    };
    group.bench_function("primality::is_prime_u64", |b| {
        b.iter(|| primality::is_prime_u64(black_box(inputs[next()])))
    });
    group.bench_function("machine_prime::is_prime", |b| {
        b.iter(|| machine_prime::is_prime(black_box(inputs[next()])))
    });
    group.bench_function("num_prime::is_prime64", |b| {
        b.iter(|| num_prime::nt_funcs::is_prime64(black_box(inputs[next()])))
    });
    group.bench_function("num_prime::is_prime_bpsw", |b| {
        b.iter(|| {
            num_prime::nt_funcs::is_prime(
                &black_box(inputs[next()]),
                Some(PrimalityTestConfig::bpsw()),
            )
            .probably()
        })
    });
    let mut rng = StdRng::seed_from_u64(40);
    group.bench_function("classic_mr40_num_bigint", |b| {
        b.iter(|| classic_mr40(black_box(&big[next()]), &mut rng))
    });
    group.finish();
}

fn u64_classes(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(64);
    let odd: Vec<u64> = (0..U64_INPUTS).map(|_| rng.next_u64() | 1).collect();
    bench_u64(c, "u64_random_odd", &odd);
    let primes: Vec<u64> = (0..U64_INPUTS)
        .map(|_| {
            let n = rng.next_u64() | (1 << 63);
            primality::prev_prime_u64(n).unwrap_or(u64::MAX - 58)
        })
        .collect();
    bench_u64(c, "u64_primes", &primes);
}

fn big_classes(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(2048);
    for bits in [128u64, 256, 512, 1024, 2048, 4096] {
        let count = if bits >= 2048 { 2 } else { 8 };
        let primes: Vec<BigUint> = (0..count).map(|_| random_prime(bits, &mut rng)).collect();
        let primes04: Vec<num_bigint_04::BigUint> = primes.iter().map(to04).collect();
        let mut group = c.benchmark_group(format!("prime_{bits}_bit"));
        if bits >= 1024 {
            group.sample_size(10);
        }
        let mut i = 0usize;
        let mut next = move || {
            i = (i + 1) % count;
            i
        };
        group.bench_function(BenchmarkId::new("primality::check", bits), |b| {
            b.iter(|| primality::check(black_box(&primes[next()])))
        });
        let mut mr_rng = StdRng::seed_from_u64(7);
        group.bench_function(BenchmarkId::new("primality::miller_rabin_40", bits), |b| {
            b.iter(|| primality::miller_rabin(black_box(&primes[next()]), 40, &mut mr_rng))
        });
        group.bench_function(BenchmarkId::new("num_prime::is_prime_bpsw", bits), |b| {
            b.iter(|| {
                num_prime::nt_funcs::is_prime(
                    black_box(&primes04[next()]),
                    Some(PrimalityTestConfig::bpsw()),
                )
                .probably()
            })
        });
        if bits == 128 {
            let primes128: Vec<u128> = primes
                .iter()
                .map(|p| {
                    let d = p.to_u64_digits();
                    u128::from(d[0]) | (u128::from(d[1]) << 64)
                })
                .collect();
            group.bench_function(
                BenchmarkId::new("num_prime::is_prime_bpsw_u128", bits),
                |b| {
                    b.iter(|| {
                        num_prime::nt_funcs::is_prime(
                            &black_box(primes128[next()]),
                            Some(PrimalityTestConfig::bpsw()),
                        )
                        .probably()
                    })
                },
            );
        }
        let mut classic_rng = StdRng::seed_from_u64(40);
        group.bench_function(BenchmarkId::new("classic_mr40_num_bigint", bits), |b| {
            b.iter(|| classic_mr40(black_box(&primes[next()]), &mut classic_rng))
        });
        group.finish();
    }
}

criterion_group!(benches, u64_classes, big_classes);
criterion_main!(benches);
