//! Soak test of the gateway (not in CI): `cargo run --release -p moleculer-ws-conformance
//! --example soak -- [--minutes 30] [--sockets 5000]`.
//!
//! Starts the release gateway binary on 127.0.0.1, then for the whole run: healthy sockets on
//! 5 paths that send `!` every 6 s and check every broadcast arrives once and in order;
//! churn (connect + disconnect at 50/s each); broadcasts at 10/s per path through the REST
//! trigger; a slow consumer that never reads and a `!` flooder, both re-created every 10 s.
//! Every 10 s it samples the gateway's RSS, open descriptors and open sockets. At the end it
//! prints a JSON summary (written to `target/soak-summary.json`) and exits 1 if a healthy
//! socket lost or reordered a message or RSS/descriptors grew after warm-up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
struct Args {
    /// How long to run.
    #[arg(long, default_value_t = 30)]
    minutes: u64,
    /// Healthy sockets (spread over 5 paths).
    #[arg(long, default_value_t = 5000)]
    sockets: usize,
    /// The gateway binary (default: target/release/moleculer-ws-server).
    #[arg(long)]
    server: Option<String>,
}

const PATHS: usize = 5;

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    lost: AtomicU64,
    reordered: AtomicU64,
    churned: AtomicU64,
    slow_dropped: AtomicU64,
    flooders_closed: AtomicU64,
}

fn proc_stat(pid: u32) -> (u64, u64) {
    let rss_kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    (rss_kib, fds)
}

