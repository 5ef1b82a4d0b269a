//! The API details of issue 18: `Events::messages()`, the async token provider asked before
//! every attempt, and the connection's `tracing` span and events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use moleculer_ws_client::{Client, StatusCode};
use moleculer_ws_server::GatewayConfig;
use serde_json::json;
use support::*;

#[tokio::test]
async fn messages_skip_every_other_event() {
    let gw = gateway().await;
    let c = client(&gw);
    let (ws, mut events) = c.ws("/ws/only", fast()).unwrap();
    within(ws.connect()).await.unwrap();
    clients_at(&gw, "/ws/only", 1).await;
    for n in 1..=3 {
        c.post(
            "/api/websocket/send",
            &json!({"path": "ws/only", "data": n}),
        )
        .await
        .unwrap();
    }
    // Open, Connecting and the rest went by: only the three texts come out.
    let mut messages = events.messages();
    let mut texts = Vec::new();
    while texts.len() < 3 {
        texts.push(within(messages.next()).await.unwrap().text().to_owned());
    }
    assert_eq!(texts, ["1", "2", "3"]);
    // `recv` too, and the events are there again once the borrow ends.
    c.post(
        "/api/websocket/send",
        &json!({"path": "ws/only", "data": 4}),
    )
    .await
    .unwrap();
    assert_eq!(within(messages.recv()).await.unwrap().text(), "4");
    ws.disconnect().await;
    assert!(within(events.recv()).await.is_some());
}

#[tokio::test]
async fn the_async_token_provider_is_awaited_before_every_attempt_and_call() {
    let gw = gateway_at(GatewayConfig::default().token("secret"), "127.0.0.1:0").await;
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    let c = Client::builder()
        .base_url(&base(gw.local_addr()))
        // The first token is refused (the attempt fails with 401, the policy retries); every
        // later one is good. Each answer takes a moment, as a refresh over the network would.
        .token_provider_async(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::task::yield_now().await;
                Some(if n == 0 { "stale" } else { "secret" }.to_owned())
            }
        })
        .build()
        .unwrap();
    let config = fast().reconnect(
        moleculer_ws_client::ReconnectPolicy::fixed()
            .delay(ms(50))
            .stop_on_http_status(Vec::new()),
    );
    let (ws, _events) = c.ws("/ws/secure", config).unwrap();
    within(ws.connect()).await.unwrap();
    assert_eq!(
        asked.load(Ordering::SeqCst),
        2,
        "one refused attempt, one good"
    );
    clients_at(&gw, "/ws/secure", 1).await;
    let clients = c.get("/api/websocket/clients").await.unwrap();
    assert_eq!(clients.status(), StatusCode::OK, "{clients:?}");
    assert_eq!(clients.json()["/ws/secure"], 1);
    assert_eq!(asked.load(Ordering::SeqCst), 3);
    ws.disconnect().await;
}

/// What a `tracing` subscriber wrote, for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_connection_logs_through_tracing_in_its_span() {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // This test's thread only (the current-thread runtime runs the connection task here too).
    let _guard = tracing::subscriber::set_default(subscriber);
    let gw = gateway().await;
    let c = client(&gw);
    let (ws, mut events) = c.ws("/ws/logged", fast()).unwrap();
    within(ws.connect()).await.unwrap();
    let answer = c.get("/api/websocket/clients").await.unwrap();
    assert!(answer.is_success());
    ws.disconnect().await;
    drop(ws);
    // The stream ends once every handle is gone and the task ended: every event was logged.
    while within(events.recv()).await.is_some() {}
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let url = format!("ws://{}/ws/logged", gw.local_addr());
    // The client's own lines (the gateway in this process logs too).
    let line = |what: &str| {
        text.lines()
            .find(|l| l.contains("moleculer_ws_client::") && l.ends_with(what))
            .unwrap_or_else(|| panic!("no {what:?} in\n{text}"))
            .to_owned()
    };
    let connected = line("connected");
    assert!(connected.contains("INFO"), "{connected}");
    assert!(
        connected.contains(&format!("moleculer_ws{{url={url}}}")),
        "{connected}"
    );
    assert!(line("stopped").contains(&url));
    let rest = text
        .lines()
        .find(|l| l.contains("moleculer_ws_client::rest") && l.contains("REST call answered"))
        .unwrap_or_else(|| panic!("no REST line in\n{text}"));
    assert!(
        rest.contains("status=200") && rest.contains("method=GET"),
        "{rest}"
    );
}
