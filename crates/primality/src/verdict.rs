//! Verdicts on `BigUint`: the public tests of any size.

use num_bigint::BigUint;
use num_traits::ToPrimitive;
use rand_core::Rng;

use crate::big::{Bases, Bpsw, FIRST_13_PRIMES, RandomBases, dispatch, psi12, psi13, two_pow_64};
use crate::small::{groups_for_bits, small_factor_big};
use crate::word::{WordVerdict, classify, next_prime_u64, prev_prime_u64};

/// What a primality test says about a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use]
pub enum Verdict {
    /// Proven prime: every prime below 2^64 (the tests used there are exact, see the crate's
    /// `witness-table` feature for what that rests on), and primes below
    /// 3317044064679887385961981 (the first 13 prime bases are then a proof, OEIS A014233).
    Prime,
    /// Passed BPSW (strong base 2 and strong Lucas), plus any extra random-base rounds asked
    /// for. No composite is known to pass BPSW.
    ProbablePrime,
    /// Proven composite.
    Composite {
        /// A small prime factor, when trial division found one.
        factor: Option<u64>,
    },
    /// 0 or 1, which are neither prime nor composite.
    Neither,
}

impl Verdict {
    /// `true` for [`Verdict::Prime`] and [`Verdict::ProbablePrime`].
    #[must_use]
    pub const fn is_prime(&self) -> bool {
        matches!(self, Self::Prime | Self::ProbablePrime)
    }

    /// `true` when the verdict is a proof: [`Verdict::Prime`], [`Verdict::Composite`] or
    /// [`Verdict::Neither`].
    #[must_use]
    pub const fn is_certain(&self) -> bool {
        !matches!(self, Self::ProbablePrime)
    }
}

impl From<WordVerdict> for Verdict {
    fn from(v: WordVerdict) -> Self {
        match v {
            WordVerdict::Neither => Self::Neither,
            WordVerdict::Prime => Self::Prime,
            WordVerdict::Composite(factor) => Self::Composite { factor },
        }
    }
}

/// Tests `n` of any size: exact below 2^64; above, trial division by the odd primes up to 271
/// (up to 192 bits), 541 (up to 640 bits) or 1021, then BPSW, then a proof by the first 13
/// prime bases when `n` is small enough. A composite whose smallest factor is above those
/// primes is found by BPSW, and its verdict names no factor.
///
/// ```
/// use primality::{Verdict, check};
/// use num_bigint::BigUint;
/// assert_eq!(check(&BigUint::from(91u32)), Verdict::Composite { factor: Some(7) });
/// let m127 = (BigUint::from(1u32) << 127u32) - 1u32;
/// assert_eq!(check(&m127), Verdict::ProbablePrime);
/// ```
pub fn check(n: &BigUint) -> Verdict {
    if let Some(v) = n.to_u64() {
        return classify(v).into();
    }
    if !n.bit(0) {
        return Verdict::Composite { factor: Some(2) };
    }
    if let Some(p) = small_factor_big(n, groups_for_bits(n.bits())) {
        return Verdict::Composite { factor: Some(p) };
    }
    if !dispatch(n, Bpsw) {
        return Verdict::Composite { factor: None };
    }
    let bases: &[u64] = if *n < psi12() {
        &FIRST_13_PRIMES[1..12]
    } else if *n < psi13() {
        &FIRST_13_PRIMES[1..]
    } else {
        return Verdict::ProbablePrime;
    };
    // Base 2 passed inside BPSW.
    if dispatch(n, Bases(bases)) {
        Verdict::Prime
    } else {
        Verdict::Composite { factor: None }
    }
}

/// [`check`], then `rounds` extra Miller-Rabin rounds with random bases drawn from `rng` when
/// the verdict is [`Verdict::ProbablePrime`].
///
/// ```
/// use primality::{Verdict, check_with_rounds};
/// use num_bigint::BigUint;
/// let m521 = (BigUint::from(1u32) << 521u32) - 1u32;
/// let mut rng = rand::rng();
/// assert_eq!(check_with_rounds(&m521, 8, &mut rng), Verdict::ProbablePrime);
/// ```
pub fn check_with_rounds<R: Rng + ?Sized>(n: &BigUint, rounds: u32, rng: &mut R) -> Verdict {
    check_with_rounds_while(n, rounds, rng, || true).expect("never asked to stop")
}

