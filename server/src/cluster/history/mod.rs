//! The shared recovery history (`crate::history`): the engines that store it (NATS JetStream,
//! Redis Streams), the worker that offers them this gateway's messages, and the reader that
//! mirrors what they stored into the gateway's histories.
//!
//! Every gateway offers every message for a recovering path, with the same ID; the engine
//! stores the first copy, gives it the path's next `<epoch>:<seq>` and drops the others. Each
//! gateway reads every stored message back, in the engine's order, and delivers it from there,
//! so all gateways hand out the same positions in the same order.

#[cfg(feature = "nats")]
mod jetstream;
mod offers;
#[cfg(feature = "redis")]
mod redis;

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::transporter::{reconnect_delays, redact};
use super::ClusterError;
use crate::broker::{BoxFuture, Broker};
use crate::history::{Append, HistoryHost, Tip};

/// Messages waiting to be offered to the engine; beyond this many, a message goes to the
/// recovering sockets here under a local epoch (after a `#reset`).
const APPEND_QUEUE: usize = 4096;
/// How long the start waits for the mirror to read the stored history.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the gateways of a cluster share their recovery histories through the transporter's
/// engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[non_exhaustive]
pub enum SharedHistory {
    /// Shared when the engine offers it (Redis always; NATS when JetStream is enabled), else
    /// kept per gateway with a warning in the log.
    #[default]
    Auto,
    /// Shared; the node does not start when the engine cannot keep it.
    On,
    /// Kept per gateway (in process): a client recovers only from the gateway it left.
    Off,
}

/// A gateway's part in storing the shared history's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The oldest gateway sharing the history: it stores each message as it comes.
    Writer,
    /// An older gateway shares the history: this one stores a message only when the writer
    /// has not, a while after receiving it.
    Follower,
    /// No older gateway is known, but this one joined a moment ago (an older one may not have
    /// announced itself yet): it stands by briefly.
    Settling,
}

/// The bounds of the stored history, the same as the gateway's in-process ones.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_messages: usize,
    pub max_age: Duration,
    pub max_message_size: usize,
}

/// What an offer came to.
#[derive(Debug)]
pub(crate) enum Offered {
    /// Stored now by this offer, as this.
    Stored(crate::history::Stored),
    /// Stored before (a copy from another gateway).
    Done,
    /// The path's newest stored message is not the one the offer followed: ask for the tip.
    WrongTip,
}

/// A history engine: where the messages are stored and read back.
pub(crate) trait Engine: Send + Sync + 'static {
    /// Offers one message, following `tip`.
    fn offer<'a>(&'a self, message: &'a Append, tip: Tip)
        -> BoxFuture<'a, Result<Offered, String>>;
    /// Starts the history of `path` with `epoch`, unless the engine has one already: then its
    /// newest message or position, for a gateway that does not know it.
    fn open<'a>(
        &'a self,
        path: &'a str,
        epoch: u64,
    ) -> BoxFuture<'a, Result<Option<crate::history::Stored>, String>>;
    /// The newest stored message of `path` (`None`: the path has none).
    fn tip<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Option<Tip>, String>>;
    /// Reads every stored message, then each new one, into `host`, forever (reconnecting);
    /// `ready` is sent once what was stored at the start has been read.
    fn follow(
        self: Arc<Self>,
        host: Weak<dyn HistoryHost>,
        ready: oneshot::Sender<()>,
        delays: Duration,
    ) -> BoxFuture<'static, ()>;
}

/// The running shared history of one node: a thread of its own with a runtime of its own, so
/// that offers and reads are not queued behind the fan-out to thousands of sockets.
pub(crate) struct HistoryHandle {
    host: Weak<dyn HistoryHost>,
    /// Dropped to stop the thread (its runtime, and with it every task and connection).
    _stop: oneshot::Sender<()>,
}

impl Drop for HistoryHandle {
    fn drop(&mut self) {
        if let Some(host) = self.host.upgrade() {
            host.attach(None);
        }
    }
}

