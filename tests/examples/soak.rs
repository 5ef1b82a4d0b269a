//! Soak test of the gateway (not in CI): `cargo run --release -p moleculer-ws-conformance
//! --example soak -- [--minutes 30] [--sockets 5000] [--server PATH]`.
//!
//! Starts the release gateway binary on 127.0.0.1, then for the whole run: healthy sockets on
//! 5 paths that send `!` every 6 s and check every broadcast arrives once and in order;
//! churn (connect + disconnect at 50/s each); broadcasts at 10/s per path through the REST
//! trigger; a `!` flooder every 10 s; one slow consumer at a time on `/ws/soak/slow`, a path of
//! its own that gets 32 KiB broadcasts at 10/s (on loopback the gateway's send buffer grows to
//! about a megabyte, which the healthy paths' 2.4 KB/s would take minutes to fill).
//!
//! Abusive sockets are counted by the close code they really receive from the gateway:
//! - a flooder sends 1000 `!` back to back (the default limit is 100 frames/s), then reads until the
//!   close frame;
//! - a slow consumer (4 KiB receive buffer) stops reading until the gateway's
//!   `moleculer_ws_sockets_closed_total{reason="slow"}` rises (or 60 s pass), then reads on promptly, as
//!   a client that catches up would, until the close frame.
//!
//! Each ends as `received_close_1008`, `received_close_other`, `ended_without_close_frame`
//! (EOF or reset before a close frame) or `no_close_within_timeout`.
//!
//! Every 10 s until the end of the run (before any socket is torn down) it samples the
//! gateway's RSS, open descriptors and open sockets. Growth is the median of the second half
//! of the steady samples (after the first 20% of the run) over the median of the first half.
//! At the end it prints a JSON summary (also written to `$CARGO_TARGET_DIR/soak-summary.json`,
//! default `target/`) and exits 1 if a healthy socket lost or reordered a message, RSS or
//! descriptors grew by 10% or more in the steady phase, or any flooder or slow consumer did
//! not receive 1008 (the gateway's own counters of both are in the summary too).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
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
/// The close code of a flooder and of a slow consumer (policy violation).
const CLOSE_POLICY: u16 = 1008;
/// How long a flooder or a slow consumer that reads again may wait for its close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(20);
/// Longest a slow consumer stops reading while the gateway has not dropped it.
const SLOW_MAX_STALL: Duration = Duration::from_secs(60);
/// No slow consumer starts later than this before the end of the run: its path gets
/// broadcasts only until then, and it needs about 15 s of them to overflow.
const SLOW_MIN_LEFT: Duration = Duration::from_secs(30);
/// The slow consumer's socket receive buffer: small, so that the gateway's side fills soon.
const SLOW_RECV_BUFFER: u32 = 4096;
/// The slow consumer's path and the size of the broadcasts it gets.
const SLOW_PATH: &str = "/ws/soak/slow";
const SLOW_PAD: usize = 32 * 1024;
const SLOW_METRIC: &str = r#"moleculer_ws_sockets_closed_total{reason="slow"}"#;
const FLOOD_METRIC: &str = r#"moleculer_ws_sockets_closed_total{reason="flood"}"#;

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    lost: AtomicU64,
    reordered: AtomicU64,
    churned: AtomicU64,
}

/// How an abusive socket ended, from what it received.
enum Ending {
    Close(u16),
    NoCloseFrame,
    TimedOut,
}

/// The endings of one kind of abusive socket (flooders or slow consumers).
#[derive(Default)]
struct CloseTally {
    created: AtomicU64,
    close_1008: AtomicU64,
    close_other: AtomicU64,
    no_close_frame: AtomicU64,
    timed_out: AtomicU64,
}

