//! `is_prime_u64` against machine-prime in alternating rounds, for a ratio that a busy or
//! frequency-scaling machine cannot tilt: criterion measures one function for seconds and then
//! the other, so a slow spell lands on one side only.
//!
//! `cargo bench -p primality --bench u64_alternating`
//!
//! Each round times 10 passes of `primality` over the inputs, then 10 of machine-prime; the
//! ratio (machine-prime's time over `primality`'s, above 1 when `primality` is faster) is taken
//! per round, and the median and quartiles over 41 rounds are printed.

use std::hint::black_box;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const INPUTS: usize = 4096;
const ROUNDS: usize = 41;
const PASSES: u32 = 10;

/// Nanoseconds per call of `f`, over `PASSES` passes of `inputs`.
fn time_per_call(inputs: &[u64], f: impl Fn(u64) -> bool) -> f64 {
    let start = Instant::now();
    let mut primes = 0u32;
    for _ in 0..PASSES {
        for &n in inputs {
            primes += u32::from(f(black_box(n)));
        }
    }
    black_box(primes);
    start.elapsed().as_nanos() as f64 / f64::from(PASSES) / inputs.len() as f64
}

fn main() {
    let mut rng = StdRng::seed_from_u64(64);
    let odd: Vec<u64> = (0..INPUTS).map(|_| rng.next_u64() | 1).collect();
    let primes: Vec<u64> = (0..INPUTS)
        .map(|_| primality::prev_prime_u64(rng.next_u64() | (1 << 63)).unwrap_or(u64::MAX - 58))
        .collect();
    for (name, inputs) in [("u64_random_odd", &odd), ("u64_primes", &primes)] {
        let mut ours = Vec::with_capacity(ROUNDS);
        let mut theirs = Vec::with_capacity(ROUNDS);
        let mut ratios = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let a = time_per_call(inputs, primality::is_prime_u64);
            let b = time_per_call(inputs, |n| machine_prime::is_prime(n));
            ours.push(a);
            theirs.push(b);
            ratios.push(b / a);
        }
        for v in [&mut ours, &mut theirs, &mut ratios] {
            v.sort_by(f64::total_cmp);
        }
        let (q1, mid, q3) = (ROUNDS / 4, ROUNDS / 2, 3 * ROUNDS / 4);
        println!(
            "{name}: primality {:.1} ns, machine-prime {:.1} ns (medians); \
             ratio median {:.2}x, quartiles {:.2}x to {:.2}x",
            ours[mid], theirs[mid], ratios[mid], ratios[q1], ratios[q3]
        );
    }
}
