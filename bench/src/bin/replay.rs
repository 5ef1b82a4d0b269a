//! `replay`: many recovering clients replaying at once. See `BENCHMARKS.md` ("Shared history").
//!
//! Opens `--clients` sockets with `?recover=1` (raw WebSocket, no client library: what is
//! measured is the gateway), notes the position each is given, closes them, broadcasts
//! `--messages` messages through the REST trigger, waits until a watcher socket has them all,
//! then reconnects every client at once with its position. Each must get
//! `#recovered:<epoch>:<seq>:<messages>` and exactly the missed messages, in order. Reports the
//! time until every client has its whole replay, per-client percentiles, and failures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// Many recovering clients replaying at once.
#[derive(Debug, Parser)]
struct Args {
    /// Name of the run, in the output.
    #[arg(long, default_value = "ours")]
    label: String,
    /// WebSocket URL of the path (without a query).
    #[arg(long)]
    url: String,
    /// REST trigger: POST {path, data}.
    #[arg(long)]
    trigger: String,
    /// Clients.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Messages each client misses and recovers.
    #[arg(long, default_value_t = 500)]
    messages: u64,
    /// Write the JSON result here (also printed on stdout).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Exit after this many seconds whatever happens.
    #[arg(long, default_value_t = 300.0)]
    deadline_secs: f64,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return t.to_string(),
            Ok(Some(Ok(_))) => {}
            other => panic!("no frame: {other:?}"),
        }
    }
}

/// `(epoch, seq)` of `#reset:<epoch>:<seq>` or `#recovered:<epoch>:<seq>:<n>`.
fn position(frame: &str) -> (String, u64) {
    let rest = frame
        .strip_prefix("#reset:")
        .or_else(|| frame.strip_prefix("#recovered:"))
        .unwrap_or_else(|| panic!("not a status frame: {frame}"));
    let mut it = rest.split(':');
    (
        it.next().unwrap().to_owned(),
        it.next().unwrap().parse().unwrap(),
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let deadline = Duration::from_secs_f64(args.deadline_secs);
    tokio::spawn(async move {
        tokio::time::sleep(deadline).await;
        eprintln!("replay: deadline reached");
        std::process::exit(3);
    });
    let url = format!("{}?recover=1", args.url);
    // The positions, and a watcher that stays.
    let mut positions = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        positions.push(position(&text(&mut ws).await));
        ws.close(None).await.ok();
    }
    let (mut watcher, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    text(&mut watcher).await;
    let http = reqwest::Client::new();
    let path = url::Url::parse(&args.url).unwrap().path().to_owned();
    for n in 1..=args.messages {
        let resp = http
            .post(&args.trigger)
            .json(&json!({"path": path, "data": {"n": n}}))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "trigger: {}", resp.status());
    }
    for _ in 0..args.messages {
        text(&mut watcher).await;
    }
    // Everyone back at once.
    let start = Instant::now();
    let gate = Arc::new(tokio::sync::Barrier::new(args.clients));
    let mut tasks = Vec::with_capacity(args.clients);
    for (epoch, seq) in positions {
        let url = format!("{url}&epoch={epoch}&seq={seq}");
        let gate = gate.clone();
        let want = args.messages;
        tasks.push(tokio::spawn(async move {
            gate.wait().await;
            let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.ok()?;
            let status = text(&mut ws).await;
            let n = status
                .rsplit(':')
                .next()
                .and_then(|n| n.parse::<u64>().ok());
            if !status.starts_with("#recovered:") || n != Some(want) {
                return None;
            }
            for k in 1..=want {
                let frame = text(&mut ws).await;
                let expected = format!("#{epoch}:{}:", seq + k);
                if !frame.starts_with(&expected) {
                    return None;
                }
            }
            let took = start.elapsed();
            ws.close(None).await.ok();
            Some(took)
        }));
    }
    let mut times = Vec::new();
    let mut failed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Some(d) => times.push(d.as_secs_f64() * 1000.0),
            None => failed += 1,
        }
    }
    let all = start.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    let replayed = times.len() as u64 * args.messages;
    let result = json!({
        "label": args.label,
        "clients": args.clients,
        "messages_each": args.messages,
        "recovered": times.len(),
        "failed": failed,
        "all_done_ms": all * 1000.0,
        "per_client_ms": {
            "p50": percentile(&times, 0.5),
            "p99": percentile(&times, 0.99),
            "max": times.last().copied().unwrap_or(0.0),
        },
        "replayed_messages_per_sec": replayed as f64 / all,
    });
    let text = serde_json::to_string_pretty(&result).unwrap();
    println!("{text}");
    if let Some(out) = args.out {
        std::fs::write(out, text + "\n").unwrap();
    }
}
