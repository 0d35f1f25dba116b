#![doc = include_str!("../README.md")]

pub mod auth;
pub mod config;
pub mod error;
pub mod routes;
pub mod state;
pub mod store;
pub mod sealing;
