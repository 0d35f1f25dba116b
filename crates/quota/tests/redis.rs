//! The Redis backend on a real Redis (`TEST_REDIS_URL`), and on a private `redis-server` that
//! the tests stop to check the fail modes.
#![cfg(feature = "redis")]

use core::num::NonZeroU64;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

mod common;

use quota::{Error, FailMode, FakeClock, Policy, RedisBackend, Status};

fn n(v: u64) -> NonZeroU64 {
    NonZeroU64::new(v).expect("non-zero")
}

/// A prefix no other test, run or helper sharing this Redis will use.
fn prefix(test: &str) -> String {
    let random = RandomState::new().hash_one((test, std::process::id()));
    format!("quota-test:{test}:{random:016x}")
}

async fn backend(
    url: &str,
    policy: Policy,
    prefix: &str,
    clock: &FakeClock,
) -> RedisBackend<FakeClock> {
    RedisBackend::builder(policy)
        .prefix(prefix)
        .clock(clock.clone())
        .timeout(Duration::from_secs(2))
        .connect(url)
        .await
        .expect("valid configuration")
}

/// Two independent clients (two server instances), four tasks each, 500 attempts per task.
async fn hammer(url: &str, policy: Policy, test: &str) -> u64 {
    let clock = FakeClock::at_unix_secs(1_767_225_000);
    let prefix = prefix(test);
    let a = std::sync::Arc::new(backend(url, policy, &prefix, &clock).await);
    let b = std::sync::Arc::new(backend(url, policy, &prefix, &clock).await);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let limiter = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let mut grants = 0;
                for _ in 0..500 {
                    if limiter
                        .decide("one-key", 1)
                        .await
                        .expect("redis answers")
                        .is_allowed()
                    {
                        grants += 1;
                    }
                }
                grants
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn two_instances_get_exactly_the_fixed_window_limit() {
    let Some(url) = test_services::redis_url("two_instances_get_exactly_the_fixed_window_limit")
    else {
        return;
    };
    assert_eq!(
        hammer(&url, Policy::per_day(n(1_000)), "fixed-exact").await,
        1_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn two_instances_get_exactly_the_gcra_burst() {
    let Some(url) = test_services::redis_url("two_instances_get_exactly_the_gcra_burst") else {
        return;
    };
    let policy = Policy::gcra(n(1_000), Duration::from_secs(60)).expect("valid");
    assert_eq!(hammer(&url, policy, "gcra-exact").await, 1_000);
}

#[tokio::test]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn day_edge_retry_after_and_expiry_on_redis() {
    let Some(url) = test_services::redis_url("day_edge_retry_after_and_expiry_on_redis") else {
        return;
    };
    let clock = FakeClock::at_unix_secs(1_767_225_599); // 2025-12-31T23:59:59Z
    let prefix = prefix("day-edge");
    let limiter = backend(&url, Policy::per_day(n(2)), &prefix, &clock).await;
    assert!(limiter.decide("k", 2).await.expect("ok").is_allowed());
    let denied = limiter.decide("k", 1).await.expect("ok");
    assert_eq!(denied.status(), Status::Limited);
    assert_eq!(denied.retry_after(), Some(Duration::from_secs(1)));

    // The counter expires by itself: one second of window left plus one of grace.
    let client = redis::Client::open(url.as_str()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let key = format!("{prefix}:f:1767139200:k");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("pttl");
    assert!(ttl > 0 && ttl <= 2_000, "ttl {ttl}");

    clock.advance(Duration::from_secs(1));
    let first = limiter.decide("k", 1).await.expect("ok");
    assert_eq!((first.status(), first.remaining()), (Status::Allowed, 1));
}

#[tokio::test]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn gcra_retry_after_is_exact_on_redis() {
    let Some(url) = test_services::redis_url("gcra_retry_after_is_exact_on_redis") else {
        return;
    };
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let policy = Policy::gcra(n(5), Duration::from_secs(60)).expect("valid");
    let limiter = backend(&url, policy, &prefix("gcra-retry"), &clock).await;
    for left in (0..5).rev() {
        assert_eq!(limiter.decide("ip", 1).await.expect("ok").remaining(), left);
    }
    let denied = limiter.decide("ip", 1).await.expect("ok");
    assert_eq!(denied.retry_after(), Some(Duration::from_secs(12)));
    clock.advance(Duration::from_micros(11_999_999));
    assert!(!limiter.decide("ip", 1).await.expect("ok").is_allowed());
    clock.advance(Duration::from_micros(1));
    assert!(limiter.decide("ip", 1).await.expect("ok").is_allowed());
    assert_eq!(
        limiter.decide("ip", 6).await.expect("ok").status(),
        Status::CostExceedsLimit
    );
}

#[tokio::test]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn admin_operations_apply_to_every_instance() {
    let Some(url) = test_services::redis_url("admin_operations_apply_to_every_instance") else {
        return;
    };
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let prefix = prefix("admin");
    let a = backend(&url, Policy::per_day(n(5)), &prefix, &clock).await;
    let b = backend(&url, Policy::per_day(n(5)), &prefix, &clock).await;
    assert!(a.decide("k", 3).await.expect("ok").is_allowed());
    let usage = b.usage("k").await.expect("ok");
    assert_eq!((usage.limit, usage.used, usage.remaining), (5, 3, 2));

    b.reset("k").await.expect("ok");
    assert_eq!(a.usage("k").await.expect("ok").used, 0);

    a.set_override("k", Some(n(50))).await.expect("ok");
    let d = b.decide("k", 50).await.expect("ok");
    assert_eq!((d.status(), d.limit()), (Status::Allowed, 50));
    a.set_override("k", None).await.expect("ok");
    assert_eq!(b.decide("k", 1).await.expect("ok").limit(), 5);

    let gcra = Policy::gcra(n(5), Duration::from_secs(60)).expect("valid");
    let g = backend(&url, gcra, &format!("{prefix}-g"), &clock).await;
    g.set_override("vip", Some(n(60))).await.expect("ok");
    for _ in 0..60 {
        assert!(g.decide("vip", 1).await.expect("ok").is_allowed());
    }
    assert_eq!(
        g.decide("vip", 1).await.expect("ok").retry_after(),
        Some(Duration::from_secs(1))
    );
    assert!(matches!(
        g.set_override("vip", Some(n(u64::MAX))).await,
        Err(Error::InvalidConfig(_) | Error::InvalidPolicy(_))
    ));
}

#[tokio::test]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn a_batch_is_decided_in_order() {
    let Some(url) = test_services::redis_url("a_batch_is_decided_in_order") else {
        return;
    };
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let limiter = backend(&url, Policy::per_hour(n(3)), &prefix("batch"), &clock).await;
    let calls = [("a", 1), ("a", 1), ("b", 3), ("a", 1), ("a", 1), ("b", 1)];
    let got: Vec<Status> = limiter
        .decide_batch(&calls)
        .await
        .expect("ok")
        .iter()
        .map(quota::Decision::status)
        .collect();
    use Status::{Allowed, Limited};
    assert!(limiter.decide_batch(&[]).await.expect("ok").is_empty());
    assert_eq!(got, [Allowed, Allowed, Allowed, Allowed, Limited, Limited]);
}

