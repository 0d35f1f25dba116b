//! Known primes: the largest prime below 2^64, Mersenne primes, random primes from an
//! independent generator (tests/data, made with sympy), cross-checked with num-prime.

use num_bigint::BigUint;
use num_prime::PrimalityTestConfig;
use primality::{Verdict, check, is_prime, is_prime_u64, next_prime, prev_prime};

/// Exponents p of the Mersenne primes 2^p - 1 up to 2^2281 - 1.
const MERSENNE_EXPONENTS: [u32; 17] = [
    2, 3, 5, 7, 13, 17, 19, 31, 61, 89, 107, 127, 521, 607, 1279, 2203, 2281,
];

fn mersenne(p: u32) -> BigUint {
    (BigUint::from(1u32) << p) - 1u32
}

fn num_prime_bpsw(n: &BigUint) -> bool {
    let n04 = num_bigint_04::BigUint::from_bytes_le(&n.to_bytes_le());
    num_prime::nt_funcs::is_prime(&n04, Some(PrimalityTestConfig::bpsw())).probably()
}

#[test]
fn largest_prime_below_two_pow_64() {
    let p = u64::MAX - 58;
    assert!(is_prime_u64(p));
    assert_eq!(check(&BigUint::from(p)), Verdict::Prime);
    assert!(((p + 1)..=u64::MAX).all(|n| !is_prime_u64(n)));
}

#[test]
fn mersenne_primes_up_to_2281() {
    for p in MERSENNE_EXPONENTS {
        let m = mersenne(p);
        assert!(is_prime(&m), "2^{p} - 1");
        if p <= 64 {
            assert_eq!(check(&m), Verdict::Prime);
        } else {
            assert_eq!(check(&m), Verdict::ProbablePrime);
        }
    }
    // 2^p - 1 for every other prime p below 2281 is composite.
    for p in (3..2281u32).filter(|&p| is_prime_u64(u64::from(p))) {
        if !MERSENNE_EXPONENTS.contains(&p) {
            assert!(!is_prime(&mersenne(p)), "2^{p} - 1");
        }
    }
}

#[test]
fn mersenne_prime_above_the_fixed_widths() {
    // 4423 bits: the num-bigint fallback path.
    assert!(is_prime(&mersenne(4423)));
    assert!(!is_prime(&mersenne(4421)));
}

fn file_primes(text: &str) -> Vec<BigUint> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.parse().unwrap())
        .collect()
}

fn check_random_primes(bits: u64, text: &str, count: usize) {
    let primes = file_primes(text);
    assert_eq!(primes.len(), count);
    for p in &primes {
        assert_eq!(p.bits(), bits);
        assert_eq!(check(p), Verdict::ProbablePrime);
        assert!(num_prime_bpsw(p));
        // The neighbours are composite for both.
        for n in [p - 2u32, p + 2u32, p * 3u32 + 2u32] {
            assert_eq!(is_prime(&n), num_prime_bpsw(&n), "{n}");
        }
    }
    if bits > 1024 {
        return;
    }
    // next_prime / prev_prime step between consecutive primes found by both.
    let p = &primes[0];
    let q = next_prime(p);
    assert!(num_prime_bpsw(&q));
    assert_eq!(prev_prime(&q).as_ref(), Some(p));
}

#[test]
fn random_256_bit_primes() {
    check_random_primes(256, include_str!("data/primes-256.txt"), 8);
}

#[test]
fn random_1024_bit_primes() {
    check_random_primes(1024, include_str!("data/primes-1024.txt"), 4);
}

#[test]
fn random_2048_bit_primes() {
    check_random_primes(2048, include_str!("data/primes-2048.txt"), 2);
}

#[test]
fn semiprimes_of_large_primes_are_composite() {
    let a = file_primes(include_str!("data/primes-1024.txt"));
    let b = file_primes(include_str!("data/primes-256.txt"));
    assert_eq!(check(&(&a[0] * &a[1])), Verdict::Composite { factor: None });
    assert_eq!(check(&(&b[0] * &b[1])), Verdict::Composite { factor: None });
    assert_eq!(check(&(&b[0] * &b[0])), Verdict::Composite { factor: None });
}
