//! `blaster`: a WebSocket server that sends a burst of messages as fast as the socket takes
//! them, for the client receive-path benchmarks (`client-recv`, `js/bench/rate.mjs`).
//!
//! A socket opened at `/blast/<count>/<bytes>` receives `count` text frames, each a compact
//! JSON object of about `bytes` bytes: `{"i":<n>,"pad":"xxx…"}` with `i` counting from 0. The
//! frames are written in batches (`feed` + one `flush`) so the server side is never the
//! bottleneck. `!` is answered with `!` (so heartbeating clients stay healthy) and the socket
//! stays open until the client closes it. Prints `blaster on ws://<addr>` on its first line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Burst WebSocket server for client benchmarks.
#[derive(Debug, Parser)]
struct Args {
    /// Listen address (port 0: any free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
}

/// `count` and `bytes` of a `/blast/<count>/<bytes>` path.
fn parse_path(path: &str) -> Option<(u64, usize)> {
    let mut parts = path.trim_start_matches('/').split('/');
    if parts.next()? != "blast" {
        return None;
    }
    let count = parts.next()?.parse().ok()?;
    let bytes = parts.next()?.parse().ok()?;
    Some((count, bytes))
}

/// Frame number `i`, padded to about `bytes` bytes.
pub fn frame(i: u64, pad: &str) -> String {
    format!("{{\"i\":{i},\"pad\":\"{pad}\"}}")
}

async fn socket(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut path = String::new();
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| {
        path = req.uri().path().to_owned();
        Ok(resp)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let (mut tx, mut rx) = ws.split();
    let Some((count, bytes)) = parse_path(&path) else {
        let _ = tx.send(Message::Close(None)).await;
        return;
    };
    let pad = "x".repeat(bytes.saturating_sub(frame(count, "").len()));
    // Answer `!` while the burst is being written: reads on their own task.
    let (pong_tx, mut pong_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    tokio::spawn(async move {
        while let Some(Ok(m)) = rx.next().await {
            match m {
                Message::Text(t) if t.as_str() == "!" && pong_tx.send(()).is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
    });
    let mut i = 0;
    while i < count {
        let end = (i + 64).min(count);
        for n in i..end {
            if tx
                .feed(Message::Text(Utf8Bytes::from(frame(n, &pad))))
                .await
                .is_err()
            {
                return;
            }
        }
        i = end;
        while pong_rx.try_recv().is_ok() {
            if tx.feed(Message::text("!")).await.is_err() {
                return;
            }
        }
        if tx.flush().await.is_err() {
            return;
        }
    }
    while pong_rx.recv().await.is_some() {
        if tx.send(Message::text("!")).await.is_err() {
            return;
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let listener = TcpListener::bind(&args.listen).await.expect("--listen");
    println!("blaster on ws://{}", listener.local_addr().expect("addr"));
    loop {
        if let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(socket(stream));
        }
    }
}
