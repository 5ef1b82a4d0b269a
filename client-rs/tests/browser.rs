//! The Rust API on wasm32, in headless Chromium, against a real gateway: the same
//! `Client::ws` → `(WebSocket, Events)`, handler and `Stream` as on native targets, over the
//! browser driver. Run by `scripts/test-browser-rust.sh`, which starts the gateway (with
//! `--trigger --demo --test-hooks --cors-origin '*'`) and passes its address at build time in
//! `MOLECULER_WS_TEST_GATEWAY`.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_channel::mpsc;
use std::future::Future;

use futures_core::Stream;
use moleculer_ws_client::{
    Client, ConnectionState, Error, Event, Events, Message, Transport, WebSocketConfig,
    WebSocketHandler,
};
use serde_json::json;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// `http://127.0.0.1:<port>/`, given by the script at build time.
const GATEWAY: Option<&str> = option_env!("MOLECULER_WS_TEST_GATEWAY");

fn client() -> Client {
    let base = GATEWAY.expect("no gateway: run these tests with scripts/test-browser-rust.sh");
    Client::builder().base_url(base).build().unwrap()
}

/// The next event `pick` accepts (the test runner's own timeout bounds the wait).
async fn until(events: &mut Events, mut pick: impl FnMut(&Event) -> bool) -> Event {
    loop {
        let event = events.recv().await.expect("the stream ended");
        if pick(&event) {
            return event;
        }
    }
}

/// Posts a chat line; the gateway pushes `{"user", "text"}` to every socket at `ws/chat`.
async fn say(client: &Client, text: &str) {
    let answer = client
        .post("/api/chat/send", &json!({"user": "wasm", "text": text}))
        .await
        .unwrap();
    assert!(answer.is_success(), "{}", answer.status());
}

#[wasm_bindgen_test]
async fn events_stream_gets_what_rest_broadcasts() {
    let client = client();
    let (socket, mut events) = client.ws("/ws/chat", WebSocketConfig::default()).unwrap();
    socket.connect().await.unwrap();
    assert_eq!(socket.state(), ConnectionState::Open);
    assert!(
        socket.url().starts_with("ws://127.0.0.1:"),
        "{}",
        socket.url()
    );
    say(&client, "from the browser").await;
    let Event::Message(m) = until(
        &mut events,
        |e| matches!(e, Event::Message(m) if m.json().unwrap()["text"] == "from the browser"),
    )
    .await
    else {
        unreachable!()
    };
    assert_eq!(m.json().unwrap()["user"], "wasm");
    assert!(socket.stats().messages_received >= 1);
    socket.disconnect().await;
    assert_eq!(
        until(&mut events, |e| matches!(e, Event::Stopped(_))).await,
        Event::Stopped(None)
    );
    assert_eq!(socket.state(), ConnectionState::Stopped);
}

#[wasm_bindgen_test]
async fn an_event_stream_carries_the_same_api() {
    let client = client();
    let config = WebSocketConfig::default()
        .transport(Transport::EventStream)
        .recover(true);
    let (socket, mut events) = client.ws("/ws/chat", config).unwrap();
    socket.connect().await.unwrap();
    assert_eq!(socket.state(), ConnectionState::Open);
    let recovery = until(&mut events, |e| matches!(e, Event::Recovery { .. })).await;
    assert_eq!(
        recovery,
        Event::Recovery {
            recovered: false,
            replayed: 0
        }
    );
    say(&client, "over a stream").await;
    until(
        &mut events,
        |e| matches!(e, Event::Message(m) if m.json().unwrap()["text"] == "over a stream"),
    )
    .await;
    assert!(socket.stats().messages_received >= 1);
    socket.disconnect().await;
    assert_eq!(
        until(&mut events, |e| matches!(e, Event::Stopped(_))).await,
        Event::Stopped(None)
    );
}

#[wasm_bindgen_test]
async fn events_are_a_stream() {
    let client = client();
    let (socket, mut events) = client.ws("/ws/chat", WebSocketConfig::default()).unwrap();
    socket.connect().await.unwrap();
    say(&client, "polled").await;
    // Through `Stream::poll_next`, as a `StreamExt` user would read them.
    // Other tests' lines may pass by on ws/chat: read until this one.
    loop {
        if let Some(Event::Message(m)) = next(&mut events).await {
            if m.json().unwrap()["text"] == "polled" {
                break;
            }
        }
    }
}

