//! End-to-end: the tokio client against the reference gateway on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use moleculer_ws_client::{
    Client, ConnectionState, Error, Event, Message, SessionError, WebSocketConfig, WebSocketHandler,
};
use moleculer_ws_server::GatewayConfig;
use serde_json::json;
use support::*;

#[tokio::test]
async fn receives_a_broadcast() {
    let gw = gateway().await;
    let (ws, mut events) = client(&gw)
        .ws("/ws/chat", WebSocketConfig::default())
        .unwrap();
    ws.connect().await.unwrap();
    assert!(ws.is_connected());
    clients_at(&gw, "/ws/chat", 1).await;

    let bus = gw.broker();
    bus.broadcast(
        "websocket.send",
        json!({"path": "ws/chat", "data": {"a": 1}}),
    )
    .await;
    let m = message(&mut events).await;
    assert_eq!(m.json(), Some(&json!({"a": 1})));

    // Scalars stay raw text, as in the Java client.
    bus.broadcast("websocket.send", json!({"path": "/ws/chat", "data": 123}))
        .await;
    assert_eq!(message(&mut events).await.text(), "123");
    bus.broadcast("websocket.send", json!({"path": "/ws/chat", "data": "hi"}))
        .await;
    let m = message(&mut events).await;
    assert_eq!(
        (m.text(), m.parse::<String>().unwrap()),
        ("\"hi\"", "hi".to_owned())
    );
    assert_eq!(ws.stats().messages_received, 3);
    ws.disconnect().await;
}

#[tokio::test]
async fn forbidden_upgrade_stops_with_the_error() {
    let gw = gateway_at(GatewayConfig::default().token("secret"), "127.0.0.1:0").await;
    let (ws, mut events) = client(&gw).ws("/ws/chat", fast()).unwrap();
    assert_eq!(ws.connect().await, Err(Error::Rejected { status: 403 }));
    let e = expect_event(&mut events, WAIT, "stopped", |e| {
        matches!(e, Event::Stopped(_))
    })
    .await;
    assert_eq!(
        e,
        Event::Stopped(Some(SessionError::Rejected { status: 403 }))
    );
    assert_eq!(ws.state(), ConnectionState::Stopped);
    assert_eq!(
        ws.wait_for_connection(ms(100)).await,
        Err(Error::Rejected { status: 403 })
    );
    // No retry follows.
    let later = events_within(&mut events, ms(500)).await;
    assert!(later.is_empty(), "{later:?}");

    // The same gateway accepts the token as a query parameter.
    let c = Client::builder()
        .base_url(&base(gw.local_addr()))
        .token("secret")
        .build()
        .unwrap();
    let cfg = fast().token_query_param(Some("token".into()));
    let (ws, _events) = c.ws("/ws/chat", cfg).unwrap();
    ws.connect().await.unwrap();
    ws.disconnect().await;
}

#[tokio::test]
async fn heartbeat_round_trips() {
    let gw = gateway().await;
    let (ws, mut events) = client(&gw).ws("/ws/hb", hb()).unwrap();
    ws.connect().await.unwrap();
    for _ in 0..2 {
        let e = expect_event(&mut events, WAIT, "a round trip", |e| {
            matches!(e, Event::HeartbeatRoundTrip { .. })
        })
        .await;
        let Event::HeartbeatRoundTrip { rtt } = e else {
            unreachable!()
        };
        assert!(rtt < ms(300), "{rtt:?}");
    }
    assert!(ws.stats().last_rtt.is_some());
    assert_eq!(ws.state(), ConnectionState::Open);
    ws.disconnect().await;
}