/// [`check_with_rounds`] that asks `go_on` before each extra round and gives up with `None`
/// as soon as it answers `false`: for a caller whose client went away or whose deadline
/// passed. The test before the rounds (trial division, BPSW) runs whole.
///
/// ```
/// use primality::{Verdict, check_with_rounds_while};
/// use num_bigint::BigUint;
/// let m521 = (BigUint::from(1u32) << 521u32) - 1u32;
/// let mut rng = rand::rng();
/// let mut budget = 3;
/// let stopped = check_with_rounds_while(&m521, 64, &mut rng, || {
///     budget -= 1;
///     budget >= 0
/// });
/// assert_eq!(stopped, None);
/// // A composite found before the rounds is answered whatever `go_on` says.
/// let verdict = check_with_rounds_while(&BigUint::from(91u32), 64, &mut rng, || false);
/// assert_eq!(verdict, Some(Verdict::Composite { factor: Some(7) }));
/// ```
pub fn check_with_rounds_while<R, G>(
    n: &BigUint,
    rounds: u32,
    rng: &mut R,
    go_on: G,
) -> Option<Verdict>
where
    R: Rng + ?Sized,
    G: FnMut() -> bool,
{
    let v = check(n);
    if v != Verdict::ProbablePrime || rounds == 0 {
        return Some(v);
    }
    Some(if dispatch(n, RandomBases { rounds, rng, go_on })? {
        Verdict::ProbablePrime
    } else {
        Verdict::Composite { factor: None }
    })
}

/// Modelled work of [`check_with_rounds`] on a number of `bits` bits with `rounds` extra
/// rounds, in units of about one 64-bit multiply-accumulate.
///
/// A strong probable-prime test of a `b`-bit number is `b` modular squarings of `w` words,
/// each about `w²` word products, so a round costs about `b·w²`; BPSW (a strong test to base 2
/// and a strong Lucas test) costs about [`BPSW_ROUNDS`] rounds. `w` is the width the
/// arithmetic works in: `b / 64` rounded up to 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48
/// or 64 words (a 1,025-bit number is squared in 20 words, not 17), and `b / 64` above 4,096
/// bits. Below about 3.3·10^24 (82 bits) a number that passes BPSW is proven prime with 12 more
/// fixed bases, which count as 12 rounds, in place of the extra random ones (which such a
/// number never needs). The model grows with the cube of the size, as the measured times do
/// (`cargo bench -p primality`: each doubling of the bits from 512 to 4096 multiplies them by
/// 6.6 to 10). Numbers below 2^64 are a constant: they take well under a microsecond.
///
/// ```
/// use primality::work;
/// assert_eq!(work(64, 40), work(1, 0));
/// assert_eq!(work(1024, 0), 1024 * 16 * 16 * 3);
/// assert_eq!(work(1025, 0), 1025 * 20 * 20 * 3);
/// assert_eq!(work(65, 0), 65 * 2 * 2 * (3 + 12));
/// assert!(work(4096, 0) > 60 * work(1024, 0));
/// assert!(work(1024, 40) > 14 * work(1024, 0));
/// ```
#[must_use]
pub fn work(bits: u64, rounds: u32) -> u64 {
    if bits <= 64 {
        return 64;
    }
    let limbs = bits.div_ceil(64);
    let words = crate::big::WIDTHS
        .iter()
        .copied()
        .find(|&width| width >= limbs)
        .unwrap_or(limbs);
    // Below psi13 (82 bits, 2^81.5) the 12 fixed bases; at 82 bits either.
    let rounds = match bits {
        ..=81 => DETERMINISTIC_BASES,
        82 => DETERMINISTIC_BASES.max(u64::from(rounds)),
        _ => u64::from(rounds),
    };
    bits.saturating_mul(words)
        .saturating_mul(words)
        .saturating_mul(BPSW_ROUNDS + rounds)
}

/// The fixed bases after BPSW that prove a number below psi13 prime (at most 12).
const DETERMINISTIC_BASES: u64 = 12;

