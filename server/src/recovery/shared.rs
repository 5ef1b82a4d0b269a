//! Shared histories: in a cluster with a history engine (`crate::history`), each history here
//! is this gateway's mirror of the engine's: fed, in the engine's order, by what the engine
//! stored (from any gateway), so every gateway gives the same message the same position.
//!
//! A broadcast reaches the plain sockets at once; for a path with a history it is offered to
//! the engine, and reaches the recovering sockets when it comes back stored. Registration and
//! replay read the mirror, under the same lock as in process, so a registering socket sees
//! each message exactly once, in its replay or live.
//!
//! Whenever the mirror cannot continue a history (another epoch, a gap, the engine away and
//! back), the recovering sockets at the path get `#reset:<epoch>:<seq>` before the next
//! message: a hole is always announced, never silent.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{lock, History, Origin, Recovery};
use crate::history::{Append, Stored, Tip};
use crate::metrics::Metrics;
use crate::registry::{Registry, Utf8Bytes};
use crate::sync::{read, write};

/// How long an engine remembers a message ID (JetStream's `duplicate_window`, Redis's key
/// expiry): a copy offered later than this after the first is stored again.
pub(crate) const DEDUP_WINDOW: Duration = Duration::from_secs(120);

impl Recovery {
    /// Plugs the engine's queue in (or out, with `None`).
    pub(crate) fn attach(&self, appends: Option<mpsc::Sender<Append>>) {
        *write(&self.appends) = appends;
    }

    /// Whether a shared history engine is plugged in.
    pub(crate) fn is_shared(&self) -> bool {
        read(&self.appends).is_some()
    }

    pub(crate) fn set_engine_up(&self, up: bool) {
        self.engine_up.store(up, Ordering::Relaxed);
    }

    pub(crate) fn engine_up(&self) -> bool {
        self.engine_up.load(Ordering::Relaxed)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn deliver_shared(
        &self,
        appends: &mpsc::Sender<Append>,
        registry: &Registry,
        path: &str,
        text: &Utf8Bytes,
        origin: Origin<'_>,
        max_bytes: usize,
        metrics: &Metrics,
    ) -> usize {
        let n = registry.deliver_split(path, Some(text), None, max_bytes, metrics);
        let recovering = self.any.load(Ordering::Relaxed) && read(&self.paths).contains_key(path);
        if recovering {
            let id = lock_occurrences(self).id(
                origin.sender,
                origin.request_id,
                path,
                text.as_str(),
                Instant::now(),
            );
            let message = Append {
                path: path.to_owned(),
                id,
                text: text.clone(),
            };
            if let Err(e) = appends.try_send(message) {
                let message = match e {
                    mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m) => m,
                };
                tracing::debug!(path, "recovery: the engine's queue is full");
                self.unstored(registry, message, max_bytes, metrics);
            }
        }
        n
    }

    /// A message the engine stored, read back in the engine's order: into the mirror, then to
    /// the recovering sockets at its path.
    pub(crate) fn stored(
        &self,
        registry: &Registry,
        message: Stored,
        max_bytes: usize,
        metrics: &Metrics,
    ) {
        let path = message.path.as_str();
        let history = loop {
            let made = || History::new(message.epoch, message.seq - 1);
            let Some(history) = self.history(path, made) else {
                tracing::debug!(
                    path,
                    "recovery: too many paths; a stored message is not mirrored"
                );
                return;
            };
            if !lock(&history).removed {
                break history;
            }
        };
        let mut h = lock(&history);
        let continues = !h.local && h.epoch == message.epoch;
        if continues && message.seq <= h.last_seq {
            return; // read twice (the engine's reader started over)
        }
        if !(continues && message.seq == h.last_seq + 1) {
            // Another epoch, a gap, or the engine back after a local stretch: start over here.
            self.clear(&mut h);
            h.local = false;
            h.epoch = message.epoch;
            h.last_seq = message.seq - 1;
            if h.sockets > 0 {
                let reset = Utf8Bytes::from(format!("#reset:{:016x}:{}", h.epoch, h.last_seq));
                registry.deliver_split(path, None, Some(&reset), max_bytes, metrics);
            }
        }
        h.engine = Some((message.epoch, message.seq, message.pos));
        let frame = Utf8Bytes::from(format!(
            "#{:016x}:{}:{}",
            message.epoch,
            message.seq,
            message.text.as_str()
        ));
        self.push(&mut h, message.seq, &frame, Instant::now());
        registry.deliver_split(path, None, Some(&frame), max_bytes, metrics);
    }

    /// A message the engine did not take: the recovering sockets here get it under an epoch of
    /// this gateway's own (after a `#reset` when the history switches to it).
    pub(crate) fn unstored(
        &self,
        registry: &Registry,
        message: Append,
        max_bytes: usize,
        metrics: &Metrics,
    ) {
        self.unstored.fetch_add(1, Ordering::Relaxed);
        let path = message.path.as_str();
        let history = loop {
            let Some(history) = self.history(path, || History::new(self.new_epoch(), 0)) else {
                return;
            };
            if !lock(&history).removed {
                break history;
            }
        };
        let mut h = lock(&history);
        if !h.local {
            self.clear(&mut h);
            h.local = true;
            h.epoch = self.new_epoch();
            h.last_seq = 0;
            if h.sockets > 0 {
                let reset = Utf8Bytes::from(format!("#reset:{:016x}:0", h.epoch));
                registry.deliver_split(path, None, Some(&reset), max_bytes, metrics);
            }
        }
        let seq = h.last_seq + 1;
        let frame = Utf8Bytes::from(format!("#{:016x}:{seq}:{}", h.epoch, message.text.as_str()));
        self.push(&mut h, seq, &frame, Instant::now());
        registry.deliver_split(path, None, Some(&frame), max_bytes, metrics);
    }

    /// The newest message of `path` read back from the engine, or the epoch to propose for
    /// the path's first one.
    pub(crate) fn tip(&self, path: &str) -> Tip {
        let known = read(&self.paths).get(path).map(|h| {
            let h = lock(h);
            (h.engine, (!h.local).then_some(h.epoch))
        });
        match known {
            Some((Some((epoch, seq, pos)), _)) => Tip::Known { epoch, seq, pos },
            Some((None, Some(epoch))) => Tip::Fresh { epoch },
            _ => Tip::Fresh {
                epoch: self.new_epoch(),
            },
        }
    }
}

fn lock_occurrences(r: &Recovery) -> std::sync::MutexGuard<'_, crate::history::Occurrences> {
    r.occurrences.lock().unwrap_or_else(|e| e.into_inner())
}
