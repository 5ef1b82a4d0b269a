//! The socket registry: per path, the open sockets and their bounded outbound queues.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use tokio::sync::Notify;

pub(crate) use tungstenite::Utf8Bytes;

use crate::metrics::Metrics;
use crate::outbox::{Outbox, Pushed, Wakes};
use crate::sync::{read, write};
use crate::wire::{Deflate, Outgoing};

/// Close code for a socket whose outbound queue overflowed (policy violation).
pub const CLOSE_SLOW_CONSUMER: u16 = 1008;
/// Close code sent to every socket when the gateway shuts down (going away).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code sent to every socket when the gateway restarts (SIGTERM): reconnect.
pub const CLOSE_SERVICE_RESTART: u16 = 1012;

/// Tells a socket to close as a slow consumer (1008), counting it once.
pub(crate) fn slow_consumer(kill: &Kill, metrics: &Metrics, path: &str, why: &'static str) {
    if kill.reason.get().is_none() {
        metrics.closed(crate::metrics::Closed::Slow);
        tracing::warn!(path, why, "closing slow consumer");
    }
    kill.close(CLOSE_SLOW_CONSUMER, "slow consumer");
}

/// Closes a socket or stream whose write blocked past the write timeout (a client that
/// stopped reading) as a slow consumer.
pub(crate) fn write_blocked(kill: &Kill, metrics: &Metrics, path: &str) {
    slow_consumer(
        kill,
        metrics,
        path,
        "a write blocked past the write timeout",
    );
}

/// Asks one socket's task to close with a code; wakes it even when its queue is full.
#[derive(Default)]
pub(crate) struct Kill {
    reason: OnceLock<(u16, &'static str)>,
    notify: Notify,
}

impl Kill {
    pub(crate) fn close(&self, code: u16, reason: &'static str) {
        if self.reason.set((code, reason)).is_ok() {
            self.notify.notify_waiters();
        }
    }
    pub(crate) fn reason(&self) -> (u16, &'static str) {
        self.reason.get().copied().unwrap_or((1000, ""))
    }
    /// Resolves once [`close`](Self::close) has been called (at once if it already was).
    /// Any number of waiters may wait at the same time.
    pub(crate) async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.reason.get().is_some() {
                return;
            }
            notified.await;
        }
    }
}

struct SocketHandle {
    outbox: Arc<Outbox>,
    kill: Arc<Kill>,
    /// Opted into message recovery: gets the enveloped frames.
    recover: bool,
    /// What the socket negotiated for permessage-deflate: the fan-out compresses a message
    /// (once) before queuing it, so that no socket task waits for another to compress it.
    deflate: Option<Deflate>,
}

#[derive(Default)]
struct PathEntry {
    sockets: HashMap<u64, SocketHandle>,
}

/// What a new socket gets from the registry.
pub(crate) struct Registration {
    pub id: u64,
    pub outbox: Arc<Outbox>,
    pub kill: Arc<Kill>,
}

/// The registry holds [`Registry::max_paths`] paths already: a socket at a new path is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PathsFull;

/// Most emptied paths remembered for the filter's `on_close` before the sweep is woken early.
const EMPTIED_MAX: usize = 4096;

/// Every open socket, keyed by path. A path is removed as soon as its last socket leaves, so
/// the map holds only paths with sockets (at most `max_paths`).
pub(crate) struct Registry {
    paths: RwLock<HashMap<String, PathEntry>>,
    max_paths: usize,
    /// Paths removed since the last sweep, for the filter's `on_close` (bounded: when full, the
    /// sweep is woken at once).
    emptied: Mutex<Vec<String>>,
    pub(crate) sweep_now: Notify,
    next_id: AtomicU64,
    open: AtomicUsize,
    closing: AtomicBool,
    all_closed: Notify,
    /// The socket tasks the fan-out has yet to wake.
    wakes: Arc<Wakes>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new(usize::MAX)
    }
}