#[tokio::test]
async fn lost_heartbeat_is_detected_in_time_and_reconnects() {
    let gw = gateway().await;
    let (ws, mut events) = client(&gw).ws("/ws/hb", hb()).unwrap();
    ws.connect().await.unwrap();
    expect_event(&mut events, WAIT, "a round trip", |e| {
        matches!(e, Event::HeartbeatRoundTrip { .. })
    })
    .await;
    gw.set_heartbeat_replies(false);
    let silenced = tokio::time::Instant::now();
    expect_event(&mut events, WAIT, "heartbeat loss", |e| {
        *e == Event::Error(SessionError::HeartbeatLost)
    })
    .await;
    let took = silenced.elapsed();
    // interval + timeout + interval/3, plus one tick of phase and scheduling slack.
    let bound = ms(300 + 100 + 100) + ms(100) + ms(250);
    assert!(took <= bound, "loss detected after {took:?} > {bound:?}");
    let e = expect_event(&mut events, WAIT, "closed", |e| {
        matches!(e, Event::Closed { .. })
    })
    .await;
    assert!(
        matches!(
            e,
            Event::Closed {
                will_reconnect: true,
                ..
            }
        ),
        "{e:?}"
    );
    expect_event(&mut events, WAIT, "reconnecting", |e| {
        matches!(e, Event::Reconnecting { .. })
    })
    .await;
    gw.set_heartbeat_replies(true);
    expect_event(&mut events, WAIT, "reopen", is_open).await;
    expect_event(&mut events, WAIT, "a round trip again", |e| {
        matches!(e, Event::HeartbeatRoundTrip { .. })
    })
    .await;
    assert_eq!(ws.stats().reconnects, 1);
    ws.disconnect().await;
}

#[tokio::test]
async fn reconnects_after_a_server_restart_on_the_same_port() {
    let gw = gateway().await;
    let addr = gw.local_addr();
    let (ws, mut events) = client(&gw).ws("/ws/chat", fast()).unwrap();
    ws.connect().await.unwrap();
    clients_at(&gw, "/ws/chat", 1).await;

    gw.shutdown().await;
    let e = expect_event(&mut events, WAIT, "closed", |e| {
        matches!(e, Event::Closed { .. })
    })
    .await;
    assert_eq!(
        e,
        Event::Closed {
            code: Some(1001),
            reason: "server shutting down".into(),
            will_reconnect: true
        }
    );
    // While the port is closed, attempts fail and are retried.
    expect_event(&mut events, WAIT, "a failed attempt", |e| {
        matches!(e, Event::Error(_))
    })
    .await;

    let gw = gateway_at(GatewayConfig::default(), &addr.to_string()).await;
    expect_event(&mut events, WAIT, "reopen", is_open).await;
    clients_at(&gw, "/ws/chat", 1).await;
    gw.broker()
        .broadcast(
            "websocket.send",
            json!({"path": "ws/chat", "data": {"again": true}}),
        )
        .await;
    assert_eq!(
        message(&mut events).await.json(),
        Some(&json!({"again": true}))
    );
    let stats = ws.stats();
    assert_eq!(stats.reconnects, 1);
    assert!(stats.failed_attempts >= 1);
    assert!(stats.downtime > Duration::ZERO);
    ws.disconnect().await;
}

#[tokio::test]
async fn disconnect_stops_every_attempt() {
    let gw = gateway().await;
    let (ws, mut events) = client(&gw).ws("/ws/chat", fast()).unwrap();
    ws.connect().await.unwrap();
    clients_at(&gw, "/ws/chat", 1).await;
    ws.disconnect().await;
    assert_eq!(ws.state(), ConnectionState::Stopped);
    let e = expect_event(&mut events, WAIT, "stopped", |e| {
        matches!(e, Event::Stopped(_))
    })
    .await;
    assert_eq!(e, Event::Stopped(None));
    clients_at(&gw, "/ws/chat", 0).await;
    // Several reconnect delays and heartbeat intervals pass: nothing happens.
    let later = events_within(&mut events, ms(800)).await;
    assert!(later.is_empty(), "{later:?}");
    assert!(gw.count_clients().is_empty(), "{:?}", gw.count_clients());
    assert_eq!(
        ws.wait_for_connection(ms(50)).await,
        Err(Error::Disconnected)
    );
    // The task has ended: once the handle is gone, the stream ends at once.
    drop(ws);
    let end = tokio::time::timeout(WAIT, events.recv()).await.unwrap();
    assert_eq!(end, None);
}

