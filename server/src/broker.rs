//! The service broker: actions, event listeners, `broadcast`/`emit`/`call`.
//!
//! The in-process broker is the embedded default. A cluster transport plugs in behind the same
//! interface through [`Transport`]: the broker asks it to carry events and calls to other nodes
//! and is fed the events and calls that other nodes send ([`Broker::deliver_event`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};

use serde_json::Value;
use tokio::sync::watch;

use crate::error::MoleculerError;
use crate::history::HistoryHost;

mod transport;
use crate::sync::{read, write};
pub use transport::Transport;

/// A boxed, sendable future, as the broker's object-safe traits return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an action handler returns.
pub type ActionResult = Result<Value, MoleculerError>;

/// The call context an action receives.
#[derive(Clone)]
#[non_exhaustive]
pub struct Context {
    /// The action's name, e.g. `chat.send`.
    pub action: String,
    /// The call's params (for REST calls: path variables, query and body merged).
    pub params: Value,
    /// The broker, so an action can broadcast or call further.
    pub broker: Broker,
}

/// An event as listeners receive it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Event {
    /// The event name, e.g. `websocket.send`.
    pub name: String,
    /// The event params.
    pub params: Value,
    /// The node that sent it; `None` for a local event.
    pub sender: Option<String>,
    /// The ID the sender gave this event (Moleculer's `requestID`, else the packet's `id`),
    /// the same in every copy a broadcast sends to the nodes; `None` when it had none. Local
    /// broadcasts get a fresh one. The shared recovery history stores a message once per ID.
    pub request_id: Option<String>,
}

type ActionFn = Arc<dyn Fn(Context) -> BoxFuture<'static, ActionResult> + Send + Sync>;
type ListenerFn = Arc<dyn Fn(&Event) + Send + Sync>;

struct Listener {
    group: String,
    handler: ListenerFn,
}

struct Inner {
    node_id: String,
    actions: RwLock<HashMap<String, ActionFn>>,
    listeners: RwLock<HashMap<String, Vec<Listener>>>,
    transport: RwLock<Option<Arc<dyn Transport>>>,
    /// The gateway that keeps recovery histories on this broker, for a cluster's shared history.
    history_host: RwLock<Option<Weak<dyn HistoryHost>>>,
    /// Request IDs of local broadcasts: a random instance prefix and a counter.
    instance: u64,
    next_request: AtomicU64,
    round_robin: AtomicUsize,
    /// Bumped whenever an action or listener is added: a cluster re-announces the node.
    services_version: watch::Sender<u64>,
}

/// A broker reference that does not keep it alive (a transport's way back to its broker).
#[derive(Clone)]
pub(crate) struct WeakBroker(Weak<Inner>);

impl WeakBroker {
    /// The broker, while it exists.
    pub(crate) fn upgrade(&self) -> Option<Broker> {
        self.0.upgrade().map(|inner| Broker { inner })
    }
}

/// The service broker. Cheap to clone; every clone is the same broker.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

