//! baton-torq: a ConductorOne Baton connector for Torq.
//!
//! Data flows one way: [`cli`] parses the configuration, [`torq`] talks to the Torq REST API,
//! [`connector`] turns Torq objects into Baton resources, entitlements and grants, [`c1z`] writes them into a
//! sync file, and [`sync`] drives the whole run. [`sim`] is a simulated Torq workspace server used by the demo,
//! the tests and the benchmark.

pub mod c1z;
pub mod proto;
