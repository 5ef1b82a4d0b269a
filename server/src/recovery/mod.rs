//! Message recovery (opt-in protocol extension, README "Message recovery"): per path an epoch,
//! a sequence number and a bounded history, created lazily when the first client opts in.
//!
//! Wire, for sockets that asked with `?recover=1[&epoch=E&seq=N]` only:
//! - `#<epoch>:<seq>:<json>`: message `seq` of `epoch` (`<json>` is the plain frame's text);
//! - first frame `#recovered:<epoch>:<seq>:<n>`: the `n` messages after the client's `seq`
//!   follow (replay), then live ones; `<seq>` is the position after the replay;
//! - or first frame `#reset:<epoch>:<seq>`: no recovery (first connect, another epoch, or the
//!   history no longer reaches back); live messages after `<seq>` follow.
//!
//! Epochs are 16 lowercase hex digits, sequence numbers decimal from 1. Every other socket gets
//! the plain frames, byte for byte.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::history::{Job, Occurrences};
use crate::registry::{Registration, Registry, Utf8Bytes};
use crate::sync::{read, write};

mod render;
mod shared;
mod shared_ids;

#[cfg_attr(not(all(feature = "nats", feature = "redis")), allow(unused_imports))]
pub(crate) use shared::DEDUP_WINDOW;

/// What a client asked for in its upgrade request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RecoverRequest {
    /// The last position the client saw, if any.
    pub since: Option<(u64, u64)>,
}

impl RecoverRequest {
    /// Reads `recover=1`, `epoch` and `seq` from a query string; `None` when the client did not
    /// opt in. A malformed `epoch`/`seq` counts as no position (the client gets `#reset`).
    pub(crate) fn from_query(query: &str) -> Option<RecoverRequest> {
        let mut on = false;
        let (mut epoch, mut seq) = (None, None);
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "recover" => on = v == "1" || v == "true",
                "epoch" => epoch = Some(v),
                "seq" => seq = Some(v),
                _ => {}
            }
        }
        on.then(|| RecoverRequest {
            since: epoch.zip(seq).and_then(|(e, s)| position(&e, &s)),
        })
    }

    /// The same, with the position from an event stream's `Last-Event-ID` (`<E>:<seq>`, what
    /// its events' ids are) when it has one: it is newer than the query's. A malformed one
    /// counts as no position.
    pub(crate) fn with_last_event_id(mut self, id: Option<&[u8]>) -> RecoverRequest {
        if let Some(id) = id {
            self.since = std::str::from_utf8(id)
                .ok()
                .and_then(|id| id.split_once(':'))
                .and_then(|(e, s)| position(e, s));
        }
        self
    }
}

/// A position as a client writes it: the epoch in 16 hexadecimal digits, the sequence number
/// in decimal.
fn position(epoch: &str, seq: &str) -> Option<(u64, u64)> {
    let hex = epoch.len() == 16 && epoch.bytes().all(|b| b.is_ascii_hexdigit());
    let decimal = !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit());
    if !(hex && decimal) {
        return None;
    }
    Some((u64::from_str_radix(epoch, 16).ok()?, seq.parse().ok()?))
}

/// Where a broadcast came from: the sending node (this one for a local broadcast) and the
/// event's request ID (what the shared history deduplicates by).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Origin<'a> {
    pub sender: &'a str,
    pub request_id: Option<&'a str>,
}

/// The bounds of one path's history.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub max_messages: usize,
    pub max_age: Duration,
    pub max_bytes: usize,
}

struct Entry {
    seq: u64,
    at: Instant,
    frame: Utf8Bytes,
}

struct History {
    epoch: u64,
    last_seq: u64,
    entries: VecDeque<Entry>,
    bytes: usize,
    /// Recovering sockets registered at the path (the history is kept while there are any).
    sockets: usize,
    /// Set when the sweep dropped this history: a registration holding it must start over.
    removed: bool,
    /// Shared history: the newest message read back from the engine (epoch, seq, position).
    engine: Option<(u64, u64, u64)>,
    /// Shared history: the engine was unreachable and this history went on under an epoch of
    /// this gateway's own.
    local: bool,
}

impl History {
    fn new(epoch: u64, last_seq: u64) -> History {
        History {
            epoch,
            last_seq,
            entries: VecDeque::new(),
            bytes: 0,
            sockets: 0,
            removed: false,
            engine: None,
            local: false,
        }
    }

    fn prune(&mut self, now: Instant, limits: Limits) -> (usize, usize) {
        let (mut n, mut b) = (0, 0);
        while let Some(front) = self.entries.front() {
            let old = now.saturating_duration_since(front.at) > limits.max_age;
            if !(old || self.entries.len() > limits.max_messages || self.bytes > limits.max_bytes) {
                break;
            }
            let len = front.frame.len();
            self.entries.pop_front();
            self.bytes -= len;
            n += 1;
            b += len;
        }
        (n, b)
    }
}

