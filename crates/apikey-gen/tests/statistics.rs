//! Statistical checks on generated keys: no collisions in a million, and uniform body
//! characters (chi-square).

use std::collections::HashSet;

use apikey_gen::{CHECKSUM_LEN, KeyConfig, TIMESTAMP_LEN};

/// Chi-square critical value for 61 degrees of freedom (62 characters) at p = 1e-7,
/// computed from the regularized upper incomplete gamma function (Python, see the crate's
/// `tests/data/README.md`). The test below makes 33 such comparisons, so a correct generator
/// fails it with probability below 33 * 1e-7 = 3.3e-6.
const CHI2_CRITICAL_DF61_P1E7: f64 = 136.66;

/// Pearson's chi-square statistic of `counts` against a uniform distribution.
fn chi_square(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let expected = total as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|&c| {
            let d = c as f64 - expected;
            d * d / expected
        })
        .sum()
}

fn index(c: u8) -> usize {
    match c {
        b'0'..=b'9' => usize::from(c - b'0'),
        b'A'..=b'Z' => usize::from(c - b'A') + 10,
        b'a'..=b'z' => usize::from(c - b'a') + 36,
        _ => panic!("not base62: {c}"),
    }
}

#[test]
fn one_million_keys_without_collision() {
    let config = KeyConfig::new("sk").unwrap();
    let mut seen: HashSet<Box<str>> = HashSet::with_capacity(1_000_000);
    for _ in 0..1_000_000 {
        let generated = config.generate().unwrap();
        assert!(
            seen.insert(generated.key().expose_secret().into()),
            "duplicate key after {} keys",
            seen.len()
        );
    }
    assert_eq!(seen.len(), 1_000_000);
}

#[test]
fn body_characters_are_uniform() {
    const KEYS: usize = 100_000;
    let config = KeyConfig::new("sk").unwrap().with_timestamp(true);
    let body_len = config.body_len();
    let start = "sk_".len() + TIMESTAMP_LEN;
    let mut overall = [0_u64; 62];
    let mut per_position = vec![[0_u64; 62]; body_len];
    for _ in 0..KEYS {
        let generated = config.generate().unwrap();
        let key = generated.key().expose_secret().as_bytes();
        let body = &key[start..key.len() - CHECKSUM_LEN];
        for (pos, &c) in body.iter().enumerate() {
            overall[index(c)] += 1;
            per_position[pos][index(c)] += 1;
        }
    }
    let stat = chi_square(&overall);
    assert!(stat < CHI2_CRITICAL_DF61_P1E7, "overall chi-square {stat}");
    for (pos, counts) in per_position.iter().enumerate() {
        let stat = chi_square(counts);
        assert!(
            stat < CHI2_CRITICAL_DF61_P1E7,
            "chi-square {stat} at body position {pos}"
        );
    }
}

/// The check above has power: the classic `byte % 62` mistake (characters 0-7 come up 5/256
/// instead of 4/256 of the time) fails it by a wide margin at a tenth of the sample size.
#[test]
fn chi_square_detects_modulo_bias() {
    // A fixed xorshift stream stands in for random bytes so this test is deterministic.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next_byte = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 56) as u8
    };
    let mut biased = [0_u64; 62];
    let mut unbiased = [0_u64; 62];
    for _ in 0..320_000 {
        let b = next_byte();
        biased[usize::from(b % 62)] += 1;
        if b < 248 {
            unbiased[usize::from(b % 62)] += 1;
        }
    }
    assert!(chi_square(&biased) > 10.0 * CHI2_CRITICAL_DF61_P1E7);
    assert!(chi_square(&unbiased) < CHI2_CRITICAL_DF61_P1E7);
}