/// Starts the shared history for the gateway on `broker` (none without a gateway, or with
/// `mode` off), and waits until it mirrors what the engine holds.
pub(crate) async fn start(
    mode: SharedHistory,
    url: &str,
    namespace: &str,
    broker: &Broker,
    max_message_size: usize,
    max_reconnect_delay: Duration,
    role: Arc<dyn Fn() -> Role + Send + Sync>,
) -> Result<Option<HistoryHandle>, ClusterError> {
    if mode == SharedHistory::Off {
        return Ok(None);
    }
    let Some(host) = broker.history_host() else {
        return Ok(None);
    };
    let (max_messages, max_age) = host.limits();
    let limits = Limits {
        max_messages,
        max_age,
        max_message_size,
    };
    let weak = Arc::downgrade(&host);
    drop(host);
    let (stop, stopped) = oneshot::channel::<()>();
    let (connected_tx, connected) = oneshot::channel::<Result<(), String>>();
    let (ready_tx, ready) = oneshot::channel::<()>();
    let run = Run {
        url: url.to_owned(),
        namespace: namespace.to_owned(),
        limits,
        host: weak.clone(),
        max_reconnect_delay,
        role,
        own_id: broker.node_id().to_owned(),
    };
    let thread = std::thread::Builder::new()
        .name("moleculer-ws-history".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = connected_tx.send(Err(format!("no runtime: {e}")));
                    return;
                }
            };
            runtime.block_on(async move {
                tokio::select! {
                    _ = stopped => {}
                    () = run.run(connected_tx, ready_tx) => {}
                }
            });
        });
    if let Err(e) = thread {
        return Err(ClusterError::Config(format!(
            "shared history: no thread: {e}"
        )));
    }
    let reason = match connected.await {
        Ok(Ok(())) => None,
        Ok(Err(reason)) => Some(reason),
        Err(_) => Some("the history's thread ended".to_owned()),
    };
    if let Some(reason) = reason {
        if mode == SharedHistory::On {
            return Err(ClusterError::Config(format!(
                "shared history on {}: {reason}",
                redact(url)
            )));
        }
        tracing::warn!(
            transporter = %redact(url),
            %reason,
            "cluster: recovery histories stay per gateway (a client recovers only from \
             the gateway it left); enable JetStream (nats-server -js) to share them"
        );
        return Ok(None);
    }
    if tokio::time::timeout(CATCH_UP_TIMEOUT, ready).await.is_err() {
        tracing::warn!("cluster: the shared history was not read in time; going on");
    }
    tracing::info!(transporter = %redact(url), "cluster: recovery histories shared");
    Ok(Some(HistoryHandle {
        host: weak,
        _stop: stop,
    }))
}

/// What the history's thread runs.
struct Run {
    url: String,
    namespace: String,
    limits: Limits,
    host: Weak<dyn HistoryHost>,
    max_reconnect_delay: Duration,
    role: Arc<dyn Fn() -> Role + Send + Sync>,
    own_id: String,
}

impl Run {
    /// Connects (telling `connected`), attaches the gateway, reads the history (then tells
    /// `ready`) and offers messages, until the runtime is stopped.
    async fn run(self, connected: oneshot::Sender<Result<(), String>>, ready: oneshot::Sender<()>) {
        let (url, namespace, limits) = (&self.url, &self.namespace, self.limits);
        let engine: Result<Arc<dyn Engine>, String> =
            match url.split_once("://").map(|(scheme, _)| scheme) {
                #[cfg(feature = "nats")]
                Some("nats") => jetstream::JetStream::connect(url, namespace, limits)
                    .await
                    .map(|e| Arc::new(e) as Arc<dyn Engine>),
                #[cfg(feature = "redis")]
                Some("redis") => redis::RedisStreams::connect(url, namespace, limits)
                    .await
                    .map(|e| Arc::new(e) as Arc<dyn Engine>),
                _ => Err("the transporter has no history engine".to_owned()),
            };
        let engine = match engine {
            Ok(e) => e,
            Err(reason) => {
                let _ = connected.send(Err(reason));
                return;
            }
        };
        let Some(host) = self.host.upgrade() else {
            return;
        };
        // Shared from now on: a message that comes while the history is read waits in the
        // queue (it must not go into the histories being read with a position of their own).
        let (appends, queue) = mpsc::channel(APPEND_QUEUE);
        host.attach(Some(appends));
        host.engine_up(true);
        drop(host);
        let _ = connected.send(Ok(()));
        let (read_tx, read) = oneshot::channel();
        let follower = tokio::spawn(engine.clone().follow(
            self.host.clone(),
            read_tx,
            self.max_reconnect_delay,
        ));
        let _ = tokio::time::timeout(CATCH_UP_TIMEOUT, read).await;
        let _ = ready.send(());
        offers::offer_loop(engine, self.host, queue, self.role, self.own_id).await;
        follower.abort();
    }
}

/// How an engine reads on from `position` into the host until an error (`Ok`: the gateway is
/// gone), telling `ready` once it has read what was there at the start.
pub(crate) type ReadFrom<E, P> = for<'a> fn(
    &'a E,
    &'a Weak<dyn HistoryHost>,
    &'a mut P,
    &'a mut Option<oneshot::Sender<()>>,
) -> BoxFuture<'a, Result<(), String>>;

/// An engine's reader: `read_from` from `position` on, again after each error (the engine
/// counts as down meanwhile) with the transporter's backoff, until the gateway is gone.
pub(crate) async fn follow_with<E: ?Sized, P>(
    engine: &E,
    host: Weak<dyn HistoryHost>,
    ready: oneshot::Sender<()>,
    max_delay: Duration,
    mut position: P,
    read_from: ReadFrom<E, P>,
) {
    let mut ready = Some(ready);
    let mut delays = reconnect_delays(max_delay);
    loop {
        match read_from(engine, &host, &mut position, &mut ready).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cluster: reading the shared history");
                if let Some(host) = host.upgrade() {
                    host.engine_up(false);
                }
                let pause = delays.next().unwrap_or(Duration::from_secs(1));
                tokio::time::sleep(pause).await;
            }
        }
    }
}
