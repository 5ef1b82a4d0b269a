//! The moleculer-ws conformance harness.
//!
//! - [`check_gateway`]: checks any gateway, by URL, against the contract (docs/protocol.md
//!   sections 1 and 2, and the event streams of section 6.7): one named case per rule, each a
//!   [`CaseResult`].
//! - [`FaultProxy`]: a TCP proxy on 127.0.0.1 that injects faults between a client and a
//!   gateway (pass, blackhole, delay, cut, slice, refuse-upgrades, down).
//! - [`check_rust_client`]: drives our Rust client through the proxy, fault by fault.
//! - [`Balancer`]: a round-robin TCP balancer in front of several gateways.
//!
//! The `moleculer-ws-conformance` program runs them from the command line.
//!
//! ```no_run
//! # async fn run() {
//! use moleculer_ws_conformance::{check_gateway, report, GatewayTarget};
//! let target = GatewayTarget::new("http://127.0.0.1:3000".parse().unwrap());
//! let results = check_gateway(target).await;
//! print!("{}", report::table(&results));
//! assert!(!report::any_failed(&results));
//! # }
//! ```

mod balancer;
mod clients;
mod gateway;
mod proxy;
pub mod report;
mod wire;

pub use balancer::Balancer;
pub use clients::{check_rust_client, ClientTarget};
pub use gateway::{check_gateway, GatewayTarget};
pub use proxy::{Fault, FaultProxy};
pub use report::{CaseResult, Outcome};
