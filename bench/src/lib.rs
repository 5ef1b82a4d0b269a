//! Benchmarks of moleculer-ws (see `BENCHMARKS.md` at the workspace root).
//!
//! - `loadgen`: opens N WebSockets to a path, keeps the `!` heartbeat, triggers stamped
//!   broadcasts at stepped rates through the REST trigger, and reports deliveries/s,
//!   publish-to-receive latency, loss, reordering, and the server's CPU and RSS.
//! - `naive-server`: the naive tokio-tungstenite baseline (one `send` with flush per message per
//!   client, default buffers, unbounded queues).
//!
//! The library holds the pieces both use and that can be checked without sockets.
//!
//! ```
//! use moleculer_ws_bench::{hist::Histogram, stamp::Stamp};
//! let h = Histogram::default();
//! h.record(1500);
//! assert!(h.quantile(0.99) >= 1500);
//! let s = Stamp { step: 2, seq: 7, micros: 123, path: 0 };
//! assert_eq!(Stamp::parse(&s.to_json(0)), Some(s));
//! ```

pub mod child;
pub mod counting;
pub mod fleet;
pub mod hist;
pub mod probe;
pub mod procstat;
pub mod publisher;
pub mod sse;
pub mod stamp;
