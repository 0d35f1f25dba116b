//! The weather client against a local fake OpenWeather with scripted keys.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Fake, Script};
use weather_keypool::{
    Error, FakeClock, KeyHealth, KeyPool, Location, Selection, Units, UpstreamKey, WeatherCache,
    WeatherClient, WeatherClientBuilder,
};

const A: &str = "KEY-A-rejected-4f1c9e";
const B: &str = "KEY-B-throttled-77ad02";
const C: &str = "KEY-C-good-0b5e13";
const D: &str = "KEY-D-flaky-9c2a41";
const ALL: [&str; 4] = [A, B, C, D];

fn keys(names: &[&str]) -> Vec<UpstreamKey> {
    names
        .iter()
        .map(|k| UpstreamKey::new(*k).unwrap())
        .collect()
}

fn pool(names: &[&str], selection: Selection, clock: &Arc<FakeClock>) -> Arc<KeyPool> {
    Arc::new(
        KeyPool::builder()
            .selection(selection)
            .clock(clock.clone())
            .build(keys(names))
            .unwrap(),
    )
}

/// The timeout of the tests that wait for one: far below the fake's 20 s sleep.
const SHORT: Duration = Duration::from_millis(500);

/// A client of the fake. Its timeout is long enough that a loaded CI machine never turns an
/// answer into a timeout (and a retry, which would change the call counts); the tests of
/// timeouts set [`SHORT`].
fn client(fake: &Fake, pool: Arc<KeyPool>) -> WeatherClientBuilder {
    WeatherClient::builder(pool)
        .base_url(&fake.base_url)
        .unwrap()
        .timeout(Duration::from_secs(10))
        .retry_backoff(Duration::from_millis(10))
        .without_cache()
}

/// No key string appears in an error's `Display` or `Debug`.
fn assert_no_key(err: &Error) {
    let shown = format!("{err} {err:?}");
    for key in ALL {
        assert!(!shown.contains(key), "key leaked in {shown}");
        assert!(!shown.contains("appid"), "URL leaked in {shown}");
    }
}

fn london() -> Location {
    Location::city("London").unwrap()
}

#[actix_rt::test]
async fn rejected_and_throttled_keys_fall_over_to_the_good_one() {
    let fake = Fake::start(&[
        (A, Script::Status(401, None)),
        (B, Script::Status(429, Some("2"))),
        (C, Script::Ok),
    ]);
    let clock = Arc::new(FakeClock::new());
    let pool = pool(&[A, B, C], Selection::RoundRobin, &clock);
    let client = client(&fake, Arc::clone(&pool)).build();

    // Round-robin starts at A: A is refused, B throttled, C answers.
    let weather = client.current(&london(), Units::Metric).await.unwrap();
    assert_eq!(weather.place, "London");
    assert_eq!((fake.calls(A), fake.calls(B), fake.calls(C)), (1, 1, 1));

    // A is never picked again, B not while it cools down.
    for _ in 0..10 {
        client.current(&london(), Units::Metric).await.unwrap();
    }
    assert_eq!((fake.calls(A), fake.calls(B), fake.calls(C)), (1, 1, 11));
    let stats = pool.stats();
    assert!(matches!(stats[0].health, KeyHealth::Rejected { .. }));
    assert_eq!(
        stats[1].health,
        KeyHealth::Throttled {
            remaining: Duration::from_secs(2)
        }
    );

    // Two seconds later on the fake clock, B is back in rotation; A still is not.
    clock.advance(Duration::from_secs(2));
    fake.set(B, Script::Ok);
    for _ in 0..10 {
        client.current(&london(), Units::Metric).await.unwrap();
    }
    assert_eq!(fake.calls(A), 1);
    assert_eq!(fake.calls(B), 1 + 5);
    assert_eq!(fake.calls(C), 11 + 5);
}

