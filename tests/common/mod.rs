//! Shared helpers for integration tests. Include with `mod common;`.
#![allow(dead_code)]

pub mod c1_key;
pub mod c1z_reader;
pub mod connect_proxy;
pub mod dump;
pub mod fake_c1;
pub mod harness;
pub mod log_watch;
pub mod refusing_proxy;
pub mod tls_server;