/// The next item of a stream.
async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx)).await
}

/// A handler that reports what it sees on a channel.
struct Seen(mpsc::UnboundedSender<String>);

impl WebSocketHandler for Seen {
    fn on_open(&self) {
        let _ = self.0.unbounded_send("open".into());
    }
    fn on_message(&self, message: Message) {
        let _ = self.0.unbounded_send(message.text().to_owned());
    }
}

#[wasm_bindgen_test]
async fn handler_gets_open_and_messages() {
    let client = client();
    let (tx, mut seen) = mpsc::unbounded();
    let socket = client
        .ws_with_handler("/ws/chat", WebSocketConfig::default(), Seen(tx))
        .unwrap();
    socket.connect().await.unwrap();
    say(&client, "to the handler").await;
    assert_eq!(next(&mut seen).await.unwrap(), "open");
    // Other tests' lines may pass by on ws/chat: skip to this one.
    loop {
        let text = next(&mut seen).await.unwrap();
        let line: serde_json::Value = serde_json::from_str(&text).unwrap();
        if line["text"] == "to the handler" {
            assert_eq!(line["user"], "wasm");
            break;
        }
    }
}

#[wasm_bindgen_test]
async fn heartbeat_round_trips_with_short_intervals() {
    let config = WebSocketConfig::default()
        .heartbeat_interval(Duration::from_millis(300))
        .heartbeat_timeout(Duration::from_millis(200));
    let (socket, mut events) = client().ws("/ws/heartbeat", config).unwrap();
    socket.connect().await.unwrap();
    let Event::HeartbeatRoundTrip { rtt } = until(&mut events, |e| {
        matches!(e, Event::HeartbeatRoundTrip { .. })
    })
    .await
    else {
        unreachable!()
    };
    assert!(rtt < Duration::from_secs(60), "{rtt:?}");
    assert!(socket.stats().last_rtt.is_some());
    assert!(socket.is_connected());
}

/// The gateway's test hook: answer `!` or not.
async fn heartbeat_replies(client: &Client, on: bool) {
    let answer = client
        .post("/api/test/heartbeat-replies", &json!({ "on": on }))
        .await
        .unwrap();
    assert!(answer.is_success(), "{}", answer.status());
}

#[wasm_bindgen_test]
async fn a_lost_heartbeat_is_detected_and_the_socket_reconnects() {
    let client = client();
    let config = WebSocketConfig::default()
        .heartbeat_interval(Duration::from_millis(300))
        .heartbeat_timeout(Duration::from_millis(200))
        .reconnect_delay(Duration::from_millis(100));
    let (socket, mut events) = client.ws("/ws/lost", config).unwrap();
    socket.connect().await.unwrap();
    heartbeat_replies(&client, false).await;
    let lost = until(&mut events, |e| matches!(e, Event::Error(_))).await;
    heartbeat_replies(&client, true).await;
    assert_eq!(
        lost,
        Event::Error(moleculer_ws_client::SessionError::HeartbeatLost)
    );
    until(&mut events, |e| {
        matches!(e, Event::Reconnecting { attempt: 1, .. })
    })
    .await;
    until(&mut events, |e| *e == Event::Open).await;
    assert_eq!(socket.stats().reconnects, 1);
}

#[wasm_bindgen_test]
async fn wait_for_connection_times_out_without_connect() {
    let config = WebSocketConfig::default().auto_connect(false);
    let (socket, _events) = client().ws("/ws/idle", config).unwrap();
    assert_eq!(socket.state(), ConnectionState::Idle);
    assert_eq!(
        socket.wait_for_connection(Duration::from_millis(50)).await,
        Err(Error::Timeout)
    );
}

/// A gateway started with `--token s3cret`, given by the script at build time.
const TOKEN_GATEWAY: Option<&str> = option_env!("MOLECULER_WS_TEST_TOKEN_GATEWAY");

/// A URL whose every attempt fails at once: the token gateway refuses a socket without the
/// token (a browser sees the refusal as a close before the open).
fn nobody() -> String {
    let base =
        TOKEN_GATEWAY.expect("no gateway: run these tests with scripts/test-browser-rust.sh");
    format!("{base}ws/nobody")
}

