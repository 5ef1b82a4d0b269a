//! The client behind an HTTP or SOCKS5 proxy: `CONNECT` tunnels for the WebSocket, the same
//! proxy for REST, Basic auth, SOCKS5 user and password, the bypass list, and clear errors. Explicit configuration only: the
//! environment variables are tested in `proxy_env.rs`, a binary of their own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use moleculer_ws_client::{Client, ConnectionState, Error, Event, SessionError, WebSocketConfig};
use moleculer_ws_server::GatewayConfig;
use serde_json::json;
use support::certs::TestCa;
use support::proxy::{ProxyOptions, TestProxy};
use support::socks::SocksProxy;
use support::*;

/// The message of the next error event, which must be a proxy error without a status (one
/// the session retries).
async fn retried_proxy_error(events: &mut moleculer_ws_client::Events) -> String {
    let e = expect_event(events, WAIT, "a proxy error", |e| {
        matches!(e, Event::Error(_))
    })
    .await;
    match e {
        Event::Error(SessionError::Proxy {
            status: None,
            message,
        }) => message,
        other => panic!("expected a proxy error without a status, got {other:?}"),
    }
}

fn with_auth() -> ProxyOptions {
    ProxyOptions {
        auth: Some(("ann".into(), "s3cr:et".into())),
        ..ProxyOptions::default()
    }
}

#[tokio::test]
async fn websocket_and_rest_through_an_authenticating_proxy_survive_a_gateway_restart() {
    let gw = gateway().await;
    let addr = gw.local_addr();
    let proxy = TestProxy::start(with_auth()).await;
    let client = Client::builder()
        .base_url(&base(addr))
        // `:` in the password is percent-encoded in the URL.
        .proxy(&proxy.url_with("ann", "s3cr%3Aet"))
        .build()
        .unwrap();
    let (ws, mut events) = client.ws("/ws/chat", fast()).unwrap();
    within(ws.connect()).await.unwrap();
    assert_eq!(proxy.tunnels(), 1);
    assert_eq!(
        proxy.counters.targets.lock().unwrap().as_slice(),
        [addr.to_string()]
    );
    clients_at(&gw, "/ws/chat", 1).await;
    gw.broker()
        .broadcast(
            "websocket.send",
            json!({"path": "ws/chat", "data": {"n": 1}}),
        )
        .await;
    assert_eq!(message(&mut events).await.json(), Some(&json!({"n": 1})));

    // The gateway restarts on the same port: the client reconnects through a new tunnel.
    gw.shutdown().await;
    expect_event(&mut events, WAIT, "closed", |e| {
        matches!(e, Event::Closed { .. })
    })
    .await;
    let gw = gateway_at(GatewayConfig::default(), &addr.to_string()).await;
    expect_event(&mut events, WAIT, "reopen", is_open).await;
    assert!(proxy.tunnels() >= 2, "tunnels: {}", proxy.tunnels());
    clients_at(&gw, "/ws/chat", 1).await;

    // REST goes through the same proxy (an http:// URL: forwarded, not tunnelled).
    let answer = client
        .post(
            "/api/chat/send",
            &json!({"user": "ann", "text": "via proxy"}),
        )
        .await
        .unwrap();
    assert!(answer.is_success(), "{answer:?}");
    assert_eq!(proxy.forwarded(), 1);
    assert_eq!(
        message(&mut events).await.json().unwrap()["text"],
        "via proxy"
    );
    assert_eq!(proxy.refused(), 0);
    ws.disconnect().await;
}

