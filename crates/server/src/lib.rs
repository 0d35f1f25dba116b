#![doc = include_str!("../README.md")]

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod extract;
pub mod keys;
pub mod limits;
pub mod observe;
pub mod routes;
pub mod sealing;
pub mod shared;
pub mod startup;
pub mod state;
pub mod store;
pub mod work;