#[wasm_bindgen_test]
async fn connect_is_answered_by_the_stop_when_attempts_run_out() {
    let policy = moleculer_ws_client::ReconnectPolicy::default()
        .delay(Duration::from_millis(20))
        .max_attempts(Some(2));
    let config = WebSocketConfig::default().reconnect(policy);
    let (socket, mut events) = client().ws(&nobody(), config).unwrap();
    assert_eq!(socket.connect().await, Err(Error::GaveUp { attempts: 2 }));
    assert_eq!(socket.state(), ConnectionState::Stopped);
    // Also for a wait that starts after the stop.
    assert_eq!(
        socket.wait_for_connection(Duration::from_secs(5)).await,
        Err(Error::GaveUp { attempts: 2 })
    );
    let stop = until(&mut events, |e| matches!(e, Event::Stopped(_))).await;
    assert_eq!(
        stop,
        Event::Stopped(Some(moleculer_ws_client::SessionError::GaveUp {
            attempts: 2
        }))
    );
}

#[wasm_bindgen_test]
async fn disconnect_answers_a_pending_connect_and_dropping_the_socket_ends_events() {
    let (socket, mut events) = client().ws(&nobody(), WebSocketConfig::default()).unwrap();
    {
        let mut connecting = std::pin::pin!(socket.connect());
        // Start the connect (it waits for an open that never comes), then disconnect.
        std::future::poll_fn(|cx| {
            assert!(connecting.as_mut().poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        socket.disconnect().await;
        assert_eq!(connecting.await, Err(Error::Disconnected));
    }
    assert_eq!(
        socket.wait_for_connection(Duration::from_secs(5)).await,
        Err(Error::Disconnected)
    );
    drop(socket);
    while let Some(event) = events.recv().await {
        assert!(!matches!(event, Event::Open), "{event:?}");
    }
}

#[wasm_bindgen_test]
async fn several_urls_skip_a_dead_gateway_within_the_round() {
    // A 600 s reconnect delay: only the switch to the next URL, which does not wait, connects.
    let policy = moleculer_ws_client::ReconnectPolicy::fixed().delay(Duration::from_secs(600));
    let client = client();
    let live = format!("{}ws/chat", GATEWAY.unwrap_or_default());
    // The first URL is picked at random: four sockets start on both in all likelihood.
    for _ in 0..4 {
        let config = WebSocketConfig::default().reconnect(policy.clone());
        let (socket, _events) = client.ws_any(&[&nobody(), &live], config).unwrap();
        assert_eq!(
            socket.wait_for_connection(Duration::from_secs(10)).await,
            Ok(())
        );
        socket.disconnect().await;
    }
}

/// The token the provider gives at its `n`th call: stale (refused) first, then the good one.
fn nth_token(n: usize) -> Option<String> {
    Some(if n == 0 { "stale" } else { "s3cret" }.to_owned())
}

/// A socket of `client` (on the token gateway) at `path`, retrying every 50 ms, once open.
async fn open_after_a_refusal(client: &Client, path: &str) -> moleculer_ws_client::WebSocket {
    let config = WebSocketConfig::default()
        .reconnect(moleculer_ws_client::ReconnectPolicy::fixed().delay(Duration::from_millis(50)));
    let (socket, _events) = client.ws(path, config).unwrap();
    assert_eq!(
        socket.wait_for_connection(Duration::from_secs(10)).await,
        Ok(())
    );
    socket
}

#[wasm_bindgen_test]
async fn the_token_goes_in_the_query_and_is_asked_at_every_attempt() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let base =
        TOKEN_GATEWAY.expect("no gateway: run these tests with scripts/test-browser-rust.sh");
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    // The first attempt has a stale token (refused), the next ones the refreshed one.
    let client = Client::builder()
        .base_url(base)
        .token_provider(move || nth_token(counter.fetch_add(1, Ordering::SeqCst)))
        .build()
        .unwrap();
    let socket = open_after_a_refusal(&client, "/ws/secure").await;
    assert!(asked.load(Ordering::SeqCst) >= 2);
    assert!(!socket.url().contains("s3cret"), "{}", socket.url());
}

#[wasm_bindgen_test]
async fn the_async_token_provider_is_awaited_at_every_attempt() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let base =
        TOKEN_GATEWAY.expect("no gateway: run these tests with scripts/test-browser-rust.sh");
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    // Each token comes later (as a refresh over the network would); the first is stale.
    let client = Client::builder()
        .base_url(base)
        .token_provider_async(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                // Answered later, by the browser's promise queue.
                let later = js_sys::Promise::resolve(&wasm_bindgen::JsValue::NULL);
                let _ = wasm_bindgen_futures::JsFuture::from(later).await;
                nth_token(n)
            }
        })
        .build()
        .unwrap();
    let socket = open_after_a_refusal(&client, "/ws/secure-async").await;
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    socket.disconnect().await;
}

