//! Small primes and trial division.

use num_bigint::BigUint;

/// Number of odd primes below 1024.
const ODD_PRIME_COUNT: usize = 171;

/// The odd primes below 1024, computed at compile time.
pub(crate) const ODD_PRIMES: [u64; ODD_PRIME_COUNT] = odd_primes();

const fn odd_primes() -> [u64; ODD_PRIME_COUNT] {
    let mut out = [0u64; ODD_PRIME_COUNT];
    let mut count = 0;
    let mut n = 3u64;
    while n < 1024 {
        let mut d = 3u64;
        let mut prime = true;
        while d * d <= n {
            if n % d == 0 {
                prime = false;
                break;
            }
            d += 2;
        }
        if prime {
            out[count] = n;
            count += 1;
        }
        n += 2;
    }
    assert!(count == ODD_PRIME_COUNT);
    out
}

/// A run of consecutive odd primes whose product fits in a `u64`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Group {
    pub(crate) product: u64,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

const MAX_GROUPS: usize = 64;

/// [`ODD_PRIMES`] packed into groups, and how many groups there are.
pub(crate) const GROUPS: ([Group; MAX_GROUPS], usize) = groups();

const fn groups() -> ([Group; MAX_GROUPS], usize) {
    let empty = Group {
        product: 1,
        start: 0,
        end: 0,
    };
    let mut out = [empty; MAX_GROUPS];
    let mut g = 0;
    let mut i = 0;
    while i < ODD_PRIME_COUNT {
        let start = i;
        let mut product = 1u64;
        while i < ODD_PRIME_COUNT {
            match product.checked_mul(ODD_PRIMES[i]) {
                Some(p) => {
                    product = p;
                    i += 1;
                }
                None => break,
            }
        }
        out[g] = Group {
            product,
            start,
            end: i,
        };
        g += 1;
    }
    (out, g)
}

/// How many odd primes [`small_factor_u64`] tries: those up to 727, as machine-prime does. A
/// divisibility check is a multiplication and a comparison, so for random odd inputs the 111
/// checks beyond 61 cost less than the base-2 test they save on the survivors of
/// trial division to 61 that they remove (about 38% by Mertens' estimate ln 61 / ln 727).
const U64_TRIAL_PRIMES: usize = 128;

/// For each of the first [`U64_TRIAL_PRIMES`] odd primes `p`:
/// `(p, p^-1 mod 2^64, floor((2^64 - 1) / p))`, so that `p | n` exactly when
/// `n * p^-1 mod 2^64 <= (2^64 - 1) / p` (a multiplication, no division).
const DIVISIBILITY: [(u64, u64, u64); U64_TRIAL_PRIMES] = divisibility();

const fn divisibility() -> [(u64, u64, u64); U64_TRIAL_PRIMES] {
    let mut out = [(0u64, 0u64, 0u64); U64_TRIAL_PRIMES];
    let mut i = 0;
    while i < U64_TRIAL_PRIMES {
        let p = ODD_PRIMES[i];
        out[i] = (p, crate::arith::inv64(p), u64::MAX / p);
        i += 1;
    }
    out
}

/// The prime after the last one [`small_factor_u64`] tries: an odd `n` below its square with
/// no factor found by trial division is prime.
pub(crate) const U64_TRIAL_NEXT: u64 = ODD_PRIMES[U64_TRIAL_PRIMES];

/// The smallest odd prime up to 727 dividing `n`, if any.
#[inline]
pub(crate) fn small_factor_u64(n: u64) -> Option<u64> {
    for &(p, inv, lim) in DIVISIBILITY.iter() {
        if n.wrapping_mul(inv) <= lim {
            return Some(p);
        }
    }
    None
}

/// The smallest odd prime below `1024` dividing `n`, searching the first `groups` groups.
pub(crate) fn small_factor_big(n: &BigUint, groups: usize) -> Option<u64> {
    let digits = n.to_u64_digits();
    let (table, count) = &GROUPS;
    for g in &table[..groups.min(*count)] {
        let m = u128::from(g.product);
        let mut r = 0u128;
        for &d in digits.iter().rev() {
            r = ((r << 64) | u128::from(d)) % m;
        }
        let r = r as u64;
        for &p in &ODD_PRIMES[g.start..g.end] {
            if r % p == 0 {
                return Some(p);
            }
        }
    }
    None
}

/// How many groups to trial-divide by for an `n` of `bits` bits: more for larger `n`, where a
/// probable-prime test costs more.
pub(crate) fn groups_for_bits(bits: u64) -> usize {
    match bits {
        0..=192 => 6,
        193..=640 => 12,
        _ => GROUPS.1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest prime each size trial-divides by, as the crate's docs give them.
    #[test]
    fn trial_division_reaches_the_documented_primes() {
        let largest = |bits| ODD_PRIMES[GROUPS.0[groups_for_bits(bits) - 1].end - 1];
        assert_eq!(largest(65), 271);
        assert_eq!(largest(192), 271);
        assert_eq!(largest(193), 541);
        assert_eq!(largest(640), 541);
        assert_eq!(largest(641), 1021);
    }

    #[test]
    fn tables_are_consistent() {
        assert_eq!(ODD_PRIMES[0], 3);
        assert_eq!(ODD_PRIMES[ODD_PRIME_COUNT - 1], 1021);
        assert_eq!(
            (ODD_PRIMES[U64_TRIAL_PRIMES - 1], U64_TRIAL_NEXT),
            (727, 733)
        );
        let (table, count) = &GROUPS;
        assert_eq!(table[count - 1].end, ODD_PRIME_COUNT);
        for g in &table[..*count] {
            let product: u128 = ODD_PRIMES[g.start..g.end]
                .iter()
                .map(|&p| u128::from(p))
                .product();
            assert_eq!(product, u128::from(g.product));
        }
        for n in (0..10_000u64).chain((1u64 << 40)..(1 << 40) + 100_000) {
            let expect = ODD_PRIMES[..U64_TRIAL_PRIMES]
                .iter()
                .copied()
                .find(|p| n % p == 0);
            assert_eq!(small_factor_u64(n), expect, "{n}");
        }
    }

    #[test]
    fn big_trial_division_finds_the_smallest_factor() {
        let big = BigUint::from(1u32) << 200u32;
        assert_eq!(
            small_factor_big(&(&big * 1021u32 * 3u32), GROUPS.1),
            Some(3)
        );
        assert_eq!(small_factor_big(&(&big * 1021u32), GROUPS.1), Some(1021));
        assert_eq!(small_factor_big(&(&big * 1021u32), 6), None);
        assert_eq!(small_factor_big(&big, GROUPS.1), None);
    }
}
