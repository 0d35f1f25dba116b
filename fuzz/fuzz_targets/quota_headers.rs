//! `quota`: decisions from a `MemoryBackend` on a `FakeClock`, and the headers they render
//! (`headers`, `ietf_headers`, `x_ratelimit_headers`, `retry_after_header`).
//!
//! Input, one field per line: the policy (0 to 3: a fixed minute, hour, day or month; 4 and
//! above: GCRA), its limit, the GCRA period in nanoseconds, the GCRA burst (0: none), the start
//! time in nanoseconds, the policy name shown in the headers, an override limit for key `b`
//! (0: none); then calls, three lines each: cost, nanoseconds to advance the clock first, key
//! (`a`, `b` or `c`).
//!
//! Properties:
//! - every rendered value is a valid HTTP field value (printable ASCII, no surrounding space),
//!   the names come in the documented order, and each number in them parses back to the
//!   decision's own figure (limit, window, remaining, reset, reset time, `Retry-After`), capped
//!   at 15 digits in `RateLimit-Policy` and `RateLimit` (Structured Field Integers); the
//!   policy name reads back as the name with unprintable characters replaced;
//! - a decision is consistent: `remaining <= limit`, a call costing more than the limit is
//!   `CostExceedsLimit`, `Retry-After` comes with `Limited` and only with it;
//! - the backend never grants more than its limit: within one calendar window the granted
//!   cost is at most the limit; under GCRA, between any two granted calls the granted cost
//!   is at most `burst + elapsed / emission interval`;
//! - after `Retry-After` (restored from a snapshot onto a clock that far ahead) the same call
//!   is granted.
#![no_main]

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::time::Duration;

use actix_web::http::header::HeaderValue;
use libfuzzer_sys::fuzz_target;
use quota::{Clock, Decision, FakeClock, MemoryBackend, Policy, Status, Window};
use secure_api_fuzz::{Fields, is_clean_header_value};

const MAX_CALLS: usize = 256;
/// Clock values stay below 2^62 ns (the year 2116): saturation at the end of `u64`
/// nanoseconds (the year 2554) is not what this target is about.
const MAX_START: u64 = 1 << 62;
const MAX_STEP: u64 = 40 * 86_400 * 1_000_000_000;

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// `n` as a Structured Field Integer carries it: at most 15 digits.
fn sf(n: u64) -> u64 {
    n.min(999_999_999_999_999)
}

/// Reads a Structured Field String at the start of `value`; returns it and the rest.
fn sf_string(value: &str) -> (String, &str) {
    let mut chars = value.char_indices();
    assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{value}");
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                let (_, escaped) = chars.next().expect("an escape is followed by a character");
                assert!(escaped == '"' || escaped == '\\', "bad escape in {value}");
                out.push(escaped);
            }
            '"' => return (out, &value[i + 1..]),
            ' '..='~' => out.push(c),
            _ => panic!("unprintable character in {value:?}"),
        }
    }
    panic!("unterminated string in {value}");
}

/// `;a=1;b=2` with the expected parameter names, as numbers.
fn params<const N: usize>(rest: &str, names: [&str; N]) -> [u64; N] {
    let parts: Vec<&str> = rest
        .strip_prefix(';')
        .expect("parameters")
        .split(';')
        .collect();
    assert_eq!(parts.len(), N, "{rest}");
    let mut out = [0; N];
    for (i, (part, name)) in parts.iter().zip(names).enumerate() {
        let (key, number) = part.split_once('=').expect("name=value");
        assert_eq!(key, name);
        out[i] = number
            .parse()
            .unwrap_or_else(|_| panic!("{number} is not a number"));
    }
    out
}

fn check_headers(d: &Decision, name: &str, cost: u64) {
    assert!(d.remaining() <= d.limit(), "{d:?}");
    assert_eq!(
        cost > d.limit(),
        d.status() == Status::CostExceedsLimit,
        "{d:?}"
    );
    assert_eq!(d.is_allowed(), d.status() == Status::Allowed);
    // A lifetime balance never renews: no window, no reset, no retry.
    let never = d.reset() == quota::NEVER;
    assert_eq!(never, d.window() == quota::NEVER);
    assert_eq!(
        d.retry_after().is_some(),
        d.status() == Status::Limited && !never
    );

    let shown_name: String = name
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '_' })
        .collect();
    let headers = d.headers(name);
    let mut expected_names = vec![
        "RateLimit-Policy",
        "RateLimit",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
    ];
    if !never {
        expected_names.push("X-RateLimit-Reset");
    }
    if d.status() == Status::Limited && !never {
        expected_names.push("Retry-After");
    }
    let names: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, expected_names);
    for (header, value) in &headers {
        assert!(is_clean_header_value(value), "{header}: {value:?}");
        assert!(HeaderValue::from_str(value).is_ok(), "{header}: {value:?}");
        let number = || value.parse::<u64>().expect("a number");
        match *header {
            "RateLimit-Policy" => {
                let (read, rest) = sf_string(value);
                assert_eq!(read, shown_name);
                if never {
                    assert_eq!(params(rest, ["q"]), [sf(d.limit())]);
                } else {
                    let [q, w] = params(rest, ["q", "w"]);
                    assert_eq!((q, w), (sf(d.limit()), sf(ceil_secs(d.window()))));
                }
            }
            "RateLimit" => {
                let (read, rest) = sf_string(value);
                assert_eq!(read, shown_name);
                if never {
                    assert_eq!(params(rest, ["r"]), [sf(d.remaining())]);
                } else {
                    let [r, t] = params(rest, ["r", "t"]);
                    assert_eq!((r, t), (sf(d.remaining()), sf(ceil_secs(d.reset()))));
                }
            }
            "X-RateLimit-Limit" => assert_eq!(number(), d.limit()),
            "X-RateLimit-Remaining" => assert_eq!(number(), d.remaining()),
            "X-RateLimit-Reset" => assert_eq!(number(), d.reset_at_unix_secs()),
            "Retry-After" => {
                assert_eq!(number(), ceil_secs(d.retry_after().expect("limited")));
            }
            other => panic!("unexpected header {other}"),
        }
    }
    // The parts are the whole.
    let mut parts = d.ietf_headers(name);
    parts.extend(d.x_ratelimit_headers());
    parts.extend(d.retry_after_header());
    assert_eq!(parts, headers);
}

