//! The tokio driver's timers with tokio's paused clock: reconnect backoff and connect timeout
//! take virtual time only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use moleculer_ws_client::{Client, Event, ReconnectPolicy, SessionError, WebSocketConfig};
use support::*;
use tokio::time::Instant;

const S: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn backoff_delays_grow_then_give_up() {
    // A port nobody listens on.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let policy = ReconnectPolicy::default()
        .jitter(false)
        .max_attempts(Some(3));
    let config = WebSocketConfig::default().reconnect(policy);
    let started = Instant::now();
    let (_ws, mut events) = Client::new()
        .unwrap()
        .ws(&format!("ws://{addr}/ws/x"), config)
        .unwrap();
    let mut delays = Vec::new();
    let stop = loop {
        match expect_event(&mut events, Duration::from_secs(600), "an event", |_| true).await {
            Event::Reconnecting { attempt, delay } => delays.push((attempt, delay)),
            Event::Stopped(e) => break e,
            _ => {}
        }
    };
    assert_eq!(delays, vec![(1, 3 * S), (2, 6 * S), (3, 12 * S)]);
    assert_eq!(stop, Some(SessionError::GaveUp { attempts: 3 }));
    assert!(started.elapsed() >= 21 * S, "{:?}", started.elapsed());
}

#[tokio::test(start_paused = true)]
async fn a_silent_server_hits_the_connect_timeout() {
    // Accepts TCP (the backlog does) but never answers the upgrade.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = WebSocketConfig::default()
        .connect_timeout(5 * S)
        .reconnect(ReconnectPolicy::disabled());
    let started = Instant::now();
    let (ws, mut events) = Client::new()
        .unwrap()
        .ws(&format!("http://{addr}/ws/x"), config)
        .unwrap();
    let e = expect_event(&mut events, Duration::from_secs(600), "stopped", |e| {
        matches!(e, Event::Stopped(_))
    })
    .await;
    assert_eq!(e, Event::Stopped(Some(SessionError::ConnectTimeout)));
    assert!(started.elapsed() >= 5 * S, "{:?}", started.elapsed());
    assert!(
        ws.connect().await.is_err(),
        "disabled reconnect: the retry fails too"
    );
    drop(listener);
}
