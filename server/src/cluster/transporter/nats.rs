//! NATS through `async-nats`: the client reconnects by itself (with our backoff) and
//! subscribes again; its connection events become [`LinkEvent`]s.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{connect_error, message, reconnect_delays, Connected, Link, LinkEvent, LinkOptions};
use crate::broker::BoxFuture;
use crate::cluster::ClusterError;

struct NatsLink {
    client: async_nats::Client,
}

impl Link for NatsLink {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        payload: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.client
                .publish(topic.to_owned(), payload.into())
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Err(e) = self.client.flush().await {
                tracing::debug!(error = %e, "nats flush failed");
            }
        })
    }
}

pub(super) async fn connect(
    url: &str,
    topics: Vec<String>,
    events: mpsc::Sender<LinkEvent>,
    options: LinkOptions,
) -> Result<Connected, ClusterError> {
    // The client reports every successful connection, the first one too; only one that
    // follows a loss is a reconnect (the first `Up` is sent below, once subscribed).
    let down = Arc::new(AtomicBool::new(false));
    let callback_events = events.clone();
    let max_delay = options.max_reconnect_delay;
    let opts = async_nats::ConnectOptions::new()
        .name(options.client_name)
        .connection_timeout(options.connect_timeout)
        .reconnect_delay_callback(move |attempts| {
            reconnect_delays(max_delay)
                .nth(attempts.saturating_sub(1))
                .unwrap_or(max_delay)
        })
        .event_callback(move |event| {
            let events = callback_events.clone();
            let down = down.clone();
            async move {
                match event {
                    async_nats::Event::Disconnected => {
                        if !down.swap(true, Ordering::SeqCst) {
                            let _ = events.send(LinkEvent::Down("disconnected".into())).await;
                        }
                    }
                    async_nats::Event::Connected => {
                        if down.swap(false, Ordering::SeqCst) {
                            let _ = events.send(LinkEvent::Up).await;
                        }
                    }
                    other => tracing::debug!(event = %other, "nats client event"),
                }
            }
        });
    let client = tokio::time::timeout(
        options.connect_timeout,
        async_nats::connect_with_options(url, opts),
    )
    .await
    .map_err(|_| connect_error(url, "timed out"))?
    .map_err(|e| connect_error(url, e))?;
    let mut subscriptions = Vec::with_capacity(topics.len());
    for topic in topics {
        let sub = client
            .subscribe(topic)
            .await
            .map_err(|e| connect_error(url, e))?;
        subscriptions.push(sub);
    }
    client.flush().await.map_err(|e| connect_error(url, e))?;
    let _ = events.send(LinkEvent::Up).await;
    let max_size = options.max_packet_size;
    let reader = tokio::spawn(async move {
        let mut all = futures_util::stream::select_all(subscriptions);
        while let Some(msg) = all.next().await {
            let event = message(&msg.subject, &msg.payload, max_size);
            if events.send(event).await.is_err() {
                break;
            }
        }
    });
    Ok(Connected {
        link: Arc::new(NatsLink { client }),
        tasks: vec![reader],
    })
}
