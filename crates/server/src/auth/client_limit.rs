//! The per-client limit on `/register` and `/login` (5 per minute per address by default).
//!
//! The client is the TCP peer address. IPv6 peers are grouped by their /64 prefix, since one
//! host usually holds a whole /64. `X-Forwarded-For` is set by whoever sends the request, so it
//! is read only when the peer is one of the configured trusted proxies (`SECURE_API_TRUSTED_PROXIES`,
//! the load balancers): then the client is the right-most address in it that is not a trusted
//! proxy itself, found by `quota`'s [`ForwardedIp`]. A chain that holds an unreadable entry
//! before that address, or names no client, is refused with 400: it is never counted against
//! the proxy's own address, which would put every client behind it in one bucket.

use std::net::IpAddr;

use actix_web::HttpRequest;

use quota::ForwardedIp;

use crate::error::ApiError;
use crate::state::AppState;

/// The client's address: the peer, or the address a trusted proxy forwarded for.
///
/// # Errors
/// 400 when a trusted proxy's chain holds an unreadable entry or names no client.
pub fn client_ip(
    peer: Option<IpAddr>,
    forwarded_for: &[&[u8]],
    trusted: &ForwardedIp,
) -> Result<Option<IpAddr>, ApiError> {
    let Some(peer) = peer else {
        return Ok(None);
    };
    trusted
        .client(peer, forwarded_for)
        .map(Some)
        .map_err(|refused| ApiError::BadRequest(refused.detail().to_owned()))
}

/// The rate-limit bucket of a client address.
#[must_use]
pub fn client_bucket(ip: Option<IpAddr>) -> String {
    match ip {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => "unknown".to_owned(),
    }
}

impl AppState {
    /// Counts one login or registration attempt from this client; 429 past the limit.
    pub async fn limit_client(&self, req: &HttpRequest) -> Result<(), ApiError> {
        let forwarded: Vec<&[u8]> = req
            .headers()
            .get_all("x-forwarded-for")
            .map(|v| v.as_bytes())
            .collect();
        let trusted = ForwardedIp::new(self.settings.trusted_proxies.iter().copied());
        let client = client_ip(req.peer_addr().map(|a| a.ip()), &forwarded, &trusted)?;
        let bucket = client_bucket(client);
        let decision = self.login_limit.decide(&bucket, 1, None).await?;
        if decision.is_allowed() {
            return Ok(());
        }
        if decision.status() == quota::Status::FailedClosed {
            return Err(crate::limits::redis_unavailable());
        }
        crate::observe::login_limited();
        let retry_after = decision
            .retry_after()
            .map_or(60, |d| d.as_secs_f64().ceil() as u64)
            .max(1);
        tracing::info!(client = %bucket, "login rate limit reached");
        Err(ApiError::RateLimited {
            retry_after,
            headers: decision.headers("login"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let lb = ForwardedIp::new(["10.0.0.0/8".parse().unwrap()]);
        let peer = Some(ip("10.0.0.2"));
        let client = |peer, lines: &[&str]| {
            let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
            client_ip(peer, &lines, &lb).map_err(|e| e.to_string())
        };
        // Behind the load balancer: the address it appended.
        assert_eq!(client(peer, &["203.0.113.9"]), Ok(Some(ip("203.0.113.9"))));
        // A client's own forged entries sit left of the real one and are ignored, garbage
        // included.
        assert_eq!(
            client(peer, &["1.1.1.1, 203.0.113.9"]),
            Ok(Some(ip("203.0.113.9")))
        );
        assert_eq!(
            client(peer, &["not-an-ip, 203.0.113.9"]),
            Ok(Some(ip("203.0.113.9")))
        );
        // Several of our proxies in a row, and the header split over two lines.
        assert_eq!(
            client(peer, &["198.51.100.4", "10.1.1.1"]),
            Ok(Some(ip("198.51.100.4")))
        );
        // An IPv4-mapped peer is the IPv4 proxy.
        assert_eq!(
            client(Some(ip("::ffff:10.0.0.2")), &["203.0.113.9"]),
            Ok(Some(ip("203.0.113.9")))
        );
        // A peer that is not a trusted proxy is the client, whatever it claims.
        assert_eq!(
            client(Some(ip("198.51.100.7")), &["1.1.1.1"]),
            Ok(Some(ip("198.51.100.7")))
        );
        // Garbage where the client should be, or no client at all: refused, never the
        // proxy's own address.
        assert!(client(peer, &["1.1.1.1, not-an-ip"]).is_err());
        assert!(client(peer, &[]).is_err());
        assert!(client(peer, &["10.9.9.9"]).is_err());
        // Nothing trusted: the header is never read.
        let none = ForwardedIp::new([]);
        assert_eq!(client_ip(peer, &[b"203.0.113.9"], &none).unwrap(), peer);
    }

    #[test]
    fn ipv6_clients_share_their_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_bucket(Some(a)), client_bucket(Some(b)));
        assert_ne!(client_bucket(Some(a)), client_bucket(Some(c)));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_bucket(Some(mapped)), "192.0.2.7");
        assert_eq!(client_bucket(None), "unknown");
    }
}
