//! Probable-prime tests on `BigUint`, dispatched to fixed-width Montgomery arithmetic.

use num_bigint::BigUint;
use num_traits::One;
use rand_core::Rng;

use crate::algo::{pow, pow2, selfridge, strong_lucas, strong_tail};
use crate::arith::{Arith, BigArith, Mont64, MontN};

/// A computation to run with the arithmetic best suited to a modulus.
pub(crate) trait Job {
    /// What it returns.
    type Out;
    /// Runs with `ar`, arithmetic modulo `n`.
    fn run<A: Arith>(self, ar: &A, n: &BigUint) -> Self::Out;
}

/// The fixed widths, in 64-bit words, that [`dispatch`] runs a modulus in: the narrowest that
/// holds it. The same list as the one `dispatch` expands (a test checks they agree).
pub(crate) const WIDTHS: [u64; 15] = [2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64];

/// Runs `job` modulo odd `n > 2` with the narrowest fixed width that holds `n` (up to 4096
/// bits), or with plain `num-bigint` arithmetic above that.
pub(crate) fn dispatch<J: Job>(n: &BigUint, job: J) -> J::Out {
    macro_rules! widths {
        ($limbs:expr; $($w:literal)*) => {
            match $limbs {
                0..=1 => {
                    let v = n.iter_u64_digits().next().unwrap_or(0);
                    job.run(&Mont64::new(v), n)
                }
                $(l if l <= $w => job.run(&MontN::<$w>::new(n), n),)*
                _ => job.run(&BigArith::new(n), n),
            }
        };
    }
    widths!(n.bits().div_ceil(64); 2 3 4 5 6 8 10 12 16 20 24 32 40 48 64)
}

/// `(d, s)` with `m = d 2^s`, `d` odd, as little-endian limbs (`m > 0`).
fn split(m: &BigUint) -> (Vec<u64>, u32) {
    let s = m.trailing_zeros().unwrap_or(0);
    ((m >> s).to_u64_digits(), s as u32)
}

/// The Baillie-PSW test of an odd `n > 2^64` without small factors.
pub(crate) struct Bpsw;

impl Job for Bpsw {
    type Out = bool;
    fn run<A: Arith>(self, ar: &A, n: &BigUint) -> bool {
        let (d, s) = split(&(n - 1u32));
        if !strong_tail(ar, pow2(ar, &d), s) {
            return false;
        }
        let n_mod = |a: u64| (n % a).iter_u64_digits().next().unwrap_or(0);
        let is_square = || {
            let r = n.sqrt();
            &r * &r == *n
        };
        let Ok(dd) = selfridge(n_mod, n_mod(4), is_square) else {
            return false;
        };
        let (d, s) = split(&(n + 1u32));
        strong_lucas(ar, (1 - dd) / 4, &d, s)
    }
}

/// Strong probable-prime tests to each of the given bases (each below `n`).
pub(crate) struct Bases<'a>(pub(crate) &'a [u64]);

impl Job for Bases<'_> {
    type Out = bool;
    fn run<A: Arith>(self, ar: &A, n: &BigUint) -> bool {
        let (d, s) = split(&(n - 1u32));
        self.0.iter().all(|&b| {
            let base = ar.residue(&BigUint::from(b));
            strong_tail(ar, pow(ar, &base, &d), s)
        })
    }
}

/// `rounds` strong probable-prime tests to random bases in `[2, n - 2]` (`n >= 5`), asking
/// `go_on` before each: `None` when it said stop, else whether every round passed.
pub(crate) struct RandomBases<'a, R: ?Sized, G> {
    pub(crate) rounds: u32,
    pub(crate) rng: &'a mut R,
    pub(crate) go_on: G,
}

impl<R: Rng + ?Sized, G: FnMut() -> bool> Job for RandomBases<'_, R, G> {
    type Out = Option<bool>;
    fn run<A: Arith>(mut self, ar: &A, n: &BigUint) -> Option<bool> {
        let (d, s) = split(&(n - 1u32));
        let span = n - 4u32; // bases are 2 + [0, span]
        for _ in 0..self.rounds {
            if !(self.go_on)() {
                return None;
            }
            let base = BigUint::from(2u32) + uniform_up_to(&span, self.rng);
            if !strong_tail(ar, pow(ar, &ar.residue(&base), &d), s) {
                return Some(false);
            }
        }
        Some(true)
    }
}

/// A uniform random integer in `[0, max]`, by rejection sampling.
pub(crate) fn uniform_up_to<R: Rng + ?Sized>(max: &BigUint, rng: &mut R) -> BigUint {
    let bits = max.bits();
    if bits == 0 {
        return BigUint::ZERO;
    }
    let words = bits.div_ceil(64) as usize;
    let top_mask = if bits % 64 == 0 {
        u64::MAX
    } else {
        (1u64 << (bits % 64)) - 1
    };
    loop {
        let mut bytes = Vec::with_capacity(words * 8);
        for i in 0..words {
            let mut w = rng.next_u64();
            if i + 1 == words {
                w &= top_mask;
            }
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        let v = BigUint::from_bytes_le(&bytes);
        if &v <= max {
            return v;
        }
    }
}

/// The smallest number that is a strong pseudoprime to each of the first 12 prime bases
/// (OEIS A014233(12), Sorenson and Webster 2015): below it, those 12 bases decide primality.
pub(crate) fn psi12() -> BigUint {
    // 318665857834031151167461
    BigUint::from(318_665_857_834_031_151_167_461u128)
}

/// Same for the first 13 prime bases (A014233(13)).
pub(crate) fn psi13() -> BigUint {
    BigUint::from(3_317_044_064_679_887_385_961_981u128)
}

/// The first 13 primes.
pub(crate) const FIRST_13_PRIMES: [u64; 13] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41];

/// `2^64`.
pub(crate) fn two_pow_64() -> BigUint {
    BigUint::one() << 64u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The width of the residues a job is run with, in words.
    struct Width;

    impl Job for Width {
        type Out = usize;
        fn run<A: Arith>(self, _: &A, _: &BigUint) -> usize {
            size_of::<A::E>() / 8
        }
    }

    #[test]
    fn the_widths_listed_are_the_widths_dispatched() {
        for limbs in 2..=64_u64 {
            let n = (BigUint::one() << (64 * limbs - 1)) + 1u32;
            let listed = WIDTHS.iter().copied().find(|&w| w >= limbs).unwrap();
            assert_eq!(dispatch(&n, Width) as u64, listed, "{limbs} limbs");
        }
    }
}
