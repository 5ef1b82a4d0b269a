//! `client-recv`: the Rust client's receive path against a raw tokio-tungstenite read loop on
//! the same stream. See `BENCHMARKS.md`.
//!
//! Starts `blaster` (next to this executable unless `--blaster`), then for each payload size
//! and each handler runs `--rounds` rounds, alternating: a raw `tokio_tungstenite` read loop,
//! the client's `Events` stream, and the client's `WebSocketHandler`. Each run opens a socket
//! at `/blast/<count>/<bytes>` and times the first to the last of `count` messages, in the same
//! process and runtime. Handlers: `count` (touch the text) and `json` (parse it into a
//! `serde_json::Value`; the client's `Message::json()`). Reports the median messages/s of each
//! and the ratio client/raw; writes JSON to `--out`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt;
use moleculer_ws_bench::child::spawn_announced;
use moleculer_ws_client::{Client, Event, Message, WebSocketConfig, WebSocketHandler};
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite;

/// Rust client receive path vs a raw tokio-tungstenite read loop.
#[derive(Debug, Parser)]
struct Args {
    /// The blaster executable (default: next to this one).
    #[arg(long)]
    blaster: Option<PathBuf>,
    /// Payload sizes, bytes per message.
    #[arg(long, value_delimiter = ',', default_value = "100,4096")]
    sizes: Vec<usize>,
    /// Bytes received per run (the message count is this / size, at most 300,000).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    bytes_per_run: usize,
    /// Rounds (each runs every variant once, alternating).
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Tokio runtimes to run in: `multi` (2 workers, what most programs use) and/or
    /// `current` (one thread: no cross-thread wake-ups, less noise).
    #[arg(long, value_delimiter = ',', default_value = "multi,current")]
    runtimes: Vec<String>,
    /// Write the JSON result here (also printed on stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Handler {
    Count,
    Json,
}

impl Handler {
    fn name(self) -> &'static str {
        match self {
            Handler::Count => "count",
            Handler::Json => "json",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Variant {
    Raw,
    Events,
    Callback,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Raw => "raw tokio-tungstenite",
            Variant::Events => "client Events stream",
            Variant::Callback => "client WebSocketHandler",
        }
    }
}

/// What the handler does with one message's text (the raw loop and the `Events` stream).
fn handle_text(handler: Handler, text: &str) -> usize {
    match handler {
        Handler::Count => black_box(text).len(),
        Handler::Json => match serde_json::from_str::<Value>(text) {
            Ok(v) => black_box(&v).as_object().map_or(0, |o| o.len()),
            Err(_) => 0,
        },
    }
}

/// The same through the client's `Message` (its lazy JSON parse).
fn handle_message(handler: Handler, message: &Message) -> usize {
    match handler {
        Handler::Count => black_box(message.text()).len(),
        Handler::Json => message
            .json()
            .and_then(|v| black_box(v).as_object())
            .map_or(0, |o| o.len()),
    }
}

async fn run_raw(url: &str, count: u64, handler: Handler) -> f64 {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let mut got = 0u64;
    let mut sum = 0usize;
    let mut t0 = None;
    while got < count {
        match ws.next().await {
            Some(Ok(tungstenite::Message::Text(t))) => {
                t0.get_or_insert_with(Instant::now);
                sum += handle_text(handler, t.as_str());
                got += 1;
            }
            Some(Ok(_)) => {}
            other => panic!("raw: stream ended after {got}: {other:?}"),
        }
    }
    let secs = t0.map_or(0.0, |t| t.elapsed().as_secs_f64());
    assert!(sum > 0);
    let _ = ws.close(None).await;
    count as f64 / secs
}

async fn run_events(client: &Client, url: &str, count: u64, handler: Handler) -> f64 {
    let (socket, mut events) = client.ws(url, WebSocketConfig::default()).expect("ws");
    let mut got = 0u64;
    let mut sum = 0usize;
    let mut t0 = None;
    while got < count {
        match events.recv().await {
            Some(Event::Message(m)) => {
                t0.get_or_insert_with(Instant::now);
                sum += handle_message(handler, &m);
                got += 1;
            }
            Some(Event::Error(e)) => panic!("events: {e}"),
            Some(_) => {}
            None => panic!("events: ended after {got}"),
        }
    }
    let secs = t0.map_or(0.0, |t| t.elapsed().as_secs_f64());
    assert!(sum > 0);
    socket.disconnect().await;
    count as f64 / secs
}

struct Counter {
    handler: Handler,
    count: u64,
    got: AtomicU64,
    sum: AtomicU64,
    times: Mutex<(Option<Instant>, Option<Instant>)>,
    done: Notify,
}

