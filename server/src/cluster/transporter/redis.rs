//! Redis pub/sub through the `redis` crate: one pub/sub connection reads the node's channels,
//! one multiplexed connection publishes. A lost connection is re-made here, with backoff.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSub};
use redis::AsyncCommands;
use tokio::sync::mpsc;

use super::{connect_error, message, reconnect_delays, Connected, Link, LinkEvent, LinkOptions};
use crate::broker::BoxFuture;
use crate::cluster::ClusterError;

struct RedisLink {
    /// The publishing connection while connected.
    conn: Mutex<Option<MultiplexedConnection>>,
}

impl RedisLink {
    fn set(&self, conn: Option<MultiplexedConnection>) {
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = conn;
    }
}

impl Link for RedisLink {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        payload: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let mut conn = conn.ok_or("not connected to redis")?;
            conn.publish::<_, _, i64>(topic, payload)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        // Every publish waits for the server's reply: nothing is buffered.
        Box::pin(async {})
    }
}

async fn open(
    client: &redis::Client,
    topics: &[String],
    timeout: Duration,
) -> Result<(MultiplexedConnection, PubSub), String> {
    let attempt = async {
        let conn = client.get_multiplexed_async_connection().await?;
        let mut pubsub = client.get_async_pubsub().await?;
        for topic in topics {
            pubsub.subscribe(topic).await?;
        }
        Ok::<_, redis::RedisError>((conn, pubsub))
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err("timed out".to_owned()),
    }
}

pub(super) async fn connect(
    url: &str,
    topics: Vec<String>,
    events: mpsc::Sender<LinkEvent>,
    options: LinkOptions,
) -> Result<Connected, ClusterError> {
    let client = redis::Client::open(url).map_err(|e| connect_error(url, e))?;
    let (conn, pubsub) = open(&client, &topics, options.connect_timeout)
        .await
        .map_err(|e| connect_error(url, e))?;
    let link = Arc::new(RedisLink {
        conn: Mutex::new(Some(conn)),
    });
    let _ = events.send(LinkEvent::Up).await;
    let keeper = tokio::spawn(keep(client, topics, events, options, link.clone(), pubsub));
    Ok(Connected {
        link,
        tasks: vec![keeper],
    })
}

/// Reads messages until the connection is lost, then reconnects with backoff; forever (the
/// task is aborted when the cluster stops).
async fn keep(
    client: redis::Client,
    topics: Vec<String>,
    events: mpsc::Sender<LinkEvent>,
    options: LinkOptions,
    link: Arc<RedisLink>,
    pubsub: PubSub,
) {
    let mut pubsub = Some(pubsub);
    loop {
        if let Some(connected) = pubsub.take() {
            let mut messages = connected.into_on_message();
            while let Some(msg) = messages.next().await {
                let event = message(
                    msg.get_channel_name(),
                    msg.get_payload_bytes(),
                    options.max_packet_size,
                );
                if events.send(event).await.is_err() {
                    return;
                }
            }
            link.set(None);
            if events
                .send(LinkEvent::Down("connection lost".into()))
                .await
                .is_err()
            {
                return;
            }
        }
        for delay in reconnect_delays(options.max_reconnect_delay) {
            tokio::time::sleep(delay).await;
            match open(&client, &topics, options.connect_timeout).await {
                Ok((conn, sub)) => {
                    link.set(Some(conn));
                    pubsub = Some(sub);
                    break;
                }
                Err(e) => tracing::debug!(error = %e, "redis reconnect failed"),
            }
        }
        if events.send(LinkEvent::Up).await.is_err() {
            return;
        }
    }
}
