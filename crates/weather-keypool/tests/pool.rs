//! The key pool on its own: selection, health, reload, the environment source.

use std::sync::Arc;
use std::time::Duration;

use weather_keypool::{
    Error, FakeClock, KeyHealth, KeyPool, Outcome, Selection, UpstreamKey, parse_retry_after,
};

fn keys(names: &[&str]) -> Vec<UpstreamKey> {
    names
        .iter()
        .map(|k| UpstreamKey::new(*k).unwrap())
        .collect()
}

fn picked_name(pool: &KeyPool) -> String {
    pool.pick().unwrap().key().expose_secret().to_owned()
}

/// Chi-square statistic of `counts` against a uniform distribution.
fn chi_square(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    #[allow(clippy::cast_precision_loss)] // small counts
    let expected = total as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|&c| {
            #[allow(clippy::cast_precision_loss)]
            let d = c as f64 - expected;
            d * d / expected
        })
        .sum()
}

/// Random selection over 10,000 picks among 5 keys is uniform: chi-square with 4 degrees of
/// freedom below 33.38, the critical value for p = 1e-6 (the survival function for 4 degrees of
/// freedom is exp(-x/2)(1 + x/2)). The pool is seeded from the OS, as in production, so a correct
/// pool fails this test once in a million runs.
#[test]
fn random_selection_is_uniform() {
    let names = ["k0", "k1", "k2", "k3", "k4"];
    let pool = KeyPool::new(keys(&names)).unwrap();
    let mut counts = [0u64; 5];
    for _ in 0..10_000 {
        let name = picked_name(&pool);
        let i = names.iter().position(|n| *n == name).unwrap();
        counts[i] += 1;
    }
    let chi2 = chi_square(&counts);
    assert!(chi2 < 33.38, "chi-square {chi2} for {counts:?}");
    let stats = pool.stats();
    assert_eq!(stats.iter().map(|s| s.picks).sum::<u64>(), 10_000);
}

#[test]
fn chi_square_detects_a_biased_choice() {
    // The check above can fail: a 20% bias towards one of 5 keys over 10,000 picks is far
    // beyond the threshold.
    assert!(chi_square(&[2400, 1900, 1900, 1900, 1900]) > 33.38);
}

#[test]
fn round_robin_takes_turns_and_skips_benched_keys() {
    let pool = KeyPool::builder()
        .selection(Selection::RoundRobin)
        .build(keys(&["a", "b", "c"]))
        .unwrap();
    let order: Vec<String> = (0..4).map(|_| picked_name(&pool)).collect();
    assert_eq!(order, ["a", "b", "c", "a"]);
    let b = pool.pick().unwrap();
    assert_eq!(b.key().expose_secret(), "b");
    pool.report(b.id(), Outcome::Rejected);
    let order: Vec<String> = (0..4).map(|_| picked_name(&pool)).collect();
    assert_eq!(order, ["c", "a", "c", "a"]);
}

/// "Out for good" as `Duration::MAX` and a huge `Retry-After` take a key out of rotation for
/// the longest time the clock can say, without overflowing it.
#[test]
fn cooldowns_of_duration_max_hold_without_overflow() {
    let clock = Arc::new(FakeClock::new());
    let pool = KeyPool::builder()
        .clock(clock.clone())
        .first_rejected_cooldown(Duration::MAX)
        .rejected_cooldown(Duration::MAX)
        .max_throttled_cooldown(Duration::MAX)
        .build(keys(&["a", "b"]))
        .unwrap();
    let stats = |name| {
        let index = usize::from(name == "b");
        pool.stats()[index].health
    };
    for (name, outcome) in [
        ("a", Outcome::Rejected),
        ("b", Outcome::from_status(429, Some("99999999999999999999"))),
    ] {
        let picked = loop {
            let p = pool.pick().unwrap();
            if p.key().expose_secret() == name {
                break p;
            }
        };
        pool.report(picked.id(), outcome);
    }
    clock.advance(Duration::from_secs(10 * 365 * 86_400));
    assert!(
        matches!(stats("a"), KeyHealth::Rejected { .. }),
        "{:?}",
        stats("a")
    );
    assert!(
        matches!(stats("b"), KeyHealth::Throttled { .. }),
        "{:?}",
        stats("b")
    );
    assert!(pool.pick().is_err());
}

