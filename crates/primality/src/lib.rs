#![doc = include_str!("../README.md")]
//!
//! # Cargo features
//!
//! - `witness-table` (default): below 2^64, after trial division, a strong test to base 2 and
//!   one to a base looked up in a 512 KiB table, instead of BPSW (a strong test to base 2 and a
//!   strong Lucas test). Both are exact below 2^64 by checks against Feitsma and Galway's list
//!   of base-2 strong pseudoprimes: BPSW's by several people, the table's by its author (see
//!   the crate README). With the table a 64-bit prime is tested about 2.4 times faster. Turn it
//!   off (`default-features = false`) for BPSW and a 512 KiB smaller binary.
//! - `json`: `JsonNumber`, a number as a JSON request body carries it (a bare integer of any
//!   size, or a string holding one), read under [`Limits`]. Adds `serde` and `serde_json`.
//!
//! Pure Rust, with no `unsafe`, in every configuration.

mod algo;
mod arith;
mod big;
mod error;
#[cfg(feature = "json")]
mod json;
mod parse;
mod small;
mod verdict;
#[cfg(any(test, feature = "witness-table"))]
mod witness;
mod word;

pub use error::{Error, Result};
#[cfg(feature = "json")]
pub use json::JsonNumber;
pub use parse::{Limits, parse_number};
pub use verdict::{
    BPSW_ROUNDS, Verdict, check, check_with_rounds, check_with_rounds_while, is_prime,
    miller_rabin, next_prime, prev_prime, work,
};
pub use word::{is_prime_u64, next_prime_u64, prev_prime_u64};