impl Registry {
    pub(crate) fn new(max_paths: usize) -> Self {
        Self {
            paths: RwLock::default(),
            max_paths,
            emptied: Mutex::default(),
            sweep_now: Notify::new(),
            next_id: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            all_closed: Notify::new(),
            wakes: Arc::default(),
        }
    }

    pub(crate) fn register(&self, path: &str, queue: usize) -> Result<Registration, PathsFull> {
        self.register_recovering(path, queue, false)
    }

    /// Registers a socket; `recover`: it gets the enveloped frame of a broadcast that has one.
    pub(crate) fn register_recovering(
        &self,
        path: &str,
        queue: usize,
        recover: bool,
    ) -> Result<Registration, PathsFull> {
        let outbox = Arc::new(Outbox::new(queue));
        let kill = Arc::new(Kill::default());
        self.wakes.bind();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut paths = write(&self.paths);
            if !paths.contains_key(path) && paths.len() >= self.max_paths {
                return Err(PathsFull);
            }
            let entry = paths.entry(path.to_owned()).or_default();
            entry.sockets.insert(
                id,
                SocketHandle {
                    outbox: outbox.clone(),
                    kill: kill.clone(),
                    recover,
                    deflate: None,
                },
            );
            self.open.fetch_add(1, Ordering::AcqRel);
        }
        if self.closing.load(Ordering::Acquire) {
            kill.close(CLOSE_GOING_AWAY, "server shutting down");
        }
        Ok(Registration { id, outbox, kill })
    }

    /// Records what a registered socket negotiated for permessage-deflate.
    pub(crate) fn set_deflate(&self, path: &str, id: u64, deflate: Deflate) {
        if let Some(socket) = write(&self.paths)
            .get_mut(path)
            .and_then(|entry| entry.sockets.get_mut(&id))
        {
            socket.deflate = Some(deflate);
        }
    }

    /// Removes a socket at once (its task calls this on close, error or TCP loss), and its path
    /// when it was the last socket there.
    pub(crate) fn deregister(&self, path: &str, id: u64) {
        let mut paths = write(&self.paths);
        let Some(entry) = paths.get_mut(path) else {
            return;
        };
        if entry.sockets.remove(&id).is_none() {
            return;
        }
        if entry.sockets.is_empty() {
            paths.remove(path);
            drop(paths);
            let mut emptied = self.emptied.lock().unwrap_or_else(|e| e.into_inner());
            emptied.push(path.to_owned());
            if emptied.len() >= EMPTIED_MAX {
                self.sweep_now.notify_one();
            }
        }
        if self.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.all_closed.notify_waiters();
        }
    }

    /// Queues `text` for every socket at `path` (the tasks of a large path are woken in
    /// slices, see [`crate::outbox`]). A socket whose queue is full (in messages, or over
    /// `max_bytes` with bytes queued or being written) is told to close with
    /// [`CLOSE_SLOW_CONSUMER`]. Sockets that opted into recovery get `enveloped` instead, when
    /// given. Returns how many sockets got it.
    pub(crate) fn deliver(
        &self,
        path: &str,
        text: &Utf8Bytes,
        enveloped: Option<&Utf8Bytes>,
        max_bytes: usize,
        metrics: &Metrics,
    ) -> usize {
        self.deliver_split(
            path,
            Some(text),
            Some(enveloped.unwrap_or(text)),
            max_bytes,
            metrics,
        )
    }

    /// Queues `plain` for the sockets at `path` that did not opt into recovery and `recovering`
    /// for those that did; `None` skips them (a shared history delivers the two apart). Each
    /// is made into one frame that every socket shares.
    pub(crate) fn deliver_split(
        &self,
        path: &str,
        plain: Option<&Utf8Bytes>,
        recovering: Option<&Utf8Bytes>,
        max_bytes: usize,
        metrics: &Metrics,
    ) -> usize {
        let paths = read(&self.paths);
        let Some(entry) = paths.get(path) else {
            return 0;
        };
        let mut queued = 0;
        let frame = |t: &Utf8Bytes| Arc::new(Outgoing::text(t.clone()));
        let plain = plain.map(frame);
        // One frame for both kinds of sockets when they get the same text.
        let recovering = match (recovering, &plain) {
            (Some(r), Some(p)) if std::ptr::eq(r.as_bytes(), p.payload()) => Some(p.clone()),
            (r, _) => r.map(frame),
        };
        let mut wake = Vec::new();
        for socket in entry.sockets.values() {
            let Some(text) = (if socket.recover { &recovering } else { &plain }) else {
                continue;
            };
            if let Some(deflate) = &socket.deflate {
                // Compressed here, once (the frame keeps it), if any socket needs it.
                text.frame(Some(deflate));
            }
            match socket.outbox.push(text, max_bytes) {
                Pushed::Queued { wake: first } => {
                    queued += 1;
                    if first {
                        wake.push(socket.outbox.clone());
                    }
                }
                Pushed::Full => slow_consumer(&socket.kill, metrics, path, "outbound queue full"),
            }
        }
        drop(paths);
        self.wakes.wake(wake);
        queued
    }

    /// The `n` paths with the most sockets (ties broken by path), the sum of the sockets at
    /// all other paths, and the number of paths: one pass under the read lock, copying only
    /// the `n` names chosen, so a scrape costs memory for `n` paths, not for all of them.
    pub(crate) fn top_paths(&self, n: usize) -> (Vec<(String, usize)>, usize, usize) {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let paths = read(&self.paths);
        // A min-heap of the best `n` so far: (count, Reverse(path)) orders the least wanted
        // (fewest sockets, then the greatest path) on top.
        let mut best: BinaryHeap<Reverse<(usize, Reverse<&str>)>> = BinaryHeap::new();
        let mut total = 0;
        for (path, entry) in paths.iter() {
            let count = entry.sockets.len();
            total += count;
            let item = Reverse((count, Reverse(path.as_str())));
            if best.len() < n {
                best.push(item);
            } else if best.peek().is_some_and(|least| item < *least) {
                best.pop();
                best.push(item);
            }
        }
        let chosen: Vec<(String, usize)> = best
            .into_iter()
            .map(|Reverse((count, Reverse(path)))| (path.to_owned(), count))
            .collect();
        let other = total - chosen.iter().map(|(_, c)| c).sum::<usize>();
        (chosen, other, paths.len())
    }

    /// Sockets per path (paths with at least one socket).
    pub(crate) fn count_clients(&self) -> HashMap<String, usize> {
        read(&self.paths)
            .iter()
            .filter(|(_, e)| !e.sockets.is_empty())
            .map(|(p, e)| (p.clone(), e.sockets.len()))
            .collect()
    }

    /// The paths removed (their last socket left) since the last call and not opened again
    /// since, without repeats: what the sweep reports to the filter's `on_close`.
    pub(crate) fn take_removed(&self) -> Vec<String> {
        let mut removed =
            std::mem::take(&mut *self.emptied.lock().unwrap_or_else(|e| e.into_inner()));
        removed.sort_unstable();
        removed.dedup();
        let paths = read(&self.paths);
        removed.retain(|p| !paths.contains_key(p));
        removed
    }

    /// Tells every socket (and every socket that registers from now on) to close with `code`.
    pub(crate) fn close_all(&self, code: u16, reason: &'static str) {
        self.closing.store(true, Ordering::Release);
        for entry in read(&self.paths).values() {
            for socket in entry.sockets.values() {
                socket.kill.close(code, reason);
            }
        }
    }

    /// Resolves when no socket is open.
    pub(crate) async fn wait_all_closed(&self) {
        loop {
            let notified = self.all_closed.notified();
            if self.open.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests;
