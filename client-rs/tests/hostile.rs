//! Hostile or broken servers: the client ends each case in a clear event and backs off; it
//! never panics or spins. Each server is a raw TCP listener on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moleculer_ws_client::{Client, Event, Events, ReconnectPolicy, SessionError, WebSocketConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads an HTTP request head.
async fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await.unwrap_or(0) == 0 {
            break;
        }
        head.push(b[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// The 101 answer for a request head.
fn accept(head: &str) -> String {
    let key = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("Sec-WebSocket-Key: ")
                .or_else(|| l.strip_prefix("sec-websocket-key: "))
        })
        .unwrap()
        .trim();
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )
}

/// A server that handles every connection with `reply` and records when each came.
async fn server<F, Fut>(reply: F) -> (String, Arc<Mutex<Vec<Instant>>>)
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws/hostile", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            log.lock().unwrap().push(Instant::now());
            tokio::spawn(reply(s));
        }
    });
    (url, seen)
}

fn config(delay_ms: u64) -> WebSocketConfig {
    WebSocketConfig::default()
        .heartbeat_interval(Duration::ZERO)
        .heartbeat_timeout(Duration::ZERO)
        .connect_timeout(Duration::from_secs(2))
        .reconnect(ReconnectPolicy::fixed().delay(Duration::from_millis(delay_ms)))
}

async fn until(events: &mut Events, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap_or_else(|_| panic!("no {what} within 10 s"))
            .unwrap_or_else(|| panic!("events ended before {what}"));
        if pred(&e) {
            return e;
        }
    }
}

#[tokio::test]
async fn retry_after_on_503_is_honoured() {
    let (url, seen) = server(|mut s| async move {
        let _ = read_head(&mut s).await;
        let _ = s
            .write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n",
            )
            .await;
    })
    .await;
    let client = Client::new().unwrap();
    let (ws, mut events) = client.ws(&url, config(50)).unwrap();
    let e = until(&mut events, "an error", |e| matches!(e, Event::Error(_))).await;
    assert!(
        matches!(e, Event::Error(SessionError::UpgradeStatus { status: 503 })),
        "{e:?}"
    );
    let r = until(&mut events, "reconnecting", |e| {
        matches!(e, Event::Reconnecting { .. })
    })
    .await;
    assert!(
        matches!(r, Event::Reconnecting { delay, .. } if delay >= Duration::from_secs(1)),
        "{r:?}"
    );
    until(&mut events, "the second attempt's error", |e| {
        matches!(e, Event::Error(_))
    })
    .await;
    let times = seen.lock().unwrap().clone();
    assert!(times.len() >= 2);
    assert!(
        times[1] - times[0] >= Duration::from_millis(950),
        "{:?}",
        times[1] - times[0]
    );
    ws.disconnect().await;
}

#[tokio::test]
async fn a_500_without_retry_after_retries_after_the_policy_delay() {
    let (url, seen) = server(|mut s| async move {
        let _ = read_head(&mut s).await;
        let _ = s
            .write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
            .await;
    })
    .await;
    let (ws, mut events) = Client::new().unwrap().ws(&url, config(200)).unwrap();
    for _ in 0..3 {
        until(&mut events, "an error", |e| {
            matches!(e, Event::Error(SessionError::UpgradeStatus { status: 500 }))
        })
        .await;
    }
    ws.disconnect().await;
    let times = seen.lock().unwrap().clone();
    for w in times.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(190),
            "{:?}",
            w[1] - w[0]
        );
    }
}

#[tokio::test]
async fn a_server_that_accepts_and_closes_at_once_is_not_hammered() {
    // Upgrade, then close at once, forever.
    let (url, seen) = server(|mut s| async move {
        let head = read_head(&mut s).await;
        let _ = s.write_all(accept(&head).as_bytes()).await;
        let _ = s.write_all(&[0x88, 0x02, 0x03, 0xe8]).await; // close 1000
        let mut sink = [0u8; 64];
        let _ = tokio::time::timeout(Duration::from_millis(200), s.read(&mut sink)).await;
    })
    .await;
    let (ws, mut events) = Client::new().unwrap().ws(&url, config(100)).unwrap();
    let started = Instant::now();
    for _ in 0..5 {
        until(&mut events, "a close", |e| {
            matches!(
                e,
                Event::Closed {
                    will_reconnect: true,
                    ..
                }
            )
        })
        .await;
    }
    ws.disconnect().await;
    let elapsed = started.elapsed();
    let attempts = seen.lock().unwrap().len();
    // 5 closes need at least 4 delays of 100 ms: no spinning.
    assert!(
        elapsed >= Duration::from_millis(400),
        "{attempts} attempts in {elapsed:?}"
    );
    assert!(attempts <= 6, "{attempts} attempts in {elapsed:?}");
}

#[tokio::test]
async fn malformed_frames_end_in_an_error_and_a_reconnect_not_a_panic() {
    let bad_frames: [&[u8]; 3] = [
        &[0x81, 0x03, 0xff, 0xfe, 0xfd], // text frame with invalid UTF-8
        &[0x8f, 0x00],                   // reserved opcode 0xF
        &[0x81, 0x85, 1, 2, 3, 4, 0, 0, 0, 0, 0], // a masked frame from the server
    ];
    for frame in bad_frames {
        let (url, _) = server(move |mut s| async move {
            let head = read_head(&mut s).await;
            let _ = s.write_all(accept(&head).as_bytes()).await;
            let _ = s.write_all(frame).await;
            let mut sink = [0u8; 64];
            let _ = tokio::time::timeout(Duration::from_secs(1), s.read(&mut sink)).await;
        })
        .await;
        let (ws, mut events) = Client::new().unwrap().ws(&url, config(100)).unwrap();
        until(&mut events, "the open", |e| matches!(e, Event::Open)).await;
        let e = until(&mut events, "an error or close", |e| {
            matches!(e, Event::Error(_) | Event::Closed { .. })
        })
        .await;
        assert!(
            !matches!(e, Event::Error(SessionError::HeartbeatLost)),
            "{e:?}"
        );
        until(&mut events, "a reconnect", |e| {
            matches!(e, Event::Reconnecting { .. })
        })
        .await;
        ws.disconnect().await;
    }
}