impl CloseTally {
    fn record(&self, ending: Ending) {
        let counter = match ending {
            Ending::Close(CLOSE_POLICY) => &self.close_1008,
            Ending::Close(_) => &self.close_other,
            Ending::NoCloseFrame => &self.no_close_frame,
            Ending::TimedOut => &self.timed_out,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// At least one was created and every one received 1008 (none ended otherwise).
    fn all_1008(&self) -> bool {
        let created = self.created.load(Ordering::Relaxed);
        let c = self.close_1008.load(Ordering::Relaxed);
        created > 0 && c == created
    }

    fn to_json(&self) -> Value {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "created": n(&self.created),
            "received_close_1008": n(&self.close_1008),
            "received_close_other": n(&self.close_other),
            "ended_without_close_frame": n(&self.no_close_frame),
            "no_close_within_timeout": n(&self.timed_out),
        })
    }
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

/// One counter of the gateway's `/metrics`.
async fn metric(http: &reqwest::Client, addr: &str, name: &str) -> Option<u64> {
    let text = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Reads until the gateway's close frame, the end of the stream, or `CLOSE_WAIT`.
async fn await_close<S>(ws: &mut S) -> Ending
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let read = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => {
                    // A close frame without a code is 1005 (no status received).
                    return Ending::Close(frame.map_or(1005, |f| u16::from(f.code)));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Ending::NoCloseFrame,
            }
        }
    };
    tokio::time::timeout(CLOSE_WAIT, read)
        .await
        .unwrap_or(Ending::TimedOut)
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

/// A flooder: 1000 `!` back to back, then reads until the gateway closes it.
async fn flooder(url: String, tally: Arc<CloseTally>) {
    tally.created.fetch_add(1, Ordering::Relaxed);
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await else {
        tally.record(Ending::NoCloseFrame);
        return;
    };
    for _ in 0..1000 {
        if ws.feed(Message::text("!")).await.is_err() {
            break;
        }
    }
    let _ = ws.flush().await;
    tally.record(await_close(&mut ws).await);
}

/// One slow consumer at a time on [`SLOW_PATH`] until `until`: see the crate docs.
async fn slow_consumers(addr: String, tally: Arc<CloseTally>, until: Instant) {
    let http = reqwest::Client::new();
    while Instant::now() + SLOW_MIN_LEFT <= until {
        tally.created.fetch_add(1, Ordering::Relaxed);
        let before = metric(&http, &addr, SLOW_METRIC).await.unwrap_or(0);
        let Ok(mut ws) = slow_socket(&addr).await else {
            tally.record(Ending::NoCloseFrame);
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let stalled = Instant::now();
        while stalled.elapsed() < SLOW_MAX_STALL {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if metric(&http, &addr, SLOW_METRIC).await.unwrap_or(0) > before {
                break;
            }
        }
        tally.record(await_close(&mut ws).await);
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A WebSocket to [`SLOW_PATH`] over a socket with a small receive buffer.
async fn slow_socket(addr: &str) -> Result<Ws, Box<dyn std::error::Error>> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(SLOW_RECV_BUFFER)?;
    let stream = socket.connect(addr.parse()?).await?;
    let (ws, _) =
        tokio_tungstenite::client_async(format!("ws://{addr}{SLOW_PATH}"), stream).await?;
    Ok(ws)
}

fn median(mut v: Vec<u64>) -> Option<f64> {
    v.sort_unstable();
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2] as f64),
        _ => Some((v[n / 2 - 1] + v[n / 2]) as f64 / 2.0),
    }
}

