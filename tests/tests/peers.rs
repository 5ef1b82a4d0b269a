//! Mixed peers: a Python `websockets` client (PyPI) against our gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use moleculer_ws_server::{Gateway, GatewayConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_client_interoperates() {
    let gw = Gateway::builder()
        .config(GatewayConfig::default().trigger(true))
        .build()
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/interop.py");
    let url = format!("http://{}", gw.local_addr());
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python).args([script, "--url", &url]).output()
    })
    .await
    .unwrap()
    .expect("python3 must be installed (with `pip install -r tests/python/requirements.txt`)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'websockets'"),
        "install the Python client: pip install -r tests/python/requirements.txt"
    );
    print!("{stdout}");
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("5 passed, 0 failed"), "{stdout}");
}
