//! The in-memory backend: exactness under threads, calendar edges, admin operations, snapshots.

mod common;

use core::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use quota::{Backend, Error, FakeClock, MemoryBackend, Policy, Snapshot, Status, Window};

fn n(v: u64) -> NonZeroU64 {
    NonZeroU64::new(v).expect("non-zero")
}

/// 2025-12-31T23:59:59Z
const NEW_YEAR_EVE_LAST_SECOND: u64 = 1_767_225_599;

fn backend(policy: Policy, clock: &FakeClock) -> MemoryBackend<FakeClock> {
    MemoryBackend::builder(policy)
        .clock(clock.clone())
        .build()
        .expect("valid builder")
}

fn hammer(limiter: &Arc<MemoryBackend<FakeClock>>) -> u64 {
    let grants = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let limiter = Arc::clone(limiter);
            let grants = Arc::clone(&grants);
            std::thread::spawn(move || {
                for _ in 0..500 {
                    if limiter
                        .decide("one-key", 1)
                        .expect("short key")
                        .is_allowed()
                    {
                        grants.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    grants.load(Ordering::Relaxed)
}

#[test]
fn eight_threads_get_exactly_the_fixed_window_limit() {
    let clock = FakeClock::at_unix_secs(NEW_YEAR_EVE_LAST_SECOND - 3_600);
    let limiter = Arc::new(backend(Policy::per_day(n(1_000)), &clock));
    assert_eq!(hammer(&limiter), 1_000);
    assert_eq!(limiter.usage("one-key").expect("usage").used, 1_000);
}

#[test]
fn eight_threads_get_exactly_the_gcra_burst() {
    let clock = FakeClock::at_unix_secs(NEW_YEAR_EVE_LAST_SECOND);
    let policy = Policy::gcra(n(1_000), Duration::from_secs(60)).expect("valid");
    let limiter = Arc::new(backend(policy, &clock));
    assert_eq!(hammer(&limiter), 1_000);
}

#[test]
fn the_last_call_of_a_day_and_the_first_of_the_next() {
    let clock = FakeClock::at_unix_secs(NEW_YEAR_EVE_LAST_SECOND);
    clock.advance(Duration::from_millis(999)); // 23:59:59.999
    let limiter = backend(Policy::per_day(n(2)), &clock);
    assert!(limiter.decide("k", 1).expect("ok").is_allowed());
    let last = limiter.decide("k", 1).expect("ok");
    assert!(last.is_allowed());
    assert_eq!(last.remaining(), 0);
    assert_eq!(last.reset(), Duration::from_millis(1));
    assert_eq!(last.reset_at_unix_secs(), NEW_YEAR_EVE_LAST_SECOND + 1);
    let denied = limiter.decide("k", 1).expect("ok");
    assert_eq!(denied.status(), Status::Limited);
    assert_eq!(denied.retry_after(), Some(Duration::from_millis(1)));
    assert_eq!(
        denied.retry_after_header(),
        Some(("Retry-After", "1".to_owned()))
    );

    clock.advance(Duration::from_millis(1)); // 2026-01-01T00:00:00Z
    let first = limiter.decide("k", 1).expect("ok");
    assert!(first.is_allowed());
    assert_eq!(first.remaining(), 1);
    assert_eq!(first.reset(), Duration::from_secs(86_400));
}

#[test]
fn month_windows_have_the_calendar_lengths() {
    // (a second inside the month, its length in days)
    let months = [
        (1_704_067_200, 31), // 2024-01-01
        (1_706_745_600, 29), // 2024-02-01, leap year
        (1_675_209_600, 28), // 2023-02-01
        (951_782_400, 29),   // 2000-02-29, leap (divisible by 400)
        (4_105_123_200, 28), // 2100-02-01, not leap (divisible by 100)
        (1_711_929_600, 30), // 2024-04-01
        (1_733_011_200, 31), // 2024-12-01, ends at the new year
    ];
    for (t, days) in months {
        let (start, end) = Window::Month.bounds(t + 1_000);
        assert_eq!(end - start, days * 86_400, "month containing {t}");
        assert!(start <= t && t < end);
        assert_eq!(
            Window::Month.bounds(end),
            (end, Window::Month.bounds(end).1)
        );
    }
    assert_eq!(Window::Month.bounds(1_733_011_200).1, 1_735_689_600); // 2025-01-01

    let clock = FakeClock::at_unix_secs(1_706_745_600 + 28 * 86_400 + 86_399); // 2024-02-29T23:59:59
    let limiter = backend(Policy::per_month(n(1)), &clock);
    assert!(limiter.decide("k", 1).expect("ok").is_allowed());
    let denied = limiter.decide("k", 1).expect("ok");
    assert_eq!(denied.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(denied.window(), Duration::from_secs(29 * 86_400));
    clock.advance(Duration::from_secs(1)); // 2024-03-01
    assert!(limiter.decide("k", 1).expect("ok").is_allowed());
}

#[test]
fn gcra_retry_after_is_exact() {
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let policy = Policy::gcra(n(5), Duration::from_secs(60)).expect("valid");
    let limiter = backend(policy, &clock);
    for left in (0..5).rev() {
        let d = limiter.decide("ip", 1).expect("ok");
        assert!(d.is_allowed());
        assert_eq!(d.remaining(), left);
    }
    let denied = limiter.decide("ip", 1).expect("ok");
    assert_eq!(denied.status(), Status::Limited);
    assert_eq!(denied.retry_after(), Some(Duration::from_secs(12)));
    assert_eq!(denied.reset(), Duration::from_secs(60));

    clock.advance(Duration::from_secs(12) - Duration::from_nanos(1));
    let almost = limiter.decide("ip", 1).expect("ok");
    assert_eq!(almost.retry_after(), Some(Duration::from_nanos(1)));
    clock.advance(Duration::from_nanos(1));
    assert!(limiter.decide("ip", 1).expect("ok").is_allowed());

    // A cost of 3 needs three emission intervals.
    clock.advance(Duration::from_secs(24));
    let d = limiter.decide("ip", 3).expect("ok");
    assert_eq!(d.status(), Status::Limited);
    assert_eq!(d.retry_after(), Some(Duration::from_secs(12)));
}

#[test]
fn a_cost_above_the_limit_is_denied_without_a_retry_time() {
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    for policy in [
        Policy::per_hour(n(10)),
        Policy::gcra(n(10), Duration::from_secs(60)).expect("valid"),
    ] {
        let limiter = backend(policy, &clock);
        let d = limiter.decide("k", 11).expect("ok");
        assert_eq!(d.status(), Status::CostExceedsLimit);
        assert!(!d.is_allowed());
        assert_eq!(d.retry_after(), None);
        let d = limiter.decide("k", u64::MAX).expect("ok");
        assert_eq!(d.status(), Status::CostExceedsLimit);
        assert_eq!(limiter.decide("k", 10).expect("ok").remaining(), 0);
        assert_eq!(limiter.decide("k", 0).expect("ok").remaining(), 0);
    }
}

#[test]
fn cost_counts_and_zero_cost_counts_nothing() {
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let limiter = backend(Policy::per_minute(n(10)), &clock);
    assert_eq!(limiter.decide("k", 7).expect("ok").remaining(), 3);
    assert_eq!(limiter.decide("k", 0).expect("ok").remaining(), 3);
    assert_eq!(
        limiter.decide("k", 4).expect("ok").status(),
        Status::Limited
    );
    assert_eq!(limiter.decide("k", 3).expect("ok").remaining(), 0);
    assert_eq!(limiter.decide("unseen", 0).expect("ok").remaining(), 10);
    assert_eq!(
        limiter.len(),
        1,
        "zero-cost calls and denials store nothing"
    );
}

#[test]
fn admin_usage_reset_and_override() {
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let limiter = backend(Policy::per_day(n(5)), &clock);
    for _ in 0..3 {
        assert!(limiter.decide("k", 1).expect("ok").is_allowed());
    }
    let usage = limiter.usage("k").expect("ok");
    assert_eq!((usage.limit, usage.used, usage.remaining), (5, 3, 2));

    limiter.reset("k").expect("ok");
    assert_eq!(limiter.usage("k").expect("ok").used, 0);

    limiter.set_override("k", Some(n(100))).expect("ok");
    assert_eq!(limiter.limit_override("k").expect("ok"), Some(n(100)));
    for _ in 0..100 {
        assert!(limiter.decide("k", 1).expect("ok").is_allowed());
    }
    assert_eq!(limiter.decide("k", 1).expect("ok").limit(), 100);
    assert!(!limiter.decide("k", 1).expect("ok").is_allowed());
    assert_eq!(limiter.decide("other", 1).expect("ok").limit(), 5);

    limiter.set_override("k", None).expect("ok");
    assert_eq!(limiter.limit_override("k").expect("ok"), None);
    let d = limiter.decide("k", 1).expect("ok");
    assert_eq!(
        (d.limit(), d.remaining(), d.status()),
        (5, 0, Status::Limited)
    );
}

#[test]
fn gcra_override_sets_rate_and_burst() {
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let policy = Policy::gcra(n(5), Duration::from_secs(60)).expect("valid");
    let limiter = backend(policy, &clock);
    limiter.set_override("vip", Some(n(60))).expect("ok");
    for _ in 0..60 {
        assert!(limiter.decide("vip", 1).expect("ok").is_allowed());
    }
    let denied = limiter.decide("vip", 1).expect("ok");
    assert_eq!(denied.retry_after(), Some(Duration::from_secs(1)));
    assert!(limiter.set_override("vip", Some(n(u64::MAX))).is_err());
}

#[test]
fn long_keys_are_refused() {
    let limiter = MemoryBackend::builder(Policy::per_day(n(5)))
        .max_key_len(8)
        .build()
        .expect("valid");
    let err = limiter.decide("123456789", 1).expect_err("too long");
    assert!(matches!(err, Error::KeyTooLong { len: 9, max: 8 }));
    assert!(
        !err.to_string().contains("123456789"),
        "errors never show a key"
    );
    assert!(limiter.decide("12345678", 1).is_ok());
}

#[test]
fn builder_rejects_zero_bounds() {
    let p = Policy::per_day(n(5));
    assert!(MemoryBackend::builder(p).max_keys(0).build().is_err());
    assert!(MemoryBackend::builder(p).shards(0).build().is_err());
    assert!(MemoryBackend::builder(p).max_key_len(0).build().is_err());
}

#[test]
fn a_small_backend_holds_max_keys_live_keys_without_evicting_one() {
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let limiter = MemoryBackend::builder(Policy::per_day(n(5)))
        .clock(clock.clone())
        .max_keys(100)
        .build()
        .expect("valid");
    for round in 1..=2u64 {
        for i in 0..100 {
            let decision = limiter.decide(&format!("key-{i}"), 1).expect("ok");
            assert_eq!(decision.remaining(), 5 - round, "key-{i} forgot its count");
        }
    }
    assert_eq!(limiter.len(), 100);
}

#[test]
fn memory_stays_bounded_and_expired_keys_go_first() {
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let limiter = MemoryBackend::builder(Policy::per_minute(n(5)))
        .clock(clock.clone())
        .shards(1)
        .max_keys(64)
        .build()
        .expect("valid");
    for i in 0..64 {
        assert!(
            limiter
                .decide(&format!("old-{i}"), 1)
                .expect("ok")
                .is_allowed()
        );
    }
    assert_eq!(limiter.len(), 64);
    // A minute later the old keys hold nothing; 10,000 new keys never exceed the bound.
    clock.advance(Duration::from_secs(60));
    assert!(limiter.decide("live", 3).expect("ok").is_allowed());
    assert_eq!(limiter.len(), 1, "the sweep dropped every expired key");
    for i in 0..10_000 {
        let _ = limiter.decide(&format!("new-{i}"), 1).expect("ok");
        assert!(limiter.len() <= 64);
    }
    clock.advance(Duration::from_secs(60));
    assert_eq!(limiter.purge_expired(), 64);
    assert!(limiter.is_empty());
}

#[test]
fn snapshot_round_trips_and_counting_continues() {
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let before = backend(Policy::per_day(n(10)), &clock);
    for _ in 0..4 {
        assert!(before.decide("a", 1).expect("ok").is_allowed());
    }
    assert!(before.decide("b", 10).expect("ok").is_allowed());
    before.set_override("c", Some(n(2))).expect("ok");

    let json = serde_json::to_string(&before.snapshot()).expect("serialize");
    let snapshot: Snapshot = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(snapshot.len(), 2);
    assert_eq!(snapshot.overrides(), 1);
    assert_eq!(
        format!("{snapshot:?}"),
        "Snapshot { entries: 2, overrides: 1 }"
    );
    let mut windows: Vec<_> = snapshot.fixed_windows().collect();
    windows.sort_unstable();
    let day_start = 1_700_000_000 / 86_400 * 86_400;
    assert_eq!(windows, [("a", day_start, 4), ("b", day_start, 10)]);

    // A restart an hour later, same day.
    clock.advance(Duration::from_secs(3_600));
    let after = backend(Policy::per_day(n(10)), &clock);
    assert_eq!(after.restore(&snapshot).expect("restore"), 2);
    assert_eq!(after.decide("a", 1).expect("ok").remaining(), 5);
    assert_eq!(after.decide("b", 1).expect("ok").status(), Status::Limited);
    assert_eq!(after.decide("c", 1).expect("ok").limit(), 2);

    // A restore on the next day restores nothing: the day is over.
    clock.advance(Duration::from_secs(86_400));
    let next_day = backend(Policy::per_day(n(10)), &clock);
    assert_eq!(next_day.restore(&snapshot).expect("restore"), 0);
    // A GCRA backend ignores fixed-window entries.
    let gcra = backend(
        Policy::gcra(n(10), Duration::from_secs(60)).expect("valid"),
        &clock,
    );
    assert_eq!(gcra.restore(&snapshot).expect("restore"), 0);
}

#[test]
fn gcra_snapshot_keeps_the_bucket_level() {
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let policy = Policy::gcra(n(5), Duration::from_secs(60)).expect("valid");
    let before = backend(policy, &clock);
    for _ in 0..5 {
        assert!(before.decide("ip", 1).expect("ok").is_allowed());
    }
    let snapshot = before.snapshot();
    let after = backend(policy, &clock);
    assert_eq!(after.restore(&snapshot).expect("restore"), 1);
    assert_eq!(
        after.decide("ip", 1).expect("ok").retry_after(),
        Some(Duration::from_secs(12))
    );
}

#[test]
fn the_async_trait_gives_the_same_answers() {
    async fn spend<B: Backend>(backend: &B) -> quota::Result<u64> {
        let d = backend.decide("k", 2).await?;
        backend
            .set_override("k", Some(NonZeroU64::MIN.saturating_add(9)))
            .await?;
        let usage = backend.usage("k").await?;
        backend.reset("k").await?;
        Ok(d.remaining() * 100 + usage.limit)
    }
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let limiter = backend(Policy::per_day(n(5)), &clock);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    assert_eq!(runtime.block_on(spend(&limiter)).expect("ok"), 310);
    assert_eq!(limiter.usage("k").expect("ok").used, 0);
}

#[tokio::test]
async fn per_call_policies_refunds_and_lifetimes_in_memory() {
    let clock = FakeClock::at_unix_secs(1_767_225_000);
    common::per_call_policies_refunds_and_lifetimes(&clock, |policy, _| {
        let backend = backend(policy, &clock);
        async move { backend }
    })
    .await;
}

#[tokio::test]
async fn refunds_give_back_no_more_than_was_charged_in_memory() {
    let clock = FakeClock::at_unix_secs(1_767_225_000);
    common::refunds_give_back_no_more_than_was_charged(&clock, |policy, _| {
        let backend = backend(policy, &clock);
        async move { backend }
    })
    .await;
}

/// `NonZeroU64::MAX` is a natural "unlimited": a count that would pass `u64::MAX` is refused,
/// never a panic (debug) or a count wrapped to a small number (release).
#[test]
fn a_count_past_u64_max_is_refused_not_wrapped() {
    let clock = FakeClock::at_unix_secs(NEW_YEAR_EVE_LAST_SECOND);
    let limiter = backend(Policy::per_day(n(10)), &clock);
    let all = limiter
        .decide_with_limit("k", u64::MAX, NonZeroU64::MAX)
        .expect("ok");
    assert_eq!(all.status(), Status::Allowed);
    let one_more = limiter
        .decide_with_limit("k", 1, NonZeroU64::MAX)
        .expect("ok");
    assert_eq!(one_more.status(), Status::Limited);
    assert_eq!(one_more.remaining(), 0);
    let usage = limiter.usage_with_limit("k", NonZeroU64::MAX).expect("ok");
    assert_eq!(usage.used, u64::MAX);
}

/// `w` is the configured period even when `period / limit` is rounded to whole nanoseconds.
#[test]
fn a_gcra_window_is_the_configured_period() {
    let clock = FakeClock::at_unix_secs(NEW_YEAR_EVE_LAST_SECOND);
    // 10,000 s / 1.5e9 = 6,666.67 ns, kept as 6,667 ns: 1.5e9 intervals take 10,000.5 s.
    let policy = Policy::gcra(n(1_500_000_000), Duration::from_secs(10_000)).expect("valid");
    let limiter = backend(policy, &clock);
    let d = limiter.decide("k", 1).expect("ok");
    assert_eq!(d.window(), Duration::from_secs(10_000));
    let headers = d.ietf_headers("rate");
    assert_eq!(headers[0].1, "\"rate\";q=1500000000;w=10000");
}

#[tokio::test]
async fn a_chain_charges_all_or_nothing_in_memory() {
    let clock = FakeClock::at_unix_secs(1_767_225_000);
    common::chain_charges_all_or_nothing(|policy, _| {
        let backend = backend(policy, &clock);
        async move { backend }
    })
    .await;
    common::chain_reports_failed_refunds(&clock).await;
}

/// A fixed window never goes back: a call whose time was read before a later call's (the lock
/// taken in the other order across a window's end), or a clock stepped back, counts in the newer
/// window, and neither window's count is lost.
#[test]
fn a_fixed_window_never_goes_back_to_an_earlier_window() {
    let clock = FakeClock::at_unix_secs(NEW_YEAR_EVE_LAST_SECOND);
    let limiter = backend(Policy::per_minute(n(1)), &clock);
    assert!(limiter.decide("k", 1).expect("ok").is_allowed());
    clock.advance(Duration::from_secs(1)); // the next minute
    assert!(limiter.decide("k", 1).expect("ok").is_allowed());
    clock.set_unix_secs(NEW_YEAR_EVE_LAST_SECOND); // back in the spent minute
    let late = limiter.decide("k", 1).expect("ok");
    assert_eq!(late.status(), Status::Limited);
    assert_eq!(late.reset_at_unix_secs(), NEW_YEAR_EVE_LAST_SECOND + 61);
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        limiter.decide("k", 1).expect("ok").status(),
        Status::Limited
    );
    assert_eq!(limiter.usage("k").expect("ok").used, 1);
}

/// A chain's `Debug` output shows the length of the keys it charged, never the keys.
#[tokio::test]
async fn a_chain_shows_no_key_in_its_debug_output() {
    let clock = FakeClock::at_unix_secs(1_767_225_000);
    let daily = backend(Policy::per_day(n(5)), &clock);
    let mut chain = quota::Chain::new(1);
    chain
        .charge("daily", &daily, "tenant-7f3a", quota::Rule::Backend)
        .await
        .expect("allowed");
    let shown = format!("{chain:?}");
    assert!(!shown.contains("tenant-7f3a"), "{shown}");
    assert!(shown.contains("key_len: 11"), "{shown}");
    assert!(chain.refund().await.is_empty());
}