#[actix_rt::test]
async fn random_selection_never_returns_to_a_rejected_key() {
    let fake = Fake::start(&[
        (A, Script::Status(401, None)),
        (B, Script::Status(429, Some("2"))),
        (C, Script::Ok),
    ]);
    let clock = Arc::new(FakeClock::new());
    let client = client(&fake, pool(&[A, B, C], Selection::Random, &clock)).build();
    for _ in 0..30 {
        let weather = client.current(&london(), Units::Metric).await.unwrap();
        assert_eq!(weather.place, "London");
    }
    assert!(fake.calls(A) <= 1);
    assert!(fake.calls(B) <= 1);
    assert_eq!(fake.calls(C), 30);
}

#[actix_rt::test]
async fn all_keys_cooling_is_a_typed_error_with_the_earliest_return() {
    let fake = Fake::start(&[
        (A, Script::Status(401, None)),
        (B, Script::Status(429, Some("2"))),
        (D, Script::Status(429, None)),
    ]);
    let clock = Arc::new(FakeClock::new());
    let pool = pool(&[A, B, D], Selection::RoundRobin, &clock);
    let client = client(&fake, Arc::clone(&pool)).build();

    let err = client.current(&london(), Units::Metric).await.unwrap_err();
    assert_eq!(
        err,
        Error::AllKeysUnavailable {
            retry_after: Duration::from_secs(2),
            rejected: 1,
            throttled: 2,
        }
    );
    assert_eq!(err.retry_after_secs(), Some(2));
    assert_no_key(&err);

    // No upstream call while everything cools down; the wait shrinks with the clock.
    clock.advance(Duration::from_millis(1500));
    let err = client.current(&london(), Units::Metric).await.unwrap_err();
    assert_eq!(err.retry_after_secs(), Some(1));
    assert_eq!(fake.total_calls(), 3);

    // B is back at 2 s, then D (no Retry-After: the 60 s default).
    clock.advance(Duration::from_millis(500));
    let err = client.current(&london(), Units::Metric).await.unwrap_err();
    assert_eq!(fake.calls(B), 2);
    assert_eq!(
        err,
        Error::AllKeysUnavailable {
            retry_after: Duration::from_secs(2),
            rejected: 1,
            throttled: 2,
        }
    );
}

#[actix_rt::test]
async fn server_errors_are_retried_once_on_another_key_without_penalty() {
    let fake = Fake::start(&[(D, Script::Status(503, None)), (C, Script::Ok)]);
    let clock = Arc::new(FakeClock::new());
    let pool = pool(&[D, C], Selection::RoundRobin, &clock);
    let client = client(&fake, Arc::clone(&pool)).build();

    client.current(&london(), Units::Metric).await.unwrap();
    assert_eq!((fake.calls(D), fake.calls(C)), (1, 1));
    let stats = pool.stats();
    assert_eq!(stats[0].health, KeyHealth::Healthy);
    assert_eq!(stats[0].upstream_failures, 1);

    // Both keys failing: exactly one retry, then the upstream's status.
    fake.set(C, Script::Status(502, None));
    let err = client.current(&london(), Units::Metric).await.unwrap_err();
    assert_eq!(err, Error::UpstreamStatus { status: 502 });
    assert_eq!(fake.calls(D) + fake.calls(C), 4);
    assert_no_key(&err);
    assert!(pool.stats().iter().all(|s| s.health == KeyHealth::Healthy));
}

#[actix_rt::test]
async fn a_single_key_is_retried_once_itself_after_a_server_error() {
    let fake = Fake::start(&[(D, Script::Status(500, None))]);
    let clock = Arc::new(FakeClock::new());
    let client = client(&fake, pool(&[D], Selection::Random, &clock)).build();
    let err = client.current(&london(), Units::Metric).await.unwrap_err();
    assert_eq!(err, Error::UpstreamStatus { status: 500 });
    assert_eq!(fake.calls(D), 2);
}

