//! The probable-prime tests, written once over any [`Arith`] backend.

use crate::arith::Arith;

/// Number of significant bits of little-endian limbs.
fn bit_len(e: &[u64]) -> u64 {
    for i in (0..e.len()).rev() {
        if e[i] != 0 {
            return 64 * i as u64 + u64::from(64 - e[i].leading_zeros());
        }
    }
    0
}

#[inline(always)]
fn bit(e: &[u64], i: u64) -> bool {
    (e[(i / 64) as usize] >> (i % 64)) & 1 == 1
}

/// `base^e` with a fixed window of 4 to 6 bits, wider for longer exponents.
pub(crate) fn pow<A: Arith>(ar: &A, base: &A::E, e: &[u64]) -> A::E {
    let len = bit_len(e);
    if len == 0 {
        return ar.one();
    }
    let w: u64 = match len {
        0..=256 => 4,
        257..=1024 => 5,
        _ => 6,
    };
    let size = 1usize << w;
    let mut table = Vec::with_capacity(size);
    table.push(ar.one());
    table.push(base.clone());
    for i in 2..size {
        let next = ar.mul(&table[i - 1], base);
        table.push(next);
    }
    // Window k covers bits [k w, k w + w) of the exponent.
    let window = |k: u64| {
        let mut v = 0usize;
        for b in (k * w..(k * w + w).min(len)).rev() {
            v = (v << 1) | usize::from(bit(e, b));
        }
        v
    };
    let windows = len.div_ceil(w);
    let mut x = table[window(windows - 1)].clone();
    for k in (0..windows - 1).rev() {
        for _ in 0..w {
            x = ar.sqr(&x);
        }
        let v = window(k);
        if v != 0 {
            x = ar.mul(&x, &table[v]);
        }
    }
    x
}

/// `2^e`: squarings and modular doublings only, no general multiplication.
pub(crate) fn pow2<A: Arith>(ar: &A, e: &[u64]) -> A::E {
    let len = bit_len(e);
    if len == 0 {
        return ar.one();
    }
    let mut x = ar.dbl(&ar.one());
    for i in (0..len - 1).rev() {
        x = ar.sqr(&x);
        if bit(e, i) {
            x = ar.dbl(&x);
        }
    }
    x
}

/// The end of a strong probable-prime test: given `x = a^d` where `n - 1 = d 2^s`, whether `n`
/// is a strong probable prime to base `a`.
pub(crate) fn strong_tail<A: Arith>(ar: &A, mut x: A::E, s: u32) -> bool {
    let minus_one = ar.minus_one();
    if x == ar.one() || x == minus_one {
        return true;
    }
    for _ in 1..s {
        x = ar.sqr(&x);
        if x == minus_one {
            return true;
        }
        if x == ar.one() {
            return false;
        }
    }
    false
}

/// Strong Lucas probable-prime test with Selfridge parameters `P = 1`, `Q = (1 - D) / 4`,
/// where `Jacobi(D / n) = -1` and `n + 1 = d 2^s`.
///
/// Only the `V` sequence is computed (a ladder over `V_k, V_{k+1}` and `Q^k`, see
/// [`ladder_products`]). `U_d ≡ 0` is checked through the identity
/// `D U_d = 2 V_{d+1} - P V_d`: `D` is invertible modulo `n` because its Jacobi symbol is `-1`.
pub(crate) fn strong_lucas<A: Arith>(ar: &A, q: i64, d: &[u64], s: u32) -> bool {
    let (vd, vd1, qk) = ladder_products(ar, q, d);
    lucas_tail(ar, vd, &vd1, qk, s)
}

/// The end of the strong Lucas test, given `V_d`, `V_{d+1}` and `Q^d` where `n + 1 = d 2^s`.
fn lucas_tail<A: Arith>(ar: &A, vd: A::E, vd1: &A::E, mut qk: A::E, s: u32) -> bool {
    // U_d ≡ 0 (mod n) ⇔ 2 V_{d+1} ≡ V_d.
    if ar.dbl(vd1) == vd {
        return true;
    }
    // V_{d 2^r} ≡ 0 for some 0 <= r < s.
    let mut v = vd;
    for r in 0..s {
        if ar.is_zero(&v) {
            return true;
        }
        if r + 1 < s {
            v = ar.sub(&ar.sqr(&v), &ar.dbl(&qk));
            qk = ar.sqr(&qk);
        }
    }
    false
}