/// Why a recovering socket was not registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The gateway holds its most paths (histories or socket paths) already.
    PathsFull,
    /// The replay does not fit the address's replay budget now; try again after this long.
    Throttled(Duration),
}

/// The IDs of the latest stored messages, in order (with when they were seen) and as a set.
type StoredIds = (
    VecDeque<(String, Instant)>,
    std::collections::HashSet<String>,
);

/// Every path's history, plus the totals reported at `/metrics`.
pub(crate) struct Recovery {
    limits: Limits,
    /// Most paths with a history.
    max_paths: usize,
    paths: RwLock<HashMap<String, Arc<Mutex<History>>>>,
    any: AtomicBool,
    messages: AtomicU64,
    bytes: AtomicU64,
    /// Replayed messages and refused recoveries, for the counters.
    pub(crate) replayed: AtomicU64,
    pub(crate) resets: AtomicU64,
    pub(crate) recovered: AtomicU64,
    /// Shared history (`crate::history`): where messages are offered to the engine; `None`
    /// keeps the histories in process.
    appends: RwLock<Option<mpsc::Sender<Job>>>,
    /// Signalled whenever a shared history changes (what a registration may wait for).
    changed: tokio::sync::Notify,
    occurrences: Mutex<Occurrences>,
    engine_up: AtomicBool,
    /// Messages the engine did not take (delivered under a local epoch).
    pub(crate) unstored: AtomicU64,
    /// The IDs of the latest of those: one the engine stored after all is not sent again.
    unstored_ids: Mutex<VecDeque<String>>,
    /// The IDs of the latest messages read back from the engine, in order and as a set.
    stored_ids: Mutex<StoredIds>,
}

fn lock(h: &Mutex<History>) -> MutexGuard<'_, History> {
    h.lock().unwrap_or_else(|e| e.into_inner())
}

impl Recovery {
    pub(crate) fn new(limits: Limits, max_paths: usize) -> Recovery {
        Recovery {
            limits,
            max_paths,
            paths: RwLock::default(),
            any: AtomicBool::new(false),
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            recovered: AtomicU64::new(0),
            appends: RwLock::default(),
            changed: tokio::sync::Notify::new(),
            occurrences: Mutex::new(Occurrences::new(shared::DEDUP_WINDOW)),
            engine_up: AtomicBool::new(false),
            unstored: AtomicU64::new(0),
            unstored_ids: Mutex::default(),
            stored_ids: Mutex::default(),
        }
    }

    /// A fresh random epoch (never 0).
    fn new_epoch(&self) -> u64 {
        crate::history::random_u64()
    }

    /// Appends `frame` (message `seq`, enveloped) to `h`, drops what the limits no longer
    /// allow, and keeps the totals.
    fn push(&self, h: &mut History, seq: u64, frame: &Utf8Bytes, now: Instant) {
        h.last_seq = seq;
        h.bytes += frame.len();
        h.entries.push_back(Entry {
            seq,
            at: now,
            frame: frame.clone(),
        });
        let (n, b) = h.prune(now, self.limits);
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(frame.len() as u64, Ordering::Relaxed);
        self.messages.fetch_sub(n as u64, Ordering::Relaxed);
        self.bytes.fetch_sub(b as u64, Ordering::Relaxed);
    }

    /// Empties `h` (a new epoch follows), keeping the totals.
    fn clear(&self, h: &mut History) {
        self.messages
            .fetch_sub(h.entries.len() as u64, Ordering::Relaxed);
        self.bytes.fetch_sub(h.bytes as u64, Ordering::Relaxed);
        h.entries.clear();
        h.bytes = 0;
    }

    /// The history of `path`, made (with `make`) when there is none; `None` when the gateway
    /// holds its most paths already.
    fn history(&self, path: &str, make: impl FnOnce() -> History) -> Option<Arc<Mutex<History>>> {
        if let Some(h) = read(&self.paths).get(path) {
            return Some(h.clone());
        }
        let mut paths = write(&self.paths);
        if !paths.contains_key(path) && paths.len() >= self.max_paths {
            return None;
        }
        self.any.store(true, Ordering::Relaxed);
        Some(
            paths
                .entry(path.to_owned())
                .or_insert_with(|| Arc::new(Mutex::new(make())))
                .clone(),
        )
    }

