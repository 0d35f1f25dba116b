//! The per-client limit on `/register` and `/login` (5 per minute per address by default).
//!
//! The client is the TCP peer address. IPv6 peers are grouped by their /64 prefix, since one
//! host usually holds a whole /64. `X-Forwarded-For` is not trusted: it is set by the client.

use std::net::IpAddr;

use actix_web::HttpRequest;

use crate::error::ApiError;
use crate::state::AppState;

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
        let bucket = client_bucket(req.peer_addr().map(|a| a.ip()));
        let decision = self.login_limit.decide(&bucket, 1, None).await?;
        if decision.is_allowed() {
            return Ok(());
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
