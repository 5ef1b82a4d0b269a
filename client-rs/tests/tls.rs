//! wss:// and https:// against the gateway's own TLS, with a test CA generated now.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use moleculer_ws_client::{Client, Error, Event, SessionError};
use moleculer_ws_server::GatewayConfig;
use serde_json::json;
use support::certs::TestCa;
use support::*;

#[tokio::test]
async fn wss_and_https_with_a_custom_root_ca() {
    let ca = TestCa::new("moleculer-ws test CA");
    let cert = ca.issue();
    let gw = gateway_at(
        GatewayConfig::default().tls_pem_files(&cert.cert_path, &cert.key_path),
        "127.0.0.1:0",
    )
    .await;
    assert!(gw.is_tls());
    assert!(gw.url().starts_with("https://127.0.0.1:"));
    // By name and by IP address: the certificate has both.
    for base in [
        format!("https://localhost:{}/", gw.local_addr().port()),
        gw.url(),
    ] {
        let client = Client::builder()
            .base_url(&base)
            .add_root_certificate_pem(ca.pem.as_bytes())
            .build()
            .unwrap();
        let (ws, mut events) = client.ws("/ws/secure", fast()).unwrap();
        assert!(ws.url().starts_with("wss://"), "{}", ws.url());
        within(ws.connect()).await.unwrap();
        clients_at(&gw, "/ws/secure", 1).await;
        let answer = client
            .post(
                "/api/chat/send",
                &json!({"user": "tls", "text": "over https"}),
            )
            .await
            .unwrap();
        assert!(answer.is_success(), "{answer:?}");
        gw.broker()
            .broadcast(
                "websocket.send",
                json!({"path": "ws/secure", "data": [1, 2]}),
            )
            .await;
        assert_eq!(message(&mut events).await.json(), Some(&json!([1, 2])));
        ws.disconnect().await;
        clients_at(&gw, "/ws/secure", 0).await;
    }
}

#[tokio::test]
async fn an_unknown_ca_fails_and_accepting_invalid_certs_connects() {
    let ca = TestCa::new("untrusted test CA");
    let cert = ca.issue();
    let gw = gateway_at(
        GatewayConfig::default().tls_pem_files(&cert.cert_path, &cert.key_path),
        "127.0.0.1:0",
    )
    .await;

    let strict = Client::builder().base_url(&gw.url()).build().unwrap();
    let (ws, mut events) = strict.ws("/ws/x", fast()).unwrap();
    match expect_event(&mut events, WAIT, "an error", |e| {
        matches!(e, Event::Error(_))
    })
    .await
    {
        Event::Error(SessionError::Transport(m)) => {
            assert!(m.to_lowercase().contains("certificate"), "{m}")
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
    ws.disconnect().await;
    assert!(matches!(
        strict.get("/api/websocket/clients").await,
        Err(Error::Request(_))
    ));

    let dev = Client::builder()
        .base_url(&gw.url())
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let (ws, _events) = dev.ws("/ws/x", fast()).unwrap();
    within(ws.connect()).await.unwrap();
    let answer = dev.get("/api/websocket/clients").await.unwrap();
    assert!(answer.is_success());
    ws.disconnect().await;

    assert!(matches!(
        Client::builder()
            .add_root_certificate_pem(b"no pem here")
            .build(),
        Err(Error::InvalidConfig(_))
    ));
}
