//! Transporters: the message brokers packets travel through (NATS, Redis pub/sub).
//!
//! A transporter connects once (the first connection must succeed), subscribes to the node's
//! topics and then keeps the link itself: on loss it reports [`LinkEvent::Down`], reconnects
//! with backoff, subscribes again and reports [`LinkEvent::Up`] so the node re-announces.
//! Publishing while the link is down fails (the packet is dropped, as a lost network would).

#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "redis")]
mod redis;

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::ClusterError;
use crate::broker::BoxFuture;

/// What the transporter tells the node.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    /// Connected and subscribed (after the first connection and after every reconnect).
    Up,
    /// The connection is lost; reconnecting.
    Down(String),
    /// A message on one of the subscribed topics.
    Message { topic: String, payload: Vec<u8> },
    /// A message bigger than `max_packet_size`, not passed on (nor copied).
    TooLarge { topic: String, size: usize },
}

/// The event for a message read off `topic`: [`LinkEvent::Message`], or
/// [`LinkEvent::TooLarge`] when `payload` is bigger than `max_size` (it is not copied then, so
/// the queue to the transit never holds an oversized packet).
pub(crate) fn message(topic: &str, payload: &[u8], max_size: usize) -> LinkEvent {
    if payload.len() > max_size {
        LinkEvent::TooLarge {
            topic: topic.to_owned(),
            size: payload.len(),
        }
    } else {
        LinkEvent::Message {
            topic: topic.to_owned(),
            payload: payload.to_vec(),
        }
    }
}

/// Publishing side of a connected transporter.
pub(crate) trait Link: Send + Sync + 'static {
    /// Publishes `payload` on `topic`; an error says why it was not sent.
    fn publish<'a>(&'a self, topic: &'a str, payload: Vec<u8>)
        -> BoxFuture<'a, Result<(), String>>;
    /// Waits until what was published has been handed to the server (best effort).
    fn flush(&self) -> BoxFuture<'_, ()>;
}

/// Connection settings shared by the transporters.
#[derive(Debug, Clone)]
pub(crate) struct LinkOptions {
    /// Shown to the server as the client name.
    pub(crate) client_name: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_reconnect_delay: Duration,
    /// Bigger messages are not passed on.
    pub(crate) max_packet_size: usize,
}

/// A connected transporter: the publishing side and the tasks that keep it.
pub(crate) struct Connected {
    pub(crate) link: Arc<dyn Link>,
    pub(crate) tasks: Vec<JoinHandle<()>>,
}

/// Connects to `url` (`nats://...` or `redis://...`) and subscribes to `topics`; events go to
/// `events`. Sends [`LinkEvent::Up`] once subscribed.
pub(crate) async fn connect(
    url: &str,
    topics: Vec<String>,
    events: mpsc::Sender<LinkEvent>,
    options: LinkOptions,
) -> Result<Connected, ClusterError> {
    match url.split_once("://").map(|(scheme, _)| scheme) {
        #[cfg(feature = "nats")]
        Some("nats") => nats::connect(url, topics, events, options).await,
        #[cfg(feature = "redis")]
        Some("redis") => redis::connect(url, topics, events, options).await,
        #[cfg(not(feature = "nats"))]
        Some("nats") => Err(not_built(url, "nats")),
        #[cfg(not(feature = "redis"))]
        Some("redis") => Err(not_built(url, "redis")),
        _ => Err(ClusterError::InvalidTransporter(format!(
            "{}: use nats://host:port or redis://host:port",
            redact(url)
        ))),
    }
}

/// A transporter this build was made without.
#[cfg(not(all(feature = "nats", feature = "redis")))]
fn not_built(url: &str, scheme: &str) -> ClusterError {
    ClusterError::InvalidTransporter(format!(
        "{}: this build has no {scheme} transporter (the cargo feature `{scheme}` of \
         moleculer-ws-server is off)",
        redact(url)
    ))
}

/// Delays between reconnect attempts: 100 ms doubling up to `max`, with jitter, forever.
pub(crate) fn reconnect_delays(max: Duration) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
        .build()
}

/// The URL without its password, for logs and errors.
pub(crate) fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(at)) if at > scheme.len() => {
            let host = &url[at + 1..];
            let user = rest.split_once('@').map_or("", |(u, _)| u);
            let user = user.split_once(':').map_or(user, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

fn connect_error(url: &str, reason: impl std::fmt::Display) -> ClusterError {
    ClusterError::Connect {
        url: redact(url),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://:s3cret@127.0.0.1:6379"),
            "redis://:***@127.0.0.1:6379"
        );
        assert_eq!(redact("nats://u:p@h:4222"), "nats://u:***@h:4222");
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }

    #[test]
    fn oversized_messages_are_not_passed_on() {
        let small = message("MOL.INFO", b"12345", 5);
        assert!(matches!(small, LinkEvent::Message { payload, .. } if payload == b"12345"));
        let big = message("MOL.INFO", b"123456", 5);
        assert!(matches!(big, LinkEvent::TooLarge { topic, size: 6 } if topic == "MOL.INFO"));
    }

    #[test]
    fn delays_grow_and_stay_bounded() {
        let max = Duration::from_secs(2);
        let delays: Vec<Duration> = reconnect_delays(max).take(20).collect();
        assert_eq!(delays.len(), 20);
        assert!(delays.iter().all(|d| *d <= max * 2), "{delays:?}");
        assert!(delays[0] < Duration::from_millis(300));
    }

    /// A build without a transporter refuses its URL, saying which cargo feature is off
    /// (`cargo test -p moleculer-ws-server --no-default-features --lib`, run by test-all.sh).
    #[cfg(not(any(feature = "nats", feature = "redis")))]
    #[tokio::test]
    async fn a_transporter_this_build_lacks_is_refused_clearly() {
        let options = LinkOptions {
            client_name: "t".into(),
            connect_timeout: Duration::from_secs(1),
            max_reconnect_delay: Duration::from_secs(1),
            max_packet_size: 1024,
        };
        for (url, scheme) in [
            ("nats://u:pw@127.0.0.1:1", "nats"),
            ("redis://127.0.0.1:1", "redis"),
        ] {
            let (events, _rx) = mpsc::channel(1);
            let Err(e) = connect(url, Vec::new(), events, options.clone()).await else {
                panic!("{url} connected");
            };
            let text = e.to_string();
            assert!(
                text.contains(&format!(
                    "this build has no {scheme} transporter (the cargo feature `{scheme}`"
                )) && !text.contains("pw"),
                "{text}"
            );
        }
    }
}
