//! The shared history on NATS JetStream: one stream, one subject per path
//! (`<prefix>.<digest of the path>`), so the stream keeps at most `--recovery-history`
//! messages per path (`max_messages_per_subject`) for at most `--recovery-max-age`.
//!
//! An offer is a publish with `Nats-Msg-Id` (the message's cluster-wide ID: JetStream drops
//! copies within its duplicate window) and `Nats-Expected-Last-Subject-Sequence` (the stream
//! sequence of the path's newest message as this gateway read it): when another gateway stored
//! a message of the path in between, JetStream refuses, and the offer is made again after the
//! path's tip. So each path's `<epoch>:<seq>` run has no holes and no forks.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::stream::{Config, LastRawMessageErrorKind, StorageType};
use async_nats::jetstream::{self, Context};
use futures_util::StreamExt;
use tokio::sync::oneshot;

use super::{follow_with, Engine, Limits, Offered, ReadFrom};
use crate::broker::BoxFuture;
use crate::history::{decode, encode, HistoryHost, Tip};
use crate::recovery::DEDUP_WINDOW;

pub(crate) struct JetStream {
    js: Context,
    /// Signalled when the client connected again after a loss: the reader's consumer lived on
    /// the server that went away, so it is made again.
    reconnected: Arc<tokio::sync::Notify>,
    stream: String,
    prefix: String,
    config: Config,
}

impl JetStream {
    /// Connects and makes (or updates) the stream. Fails when the server has no JetStream.
    pub(crate) async fn connect(
        url: &str,
        namespace: &str,
        limits: Limits,
    ) -> Result<Self, String> {
        let reconnected = Arc::new(tokio::sync::Notify::new());
        let signal = reconnected.clone();
        let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let client = async_nats::ConnectOptions::new()
            .name("moleculer-ws history")
            .event_callback(move |event| {
                let (signal, lost) = (signal.clone(), lost.clone());
                async move {
                    use std::sync::atomic::Ordering::Relaxed;
                    match event {
                        async_nats::Event::Disconnected => lost.store(true, Relaxed),
                        async_nats::Event::Connected if lost.swap(false, Relaxed) => {
                            signal.notify_one();
                        }
                        _ => {}
                    }
                }
            })
            .retry_on_initial_connect()
            .connect(url)
            .await
            .map_err(|e| e.to_string())?;
        let js = jetstream::new(client);
        let (stream, prefix) = if namespace.is_empty() {
            (
                "MOLECULER_WS_HISTORY".to_owned(),
                "moleculer-ws.history".to_owned(),
            )
        } else {
            (
                format!("MOLECULER_WS_HISTORY_{namespace}"),
                format!("moleculer-ws.{namespace}.history"),
            )
        };
        let config = Config {
            name: stream.clone(),
            subjects: vec![format!("{prefix}.*")],
            max_messages_per_subject: i64::try_from(limits.max_messages).unwrap_or(i64::MAX),
            max_age: limits.max_age,
            max_message_size: i32::try_from(limits.max_message_size).unwrap_or(i32::MAX),
            duplicate_window: DEDUP_WINDOW.min(limits.max_age),
            storage: StorageType::File,
            ..Config::default()
        };
        let engine = JetStream {
            js,
            reconnected,
            stream,
            prefix,
            config,
        };
        engine.make_stream().await?;
        Ok(engine)
    }

    async fn make_stream(&self) -> Result<(), String> {
        tokio::time::timeout(
            Duration::from_secs(5),
            self.js.create_or_update_stream(self.config.clone()),
        )
        .await
        .map_err(|_| "JetStream does not answer (is nats-server running with -js?)".to_owned())?
        .map(|_| ())
        .map_err(|e| format!("JetStream: {e} (is nats-server running with -js?)"))
    }

    fn subject(&self, path: &str) -> String {
        format!("{}.{}", self.prefix, crate::history::path_digest(path, 12))
    }
}