impl WebSocketHandler for Counter {
    fn on_message(&self, message: Message) {
        let n = self.got.fetch_add(1, Ordering::Relaxed) + 1;
        if n == 1 {
            self.times.lock().unwrap().0 = Some(Instant::now());
        }
        let s = handle_message(self.handler, &message);
        self.sum.fetch_add(s as u64, Ordering::Relaxed);
        if n == self.count {
            self.times.lock().unwrap().1 = Some(Instant::now());
            self.done.notify_one();
        }
    }
}

async fn run_callback(client: &Client, url: &str, count: u64, handler: Handler) -> f64 {
    let counter = Arc::new(Counter {
        handler,
        count,
        got: AtomicU64::new(0),
        sum: AtomicU64::new(0),
        times: Mutex::new((None, None)),
        done: Notify::new(),
    });
    struct Shared(Arc<Counter>);
    impl WebSocketHandler for Shared {
        fn on_message(&self, message: Message) {
            self.0.on_message(message);
        }
    }
    let socket = client
        .ws_with_handler(url, WebSocketConfig::default(), Shared(counter.clone()))
        .expect("ws");
    tokio::time::timeout(Duration::from_secs(120), counter.done.notified())
        .await
        .expect("callback: timed out");
    socket.disconnect().await;
    let (a, b) = *counter.times.lock().unwrap();
    assert!(counter.sum.load(Ordering::Relaxed) > 0);
    count as f64 / (b.unwrap() - a.unwrap()).as_secs_f64()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn start_blaster(path: PathBuf) -> (Child, String) {
    spawn_announced(&mut Command::new(path), "blaster on ")
}

fn main() {
    let args = Args::parse();
    let blaster = args
        .blaster
        .clone()
        .unwrap_or_else(|| std::env::current_exe().unwrap().with_file_name("blaster"));
    let (mut child, base) = start_blaster(blaster);
    let mut results = Vec::new();
    for name in &args.runtimes {
        let runtime = match name.as_str() {
            "current" => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
            "multi" => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build(),
            other => panic!("--runtimes: unknown runtime {other:?}"),
        }
        .expect("runtime");
        results.extend(runtime.block_on(run_all(&args, &base, name)));
    }
    let _ = child.kill();
    let _ = child.wait();
    let result = json!({ "rounds": args.rounds, "results": results });
    let text = serde_json::to_string_pretty(&result).unwrap();
    println!("{text}");
    if let Some(out) = &args.out {
        std::fs::write(out, text + "\n").expect("write --out");
    }
}

async fn run_all(args: &Args, base: &str, runtime: &str) -> Vec<Value> {
    let client = Client::new().expect("client");
    let variants = [Variant::Raw, Variant::Events, Variant::Callback];
    let mut results = Vec::new();
    for &size in &args.sizes {
        let count = (args.bytes_per_run / size).clamp(1000, 300_000) as u64;
        let url = format!("{base}/blast/{count}/{size}");
        for handler in [Handler::Count, Handler::Json] {
            let mut rates: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
            for round in 0..args.rounds {
                // Rotate the order each round so none always runs first.
                for k in 0..variants.len() {
                    let i = (k + round) % variants.len();
                    // A spawned task, as a user's would be (on the multi-thread runtime the
                    // `block_on` thread is woken through the workers: slower for every variant).
                    let (client, url, variant) = (client.clone(), url.clone(), variants[i]);
                    let rate = tokio::spawn(async move {
                        match variant {
                            Variant::Raw => run_raw(&url, count, handler).await,
                            Variant::Events => run_events(&client, &url, count, handler).await,
                            Variant::Callback => run_callback(&client, &url, count, handler).await,
                        }
                    })
                    .await
                    .expect("run");
                    rates[i].push(rate);
                }
            }
            let medians: Vec<f64> = rates.iter_mut().map(|r| median(r)).collect();
            for (i, v) in variants.iter().enumerate() {
                let ratio = medians[i] / medians[0];
                eprintln!(
                    "{runtime:<7} {size:>6} B {:<5} {:<24} {:>12.0} msg/s {:>8.1} MB/s  x{ratio:.3} of raw",
                    handler.name(),
                    v.name(),
                    medians[i],
                    medians[i] * size as f64 / 1e6,
                );
                results.push(json!({
                    "runtime": runtime,
                    "bytes": size,
                    "messages_per_run": count,
                    "handler": handler.name(),
                    "variant": v.name(),
                    "median_messages_per_sec": medians[i],
                    "median_mb_per_sec": medians[i] * size as f64 / 1e6,
                    "ratio_to_raw": ratio,
                    "runs_messages_per_sec": rates[i],
                }));
            }
        }
    }
    results
}