/// Steady-state growth of one sampled figure: the samples after warm-up (all taken before
/// teardown), the median of their second half over the median of their first half.
fn steady_growth(samples: &[Value], warmup_secs: u64, key: &str) -> Value {
    let steady: Vec<u64> = samples
        .iter()
        .filter(|s| s["t"].as_u64().unwrap_or(0) >= warmup_secs)
        .filter_map(|s| s[key].as_u64())
        .collect();
    let half = steady.len() / 2;
    let (Some(first), Some(last)) = (
        median(steady[..half].to_vec()),
        median(steady[steady.len() - half..].to_vec()),
    ) else {
        return json!({"steady_samples": steady.len(), "growth": null});
    };
    json!({
        "steady_samples": steady.len(),
        "first_half_median": first,
        "second_half_median": last,
        "growth": last / first.max(1.0),
    })
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
        .strip_prefix("moleculer-ws gateway on http://")
        .unwrap_or_else(|| panic!("{server} did not start: first line {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    let pid = child.id();
    let started = Instant::now();
    let until = started + Duration::from_secs(args.minutes * 60);
    let c = Arc::new(Counters::default());
    let flooders = Arc::new(CloseTally::default());
    let slow = Arc::new(CloseTally::default());
    let http = reqwest::Client::new();

    let mut tasks = Vec::new();
    for i in 0..args.sockets {
        let url = format!("ws://{addr}/ws/soak/{}", i % PATHS);
        tasks.push(tokio::spawn(healthy(url, c.clone(), until)));
        if i % 200 == 199 {
            tokio::task::yield_now().await;
        }
    }
    // Broadcasts: 10/s per path, each with its sequence number; larger ones to the slow path.
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
            let body =
                json!({"path": SLOW_PATH, "data": {"seq": seq, "pad": "x".repeat(SLOW_PAD)}});
            let _ = b_http
                .post(format!("http://{b_addr}/api/websocket/send"))
                .json(&body)
                .send()
                .await;
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
    // A flooder every 10 s; their tasks are awaited before teardown.
    let fl_addr = addr.clone();
    let fl = flooders.clone();
    let flooding = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        let mut spawned = Vec::new();
        loop {
            tick.tick().await;
            if Instant::now() >= until {
                break;
            }
            let url = format!("ws://{fl_addr}/ws/soak/flood");
            spawned.push(tokio::spawn(flooder(url, fl.clone())));
        }
        for f in spawned {
            let _ = f.await;
        }
    });
    let slow_consuming = tokio::spawn(slow_consumers(addr.clone(), slow.clone(), until));

    // Samples until the end of the run, before any socket is torn down.
    let mut samples = Vec::new();
    let mut sample = tokio::time::interval(Duration::from_secs(10));
    loop {
        sample.tick().await;
        if Instant::now() >= until {
            break;
        }
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
    // The flooders and the slow consumer still waiting finish (bounded by their timeouts).
    let _ = flooding.await;
    let _ = slow_consuming.await;
    let gateway_counters = json!({
        SLOW_METRIC: metric(&http, &addr, SLOW_METRIC).await,
        FLOOD_METRIC: metric(&http, &addr, FLOOD_METRIC).await,
    });
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let _ = child.wait();

    let warmup_secs = args.minutes * 60 / 5;
    let rss = steady_growth(&samples, warmup_secs, "rss_kib");
    let fds = steady_growth(&samples, warmup_secs, "fds");
    let flat = |g: &Value| g["growth"].as_f64().is_some_and(|g| g < 1.10);
    let lost = c.lost.load(Ordering::Relaxed);
    let reordered = c.reordered.load(Ordering::Relaxed);
    let ok = lost == 0
        && reordered == 0
        && flat(&rss)
        && flat(&fds)
        && flooders.all_1008()
        && slow.all_1008();
    let summary = json!({
        "minutes": args.minutes, "healthy_sockets": args.sockets,
        "received": c.received.load(Ordering::Relaxed), "lost": lost, "reordered": reordered,
        "churned": c.churned.load(Ordering::Relaxed),
        "flooders": flooders.to_json(),
        "slow_consumers": slow.to_json(),
        "gateway_counters_before_teardown": gateway_counters,
        "warmup_seconds": warmup_secs,
        "rss_kib_steady": rss, "fds_steady": fds,
        "verdict": if ok { "flat, no loss, every abusive socket got 1008" } else { "FAILED" },
        "samples": samples,
    });
    let text = serde_json::to_string_pretty(&summary).unwrap();
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(format!("{dir}/soak-summary.json"), &text);
    let brief = json!({
        "verdict": summary["verdict"], "lost": lost, "reordered": reordered,
        "rss_growth": summary["rss_kib_steady"]["growth"], "fds_growth": summary["fds_steady"]["growth"],
        "flooders": summary["flooders"], "slow_consumers": summary["slow_consumers"],
    });
    println!("{}", serde_json::to_string(&brief).unwrap());
    std::process::exit(if ok { 0 } else { 1 });
}
