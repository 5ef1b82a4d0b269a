//! The proxy from the environment. A test binary of its own with ONE test: the variables it
//! sets are process-wide and would leak into tests running on other threads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use moleculer_ws_client::Client;
use serde_json::json;
use support::proxy::{ProxyOptions, TestProxy};
use support::*;

const VARS: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

fn clear() {
    for v in VARS {
        std::env::remove_var(v);
    }
}

#[tokio::test]
async fn environment_proxy_variables_and_no_proxy() {
    clear();
    let gw = gateway().await;
    let proxy = TestProxy::start(ProxyOptions {
        auth: Some(("env".into(), "pw".into())),
        ..ProxyOptions::default()
    })
    .await;

    // Upper case HTTP_PROXY, credentials in the URL: WebSocket and REST go through it.
    std::env::set_var("HTTP_PROXY", proxy.url_with("env", "pw"));
    let client = Client::builder()
        .base_url(&base(gw.local_addr()))
        .build()
        .unwrap();
    let (ws, mut events) = client.ws("/ws/env", fast()).unwrap();
    within(ws.connect()).await.unwrap();
    assert_eq!(proxy.tunnels(), 1);
    let answer = client
        .post("/api/websocket/send", &json!({"path": "ws/env", "data": 1}))
        .await
        .unwrap();
    assert!(answer.is_success(), "{answer:?}");
    assert_eq!(proxy.forwarded(), 1);
    assert_eq!(message(&mut events).await.text(), "1");
    ws.disconnect().await;

    // Lower-case no_proxy: direct, for both.
    std::env::set_var("no_proxy", "localhost,127.0.0.1");
    let client = Client::builder()
        .base_url(&base(gw.local_addr()))
        .build()
        .unwrap();
    let (ws, _events) = client.ws("/ws/env", fast()).unwrap();
    within(ws.connect()).await.unwrap();
    assert!(client
        .get("/api/websocket/clients")
        .await
        .unwrap()
        .is_success());
    assert_eq!((proxy.tunnels(), proxy.forwarded()), (1, 1));
    ws.disconnect().await;

    // ALL_PROXY alone (lower case), no bypass; the explicit no_proxy() ignores it all.
    clear();
    std::env::set_var("all_proxy", proxy.url_with("env", "pw"));
    let client = Client::builder()
        .base_url(&base(gw.local_addr()))
        .build()
        .unwrap();
    let (ws, _events) = client.ws("/ws/env", fast()).unwrap();
    within(ws.connect()).await.unwrap();
    assert_eq!(proxy.tunnels(), 2);
    ws.disconnect().await;
    let direct = Client::builder()
        .base_url(&base(gw.local_addr()))
        .no_proxy()
        .build()
        .unwrap();
    let (ws, _events) = direct.ws("/ws/env", fast()).unwrap();
    within(ws.connect()).await.unwrap();
    assert_eq!(proxy.tunnels(), 2);
    ws.disconnect().await;
    clear();
}