#[actix_rt::test]
async fn a_slow_upstream_is_a_timeout_error() {
    let fake = Fake::start(&[(D, Script::Sleep(Duration::from_secs(20)))]);
    let clock = Arc::new(FakeClock::new());
    let client = client(&fake, pool(&[D], Selection::Random, &clock))
        .timeout(SHORT)
        .build();
    let started = Instant::now();
    let err = client.current(&london(), Units::Metric).await.unwrap_err();
    assert_eq!(err, Error::Timeout { after: SHORT });
    // Two attempts of 500 ms and a 10 ms pause, far below the upstream's 20 s.
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(fake.calls(D), 2);
    assert_no_key(&err);
}

#[actix_rt::test]
async fn malformed_and_oversized_bodies_are_errors() {
    let fake = Fake::start(&[
        (C, Script::Body("{\"coord\": nonsense".to_owned())),
        (
            D,
            Script::Body(format!("{{\"pad\":\"{}\"}}", "x".repeat(10_000))),
        ),
    ]);
    let clock = Arc::new(FakeClock::new());

    let client_c = client(&fake, pool(&[C], Selection::Random, &clock)).build();
    let err = client_c
        .current(&london(), Units::Metric)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MalformedResponse { .. }), "{err:?}");
    assert_no_key(&err);
    // A bad body is not the key's fault.
    assert_eq!(client_c.pool().stats()[0].health, KeyHealth::Healthy);

    let client_d = client(&fake, pool(&[D], Selection::Random, &clock))
        .max_body_bytes(1024)
        .build();
    let err = client_d
        .current(&london(), Units::Metric)
        .await
        .unwrap_err();
    assert_eq!(err, Error::BodyTooLarge { limit: 1024 });
    assert_no_key(&err);
}

#[actix_rt::test]
async fn unknown_places_and_unreachable_upstreams_are_typed_errors() {
    let fake = Fake::start(&[(C, Script::Status(404, None))]);
    let clock = Arc::new(FakeClock::new());
    let pool = pool(&[C], Selection::Random, &clock);
    let client = client(&fake, Arc::clone(&pool)).build();
    let err = client.current(&london(), Units::Metric).await.unwrap_err();
    assert_eq!(err, Error::PlaceNotFound);
    assert_eq!(pool.stats()[0].accepted, 1);

    // Nothing listens on port 9 of 127.0.0.1.
    let closed = WeatherClient::builder(pool)
        .base_url("http://127.0.0.1:9")
        .unwrap()
        .retry_backoff(Duration::from_millis(1))
        .without_cache()
        .build();
    let err = closed.current(&london(), Units::Metric).await.unwrap_err();
    assert!(
        matches!(err, Error::Connect | Error::Timeout { .. }),
        "{err:?}"
    );
    assert_no_key(&err);
}

#[actix_rt::test]
async fn request_carries_the_encoded_place_units_and_key() {
    let fake = Fake::start(&[(C, Script::Ok)]);
    let clock = Arc::new(FakeClock::new());
    let client = client(&fake, pool(&[C], Selection::Random, &clock)).build();
    client
        .current(
            &Location::city("  Saint-Étienne,  FR ").unwrap(),
            Units::Imperial,
        )
        .await
        .unwrap();
    client
        .current(
            &Location::coords(51.508_53, -0.125_74).unwrap(),
            Units::Standard,
        )
        .await
        .unwrap();
    assert_eq!(
        fake.queries(),
        [
            format!("q=Saint-%C3%89tienne%2C%20FR&units=imperial&appid={C}"),
            format!("lat=51.5085&lon=-0.1257&units=standard&appid={C}"),
        ]
    );
}

#[actix_rt::test]
async fn the_cache_serves_repeats_without_an_upstream_call_until_the_ttl() {
    let fake = Fake::start(&[(C, Script::Ok)]);
    let clock = Arc::new(FakeClock::new());
    let cache = Arc::new(WeatherCache::with_clock(
        WeatherCache::DEFAULT_TTL,
        WeatherCache::DEFAULT_CAPACITY,
        clock.clone(),
    ));
    let client = client(&fake, pool(&[C], Selection::Random, &clock))
        .cache(cache)
        .build();

    let first = client.current(&london(), Units::Metric).await.unwrap();
    let second = client
        .current(&Location::city(" LONDON ").unwrap(), Units::Metric)
        .await
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(fake.calls(C), 1);

    // Other units are another entry.
    client.current(&london(), Units::Imperial).await.unwrap();
    assert_eq!(fake.calls(C), 2);

    clock.advance(Duration::from_secs(9 * 60));
    client.current(&london(), Units::Metric).await.unwrap();
    assert_eq!(fake.calls(C), 2);
    clock.advance(Duration::from_secs(60));
    client.current(&london(), Units::Metric).await.unwrap();
    assert_eq!(fake.calls(C), 3);
}

