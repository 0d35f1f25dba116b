//! Agreement with a sieve of Eratosthenes for every n below 10^7.

use num_bigint::BigUint;
use primality::{Verdict, check, is_prime_u64, next_prime_u64, prev_prime_u64};

const LIMIT: usize = 10_000_000;

fn sieve() -> Vec<bool> {
    let mut prime = vec![true; LIMIT];
    prime[0] = false;
    prime[1] = false;
    let mut p = 2;
    while p * p < LIMIT {
        if prime[p] {
            for m in (p * p..LIMIT).step_by(p) {
                prime[m] = false;
            }
        }
        p += 1;
    }
    prime
}

#[test]
fn is_prime_u64_agrees_with_the_sieve_below_ten_million() {
    let prime = sieve();
    for (n, &expect) in prime.iter().enumerate() {
        assert_eq!(is_prime_u64(n as u64), expect, "{n}");
    }
}

#[test]
fn check_agrees_with_the_sieve_and_names_true_factors() {
    let prime = sieve();
    for (n, &expect) in prime.iter().enumerate().take(200_000) {
        let v = check(&BigUint::from(n));
        match v {
            Verdict::Prime => assert!(expect, "{n}"),
            Verdict::Neither => assert!(n < 2),
            Verdict::Composite { factor } => {
                assert!(!expect && n >= 4, "{n}");
                if let Some(p) = factor {
                    assert!(
                        n as u64 % p == 0 && prime[p as usize] && p < n as u64,
                        "{n}: {p}"
                    );
                }
            }
            Verdict::ProbablePrime => panic!("{n} is below 2^64: the verdict must be exact"),
        }
    }
}

#[test]
fn next_and_prev_agree_with_the_sieve() {
    let prime = sieve();
    let mut next = vec![0u64; 1_000_001];
    let mut upcoming = 1_000_003u64; // the first prime above 10^6
    for n in (0..=1_000_000usize).rev() {
        next[n] = upcoming;
        if prime[n] {
            upcoming = n as u64;
        }
    }
    let mut last = None;
    for n in 0..=1_000_000usize {
        assert_eq!(next_prime_u64(n as u64), Some(next[n]), "next {n}");
        assert_eq!(prev_prime_u64(n as u64), last, "prev {n}");
        if prime[n] {
            last = Some(n as u64);
        }
    }
}
