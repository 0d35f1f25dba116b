//! Modular arithmetic backends for the probable-prime tests.
//!
//! Every backend keeps residues modulo an odd `n` in its own representation (Montgomery form for
//! the fixed-width ones) and exposes the handful of operations the tests in `algo` need.

// Limb loops index several arrays at shifted positions: indices read better than iterators.
#![allow(clippy::needless_range_loop)]

use num_bigint::BigUint;
use num_traits::{One, Zero};

/// Arithmetic modulo a fixed odd modulus `n > 2`.
pub(crate) trait Arith {
    /// A residue modulo `n`, always fully reduced (so `==` is equality of residues).
    type E: Clone + PartialEq;
    /// The residue 1.
    fn one(&self) -> Self::E;
    /// The residue `n - 1`.
    fn minus_one(&self) -> Self::E;
    /// The residue of a small signed integer.
    fn small(&self, v: i64) -> Self::E;
    /// The residue of `v` (any size; reduced modulo `n` first).
    fn residue(&self, v: &BigUint) -> Self::E;
    /// `a * b mod n`.
    fn mul(&self, a: &Self::E, b: &Self::E) -> Self::E;
    /// `a * a mod n`.
    fn sqr(&self, a: &Self::E) -> Self::E {
        self.mul(a, a)
    }
    /// `a + b mod n`.
    fn add(&self, a: &Self::E, b: &Self::E) -> Self::E;
    /// `a - b mod n`.
    fn sub(&self, a: &Self::E, b: &Self::E) -> Self::E;
    /// `2a mod n`.
    fn dbl(&self, a: &Self::E) -> Self::E {
        self.add(a, a)
    }
    /// Whether `a` is the residue 0.
    fn is_zero(&self, a: &Self::E) -> bool;
    /// `q a mod n` for a small signed `q`, given `mq`, the residue of `q`: additions when
    /// `|q|` is small, else one product.
    fn mul_small(&self, a: &Self::E, q: i64, mq: &Self::E) -> Self::E {
        let m = q.unsigned_abs();
        if m > 32 {
            return self.mul(a, mq);
        }
        // Left-to-right double-and-add over the bits of |q|.
        let mut r = a.clone();
        for i in (0..63 - m.leading_zeros()).rev() {
            r = self.dbl(&r);
            if (m >> i) & 1 == 1 {
                r = self.add(&r, a);
            }
        }
        if q < 0 {
            self.sub(&self.small(0), &r)
        } else {
            r
        }
    }
}

/// `(a + b * c + carry)` split into low and high words; never overflows.
#[inline(always)]
const fn mac(a: u64, b: u64, c: u64, carry: u64) -> (u64, u64) {
    let r = a as u128 + (b as u128) * (c as u128) + carry as u128;
    (r as u64, (r >> 64) as u64)
}

/// `n^-1 mod 2^64` for odd `n` (Newton iteration, 5 correct bits doubling each step).
pub(crate) const fn inv64(n: u64) -> u64 {
    let mut x = n.wrapping_mul(3) ^ 2;
    let mut i = 0;
    while i < 4 {
        x = x.wrapping_mul(2u64.wrapping_sub(n.wrapping_mul(x)));
        i += 1;
    }
    x
}

/// Montgomery arithmetic modulo an odd `n < 2^64`, with `R = 2^64`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mont64 {
    n: u64,
    /// `n^-1 mod 2^64`.
    ninv: u64,
    /// `R mod n`.
    one: u64,
}

impl Mont64 {
    pub(crate) fn new(n: u64) -> Self {
        debug_assert!(n % 2 == 1 && n > 2);
        // n is odd, so it never divides 2^64 and `one < n`.
        let one = (u64::MAX % n) + 1;
        Self {
            n,
            ninv: inv64(n),
            one,
        }
    }

