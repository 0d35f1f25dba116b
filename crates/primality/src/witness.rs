//! The second base of the word-sized test: one strong probable-prime test to a base chosen by
//! a hash of `n`, after the test to base 2.
//!
//! The table is machine-prime's `FERMAT_WITNESS` (version 1.5.7, CC0-1.0, by J. A. Sory, with
//! Wegner's single-shot Miller-Rabin method): 2^18 bases, each chosen by its author so that no
//! base-2 strong pseudoprime below 2^64 whose hash falls in its bucket (Feitsma and Galway's
//! complete list) and no odd composite below 2^47 without a prime factor up to 727 is a strong
//! probable prime to it. That check is theirs; the list is not here. The test
//! `witness_table_is_machine_primes` checks this copy entry by entry, and the tests compare the
//! result with BPSW on samples, among them 10,000 base-2 strong pseudoprimes up to 2^64.

/// The bases, as little-endian `u16`s.
static TABLE: &[u8; 2 << HASH_BITS] = include_bytes!("witnesses.bin");

/// The table has `2^HASH_BITS` entries.
const HASH_BITS: u32 = 18;

/// The multiplier of the hash: the top [`HASH_BITS`] bits of `(n mod 2^32) * MULTIPLIER mod 2^32`.
const MULTIPLIER: u32 = 811_484_239;

/// The base for `n`. Every base is below `2^16`, so it is a nonzero residue of any prime
/// `n > 2^16`.
#[inline]
pub(crate) fn witness(n: u64) -> u64 {
    let i = ((n as u32).wrapping_mul(MULTIPLIER) >> (32 - HASH_BITS)) as usize;
    u64::from(u16::from_le_bytes([TABLE[2 * i], TABLE[2 * i + 1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn witness_table_is_machine_primes() {
        let theirs = &machine_prime::FERMAT_WITNESS;
        assert_eq!(theirs.len(), 1 << HASH_BITS);
        for (i, &base) in theirs.iter().enumerate() {
            let ours = u16::from_le_bytes([TABLE[2 * i], TABLE[2 * i + 1]]);
            assert_eq!(ours, base, "entry {i}");
            assert!(base >= 2, "entry {i}");
        }
        // The hash is theirs too.
        let mut n = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..100_000 {
            n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            assert_eq!(witness(n), machine_prime::witness_selector(n), "{n}");
        }
    }
}