#[tokio::test]
async fn connect_again_after_disconnect() {
    let gw = gateway().await;
    let (ws, mut events) = client(&gw).ws("/ws/chat", fast()).unwrap();
    ws.connect().await.unwrap();
    ws.disconnect().await;
    ws.connect().await.unwrap();
    clients_at(&gw, "/ws/chat", 1).await;
    gw.broker()
        .broadcast("websocket.send", json!({"path": "ws/chat", "data": [1]}))
        .await;
    assert_eq!(message(&mut events).await.json(), Some(&json!([1])));
    ws.disconnect().await;
}

#[tokio::test]
async fn a_reader_that_lags_holds_the_connection_back_and_loses_nothing() {
    let gw = gateway().await;
    let mut config = fast();
    config.event_buffer = 8;
    let (ws, mut events) = client(&gw).ws("/ws/lag", config).unwrap();
    ws.connect().await.unwrap();
    clients_at(&gw, "/ws/lag", 1).await;
    for i in 0..50 {
        gw.broker()
            .broadcast("websocket.send", json!({"path": "ws/lag", "data": [i]}))
            .await;
    }
    // Nothing is read: the connection stops taking frames once 8 events wait. (This wait
    // checks that nothing more happens; it does not synchronise anything.)
    tokio::time::sleep(ms(300)).await;
    let taken = ws.stats().messages_received;
    assert!(taken <= 16, "{taken} messages taken with 8 events of room");
    for i in 0..50 {
        assert_eq!(message(&mut events).await.json(), Some(&json!([i])));
    }
    assert_eq!(ws.stats().messages_received, 50);
    ws.disconnect().await;
}

#[tokio::test]
async fn wait_for_connection_without_auto_connect() {
    let gw = gateway().await;
    let (ws, _events) = client(&gw)
        .ws("/ws/chat", fast().auto_connect(false))
        .unwrap();
    assert_eq!(ws.state(), ConnectionState::Idle);
    assert_eq!(ws.wait_for_connection(ms(200)).await, Err(Error::Timeout));
    assert!(gw.count_clients().is_empty());
    let waiter = ws.clone();
    let waiting = tokio::spawn(async move { waiter.wait_for_connection(WAIT).await });
    ws.connect().await.unwrap();
    assert_eq!(waiting.await.unwrap(), Ok(()));
    ws.disconnect().await;
}