    /// Montgomery reduction of a product `t < n * 2^64`: `t / R mod n`.
    #[inline(always)]
    fn redc(&self, t: u128) -> u64 {
        let m = (t as u64).wrapping_mul(self.ninv);
        let mn = ((u128::from(m) * u128::from(self.n)) >> 64) as u64;
        let (r, borrow) = ((t >> 64) as u64).overflowing_sub(mn);
        if borrow { r.wrapping_add(self.n) } else { r }
    }

    /// `v R mod n`. One 128-bit division: only used to set up constants, never in a loop.
    fn mont_form(&self, v: u64) -> u64 {
        ((u128::from(v) << 64) % u128::from(self.n)) as u64
    }
}

impl Arith for Mont64 {
    type E = u64;
    #[inline(always)]
    fn one(&self) -> u64 {
        self.one
    }
    #[inline(always)]
    fn minus_one(&self) -> u64 {
        self.n - self.one
    }
    fn small(&self, v: i64) -> u64 {
        let m = self.mont_form(v.unsigned_abs());
        if v < 0 && m != 0 { self.n - m } else { m }
    }
    fn residue(&self, v: &BigUint) -> u64 {
        let r = v % self.n;
        self.mont_form(r.iter_u64_digits().next().unwrap_or(0))
    }
    #[inline(always)]
    fn mul(&self, a: &u64, b: &u64) -> u64 {
        self.redc(u128::from(*a) * u128::from(*b))
    }
    #[inline(always)]
    fn add(&self, a: &u64, b: &u64) -> u64 {
        // a, b < n: a + b may exceed 2^64, so compare with n - b instead.
        let t = self.n - b;
        if *a >= t { a - t } else { a + b }
    }
    #[inline(always)]
    fn sub(&self, a: &u64, b: &u64) -> u64 {
        let (r, borrow) = a.overflowing_sub(*b);
        if borrow { r.wrapping_add(self.n) } else { r }
    }
    #[inline(always)]
    fn is_zero(&self, a: &u64) -> bool {
        *a == 0
    }
    /// One product: on one word it costs about what a doubling chain with a branch per bit does.
    #[inline(always)]
    fn mul_small(&self, a: &u64, _q: i64, mq: &u64) -> u64 {
        self.mul(a, mq)
    }
}

/// Montgomery arithmetic modulo an odd `n < 2^(64 N)` on `N` little-endian 64-bit limbs,
/// with `R = 2^(64 N)`.
#[derive(Debug, Clone)]
pub(crate) struct MontN<const N: usize> {
    n: [u64; N],
    /// `n` as a `BigUint`, to reduce inputs of any size.
    big: BigUint,
    /// `-n^-1 mod 2^64`.
    ninv: u64,
    /// `R mod n`.
    one: [u64; N],
    /// `R^2 mod n`.
    r2: [u64; N],
}

/// Copies the little-endian limbs of `v < 2^(64 N)` into an array.
pub(crate) fn limbs<const N: usize>(v: &BigUint) -> [u64; N] {
    let mut out = [0u64; N];
    for (slot, d) in out.iter_mut().zip(v.iter_u64_digits()) {
        *slot = d;
    }
    out
}

/// `a < b` on equal-width limb arrays.
#[inline(always)]
fn less<const N: usize>(a: &[u64; N], b: &[u64; N]) -> bool {
    for i in (0..N).rev() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
    }
    false
}

/// `a -= b`, returning the borrow out.
#[inline(always)]
fn sub_assign<const N: usize>(a: &mut [u64; N], b: &[u64; N]) -> bool {
    let mut borrow = false;
    for i in 0..N {
        let (d, b1) = a[i].overflowing_sub(b[i]);
        let (d, b2) = d.overflowing_sub(u64::from(borrow));
        a[i] = d;
        borrow = b1 | b2;
    }
    borrow
}

