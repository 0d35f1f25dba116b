#![doc = include_str!("../README.md")]

pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod keys;
pub mod routes;
pub mod sealing;
pub mod startup;
pub mod state;
pub mod store;
