#![doc = include_str!("../README.md")]
//!
//! # Cargo features
//!
//! None: the crate always builds the same, in pure Rust, with no `unsafe`.

mod algo;
mod arith;
mod big;
mod error;
mod parse;
mod small;
mod verdict;
mod word;

pub use error::{Error, Result};
pub use parse::{Limits, parse_number};
pub use verdict::{
    Verdict, check, check_with_rounds, is_prime, miller_rabin, next_prime, prev_prime,
};
pub use word::{is_prime_u64, next_prime_u64, prev_prime_u64};
