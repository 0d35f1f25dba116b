//! The fallback backend: a failing primary goes to the local backend, or to the fail mode;
//! the caller's own errors are never hidden.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Fault, Flaky, n};
use quota::{Backend, Error, FailMode, FakeClock, FallbackBackend, MemoryBackend, Policy, Status};

fn clock() -> FakeClock {
    FakeClock::at_unix_secs(1_767_225_600)
}

fn memory(policy: Policy, clock: &FakeClock) -> MemoryBackend<FakeClock> {
    MemoryBackend::builder(policy)
        .clock(clock.clone())
        .build()
        .expect("valid")
}

#[tokio::test]
async fn an_outage_goes_to_the_local_backend_and_back() {
    let clock = clock();
    let daily = Policy::per_day(n(3));
    let outages = Arc::new(AtomicUsize::new(0));
    let seen = outages.clone();
    let quota = FallbackBackend::builder(Flaky::new(daily, &clock))
        .local(memory(daily, &clock))
        .on_outage(move |e| {
            assert!(matches!(e, Error::Unavailable { .. } | Error::Store { .. }));
            seen.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .expect("same policy");
    assert!(quota.decide("k", 2).await.expect("up").is_allowed());

    for fault in [Fault::Unavailable, Fault::Store] {
        quota.primary().set(fault);
        // The local backend counts on its own, and enforces its own limit.
        let local = quota.local().expect("set");
        local.reset("k").expect("reset");
        for _ in 0..3 {
            assert_eq!(
                quota.decide("k", 1).await.expect("local").status(),
                Status::Allowed
            );
        }
        assert_eq!(
            quota.decide("k", 1).await.expect("local").status(),
            Status::Limited
        );
    }
    assert_eq!(outages.load(Ordering::SeqCst), 8);

    quota.primary().set(Fault::None);
    let back = quota.decide("k", 1).await.expect("up");
    assert_eq!((back.status(), back.remaining()), (Status::Allowed, 0));
    assert_eq!(quota.usage("k").await.expect("up").used, 3);
}

#[tokio::test]
async fn without_a_local_backend_the_fail_mode_decides() {
    let clock = clock();
    let daily = Policy::per_day(n(3));
    for (mode, expected) in [
        (FailMode::Open, Some(Status::FailedOpen)),
        (FailMode::Closed, Some(Status::FailedClosed)),
        (FailMode::Error, None),
    ] {
        let quota = FallbackBackend::builder(Flaky::new(daily, &clock))
            .fail_mode(mode)
            .build()
            .expect("ok");
        for fault in [Fault::Unavailable, Fault::Store] {
            quota.primary().set(fault);
            let got = quota.decide_with_limit("k", 1, n(10)).await;
            match expected {
                Some(status) => {
                    let d = got.expect("degraded");
                    assert_eq!((d.status(), d.limit()), (status, 10));
                    assert_eq!(d.is_allowed(), mode == FailMode::Open);
                }
                None => assert!(matches!(
                    got,
                    Err(Error::Unavailable { .. } | Error::Store { .. })
                )),
            }
        }
    }
}

#[tokio::test]
async fn the_callers_errors_and_a_mismatched_local_are_not_outages() {
    let clock = clock();
    let daily = Policy::per_day(n(3));
    let quota = FallbackBackend::builder(Flaky::new(daily, &clock))
        .local(memory(daily, &clock))
        .on_outage(|_| panic!("not an outage"))
        .build()
        .expect("ok");
    let long = "k".repeat(1_000);
    assert!(matches!(
        quota.decide(&long, 1).await,
        Err(Error::KeyTooLong { .. })
    ));

    let hourly = MemoryBackend::new(Policy::per_hour(n(3)));
    let mismatched = FallbackBackend::builder(Flaky::new(daily, &clock))
        .local(hourly)
        .build();
    assert!(matches!(mismatched, Err(Error::InvalidConfig(_))));
}

#[tokio::test]
async fn a_per_call_limit_reaches_both_backends() {
    let clock = clock();
    let daily = Policy::per_day(n(3));
    let quota = FallbackBackend::builder(Flaky::new(daily, &clock))
        .local(memory(daily, &clock))
        .build()
        .expect("ok");
    for _ in 0..10 {
        assert!(
            quota
                .decide_with_limit("vip", 1, n(10))
                .await
                .expect("ok")
                .is_allowed()
        );
    }
    assert!(
        !quota
            .decide_with_limit("vip", 1, n(10))
            .await
            .expect("ok")
            .is_allowed()
    );
    quota.primary().set(Fault::Unavailable);
    let local = quota
        .decide_with_limit("vip", 5, n(10))
        .await
        .expect("local");
    assert_eq!(
        (local.status(), local.limit(), local.remaining()),
        (Status::Allowed, 10, 5)
    );
}

/// A refund goes back to the backend that counted the call, whichever answers at refund time.
#[tokio::test]
async fn a_refund_goes_to_the_backend_that_counted_the_call() {
    let clock = clock();
    let daily = Policy::per_day(n(3));
    let quota = FallbackBackend::builder(Flaky::new(daily, &clock))
        .local(memory(daily, &clock))
        .build()
        .expect("same policy");
    assert!(quota.decide("k", 2).await.expect("up").is_allowed());

    // Granted by the local backend during an outage, refunded once the primary is back: the
    // primary never counted it and keeps its 2, the local backend gives its 1 back.
    quota.primary().set(Fault::Unavailable);
    let local = quota.decide("k", 1).await.expect("local");
    assert!(local.is_allowed());
    quota.primary().set(Fault::None);
    quota.refund("k", 1, &local).await.expect("refunded");
    assert_eq!(quota.usage("k").await.expect("up").used, 2);
    assert_eq!(quota.local().expect("set").usage("k").expect("ok").used, 0);

    // Granted by the primary, refunded while it is away: the local backend, which never counted
    // it, is left alone, and the caller learns that the unit stays counted.
    let primary = quota.decide("k", 1).await.expect("up");
    let other = quota.local().expect("set").decide("k", 1).expect("ok");
    assert!(other.is_allowed());
    quota.primary().set(Fault::Unavailable);
    assert!(matches!(
        quota.refund("k", 1, &primary).await,
        Err(Error::Unavailable { .. })
    ));
    assert_eq!(quota.local().expect("set").usage("k").expect("ok").used, 1);
    quota.primary().set(Fault::None);
    assert_eq!(quota.usage("k").await.expect("up").used, 3);
    quota.refund("k", 1, &primary).await.expect("refunded");
    assert_eq!(quota.usage("k").await.expect("up").used, 2);
}

/// With a fallback inside a fallback, each layer sends the refund to the backend that counted.
#[tokio::test]
async fn nested_fallbacks_refund_where_they_counted() {
    let clock = clock();
    let daily = Policy::per_day(n(5));
    let inner = FallbackBackend::builder(Flaky::new(daily, &clock))
        .local(memory(daily, &clock))
        .build()
        .expect("same policy");
    let outer = FallbackBackend::builder(inner)
        .local(memory(daily, &clock))
        .build()
        .expect("same policy");
    // The inner primary is away: the inner local backend counts, and gets the refund.
    outer.primary().primary().set(Fault::Unavailable);
    let granted = outer.decide("k", 2).await.expect("inner local");
    outer.primary().primary().set(Fault::None);
    let inner_local = outer.primary().local().expect("set");
    assert_eq!(inner_local.usage("k").expect("ok").used, 2);
    outer.refund("k", 2, &granted).await.expect("refunded");
    assert_eq!(inner_local.usage("k").expect("ok").used, 0);
    assert_eq!(outer.local().expect("set").usage("k").expect("ok").used, 0);
    assert_eq!(outer.usage("k").await.expect("up").used, 0);
}

/// An override set through the fallback holds on the local backend too, so that a key held
/// below the default keeps its own limit while the primary is away.
#[tokio::test]
async fn an_override_holds_during_an_outage() {
    let clock = clock();
    let daily = Policy::per_day(n(1_000));
    let quota = FallbackBackend::builder(Flaky::new(daily, &clock))
        .local(memory(daily, &clock))
        .build()
        .expect("same policy");
    quota
        .set_override("tenant", Some(n(10)))
        .await
        .expect("set");
    quota.primary().set(Fault::Unavailable);
    for _ in 0..10 {
        assert!(quota.decide("tenant", 1).await.expect("local").is_allowed());
    }
    let over = quota.decide("tenant", 1).await.expect("local");
    assert_eq!((over.status(), over.limit()), (Status::Limited, 10));
    quota.primary().set(Fault::None);
    quota.set_override("tenant", None).await.expect("removed");
    assert_eq!(
        quota
            .local()
            .expect("set")
            .limit_override("tenant")
            .expect("ok"),
        None
    );
}