/// A healthy socket: heartbeat every 6 s, checks each path's sequence numbers.
async fn healthy(url: String, c: Arc<Counters>, until: Instant) {
    let Ok((ws, _)) = tokio_tungstenite::connect_async(&url).await else {
        c.lost.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let (mut tx, mut rx) = ws.split();
    let mut beat = tokio::time::interval(Duration::from_secs(6));
    let mut last: Option<u64> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => break,
            _ = beat.tick() => { let _ = tx.send(Message::text("!")).await; }
            m = rx.next() => match m {
                Some(Ok(Message::Text(t))) if t.as_str() != "!" => {
                    c.received.fetch_add(1, Ordering::Relaxed);
                    let seq = serde_json::from_str::<serde_json::Value>(t.as_str())
                        .ok().and_then(|v| v["seq"].as_u64()).unwrap_or(0);
                    if let Some(prev) = last {
                        if seq <= prev { c.reordered.fetch_add(1, Ordering::Relaxed); }
                        else if seq > prev + 1 { c.lost.fetch_add(seq - prev - 1, Ordering::Relaxed); }
                    }
                    last = Some(seq);
                }
                Some(Ok(_)) => {}
                _ => { c.lost.fetch_add(1, Ordering::Relaxed); break; }
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let server = args
        .server
        .unwrap_or_else(|| "target/release/moleculer-ws-server".into());
    let mut child = Command::new(&server)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--trigger",
            "--outbound-queue",
            "64",
        ])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {server}: {e} (cargo build --release -p moleculer-ws-server)")
        });
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .trim_start_matches("moleculer-ws gateway on http://")
        .trim_end_matches('/')
        .to_owned();
    let pid = child.id();
    let started = Instant::now();
    let until = started + Duration::from_secs(args.minutes * 60);
    let c = Arc::new(Counters::default());
    let http = reqwest::Client::new();

    let mut tasks = Vec::new();
    for i in 0..args.sockets {
        let url = format!("ws://{addr}/ws/soak/{}", i % PATHS);
        tasks.push(tokio::spawn(healthy(url, c.clone(), until)));
        if i % 200 == 199 {
            tokio::task::yield_now().await;
        }
    }
    // Broadcasts: 10/s per path, each with its sequence number.
    let b_http = http.clone();
    let b_addr = addr.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut seq = 0u64;
        while Instant::now() < until {
            tick.tick().await;
            seq += 1;
            for p in 0..PATHS {
                let body = json!({"path": format!("/ws/soak/{p}"), "data": {"seq": seq, "pad": "x".repeat(200)}});
                let _ = b_http
                    .post(format!("http://{b_addr}/api/websocket/send"))
                    .json(&body)
                    .send()
                    .await;
            }
        }
    });
    // Churn: 50 connect + disconnect per second.
    let ch_addr = addr.clone();
    let ch = c.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        while Instant::now() < until {
            tick.tick().await;
            let url = format!("ws://{ch_addr}/ws/soak/churn");
            let ch = ch.clone();
            tokio::spawn(async move {
                if let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await {
                    let _ = ws.close(None).await;
                    ch.churned.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    // A slow consumer and a flooder, re-created every 10 s.
    let ab_addr = addr.clone();
    let ab = c.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        while Instant::now() < until {
            tick.tick().await;
            let slow = tokio_tungstenite::connect_async(format!("ws://{ab_addr}/ws/soak/0")).await;
            let ab2 = ab.clone();
            let fl_url = format!("ws://{ab_addr}/ws/soak/flood");
            tokio::spawn(async move {
                if let Ok((mut ws, _)) = tokio_tungstenite::connect_async(fl_url).await {
                    for _ in 0..1000 {
                        if ws.feed(Message::text("!")).await.is_err() {
                            break;
                        }
                    }
                    let _ = ws.flush().await;
                    while let Some(Ok(m)) = ws.next().await {
                        if matches!(m, Message::Close(_)) {
                            ab2.flooders_closed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            });
            // Keep the slow one unread for the period, then drop it.
            tokio::time::sleep(Duration::from_secs(9)).await;
            if slow.is_ok() {
                ab.slow_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    });

    let mut samples = Vec::new();
    let mut sample = tokio::time::interval(Duration::from_secs(10));
    while Instant::now() < until {
        sample.tick().await;
        let (rss, fds) = proc_stat(pid);
        let clients: HashMap<String, u64> = match http
            .get(format!("http://{addr}/api/websocket/clients"))
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => HashMap::new(),
        };
        let sockets: u64 = clients.values().sum();
        let t = started.elapsed().as_secs();
        println!("t={t:>5}s rss={rss} KiB fds={fds} sockets={sockets} received={} lost={} reordered={} churned={}",
            c.received.load(Ordering::Relaxed), c.lost.load(Ordering::Relaxed), c.reordered.load(Ordering::Relaxed), c.churned.load(Ordering::Relaxed));
        samples.push(json!({"t": t, "rss_kib": rss, "fds": fds, "sockets": sockets}));
    }
    for t in tasks {
        let _ = t.await;
    }
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let _ = child.wait();

    // Flat after warm-up: compare the last sample with the one at 20% of the run.
    let warm = samples.get(samples.len() / 5).cloned().unwrap_or(json!({}));
    let last = samples.last().cloned().unwrap_or(json!({}));
    let grow = |k: &str| last[k].as_f64().unwrap_or(0.0) / warm[k].as_f64().unwrap_or(1.0).max(1.0);
    let lost = c.lost.load(Ordering::Relaxed);
    let reordered = c.reordered.load(Ordering::Relaxed);
    let ok = lost == 0 && reordered == 0 && grow("rss_kib") < 1.10 && grow("fds") < 1.10;
    let summary = json!({
        "minutes": args.minutes, "healthy_sockets": args.sockets,
        "received": c.received.load(Ordering::Relaxed), "lost": lost, "reordered": reordered,
        "churned": c.churned.load(Ordering::Relaxed), "flooders_closed": c.flooders_closed.load(Ordering::Relaxed),
        "slow_consumers": c.slow_dropped.load(Ordering::Relaxed),
        "rss_growth_after_warmup": grow("rss_kib"), "fds_growth_after_warmup": grow("fds"),
        "verdict": if ok { "flat, no loss" } else { "FAILED" }, "samples": samples,
    });
    let text = serde_json::to_string_pretty(&summary).unwrap();
    let _ = std::fs::write("target/soak-summary.json", &text);
    println!("{}", serde_json::to_string(&json!({"verdict": summary["verdict"], "lost": lost, "reordered": reordered, "rss_growth": summary["rss_growth_after_warmup"], "fds_growth": summary["fds_growth_after_warmup"]})).unwrap());
    std::process::exit(if ok { 0 } else { 1 });
}
