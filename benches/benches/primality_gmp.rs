//! Criterion benchmarks for `primality` against GMP (through `rug`), in the same groups as
//! `cargo bench -p primality` so that the ratio to GMP comes from one run.
//!
//! ```text
//! apt-get install -y m4   # GMP's build needs it
//! cargo bench -p secure-api-benches --features gmp
//! ```
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use num_bigint::BigUint;
use num_prime::PrimalityTestConfig;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rug::Integer;
use rug::integer::IsPrime;

fn to04(n: &BigUint) -> num_bigint_04::BigUint {
    num_bigint_04::BigUint::from_bytes_le(&n.to_bytes_le())
}

fn to_rug(n: &BigUint) -> Integer {
    Integer::from_digits(&n.to_bytes_le(), rug::integer::Order::Lsf)
}

/// A random prime of exactly `bits` bits (the same generator as `cargo bench -p primality`).
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

fn big_classes(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(2048);
    for bits in [128u64, 256, 512, 1024, 2048, 4096] {
        let count = if bits >= 2048 { 2 } else { 8 };
        let primes: Vec<BigUint> = (0..count).map(|_| random_prime(bits, &mut rng)).collect();
        let primes04: Vec<num_bigint_04::BigUint> = primes.iter().map(to04).collect();
        let primes_rug: Vec<Integer> = primes.iter().map(to_rug).collect();
        for (p, g) in primes.iter().zip(&primes_rug) {
            assert!(primality::is_prime(p) && g.is_probably_prime(24) != IsPrime::No);
        }
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
        // GMP 6.2+: trial division, BPSW, then reps - 24 Miller-Rabin rounds: 24 is BPSW only.
        group.bench_function(BenchmarkId::new("gmp::is_probably_prime_24", bits), |b| {
            b.iter(|| black_box(&primes_rug[next()]).is_probably_prime(24))
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
        group.finish();
    }
}

criterion_group!(benches, big_classes);
criterion_main!(benches);
