//! Tests the numbers given on the command line (decimal, or hexadecimal after `0x`) and prints
//! one verdict per number.
//!
//! ```text
//! cargo run -p secure-api-examples --bin check-prime -- 97 561 0xffffffffffffffc5 -3
//! ```

use std::process::ExitCode;

use primality::{Limits, Verdict};

fn main() -> ExitCode {
    let limits = Limits::default();
    let mut status = ExitCode::SUCCESS;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprintln!("usage: check-prime NUMBER...");
        return ExitCode::from(2);
    }
    for arg in args {
        match limits.parse(&arg).and_then(|n| limits.check(&n)) {
            Ok(verdict) => println!("{arg}: {}", describe(verdict)),
            Err(e) => {
                println!("{arg}: error: {e}");
                status = ExitCode::from(1);
            }
        }
    }
    status
}

fn describe(v: Verdict) -> String {
    match v {
        Verdict::Prime => "prime".to_owned(),
        Verdict::ProbablePrime => "probable prime (passed BPSW)".to_owned(),
        Verdict::Composite { factor: Some(p) } => format!("composite (divisible by {p})"),
        Verdict::Composite { factor: None } => "composite".to_owned(),
        Verdict::Neither => "neither prime nor composite".to_owned(),
    }
}