impl Default for Broker {
    fn default() -> Self {
        Self::new(format!("moleculer-ws-{}", std::process::id()))
    }
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("node_id", &self.inner.node_id)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// A broker for the node `node_id`, with no transport (in process only).
    pub fn new(node_id: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                node_id: node_id.into(),
                actions: RwLock::default(),
                listeners: RwLock::default(),
                transport: RwLock::default(),
                history_host: RwLock::default(),
                instance: crate::history::random_u64(),
                next_request: AtomicU64::new(1),
                round_robin: AtomicUsize::new(0),
                services_version: watch::Sender::new(0),
            }),
        }
    }

    /// This node's ID.
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// Registers (or replaces) the action `name`.
    pub fn add_action<F, Fut>(&self, name: impl Into<String>, handler: F)
    where
        F: Fn(Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ActionResult> + Send + 'static,
    {
        let handler: ActionFn = Arc::new(move |ctx| Box::pin(handler(ctx)));
        write(&self.inner.actions).insert(name.into(), handler);
        self.services_changed();
    }

    /// Registers a listener of `event` in `group` (Moleculer's service name: `emit` reaches one
    /// listener per group, `broadcast` reaches all).
    pub fn on_event<F>(&self, event: impl Into<String>, group: impl Into<String>, handler: F)
    where
        F: Fn(&Event) + Send + Sync + 'static,
    {
        write(&self.inner.listeners)
            .entry(event.into())
            .or_default()
            .push(Listener {
                group: group.into(),
                handler: Arc::new(handler),
            });
        self.services_changed();
    }

    /// Plugs in a cluster transport.
    pub fn set_transport(&self, transport: Arc<dyn Transport>) {
        *write(&self.inner.transport) = Some(transport);
    }

    /// Unplugs the cluster transport: from now on everything stays in process.
    pub fn clear_transport(&self) {
        *write(&self.inner.transport) = None;
    }

    /// The gateway keeping recovery histories on this broker registers itself here; a
    /// cluster started on the broker then shares them through its engine.
    pub(crate) fn set_history_host(&self, host: Weak<dyn HistoryHost>) {
        *write(&self.inner.history_host) = Some(host);
    }

    pub(crate) fn history_host(&self) -> Option<Arc<dyn HistoryHost>> {
        read(&self.inner.history_host).as_ref()?.upgrade()
    }

    /// A request ID for a local broadcast: unique per broker instance, across restarts too.
    fn new_request_id(&self) -> String {
        let n = self.inner.next_request.fetch_add(1, Ordering::Relaxed);
        format!("{}-{:016x}-{n}", self.inner.node_id, self.inner.instance)
    }

    pub(crate) fn downgrade(&self) -> WeakBroker {
        WeakBroker(Arc::downgrade(&self.inner))
    }

    /// Changes whenever an action or a listener is added.
    pub(crate) fn watch_services(&self) -> watch::Receiver<u64> {
        self.inner.services_version.subscribe()
    }

    fn services_changed(&self) {
        self.inner
            .services_version
            .send_modify(|v| *v = v.wrapping_add(1));
    }

    /// The names of the local actions (what a node announces to its cluster).
    pub fn local_actions(&self) -> Vec<String> {
        read(&self.inner.actions).keys().cloned().collect()
    }

    /// The local event names with their listeners' groups.
    pub fn local_events(&self) -> HashMap<String, Vec<String>> {
        read(&self.inner.listeners)
            .iter()
            .map(|(event, ls)| (event.clone(), ls.iter().map(|l| l.group.clone()).collect()))
            .collect()
    }

    /// Sends `event` to every listener, local and (through the transport) remote.
    pub async fn broadcast(&self, event: &str, params: Value) {
        let event = Event {
            name: event.to_owned(),
            params,
            sender: None,
            request_id: Some(self.new_request_id()),
        };
        self.deliver_event(&event);
        if let Some(transport) = self.transport() {
            transport.broadcast_event(&event).await;
        }
    }

    /// Sends `event` to one listener per group, preferring local listeners.
    pub async fn emit(&self, event: &str, params: Value) {
        let ev = Event {
            name: event.to_owned(),
            params,
            sender: None,
            request_id: Some(self.new_request_id()),
        };
        let reached = self.deliver_balanced(&ev);
        if let Some(transport) = self.transport() {
            transport.emit(event, &ev.params, &reached).await;
        }
    }

    /// Calls `action`: locally when this node has it, else through the transport.
    ///
    /// Errors: `SERVICE_NOT_FOUND` (404) when no node offers it; whatever the action returns;
    /// a 500 `INTERNAL_ERROR` (with no panic details) if the action panics.
    pub async fn call(&self, action: &str, params: Value) -> ActionResult {
        if !read(&self.inner.actions).contains_key(action) {
            if let Some(transport) = self.transport() {
                if let Some(result) = transport.call(action, &params).await {
                    return result;
                }
            }
        }
        self.call_local(action, params)
            .await
            .unwrap_or_else(|| Err(MoleculerError::service_not_found(action)))
    }

    /// Runs `action` on this node only (a transport answers the calls of other nodes with it);
    /// `None` when this node does not have it. A panicking action gives a 500 `INTERNAL_ERROR`.
    ///
    /// The action runs in a task of its own; dropping the returned future (a caller's timeout)
    /// aborts it, so an abandoned call does not keep running.
    pub async fn call_local(&self, action: &str, params: Value) -> Option<ActionResult> {
        let handler = read(&self.inner.actions).get(action).cloned()?;
        let ctx = Context {
            action: action.to_owned(),
            params,
            broker: self.clone(),
        };
        let task = AbortOnDrop(tokio::spawn(handler(ctx)));
        Some(match task.join().await {
            Ok(result) => result,
            Err(join) => {
                tracing::error!(action, panicked = join.is_panic(), "action task failed");
                Err(MoleculerError::internal("The action failed unexpectedly."))
            }
        })
    }

    /// Feeds an event to every local listener of it. A transport calls this for the events
    /// other nodes send; returns how many listeners ran.
    pub fn deliver_event(&self, event: &Event) -> usize {
        let handlers: Vec<ListenerFn> = read(&self.inner.listeners)
            .get(&event.name)
            .map(|ls| ls.iter().map(|l| l.handler.clone()).collect())
            .unwrap_or_default();
        for handler in &handlers {
            handler(event);
        }
        handlers.len()
    }

    /// Feeds an event that another node sent to the local listeners of `groups` (every group
    /// when `None`): all of them when `balanced` is false (a broadcast), else one per group (an
    /// emit). Returns how many listeners ran.
    pub fn deliver_to_groups(
        &self,
        event: &Event,
        groups: Option<&[String]>,
        balanced: bool,
    ) -> usize {
        let wanted = |group: &str| groups.is_none_or(|gs| gs.iter().any(|g| g == group));
        let mut by_group: Vec<(String, Vec<ListenerFn>)> = Vec::new();
        if let Some(ls) = read(&self.inner.listeners).get(&event.name) {
            for l in ls.iter().filter(|l| wanted(&l.group)) {
                match by_group.iter_mut().find(|(g, _)| *g == l.group) {
                    Some((_, hs)) => hs.push(l.handler.clone()),
                    None => by_group.push((l.group.clone(), vec![l.handler.clone()])),
                }
            }
        }
        let turn = self.inner.round_robin.fetch_add(1, Ordering::Relaxed);
        let mut ran = 0;
        for (_, handlers) in by_group {
            if balanced {
                if let Some(handler) = handlers.get(turn % handlers.len()) {
                    handler(event);
                    ran += 1;
                }
            } else {
                for handler in &handlers {
                    handler(event);
                }
                ran += handlers.len();
            }
        }
        ran
    }

    /// Feeds an event to one local listener per group; returns the groups reached.
    pub fn deliver_balanced(&self, event: &Event) -> Vec<String> {
        let mut by_group: HashMap<String, Vec<ListenerFn>> = HashMap::new();
        if let Some(ls) = read(&self.inner.listeners).get(&event.name) {
            for l in ls {
                by_group
                    .entry(l.group.clone())
                    .or_default()
                    .push(l.handler.clone());
            }
        }
        let turn = self.inner.round_robin.fetch_add(1, Ordering::Relaxed);
        let mut reached = Vec::with_capacity(by_group.len());
        for (group, handlers) in by_group {
            if let Some(handler) = handlers.get(turn % handlers.len()) {
                handler(event);
            }
            reached.push(group);
        }
        reached
    }

    /// Appends the metrics of the transport, when one is plugged in (see
    /// [`Transport::render_metrics`]).
    pub(crate) fn render_transport_metrics(&self, out: &mut String) {
        if let Some(transport) = self.transport() {
            transport.render_metrics(out);
        }
    }

    fn transport(&self) -> Option<Arc<dyn Transport>> {
        read(&self.inner.transport).clone()
    }
}

/// A spawned action: aborted when dropped before it finished.
struct AbortOnDrop(tokio::task::JoinHandle<ActionResult>);

impl AbortOnDrop {
    async fn join(mut self) -> Result<ActionResult, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests;