#[tokio::test]
async fn bad_configuration_is_an_error() {
    let policy = Policy::per_day(n(5));
    let err = RedisBackend::builder(policy)
        .connect("not a url")
        .await
        .expect_err("bad url");
    assert!(matches!(err, Error::InvalidConfig(_)));
    let huge = RedisBackend::builder(Policy::per_day(NonZeroU64::MAX))
        .connect("redis://127.0.0.1:1")
        .await
        .expect_err("beyond Lua's exact integers");
    assert!(matches!(huge, Error::InvalidConfig(_)));
    let fast = Policy::gcra(n(1_000), Duration::from_micros(10)).expect("valid in memory");
    let err = RedisBackend::builder(fast)
        .connect("redis://127.0.0.1:1")
        .await
        .expect_err("µs");
    assert!(matches!(err, Error::InvalidConfig(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn redis_down_follows_the_fail_mode_within_the_timeout() {
    // Needs only the `redis-server` binary; gated like the other Redis tests.
    if test_services::redis_url("redis_down_follows_the_fail_mode_within_the_timeout").is_none() {
        return;
    }
    let mut server = test_services::RedisServer::start();
    let url = server.url();
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let make = |mode| {
        RedisBackend::builder(Policy::per_day(n(5)))
            .clock(clock.clone())
            .timeout(Duration::from_secs(2))
            .fail_mode(mode)
            .connect(&url)
    };
    let open = make(FailMode::Open).await.expect("ok");
    let closed = make(FailMode::Closed).await.expect("ok");
    let error = make(FailMode::Error).await.expect("ok");
    for limiter in [&open, &closed, &error] {
        assert_eq!(
            limiter.decide("k", 1).await.expect("up").status(),
            Status::Allowed
        );
    }
    // The script survives a SCRIPT FLUSH (EVALSHA falls back to loading it).
    let client = redis::Client::open(url.as_str()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .expect("flush");
    assert_eq!(open.decide("k", 1).await.expect("reloaded").remaining(), 1);

    server.stop();
    // A hang guard, not a speed assertion: each call is bounded by the 300 ms timeout.
    let guard = Duration::from_secs(10);
    for _ in 0..3 {
        let d = tokio::time::timeout(guard, open.decide("k", 1))
            .await
            .expect("bounded");
        let d = d.expect("fail open decides");
        assert_eq!(d.status(), Status::FailedOpen);
        assert!(d.is_allowed());
        assert_eq!(d.headers("daily").len(), 1);

        let d = tokio::time::timeout(guard, closed.decide("k", 1))
            .await
            .expect("bounded");
        let d = d.expect("fail closed decides");
        assert_eq!(d.status(), Status::FailedClosed);
        assert!(!d.is_allowed());

        let e = tokio::time::timeout(guard, error.decide("k", 1))
            .await
            .expect("bounded");
        assert!(matches!(e, Err(Error::Unavailable { .. })), "{e:?}");
        let batch = tokio::time::timeout(guard, closed.decide_batch(&[("a", 1), ("b", 1)]))
            .await
            .expect("bounded")
            .expect("fail closed decides");
        assert!(batch.iter().all(|d| d.status() == Status::FailedClosed));
        let admin = tokio::time::timeout(guard, open.usage("k"))
            .await
            .expect("bounded");
        assert!(matches!(admin, Err(Error::Unavailable { .. })));
    }
}

#[tokio::test]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn a_limit_given_with_the_call_beats_the_policy_and_stored_overrides() {
    let Some(url) = test_services::redis_url("a_limit_given_with_the_call") else {
        return;
    };
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let prefix = prefix("explicit-limit");
    let a = backend(&url, Policy::per_day(n(5)), &prefix, &clock).await;
    let b = backend(&url, Policy::per_day(n(5)), &prefix, &clock).await;
    // A stored override that the explicit limit must ignore.
    a.set_override("k", Some(n(100))).await.expect("ok");
    let mut grants = 0;
    for limiter in [&a, &b, &a, &b, &a] {
        let d = limiter.decide_with_limit("k", 1, n(3)).await.expect("ok");
        assert_eq!(d.limit(), 3);
        grants += u64::from(d.is_allowed());
    }
    assert_eq!(grants, 3, "the counter is shared and the given limit holds");
    let usage = b.usage_with_limit("k", n(3)).await.expect("ok");
    assert_eq!((usage.limit, usage.used, usage.remaining), (3, 3, 0));
    // The same counter read with the stored override: the state is one, only the limit differs.
    assert_eq!(b.usage("k").await.expect("ok").remaining, 97);

    let gcra = Policy::gcra(n(5), Duration::from_secs(60)).expect("valid");
    let g = backend(&url, gcra, &format!("{prefix}-g"), &clock).await;
    for _ in 0..2 {
        assert!(
            g.decide_with_limit("c", 1, n(2))
                .await
                .expect("ok")
                .is_allowed()
        );
    }
    let third = g.decide_with_limit("c", 1, n(2)).await.expect("ok");
    assert_eq!(third.status(), Status::Limited);
    assert_eq!(third.retry_after(), Some(Duration::from_secs(30)));
    assert!(matches!(
        g.decide_with_limit("c", 1, n(u64::MAX)).await,
        Err(Error::InvalidConfig(_) | Error::InvalidPolicy(_))
    ));
}

/// Puts 2 MiB of data into the Redis at `url`, then lowers its `maxmemory` to 1 MiB under
/// `noeviction`: from then on Redis refuses every write with an OOM error. (Filling up to the
/// limit by writing is not deterministic: the refused write's own buffer is freed afterwards.)
async fn fill_until_oom(url: &str) {
    let client = redis::Client::open(url).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let filler = "x".repeat(64 * 1024);
    for i in 0..32 {
        let () = redis::cmd("SET")
            .arg(format!("filler:{i}"))
            .arg(&filler)
            .query_async(&mut conn)
            .await
            .expect("room to fill");
    }
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1mb")
        .query_async(&mut conn)
        .await
        .expect("config set");
    let refused: redis::RedisResult<()> = redis::cmd("SET")
        .arg("one-more")
        .arg(1)
        .query_async(&mut conn)
        .await;
    let error = refused.expect_err("Redis is full");
    assert!(error.to_string().contains("OOM"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn a_full_redis_follows_the_fail_mode_never_an_error() {
    if test_services::redis_url("a_full_redis_follows_the_fail_mode_never_an_error").is_none() {
        return;
    }
    let server = test_services::RedisServer::start_with(&[
        "--maxmemory",
        "64mb",
        "--maxmemory-policy",
        "noeviction",
    ]);
    let url = server.url();
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let make = |mode| {
        RedisBackend::builder(Policy::per_day(n(5)))
            .clock(clock.clone())
            .timeout(Duration::from_secs(2))
            .fail_mode(mode)
            .connect(&url)
    };
    let open = make(FailMode::Open).await.expect("ok");
    let closed = make(FailMode::Closed).await.expect("ok");
    let error = make(FailMode::Error).await.expect("ok");
    let policy = open.memory_policy().await.expect("CONFIG answers");
    assert_eq!(
        (policy.name(), policy.maxmemory(), policy.evicts()),
        ("noeviction", 64 * 1024 * 1024, false)
    );

    fill_until_oom(&url).await;
    // Redis answers every write with an OOM error now: each decision follows its fail mode.
    let d = open.decide("spent-key", 1).await.expect("fails open");
    assert_eq!(d.status(), Status::FailedOpen);
    let d = closed.decide("spent-key", 1).await.expect("fails closed");
    assert_eq!(d.status(), Status::FailedClosed);
    let d = closed
        .decide_with_limit("spent-key", 1, n(9))
        .await
        .expect("fails closed");
    assert_eq!((d.status(), d.limit()), (Status::FailedClosed, 9));
    assert!(matches!(
        error.decide("spent-key", 1).await,
        Err(Error::Store { .. })
    ));
    let batch = closed
        .decide_batch(&[("a", 1), ("b", 1)])
        .await
        .expect("fails closed");
    assert!(batch.iter().all(|d| d.status() == Status::FailedClosed));
}

#[tokio::test]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn an_evicting_memory_policy_is_reported() {
    if test_services::redis_url("an_evicting_memory_policy_is_reported").is_none() {
        return;
    }
    let server = test_services::RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let backend = RedisBackend::builder(Policy::per_day(n(5)))
        .connect(&server.url())
        .await
        .expect("ok");
    let policy = backend.memory_policy().await.expect("CONFIG answers");
    assert!(policy.evicts());
    assert_eq!(policy.name(), "allkeys-lru");
    assert_eq!(
        policy.to_string(),
        "maxmemory-policy allkeys-lru, no maxmemory"
    );
}

#[tokio::test]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn per_call_policies_refunds_and_lifetimes_on_redis() {
    let Some(url) = test_services::redis_url("per_call_policies_refunds_and_lifetimes") else {
        return;
    };
    let clock = FakeClock::at_unix_secs(1_767_225_000);
    let prefix = prefix("per-call");
    common::per_call_policies_refunds_and_lifetimes(&clock, |policy, name| {
        let (url, prefix, clock) = (url.clone(), format!("{prefix}-{name}"), clock.clone());
        async move { backend(&url, policy, &prefix, &clock).await }
    })
    .await;
    // A lifetime count never expires in Redis.
    let client = redis::Client::open(url.as_str()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}-credits:f:0:c"))
        .query_async(&mut conn)
        .await
        .expect("ttl");
    assert_eq!(ttl, -1, "no expiry on a lifetime balance");
}

#[tokio::test]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn a_chain_charges_all_or_nothing_on_redis() {
    let Some(url) = test_services::redis_url("a_chain_charges_all_or_nothing") else {
        return;
    };
    let clock = FakeClock::at_unix_secs(1_767_225_000);
    let prefix = prefix("chain");
    common::chain_charges_all_or_nothing(|policy, name| {
        let (url, prefix, clock) = (url.clone(), format!("{prefix}-{name}"), clock.clone());
        async move { backend(&url, policy, &prefix, &clock).await }
    })
    .await;
}

#[tokio::test]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn refunds_give_back_no_more_than_was_charged_on_redis() {
    let Some(url) = test_services::redis_url("refunds_give_back_no_more_than_was_charged") else {
        return;
    };
    let clock = FakeClock::at_unix_secs(1_767_225_000);
    let prefix = prefix("refund-bounds");
    common::refunds_give_back_no_more_than_was_charged(&clock, |policy, name| {
        let (url, prefix, clock) = (url.clone(), format!("{prefix}-{name}"), clock.clone());
        async move { backend(&url, policy, &prefix, &clock).await }
    })
    .await;
}

/// Limiters left on the default prefix never count into each other's keys: a per-minute and a
/// per-day limiter both have a window starting at midnight, and two GCRA rates would share one
/// arrival time.
#[tokio::test]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn limiters_on_the_default_prefix_keep_apart() {
    let Some(url) = test_services::redis_url("limiters_on_the_default_prefix_keep_apart") else {
        return;
    };
    let clock = FakeClock::at_unix_secs(1_767_225_600); // 2026-01-01T00:00:00Z
    let on_default = |policy: Policy| {
        let (url, clock) = (url.clone(), clock.clone());
        async move {
            RedisBackend::builder(policy)
                .clock(clock)
                .timeout(Duration::from_secs(2))
                .connect(&url)
                .await
                .expect("valid configuration")
        }
    };
    // A key of this run only, so that the shared default prefix meets no other run's counts.
    let key = prefix("default-prefix");
    let minute = on_default(Policy::per_minute(n(5))).await;
    let day = on_default(Policy::per_day(n(10))).await;
    for _ in 0..5 {
        assert!(minute.decide(&key, 1).await.expect("ok").is_allowed());
    }
    assert_eq!(day.usage(&key).await.expect("ok").used, 0);
    assert!(day.decide(&key, 1).await.expect("ok").is_allowed());
    assert_eq!(minute.usage(&key).await.expect("ok").used, 5);

    let slow = on_default(Policy::gcra(n(2), Duration::from_secs(60)).expect("valid")).await;
    let fast = on_default(Policy::gcra(n(100), Duration::from_secs(1)).expect("valid")).await;
    assert!(slow.decide(&key, 2).await.expect("ok").is_allowed());
    assert_eq!(fast.usage(&key).await.expect("ok").remaining, 100);

    for limiter in [&minute, &day] {
        limiter.reset(&key).await.expect("ok");
    }
    for limiter in [&slow, &fast] {
        limiter.reset(&key).await.expect("ok");
    }
}

/// On Redis a GCRA interval is kept in whole microseconds, rounded up: a rate that rounding
/// would slow by more than 1% is refused, and `w` is the configured period.
#[tokio::test]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn a_gcra_rate_on_redis_is_the_one_configured() {
    let Some(url) = test_services::redis_url("a_gcra_rate_on_redis_is_the_one_configured") else {
        return;
    };
    // 60 s / 40,000,000 = 1.5 µs: truncated, one call per µs would be 60,000,000 a minute;
    // rounded up, 2 µs would be 30,000,000.
    let inexact = Policy::gcra(n(40_000_000), Duration::from_secs(60)).expect("valid in memory");
    assert!(RedisBackend::check_policy(inexact).is_err());
    let err = RedisBackend::builder(inexact)
        .connect(&url)
        .await
        .expect_err("1.5 µs is no whole number of µs");
    assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    // 5 a minute with bursts of 10: a whole burst is earned back in 2 minutes.
    let gcra = Policy::gcra(n(5), Duration::from_secs(60))
        .and_then(|p| p.with_burst(n(10)))
        .expect("valid");
    let rate = backend(&url, gcra, &prefix("truncated-g"), &clock).await;
    assert!(matches!(
        rate.decide_with_policy("k", 1, inexact).await,
        Err(Error::InvalidConfig(_))
    ));
    // 10,000 s / 1,500,000 = 6,666.67 µs, kept as 6,667 µs: the burst refills in 10,000.5 s.
    let slow = Policy::gcra(n(1_500_000), Duration::from_secs(10_000)).expect("valid");
    let d = rate.decide_with_policy("w", 1, slow).await.expect("ok");
    assert_eq!(d.window(), Duration::from_secs(10_000));
    assert_eq!(
        rate.decide("p", 1).await.expect("ok").window(),
        Duration::from_secs(120)
    );
    // A stored override makes its limit the burst: a burst per period.
    rate.set_override("o", Some(n(7))).await.expect("ok");
    let d = rate.decide("o", 1).await.expect("ok");
    assert_eq!((d.limit(), d.window()), (7, Duration::from_secs(60)));
}
