//! The shared history on Redis Streams: one stream for all paths (entries `p` path, `e` epoch,
//! `s` sequence, `d` text), trimmed by age (`MINID`, the entries' IDs being their times), and
//! per path a tip key `<epoch>:<seq>` that expires with the path's last message.
//!
//! An offer runs one script, atomically: it drops an ID seen within the deduplication window,
//! else gives the message the path's next `<epoch>:<seq>`, appends it, and only then records
//! the ID and the tip (a script that fails half way leaves nothing that would hide the message
//! from the next offer). Needs Redis 6.2 or later (`XADD … MINID`).

use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamRangeReply, StreamReadOptions, StreamReadReply};
use redis::AsyncCommands;
use tokio::sync::oneshot;

use super::{follow_with, Engine, Limits, Offered, ReadFrom};
use crate::broker::BoxFuture;
use crate::history::{Append, HistoryHost, Stored, Tip};
use crate::recovery::DEDUP_WINDOW;
use crate::registry::Utf8Bytes;

/// KEYS: stream, tip key, ID key. ARGV: path, epoch for a new run (16 hex), text, max age in
/// ms, dedup window in ms, most entries of the stream, the message's ID. Returns
/// `{seq, epoch}`, or `{0, ''}` for an ID seen within the window.
const OFFER: &str = r"
if redis.call('EXISTS', KEYS[3]) == 1 then return {0, ''} end
local tip = redis.call('GET', KEYS[2])
local epoch, seq = ARGV[2], 1
if tip then
  local i = string.find(tip, ':', 1, true)
  if i then
    epoch = string.sub(tip, 1, i - 1)
    seq = (tonumber(string.sub(tip, i + 1)) or 0) + 1
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('XADD', KEYS[1], 'MINID', '~', now - tonumber(ARGV[4]), '*',
  'p', ARGV[1], 'e', epoch, 's', seq, 'd', ARGV[3], 'i', ARGV[7])
redis.call('SET', KEYS[2], epoch .. ':' .. seq, 'PX', ARGV[4])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[5])
redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[6])
return {seq, epoch}
";

/// KEYS: stream, tip key. ARGV: path, epoch (16 hex), max age in ms, most entries. Starts the
/// path's history (`<epoch>:0`, an entry with no text) unless it has one; returns the path's
/// tip `<epoch>:<seq>` when it had one (else an empty string).
const OPEN: &str = r"
local tip = redis.call('GET', KEYS[2])
if tip then return tip end
redis.call('XADD', KEYS[1], '*', 'p', ARGV[1], 'e', ARGV[2], 's', 0, 'd', '')
redis.call('SET', KEYS[2], ARGV[2] .. ':0', 'PX', ARGV[3])
redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[4])
return ''
";

/// Entries read per request.
const PAGE: usize = 512;
/// How long one read waits for new entries (below the connection's response timeout).
const BLOCK_MS: usize = 250;

pub(crate) struct RedisStreams {
    client: redis::Client,
    /// The connection offers go through; made again after an error.
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    script: redis::Script,
    open: redis::Script,
    stream: String,
    keys: String,
    limits: Limits,
}

