//! Authentication: accounts, passwords, JWTs and the extractors handlers use.

pub mod accounts;
pub mod bearer;
pub mod jwt;
pub mod password;
