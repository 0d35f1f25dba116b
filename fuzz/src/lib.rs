//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! Most targets read their input as lines (fields separated by `\n`), so a seed in
//! `corpus/<target>/` is a readable text file that a person can write, and libFuzzer's
//! mutations still reach every byte. A numeric field is its decimal value when it is one, and
//! a hash of its bytes otherwise, so every input means something.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// The fields of one input, read front to back.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    /// Fields of `data`, separated by `\n`.
    #[must_use]
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    /// The next field's bytes (empty once the input is used up).
    pub fn bytes(&mut self) -> &'a [u8] {
        match self.rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let field = &self.rest[..i];
                self.rest = &self.rest[i + 1..];
                field
            }
            None => std::mem::take(&mut self.rest),
        }
    }

    /// The next field as text, `None` when it is not UTF-8.
    pub fn text(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()).ok()
    }

    /// The next field as text, with invalid UTF-8 replaced.
    pub fn lossy(&mut self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }

    /// The next field as a number: its decimal value, or a hash of its bytes.
    pub fn number(&mut self) -> u64 {
        let field = self.bytes();
        let decimal = std::str::from_utf8(field)
            .ok()
            .filter(|text| text.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|text| text.parse::<u64>().ok());
        decimal.unwrap_or_else(|| fnv1a(field))
    }

    /// Whether anything is left.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Everything not read yet, newlines included.
    #[must_use]
    pub fn rest(self) -> &'a [u8] {
        self.rest
    }
}

/// FNV-1a, to turn arbitrary bytes into a number deterministically.
#[must_use]
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs a future that never waits (in-memory stores and caches) to completion.
///
/// # Panics
/// If the future is still pending after one poll: the code under test waited on something,
/// which an in-memory backend must never do.
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("an in-memory future was pending"),
    }
}

/// Whether `value` can be sent as an HTTP field value as this project writes them: printable
/// ASCII (space allowed inside), no leading or trailing space, not empty.
#[must_use]
pub fn is_clean_header_value(value: &str) -> bool {
    !value.is_empty()
        && value.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && !value.starts_with(' ')
        && !value.ends_with(' ')
}