impl RedisStreams {
    pub(crate) async fn connect(
        url: &str,
        namespace: &str,
        limits: Limits,
    ) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let keys = if namespace.is_empty() {
            "{moleculer-ws}".to_owned()
        } else {
            format!("{{moleculer-ws-{namespace}}}")
        };
        Ok(RedisStreams {
            client,
            conn: tokio::sync::Mutex::new(Some(conn)),
            script: redis::Script::new(OFFER),
            open: redis::Script::new(OPEN),
            stream: format!("{keys}:history"),
            keys,
            limits,
        })
    }

    /// Runs `script` with `keys` and `args` on the offer connection (connecting first when the
    /// last one failed).
    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        keys: &[String],
        args: &[String],
    ) -> Result<T, String> {
        let mut slot = self.conn.lock().await;
        let mut conn = match slot.as_ref() {
            Some(c) => c.clone(),
            None => {
                let c = self
                    .client
                    .get_multiplexed_async_connection()
                    .await
                    .map_err(|e| format!("redis: {e}"))?;
                *slot = Some(c.clone());
                c
            }
        };
        drop(slot);
        let mut invocation = script.prepare_invoke();
        for k in keys {
            invocation.key(k);
        }
        for a in args {
            invocation.arg(a);
        }
        match invocation.invoke_async::<T>(&mut conn).await {
            Ok(n) => Ok(n),
            Err(e) => {
                if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() {
                    *self.conn.lock().await = None;
                }
                Err(format!("redis: {e}"))
            }
        }
    }

    fn max_age_ms(&self) -> u64 {
        u64::try_from(self.limits.max_age.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// The most entries the stream keeps (all paths together; each path's own bounds are its
    /// age and the mirrors' limits).
    fn most(&self) -> usize {
        self.limits.max_messages.saturating_mul(1024).max(PAGE)
    }

    fn tip_key(&self, path: &str) -> String {
        format!(
            "{}:tip:{}",
            self.keys,
            crate::history::path_digest(path, 16)
        )
    }
}

impl Engine for RedisStreams {
    fn offer<'a>(
        &'a self,
        message: &'a Append,
        tip: Tip,
    ) -> BoxFuture<'a, Result<Offered, String>> {
        Box::pin(async move {
            // The script follows the tip it keeps itself; only a new run's epoch comes from here
            // (never the epoch of a run the engine no longer has: its numbers would start over).
            let epoch = match tip {
                Tip::Fresh { epoch } => epoch,
                Tip::Known { .. } => crate::history::random_u64(),
            };
            let keys = [
                self.stream.clone(),
                self.tip_key(&message.path),
                format!("{}:id:{}", self.keys, message.id),
            ];
            let args = [
                message.path.clone(),
                format!("{epoch:016x}"),
                message.text.as_str().to_owned(),
                self.max_age_ms().to_string(),
                (DEDUP_WINDOW.as_millis() as u64).to_string(),
                self.most().to_string(),
                message.id.clone(),
            ];
            let (seq, epoch): (u64, String) = self.run(&self.script, &keys, &args).await?;
            if seq == 0 {
                return Ok(Offered::Done);
            }
            let (epoch, seq) = parse_tip(&format!("{epoch}:{seq}"))
                .ok_or_else(|| format!("redis: an answer that does not parse: {epoch}:{seq}"))?;
            Ok(Offered::Stored(Stored {
                path: message.path.clone(),
                epoch,
                seq,
                pos: 0,
                text: message.text.clone(),
                id: Some(message.id.clone()),
                marker: false,
            }))
        })
    }

    fn open<'a>(
        &'a self,
        path: &'a str,
        epoch: u64,
    ) -> BoxFuture<'a, Result<Option<Stored>, String>> {
        Box::pin(async move {
            let keys = [self.stream.clone(), self.tip_key(path)];
            let args = [
                path.to_owned(),
                format!("{epoch:016x}"),
                self.max_age_ms().to_string(),
                self.most().to_string(),
            ];
            let tip: String = self.run(&self.open, &keys, &args).await?;
            // A history already there: its position, for a gateway that does not know it.
            Ok(parse_tip(&tip).map(|(epoch, seq)| Stored {
                path: path.to_owned(),
                epoch,
                seq,
                pos: 0,
                text: Utf8Bytes::from_static(""),
                id: None,
                marker: true,
            }))
        })
    }

    fn tip<'a>(&'a self, _path: &'a str) -> BoxFuture<'a, Result<Option<Tip>, String>> {
        // The script never refuses a tip: nothing to look up.
        Box::pin(async { Ok(None) })
    }

    fn follow(
        self: Arc<Self>,
        host: Weak<dyn HistoryHost>,
        ready: oneshot::Sender<()>,
        max_delay: Duration,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            // The position is the ID of the entry read last ("0-0": none yet).
            let read_from: ReadFrom<RedisStreams, _> =
                |e, host, at, ready| Box::pin(e.read_from(host, at, ready));
            follow_with(&*self, host, ready, max_delay, "0-0".to_owned(), read_from).await;
        })
    }
}

impl RedisStreams {
    /// Reads the entries after `read` into `host` until an error (or the host is gone).
    async fn read_from(
        &self,
        host: &Weak<dyn HistoryHost>,
        read: &mut String,
        ready: &mut Option<oneshot::Sender<()>>,
    ) -> Result<(), String> {
        let mut conn = self
            .client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        if let Some(h) = host.upgrade() {
            h.engine_up(true);
        }
        if ready.is_some() {
            // What is stored now, page by page, then the ready signal.
            loop {
                let page: StreamRangeReply = conn
                    .xrange_count(&self.stream, format!("({read}"), "+", PAGE)
                    .await
                    .map_err(|e| e.to_string())?;
                let n = page.ids.len();
                let Some(h) = host.upgrade() else {
                    return Ok(());
                };
                for entry in page.ids {
                    read.clone_from(&entry.id);
                    mirror(&*h, entry);
                }
                if n < PAGE {
                    break;
                }
            }
            if let Some(r) = ready.take() {
                let _ = r.send(());
            }
        }
        let options = StreamReadOptions::default().block(BLOCK_MS).count(PAGE);
        loop {
            let reply: Option<StreamReadReply> = conn
                .xread_options(&[&self.stream], &[read.as_str()], &options)
                .await
                .map_err(|e| e.to_string())?;
            let Some(h) = host.upgrade() else {
                return Ok(());
            };
            for key in reply.map(|r| r.keys).unwrap_or_default() {
                for entry in key.ids {
                    read.clone_from(&entry.id);
                    mirror(&*h, entry);
                }
            }
        }
    }
}

/// `<epoch, 16 hex>:<seq>`, as the tip keys hold it.
fn parse_tip(tip: &str) -> Option<(u64, u64)> {
    let (epoch, seq) = tip.split_once(':')?;
    let epoch = u64::from_str_radix(epoch, 16)
        .ok()
        .filter(|_| epoch.len() == 16)?;
    let seq = seq
        .parse::<u64>()
        .ok()
        .filter(|&s| s <= crate::history::MAX_SEQ)?;
    Some((epoch, seq))
}

/// One entry into the host; a malformed one is skipped (the engine is shared: never trusted).
fn mirror(host: &dyn HistoryHost, entry: StreamId) {
    let text = |field: &str| -> Option<String> { entry.get(field) };
    let stored = (|| {
        let epoch = text("e").filter(|e| e.len() == 16)?;
        Some(Stored {
            path: text("p")?,
            epoch: u64::from_str_radix(&epoch, 16).ok()?,
            seq: text("s")?
                .parse::<u64>()
                .ok()
                .filter(|&s| s <= crate::history::MAX_SEQ)?,
            pos: 0,
            text: Utf8Bytes::from(text("d")?),
            id: text("i").filter(|i| i.len() <= crate::history::MAX_ID_LEN),
            marker: false,
        })
    })();
    match stored {
        Some(mut m) => {
            m.marker = m.seq == 0;
            host.stored(m);
        }
        None => tracing::debug!(id = %entry.id, "cluster: a malformed entry in the shared history"),
    }
}