/// `a += b`, returning the carry out.
#[inline(always)]
fn add_assign<const N: usize>(a: &mut [u64; N], b: &[u64; N]) -> bool {
    let mut carry = false;
    for i in 0..N {
        let (s, c1) = a[i].overflowing_add(b[i]);
        let (s, c2) = s.overflowing_add(u64::from(carry));
        a[i] = s;
        carry = c1 | c2;
    }
    carry
}

impl<const N: usize> MontN<N> {
    /// Arithmetic modulo `n`, which must be odd, greater than 2 and below `2^(64 N)`.
    pub(crate) fn new(n: &BigUint) -> Self {
        debug_assert!(n.bit(0) && n.bits() <= 64 * N as u64 && n > &BigUint::from(2u32));
        let nl = limbs::<N>(n);
        let r2_big = (BigUint::one() << (128 * N)) % n;
        let mut m = Self {
            n: nl,
            big: n.clone(),
            ninv: inv64(nl[0]).wrapping_neg(),
            one: [0; N],
            r2: limbs::<N>(&r2_big),
        };
        let mut unit = [0u64; N];
        unit[0] = 1;
        // REDC(R^2 * 1) = R mod n.
        m.one = m.mul(&m.r2, &unit);
        m
    }

    /// Montgomery product `a * b / R mod n` (CIOS, reduction fused into the product loop).
    #[inline]
    fn mont_mul(&self, a: &[u64; N], b: &[u64; N]) -> [u64; N] {
        let mut t = [0u64; N];
        let mut t_hi = 0u64;
        for &bi in b.iter() {
            let (u0, mut c1) = mac(t[0], a[0], bi, 0);
            let m = u0.wrapping_mul(self.ninv);
            let (_, mut c2) = mac(u0, m, self.n[0], 0);
            for j in 1..N {
                let (x, c) = mac(t[j], a[j], bi, c1);
                c1 = c;
                let (y, c) = mac(x, m, self.n[j], c2);
                c2 = c;
                t[j - 1] = y;
            }
            let (s, o1) = t_hi.overflowing_add(c1);
            let (s, o2) = s.overflowing_add(c2);
            t[N - 1] = s;
            t_hi = u64::from(o1) + u64::from(o2);
        }
        if t_hi != 0 || !less(&t, &self.n) {
            sub_assign(&mut t, &self.n);
        }
        t
    }

    /// Montgomery square `a^2 / R mod n`: each off-diagonal product is computed once.
    #[inline]
    fn mont_sqr(&self, a: &[u64; N]) -> [u64; N] {
        if N < 4 {
            return self.mont_mul(a, a);
        }
        // The 2N-limb square lives in two halves (stable Rust has no `[u64; 2 * N]`); every
        // loop below is split at the boundary instead of branching per limb.
        let mut lo = [0u64; N];
        let mut hi = [0u64; N];
        // Off-diagonal products a[i] a[j], i < j, at position i + j.
        for i in 0..N - 1 {
            let ai = a[i];
            let split = (N - i).max(i + 1);
            let mut c = 0u64;
            for j in (i + 1)..split {
                let (v, cc) = mac(lo[i + j], ai, a[j], c);
                lo[i + j] = v;
                c = cc;
            }
            for j in split..N {
                let (v, cc) = mac(hi[i + j - N], ai, a[j], c);
                hi[i + j - N] = v;
                c = cc;
            }
            // Position i + N is still zero here.
            hi[i] = c;
        }
        // Double, then add the squares a[i]^2 at position 2i.
        hi[N - 1] = hi[N - 2] >> 63;
        for k in (1..N - 1).rev() {
            hi[k] = (hi[k] << 1) | (hi[k - 1] >> 63);
        }
        hi[0] = (hi[0] << 1) | (lo[N - 1] >> 63);
        for k in (1..N).rev() {
            lo[k] = (lo[k] << 1) | (lo[k - 1] >> 63);
        }
        lo[0] <<= 1;
        let mut c = 0u64;
        for i in 0..N.div_ceil(2) {
            let (x, y) = (2 * i, 2 * i + 1);
            let (v, cc) = mac(lo[x], a[i], a[i], c);
            lo[x] = v;
            let slot = if y < N { &mut lo[y] } else { &mut hi[0] };
            let r = u128::from(*slot) + u128::from(cc);
            *slot = r as u64;
            c = (r >> 64) as u64;
        }
        for i in N.div_ceil(2)..N {
            let (x, y) = (2 * i - N, 2 * i + 1 - N);
            let (v, cc) = mac(hi[x], a[i], a[i], c);
            hi[x] = v;
            let r = u128::from(hi[y]) + u128::from(cc);
            hi[y] = r as u64;
            c = (r >> 64) as u64;
        }
        self.reduce(lo, hi)
    }

