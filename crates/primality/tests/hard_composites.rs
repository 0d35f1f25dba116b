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

/// Whether odd `n` is a strong probable prime to base 2, in plain 128-bit arithmetic (no code
/// shared with the crate).
fn strong_base_2(n: u64) -> bool {
    let mul = |a: u64, b: u64| (u128::from(a) * u128::from(b) % u128::from(n)) as u64;
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    let (mut x, mut base, mut e) = (1u64, 2u64, d);
    while e > 0 {
        if e & 1 == 1 {
            x = mul(x, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    if x == 1 || x == n - 1 {
        return true;
    }
    for _ in 1..s {
        x = mul(x, x);
        if x == n - 1 {
            return true;
        }
    }
    false
}

#[test]
fn base_2_strong_pseudoprimes_up_to_2_64() {
    // They pass trial division and the base-2 test, so the second half of the u64 test
    // (the table's base, or the strong Lucas test) is what rejects them.
    let text = include_str!("data/spsp2-large.txt");
    assert_all_composite("spsp2-large", text, 10_000);
    for n in values(text) {
        // No factor for trial division to find: the strong tests decide.
        assert_eq!(check(&n), Verdict::Composite { factor: None }, "{n}");
        let n = n.to_u64().unwrap();
        assert!(n > 1 << 40 && strong_base_2(n), "{n}");
    }
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
