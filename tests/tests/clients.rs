//! The client fault matrix: our Rust client through the fault proxy against our gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use moleculer_ws_conformance::{check_rust_client, report, ClientTarget, FaultProxy};
use moleculer_ws_server::{Gateway, GatewayConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_passes_http_through() {
    let gw = Gateway::builder()
        .config(GatewayConfig::default().trigger(true))
        .build()
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let proxy = FaultProxy::start(gw.local_addr()).await.unwrap();
    let resp = reqwest::get(format!(
        "http://{}/api/websocket/clients",
        proxy.local_addr()
    ))
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_fault_matrix_passes() {
    // Event streams keep alive faster than the clients' heartbeat interval (600 ms).
    let config = GatewayConfig::default()
        .trigger(true)
        .test_hooks(true)
        .event_stream_keep_alive(std::time::Duration::from_millis(200));
    let gw = Gateway::builder()
        .config(config)
        .build()
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let results = check_rust_client(ClientTarget::new(gw.local_addr())).await;
    print!("{}", report::table(&results));
    println!("{}", report::summary(&results));
    assert!(!report::any_failed(&results), "{}", report::table(&results));
    assert_eq!(results.len(), 9);
}