#[derive(Default)]
struct Recorder {
    log: Mutex<Vec<String>>,
    tx: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl WebSocketHandler for Recorder {
    fn on_message(&self, message: Message) {
        self.log
            .lock()
            .unwrap()
            .push(format!("message {}", message.text()));
        if let Some(tx) = self.tx.lock().unwrap().take() {
            let _ = tx.send(());
        }
    }
    fn on_open(&self) {
        self.log.lock().unwrap().push("open".into());
    }
    fn on_close(&self, code: Option<u16>, _reason: &str) {
        self.log.lock().unwrap().push(format!("close {code:?}"));
    }
}

#[tokio::test]
async fn handler_receives_callbacks() {
    let gw = gateway().await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let recorder = Arc::new(Recorder::default());
    *recorder.tx.lock().unwrap() = Some(tx);
    struct Shared(Arc<Recorder>);
    impl WebSocketHandler for Shared {
        fn on_message(&self, m: Message) {
            self.0.on_message(m)
        }
        fn on_open(&self) {
            self.0.on_open()
        }
        fn on_close(&self, code: Option<u16>, reason: &str) {
            self.0.on_close(code, reason)
        }
    }
    let ws = client(&gw)
        .ws_with_handler("/ws/h", fast(), Shared(Arc::clone(&recorder)))
        .unwrap();
    ws.connect().await.unwrap();
    clients_at(&gw, "/ws/h", 1).await;
    gw.broker()
        .broadcast("websocket.send", json!({"path": "ws/h", "data": {"x": 1}}))
        .await;
    tokio::time::timeout(WAIT, rx).await.unwrap().unwrap();
    ws.disconnect().await;
    let log = recorder.log.lock().unwrap().clone();
    assert_eq!(log, vec!["open", "message {\"x\":1}", "close Some(1000)"]);
}

#[tokio::test]
async fn invalid_input_is_refused_up_front() {
    let c = Client::new().unwrap();
    assert!(matches!(
        c.ws("ftp://h/x", WebSocketConfig::default()),
        Err(Error::InvalidUrl(_))
    ));
    assert!(matches!(
        c.ws("/relative", WebSocketConfig::default()),
        Err(Error::InvalidUrl(_))
    ));
    let bad = WebSocketConfig::default().heartbeat_timeout(Duration::from_secs(120));
    assert!(matches!(
        c.ws("ws://127.0.0.1:1/x", bad),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        Client::builder().header("bad header", "x").build(),
        Err(Error::InvalidConfig(_))
    ));
}

#[tokio::test]
async fn dropping_every_handle_closes_the_connection() {
    let gw = gateway().await;
    let (ws, mut events) = client(&gw).ws("/ws/chat", fast()).unwrap();
    let clone = ws.clone();
    ws.connect().await.unwrap();
    clients_at(&gw, "/ws/chat", 1).await;
    drop(ws);
    assert!(clone.is_connected(), "a clone keeps the connection");
    drop(clone);
    clients_at(&gw, "/ws/chat", 0).await;
    let e = expect_event(&mut events, WAIT, "stopped", |e| {
        matches!(e, Event::Stopped(_))
    })
    .await;
    assert_eq!(e, Event::Stopped(None));
    let end = tokio::time::timeout(WAIT, events.recv()).await.unwrap();
    assert_eq!(end, None);
}

/// Path, query, `X-App` and `X-Socket` of one upgrade.
type Upgrade = (String, String, Option<String>, Option<String>);

/// Records what the gateway's access filter sees of each upgrade.
struct Seen(Arc<Mutex<Vec<Upgrade>>>);

impl moleculer_ws_server::WebSocketFilter for Seen {
    fn on_connect<'a>(
        &'a self,
        req: &'a moleculer_ws_server::ConnectRequest,
    ) -> moleculer_ws_server::BoxFuture<'a, bool> {
        let row = (
            req.path().to_owned(),
            req.query().to_owned(),
            req.header("x-app").map(str::to_owned),
            req.header("x-socket").map(str::to_owned),
        );
        self.0.lock().unwrap().push(row);
        Box::pin(async { true })
    }
}

#[tokio::test]
async fn headers_and_query_reach_the_upgrade() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let gw = moleculer_ws_server::Gateway::builder()
        .filter(Seen(Arc::clone(&seen)))
        .build()
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let c = Client::builder()
        .base_url(&base(gw.local_addr()))
        .header("X-App", "demo")
        .build()
        .unwrap();
    let cfg = fast().header("X-Socket", "s1").query("key", "a value");
    let (ws, _events) = c.ws("/ws/filtered?x=1", cfg).unwrap();
    ws.connect().await.unwrap();
    assert_eq!(
        ws.url(),
        format!("ws://{}/ws/filtered?x=1&key=a+value", gw.local_addr())
    );
    let rows = seen.lock().unwrap().clone();
    assert_eq!(
        rows,
        vec![(
            "/ws/filtered".to_owned(),
            "x=1&key=a+value".to_owned(),
            Some("demo".to_owned()),
            Some("s1".to_owned())
        )]
    );
    ws.disconnect().await;
}