/// `(V_d, V_{d+1}, Q^d)` for `P = 1` and the given `Q`, by one product and one squaring of the
/// `V`s per bit of `d` (`V_{2k+1} = V_k V_{k+1} - P Q^k`, `V_{2k} = V_k^2 - 2 Q^k`), plus the
/// update of `Q^k`.
///
/// A ladder of squarings only (`V_{2k+2} = V_{k+1}^2 - 2 Q^{k+1}`, then `V_{2k+1}` from the
/// recurrence, three squarings per bit) was measured too: with this crate's squaring, which
/// saves only a few percent over a product, it ran more instructions at every width.
fn ladder_products<A: Arith>(ar: &A, q: i64, d: &[u64]) -> (A::E, A::E, A::E) {
    let one = ar.one();
    let mq = ar.small(q);
    let mut vk = ar.small(2);
    let mut vk1 = one.clone();
    let mut qk = one.clone();
    let len = bit_len(d);
    if q == -1 {
        // Q^k is ±1: track its sign only.
        let minus_one = ar.minus_one();
        let mut neg = false;
        for i in (0..len).rev() {
            // P Q^k = Q^k, and -2 Q^k is ±2.
            let qkv = if neg { &minus_one } else { &one };
            let two_qk = ar.dbl(qkv);
            if bit(d, i) {
                // Q^{k+1} = -Q^k.
                vk = ar.sub(&ar.mul(&vk, &vk1), qkv);
                vk1 = ar.add(&ar.sqr(&vk1), &two_qk);
                neg = true; // Q^{2k+1} = (Q^k)^2 Q = -1
            } else {
                vk1 = ar.sub(&ar.mul(&vk, &vk1), qkv);
                vk = ar.sub(&ar.sqr(&vk), &two_qk);
                neg = false; // Q^{2k} = 1
            }
        }
        qk = if neg { minus_one } else { one };
    } else {
        for i in (0..len).rev() {
            if bit(d, i) {
                vk = ar.sub(&ar.mul(&vk, &vk1), &qk);
                let qk1 = ar.mul_small(&qk, q, &mq);
                vk1 = ar.sub(&ar.sqr(&vk1), &ar.dbl(&qk1));
                qk = ar.mul(&qk, &qk1);
            } else {
                vk1 = ar.sub(&ar.mul(&vk, &vk1), &qk);
                vk = ar.sub(&ar.sqr(&vk), &ar.dbl(&qk));
                qk = ar.sqr(&qk);
            }
        }
    }
    (vk, vk1, qk)
}

/// Jacobi symbol `(a / m)` for odd `m > 0`.
pub(crate) fn jacobi(mut a: u64, mut m: u64) -> i32 {
    debug_assert!(m % 2 == 1);
    a %= m;
    let mut t = 1;
    while a != 0 {
        let z = a.trailing_zeros();
        a >>= z;
        if z % 2 == 1 && (m % 8 == 3 || m % 8 == 5) {
            t = -t;
        }
        if a % 4 == 3 && m % 4 == 3 {
            t = -t;
        }
        core::mem::swap(&mut a, &mut m);
        a %= m;
    }
    if m == 1 { t } else { 0 }
}

/// Why Selfridge's parameter search stopped without a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoParameter {
    /// `n` is composite: it shares a factor with some `D`, or it is a perfect square.
    Composite,
}

/// Selfridge's method A: the first `D` in 5, -7, 9, -11, … with `Jacobi(D / n) = -1`.
///
/// `n_mod(a)` returns `n mod a`, `n_mod4` is `n mod 4`, and `is_square` is asked once, after a
/// few candidates failed (a square never yields `-1`). `n` must be odd and above `2^12`: every
/// candidate tried is then below `n` (non-squares find a parameter within a few dozen steps),
/// so a candidate sharing a factor with `n` proves `n` composite.
pub(crate) fn selfridge(
    n_mod: impl Fn(u64) -> u64,
    n_mod4: u64,
    is_square: impl FnOnce() -> bool,
) -> Result<i64, NoParameter> {
    let mut is_square = Some(is_square);
    let mut a = 5u64;
    let mut negative = false;
    let mut tries = 0u32;
    loop {
        // (±a / n) = (-1/n)^[neg] (a/n), and (a/n) = (n mod a / a) (-1)^((a-1)/2 (n-1)/2).
        let mut j = jacobi(n_mod(a), a);
        if a % 4 == 3 && n_mod4 == 3 {
            j = -j;
        }
        if negative && n_mod4 == 3 {
            j = -j;
        }
        if j == -1 {
            let d = a as i64;
            return Ok(if negative { -d } else { d });
        }
        if j == 0 {
            return Err(NoParameter::Composite);
        }
        tries += 1;
        if tries == 8 {
            if let Some(sq) = is_square.take() {
                if sq() {
                    return Err(NoParameter::Composite);
                }
            }
        }
        a += 2;
        negative = !negative;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arith::MontN;
    use num_bigint::BigUint;

    #[test]
    fn pow_matches_modpow_for_every_window_width() {
        let n = (BigUint::from(1u32) << 2203u32) - 1u32;
        let ar = MontN::<40>::new(&n);
        let mut one = [0u64; 40];
        one[0] = 1;
        let base = BigUint::from(0x1234_5678_9abc_def1u64) << 1000u32;
        let exponents = [1u32, 5, 64, 255, 256, 257, 1000, 1024, 1025, 2202]
            .into_iter()
            .flat_map(|bits| {
                let top = BigUint::from(1u32) << bits;
                [&top - 1u32, top + bits]
            });
        for e in exponents {
            let bits = e.bits();
            let got = ar.mul(&pow(&ar, &ar.residue(&base), &e.to_u64_digits()), &one);
            let got = BigUint::from_slice(
                &got.iter()
                    .flat_map(|d| [*d as u32, (*d >> 32) as u32])
                    .collect::<Vec<_>>(),
            );
            assert_eq!(got, base.modpow(&e, &n), "exponent of {bits} bits");
        }
    }

    #[test]
    fn jacobi_matches_euler_criterion_for_primes() {
        for p in [3u64, 5, 7, 11, 13, 101, 65_537] {
            for a in 0..p.min(200) {
                let e = (0..(p - 1) / 2).fold(1u64, |acc, _| acc * a % p);
                let expect = if a % p == 0 {
                    0
                } else if e == 1 {
                    1
                } else {
                    -1
                };
                assert_eq!(jacobi(a, p), expect, "({a}/{p})");
            }
        }
        assert_eq!(jacobi(2, 15), 1);
        assert_eq!(jacobi(7, 15), -1);
        assert_eq!(jacobi(5, 15), 0);
    }
}
