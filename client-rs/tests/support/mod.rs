//! Test support: a reference gateway on 127.0.0.1:0 and event waiting with timeouts.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod certs;
pub mod proxy;
pub mod socks;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use moleculer_ws_client::{Client, Event, Events, Message, ReconnectPolicy, WebSocketConfig};
use moleculer_ws_server::{Gateway, GatewayConfig, RunningGateway};

/// Generous upper bound for anything that should happen "soon".
pub const WAIT: Duration = Duration::from_secs(10);

/// A gateway with `config`, on a free port (or `addr` for a restart), with the routes the
/// tests call: the trigger routes (`/api/websocket/send`, `/api/websocket/clients`) and the
/// sample chat (`/api/chat/send`), both off by default.
pub async fn gateway_at(config: GatewayConfig, addr: &str) -> RunningGateway {
    let config = config
        .trigger(true)
        .sample_chat(true)
        .shutdown_timeout(Duration::from_secs(2));
    Gateway::builder()
        .config(config)
        .build()
        .expect("gateway config")
        .bind(addr)
        .await
        .expect("bind")
}

/// A default gateway on 127.0.0.1:0.
pub async fn gateway() -> RunningGateway {
    gateway_at(GatewayConfig::default(), "127.0.0.1:0").await
}

/// `http://addr/`.
pub fn base(addr: SocketAddr) -> String {
    format!("http://{addr}/")
}

/// A client whose base URL is the gateway.
pub fn client(gw: &RunningGateway) -> Client {
    Client::builder()
        .base_url(&base(gw.local_addr()))
        .build()
        .unwrap()
}

/// Waits for the first event matching `pred` (skipping others), panicking after `within`.
pub async fn expect_event(
    events: &mut Events,
    within: Duration,
    what: &str,
    mut pred: impl FnMut(&Event) -> bool,
) -> Event {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(within, async {
        while let Some(e) = events.recv().await {
            if pred(&e) {
                return Some(e);
            }
            seen.push(e);
        }
        None
    })
    .await;
    match found {
        Ok(Some(e)) => e,
        Ok(None) => panic!("stream ended waiting for {what}; seen {seen:?}"),
        Err(_) => panic!("no {what} within {within:?}; seen {seen:?}"),
    }
}

/// Collects the events that arrive within `window` (for checks that nothing happens).
pub async fn events_within(events: &mut Events, window: Duration) -> Vec<Event> {
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(window, async {
        while let Some(e) = events.recv().await {
            seen.push(e);
        }
    })
    .await;
    seen
}

/// Polls `cond` until it holds, panicking after `within`.
pub async fn eventually<F: Future<Output = bool>>(
    within: Duration,
    what: &str,
    mut cond: impl FnMut() -> F,
) {
    let ok = tokio::time::timeout(within, async {
        loop {
            if cond().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(ok.is_ok(), "not {what} within {within:?}");
}

/// Waits until the gateway counts `n` sockets at `path`.
pub async fn clients_at(gw: &RunningGateway, path: &str, n: usize) {
    eventually(WAIT, &format!("{n} clients at {path}"), || async {
        gw.count_clients().get(path).copied().unwrap_or(0) == n
    })
    .await;
}

pub fn is_open(e: &Event) -> bool {
    matches!(e, Event::Open)
}

pub fn is_message(e: &Event) -> bool {
    matches!(e, Event::Message(_))
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A fast fixed reconnect (the default 60 s heartbeat stays out of the way).
pub fn fast() -> WebSocketConfig {
    WebSocketConfig::default().reconnect(ReconnectPolicy::fixed().delay(ms(100)))
}

/// A short heartbeat (300 ms, timeout 100 ms) and a fast reconnect.
pub fn hb() -> WebSocketConfig {
    fast()
        .heartbeat_interval(ms(300))
        .heartbeat_timeout(ms(100))
}

pub async fn message(events: &mut Events) -> Message {
    match expect_event(events, WAIT, "a message", is_message).await {
        Event::Message(m) => m,
        _ => unreachable!(),
    }
}

/// `fut`, or a failure after [`WAIT`].
pub async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.expect("timed out")
}
