//! `naive-server`: the naive tokio-tungstenite baseline of the benchmarks.
//!
//! Same protocol as the gateway (sockets registered per path, `!` answered with `!`, `POST
//! /api/websocket/send {path, data}` sends the compact JSON of `data` to every socket at the
//! path, serialised once), written the way a first version usually is: a `Mutex` around the
//! registry, an unbounded queue per socket, one `send` (write + flush) per message per client,
//! tokio-tungstenite's default buffers, no slow-consumer policy. The WebSocket listener is
//! `--listen`; the trigger is served by axum on `--trigger-listen`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// The naive tokio-tungstenite baseline server.
#[derive(Debug, Parser)]
struct Args {
    /// WebSocket listener (port 0: a free port, printed on the first line).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// HTTP trigger listener (POST /api/websocket/send; port 0: a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    trigger_listen: String,
}

type Registry = Arc<Mutex<HashMap<String, HashMap<u64, mpsc::UnboundedSender<Utf8Bytes>>>>>;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

async fn socket(stream: TcpStream, registry: Registry) {
    let mut path = String::new();
    // The callback's error type is tungstenite's (an HTTP response), large by design.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| {
        path = req.uri().path().to_owned();
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::unbounded_channel();
    registry
        .lock()
        .unwrap()
        .entry(path.clone())
        .or_default()
        .insert(id, tx);
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(t))) if t.as_str().starts_with('!') => {
                    if ws.send(Message::text("!")).await.is_err() { break; }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            Some(text) = rx.recv() => {
                if ws.send(Message::Text(text)).await.is_err() { break; }
            }
        }
    }
    if let Some(sockets) = registry.lock().unwrap().get_mut(&path) {
        sockets.remove(&id);
    }
}

async fn trigger(State(registry): State<Registry>, Json(body): Json<Value>) -> StatusCode {
    let Some(path) = body.get("path").and_then(Value::as_str) else {
        return StatusCode::BAD_REQUEST;
    };
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let text = Utf8Bytes::from(body.get("data").unwrap_or(&Value::Null).to_string());
    if let Some(sockets) = registry.lock().unwrap().get(&path) {
        for tx in sockets.values() {
            let _ = tx.send(text.clone());
        }
    }
    StatusCode::NO_CONTENT
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let registry = Registry::default();
    let app = Router::new()
        .route("/api/websocket/send", post(trigger))
        .with_state(registry.clone());
    let http = TcpListener::bind(&args.trigger_listen)
        .await
        .expect("bind trigger");
    let http_addr = http.local_addr().expect("trigger addr");
    tokio::spawn(async move { axum::serve(http, app).await });
    let listener = TcpListener::bind(&args.listen).await.expect("bind");
    // Port 0 picks a free port: the first stdout line says which (bench/run.sh reads it).
    println!(
        "naive-server on ws://{} trigger http://{}",
        listener.local_addr().expect("addr"),
        http_addr
    );
    loop {
        if let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(socket(stream, registry.clone()));
        }
    }
}
