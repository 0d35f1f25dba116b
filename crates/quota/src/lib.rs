#![doc = include_str!("../README.md")]

mod backend;
mod chain;
mod clock;
mod decision;
mod error;
mod fallback;
#[cfg(any(feature = "actix", feature = "tower"))]
mod http;
mod memory;
mod policy;
#[cfg(feature = "redis")]
mod redis_backend;

pub use backend::{Backend, Usage};
pub use chain::{Cause, Chain, Rule, Stop};
pub use clock::{Clock, FakeClock, FastClock, SystemClock};
pub use decision::{Decision, NEVER, Status};
/// Re-exported: one of two backends is a backend (see [`Backend`]).
pub use either::Either;
pub use error::{Error, Result};
pub use fallback::{FailMode, FallbackBackend, FallbackBuilder};
#[cfg(any(feature = "actix", feature = "tower"))]
pub use http::{
    Call, ForwardedIp, FromExtension, FromHeader, HeaderFields, KeyExtractor, PeerIp, QuotaKey,
    RateLimit, RateLimitBuilder, Refusal, RefusalReason, Rejection, RequestView, Unkeyed, Verdict,
};
#[cfg(feature = "actix")]
pub use http::{RateLimitMiddleware, actix_response, append_allowed_fields};
#[cfg(feature = "tower")]
pub use http::{RateLimitService, ResponseFuture, http_response};
pub use memory::{DEFAULT_MAX_KEY_LEN, DEFAULT_MAX_KEYS, MemoryBackend, MemoryBuilder, Snapshot};
pub use policy::{Policy, Window};
#[cfg(feature = "redis")]
pub use redis_backend::{MemoryPolicy, RedisBackend, RedisBuilder};