/// What BPSW costs in strong probable-prime rounds, in [`work`]'s model. Measured: 2.3 to 4
/// times a random-base round from 128 to 4096 bits (`primality::check` against
/// `primality::miller_rabin_40 / 40` in the crate's benchmark).
pub const BPSW_ROUNDS: u64 = 3;

/// Whether `n` is prime ([`check`] says [`Verdict::Prime`] or [`Verdict::ProbablePrime`]).
///
/// ```
/// use num_bigint::BigUint;
/// assert!(primality::is_prime(&((BigUint::from(1u32) << 89u32) - 1u32)));
/// assert!(!primality::is_prime(&BigUint::from(561u32)));
/// ```
#[must_use]
pub fn is_prime(n: &BigUint) -> bool {
    check(n).is_prime()
}

/// The classic Miller-Rabin test: `rounds` strong probable-prime tests to bases drawn
/// uniformly from `[2, n - 2]` with `rng`; `true` means "probably prime".
///
/// This is exactly the random-base test (no trial division, no Lucas test), for callers that
/// want it. A composite passes one round with probability at most 1/4. With `rounds = 0`
/// only `n < 5` and even `n` are decided; every other odd `n` returns `true`.
///
/// ```
/// use num_bigint::BigUint;
/// let mut rng = rand::rng();
/// assert!(primality::miller_rabin(&BigUint::from(1_000_000_007u32), 40, &mut rng));
/// assert!(!primality::miller_rabin(&BigUint::from(1_000_000_011u32), 40, &mut rng));
/// ```
#[must_use]
pub fn miller_rabin<R: Rng + ?Sized>(n: &BigUint, rounds: u32, rng: &mut R) -> bool {
    match n.to_u64() {
        Some(0 | 1 | 4) => return false,
        Some(2 | 3) => return true,
        _ => {}
    }
    if !n.bit(0) {
        return false;
    }
    dispatch(
        n,
        RandomBases {
            rounds,
            rng,
            go_on: || true,
        },
    )
    .expect("never asked to stop")
}

/// The smallest prime (or, above 2^64, BPSW probable prime) greater than `n`.
///
/// ```
/// use num_bigint::BigUint;
/// let n = BigUint::from(u64::MAX);
/// assert_eq!(primality::next_prime(&n), (BigUint::from(1u32) << 64u32) + 13u32);
/// ```
#[must_use]
pub fn next_prime(n: &BigUint) -> BigUint {
    if let Some(p) = n.to_u64().and_then(next_prime_u64) {
        return BigUint::from(p);
    }
    let mut c = if *n < two_pow_64() {
        two_pow_64() + 1u32
    } else if n.bit(0) {
        n + 2u32
    } else {
        n + 1u32
    };
    while !is_prime(&c) {
        c += 2u32;
    }
    c
}

