//! An axum hello-world route, bare, behind tower-governor and behind `quota`'s `RateLimit`, in
//! one criterion group: the per-request overhead of each layer is its time minus the bare
//! route's, and the ratio of two overheads is read off one run.
//!
//! Every request comes from one of 1,000 client addresses (`ConnectInfo`, as axum's
//! `into_make_service_with_connect_info` sets it) and is always allowed: the common path of a
//! server under its limits. tower-governor counts per peer IP with GCRA; `quota` counts per peer
//! IP with GCRA, and with the exact calendar-day window it is built for.
//!
//! `cargo bench -p quota --bench http`
#![allow(missing_docs)] // criterion_group! generates undocumented items

use core::num::NonZeroU64;
use std::future::Future;
use std::hint::black_box;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use quota::{MemoryBackend, PeerIp, Policy, RateLimit};
use tower::{Service, ServiceExt};
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;

/// Polls a future that never waits (every store here is in memory) to its end.
fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn peers() -> Vec<SocketAddr> {
    (0..1_000u32)
        .map(|i| SocketAddr::from(([198, 51, (i / 250) as u8, (i % 250) as u8], 40_000)))
        .collect()
}

fn request(peer: SocketAddr) -> Request<Body> {
    let mut request = Request::get("/").body(Body::empty()).unwrap_or_default();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

/// Sends one request from the next peer through `router` and checks it was served.
fn serve(router: &mut Router, peers: &[SocketAddr], i: &mut usize) {
    *i = (*i + 1) % peers.len();
    let response = now(async {
        let ready = ServiceExt::<Request<Body>>::ready(router)
            .await
            .unwrap_or_else(|e| match e {});
        ready
            .call(request(peers[*i]))
            .await
            .unwrap_or_else(|e| match e {})
    });
    assert_eq!(response.status(), 200);
    black_box(response);
}

fn hello() -> Router {
    Router::new().route("/", get(|| async { "hello" }))
}

fn bench(c: &mut Criterion) {
    let peers = peers();
    let huge = NonZeroU64::new(1_000_000_000_000).unwrap_or(NonZeroU64::MIN);
    let mut group = c.benchmark_group("axum_hello_layer");
    group.measurement_time(Duration::from_secs(4));

    let mut bare = hello();
    let mut i = 0;
    group.bench_function("bare", |b| b.iter(|| serve(&mut bare, &peers, &mut i)));

    let governor = GovernorConfigBuilder::default()
        .per_nanosecond(1)
        .burst_size(u32::MAX)
        .finish();
    let mut governed = hello().layer(GovernorLayer::new(
        governor.unwrap_or_else(|| unreachable!()),
    ));
    group.bench_function("tower_governor", |b| {
        b.iter(|| serve(&mut governed, &peers, &mut i));
    });

    let governor_headers = GovernorConfigBuilder::default()
        .per_nanosecond(1)
        .burst_size(u32::MAX)
        .use_headers()
        .finish();
    let mut governed_headers = hello().layer(GovernorLayer::new(
        governor_headers.unwrap_or_else(|| unreachable!()),
    ));
    group.bench_function("tower_governor_headers", |b| {
        b.iter(|| serve(&mut governed_headers, &peers, &mut i));
    });

    let gcra = Policy::gcra(huge, Duration::from_secs(1)).unwrap_or(Policy::per_day(huge));
    let ours_gcra = RateLimit::builder(MemoryBackend::new(gcra), PeerIp::new())
        .name("rate")
        .build();
    let mut limited = hello().layer(ours_gcra.unwrap_or_else(|e| panic!("{e}")));
    group.bench_function("quota_gcra", |b| {
        b.iter(|| serve(&mut limited, &peers, &mut i));
    });

    let ours_day = RateLimit::builder(MemoryBackend::new(Policy::per_day(huge)), PeerIp::new())
        .name("daily")
        .build();
    let mut daily = hello().layer(ours_day.unwrap_or_else(|e| panic!("{e}")));
    group.bench_function("quota_fixed_day", |b| {
        b.iter(|| serve(&mut daily, &peers, &mut i));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
