//! The `moleculer-ws-server` program: `--help`, listening, SIGTERM shutdown with 1001.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_moleculer-ws-server");

#[test]
fn help_documents_every_option_with_its_env_var() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for opt in [
        "--listen",
        "--node-id",
        "--max-message-size",
        "--outbound-queue",
        "--sweep-period",
        "--path-idle-timeout",
        "--token",
        "--allow-origin",
        "--allow-path-prefix",
        "--static-dir",
        "--no-static",
        "--no-chat",
        "--max-body-size",
        "--shutdown-timeout",
        "--test-hooks",
        "--transporter",
        "--namespace",
        "--protocol-version",
        "--cluster-heartbeat-interval",
        "--cluster-request-timeout",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}:\n{help}");
    }
    assert_eq!(help.matches("[env: MOLECULER_WS_").count(), 20, "{help}");
}

#[test]
fn bad_option_value_is_a_clear_error() {
    let out = Command::new(BIN)
        .args(["--sweep-period", "3h"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown unit"));
}

#[tokio::test]
async fn program_serves_and_closes_sockets_with_1001_on_sigterm() {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--no-static"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("moleculer-ws gateway on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    let ws_url = format!("{}/ws/prog", base.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/websocket/send"))
        .json(&serde_json::json!({"path": "/ws/prog", "data": "via program"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap();
    assert_eq!(first.unwrap().unwrap(), Message::text("\"via program\""));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    match tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
    {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected close 1001, got {other:?}"),
    }
    let _ = ws.next().await;
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}");
}