fn policy(fields: &mut Fields<'_>) -> Option<Policy> {
    let kind = fields.number();
    let limit = NonZeroU64::new(fields.number().max(1))?;
    let period = fields.number();
    let burst = fields.number();
    let window = match kind {
        0 => Window::Minute,
        1 => Window::Hour,
        2 => Window::Day,
        3 => Window::Month,
        4 => Window::Lifetime,
        _ => {
            let policy = Policy::gcra(limit, Duration::from_nanos(period)).ok()?;
            return match NonZeroU64::new(burst) {
                Some(burst) => policy.with_burst(burst).ok(),
                None => Some(policy),
            };
        }
    };
    Some(Policy::fixed(window, limit))
}

fuzz_target!(|data: &[u8]| {
    let mut fields = Fields::new(data);
    let Some(policy) = policy(&mut fields) else {
        return;
    };
    let start = fields.number() % MAX_START;
    let name = fields.lossy();
    let override_limit = NonZeroU64::new(fields.number());

    let clock = FakeClock::at_unix_nanos(start);
    let backend = MemoryBackend::builder(policy)
        .clock(clock.clone())
        .build()
        .expect("default bounds are valid");
    let mut effective: HashMap<&str, Policy> = ["a", "b", "c"].map(|k| (k, policy)).into();
    if let Some(limit) = override_limit {
        if backend.set_override("b", Some(limit)).is_ok() {
            effective.insert(
                "b",
                policy.with_limit(limit).expect("accepted by the backend"),
            );
        } else {
            assert!(policy.with_limit(limit).is_err());
        }
    }

    // Granted cost per (key, window start) for fixed windows; granted calls per key for GCRA.
    let mut per_window: HashMap<(&str, u64), u64> = HashMap::new();
    let mut granted: HashMap<&str, Vec<(u64, u64)>> = HashMap::new();
    let mut calls = 0;
    while !fields.is_empty() && calls < MAX_CALLS {
        calls += 1;
        let cost = fields.number() % 1_000_000;
        let step = fields.number() % MAX_STEP;
        let key = ["a", "b", "c"][(fields.number() % 3) as usize];
        clock.advance(Duration::from_nanos(step));
        let now = clock.now_nanos();
        let decision = backend.decide(key, cost).expect("short keys");
        let policy = effective[key];
        assert_eq!(decision.limit(), policy.limit());
        check_headers(&decision, &name, cost);
        if decision.status() == Status::Allowed {
            match policy.window() {
                Some(window) => {
                    let (window_start, _) = window.bounds(now / 1_000_000_000);
                    let used = per_window.entry((key, window_start)).or_default();
                    *used += cost;
                    assert!(
                        *used <= policy.limit(),
                        "{used} granted in one window: {policy:?}"
                    );
                }
                None => {
                    let emission = policy.emission_interval().expect("GCRA").as_nanos();
                    let tau = emission * u128::from(policy.limit());
                    let calls = granted.entry(key).or_default();
                    calls.push((now, cost));
                    let mut total = 0u128;
                    for &(at, cost) in calls.iter().rev() {
                        total += u128::from(cost);
                        let elapsed = u128::from(now - at);
                        assert!(
                            total * emission <= elapsed + tau,
                            "{total} granted in {elapsed} ns: {policy:?}"
                        );
                    }
                }
            }
        }
        if let Some(wait) = decision.retry_after() {
            // The same call, `wait` later, on a copy of the backend's state.
            let later = FakeClock::at_unix_nanos(now);
            later.advance(wait);
            let copy = MemoryBackend::builder(backend.policy())
                .clock(later)
                .build()
                .expect("default bounds");
            copy.restore(&backend.snapshot()).expect("same policy");
            let retried = copy.decide(key, cost).expect("short keys");
            assert_eq!(
                retried.status(),
                Status::Allowed,
                "{wait:?} after {decision:?}"
            );
        }
    }
});
