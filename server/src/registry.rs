//! The socket registry: per path, the open sockets and their bounded outbound queues.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{mpsc, Notify};

use crate::metrics::Metrics;
use crate::sync::{read, write};

/// Close code for a socket whose outbound queue overflowed (policy violation).
pub const CLOSE_SLOW_CONSUMER: u16 = 1008;
/// Close code sent to every socket when the gateway shuts down (going away).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code sent to every socket when the gateway restarts (SIGTERM): reconnect.
pub const CLOSE_SERVICE_RESTART: u16 = 1012;

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
    tx: mpsc::Sender<Utf8Bytes>,
    kill: Arc<Kill>,
    /// Bytes queued and not yet written (the socket's task subtracts what it wrote).
    queued: Arc<AtomicUsize>,
    /// Opted into message recovery: gets the enveloped frames.
    recover: bool,
}

#[derive(Default)]
struct PathEntry {
    sockets: HashMap<u64, SocketHandle>,
    empty_since: Option<Instant>,
}

/// What a new socket gets from the registry.
pub(crate) struct Registration {
    pub id: u64,
    pub rx: mpsc::Receiver<Utf8Bytes>,
    pub kill: Arc<Kill>,
    pub queued: Arc<AtomicUsize>,
}

/// Every open socket, keyed by path.
#[derive(Default)]
pub(crate) struct Registry {
    paths: RwLock<HashMap<String, PathEntry>>,
    next_id: AtomicU64,
    open: AtomicUsize,
    closing: AtomicBool,
    all_closed: Notify,
}

impl Registry {
    pub(crate) fn register(&self, path: &str, queue: usize) -> Registration {
        self.register_recovering(path, queue, false)
    }

    /// Registers a socket; `recover`: it gets the enveloped frame of a broadcast that has one.
    pub(crate) fn register_recovering(
        &self,
        path: &str,
        queue: usize,
        recover: bool,
    ) -> Registration {
        let (tx, rx) = mpsc::channel(queue);
        let kill = Arc::new(Kill::default());
        let queued = Arc::new(AtomicUsize::new(0));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut paths = write(&self.paths);
            let entry = paths.entry(path.to_owned()).or_default();
            entry.empty_since = None;
            entry.sockets.insert(
                id,
                SocketHandle {
                    tx,
                    kill: kill.clone(),
                    queued: queued.clone(),
                    recover,
                },
            );
            self.open.fetch_add(1, Ordering::AcqRel);
        }
        if self.closing.load(Ordering::Acquire) {
            kill.close(CLOSE_GOING_AWAY, "server shutting down");
        }
        Registration {
            id,
            rx,
            kill,
            queued,
        }
    }

    /// Removes a socket at once (its task calls this on close, error or TCP loss).
    pub(crate) fn deregister(&self, path: &str, id: u64) {
        let mut paths = write(&self.paths);
        if let Some(entry) = paths.get_mut(path) {
            if entry.sockets.remove(&id).is_some() {
                if entry.sockets.is_empty() {
                    entry.empty_since = Some(Instant::now());
                }
                if self.open.fetch_sub(1, Ordering::AcqRel) == 1 {
                    self.all_closed.notify_waiters();
                }
            }
        }
    }

    /// Queues `text` for every socket at `path`. A socket whose queue is full (in messages, or
    /// over `max_bytes` with something already queued) is told to close with
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
        let paths = read(&self.paths);
        let Some(entry) = paths.get(path) else {
            return 0;
        };
        let mut queued = 0;
        for socket in entry.sockets.values() {
            let text = match enveloped {
                Some(e) if socket.recover => e,
                _ => text,
            };
            let len = text.len();
            let backlog = socket.queued.load(Ordering::Relaxed);
            let over_bytes = backlog > 0 && backlog.saturating_add(len) > max_bytes;
            let sent = if over_bytes {
                Err(mpsc::error::TrySendError::Full(()))
            } else {
                socket.tx.try_send(text.clone()).map_err(|e| match e {
                    mpsc::error::TrySendError::Full(_) => mpsc::error::TrySendError::Full(()),
                    mpsc::error::TrySendError::Closed(_) => mpsc::error::TrySendError::Closed(()),
                })
            };
            match sent {
                Ok(()) => {
                    socket.queued.fetch_add(len, Ordering::Relaxed);
                    queued += 1;
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    if socket.kill.reason.get().is_none() {
                        metrics.slow_dropped.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(path, "closing slow consumer: outbound queue full");
                    }
                    socket.kill.close(CLOSE_SLOW_CONSUMER, "slow consumer");
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        queued
    }

    /// Sockets per path (paths with at least one socket).
    pub(crate) fn count_clients(&self) -> HashMap<String, usize> {
        read(&self.paths)
            .iter()
            .filter(|(_, e)| !e.sockets.is_empty())
            .map(|(p, e)| (p.clone(), e.sockets.len()))
            .collect()
    }

    /// Removes the paths that have been empty for longer than `idle`; returns them.
    pub(crate) fn sweep(&self, idle: Duration) -> Vec<String> {
        let now = Instant::now();
        let mut removed = Vec::new();
        write(&self.paths).retain(|path, entry| {
            let stale = entry.sockets.is_empty()
                && entry
                    .empty_since
                    .is_some_and(|t| now.saturating_duration_since(t) > idle);
            if stale {
                removed.push(path.clone());
            }
            !stale
        });
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
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_queue_kills_only_that_socket() {
        let reg = Registry::default();
        let metrics = Metrics::default();
        let mut fast = reg.register("/p", 1);
        let slow = reg.register("/p", 1);
        let msg = Utf8Bytes::from("1");
        assert_eq!(reg.deliver("/p", &msg, None, usize::MAX, &metrics), 2);
        assert!(fast.rx.recv().await.is_some());
        assert_eq!(reg.deliver("/p", &msg, None, usize::MAX, &metrics), 1);
        assert_eq!(slow.kill.reason(), (CLOSE_SLOW_CONSUMER, "slow consumer"));
        assert_eq!(fast.kill.reason.get(), None);
        assert_eq!(metrics.slow_dropped.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn sweep_removes_only_paths_empty_for_longer_than_idle() {
        let reg = Registry::default();
        let a = reg.register("/a", 4);
        let _b = reg.register("/b", 4);
        reg.deregister("/a", a.id);
        assert!(reg.sweep(Duration::from_secs(60)).is_empty());
        assert_eq!(reg.sweep(Duration::ZERO), vec!["/a".to_owned()]);
        assert_eq!(reg.count_clients().get("/b"), Some(&1));
    }

    #[tokio::test]
    async fn wait_all_closed_resolves_after_last_deregister() {
        let reg = Arc::new(Registry::default());
        let s = reg.register("/a", 4);
        let waiter = tokio::spawn({
            let reg = reg.clone();
            async move { reg.wait_all_closed().await }
        });
        reg.close_all(CLOSE_GOING_AWAY, "bye");
        assert_eq!(s.kill.reason().0, CLOSE_GOING_AWAY);
        reg.deregister("/a", s.id);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("waiter resolves")
            .expect("waiter task");
    }
}