    /// Montgomery reduction of the `2N`-limb value `hi * 2^(64N) + lo` (below `n * R`):
    /// `hi + (lo + M n) / R`, with `M < R` the multiple of `n` that clears `lo`.
    ///
    /// `(lo + M n) / R` is formed in an `N`-limb window that shifts down one limb per step, as
    /// the reduction half of [`Self::mont_mul`] does: every inner loop runs exactly `N - 1`
    /// times, and no carry has to ripple into the upper half.
    #[inline]
    fn reduce(&self, lo: [u64; N], hi: [u64; N]) -> [u64; N] {
        // The window is `t + top R`; each step keeps it below `R + n`, so `top` is one bit.
        let mut t = lo;
        let mut top = 0u64;
        for _ in 0..N {
            let m = t[0].wrapping_mul(self.ninv);
            let (_, mut c) = mac(t[0], m, self.n[0], 0);
            for j in 1..N {
                let (v, cc) = mac(t[j], m, self.n[j], c);
                t[j - 1] = v;
                c = cc;
            }
            let (v, o) = c.overflowing_add(top);
            t[N - 1] = v;
            top = u64::from(o);
        }
        // Now `t + top R = (lo + M n) / R <= n`, and `hi < n`: one subtraction at most.
        let carry = add_assign(&mut t, &hi);
        if top != 0 || carry || !less(&t, &self.n) {
            sub_assign(&mut t, &self.n);
        }
        t
    }
}

impl<const N: usize> Arith for MontN<N> {
    type E = [u64; N];
    fn one(&self) -> [u64; N] {
        self.one
    }
    fn minus_one(&self) -> [u64; N] {
        let mut r = self.n;
        sub_assign(&mut r, &self.one);
        r
    }
    fn small(&self, v: i64) -> [u64; N] {
        let mut x = [0u64; N];
        x[0] = v.unsigned_abs();
        if N == 1 || !less(&x, &self.n) {
            return self.residue(&BigUint::from(v.unsigned_abs()));
        }
        let m = self.mont_mul(&x, &self.r2);
        if v < 0 { self.sub(&[0; N], &m) } else { m }
    }
    fn residue(&self, v: &BigUint) -> [u64; N] {
        let r = v % &self.big;
        self.mont_mul(&limbs::<N>(&r), &self.r2)
    }
    #[inline(always)]
    fn mul(&self, a: &[u64; N], b: &[u64; N]) -> [u64; N] {
        self.mont_mul(a, b)
    }
    #[inline(always)]
    fn sqr(&self, a: &[u64; N]) -> [u64; N] {
        self.mont_sqr(a)
    }
    #[inline(always)]
    fn add(&self, a: &[u64; N], b: &[u64; N]) -> [u64; N] {
        let mut r = *a;
        let carry = add_assign(&mut r, b);
        if carry || !less(&r, &self.n) {
            sub_assign(&mut r, &self.n);
        }
        r
    }
    #[inline(always)]
    fn sub(&self, a: &[u64; N], b: &[u64; N]) -> [u64; N] {
        let mut r = *a;
        if sub_assign(&mut r, b) {
            add_assign(&mut r, &self.n);
        }
        r
    }
    #[inline(always)]
    fn is_zero(&self, a: &[u64; N]) -> bool {
        a.iter().all(|&x| x == 0)
    }
}

