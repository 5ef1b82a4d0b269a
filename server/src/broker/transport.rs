//! [`Transport`]: the seam between the broker and a cluster.

use serde_json::Value;

use super::{ActionResult, BoxFuture, Event};

/// How events and calls reach other nodes: the seam for the cluster transport.
///
/// The embedded default has no transport: everything stays in process.
pub trait Transport: Send + Sync + 'static {
    /// Send `event` to every other node that listens to it.
    fn broadcast<'a>(&'a self, event: &'a str, params: &'a Value) -> BoxFuture<'a, ()>;
    /// Send `event` to every other node that listens to it, with its request ID in every copy
    /// (what the shared recovery history deduplicates by). The default sends it as
    /// [`broadcast`](Self::broadcast) does, without the ID.
    fn broadcast_event<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, ()> {
        self.broadcast(&event.name, &event.params)
    }
    /// Send `event` to one listener per group among other nodes. Returns the groups reached.
    fn emit<'a>(
        &'a self,
        event: &'a str,
        params: &'a Value,
        skip_groups: &'a [String],
    ) -> BoxFuture<'a, Vec<String>>;
    /// Call `action` on another node; `None` when no other node offers it.
    fn call<'a>(
        &'a self,
        action: &'a str,
        params: &'a Value,
    ) -> BoxFuture<'a, Option<ActionResult>>;
    /// Appends the transport's own metrics, in the Prometheus text format (`# HELP`/`# TYPE`
    /// lines and samples, each line ending with `\n`), to `out`; the gateway's `/metrics` shows
    /// them after its own. The default appends nothing.
    fn render_metrics(&self, _out: &mut String) {}
}