#[tokio::test]
async fn https_proxy_to_a_tls_gateway_tunnels_tls_in_tls() {
    let ca = TestCa::new("moleculer-ws proxy test CA");
    let gw_cert = ca.issue();
    let proxy_cert = ca.issue();
    let gw = gateway_at(
        GatewayConfig::default().tls_pem_files(&gw_cert.cert_path, &gw_cert.key_path),
        "127.0.0.1:0",
    )
    .await;
    let proxy = TestProxy::start(ProxyOptions {
        tls: Some(proxy_cert.server_config()),
        ..with_auth()
    })
    .await;
    assert!(proxy.url().starts_with("https://"));
    let client = Client::builder()
        .base_url(&format!("https://localhost:{}/", gw.local_addr().port()))
        .proxy(&proxy.url_with("ann", "s3cr%3Aet"))
        .add_root_certificate_pem(ca.pem.as_bytes())
        .build()
        .unwrap();
    let (ws, mut events) = client.ws("/ws/tls", fast()).unwrap();
    assert!(ws.url().starts_with("wss://"));
    within(ws.connect()).await.unwrap();
    clients_at(&gw, "/ws/tls", 1).await;
    let answer = client
        .post(
            "/api/websocket/send",
            &json!({"path": "ws/tls", "data": "secret"}),
        )
        .await
        .unwrap();
    assert!(answer.is_success(), "{answer:?}");
    assert_eq!(message(&mut events).await.text(), r#""secret""#);
    // One tunnel for the WebSocket, one for the https REST call.
    assert_eq!(proxy.tunnels(), 2);
    ws.disconnect().await;
}

#[tokio::test]
async fn bypass_list_goes_direct() {
    let gw = gateway().await;
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let client = Client::builder()
        .base_url(&base(gw.local_addr()))
        .proxy(&proxy.url())
        .proxy_bypass("example.com, 127.0.0.0/8")
        .build()
        .unwrap();
    let (ws, _events) = client.ws("/ws/chat", fast()).unwrap();
    within(ws.connect()).await.unwrap();
    let answer = client
        .get("/api/websocket/clients")
        .query(&[("a", "b")])
        .await
        .unwrap();
    assert!(answer.is_success());
    assert_eq!((proxy.tunnels(), proxy.forwarded()), (0, 0));
    ws.disconnect().await;
    // `*` bypasses every host, IP addresses too (hyper-util's rule covers names only).
    let all = Client::builder()
        .base_url(&base(gw.local_addr()))
        .proxy(&proxy.url())
        .proxy_bypass("*")
        .build()
        .unwrap();
    let (ws, _events) = all.ws("/ws/chat", fast()).unwrap();
    within(ws.connect()).await.unwrap();
    assert!(all
        .get("/api/websocket/clients")
        .await
        .unwrap()
        .is_success());
    assert_eq!((proxy.tunnels(), proxy.forwarded()), (0, 0));
    ws.disconnect().await;
    // `no_proxy()` also goes direct.
    let direct = Client::builder().no_proxy().build().unwrap();
    let (ws, _events) = direct
        .ws(&format!("{}ws/x", base(gw.local_addr())), fast())
        .unwrap();
    within(ws.connect()).await.unwrap();
    assert_eq!(proxy.tunnels(), 0);
    ws.disconnect().await;
}

#[tokio::test]
async fn proxy_407_stops_with_a_clear_error() {
    let gw = gateway().await;
    let proxy = TestProxy::start(with_auth()).await;
    for (url, hint) in [
        (proxy.url(), "requires authentication"),
        (proxy.url_with("ann", "wrong"), "rejected the credentials"),
    ] {
        let client = Client::builder()
            .base_url(&base(gw.local_addr()))
            .proxy(&url)
            .build()
            .unwrap();
        let (ws, _events) = client.ws("/ws/chat", fast()).unwrap();
        let err = within(ws.connect()).await.unwrap_err();
        let Error::Proxy { status, message } = &err else {
            panic!("expected a proxy error, got {err:?}");
        };
        assert_eq!(*status, Some(407));
        assert!(message.contains(hint), "{message}");
        assert!(message.contains(&proxy.addr.to_string()), "{message}");
        assert!(
            !message.contains("wrong"),
            "no credentials in messages: {message}"
        );
        assert!(err.to_string().starts_with("proxy: "), "{err}");
        assert_eq!(ws.state(), ConnectionState::Stopped);
    }
    assert_eq!(proxy.tunnels(), 0);
    assert!(gw.count_clients().is_empty());
}

#[tokio::test]
async fn proxy_403_stops_with_a_clear_error() {
    let gw = gateway().await;
    let proxy = TestProxy::start(ProxyOptions {
        forbid: true,
        ..ProxyOptions::default()
    })
    .await;
    let client = Client::builder()
        .base_url(&base(gw.local_addr()))
        .proxy(&proxy.url())
        .build()
        .unwrap();
    let (ws, _events) = client.ws("/ws/chat", fast()).unwrap();
    match within(ws.connect()).await {
        Err(Error::Proxy {
            status: Some(403),
            message,
        }) => {
            assert!(message.contains("refused a tunnel to"), "{message}");
            assert!(message.contains(&gw.local_addr().to_string()), "{message}");
        }
        other => panic!("expected a 403 proxy error, got {other:?}"),
    }
}

#[tokio::test]
async fn unreachable_proxy_is_reported_and_retried() {
    // A port that was free a moment ago: nothing listens there.
    let port = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let client = Client::builder()
        .proxy(&format!("http://127.0.0.1:{port}"))
        .build()
        .unwrap();
    let (ws, mut events) = client.ws("http://127.0.0.1:9/ws/chat", fast()).unwrap();
    for _ in 0..2 {
        let message = retried_proxy_error(&mut events).await;
        assert!(message.contains("cannot reach the proxy"), "{message}");
    }
    assert_ne!(ws.state(), ConnectionState::Stopped);
    ws.disconnect().await;
}

#[tokio::test]
async fn invalid_proxy_settings_fail_the_build() {
    for url in ["ftp://127.0.0.1:21", "http://[bad", "socks5://"] {
        let err = Client::builder().proxy(url).build().unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{url}: {err:?}");
    }
    let err = Client::builder().proxy_bypass("x").build().unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)));
    let _ = WebSocketConfig::default();
}

