//! The `moleculer-ws-server` program: `--help`, listening, SIGTERM (1012) and SIGINT (1001)
//! shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

mod support;

use futures_util::{SinkExt, StreamExt};
use support::program_base;
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_moleculer-ws-server");

#[test]
fn help_documents_every_option_with_its_env_var() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let options = [
        "--listen",
        "--node-id",
        "--max-message-size",
        "--outbound-queue",
        "--sweep-period",
        "--max-path-length",
        "--max-paths",
        "--token",
        "--trigger",
        "--demo",
        "--metrics-token",
        "--metrics-max-paths",
        "--allow-origin",
        "--allow-path-prefix",
        "--static-dir",
        "--max-body-size",
        "--body-timeout",
        "--max-connections",
        "--shutdown-timeout",
        "--max-sockets",
        "--max-sockets-per-address",
        "--handshake-timeout",
        "--max-header-size",
        "--max-frames-per-second",
        "--max-fragments",
        "--outbound-queue-bytes",
        "--write-timeout",
        "--idle-timeout",
        "--request-timeout",
        "--cors-origin",
        "--trust-proxy",
        "--transporter",
        "--namespace",
        "--protocol-version",
        "--cluster-heartbeat-interval",
        "--cluster-request-timeout",
        "--cluster-max-packet-size",
        "--cluster-max-nodes",
        "--cluster-max-concurrent-requests",
        "--shared-history",
        "--ws-read-buffer",
        "--ws-write-buffer",
        "--compression",
        "--compression-threshold",
        "--event-streams",
        "--event-stream-keep-alive",
        "--recovery-history",
        "--recovery-max-age",
        "--recovery-history-bytes",
        "--recovery-replay-rate",
        "--tls-cert",
        "--tls-key",
    ];
    for opt in options {
        assert!(help.contains(opt), "--help lacks {opt}:\n{help}");
    }
    // The fault-injection flag exists only in builds with the `test-hooks` feature.
    let hooks = cfg!(feature = "test-hooks");
    assert_eq!(help.contains("--test-hooks"), hooks, "{help}");
    assert_eq!(
        help.matches("[env: MOLECULER_WS_").count(),
        options.len() + usize::from(hooks),
        "{help}"
    );
}

/// The program started with its defaults: no REST route, no static files, no demo, an open
/// `/metrics`; `--token` closes `/metrics`; `--trigger` without a token is logged as exposed.
#[tokio::test]
async fn program_defaults_expose_no_route_and_an_open_trigger_is_warned_about() {
    let http = reqwest::Client::new();
    let (mut child, base) = program(&[]);
    for (method, path) in [
        ("POST", "/api/websocket/send"),
        ("GET", "/api/websocket/clients"),
        ("POST", "/api/chat/send"),
        ("POST", "/api/test/heartbeat-replies"),
        ("GET", "/"),
        ("GET", "/index.html"),
        ("GET", "/websocket.js"),
    ] {
        let resp = http
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(r#"{"path":"ws/x","data":1,"text":"hi","on":false}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{method} {path}");
    }
    assert_eq!(
        http.get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let log = stop(child);
    assert!(!log.contains("no token"), "{log}");

    (child, _) = program(&["--trigger"]);
    let log = stop(child);
    assert!(
        log.contains("WARN")
            && log.contains("no token")
            && log.contains("POST /api/websocket/send"),
        "{log}"
    );

    let (child, base) = program(&["--trigger", "--token", "s3cret"]);
    let metrics = format!("{base}/metrics");
    assert_eq!(http.get(&metrics).send().await.unwrap().status(), 401);
    let resp = http
        .get(&metrics)
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = http
        .post(format!("{base}/api/websocket/send"))
        .json(&serde_json::json!({"path": "ws/x", "data": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let log = stop(child);
    assert!(!log.contains("no token"), "{log}");
}

/// Starts the program with `args` on a free port; returns it and its base URL.
fn program(args: &[&str]) -> (std::process::Child, String) {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = program_base(&mut child);
    (child, base)
}

/// Stops the program with SIGINT; returns its log (stderr).
fn stop(child: std::process::Child) -> String {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
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
async fn program_serves_and_closes_sockets_with_1012_on_sigterm() {
    serve_then_signal("-TERM", 1012).await;
}

#[tokio::test]
async fn program_closes_sockets_with_1001_on_sigint() {
    serve_then_signal("-INT", 1001).await;
}

async fn serve_then_signal(signal: &str, code: u16) {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--trigger"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let base = program_base(&mut child);
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
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    match tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
    {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), code),
        other => panic!("expected close {code}, got {other:?}"),
    }
    let _ = ws.next().await;
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}");
}

#[tokio::test]
async fn accept_loop_survives_fd_exhaustion_and_a_control_socket_keeps_working() {
    let script = format!("ulimit -n 64 && exec {BIN} --listen 127.0.0.1:0 --trigger");
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = program_base(&mut child)
        .trim_start_matches("http://")
        .to_owned();
    let (mut control, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/control"))
        .await
        .unwrap();
    // The log, line by line, to wait on.
    let (log_tx, log_rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = log_tx.send(line);
        }
    });
    // More idle connections than the process has descriptors: accept runs out of them.
    let mut hogs = Vec::new();
    for _ in 0..100 {
        hogs.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let backed_off = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        while let Ok(line) = log_rx.recv_timeout(Duration::from_secs(10)) {
            if line.contains("out of resources, backing off") {
                return (true, log_rx);
            }
            seen.push(line);
        }
        panic!("EMFILE path not taken:\n{}", seen.join("\n"));
    });
    let (_, log_rx) = backed_off.await.unwrap();
    for _ in 0..3 {
        control.send(Message::text("!")).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), control.next()).await;
        assert_eq!(answer.unwrap().unwrap().unwrap(), Message::text("!"));
    }
    drop(hogs);
    // Descriptors come back: new connections are served again.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let ok = reqwest::get(format!("http://{addr}/api/websocket/clients")).await;
        if ok.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the gateway never recovered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    drop(log_rx);
    reader.join().unwrap();
}
