//! Published hard composites (tests/data, regenerated and verified by tests/data/generate.py):
//! every one must be reported composite.

use num_bigint::BigUint;
use num_traits::ToPrimitive;
use primality::{Verdict, check, is_prime, is_prime_u64};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn values(text: &str) -> Vec<BigUint> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.parse().unwrap())
        .collect()
}

fn assert_all_composite(name: &str, text: &str, expected_count: usize) {
    let list = values(text);
    assert_eq!(list.len(), expected_count, "{name}");
    for n in &list {
        if let Some(v) = n.to_u64() {
            assert!(!is_prime_u64(v), "{name}: {v}");
        }
        assert!(!is_prime(n), "{name}: {n}");
        match check(n) {
            Verdict::Composite { factor: Some(p) } => assert_eq!(n % p, BigUint::ZERO),
            Verdict::Composite { factor: None } => {}
            other => panic!("{name}: {n} reported {other:?}"),
        }
    }
}

#[test]
fn carmichael_numbers() {
    assert_all_composite("carmichael", include_str!("data/carmichael.txt"), 43);
}

#[test]
fn strong_pseudoprimes_to_the_first_k_prime_bases() {
    assert_all_composite("A014233", include_str!("data/a014233.txt"), 13);
}

#[test]
fn base_2_strong_pseudoprimes() {
    assert_all_composite("A001262", include_str!("data/a001262.txt"), 46);
}

#[test]
fn strong_lucas_pseudoprimes() {
    assert_all_composite("A217255", include_str!("data/a217255.txt"), 58);
}

#[test]
fn extra_strong_lucas_pseudoprimes() {
    assert_all_composite("A217719", include_str!("data/a217719.txt"), 42);
}

#[test]
fn arnault_composites_fool_every_small_base_but_not_bpsw() {
    let list = values(include_str!("data/arnault.txt"));
    assert_eq!(list.len(), 2);
    assert_all_composite("arnault", include_str!("data/arnault.txt"), 2);
    for n in &list {
        // The 397-digit one is 1318 bits: above the guard a server would use, but not above
        // the crate's arithmetic.
        assert_eq!(check(n), Verdict::Composite { factor: None });
    }
}

#[test]
fn random_base_rounds_catch_arnault_composites() {
    // A composite passes one random round with probability at most 1/4; 40 rounds all passing
    // is (1/4)^40. Seeded, so the test is reproducible.
    let mut rng = StdRng::seed_from_u64(307);
    for n in values(include_str!("data/arnault.txt")) {
        assert!(!primality::miller_rabin(&n, 40, &mut rng));
    }
}
