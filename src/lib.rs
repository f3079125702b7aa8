//! baton-torq: a ConductorOne Baton connector for Torq.
//!
//! Data flows one way: [`cli`] parses the configuration, [`torq`] talks to the Torq REST API,
//! [`connector`] turns Torq objects into Baton resources, entitlements and grants, [`c1z`] writes them into a
//! sync file, and [`sync`] drives the whole run; [`app`] runs the chosen command; [`provision`] invites users (account creation) and answers
//! the provisioning requests Torq's API cannot carry out. [`review`] reads a finished sync file offline and
//! reports findings and changes for an access review. [`service`] runs the connector as a ConductorOne daemon (service mode). [`sim`] is a simulated Torq
//! workspace server used by the demo, the tests and the benchmark.

pub mod app;
pub mod c1z;
pub mod cli;
pub mod config_file;
pub mod connector;
pub mod escape;
pub mod progress;
pub mod proto;
pub mod provision;
mod regular_file;
pub mod review;
pub mod service;
pub mod signal;
pub mod sim;
pub mod sync;
pub mod torq;
