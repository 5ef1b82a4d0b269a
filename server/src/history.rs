//! The seam between the gateway's recovery histories and a cluster's shared history engine
//! (NATS JetStream or Redis Streams, `cluster::history`), and what both sides agree on: the
//! message IDs stored once, the stored message's wire form, the epochs.
//!
//! In a cluster every gateway receives every `websocket.send` and offers it to the engine with
//! the same ID; the engine stores it once, gives it the path's next `<epoch>:<seq>`, and every
//! gateway reads the stored messages back, in the engine's order, into its mirror of the
//! histories ([`crate::recovery`]): so each gateway hands out the same position for the same
//! message and a client recovers from any of them.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use crate::registry::Utf8Bytes;

/// A random `u64`, never 0 (epochs, instance IDs).
pub(crate) fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish().max(1)
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The first `n` bytes (at most 32) of the SHA-256 of a path, in hex: the path's name in an
/// engine (a subject or key of fixed length and alphabet, whatever the path holds).
pub(crate) fn path_digest(path: &str, n: usize) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, path.as_bytes());
    hex(&digest.as_ref()[..n.min(32)])
}

/// A message offered to the engine.
#[derive(Debug, Clone)]
pub(crate) struct Append {
    pub path: String,
    /// The message's ID, the same on every gateway that received it (see [`Occurrences`]).
    pub id: String,
    /// The plain frame's text (the event's `data` as JSON).
    pub text: Utf8Bytes,
    /// When this gateway received it.
    pub received: Instant,
    /// The node that sent it.
    pub sender: String,
}

/// Work for the engine's worker.
#[derive(Debug)]
pub(crate) enum Job {
    /// Store a message.
    Offer(Append),
    /// A recovering client came to a path the engine has no history of: start one with this
    /// epoch (unless another gateway did first), so every gateway announces the same epoch.
    Open { path: String, epoch: u64 },
}

/// A message as the engine stored it (`seq` 0: the start of a path's history, no message).
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub path: String,
    pub epoch: u64,
    pub seq: u64,
    /// Where the engine keeps it (JetStream: the stream sequence; Redis: 0).
    pub pos: u64,
    pub text: Utf8Bytes,
    /// The ID it was offered with (a gateway that gave up waiting for the engine and sent it
    /// under a local epoch knows it by this, and does not send it again).
    pub id: Option<String>,
    /// A position only, no message: the start of a path's history (`seq` 0), or the newest
    /// position of a history found when asking the engine to start one.
    pub marker: bool,
}

/// The largest sequence number taken from an engine (anything above is refused: it would
/// leave no room to count on).
pub(crate) const MAX_SEQ: u64 = 1 << 62;
/// The longest message ID taken from an engine (ours are 32 hex digits, a dash and a count).
pub(crate) const MAX_ID_LEN: usize = 64;

/// The newest stored message of a path as a gateway knows it, or the epoch to start the path's
/// history with when it has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tip {
    Known { epoch: u64, seq: u64, pos: u64 },
    Fresh { epoch: u64 },
}

impl Tip {
    /// The epoch and sequence number the next message gets.
    pub(crate) fn next(self) -> (u64, u64) {
        match self {
            Tip::Known { epoch, seq, .. } => (epoch, seq + 1),
            Tip::Fresh { epoch } => (epoch, 1),
        }
    }
}

/// The gateway's side of a shared history, called by the engine's tasks.
pub(crate) trait HistoryHost: Send + Sync {
    /// Plugs the queue of messages to offer to the engine in (`None`: unplugs it; histories
    /// are then kept in process again, each under a new epoch announced with `#reset`).
    fn attach(&self, jobs: Option<tokio::sync::mpsc::Sender<Job>>);
    /// A message read back from the engine, in the engine's order (a path longer than the
    /// gateway takes is skipped).
    fn stored(&self, message: Stored);
    /// A message this gateway's offer just stored: taken when it is the next one of its
    /// path here (else the reader brings it, in order).
    fn stored_here(&self, message: Stored);
    /// The newest stored message of `path` this gateway has read.
    fn tip(&self, path: &str) -> Tip;
    /// A message the engine did not take (unreachable, too slow): this gateway's recovering
    /// sockets get it under an epoch of its own, after a `#reset` (never a silent hole).
    fn unstored(&self, message: Append);
    /// Whether the engine is reachable (for `/metrics`).
    fn engine_up(&self, up: bool);
    /// The most messages kept per path, and for how long (the gateway's recovery limits).
    fn limits(&self) -> (usize, Duration);
    /// Whether a message with this ID was read back from the engine lately.
    fn was_stored(&self, id: &str) -> bool;
    /// Resolves when the next message is read back from the engine, or after `timeout`.
    fn changed(
        &self,
        timeout: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>;
}

/// Bytes of the SHA-256 digest kept in a message ID (32 hex digits).
const KEY_BYTES: usize = 16;
/// Keys remembered at most; past this, the ones older than the window go.
const MAX_KEYS: usize = 1 << 16;

/// Gives each received message its cluster-wide ID: a digest of the sender, the event's
/// request ID, the path and the text, and how many times this gateway saw that digest within
/// the deduplication window before (a request may send the same text to a path twice: the two
/// get different IDs). Every gateway receives a sender's events in the same order, so they
/// compute the same IDs; a gateway that joined in the middle may count lower, so its IDs are
/// ones the others used already: the engine drops them as duplicates and nothing is stored
/// twice.
pub(crate) struct Occurrences {
    seen: HashMap<[u8; KEY_BYTES], (u32, Instant)>,
    window: Duration,
}

impl Occurrences {
    pub(crate) fn new(window: Duration) -> Occurrences {
        Occurrences {
            seen: HashMap::new(),
            window,
        }
    }