#[actix_rt::test]
async fn errors_are_not_cached() {
    let fake = Fake::start(&[(C, Script::Status(404, None))]);
    let clock = Arc::new(FakeClock::new());
    let client = WeatherClient::builder(pool(&[C], Selection::Random, &clock))
        .base_url(&fake.base_url)
        .unwrap()
        .build();
    assert_eq!(
        client.current(&london(), Units::Metric).await.unwrap_err(),
        Error::PlaceNotFound
    );
    fake.set(C, Script::Ok);
    client.current(&london(), Units::Metric).await.unwrap();
    assert_eq!(fake.calls(C), 2);
}

#[actix_rt::test]
async fn concurrent_misses_on_one_thread_make_one_upstream_call() {
    let fake = Fake::start(&[(C, Script::Gated)]);
    let clock = Arc::new(FakeClock::new());
    let client = client(&fake, pool(&[C], Selection::Random, &clock))
        .cache(Arc::new(WeatherCache::default()))
        .build();
    let loc = london();
    let opener = async {
        // By now every request below has been polled once and joined the pending fetch.
        while fake.calls(C) == 0 {
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
        fake.open_gate();
    };
    let (r1, r2, r3, r4, ()) = tokio::join!(
        client.current(&loc, Units::Metric),
        client.current(&loc, Units::Metric),
        client.current(&loc, Units::Metric),
        client.current(&loc, Units::Metric),
        opener,
    );
    for r in [r1, r2, r3, r4] {
        assert_eq!(r.unwrap().place, "London");
    }
    assert_eq!(fake.calls(C), 1);
}

#[test]
fn concurrent_misses_across_threads_make_one_upstream_call() {
    let fake = Fake::start(&[(C, Script::Gated)]);
    let clock = Arc::new(FakeClock::new());
    let builder = client(&fake, pool(&[C], Selection::Random, &clock))
        .cache(Arc::new(WeatherCache::default()));
    let (joined_tx, joined_rx) = std::sync::mpsc::channel();
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let builder = builder.clone();
            let joined = joined_tx.clone();
            std::thread::spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let client = builder.build();
                    let loc = london();
                    let (a, b, ()) = tokio::join!(
                        client.current(&loc, Units::Metric),
                        client.current(&loc, Units::Metric),
                        // Polled after both requests: they have reached the cache.
                        async { joined.send(()).unwrap() },
                    );
                    (a.unwrap(), b.unwrap())
                })
            })
        })
        .collect();
    for _ in 0..3 {
        joined_rx.recv().unwrap();
    }
    // Every request is now either the one upstream call or waiting for it.
    fake.open_gate();
    for t in threads {
        let (a, b) = t.join().unwrap();
        assert_eq!(a.place, "London");
        assert_eq!(a, b);
    }
    assert_eq!(fake.calls(C), 1);
}

#[actix_rt::test]
async fn nothing_shows_a_key() {
    let fake = Fake::start(&[(C, Script::Ok)]);
    let clock = Arc::new(FakeClock::new());
    let pool = pool(&[A, B, C, D], Selection::Random, &clock);
    let builder = client(&fake, Arc::clone(&pool));
    let client = builder.build();
    let picked = pool.pick().unwrap();
    let shown = format!(
        "{pool:?} {builder:?} {client:?} {picked:?} {:?} {:?} {}",
        pool.stats(),
        picked.key(),
        picked.fingerprint()
    );
    for key in ALL {
        assert!(!shown.contains(key), "key leaked in {shown}");
    }
}

