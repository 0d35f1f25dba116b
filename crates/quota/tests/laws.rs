//! proptest: whatever the sequence of calls, no policy grants more than it allows over any window,
//! and a fixed window grants every call that fits.

use core::num::NonZeroU64;
use std::time::Duration;

use proptest::prelude::*;
use quota::{FakeClock, MemoryBackend, Policy, Window};

const START: u64 = 1_767_225_000; // a few minutes before 2026-01-01T00:00:00Z

fn calls() -> impl Strategy<Value = Vec<(u64, u64)>> {
    // (nanoseconds to wait before the call, cost)
    prop::collection::vec((0..20_000_000_000u64, 0..6u64), 1..300)
}

proptest! {
    #[test]
    fn fixed_window_grants_exactly_what_fits(
        limit in 1..20u64,
        window in prop::sample::select(vec![Window::Minute, Window::Hour, Window::Day]),
        calls in calls(),
    ) {
        let clock = FakeClock::at_unix_secs(START);
        let policy = Policy::fixed(window, NonZeroU64::new(limit).unwrap_or(NonZeroU64::MIN));
        let limiter = MemoryBackend::builder(policy).clock(clock.clone()).build().unwrap();
        let mut model: (u64, u64) = (0, 0); // (window start, used)
        for (wait, cost) in calls {
            clock.advance(Duration::from_nanos(wait));
            let start = window.bounds(clock_secs(&clock)).0;
            if model.0 != start {
                model = (start, 0);
            }
            let fits = model.1 + cost <= limit;
            let d = limiter.decide("k", cost).unwrap();
            prop_assert_eq!(d.is_allowed(), fits);
            if fits {
                model.1 += cost;
            }
            prop_assert!(model.1 <= limit);
            prop_assert_eq!(d.remaining(), limit - model.1);
        }
    }

    #[test]
    fn gcra_never_grants_more_than_burst_plus_rate_over_any_interval(
        limit in 1..10u64,
        period_ms in 1..120_000u64,
        burst in 1..10u64,
        calls in calls(),
    ) {
        let clock = FakeClock::at_unix_secs(START);
        let policy = Policy::gcra(
            NonZeroU64::new(limit).unwrap_or(NonZeroU64::MIN),
            Duration::from_millis(period_ms),
        )
        .unwrap()
        .with_burst(NonZeroU64::new(burst).unwrap_or(NonZeroU64::MIN))
        .unwrap();
        let emission = policy.emission_interval().unwrap().as_nanos();
        let limiter = MemoryBackend::builder(policy).clock(clock.clone()).build().unwrap();
        let mut grants: Vec<(u128, u64)> = Vec::new();
        for (wait, cost) in calls {
            clock.advance(Duration::from_nanos(wait));
            let d = limiter.decide("k", cost).unwrap();
            if d.is_allowed() {
                grants.push((u128::from(clock_nanos(&clock)), cost));
            } else if let Some(wait) = d.retry_after() {
                // The promised wait is enough, and not a nanosecond too long.
                let probe = MemoryBackend::builder(policy).clock(clock.clone()).build().unwrap();
                prop_assert!(probe.restore(&limiter.snapshot()).is_ok());
                clock.advance(wait - Duration::from_nanos(1));
                prop_assert!(!probe.decide("k", cost).unwrap().is_allowed());
                clock.advance(Duration::from_nanos(1));
                prop_assert!(probe.decide("k", cost).unwrap().is_allowed());
                clock.set_unix_nanos(clock_nanos(&clock) - wait.as_nanos() as u64);
            }
        }
        // Over any interval [t_i, t_j], grants <= burst + (t_j - t_i) / emission.
        for i in 0..grants.len() {
            let mut spent = 0;
            for &(t, cost) in &grants[i..] {
                spent += u128::from(cost);
                let allowed = u128::from(burst) + (t - grants[i].0) / emission;
                prop_assert!(spent <= allowed, "{} granted where {} allowed", spent, allowed);
            }
        }
    }
}

fn clock_nanos(clock: &FakeClock) -> u64 {
    use quota::Clock;
    clock.now_nanos()
}

fn clock_secs(clock: &FakeClock) -> u64 {
    clock_nanos(clock) / 1_000_000_000
}

mod forwarded {
    //! The `X-Forwarded-For` walk behind trusted proxies.

    use std::net::{IpAddr, Ipv4Addr};

    use proptest::prelude::*;
    use quota::ForwardedIp;

    /// Trusted: 10.0.0.0/8. Addresses are drawn from 10.x (trusted) and 203.0.113.x (not).
    fn hop() -> impl Strategy<Value = IpAddr> {
        (any::<bool>(), any::<u8>()).prop_map(|(trusted, last)| {
            IpAddr::V4(if trusted {
                Ipv4Addr::new(10, 0, 0, last)
            } else {
                Ipv4Addr::new(203, 0, 113, last)
            })
        })
    }

    fn is_trusted(ip: IpAddr) -> bool {
        matches!(ip, IpAddr::V4(v4) if v4.octets()[0] == 10)
    }

    fn line(hops: &[IpAddr]) -> String {
        hops.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    proptest! {
        #[test]
        fn the_client_is_the_right_most_untrusted_hop_and_never_a_proxy(
            peer in hop(),
            chain in prop::collection::vec(hop(), 0..8),
            forged in prop::collection::vec("[ -~]{0,20}", 0..4),
        ) {
            let walk = ForwardedIp::new(["10.0.0.0/8".parse().unwrap()]);
            let header = line(&chain);
            let got = walk.client(peer, &[header.as_bytes()]);
            let expected = if is_trusted(peer) {
                chain.iter().rev().copied().find(|ip| !is_trusted(*ip))
            } else {
                Some(peer)
            };
            prop_assert_eq!(got.as_ref().ok().copied(), expected);
            if let Ok(client) = got {
                // A trusted peer never hands out a proxy's address.
                prop_assert!(!is_trusted(peer) || !is_trusted(client));
                // Whatever a client writes left of its own entry changes nothing.
                let prefixed = format!("{}, {header}", forged.join(", "));
                let again = walk.client(peer, &[prefixed.as_bytes()]);
                prop_assert_eq!(again.ok(), Some(client));
            }
        }
    }
}