#[wasm_bindgen_test]
fn headers_are_refused_with_a_clear_error() {
    let config = WebSocketConfig::default().header("X-Api-Key", "k");
    let err = client().ws("/ws/chat", config).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig(m) if m.contains("cannot send headers")),
        "{err}"
    );
}

#[wasm_bindgen_test]
fn a_bad_session_config_is_refused() {
    let config = WebSocketConfig::default()
        .heartbeat_interval(Duration::from_millis(300))
        .heartbeat_timeout(Duration::from_secs(5));
    let err = client().ws("/ws/chat", config).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
}

/// Sockets the gateway counts at `path` (`GET /api/websocket/clients`).
async fn sockets_at(client: &Client, path: &str) -> u64 {
    let answer = client.get("/api/websocket/clients").await.unwrap();
    answer.json()[path].as_u64().unwrap_or(0)
}

/// Polls `check` every 20 ms until it holds (the test runner's own timeout bounds the wait).
async fn eventually<F: Future<Output = bool>>(mut check: impl FnMut() -> F) {
    while !check().await {
        gloo_sleep(20).await;
    }
}

async fn gloo_sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = web_sys_set_timeout(&resolve, ms);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn web_sys_set_timeout(f: &js_sys::Function, ms: i32) -> wasm_bindgen::JsValue;
}

#[wasm_bindgen_test]
async fn shared_sockets_of_one_page_use_one_socket_and_hand_over_when_the_leader_goes() {
    // Two shared connections in one page act as two tabs: one Web Lock, one BroadcastChannel.
    let client = client();
    let path = "/ws/rust-shared";
    let config = || WebSocketConfig::default().shared(true).recover(true);
    let (first, mut first_events) = client.ws(path, config()).unwrap();
    let (second, mut second_events) = client.ws(path, config()).unwrap();
    first.connect().await.unwrap();
    second.connect().await.unwrap();
    assert_eq!(second.state(), ConnectionState::Open);
    assert_eq!(sockets_at(&client, path).await, 1);
    let send = |n: u64| {
        let client = client.clone();
        async move {
            let answer = client
                .post("/api/websocket/send", &json!({"path": path, "data": n}))
                .await
                .unwrap();
            assert!(answer.is_success(), "{}", answer.status());
        }
    };
    for n in 1..=3 {
        send(n).await;
    }
    assert_eq!(texts(&mut first_events, 3).await, ["1", "2", "3"]);
    assert_eq!(texts(&mut second_events, 3).await, ["1", "2", "3"]);
    // The leader (the first to ask for the lock) goes: the other connects, from where it got to.
    drop(first);
    drop(first_events);
    eventually(|| async { second.state() == ConnectionState::Open }).await;
    for n in 4..=5 {
        send(n).await;
    }
    assert_eq!(texts(&mut second_events, 2).await, ["4", "5"]);
    eventually(|| async { sockets_at(&client, path).await == 1 }).await;
    assert_eq!(second.stats().messages_received, 5);
}

/// The texts of the next `n` messages.
async fn texts(events: &mut Events, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < n {
        if let Event::Message(m) = until(events, |e| matches!(e, Event::Message(_))).await {
            got.push(m.text().to_owned());
        }
    }
    got
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// `navigator.locks.request(name, callback)`: the test plays a tab that holds the lock.
    #[wasm_bindgen(js_namespace = ["navigator", "locks"], js_name = request)]
    fn lock_request(name: &str, callback: &wasm_bindgen::JsValue) -> js_sys::Promise;
}

