//! Laws checked with proptest: input validation, the upstream parser, and pool health.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use weather_keypool::{Error, FakeClock, KeyHealth, KeyPool, Outcome, Selection, UpstreamKey};

#[derive(Debug, Clone)]
enum Step {
    Pick,
    Report(usize, u16, Option<u8>),
    Advance(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Pick),
        (
            0..4usize,
            prop::sample::select(vec![200u16, 401, 403, 404, 429, 500, 503]),
            prop::option::of(0..120u8)
        )
            .prop_map(|(k, s, r)| Step::Report(k, s, r)),
        (0..200u16).prop_map(Step::Advance),
    ]
}

proptest! {
    /// Whatever the upstream says and however time moves, a key that is cooling down is never
    /// handed out, and an empty hand means every key really is cooling, with the right wait.
    #[test]
    fn a_cooling_key_is_never_picked(
        steps in prop::collection::vec(step(), 1..80),
        round_robin in any::<bool>(),
    ) {
        let clock = Arc::new(FakeClock::new());
        let names = ["k0", "k1", "k2", "k3"];
        let pool = KeyPool::builder()
            .clock(clock.clone())
            .selection(if round_robin { Selection::RoundRobin } else { Selection::Random })
            .rejected_cooldown(Duration::from_secs(300))
            .build(names.map(|n| UpstreamKey::new(n).unwrap()))
            .unwrap();
        // Every key's id, taken while all are healthy.
        let mut ids = Vec::new();
        for _ in 0..4 {
            let taken: Vec<_> = ids.iter().map(|(_, id)| *id).collect();
            let p = pool.pick_excluding(&taken).unwrap();
            ids.push((p.key().expose_secret().to_owned(), p.id()));
        }
        for step in steps {
            match step {
                Step::Pick => {
                    let stats = pool.stats();
                    let healthy: Vec<bool> = stats.iter().map(|s| s.health == KeyHealth::Healthy).collect();
                    match pool.pick() {
                        Ok(p) => {
                            let i = names.iter().position(|n| *n == p.key().expose_secret()).unwrap();
                            prop_assert!(healthy[i], "picked cooling key {i}: {stats:?}");
                        }
                        Err(Error::AllKeysUnavailable { retry_after, rejected, throttled }) => {
                            prop_assert!(healthy.iter().all(|h| !h));
                            prop_assert_eq!(rejected + throttled, 4);
                            let soonest = stats.iter().map(|s| match s.health {
                                KeyHealth::Throttled { remaining } | KeyHealth::Rejected { remaining } => remaining,
                                _ => Duration::ZERO,
                            }).min().unwrap();
                            prop_assert_eq!(retry_after, soonest);
                        }
                        Err(other) => prop_assert!(false, "unexpected {other:?}"),
                    }
                }
                Step::Report(k, status, retry) => {
                    let Some((_, id)) = ids.get(k) else { continue };
                    let retry = retry.map(|r| r.to_string());
                    pool.report(*id, Outcome::from_status(status, retry.as_deref()));
                }
                Step::Advance(secs) => clock.advance(Duration::from_secs(u64::from(secs))),
            }
        }
    }
}

#[cfg(feature = "client")]
mod client_laws {
    use proptest::prelude::*;
    use weather_keypool::{City, Error, Units, parse_current};

    proptest! {
        /// Any body the upstream sends is either parsed or a typed error; never a panic.
        #[test]
        fn the_parser_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_current(&body, Units::Metric);
        }

        /// Near-miss JSON (the real sample with a span replaced) is parsed or a typed error.
        #[test]
        fn the_parser_never_panics_on_mangled_json(
            start in 0..600usize,
            len in 0..40usize,
            insert in "[\\[\\]{}\",:0-9a-z.e+-]{0,12}",
        ) {
            let sample = include_str!("data/london.json");
            let start = start.min(sample.len());
            let end = (start + len).min(sample.len());
            let mangled = format!("{}{}{}", &sample[..start], insert, &sample[end..]);
            match parse_current(mangled.as_bytes(), Units::Metric) {
                Ok(_) | Err(Error::MalformedResponse { .. }) => {}
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }

        /// An accepted city is normalized for good (normalizing again changes nothing) and holds
        /// nothing that could escape the query value.
        #[test]
        fn accepted_cities_are_stable_and_safe(name in "\\PC{0,120}") {
            if let Ok(city) = City::new(&name) {
                prop_assert_eq!(City::new(city.as_str()).unwrap(), city.clone());
                prop_assert!(!city.as_str().contains(['&', '=', '#', '?', '/', '%', '+']));
                prop_assert!(city.as_str().chars().count() <= 100);
            }
        }
    }
}
