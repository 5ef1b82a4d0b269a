//! `storm`: the reconnect storm. See `BENCHMARKS.md`.
//!
//! Starts the gateway (`moleculer-ws-server`, next to this executable unless `--server`) on a
//! free port of 127.0.0.1, opens `--clients` connections with the Rust client (one process,
//! one `WebSocket` each, the reconnect policy of `--policy`), then restarts the gateway: SIGTERM
//! (it closes every socket with 1012), wait for it to exit, start it again on the same port.
//! Records, from the SIGTERM on, when each client is open again: the time until all are back,
//! percentiles, the connect-rate profile (opens per 100 ms) and its peak, and failed attempts.
//! Writes JSON to `--out`. Exits by itself after `--deadline-secs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use moleculer_ws_bench::child::spawn_announced;
use moleculer_ws_client::{Client, Error, ReconnectPolicy, WebSocketConfig, WebSocketHandler};
use serde_json::json;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Policy {
    /// The client's default: exponential from 3 s, with jitter.
    Default,
    /// The original clients': 3 s every time, no jitter.
    Fixed,
}

/// Reconnect storm: N Rust clients, gateway restarted.
#[derive(Debug, Parser)]
struct Args {
    /// The gateway executable (default: `moleculer-ws-server` next to this one).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Clients.
    #[arg(long, default_value_t = 10_000)]
    clients: usize,
    /// Reconnect policy.
    #[arg(long, value_enum, default_value_t = Policy::Default)]
    policy: Policy,
    /// Time the gateway stays down after it exited, ms.
    #[arg(long, default_value_t = 0)]
    down_ms: u64,
    /// Upgrades in flight at once during the first fill (not during the storm).
    #[arg(long, default_value_t = 256)]
    fill_concurrency: usize,
    /// Write the JSON result here (also printed on stdout).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Exit after this many seconds whatever happens.
    #[arg(long, default_value_t = 300.0)]
    deadline_secs: f64,
}

/// What every client's handler reports into.
struct Board {
    /// Sockets open now.
    open: AtomicUsize,
    /// Errors reported to the handlers (failed attempts, broken sockets).
    errors: AtomicU64,
    /// Open times since the restart started (µs), once the storm started.
    storm_opens: Mutex<Vec<u64>>,
    /// When the storm started (SIGTERM sent); before that opens are the fill.
    storm_start: Mutex<Option<Instant>>,
    /// Closes seen after the storm started.
    closes: AtomicUsize,
}

struct Handler(Arc<Board>);

impl WebSocketHandler for Handler {
    fn on_open(&self) {
        self.0.open.fetch_add(1, Ordering::Relaxed);
        if let Some(t0) = *self.0.storm_start.lock().unwrap() {
            let us = t0.elapsed().as_micros() as u64;
            self.0.storm_opens.lock().unwrap().push(us);
        }
    }

    fn on_close(&self, _code: Option<u16>, _reason: &str) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
        self.0.closes.fetch_add(1, Ordering::Relaxed);
    }

    fn on_error(&self, _error: &Error) {
        self.0.errors.fetch_add(1, Ordering::Relaxed);
    }
}

fn start_gateway(server: &PathBuf, listen: &str) -> (Child, String) {
    let (child, base) = spawn_announced(
        Command::new(server)
            .args(["--listen", listen])
            .env("RUST_LOG", "error"),
        "moleculer-ws gateway on ",
    );
    (child, base.trim_end_matches('/').to_owned())
}

