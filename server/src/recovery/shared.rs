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

use super::{lock, History, Origin, RecoverRequest, Recovery};
use crate::history::{Append, Job, Stored, Tip};
use crate::metrics::Metrics;
use crate::registry::{Registry, Utf8Bytes};
use crate::sync::{read, write};

/// How long an engine remembers a message ID (JetStream's `duplicate_window`, Redis's key
/// expiry): a copy offered later than this after the first is stored again.
pub(crate) const DEDUP_WINDOW: Duration = Duration::from_secs(120);
/// How long a recovering socket's upgrade waits for this gateway's mirror (a path's first
/// history to start, or messages the client already saw on another gateway to be read).
const PREPARE_TIMEOUT: Duration = Duration::from_secs(2);
/// IDs of messages sent under a local epoch that are remembered (in case the engine stored
/// them after all).
const UNSTORED_IDS: usize = 4096;

impl Recovery {
    /// Plugs the engine's queue in (or out, with `None`).
    pub(crate) fn attach(&self, jobs: Option<mpsc::Sender<Job>>) {
        *write(&self.appends) = jobs;
    }

    /// Before a recovering socket registers: when the mirror does not know `path` yet, asks
    /// the engine to start its history (so every gateway announces the same epoch); when the
    /// client saw messages of this epoch the mirror has not read yet (it comes from another
    /// gateway), waits for them. Either wait ends after [`PREPARE_TIMEOUT`] (the client then
    /// gets `#reset`: announced, not silent).
    pub(crate) async fn prepare(&self, path: &str, request: &RecoverRequest) {
        let Some(jobs) = read(&self.appends).clone() else {
            return;
        };
        let deadline = tokio::time::Instant::now() + PREPARE_TIMEOUT;
        let mut asked = false;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let state = read(&self.paths).get(path).map(|h| {
                let h = lock(h);
                (h.engine.is_some() || h.local, h.epoch, h.last_seq)
            });
            match state {
                Some((true, epoch, last)) => match request.since {
                    Some((e, s)) if e == epoch && s > last => {}
                    _ => return,
                },
                // A path this gateway could not hold is not started in the engine either.
                None if read(&self.paths).len() >= self.max_paths => return,
                _ if !asked => {
                    asked = true;
                    let epoch = self.new_epoch();
                    let open = Job::Open {
                        path: path.to_owned(),
                        epoch,
                    };
                    if jobs.try_send(open).is_err() {
                        return;
                    }
                }
                _ => {}
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return;
            }
        }
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
        appends: &mpsc::Sender<Job>,
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
                received: Instant::now(),
                sender: origin.sender.to_owned(),
            };
            if let Err(e) = appends.try_send(Job::Offer(message)) {
                let job = match e {
                    mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j) => j,
                };
                tracing::debug!(path, "recovery: the engine's queue is full");
                if let Job::Offer(message) = job {
                    self.unstored(registry, message, max_bytes, metrics);
                }
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
        self.mirror(registry, message, false, max_bytes, metrics);
        self.changed.notify_waiters();
    }

    /// A message this gateway's own offer stored: into the mirror and to the sockets when it
    /// is exactly the next of its path here; otherwise the reader brings it in order.
    pub(crate) fn stored_here(
        &self,
        registry: &Registry,
        message: Stored,
        max_bytes: usize,
        metrics: &Metrics,
    ) {
        if read(&self.paths).contains_key(&message.path) {
            self.mirror(registry, message, true, max_bytes, metrics);
            self.changed.notify_waiters();
        }
    }

    /// `only_next`: take the message only when it continues the path's history exactly.
    fn mirror(
        &self,
        registry: &Registry,
        message: Stored,
        only_next: bool,
        max_bytes: usize,
        metrics: &Metrics,
    ) {
        let path = message.path.as_str();
        tracing::trace!(
            path,
            epoch = message.epoch,
            seq = message.seq,
            id = message.id.as_deref(),
            text = message.text.as_str(),
            marker = message.marker,
            "recovery: stored message"
        );
        // A message starts a history one before itself; a position (marker) at itself.
        let start = if message.marker {
            message.seq
        } else {
            message.seq.saturating_sub(1)
        };
        loop {
            let Some(history) = self.history(path, || History::new(message.epoch, start)) else {
                tracing::debug!(
                    path,
                    "recovery: too many paths; a stored message is not mirrored"
                );
                return;
            };
            let mut h = lock(&history);
            if h.removed {
                continue; // dropped by the sweep meanwhile: a new one is made
            }
            self.mirror_into(
                &mut h, registry, &message, start, only_next, max_bytes, metrics,
            );
            return;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn mirror_into(
        &self,
        h: &mut History,
        registry: &Registry,
        message: &Stored,
        start: u64,
        only_next: bool,
        max_bytes: usize,
        metrics: &Metrics,
    ) {
        let path = message.path.as_str();
        let continues = !h.local && h.epoch == message.epoch;
        let next = continues && h.last_seq.checked_add(1) == Some(message.seq);
        if only_next && !next {
            return;
        }
        // Sent to the sockets here already: under a local epoch (the engine answered too late),
        // or stored and read once before (an engine that lost data and took it again, a reader
        // that started over after the stream was made again)?
        let sent = message.id.as_ref().is_some_and(|id| {
            let mut ids = self.unstored_ids.lock().unwrap_or_else(|e| e.into_inner());
            let at = ids.iter().position(|i| i == id);
            let local = at.and_then(|at| ids.remove(at)).is_some();
            drop(ids);
            let again = self.was_stored(id);
            self.note_stored(id);
            local || again
        });
        if continues && message.seq <= h.last_seq {
            // Read twice (the engine's reader started over), or the start of the history this
            // gateway proposed.
            h.engine
                .get_or_insert((message.epoch, message.seq, message.pos));
            return;
        }
        if !next {
            // Another epoch, a gap, or the engine back after a local stretch: start over here.
            self.clear(h);
            h.local = false;
            h.epoch = message.epoch;
            h.last_seq = start;
            if h.sockets > 0 && !sent {
                let reset = Utf8Bytes::from(format!("#reset:{:016x}:{start}", h.epoch));
                registry.deliver_split(path, None, Some(&reset), max_bytes, metrics);
            }
        }
        h.engine = Some((message.epoch, message.seq, message.pos));
        if message.marker {
            h.last_seq = message.seq;
            return; // a position, no message
        }
        let frame = Utf8Bytes::from(format!(
            "#{:016x}:{}:{}",
            message.epoch,
            message.seq,
            message.text.as_str()
        ));
        self.push(h, message.seq, &frame, Instant::now());
        if sent {
            // The sockets here have it already (under the local epoch): they move past it.
            let reset = Utf8Bytes::from(format!("#reset:{:016x}:{}", h.epoch, message.seq));
            registry.deliver_split(path, None, Some(&reset), max_bytes, metrics);
        } else {
            registry.deliver_split(path, None, Some(&frame), max_bytes, metrics);
        }
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
        if self.was_stored(&message.id) {
            // Stored after all (its answer was lost), and read back: the sockets have it.
            return;
        }
        self.unstored.fetch_add(1, Ordering::Relaxed);
        {
            let mut ids = self.unstored_ids.lock().unwrap_or_else(|e| e.into_inner());
            if ids.len() >= UNSTORED_IDS {
                ids.pop_front();
            }
            ids.push_back(message.id.clone());
        }
        let path = message.path.as_str();
        loop {
            let Some(history) = self.history(path, || History::new(self.new_epoch(), 0)) else {
                return;
            };
            let mut h = lock(&history);
            if h.removed {
                continue;
            }
            if !h.local {
                self.go_local(&mut h, path, registry, max_bytes, metrics);
            }
            let seq = h.last_seq + 1;
            let frame =
                Utf8Bytes::from(format!("#{:016x}:{seq}:{}", h.epoch, message.text.as_str()));
            self.push(&mut h, seq, &frame, Instant::now());
            registry.deliver_split(path, None, Some(&frame), max_bytes, metrics);
            break;
        }
        self.changed.notify_waiters();
    }

    /// Moves a history to a new epoch of this gateway's own, announced to its sockets.
    fn go_local(
        &self,
        h: &mut History,
        path: &str,
        registry: &Registry,
        max_bytes: usize,
        metrics: &Metrics,
    ) {
        self.clear(h);
        h.local = true;
        h.engine = None;
        h.epoch = self.new_epoch();
        h.last_seq = 0;
        if h.sockets > 0 {
            let reset = Utf8Bytes::from(format!("#reset:{:016x}:0", h.epoch));
            registry.deliver_split(path, None, Some(&reset), max_bytes, metrics);
        }
    }

    /// The engine is unplugged: every history goes on in process under a new epoch (its
    /// sockets get `#reset`), so no position of the engine's is counted on here.
    pub(crate) fn detach(&self, registry: &Registry, max_bytes: usize, metrics: &Metrics) {
        self.attach(None);
        let histories: Vec<(String, std::sync::Arc<std::sync::Mutex<History>>)> = read(&self.paths)
            .iter()
            .map(|(p, h)| (p.clone(), h.clone()))
            .collect();
        for (path, history) in histories {
            let mut h = lock(&history);
            if !h.removed {
                self.go_local(&mut h, &path, registry, max_bytes, metrics);
            }
        }
    }

    /// Resolves when the mirror changes next, or after `timeout`.
    pub(crate) async fn changed(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.changed.notified()).await;
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