#[test]
fn rejected_keys_stay_out_until_the_cooldown_or_a_reload() {
    let clock = Arc::new(FakeClock::new());
    let pool = KeyPool::builder()
        .clock(clock.clone())
        .first_rejected_cooldown(Duration::from_secs(3600))
        .rejected_cooldown(Duration::from_secs(3600))
        .build(keys(&["a", "b"]))
        .unwrap();
    let a = loop {
        let p = pool.pick().unwrap();
        if p.key().expose_secret() == "a" {
            break p;
        }
    };
    pool.report(a.id(), Outcome::Rejected);
    for _ in 0..200 {
        assert_eq!(picked_name(&pool), "b");
    }
    clock.advance(Duration::from_secs(3599));
    assert_eq!(
        pool.stats()[0].health,
        KeyHealth::Rejected {
            remaining: Duration::from_secs(1)
        }
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(pool.stats()[0].health, KeyHealth::Healthy);

    pool.report(a.id(), Outcome::Rejected);
    assert!(matches!(pool.stats()[0].health, KeyHealth::Rejected { .. }));
    pool.reload(keys(&["a", "b"])).unwrap();
    assert_eq!(pool.stats()[0].health, KeyHealth::Healthy);
    // Counters survive a reload; ids from before it are stale and ignored.
    assert_eq!(pool.stats()[0].rejected, 2);
    pool.report(a.id(), Outcome::Rejected);
    assert_eq!(pool.stats()[0].health, KeyHealth::Healthy);
}

#[test]
fn throttling_uses_retry_after_the_default_and_the_cap() {
    let clock = Arc::new(FakeClock::new());
    let pool = KeyPool::builder()
        .clock(clock.clone())
        .throttled_cooldown(Duration::from_secs(60))
        .max_throttled_cooldown(Duration::from_secs(600))
        .build(keys(&["a"]))
        .unwrap();
    let id = pool.pick().unwrap().id();
    let remaining = |pool: &KeyPool| match pool.stats()[0].health {
        KeyHealth::Throttled { remaining } => remaining,
        other => panic!("{other:?}"),
    };
    pool.report(id, Outcome::from_status(429, Some("7")));
    assert_eq!(remaining(&pool), Duration::from_secs(7));
    clock.advance(Duration::from_secs(7));
    pool.report(id, Outcome::from_status(429, None));
    assert_eq!(remaining(&pool), Duration::from_secs(60));
    pool.report(id, Outcome::from_status(429, Some("86400")));
    assert_eq!(remaining(&pool), Duration::from_secs(600));
    // A shorter throttle does not cut a longer one short.
    pool.report(id, Outcome::from_status(429, Some("1")));
    assert_eq!(remaining(&pool), Duration::from_secs(600));
    assert_eq!(
        pool.pick().unwrap_err(),
        Error::AllKeysUnavailable {
            retry_after: Duration::from_secs(600),
            rejected: 0,
            throttled: 1,
        }
    );
}

#[test]
fn upstream_failures_do_not_penalise_keys() {
    let pool = KeyPool::new(keys(&["a"])).unwrap();
    let id = pool.pick().unwrap().id();
    for status in [500, 502, 503, 504] {
        pool.report(id, Outcome::from_status(status, Some("30")));
    }
    assert_eq!(pool.stats()[0].health, KeyHealth::Healthy);
    assert_eq!(pool.stats()[0].upstream_failures, 4);
    assert!(pool.pick().is_ok());
}

#[test]
fn excluding_every_healthy_key_says_so() {
    let pool = KeyPool::new(keys(&["a", "b"])).unwrap();
    let a = pool.pick().unwrap();
    let b = pool.pick_excluding(&[a.id()]).unwrap();
    assert_ne!(a.fingerprint(), b.fingerprint());
    assert_eq!(
        pool.pick_excluding(&[a.id(), b.id()]).unwrap_err(),
        Error::AllKeysUnavailable {
            retry_after: Duration::ZERO,
            rejected: 0,
            throttled: 0,
        }
    );
}

#[test]
fn outcomes_from_statuses() {
    assert_eq!(Outcome::from_status(200, None), Outcome::Accepted);
    assert_eq!(Outcome::from_status(404, None), Outcome::Accepted);
    assert_eq!(Outcome::from_status(401, None), Outcome::Rejected);
    assert_eq!(Outcome::from_status(403, None), Outcome::Rejected);
    assert_eq!(
        Outcome::from_status(429, Some("Wed, 21 Oct 2015 07:28:00 GMT")),
        Outcome::Throttled { retry_after: None }
    );
    assert_eq!(Outcome::from_status(503, None), Outcome::UpstreamFailure);
    assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
    for bad in ["", "-1", "1.5", "12345678901", "abc"] {
        assert_eq!(parse_retry_after(bad), None, "{bad}");
    }
    // More digits than delta-seconds hold: as long as the pool allows, not the short default.
    assert_eq!(
        Outcome::from_status(429, Some("10000000000")),
        Outcome::Throttled {
            retry_after: Some(Duration::MAX)
        }
    );
}

#[test]
fn empty_and_duplicate_keys() {
    assert_eq!(
        KeyPool::new(Vec::new()).unwrap_err(),
        Error::NoKeysConfigured
    );
    let pool = KeyPool::new(keys(&["a", "b", "a"])).unwrap();
    assert_eq!(pool.len(), 2);
    assert!(!pool.is_empty());
    assert_eq!(
        pool.reload(Vec::new()).unwrap_err(),
        Error::NoKeysConfigured
    );
    assert_eq!(pool.len(), 2);
}

#[test]
fn pools_from_environment_shaped_variables() {
    let vars = [
        ("OPENWEATHER_API_KEY", "k0"),
        ("OPENWEATHER_API_KEY3", "k3"),
        ("OPENWEATHER_API_KEYS", "k0, l1,,l2"),
        ("OPENWEATHER_API_KEY1", "  "),
        ("HOME", "/root"),
    ];
    let pool = KeyPool::builder().build_from_vars(vars).unwrap();
    assert_eq!(pool.len(), 4);
    let err = KeyPool::builder()
        .build_from_vars([("OPENWEATHER_API_KEY", " "), ("OPENWEATHER_API_KEY1", "")])
        .unwrap_err();
    assert_eq!(err, Error::NoKeysConfigured);
    assert_eq!(err.to_string(), "no upstream API key is configured");
}

#[test]
fn the_pool_is_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<KeyPool>();
    let pool = Arc::new(KeyPool::new(keys(&["a", "b"])).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    let p = pool.pick().unwrap();
                    pool.report(p.id(), Outcome::Accepted);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let stats = pool.stats();
    assert_eq!(stats.iter().map(|s| s.accepted).sum::<u64>(), 4000);
}

/// One request that every key refused (a proxy's 403 on the way, say) benches them for a
/// minute, not a day; a key refused again and again rests twice as long each time, up to the
/// day, and a call it passes starts it over.
#[test]
fn refusals_in_a_row_bench_a_key_longer_each_time() {
    let clock = Arc::new(FakeClock::new());
    let pool = KeyPool::builder()
        .clock(clock.clone())
        .build(keys(&["a"]))
        .unwrap();
    let rest = |pool: &KeyPool| match pool.stats()[0].health {
        KeyHealth::Rejected { remaining } => remaining,
        other => panic!("{other:?}"),
    };
    let refuse = |pool: &KeyPool| pool.report(pool.pick().unwrap().id(), Outcome::Rejected);
    let mut expected = Vec::new();
    let mut rests = Vec::new();
    for n in 0..13 {
        refuse(&pool);
        rests.push(rest(&pool));
        expected.push(Duration::from_secs(60 << n).min(Duration::from_secs(86_400)));
        clock.advance(rest(&pool));
    }
    assert_eq!(rests, expected);
    // Accepted once: the next refusal is a first one again.
    pool.report(pool.pick().unwrap().id(), Outcome::Accepted);
    refuse(&pool);
    assert_eq!(rest(&pool), Duration::from_secs(60));
    clock.advance(Duration::from_secs(60));
    // Calls picked together and refused together (concurrent requests) are one refusal.
    let picked: Vec<_> = (0..5).map(|_| pool.pick().unwrap().id()).collect();
    for id in picked {
        pool.report(id, Outcome::Rejected);
    }
    assert_eq!(rest(&pool), Duration::from_secs(120));
}

/// `Retry-After: 0` still rests a throttled key for a second, so that the next requests do not
/// all spend a call on it, and `0030` is 30 seconds.
#[test]
fn a_throttled_key_rests_at_least_a_second() {
    let clock = Arc::new(FakeClock::new());
    let pool = KeyPool::builder()
        .clock(clock.clone())
        .build(keys(&["a"]))
        .unwrap();
    pool.report(
        pool.pick().unwrap().id(),
        Outcome::from_status(429, Some("0")),
    );
    assert!(matches!(
        pool.pick(),
        Err(Error::AllKeysUnavailable { throttled: 1, .. })
    ));
    clock.advance(Duration::from_secs(1));
    pool.report(
        pool.pick().unwrap().id(),
        Outcome::from_status(429, Some("0030")),
    );
    assert_eq!(
        pool.stats()[0].health,
        KeyHealth::Throttled {
            remaining: Duration::from_secs(30)
        }
    );
}
