//! Deterministic primality for `u64`: trial division, then two strong probable-prime tests in
//! 64-bit Montgomery form, or BPSW without the `witness-table` feature.
//!
//! Both rest on Feitsma and Galway's complete list of base-2 strong pseudoprimes below 2^64:
//! every one of them fails the strong Lucas test (so BPSW has no counterexample there, as
//! several people checked independently), and every one fails the strong test to the base
//! `witness` picks for it (as machine-prime's author checked when building the table; this
//! crate's tests check samples).
//!
//! The two strong tests run in one loop: right to left, each exponentiation's only dependency
//! chain is its squarings, so a core runs the two chains side by side in about the time of one.

use crate::algo::strong_tail;
#[cfg(any(test, not(feature = "witness-table")))]
use crate::algo::{pow2, selfridge, strong_lucas};
#[cfg(any(test, feature = "witness-table"))]
use crate::arith::Arith;
use crate::arith::Mont64;
use crate::small::{U64_TRIAL_NEXT, small_factor_u64};
#[cfg(any(test, feature = "witness-table"))]
use crate::witness::witness;

/// Bit `n` is set when `n < 64` is prime.
const PRIMES_BELOW_64: u64 = {
    let mut mask = 0u64;
    let mut n = 2;
    while n < 64 {
        let mut d = 2;
        let mut prime = true;
        while d * d <= n {
            if n % d == 0 {
                prime = false;
            }
            d += 1;
        }
        if prime {
            mask |= 1 << n;
        }
        n += 1;
    }
    mask
};

/// What trial division and the exact test say about a `u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WordVerdict {
    /// 0 or 1.
    Neither,
    /// Prime (exact).
    Prime,
    /// Composite, with the small factor trial division found.
    Composite(Option<u64>),
}

/// Classifies `n` exactly.
#[inline]
pub(crate) fn classify(n: u64) -> WordVerdict {
    if n < 64 {
        return if n < 2 {
            WordVerdict::Neither
        } else if (PRIMES_BELOW_64 >> n) & 1 == 1 {
            WordVerdict::Prime
        } else {
            // Smallest prime factor of a composite below 64.
            let p = (2..n).find(|p| n % p == 0);
            WordVerdict::Composite(p)
        };
    }
    if n % 2 == 0 {
        return WordVerdict::Composite(Some(2));
    }
    if let Some(p) = small_factor_u64(n) {
        // The trial primes go past 64: n may be one of them.
        return if p == n {
            WordVerdict::Prime
        } else {
            WordVerdict::Composite(Some(p))
        };
    }
    if n < U64_TRIAL_NEXT * U64_TRIAL_NEXT {
        return WordVerdict::Prime;
    }
    if probable_prime(n) {
        WordVerdict::Prime
    } else {
        WordVerdict::Composite(None)
    }
}

/// Whether `n` is prime. Exact for every `u64`.
///
/// ```
/// assert!(primality::is_prime_u64(18_446_744_073_709_551_557)); // 2^64 - 59
/// assert!(!primality::is_prime_u64(3_215_031_751)); // strong pseudoprime to bases 2, 3, 5, 7
/// ```
#[must_use]
#[inline]
pub fn is_prime_u64(n: u64) -> bool {
    classify(n) == WordVerdict::Prime
}

/// The exact test for odd `n > 727^2` with no prime factor up to 727.
#[inline]
fn probable_prime(n: u64) -> bool {
    #[cfg(feature = "witness-table")]
    {
        two_bases(n)
    }
    #[cfg(not(feature = "witness-table"))]
    {
        bpsw(n)
    }
}

/// Strong probable-prime tests to base 2 and to the base [`witness`] picks, for odd
/// `n > 2^16` with no prime factor up to 727 (the table was built for those `n`).
#[cfg(any(test, feature = "witness-table"))]
fn two_bases(n: u64) -> bool {
    let m = Mont64::new(n);
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    let two = m.dbl(&m.one());
    let (x2, xw) = pow_pair(&m, two, m.small(witness(n) as i64), d);
    strong_tail(&m, x2, s) && strong_tail(&m, xw, s)
}

/// `(a^e, b^e)` for `e >= 1`, right to left and without a branch on the bits of `e`.
#[cfg(any(test, feature = "witness-table"))]
#[inline(always)]
fn pow_pair(m: &Mont64, mut a: u64, mut b: u64, mut e: u64) -> (u64, u64) {
    let mut ra = m.one();
    let mut rb = ra;
    while e > 1 {
        let bit = e & 1;
        ra = select(bit, m.mul(&ra, &a), ra);
        rb = select(bit, m.mul(&rb, &b), rb);
        a = m.sqr(&a);
        b = m.sqr(&b);
        e >>= 1;
    }
    (m.mul(&ra, &a), m.mul(&rb, &b))
}

