//! Agreement with num-prime, configured for BPSW (its default configuration is not safe above
//! 2^64), on generated u64, u128 and 64-to-2048-bit inputs.

use num_bigint::BigUint;
use num_prime::PrimalityTestConfig;
use primality::{check, is_prime, is_prime_u64, next_prime};
use proptest::prelude::*;

fn num_prime_bpsw(n: &BigUint) -> bool {
    let n04 = num_bigint_04::BigUint::from_bytes_le(&n.to_bytes_le());
    num_prime::nt_funcs::is_prime(&n04, Some(PrimalityTestConfig::bpsw())).probably()
}

/// A number of exactly `bits` bits from random bytes.
fn sized(bytes: &[u8], bits: u64) -> BigUint {
    let mut n = BigUint::from_bytes_le(bytes) >> (bytes.len() as u64 * 8 - bits);
    n.set_bit(bits - 1, true);
    n
}

proptest! {
    #[test]
    fn u64_agrees_with_num_prime(n in any::<u64>()) {
        prop_assert_eq!(is_prime_u64(n), num_prime::nt_funcs::is_prime64(n));
        prop_assert_eq!(is_prime(&BigUint::from(n)), is_prime_u64(n));
    }

    #[test]
    fn u64_near_primes_agree_with_machine_prime(n in any::<u64>()) {
        // Odd inputs just above a prime-rich region: next_prime_u64 lands on primes often.
        // machine-prime shares the witness table with the default build, so this is no check
        // of the table; the num-prime comparisons above are independent of it.
        let p = primality::next_prime_u64(n >> 1).unwrap();
        prop_assert!(machine_prime::is_prime(p));
        prop_assert_eq!(is_prime_u64(n | 1), machine_prime::is_prime(n | 1));
    }

    #[test]
    fn u128_agrees_with_num_prime(n in any::<u128>()) {
        let config = Some(PrimalityTestConfig::bpsw());
        let expect = num_prime::nt_funcs::is_prime(&n, config).probably();
        prop_assert_eq!(is_prime(&BigUint::from(n)), expect);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn big_numbers_agree_with_num_prime(
        bytes in proptest::collection::vec(any::<u8>(), 256),
        bits in 64u64..=2048,
    ) {
        let n = sized(&bytes, bits);
        prop_assert_eq!(is_prime(&n), num_prime_bpsw(&n));
        // Odd numbers survive trial division more often; test those too.
        let odd = &n | BigUint::from(1u32);
        prop_assert_eq!(is_prime(&odd), num_prime_bpsw(&odd));
    }

    #[test]
    fn next_prime_finds_what_num_prime_calls_prime(
        bytes in proptest::collection::vec(any::<u8>(), 64),
        bits in 64u64..=512,
    ) {
        let n = sized(&bytes, bits);
        let p = next_prime(&n);
        prop_assert!(p > n);
        prop_assert!(num_prime_bpsw(&p));
        prop_assert!(check(&p).is_prime());
    }

    #[test]
    fn products_of_two_primes_are_composite(
        a in proptest::collection::vec(any::<u8>(), 64),
        b in proptest::collection::vec(any::<u8>(), 64),
        bits in 33u64..=512,
    ) {
        let p = next_prime(&sized(&a, bits));
        let q = next_prime(&sized(&b, bits));
        let n = &p * &q;
        prop_assert!(!is_prime(&n));
        prop_assert!(!num_prime_bpsw(&n));
    }
}
