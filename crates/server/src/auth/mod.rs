//! Authentication: API keys, signed requests, accounts, passwords, JWTs, client limits.

pub mod accounts;
pub mod api_key;
pub mod bearer;
pub mod client_limit;
pub mod jwt;
pub mod password;
pub mod signed;
