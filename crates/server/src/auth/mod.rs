//! Authentication: API keys, signed requests, admin tokens, accounts, passwords, JWTs.

pub mod accounts;
pub mod admin;
pub mod api_key;
pub mod bearer;
pub mod chain;
pub mod jwt;
pub mod password;
pub mod principal;
pub mod scope;
pub mod signed;