/// The largest prime (or, above 2^64, BPSW probable prime) smaller than `n`, or `None` when
/// `n <= 2`.
///
/// ```
/// use num_bigint::BigUint;
/// let n = (BigUint::from(1u32) << 64u32) + 13u32;
/// assert_eq!(primality::prev_prime(&n), Some(BigUint::from(u64::MAX - 58)));
/// assert_eq!(primality::prev_prime(&BigUint::from(2u32)), None);
/// ```
#[must_use]
pub fn prev_prime(n: &BigUint) -> Option<BigUint> {
    if let Some(v) = n.to_u64() {
        return prev_prime_u64(v).map(BigUint::from);
    }
    if *n <= two_pow_64() {
        return prev_prime_u64(u64::MAX).map(BigUint::from);
    }
    let mut c = if n.bit(0) { n - 2u32 } else { n - 1u32 };
    while c > two_pow_64() {
        if is_prime(&c) {
            return Some(c);
        }
        c -= 2u32;
    }
    prev_prime_u64(u64::MAX).map(BigUint::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn go_on_is_asked_before_each_extra_round_and_stops_them() {
        let m521 = (BigUint::from(1u32) << 521u32) - 1u32;
        let mut rng = StdRng::seed_from_u64(7);
        let mut asked = 0;
        let whole = check_with_rounds_while(&m521, 5, &mut rng, || {
            asked += 1;
            true
        });
        assert_eq!((whole, asked), (Some(Verdict::ProbablePrime), 5));
        let mut asked = 0;
        let stopped = check_with_rounds_while(&m521, 5, &mut rng, || {
            asked += 1;
            asked <= 2
        });
        assert_eq!((stopped, asked), (None, 3));
        // Proven verdicts and zero rounds never ask.
        for n in [BigUint::from(97u32), BigUint::from(91u32)] {
            let verdict = check_with_rounds_while(&n, 5, &mut rng, || panic!("asked"));
            assert_eq!(verdict, Some(check(&n)));
        }
        assert_eq!(
            check_with_rounds_while(&m521, 0, &mut rng, || panic!("asked")),
            Some(Verdict::ProbablePrime)
        );
    }

    #[test]
    fn work_grows_with_the_cube_of_the_size_and_with_the_rounds() {
        assert_eq!(work(0, 0), work(64, 64));
        assert!(work(65, 0) > work(64, 0));
        for bits in [128u64, 512, 1024, 2048] {
            let ratio = work(2 * bits, 0) as f64 / work(bits, 0) as f64;
            assert!((7.9..=8.1).contains(&ratio), "{bits}: {ratio}");
            assert_eq!(work(bits, 3), 2 * work(bits, 0));
        }
        assert!(work(u64::MAX, u32::MAX) == u64::MAX);
    }

    #[test]
    fn verdicts_around_two_pow_64() {
        let two64 = two_pow_64();
        assert_eq!(check(&two64), Verdict::Composite { factor: Some(2) });
        // 2^64 + 1 = 274177 * 67280421310721: no factor below 1024, so BPSW finds it.
        assert_eq!(check(&(&two64 + 1u32)), Verdict::Composite { factor: None });
        assert_eq!(check(&(&two64 + 13u32)), Verdict::Prime);
        // 2^89 - 1 is above psi13: probable prime only.
        let m89 = (BigUint::from(1u32) << 89u32) - 1u32;
        assert_eq!(check(&m89), Verdict::ProbablePrime);
        assert_eq!(check(&BigUint::ZERO), Verdict::Neither);
        assert_eq!(check(&BigUint::from(1u32)), Verdict::Neither);
        assert!(!Verdict::Neither.is_prime());
        assert!(Verdict::ProbablePrime.is_prime() && !Verdict::ProbablePrime.is_certain());
    }

    #[test]
    fn psi_values_are_the_first_composites_passing_the_bases() {
        // They are composite, and strong pseudoprimes to the first 12 / 13 prime bases.
        assert!(!is_prime(&psi12()));
        assert!(!is_prime(&psi13()));
        assert!(dispatch(&psi12(), Bases(&FIRST_13_PRIMES[..12])));
        assert!(dispatch(&psi13(), Bases(&FIRST_13_PRIMES)));
    }

    #[test]
    fn miller_rabin_small_and_even() {
        let mut rng = StdRng::seed_from_u64(1);
        let expect = [
            false, false, true, true, false, true, false, true, false, false,
        ];
        for (n, e) in expect.iter().enumerate() {
            assert_eq!(miller_rabin(&BigUint::from(n), 20, &mut rng), *e, "{n}");
        }
        let m127 = (BigUint::from(1u32) << 127u32) - 1u32;
        assert!(miller_rabin(&m127, 40, &mut rng));
        assert!(!miller_rabin(&(&m127 + 2u32), 40, &mut rng));
        let big = (BigUint::from(1u32) << 4423u32) - 1u32; // Mersenne prime above the fixed widths
        assert!(miller_rabin(&big, 1, &mut rng));
        assert!(!miller_rabin(&(&big - 2u32), 2, &mut rng));
    }

    #[test]
    fn next_and_prev_cross_two_pow_64() {
        let p = next_prime(&BigUint::from(u64::MAX - 58));
        assert_eq!(p, two_pow_64() + 13u32);
        assert_eq!(prev_prime(&p), Some(BigUint::from(u64::MAX - 58)));
        assert_eq!(
            prev_prime(&two_pow_64()),
            Some(BigUint::from(u64::MAX - 58))
        );
        assert_eq!(next_prime(&BigUint::ZERO), BigUint::from(2u32));
        let m127 = (BigUint::from(1u32) << 127u32) - 1u32;
        let next = next_prime(&m127);
        assert!(next > m127 && is_prime(&next));
        assert_eq!(prev_prime(&next), Some(m127));
    }
}