#[wasm_bindgen_test]
async fn a_silent_leader_is_replaced() {
    // A "tab" that holds the lock and says nothing (hung or frozen): the shared connection
    // that gets in line behind it takes the lock after 2/3 of its heartbeat interval without
    // a word from a leader, and opens the socket.
    let client = client();
    let path = "/ws/rust-silent";
    let config = WebSocketConfig::default()
        .shared(true)
        .auto_connect(false)
        .heartbeat_interval(Duration::from_millis(600))
        .heartbeat_timeout(Duration::from_millis(300));
    let (socket, _events) = client.ws(path, config).unwrap();
    let name = format!("moleculer-ws-rs {}", socket.url());
    let (held_tx, held_rx) = futures_channel::oneshot::channel::<()>();
    let mut held_tx = Some(held_tx);
    let hold = wasm_bindgen::closure::Closure::<
        dyn FnMut(wasm_bindgen::JsValue) -> wasm_bindgen::JsValue,
    >::new(move |_| {
        if let Some(tx) = held_tx.take() {
            let _ = tx.send(());
        }
        js_sys::Promise::new(&mut |_, _| {}).into()
    });
    // Taken from it later (AbortError): nothing to do.
    let taken = wasm_bindgen::closure::Closure::<dyn FnMut(wasm_bindgen::JsValue)>::new(|_| {});
    let _ = lock_request(&name, hold.as_ref()).catch(&taken);
    held_rx.await.unwrap();
    let waiting = socket.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let _ = waiting.connect().await;
    });
    socket
        .wait_for_connection(Duration::from_secs(10))
        .await
        .unwrap();
    eventually(|| async { sockets_at(&client, path).await == 1 }).await;
    hold.forget();
    taken.forget();
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// `navigator.locks.request(name, options, callback)`.
    #[wasm_bindgen(js_namespace = ["navigator", "locks"], js_name = request)]
    fn lock_request_with(
        name: &str,
        options: &wasm_bindgen::JsValue,
        callback: &wasm_bindgen::JsValue,
    ) -> js_sys::Promise;
}

#[wasm_bindgen_test]
async fn a_leader_whose_lock_is_taken_closes_its_socket_and_leads_again_when_it_is_free() {
    // Another "tab" steals the lock (as a tab does from a silent leader) and keeps it without
    // connecting: the leader sees a lost link and closes its socket; when the thief lets go, the
    // leader, back in line, takes the lock and connects again.
    let client = client();
    let path = "/ws/rust-stolen";
    let (socket, mut events) = client
        .ws(path, WebSocketConfig::default().shared(true))
        .unwrap();
    socket.connect().await.unwrap();
    eventually(|| async { sockets_at(&client, path).await == 1 }).await;
    let release = std::rc::Rc::new(std::cell::RefCell::new(None::<js_sys::Function>));
    let keep = release.clone();
    let thief = wasm_bindgen::closure::Closure::<
        dyn FnMut(wasm_bindgen::JsValue) -> wasm_bindgen::JsValue,
    >::new(move |_| {
        js_sys::Promise::new(&mut |resolve, _| *keep.borrow_mut() = Some(resolve)).into()
    });
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"steal".into(), &true.into()).unwrap();
    let name = format!("moleculer-ws-rs {}", socket.url());
    let _ = lock_request_with(&name, &options, thief.as_ref());
    assert!(matches!(
        until(&mut events, |e| matches!(e, Event::Closed { .. })).await,
        Event::Closed {
            will_reconnect: true,
            ..
        }
    ));
    eventually(|| async { sockets_at(&client, path).await == 0 }).await;
    let resolve = release.borrow_mut().take().unwrap();
    resolve.call0(&wasm_bindgen::JsValue::NULL).unwrap();
    until(&mut events, |e| matches!(e, Event::Open)).await;
    assert_eq!(socket.state(), ConnectionState::Open);
    eventually(|| async { sockets_at(&client, path).await == 1 }).await;
    thief.forget();
}

#[wasm_bindgen_test]
async fn when_the_leader_gives_up_the_other_tabs_stop_too() {
    // A URL where nothing listens, two attempts: the leader's session stops (GaveUp) and the
    // other tab's, which never had a socket of its own, stops with it instead of waiting for
    // an open that never comes.
    let policy = moleculer_ws_client::ReconnectPolicy::default()
        .delay(Duration::from_millis(20))
        .max_attempts(Some(2));
    let config = || {
        WebSocketConfig::default()
            .reconnect(policy.clone())
            .shared(true)
    };
    let url = nobody();
    let (leader, _leader_events) = client().ws(&url, config()).unwrap();
    let (other, mut other_events) = client().ws(&url, config()).unwrap();
    assert_eq!(leader.connect().await, Err(Error::GaveUp { attempts: 2 }));
    assert_eq!(
        until(&mut other_events, |e| matches!(e, Event::Stopped(_))).await,
        Event::Stopped(None)
    );
    assert_eq!(other.state(), ConnectionState::Stopped);
}