fn pct(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1e6
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    moleculer_ws_bench::child::exit_after(args.deadline_secs, "storm");
    let server = args.server.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .unwrap()
            .with_file_name("moleculer-ws-server")
    });
    let (mut gateway, base) = start_gateway(&server, "127.0.0.1:0");
    let addr = base.trim_start_matches("http://").to_owned();
    let url = format!("ws://{addr}/ws/storm");
    let policy = match args.policy {
        Policy::Default => ReconnectPolicy::default(),
        Policy::Fixed => ReconnectPolicy::fixed(),
    };
    let label = format!("{:?}", args.policy).to_lowercase();
    eprintln!(
        "[{label}] gateway on {addr}; opening {} clients",
        args.clients
    );

    let board = Arc::new(Board {
        open: AtomicUsize::new(0),
        errors: AtomicU64::new(0),
        storm_opens: Mutex::new(Vec::with_capacity(args.clients)),
        storm_start: Mutex::new(None),
        closes: AtomicUsize::new(0),
    });
    let client = Client::new().expect("client");
    let mut sockets = Vec::with_capacity(args.clients);
    let t_fill = Instant::now();
    for i in 0..args.clients {
        // Bounded upgrades in flight, so the fill itself is not a storm.
        while i - board.open.load(Ordering::Relaxed) >= args.fill_concurrency {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let config = WebSocketConfig::default().reconnect(policy.clone());
        sockets.push(
            client
                .ws_with_handler(&url, config, Handler(board.clone()))
                .expect("ws"),
        );
    }
    while board.open.load(Ordering::Relaxed) < args.clients {
        if t_fill.elapsed() > Duration::from_secs(120) {
            panic!(
                "only {} of {} clients open after 120 s",
                board.open.load(Ordering::Relaxed),
                args.clients
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let fill_secs = t_fill.elapsed().as_secs_f64();
    eprintln!(
        "[{label}] {} open in {fill_secs:.1} s; restarting the gateway",
        args.clients
    );
    let errors0 = board.errors.load(Ordering::Relaxed);
    let failed = |sockets: &[moleculer_ws_client::WebSocket]| -> u64 {
        sockets.iter().map(|s| s.stats().failed_attempts).sum()
    };
    let failed0 = failed(&sockets);

    // The restart: SIGTERM, wait for the exit, start again on the same port.
    let t0 = Instant::now();
    *board.storm_start.lock().unwrap() = Some(t0);
    let pid = gateway.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    gateway.wait().expect("wait for the gateway");
    let exited = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(args.down_ms)).await;
    let (mut gateway, _) = start_gateway(&server, &addr);
    let restarted = t0.elapsed();
    eprintln!(
        "[{label}] gateway exited after {:.2} s, listening again after {:.2} s",
        exited.as_secs_f64(),
        restarted.as_secs_f64()
    );
    let mut last_print = Instant::now();
    loop {
        let back = board.storm_opens.lock().unwrap().len();
        if back >= args.clients {
            break;
        }
        if last_print.elapsed() >= Duration::from_secs(1) {
            eprintln!(
                "[{label}] {:.0} s: {back}/{} back, {} errors",
                t0.elapsed().as_secs_f64(),
                args.clients,
                board.errors.load(Ordering::Relaxed) - errors0
            );
            last_print = Instant::now();
        }
        if t0.elapsed() > Duration::from_secs(240) {
            eprintln!("[{label}] giving up after 240 s");
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut opens = board.storm_opens.lock().unwrap().clone();
    opens.sort_unstable();
    let all_back = opens.len() >= args.clients;
    // Opens per 100 ms from the SIGTERM.
    let buckets = opens.last().map_or(0, |l| (l / 100_000) as usize + 1);
    let mut profile = vec![0u64; buckets];
    for o in &opens {
        profile[(o / 100_000) as usize] += 1;
    }
    let peak = profile.iter().copied().max().unwrap_or(0);
    let busy = profile.iter().filter(|&&n| n > 0).count();
    let result = json!({
        "policy": label,
        "clients": args.clients,
        "fill_secs": fill_secs,
        "gateway_exit_secs": exited.as_secs_f64(),
        "gateway_listening_again_secs": restarted.as_secs_f64(),
        "all_back": all_back,
        "back": opens.len(),
        "all_back_secs": if all_back { opens.last().map(|l| *l as f64 / 1e6) } else { None },
        "first_back_secs": opens.first().map(|f| *f as f64 / 1e6),
        "back_p50_secs": pct(&opens, 0.50),
        "back_p90_secs": pct(&opens, 0.90),
        "back_p99_secs": pct(&opens, 0.99),
        "failed_attempts": failed(&sockets) - failed0,
        "errors_reported": board.errors.load(Ordering::Relaxed) - errors0,
        "peak_opens_per_sec": peak * 10,
        "intervals_100ms_with_opens": busy,
        "opens_per_100ms": profile,
    });
    eprintln!(
        "[{label}] all back: {all_back} after {:.2} s (p50 {:.2} s, p99 {:.2} s); peak {} opens/s; {} failed attempts; opens spread over {busy} of the 100-ms intervals",
        result["all_back_secs"].as_f64().unwrap_or(f64::NAN),
        pct(&opens, 0.5),
        pct(&opens, 0.99),
        peak * 10,
        result["failed_attempts"],
    );
    let text = serde_json::to_string_pretty(&result).unwrap();
    println!("{text}");
    if let Some(out) = &args.out {
        std::fs::write(out, text + "\n").expect("write --out");
    }
    let _ = gateway.kill();
    let _ = gateway.wait();
    std::process::exit(0);
}