    /// Delivers one broadcast: through the path's history when recovery is on there (the
    /// history lock is held while queueing, so that a registering socket sees each message
    /// either in its replay or live), else plainly. With a shared history, recovering sockets
    /// get it when the engine gives it back stored ([`Recovery::stored`]). Returns how many
    /// sockets got it now.
    pub(crate) fn deliver(
        &self,
        registry: &Registry,
        path: &str,
        text: &Utf8Bytes,
        origin: Origin<'_>,
        max_bytes: usize,
        metrics: &crate::metrics::Metrics,
    ) -> usize {
        if let Some(appends) = read(&self.appends).as_ref() {
            return self.deliver_shared(appends, registry, path, text, origin, max_bytes, metrics);
        }
        let history = if self.any.load(Ordering::Relaxed) {
            read(&self.paths).get(path).cloned()
        } else {
            None
        };
        let Some(history) = history else {
            return registry.deliver(path, text, None, max_bytes, metrics);
        };
        let mut h = lock(&history);
        let seq = h.last_seq + 1;
        let frame = Utf8Bytes::from(format!("#{:016x}:{seq}:{}", h.epoch, text.as_str()));
        self.push(&mut h, seq, &frame, Instant::now());
        registry.deliver(path, text, Some(&frame), max_bytes, metrics)
    }

    /// Registers a recovering socket and returns the frames it must write before its queue:
    /// the status frame, then the replay. `admit` is asked with the replay's size in bytes
    /// (when there is one) and may refuse it with the time to wait.
    pub(crate) fn register(
        &self,
        registry: &Registry,
        path: &str,
        queue: usize,
        request: &RecoverRequest,
        admit: impl FnOnce(usize) -> Result<(), Duration>,
    ) -> Result<(Registration, Vec<Utf8Bytes>), Refused> {
        let mut admit = Some(admit);
        loop {
            let Some(history) = self.history(path, || History::new(self.new_epoch(), 0)) else {
                return Err(Refused::PathsFull);
            };
            let mut h = lock(&history);
            if h.removed {
                continue;
            }
            let (n, b) = h.prune(Instant::now(), self.limits);
            self.messages.fetch_sub(n as u64, Ordering::Relaxed);
            self.bytes.fetch_sub(b as u64, Ordering::Relaxed);
            let mut frames = Vec::new();
            let mut replay_bytes = 0;
            let mut recovered = None;
            let (epoch, last) = (h.epoch, h.last_seq);
            let resumable = request.since.filter(|&(e, s)| {
                e == epoch
                    && s <= last
                    // the history must still hold the message right after `s` (or `s` is the
                    // newest one)
                    && (s == last || h.entries.front().is_some_and(|f| f.seq <= s + 1))
            });
            match resumable {
                Some((_, s)) => {
                    let replay: Vec<Utf8Bytes> = h
                        .entries
                        .iter()
                        .filter(|e| e.seq > s)
                        .map(|e| e.frame.clone())
                        .collect();
                    replay_bytes = replay.iter().map(|f| f.len()).sum();
                    frames.push(Utf8Bytes::from(format!(
                        "#recovered:{epoch:016x}:{last}:{}",
                        replay.len()
                    )));
                    recovered = Some(replay.len());
                    frames.extend(replay);
                }
                None => {
                    frames.push(Utf8Bytes::from(format!("#reset:{epoch:016x}:{last}")));
                }
            }
            // A history left unused by a refusal here is dropped by the next sweep.
            let reg = registry
                .register_recovering(path, queue, true)
                .map_err(|_| Refused::PathsFull)?;
            // The replay's budget is charged only for a socket that is really registered.
            if replay_bytes > 0 {
                if let Some(Err(wait)) = admit.take().map(|admit| admit(replay_bytes)) {
                    registry.deregister(path, reg.id);
                    return Err(Refused::Throttled(wait));
                }
            }
            match recovered {
                Some(n) => {
                    self.recovered.fetch_add(1, Ordering::Relaxed);
                    self.replayed.fetch_add(n as u64, Ordering::Relaxed);
                }
                None if request.since.is_some() => {
                    self.resets.fetch_add(1, Ordering::Relaxed);
                }
                None => {}
            }
            h.sockets += 1;
            return Ok((reg, frames));
        }
    }

    /// A recovering socket at `path` went away.
    pub(crate) fn release(&self, path: &str) {
        if let Some(h) = read(&self.paths).get(path) {
            let mut h = lock(h);
            h.sockets = h.sockets.saturating_sub(1);
        }
    }

    /// Drops expired messages everywhere, and the histories that are empty and have no
    /// recovering socket (their clients get `#reset` with a new epoch: never a silent gap).
    pub(crate) fn sweep(&self) {
        if !self.any.load(Ordering::Relaxed) {
            return;
        }
        let now = Instant::now();
        write(&self.paths).retain(|_, history| {
            let mut h = lock(history);
            let (n, b) = h.prune(now, self.limits);
            self.messages.fetch_sub(n as u64, Ordering::Relaxed);
            self.bytes.fetch_sub(b as u64, Ordering::Relaxed);
            let keep = h.sockets > 0 || !h.entries.is_empty();
            if !keep {
                h.removed = true;
            }
            keep
        });
    }

    /// `(paths with a history, messages held, bytes held)`.
    pub(crate) fn totals(&self) -> (usize, u64, u64) {
        (
            read(&self.paths).len(),
            self.messages.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests;
