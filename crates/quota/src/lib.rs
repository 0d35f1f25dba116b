#![doc = include_str!("../README.md")]
//!
//! # Cargo features
//!
//! - `redis` (off by default): `RedisBackend`, decisions on Redis with one atomic Lua script
//!   per call (tokio, `redis` with its connection manager).

mod backend;
mod clock;
mod decision;
mod error;
mod memory;
mod policy;
#[cfg(feature = "redis")]
mod redis_backend;

pub use backend::{Backend, Usage};
pub use clock::{Clock, FakeClock, FastClock, SystemClock};
pub use decision::{Decision, Status};
pub use error::{Error, Result};
pub use memory::{DEFAULT_MAX_KEY_LEN, DEFAULT_MAX_KEYS, MemoryBackend, MemoryBuilder, Snapshot};
pub use policy::{Policy, Window};
#[cfg(feature = "redis")]
pub use redis_backend::{FailMode, RedisBackend, RedisBuilder};