/// `if_one` when `bit` is 1, `if_zero` when it is 0, by masks: a branch on a random bit is
/// mispredicted half the time.
#[cfg(any(test, feature = "witness-table"))]
#[inline(always)]
fn select(bit: u64, if_one: u64, if_zero: u64) -> u64 {
    if_zero ^ ((if_zero ^ if_one) & bit.wrapping_neg())
}

/// BPSW for odd `n > 2^12` with no prime factor up to 727.
#[cfg(any(test, not(feature = "witness-table")))]
fn bpsw(n: u64) -> bool {
    let m = Mont64::new(n);
    let s = (n - 1).trailing_zeros();
    if !strong_tail(&m, pow2(&m, &[(n - 1) >> s]), s) {
        return false;
    }
    let Ok(d) = selfridge(|a| n % a, n % 4, || n.isqrt() * n.isqrt() == n) else {
        return false;
    };
    let q = (1 - d) / 4;
    // n < 2^64 - 1 here (2^64 - 1 is divisible by 3), so n + 1 does not overflow.
    let np1 = n + 1;
    let s = np1.trailing_zeros();
    strong_lucas(&m, q, &[np1 >> s], s)
}

/// The smallest prime greater than `n`, or `None` when it does not fit in a `u64`
/// (`n >= 2^64 - 59`).
///
/// ```
/// assert_eq!(primality::next_prime_u64(13), Some(17));
/// assert_eq!(primality::next_prime_u64(u64::MAX - 58), None);
/// ```
#[must_use]
pub fn next_prime_u64(n: u64) -> Option<u64> {
    if n < 2 {
        return Some(2);
    }
    let mut c = n.checked_add(1)?;
    if c % 2 == 0 {
        if c == 2 {
            return Some(2);
        }
        c = c.checked_add(1)?;
    }
    loop {
        if is_prime_u64(c) {
            return Some(c);
        }
        c = c.checked_add(2)?;
    }
}