    /// The ID of one received message (`request_id` as the sender gave it; `None` for none).
    pub(crate) fn id(
        &mut self,
        sender: &str,
        request_id: Option<&str>,
        path: &str,
        text: &str,
        now: Instant,
    ) -> String {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for field in [sender, request_id.unwrap_or(""), path, text] {
            ctx.update(&(field.len() as u64).to_le_bytes());
            ctx.update(field.as_bytes());
        }
        let digest = ctx.finish();
        let mut base = [0u8; KEY_BYTES];
        base.copy_from_slice(&digest.as_ref()[..KEY_BYTES]);
        if self.seen.len() >= MAX_KEYS {
            let window = self.window;
            self.seen
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < window);
            if self.seen.len() >= MAX_KEYS {
                self.seen.clear();
            }
        }
        let window = self.window;
        let entry = self.seen.entry(base).or_insert((0, now));
        if now.saturating_duration_since(entry.1) >= window {
            entry.0 = 0;
        }
        let n = entry.0;
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        format!("{}-{n}", hex(&base))
    }
}

/// A stored message's body in an engine without fields (JetStream):
/// `<epoch, 16 hex>:<seq>:<path length>:<path><text>`.
pub(crate) fn encode(epoch: u64, seq: u64, path: &str, text: &str) -> Vec<u8> {
    format!("{epoch:016x}:{seq}:{}:{path}{text}", path.len()).into_bytes()
}

/// Reads [`encode`]'s form; `None` for anything else (the engine is shared: never trusted).
pub(crate) fn decode(body: &[u8], pos: u64) -> Option<Stored> {
    let body = std::str::from_utf8(body).ok()?;
    let mut it = body.splitn(4, ':');
    let epoch = it.next().filter(|e| e.len() == 16)?;
    let epoch = u64::from_str_radix(epoch, 16).ok()?;
    let seq = it.next()?.parse::<u64>().ok().filter(|&s| s <= MAX_SEQ)?;
    let len = it.next()?.parse::<usize>().ok()?;
    let rest = it.next()?;
    let path = rest.get(..len)?;
    let text = rest.get(len..)?;
    Some(Stored {
        path: path.to_owned(),
        epoch,
        seq,
        pos,
        text: Utf8Bytes::from(text.to_owned()),
        id: None,
        marker: seq == 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_message_gets_the_same_id_everywhere_and_repeats_count() {
        let now = Instant::now();
        let window = Duration::from_secs(120);
        let (mut a, mut b) = (Occurrences::new(window), Occurrences::new(window));
        let first = a.id("node-1", Some("r1"), "/ws", "{\"n\":1}", now);
        assert_eq!(first, b.id("node-1", Some("r1"), "/ws", "{\"n\":1}", now));
        assert!(first.ends_with("-0"), "{first}");
        // The same text again in the same request: another ID, the same on both.
        let again = a.id("node-1", Some("r1"), "/ws", "{\"n\":1}", now);
        assert_ne!(first, again);
        assert_eq!(again, b.id("node-1", Some("r1"), "/ws", "{\"n\":1}", now));
        // Any field differing gives another digest; fields do not run into each other.
        let ids = [
            a.id("node-2", Some("r1"), "/ws", "{\"n\":1}", now),
            a.id("node-1", Some("r2"), "/ws", "{\"n\":1}", now),
            a.id("node-1", Some("r1"), "/ws2", "{\"n\":1}", now),
            a.id("node-1", Some("r1"), "/ws", "{\"n\":2}", now),
            a.id("node-1", None, "/ws", "{\"n\":1}", now),
            a.id("node-1", Some("r1/"), "ws", "{\"n\":1}", now),
        ];
        for id in &ids {
            assert_ne!(&first[..32], &id[..32]);
        }
        // Past the window the count starts over (the engine forgot the ID too).
        let later = now + window;
        assert_eq!(first, a.id("node-1", Some("r1"), "/ws", "{\"n\":1}", later));
    }

    #[test]
    fn stored_bodies_round_trip_and_garbage_is_refused() {
        let body = encode(0xab, 7, "/ws/a:b", "{\"x\":\":\"}");
        let m = decode(&body, 9).unwrap();
        assert_eq!(
            (m.path.as_str(), m.epoch, m.seq, m.pos, m.text.as_str()),
            ("/ws/a:b", 0xab, 7, 9, "{\"x\":\":\"}")
        );
        for bad in [
            &b""[..],
            b"zz:1:1:/x",
            b"00000000000000ab:-1:3:/ws1",
            b"00000000000000ab:18446744073709551615:3:/ws1",
            b"00000000000000ab:1:9:/ws",
            b"00000000000000ab:1:x:/ws",
            b"ab:1:3:/ws1",
            b"\xff\xfe",
        ] {
            assert!(decode(bad, 0).is_none(), "{bad:?}");
        }
    }
}