#[tokio::test]
async fn websocket_and_rest_through_a_socks5_proxy_with_credentials() {
    let gw = gateway().await;
    let port = gw.local_addr().port();
    let socks = SocksProxy::start(Some(("ann".into(), "s3cr:et".into()))).await;
    // socks5h: the proxy resolves the gateway's name; socks5: the client does.
    for (scheme, target) in [
        ("socks5h", format!("localhost:{port}")),
        ("socks5", format!("127.0.0.1:{port}")),
    ] {
        let before = socks.tunnels();
        let client = Client::builder()
            .base_url(&format!("http://localhost:{port}/"))
            .proxy(&socks.url(scheme, Some(("ann", "s3cr%3Aet"))))
            .build()
            .unwrap();
        let (ws, mut events) = client.ws("/ws/socks", fast()).unwrap();
        within(ws.connect()).await.unwrap();
        assert_eq!(
            socks.tunnels(),
            before + 1,
            "{scheme}: the WebSocket's tunnel"
        );
        let answer = client
            .post(
                "/api/websocket/send",
                &json!({"path": "ws/socks", "data": scheme}),
            )
            .await
            .unwrap();
        assert!(answer.is_success(), "{answer:?}");
        assert_eq!(socks.tunnels(), before + 2, "{scheme}: REST's tunnel");
        assert_eq!(message(&mut events).await.text(), format!("\"{scheme}\""));
        let targets = socks.targets();
        assert_eq!(
            targets[targets.len() - 2..],
            [target.clone(), target],
            "{scheme}"
        );
        ws.disconnect().await;
    }
    assert_eq!(socks.refused(), 0);
}

#[tokio::test]
async fn socks5_wrong_credentials_are_reported_and_retried() {
    let gw = gateway().await;
    let socks = SocksProxy::start(Some(("ann".into(), "right".into()))).await;
    let client = Client::builder()
        .base_url(&base(gw.local_addr()))
        .proxy(&socks.url("socks5h", Some(("ann", "wrong"))))
        .build()
        .unwrap();
    let (ws, mut events) = client.ws("/ws/chat", fast()).unwrap();
    let message = retried_proxy_error(&mut events).await;
    assert!(message.contains("SOCKS"), "{message}");
    assert!(message.contains(&socks.addr.to_string()), "{message}");
    assert!(!message.contains("wrong"), "no credentials: {message}");
    assert!(socks.refused() >= 1);
    assert_eq!(socks.tunnels(), 0);
    assert!(gw.count_clients().is_empty());
    ws.disconnect().await;
}

#[tokio::test]
async fn socks5_resolves_names_on_the_client_for_socks5_and_refuses_long_credentials() {
    let gw = gateway().await;
    let socks = SocksProxy::start(None).await;
    // socks5 with a name: the client resolves it (the proxy sees an address).
    let client = Client::builder()
        .base_url(&format!("http://localhost:{}/", gw.local_addr().port()))
        .proxy(&socks.url("socks5", None))
        .build()
        .unwrap();
    let (ws, _events) = client.ws("/ws/socks", fast()).unwrap();
    within(ws.connect()).await.unwrap();
    let target = socks.targets().pop().unwrap();
    assert!(
        target.parse::<std::net::SocketAddr>().is_ok(),
        "an address, not a name: {target}"
    );
    ws.disconnect().await;
    let long = "u".repeat(256);
    let err = Client::builder()
        .proxy(&format!("socks5://{long}:p@127.0.0.1:1080"))
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig(m) if m.contains("255")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_proxy_that_closes_at_once_is_reported_and_retried() {
    // Accepts and closes every connection without a word.
    let (addr, _closer) = support::proxy::listen(|stream| async move { drop(stream) }).await;
    let client = Client::builder()
        .proxy(&format!("http://{addr}"))
        .build()
        .unwrap();
    let (ws, mut events) = client.ws("http://127.0.0.1:9/ws/chat", fast()).unwrap();
    for _ in 0..2 {
        let message = retried_proxy_error(&mut events).await;
        assert!(message.contains("dropped the CONNECT"), "{message}");
    }
    ws.disconnect().await;
}