impl Engine for JetStream {
    fn offer<'a>(
        &'a self,
        message: &'a crate::history::Append,
        tip: Tip,
    ) -> BoxFuture<'a, Result<Offered, String>> {
        Box::pin(async move {
            let (epoch, seq) = tip.next();
            let after = match tip {
                Tip::Known { pos, .. } => pos,
                Tip::Fresh { .. } => 0,
            };
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, message.id.as_str());
            headers.insert(
                async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
                after.to_string().as_str(),
            );
            let body = encode(epoch, seq, &message.path, message.text.as_str());
            let subject = self.subject(&message.path);
            let ack = match self
                .js
                .publish_with_headers(subject, headers, body.into())
                .await
            {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            match ack {
                Ok(ack) if ack.duplicate => Ok(Offered::Done),
                Ok(ack) => Ok(Offered::Stored(crate::history::Stored {
                    path: message.path.clone(),
                    epoch,
                    seq,
                    pos: ack.sequence,
                    text: message.text.clone(),
                    id: Some(message.id.clone()),
                    marker: false,
                })),
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Ok(Offered::WrongTip),
                Err(e) if e.kind() == PublishErrorKind::StreamNotFound => {
                    // Deleted, or the server lost its store: make it again and start over.
                    self.make_stream().await?;
                    Ok(Offered::WrongTip)
                }
                Err(e) => Err(format!("JetStream: {e}")),
            }
        })
    }

    fn open<'a>(
        &'a self,
        path: &'a str,
        epoch: u64,
    ) -> BoxFuture<'a, Result<Option<crate::history::Stored>, String>> {
        Box::pin(async move {
            // The history's start, `<epoch>:0` with no text, only while the path has nothing.
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, "0");
            let body = encode(epoch, 0, path, "");
            let ack = match self
                .js
                .publish_with_headers(self.subject(path), headers, body.into())
                .await
            {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            match ack {
                Ok(_) => Ok(None),
                // A history already there: its newest message, for a gateway that does not
                // know it.
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    self.last_of(path).await
                }
                Err(e) => Err(format!("JetStream: {e}")),
            }
        })
    }

    fn tip<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Option<Tip>, String>> {
        Box::pin(async move {
            let Some(m) = self.last_raw(path).await? else {
                return Ok(None);
            };
            Ok(decode(&m.payload, m.sequence)
                .filter(|s| s.path == path)
                .map(|s| Tip::Known {
                    epoch: s.epoch,
                    seq: s.seq,
                    pos: s.pos,
                })
                // Not ours (or another path with the same digest): the next message starts a
                // new epoch after it.
                .or(Some(Tip::Known {
                    epoch: crate::history::random_u64(),
                    seq: 0,
                    pos: m.sequence,
                })))
        })
    }

    fn follow(
        self: Arc<Self>,
        host: Weak<dyn HistoryHost>,
        ready: oneshot::Sender<()>,
        max_delay: Duration,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            // The position is the stream sequence read last (0: none yet).
            let read_from: ReadFrom<JetStream, _> =
                |e, host, at, ready| Box::pin(e.read_from(host, at, ready));
            follow_with(&*self, host, ready, max_delay, 0u64, read_from).await;
        })
    }
}

impl JetStream {
    /// The newest message on the subject of `path`, if any.
    async fn last_raw(
        &self,
        path: &str,
    ) -> Result<Option<async_nats::jetstream::message::StreamMessage>, String> {
        let stream = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| format!("JetStream: {e}"))?;
        match stream
            .get_last_raw_message_by_subject(&self.subject(path))
            .await
        {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(format!("JetStream: {e}")),
        }
    }

    /// The newest stored message of `path` (`None`: none, or not one of this path's).
    async fn last_of(&self, path: &str) -> Result<Option<crate::history::Stored>, String> {
        let Some(m) = self.last_raw(path).await? else {
            return Ok(None);
        };
        Ok(decode(&m.payload, m.sequence).filter(|s| s.path == path))
    }

    /// Reads the stream after `read` into `host` until an error (or the host is gone).
    async fn read_from(
        &self,
        host: &Weak<dyn HistoryHost>,
        read: &mut u64,
        ready: &mut Option<oneshot::Sender<()>>,
    ) -> Result<(), String> {
        let mut stream = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| e.to_string())?;
        let state = &stream.info().await.map_err(|e| e.to_string())?.state;
        let (last, messages) = (state.last_sequence, state.messages);
        if last < *read {
            // The stream was made again (the server lost its store): read it all.
            *read = 0;
        }
        // Nothing to read (the messages may all have expired: the last sequence stays).
        if last <= *read || messages == 0 {
            if let Some(r) = ready.take() {
                let _ = r.send(());
            }
        }
        let deliver_policy = if *read == 0 {
            DeliverPolicy::All
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: *read + 1,
            }
        };
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: format!("{}.*", self.prefix),
                deliver_policy,
                ..OrderedConfig::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
        if let Some(h) = host.upgrade() {
            h.engine_up(true);
        }
        loop {
            let m = tokio::select! {
                m = messages.next() => m,
                () = self.reconnected.notified() => {
                    return Err("connected again: reading on with a new consumer".to_owned());
                }
            };
            let Some(m) = m else { break };
            let m = m.map_err(|e| e.to_string())?;
            let Some(h) = host.upgrade() else {
                return Ok(());
            };
            let info = m.info().ok();
            let pos = info.as_ref().map_or(*read + 1, |i| i.stream_sequence);
            // Read up to what was there at the start (or nothing is left to read).
            let caught_up = pos >= last || info.as_ref().is_some_and(|i| i.pending == 0);
            *read = pos;
            match decode(&m.payload, pos) {
                Some(mut stored) => {
                    stored.id = m
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                        .map(|v| v.as_str())
                        .filter(|id| id.len() <= crate::history::MAX_ID_LEN)
                        .map(str::to_owned);
                    h.stored(stored);
                }
                None => tracing::debug!(pos, "cluster: a malformed message in the shared history"),
            }
            if caught_up {
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
            }
        }
        Err("the stream of stored messages ended".to_owned())
    }
}