#[test]
fn base_urls_are_validated() {
    let clock = Arc::new(FakeClock::new());
    let pool = pool(&[C], Selection::Random, &clock);
    for bad in [
        "",
        "api.openweathermap.org",
        "ftp://example.com",
        "http://user:pw@example.com",
        "http://example.com/?appid=x",
        "http://example.com/#x",
        "file:///etc/passwd",
    ] {
        let err = WeatherClient::builder(Arc::clone(&pool))
            .base_url(bad)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{bad}: {err:?}");
    }
    assert!(
        WeatherClient::builder(pool)
            .base_url("https://staging.example.com/openweather/")
            .is_ok()
    );
}

/// With the `rustls` feature the client builds its TLS configuration (the ring provider is
/// found) and a TLS handshake against a plain-HTTP server is a typed error, not a panic.
#[cfg(feature = "rustls")]
#[actix_rt::test]
async fn https_base_urls_speak_tls() {
    let fake = Fake::start(&[(C, Script::Ok)]);
    let clock = Arc::new(FakeClock::new());
    let https = fake.base_url.replace("http://", "https://");
    let client = WeatherClient::builder(pool(&[C], Selection::Random, &clock))
        .base_url(&https)
        .unwrap()
        .timeout(Duration::from_secs(2))
        .retry_backoff(Duration::from_millis(1))
        .without_cache()
        .build();
    let err = client.current(&london(), Units::Metric).await.unwrap_err();
    assert!(
        matches!(err, Error::Connect | Error::Timeout { .. }),
        "{err:?}"
    );
    assert_no_key(&err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reqwest_client_is_send_and_falls_over_like_the_awc_one() {
    let fake = Fake::start(&[
        (A, Script::Status(401, None)),
        (B, Script::Status(429, Some("2"))),
        (C, Script::Ok),
    ]);
    let clock = Arc::new(FakeClock::new());
    let pool = pool(&[A, B, C], Selection::RoundRobin, &clock);
    let client = Arc::new(client(&fake, Arc::clone(&pool)).build_reqwest().unwrap());
    let weather = client.current(&london(), Units::Metric).await.unwrap();
    assert_eq!(weather.place, "London");
    assert_eq!((fake.calls(A), fake.calls(B), fake.calls(C)), (1, 1, 1));
    // Its futures are `Send`: spawned on a multi-threaded runtime, as an axum handler is.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let client = Arc::clone(&client);
            tokio::spawn(async move { client.current(&london(), Units::Metric).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().place, "London");
    }
    assert_eq!((fake.calls(A), fake.calls(B), fake.calls(C)), (1, 1, 9));
}

#[tokio::test]
async fn the_reqwest_client_types_its_failures_and_leaks_no_key() {
    let fake = Fake::start(&[
        (C, Script::Body("x".repeat(4096))),
        (D, Script::Sleep(Duration::from_secs(20))),
    ]);
    let clock = Arc::new(FakeClock::new());
    let big = client(&fake, pool(&[C], Selection::Random, &clock))
        .max_body_bytes(1024)
        .build_reqwest()
        .unwrap();
    let err = big.current(&london(), Units::Metric).await.unwrap_err();
    assert_eq!(err, Error::BodyTooLarge { limit: 1024 });
    let slow = client(&fake, pool(&[D], Selection::Random, &clock))
        .timeout(SHORT)
        .build_reqwest()
        .unwrap();
    let err = slow.current(&london(), Units::Metric).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_no_key(&err);
    let closed = WeatherClient::builder(pool(&[C], Selection::Random, &clock))
        .base_url("http://127.0.0.1:9")
        .unwrap()
        .retry_backoff(Duration::from_millis(1))
        .without_cache()
        .build_reqwest()
        .unwrap();
    let err = closed.current(&london(), Units::Metric).await.unwrap_err();
    assert!(
        matches!(err, Error::Connect | Error::Timeout { .. }),
        "{err:?}"
    );
    assert_no_key(&err);
}
