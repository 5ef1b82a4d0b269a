//! The embedding example, nested under /realtime in a user Router, on the test's runtime.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "../examples/embedded.rs"]
#[allow(dead_code)]
mod embedded;

use std::net::SocketAddr;

use futures_util::StreamExt;
use serde_json::json;
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// The example's app on 127.0.0.1:0; the returned sender stops the server.
async fn serve(
    app: axum::Router,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (addr, stop, server)
}

#[tokio::test]
async fn nested_gateway_receives_the_apps_broadcast_and_closes_gracefully() {
    let gateway = embedded::gateway().unwrap();
    let (addr, stop, server) = serve(embedded::app(&gateway)).await;
    let http = reqwest::Client::new();

    // The application's own route is untouched.
    let home = http.get(format!("http://{addr}/")).send().await.unwrap();
    assert_eq!(home.text().await.unwrap(), "my application");

    // The socket at /realtime/ws/news is registered at /ws/news: the prefix is the mount point.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/realtime/ws/news"))
        .await
        .unwrap();
    eventually("socket registered", || {
        gateway.count_clients().get("/ws/news") == Some(&1)
    })
    .await;

    // The application's handler broadcasts through the broker.
    let posted = http
        .post(format!("http://{addr}/news"))
        .json(&json!({"title": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 202);
    assert_eq!(next_text(&mut ws).await, r#"{"title":"hi"}"#);

    // So does any code holding the broker.
    gateway
        .broker()
        .broadcast("websocket.send", json!({"path": "/ws/news", "data": 7}))
        .await;
    assert_eq!(next_text(&mut ws).await, "7");

    // The gateway's own routes answer under the prefix.
    let metrics = http
        .get(format!("http://{addr}/realtime/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("moleculer_ws_sockets{path=\"/ws/news\"} 1\n"),
        "{metrics}"
    );

    // The path filter sees the path below the mount point.
    let refused = tokio_tungstenite::connect_async(format!("ws://{addr}/realtime/other")).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 403),
        "{refused:?}"
    );

    // Graceful close: the socket hears 1001, a new upgrade is refused with 503.
    // (The client reads while the gateway waits for its close reply.)
    let client = async {
        match next(&mut ws).await {
            Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1001),
            other => panic!("expected a close frame, got {other:?}"),
        }
        assert!(within(ws.next()).await.is_none_or(|r| r.is_err()));
    };
    within(async { tokio::join!(gateway.shutdown(), client) }).await;
    let late = tokio_tungstenite::connect_async(format!("ws://{addr}/realtime/ws/news")).await;
    assert!(
        matches!(&late, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 503),
        "{late:?}"
    );

    stop.send(()).unwrap();
    within(server).await.unwrap();
}

#[tokio::test]
async fn embedding_outside_a_runtime_or_with_tls_files_is_an_error() {
    use moleculer_ws_server::{Gateway, GatewayConfig, ServerError};
    let gateway = Gateway::builder().build().unwrap();
    let result = std::thread::spawn(move || gateway.embed().map(|_| ()))
        .join()
        .unwrap();
    assert!(matches!(result, Err(ServerError::Config(_))), "{result:?}");
    let missing = Gateway::builder()
        .config(GatewayConfig::default().tls_pem_files("/nonexistent/c.pem", "/nonexistent/k.pem"))
        .build();
    assert!(matches!(missing, Err(ServerError::Tls(_))));
}