/// Plain `num-bigint` arithmetic: the fallback for moduli wider than the fixed widths.
#[derive(Debug, Clone)]
pub(crate) struct BigArith {
    n: BigUint,
}

impl BigArith {
    pub(crate) fn new(n: &BigUint) -> Self {
        Self { n: n.clone() }
    }
}

impl Arith for BigArith {
    type E = BigUint;
    fn one(&self) -> BigUint {
        BigUint::one()
    }
    fn minus_one(&self) -> BigUint {
        &self.n - 1u32
    }
    fn small(&self, v: i64) -> BigUint {
        let m = BigUint::from(v.unsigned_abs()) % &self.n;
        if v < 0 && !m.is_zero() {
            &self.n - m
        } else {
            m
        }
    }
    fn residue(&self, v: &BigUint) -> BigUint {
        v % &self.n
    }
    fn mul(&self, a: &BigUint, b: &BigUint) -> BigUint {
        (a * b) % &self.n
    }
    fn add(&self, a: &BigUint, b: &BigUint) -> BigUint {
        let s = a + b;
        if s >= self.n { s - &self.n } else { s }
    }
    fn sub(&self, a: &BigUint, b: &BigUint) -> BigUint {
        if a >= b { a - b } else { &self.n - b + a }
    }
    fn is_zero(&self, a: &BigUint) -> bool {
        a.is_zero()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of little-endian limbs.
    fn to_big(l: &[u64]) -> BigUint {
        let mut bytes = Vec::with_capacity(l.len() * 8);
        for d in l {
            bytes.extend_from_slice(&d.to_le_bytes());
        }
        BigUint::from_bytes_le(&bytes)
    }

    fn check_backend<A: Arith>(ar: &A, n: &BigUint, to: impl Fn(&A::E) -> BigUint) {
        let vals = [
            BigUint::from(0u32),
            BigUint::from(1u32),
            BigUint::from(2u32),
            n - 1u32,
            n - 2u32,
            n >> 1u32,
            (n >> 3u32) * 5u32 % n,
            n * 7u32 / 9u32,
        ];
        for a in &vals {
            for b in &vals {
                let (ea, eb) = (ar.residue(a), ar.residue(b));
                assert_eq!(to(&ar.mul(&ea, &eb)), (a * b) % n, "mul {a} {b} mod {n}");
                assert_eq!(to(&ar.add(&ea, &eb)), (a + b) % n);
                assert_eq!(to(&ar.sub(&ea, &eb)), (a + n - b) % n);
            }
            assert_eq!(to(&ar.sqr(&ar.residue(a))), (a * a) % n, "sqr {a} mod {n}");
        }
        assert_eq!(to(&ar.small(-3)), n - 3u32);
        assert_eq!(to(&ar.minus_one()), n - 1u32);
        assert!(ar.is_zero(&ar.small(0)));
    }

    fn from_mont<const N: usize>(m: &MontN<N>, e: &[u64; N]) -> BigUint {
        let mut unit = [0u64; N];
        unit[0] = 1;
        to_big(&m.mont_mul(e, &unit))
    }

    /// Montgomery product and square against `num-bigint` at one width: `n` is odd, `a, b`
    /// are reduced modulo `n` first.
    fn check_width<const N: usize>(n: &BigUint, a: &BigUint, b: &BigUint) {
        let m = MontN::<N>::new(n);
        let (a, b) = (a % n, b % n);
        let (ea, eb) = (m.residue(&a), m.residue(&b));
        assert_eq!(
            from_mont(&m, &m.mul(&ea, &eb)),
            (&a * &b) % n,
            "{N} limbs: mul"
        );
        assert_eq!(from_mont(&m, &m.sqr(&ea)), (&a * &a) % n, "{N} limbs: sqr");
        assert_eq!(m.sqr(&ea), m.mul(&ea, &ea), "{N} limbs: sqr == mul");
    }

    /// An odd modulus of exactly `64 N` bits from `limbs` (the top bit set, so the reduction's
    /// window can carry out of `N` limbs), or `n - 2^(64 N - 1)` when `short`.
    fn modulus(limbs: &[u64], width: usize, short: bool) -> BigUint {
        let mut n = to_big(&limbs[..width]) | BigUint::one();
        n.set_bit(64 * width as u64 - 1, !short);
        if n <= BigUint::from(2u32) {
            BigUint::from(3u32)
        } else {
            n
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn montgomery_arithmetic_agrees_with_bigint_at_every_width(
            nl in proptest::collection::vec(proptest::prelude::any::<u64>(), 64),
            al in proptest::collection::vec(proptest::prelude::any::<u64>(), 64),
            bl in proptest::collection::vec(proptest::prelude::any::<u64>(), 64),
            short in proptest::prelude::any::<bool>(),
        ) {
            let (a, b) = (to_big(&al), to_big(&bl));
            check_width::<2>(&modulus(&nl, 2, short), &a, &b);
            check_width::<4>(&modulus(&nl, 4, short), &a, &b);
            check_width::<5>(&modulus(&nl, 5, short), &a, &b);
            check_width::<8>(&modulus(&nl, 8, short), &a, &b);
            check_width::<16>(&modulus(&nl, 16, short), &a, &b);
            check_width::<32>(&modulus(&nl, 32, short), &a, &b);
            check_width::<64>(&modulus(&nl, 64, short), &a, &b);
        }
    }

    /// All-ones limbs everywhere: `n = R - 1` style moduli and operands `n - 1`, 0, 1.
    #[test]
    fn montgomery_edge_values() {
        fn edges<const N: usize>() {
            let r = BigUint::one() << (64 * N);
            for n in [
                &r - 1u32,
                &r - 3u32,
                (&r >> 1u32) + 1u32,
                &r - (BigUint::one() << 64u32) + 1u32,
            ] {
                let all_ones = &r - 1u32;
                for a in [
                    BigUint::ZERO,
                    BigUint::one(),
                    &n - 1u32,
                    &n - 2u32,
                    all_ones.clone(),
                ] {
                    for b in [BigUint::ZERO, BigUint::one(), &n - 1u32, all_ones.clone()] {
                        check_width::<N>(&n, &a, &b);
                    }
                }
            }
        }
        edges::<2>();
        edges::<4>();
        edges::<6>();
        edges::<8>();
        edges::<16>();
        edges::<32>();
        edges::<64>();
    }

    #[test]
    fn backends_agree_with_bigint_arithmetic() {
        let moduli = [
            BigUint::from(u64::MAX),
            BigUint::from(1_000_003u32),
            (BigUint::one() << 127u32) - 1u32,
            (BigUint::one() << 255u32) + 95u32,
            (BigUint::one() << 256u32) - 189u32,
            (BigUint::one() << 300u32) - 1u32,
            (BigUint::one() << 511u32) + 187u32,
        ];
        for n in &moduli {
            let ar = BigArith::new(n);
            check_backend(&ar, n, Clone::clone);
            if n.bits() <= 64 {
                let m = Mont64::new(n.iter_u64_digits().next().unwrap());
                check_backend(&m, n, |e| BigUint::from(m.redc(u128::from(*e))));
            }
            if n.bits() <= 128 {
                let m = MontN::<2>::new(n);
                check_backend(&m, n, |e| from_mont(&m, e));
            }
            if n.bits() <= 256 {
                let m = MontN::<4>::new(n);
                check_backend(&m, n, |e| from_mont(&m, e));
            }
            if n.bits() <= 320 {
                let m = MontN::<5>::new(n);
                check_backend(&m, n, |e| from_mont(&m, e));
            }
            let m = MontN::<8>::new(n);
            check_backend(&m, n, |e| from_mont(&m, e));
        }
    }
}
