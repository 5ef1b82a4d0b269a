//! `trust_proxy`: the remote address from `Forwarded` / `X-Forwarded-For`, only when set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use moleculer_ws_server::{
    BoxFuture, ConnectRequest, Gateway, GatewayConfig, ProxyHeader, WebSocketFilter,
};
use support::*;

/// Accepts everything and records the remote address it saw.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Option<SocketAddr>>>>);

impl WebSocketFilter for Seen {
    fn on_connect<'a>(&'a self, request: &'a ConnectRequest) -> BoxFuture<'a, bool> {
        self.0.lock().unwrap().push(request.remote_addr());
        Box::pin(async { true })
    }
}

impl Seen {
    fn last(&self) -> Option<SocketAddr> {
        self.0.lock().unwrap().last().copied().flatten()
    }
}

#[tokio::test]
async fn forwarded_headers_are_ignored_unless_trusted() {
    let seen = Seen::default();
    let gw = start(Gateway::builder().filter(seen.clone())).await;
    let _ws = try_connect(&gw, "/ws/a", &[("X-Forwarded-For", "203.0.113.9")])
        .await
        .unwrap();
    assert_eq!(seen.last().map(|a| a.ip()), Some([127, 0, 0, 1].into()));
}

#[tokio::test]
async fn trusted_forwarded_address_reaches_the_filter_and_the_per_address_limit() {
    let seen = Seen::default();
    let config = GatewayConfig::default()
        .trust_proxy(Some(ProxyHeader::XForwardedFor))
        .max_sockets_per_address(1);
    let gw = start(Gateway::builder().config(config).filter(seen.clone())).await;

    let _a = try_connect(
        &gw,
        "/ws/a",
        &[("X-Forwarded-For", "198.51.100.1, 203.0.113.9")],
    )
    .await
    .unwrap();
    assert_eq!(seen.last(), Some("203.0.113.9:0".parse().unwrap()));
    // The proxy writes X-Forwarded-For: a client's own Forwarded header is not believed, the
    // peer's address counts.
    let _b = try_connect(
        &gw,
        "/ws/a",
        &[("Forwarded", r#"for="[2001:db8::5]:4711""#)],
    )
    .await
    .unwrap();
    assert_eq!(seen.last().map(|a| a.ip()), Some([127, 0, 0, 1].into()));
    // Two sockets from 127.0.0.1, but distinct client addresses: both in. A second socket
    // for the same client address is over the per-address limit.
    let again = try_connect(&gw, "/ws/a", &[("X-Forwarded-For", "203.0.113.9")]).await;
    assert_eq!(again.err(), Some(503));
}
