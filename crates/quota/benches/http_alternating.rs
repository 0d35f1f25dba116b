//! The per-request overhead of `quota`'s `RateLimit` against tower-governor's, in alternating
//! rounds: each round times the bare axum route and every layer back to back, so that a slow
//! spell of a shared machine lands on all of them, and the ratio of overheads is taken per
//! round. Prints each variant's median time, the median per-round overhead ratio and its
//! quartiles.
//!
//! `cargo bench -p quota --bench http_alternating` (`ROUNDS` and `PER_ROUND` to change the
//! defaults, 41 rounds of 20,000 requests).
#![allow(missing_docs)]

use core::num::NonZeroU64;
use std::future::Future;
use std::hint::black_box;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::routing::get;
use quota::{MemoryBackend, PeerIp, Policy, RateLimit};
use tower::{Service, ServiceExt};
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;

fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn hello() -> Router {
    Router::new().route("/", get(|| async { "hello" }))
}

/// Nanoseconds per request over `count` requests from 1,000 rotating peers.
fn time(router: &mut Router, peers: &[SocketAddr], count: usize) -> f64 {
    let start = Instant::now();
    for i in 0..count {
        let mut request = Request::get("/").body(Body::empty()).unwrap_or_default();
        request
            .extensions_mut()
            .insert(ConnectInfo(peers[i % peers.len()]));
        let response = now(async {
            let ready = ServiceExt::<Request<Body>>::ready(&mut *router)
                .await
                .unwrap_or_else(|e| match e {});
            ready.call(request).await.unwrap_or_else(|e| match e {})
        });
        assert_eq!(response.status(), 200);
        black_box(response);
    }
    start.elapsed().as_nanos() as f64 / count as f64
}

fn quartiles(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.25), at(0.5), at(0.75))
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing and expects
    // a quick run.
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds = if quick { 1 } else { env("ROUNDS", 41) };
    let per_round = if quick { 100 } else { env("PER_ROUND", 20_000) };
    let peers: Vec<SocketAddr> = (0..1_000u32)
        .map(|i| SocketAddr::from(([198, 51, (i / 250) as u8, (i % 250) as u8], 40_000)))
        .collect();
    let huge = NonZeroU64::new(1_000_000_000_000).unwrap_or(NonZeroU64::MIN);
    let governor = || {
        let config = GovernorConfigBuilder::default()
            .per_nanosecond(1)
            .burst_size(u32::MAX)
            .finish();
        hello().layer(GovernorLayer::new(config.unwrap_or_else(|| unreachable!())))
    };
    let governor_headers = || {
        let config = GovernorConfigBuilder::default()
            .per_nanosecond(1)
            .burst_size(u32::MAX)
            .use_headers()
            .finish();
        hello().layer(GovernorLayer::new(config.unwrap_or_else(|| unreachable!())))
    };
    let ours = |policy: Policy, name: &str, headers: bool| {
        let limit = RateLimit::builder(MemoryBackend::new(policy), PeerIp::new())
            .name(name)
            .allowed_headers(headers)
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        hello().layer(limit)
    };
    let gcra = Policy::gcra(huge, Duration::from_secs(1)).unwrap_or(Policy::per_day(huge));
    let mut variants: Vec<(&str, Router)> = vec![
        ("bare", hello()),
        ("tower_governor", governor()),
        ("tower_governor_headers", governor_headers()),
        ("quota_gcra", ours(gcra, "rate", true)),
        (
            "quota_fixed_day",
            ours(Policy::per_day(huge), "daily", true),
        ),
        ("quota_gcra_no_headers", ours(gcra, "rate", false)),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for _ in 0..rounds {
        for (i, (_, router)) in variants.iter_mut().enumerate() {
            times[i].push(time(router, &peers, per_round));
        }
    }
    println!("{rounds} rounds of {per_round} requests from 1,000 peers; ns per request");
    for (i, (name, _)) in variants.iter().enumerate() {
        let (q1, median, q3) = quartiles(times[i].clone());
        println!("{name:>24}: median {median:7.1}  (quartiles {q1:.1} .. {q3:.1})");
    }
    let overhead = |i: usize, round: usize| times[i][round] - times[0][round];
    // Like for like: fields on both sides, and none on either.
    for (ours, theirs) in [(3, 2), (4, 2), (5, 1)] {
        let ratios: Vec<f64> = (0..rounds)
            .map(|r| overhead(ours, r) / overhead(theirs, r))
            .collect();
        let (q1, median, q3) = quartiles(ratios);
        println!(
            "overhead {} / {}: median {median:.2}x (quartiles {q1:.2} .. {q3:.2})",
            variants[ours].0, variants[theirs].0
        );
    }
}