/// The largest prime smaller than `n`, or `None` when `n <= 2`.
///
/// ```
/// assert_eq!(primality::prev_prime_u64(17), Some(13));
/// assert_eq!(primality::prev_prime_u64(2), None);
/// ```
#[must_use]
pub fn prev_prime_u64(n: u64) -> Option<u64> {
    if n <= 2 {
        return None;
    }
    if n == 3 {
        return Some(2);
    }
    let mut c = if n % 2 == 0 { n - 1 } else { n - 2 };
    while c > 2 {
        if is_prime_u64(c) {
            return Some(c);
        }
        c -= 2;
    }
    Some(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::pow;

    #[test]
    fn small_numbers() {
        let primes: Vec<u64> = (0..100).filter(|&n| is_prime_u64(n)).collect();
        // Every n up to the trial primes' reach agrees with a plain sieve of Eratosthenes.
        let mut sieve = vec![true; 1_000];
        sieve[0] = false;
        sieve[1] = false;
        for i in 2..1_000 {
            if sieve[i] {
                for j in (i * i..1_000).step_by(i) {
                    sieve[j] = false;
                }
            }
        }
        for (n, &p) in sieve.iter().enumerate() {
            assert_eq!(is_prime_u64(n as u64), p, "{n}");
        }
        assert_eq!(
            primes,
            [
                2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79,
                83, 89, 97
            ]
        );
        assert_eq!(classify(0), WordVerdict::Neither);
        assert_eq!(classify(1), WordVerdict::Neither);
        assert_eq!(classify(49), WordVerdict::Composite(Some(7)));
        assert_eq!(classify(91), WordVerdict::Composite(Some(7)));
        assert_eq!(classify(4_294_967_297), WordVerdict::Composite(Some(641))); // F5
        // 733 * 739, 733^2 and 733 * 6700417: no factor up to 727, so the strong tests decide.
        for n in [541_687u64, 537_289, 4_911_405_661] {
            assert_eq!(classify(n), WordVerdict::Composite(None), "{n}");
        }
    }

    fn listed(text: &str) -> Vec<u64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.parse().unwrap())
            .collect()
    }

    /// The strong Lucas test alone; `None` when the parameter search proved `n` composite.
    fn lucas_alone<A: Arith>(ar: &A, n: u64) -> Option<bool> {
        let d = selfridge(|a| n % a, n % 4, || n.isqrt() * n.isqrt() == n).ok()?;
        let s = (n + 1).trailing_zeros();
        Some(strong_lucas(ar, (1 - d) / 4, &[(n + 1) >> s], s))
    }

    /// The two halves of BPSW, each on its own, pass exactly the primes and the published
    /// pseudoprimes of that half, on the 64-bit and the multi-limb arithmetic.
    #[test]
    fn each_half_of_bpsw_matches_its_published_pseudoprimes() {
        use crate::arith::MontN;
        use num_bigint::BigUint;
        let spsp2 = listed(include_str!("../tests/data/a001262.txt"));
        let slpsp = listed(include_str!("../tests/data/a217255.txt"));
        let limit = 1_000_000u64;
        let mut found_spsp = Vec::new();
        let mut found_slpsp = Vec::new();
        for n in (4097..limit).step_by(2) {
            let prime = is_prime_u64(n);
            let m = Mont64::new(n);
            let s = (n - 1).trailing_zeros();
            let base2 = strong_tail(&m, pow2(&m, &[(n - 1) >> s]), s);
            if base2 && !prime {
                found_spsp.push(n);
            }
            let Some(lucas) = lucas_alone(&m, n) else {
                assert!(!prime, "{n}");
                continue;
            };
            assert!(lucas || !prime, "{n}");
            if lucas && !prime {
                found_slpsp.push(n);
            }
            if n % 1001 == 1 || slpsp.contains(&n) {
                let wide = MontN::<2>::new(&BigUint::from(n));
                assert_eq!(lucas_alone(&wide, n), Some(lucas), "{n} on two limbs");
                let wide = MontN::<5>::new(&BigUint::from(n));
                assert_eq!(lucas_alone(&wide, n), Some(lucas), "{n} on five limbs");
            }
        }
        let above = |v: Vec<u64>| v.into_iter().filter(|&n| n > 4096).collect::<Vec<_>>();
        assert_eq!(found_spsp, above(spsp2));
        assert_eq!(found_slpsp, above(slpsp));
    }

    /// The table's test and BPSW agree wherever the table's test runs, and each of the two
    /// exponentiations of [`pow_pair`] is the plain one.
    #[test]
    fn two_bases_agrees_with_bpsw() {
        let hard = listed(include_str!("../tests/data/spsp2-large.txt"));
        assert_eq!(hard.len(), 10_000);
        for &n in &hard {
            assert!(!two_bases(n) && !bpsw(n), "{n}");
        }
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut checked = 0;
        while checked < 200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Odd, above 727^2, and with a pseudoprime-like share of primes: every third
            // candidate is moved to the next prime.
            let mut n = (x >> (x % 44)) | (1 << 20) | 1;
            if small_factor_u64(n).is_some() {
                continue;
            }
            if checked % 3 == 0 {
                n = next_prime_u64(n).unwrap();
            }
            assert_eq!(two_bases(n), bpsw(n), "{n}");
            let m = Mont64::new(n);
            let a = m.small((x % 1_000_000) as i64);
            let e = (x >> 11) | 1;
            let (pa, p2) = pow_pair(&m, a, m.dbl(&m.one()), e);
            assert_eq!(pa, pow(&m, &a, &[e]), "{n}");
            assert_eq!(p2, pow2(&m, &[e]), "{n}");
            checked += 1;
        }
    }

    /// The table's base alone is not enough from 2^47 on (the table promises that only for
    /// base-2 strong pseudoprimes there): composites `p (2p - 1)` that pass the strong test to
    /// their table base are common, and the base-2 test is what rejects them.
    #[test]
    fn above_2_47_the_table_base_needs_base_2() {
        let strong = |n: u64, m: &Mont64, base: u64| {
            let s = (n - 1).trailing_zeros();
            strong_tail(m, pow(m, &base, &[(n - 1) >> s]), s)
        };
        let mut fooled = 0;
        let mut p = (1u64 << 24) + 1;
        while fooled < 20 {
            p += 2;
            let q = 2 * p - 1;
            if !is_prime_u64(p) || !is_prime_u64(q) {
                continue;
            }
            let n = p * q;
            let m = Mont64::new(n);
            if strong(n, &m, m.small(witness(n) as i64)) {
                assert!(n > 1 << 47 && !strong(n, &m, m.dbl(&m.one())), "{n}");
                assert!(!two_bases(n) && !is_prime_u64(n), "{n}");
                fooled += 1;
            }
        }
    }

    #[test]
    fn edges_of_u64() {
        assert!(is_prime_u64(u64::MAX - 58));
        assert!(!is_prime_u64(u64::MAX));
        for n in (u64::MAX - 57)..=u64::MAX {
            assert!(!is_prime_u64(n), "{n}");
        }
        // Squares of primes, which the Lucas parameter search must reject.
        for p in [4_294_967_291u64, 4_294_967_279, 65_521, 67, 101] {
            assert!(!is_prime_u64(p * p), "{p}^2");
        }
        assert_eq!(next_prime_u64(0), Some(2));
        assert_eq!(next_prime_u64(2), Some(3));
        assert_eq!(next_prime_u64(u64::MAX - 59), Some(u64::MAX - 58));
        assert_eq!(prev_prime_u64(3), Some(2));
        assert_eq!(prev_prime_u64(4), Some(3));
        assert_eq!(prev_prime_u64(u64::MAX), Some(u64::MAX - 58));
    }
}
