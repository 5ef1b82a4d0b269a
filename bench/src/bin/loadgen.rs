//! `loadgen`: the WebSocket load generator. See `BENCHMARKS.md`.
//!
//! Opens `--sockets` WebSockets to `--url` (spread over `--source-addrs` loopback source
//! addresses), waits `--settle-secs`, samples the server's RSS (idle memory per socket), then
//! runs one step per `--rates` entry: broadcasts per second published through `--trigger`
//! for `--step-secs`, then up to `--drain-secs` for the last deliveries. The sweep stops after
//! the first step with loss, a closed socket, p99 over `--stop-p99-ms`, or a publisher that
//! could not keep the rate. With `--half-rate-step`, one more step at half the best rate
//! (zero loss, p99 <= 250 ms) measures the `!` round trip under load. With `--paths N`, the
//! sockets are spread over N paths (`<url>/0` ... `<url>/N-1`) and each rate is per path;
//! a broadcast seen on a socket of another path counts as misdelivered. With `--probe-ms`, one
//! more socket on a thread of its own sends `!` that often (see `probe.rs`). Prints progress on
//! stderr and writes a JSON result to `--out`. The process exits by itself after
//! `--deadline-secs` whatever happens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use moleculer_ws_bench::counting;
use moleculer_ws_bench::fleet::{run_socket, ConnectSpec, Fleet, MAX_STEPS};
use moleculer_ws_bench::hist::Histogram;
use moleculer_ws_bench::probe::Probe;
use moleculer_ws_bench::procstat::{self, ProcSample};
use moleculer_ws_bench::publisher::Publisher;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

/// WebSocket (or event-stream) fan-out load generator for Moleculer WebSocket gateways.
#[derive(Debug, Parser)]
struct Args {
    /// Name of the server under test, in the output.
    #[arg(long, default_value = "ours")]
    label: String,
    /// WebSocket URL (path = the broadcast path).
    #[arg(long, default_value = "ws://127.0.0.1:3000/ws/bench")]
    url: String,
    /// REST trigger: POST {path, data}.
    #[arg(long, default_value = "http://127.0.0.1:3000/api/websocket/send")]
    trigger: String,
    /// Sockets to open.
    #[arg(long, default_value_t = 10_000)]
    sockets: usize,
    /// Spread the sockets over this many paths (`<url>/0`, `<url>/1`, ...); rates are per path.
    #[arg(long, default_value_t = 1)]
    paths: usize,
    /// Send `!` every this many ms on one extra socket with a thread of its own (0: off).
    #[arg(long, default_value_t = 0)]
    probe_ms: u64,
    /// Spread sockets over this many source addresses, 127.0.0.F, 127.0.0.F+1, ...
    #[arg(long, default_value_t = 4)]
    source_addrs: u8,
    /// The first source address's last byte F (127.0.0.F).
    #[arg(long, default_value_t = 1)]
    source_first: u8,
    /// Upgrades in flight at once.
    #[arg(long, default_value_t = 128)]
    connect_concurrency: usize,
    /// `!` heartbeat period of every socket, seconds.
    #[arg(long, default_value_t = 6.0)]
    heartbeat_secs: f64,
    /// Broadcast rates to step through, per second (comma-separated). None: idle only.
    #[arg(long, value_delimiter = ',')]
    rates: Vec<f64>,
    /// Publishing time per step, seconds.
    #[arg(long, default_value_t = 5.0)]
    step_secs: f64,
    /// Longest wait for a step's last deliveries, seconds.
    #[arg(long, default_value_t = 3.0)]
    drain_secs: f64,
    /// Trigger requests in flight at most.
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
    /// Padding bytes in each broadcast (the stamp alone is about 30 bytes).
    #[arg(long, default_value_t = 0)]
    payload: usize,
    /// What pads each broadcast: `x` (the letter repeated) or `json` (a list of chat-like
    /// records, see `stamp.rs`).
    #[arg(long, default_value = "x", value_parser = ["x", "json"])]
    body: String,
    /// Every socket (and the probe) offers permessage-deflate and inflates what comes
    /// compressed.
    #[arg(long)]
    deflate: bool,
    /// Every this many sockets one reads every message (stamp, latency, order); the others
    /// only count frames, so that the generator's own inflating does not bound the run. 1:
    /// every socket reads.
    #[arg(long, default_value_t = 1)]
    read_every: usize,
    /// What every socket of the fleet opens: `websocket`, or `sse` (an event stream asking
    /// for frames, `sse.rs`: it sends no `!`; `--read-every` does not apply).
    #[arg(long, default_value = "websocket", value_parser = ["websocket", "sse"])]
    transport: String,
    /// PID of the server process, for CPU and RSS from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Wait after the last socket opened before sampling idle memory, seconds.
    #[arg(long, default_value_t = 3.0)]
    settle_secs: f64,
    /// Stop the sweep after a step whose p99 exceeds this, ms.
    #[arg(long, default_value_t = 2000.0)]
    stop_p99_ms: f64,
    /// After the sweep, one step at half the best zero-loss p99<=250ms rate (heartbeat RTT).
    #[arg(long)]
    half_rate_step: bool,
    /// Write the JSON result here (also printed on stdout).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Exit after this many seconds whatever happens.
    #[arg(long, default_value_t = 900.0)]
    deadline_secs: f64,
}

struct Ctx {
    args: Args,
    probe: Option<Arc<Probe>>,
    fleet: Arc<Fleet>,
    spec: Arc<ConnectSpec>,
    gate: Arc<Semaphore>,
    publisher: Publisher,
    next_id: usize,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn hist_json(h: &Histogram) -> Value {
    json!({
        "count": h.count(),
        "p50_ms": ms(h.quantile(0.50)),
        "p99_ms": ms(h.quantile(0.99)),
        "p999_ms": ms(h.quantile(0.999)),
        "max_ms": ms(h.max()),
        "mean_ms": h.mean() / 1000.0,
    })
}

fn sample(pid: Option<u32>) -> Option<ProcSample> {
    pid.and_then(procstat::sample)
}

fn cpu_pct(a: Option<ProcSample>, b: Option<ProcSample>, wall: f64) -> Option<f64> {
    Some((b?.cpu_secs - a?.cpu_secs) / wall * 100.0)
}

/// The length of the first broadcast's text (seq 1): the size of what is delivered.
fn message_example(args: &Args) -> usize {
    let stamp = moleculer_ws_bench::stamp::Stamp {
        step: 1,
        seq: 1,
        micros: 1_000_000,
        path: 0,
    };
    if args.body == "json" {
        stamp.to_json_records(args.payload).len()
    } else {
        stamp.to_json(args.payload).len()
    }
}

impl Ctx {
    /// Opens sockets until `target` are open (or every attempt has ended).
    async fn fill(&mut self, target: usize) -> f64 {
        let t0 = Instant::now();
        let want = target.saturating_sub(self.fleet.open.load(Ordering::Relaxed));
        let failures0 = self.fleet.connect_failures.load(Ordering::Relaxed);
        let open0 = self.fleet.open.load(Ordering::Relaxed);
        for _ in 0..want {
            let id = self.next_id;
            self.next_id += 1;
            let (fleet, spec, gate) = (self.fleet.clone(), self.spec.clone(), self.gate.clone());
            if self.args.transport == "sse" {
                tokio::spawn(moleculer_ws_bench::sse::run_socket(fleet, spec, id, gate));
            } else if id.is_multiple_of(self.spec.read_every.max(1)) {
                tokio::spawn(run_socket(fleet, spec, id, gate));
            } else {
                tokio::spawn(counting::run_socket(fleet, spec, id, gate));
            }
        }
        let mut last_print = Instant::now();
        loop {
            let open = self.fleet.open.load(Ordering::Relaxed);
            let failed = self.fleet.connect_failures.load(Ordering::Relaxed) - failures0;
            let closed = self.fleet.closed.load(Ordering::Relaxed);
            if open >= target || (open + closed as usize + failed as usize) >= open0 + want {
                break;
            }
            if last_print.elapsed() >= Duration::from_secs(1) {
                eprintln!(
                    "[{}] connecting: {open}/{target} open, {failed} failed",
                    self.args.label
                );
                last_print = Instant::now();
            }
            if t0.elapsed() > Duration::from_secs(120) {
                eprintln!("[{}] connecting: giving up after 120 s", self.args.label);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        t0.elapsed().as_secs_f64()
    }

    /// Publishes at `rate` per second for `secs`, drains, and reports the step.
    async fn step(&mut self, step: usize, rate: f64, secs: f64) -> Value {
        let label = self.args.label.clone();
        let fleet = self.fleet.clone();
        fleet.current_step.store(step, Ordering::Relaxed);
        let sockets = fleet.open.load(Ordering::Relaxed) as u64;
        let per_path: Vec<u64> = fleet
            .open_per_path
            .iter()
            .map(|n| n.load(Ordering::Relaxed) as u64)
            .collect();
        let misdelivered0 = fleet.misdelivered.load(Ordering::Relaxed);
        let closed0 = fleet.closed.load(Ordering::Relaxed);
        let reordered0 = fleet.reordered();
        let wire0 = fleet.wire_bytes.load(Ordering::Relaxed);
        let server0 = sample(self.args.server_pid);
        let self0 = procstat::sample(std::process::id());
        let t0 = Instant::now();
        let t0_us = fleet.now_us();
        let run = self
            .publisher
            .run(step as u32, rate, secs, self.args.in_flight);
        tokio::pin!(run);
        let mut progress = tokio::time::interval(Duration::from_secs(1));
        progress.tick().await;
        let report = loop {
            tokio::select! {
                r = &mut run => break r,
                _ = progress.tick() => {
                    let got = fleet.received(step);
                    eprintln!(
                        "[{label}] step {step} at {rate}/s: published {}, delivered {:.0}/s, open {}",
                        self.publisher.accepted.load(Ordering::Relaxed),
                        got as f64 / t0.elapsed().as_secs_f64(),
                        fleet.open.load(Ordering::Relaxed)
                    );
                }
            }
        };
        if let Some(e) = &report.first_error {
            eprintln!("[{label}] trigger error ({} in all): {e}", report.errors);
        }
        let (published, trigger_errors) = (report.published, report.errors);
        let publish_secs = report.secs.max(1e-3);
        let expected: u64 = self
            .publisher
            .accepted_per_path
            .iter()
            .zip(&per_path)
            .map(|(a, n)| a.load(Ordering::Relaxed) * n)
            .sum();
        let drain_until = Instant::now() + Duration::from_secs_f64(self.args.drain_secs);
        while fleet.received(step) < expected && Instant::now() < drain_until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let wall = t0.elapsed().as_secs_f64();
        let server1 = sample(self.args.server_pid);
        let wire = fleet.wire_bytes.load(Ordering::Relaxed) - wire0;
        let self1 = procstat::sample(std::process::id());
        let (lat, hb, last_us) = fleet.step(step);
        let counted = fleet.counted(step);
        let received = lat.count() + counted;
        let span = (last_us.saturating_sub(t0_us) as f64 / 1e6).max(publish_secs);
        let result = json!({
            "step": step,
            "rate_target": rate,
            "rate_published": published as f64 / publish_secs,
            "published": published,
            "trigger_errors": trigger_errors,
            "sockets": sockets,
            "expected": expected,
            "received": received,
            "received_counted_only": counted,
            "lost": expected.saturating_sub(received),
            "closed": fleet.closed.load(Ordering::Relaxed) - closed0,
            "reordered": fleet.reordered() - reordered0,
            "misdelivered": fleet.misdelivered.load(Ordering::Relaxed) - misdelivered0,
            "paths": per_path.len(),
            "deliveries_per_sec": received as f64 / span,
            "latency": hist_json(&lat),
            "heartbeat": hist_json(&hb),
            "probe_heartbeat": self.probe.as_ref().map(|p| hist_json(&p.steps[step])),
            "server_cpu_pct": cpu_pct(server0, server1, wall),
            "server_cpu_secs": server0.zip(server1).map(|(a, b)| b.cpu_secs - a.cpu_secs),
            "wire_bytes_received": wire,
            "server_rss_bytes": server1.map(|s| s.rss_bytes),
            "loadgen_cpu_pct": cpu_pct(self0, self1, wall),
        });
        eprintln!(
            "[{label}] step {step} done: {rate}/s x {sockets} sockets: {:.0} deliveries/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, lost {}, closed {}, misdelivered {}, `!` p99 {:.1} ms (probe {:.1} ms), server CPU {:.0}%",
            result["deliveries_per_sec"].as_f64().unwrap_or(0.0),
            ms(lat.quantile(0.5)),
            ms(lat.quantile(0.99)),
            ms(lat.max()),
            result["lost"],
            result["closed"],
            result["misdelivered"],
            ms(hb.quantile(0.99)),
            self.probe
                .as_ref()
                .map_or(0.0, |p| ms(p.steps[step].quantile(0.99))),
            result["server_cpu_pct"].as_f64().unwrap_or(0.0),
        );
        result
    }
}

fn ok(step: &Value, p99_ms: f64) -> bool {
    step["lost"] == 0
        && step["closed"] == 0
        && step["misdelivered"] == 0
        && step["latency"]["p99_ms"].as_f64().unwrap_or(f64::MAX) <= p99_ms
}

fn best(steps: &[Value], p99_ms: f64) -> Option<&Value> {
    steps.iter().filter(|s| ok(s, p99_ms)).max_by(|a, b| {
        let r = |s: &Value| s["deliveries_per_sec"].as_f64().unwrap_or(0.0);
        r(a).total_cmp(&r(b))
    })
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    moleculer_ws_bench::child::exit_after(args.deadline_secs, "loadgen");
    let uri: tokio_tungstenite::tungstenite::http::Uri = args.url.parse().expect("--url");
    let addr: SocketAddr = format!(
        "{}:{}",
        uri.host().expect("--url host"),
        uri.port_u16().unwrap_or(80)
    )
    .parse()
    .expect("--url must name an IPv4 address and port");
    let (urls, paths): (Vec<String>, Vec<String>) = if args.paths <= 1 {
        (vec![args.url.clone()], vec![uri.path().to_owned()])
    } else {
        let base = args.url.trim_end_matches('/');
        let path = uri.path().trim_end_matches('/');
        (0..args.paths)
            .map(|k| (format!("{base}/{k}"), format!("{path}/{k}")))
            .unzip()
    };
    let sources = (0..args.source_addrs.max(1))
        .map(|i| Ipv4Addr::new(127, 0, 0, args.source_first.saturating_add(i)))
        .collect();
    let spec = Arc::new(ConnectSpec {
        urls: urls.clone(),
        addr,
        sources,
        heartbeat: Duration::from_secs_f64(args.heartbeat_secs),
        deflate: args.deflate,
        read_every: args.read_every.max(1),
    });
    assert!(args.rates.len() + 2 <= MAX_STEPS, "too many rates");
    let fleet = Arc::new(Fleet::new(urls.len()));
    let publisher = Publisher::start(
        fleet.clone(),
        &args.trigger,
        &paths,
        args.payload,
        args.body == "json",
    )
    .expect("publisher");
    let mut ctx = Ctx {
        probe: None,
        gate: Arc::new(Semaphore::new(args.connect_concurrency.max(1))),
        fleet,
        spec,
        publisher,
        next_id: 0,
        args,
    };
    let label = ctx.args.label.clone();
    let pid = ctx.args.server_pid;

    let before = sample(pid);
    let connect_secs = ctx.fill(ctx.args.sockets).await;
    if ctx.args.probe_ms > 0 {
        let interval = Duration::from_millis(ctx.args.probe_ms);
        ctx.probe = Some(
            Probe::start(
                urls[0].clone(),
                addr,
                ctx.args.deflate,
                interval,
                ctx.fleet.clone(),
            )
            .expect("probe"),
        );
    }
    let open = ctx.fleet.open.load(Ordering::Relaxed);
    eprintln!("[{label}] {open} sockets open in {connect_secs:.1} s; settling");
    tokio::time::sleep(Duration::from_secs_f64(ctx.args.settle_secs)).await;
    let idle = sample(pid);
    let per_socket = match (before, idle) {
        (Some(b), Some(i)) if open > 0 => {
            Some(i.rss_bytes.saturating_sub(b.rss_bytes) / open as u64)
        }
        _ => None,
    };
    if let Some(p) = per_socket {
        eprintln!("[{label}] idle server RSS: {} KiB per socket", p / 1024);
    }

    let mut steps = Vec::new();
    let rates = ctx.args.rates.clone();
    for (i, &rate) in rates.iter().enumerate() {
        let step = ctx.step(i + 1, rate, ctx.args.step_secs).await;
        let kept_up = step["rate_published"].as_f64().unwrap_or(0.0) >= 0.8 * rate;
        let stop = !ok(&step, ctx.args.stop_p99_ms) || !kept_up;
        steps.push(step);
        if stop {
            eprintln!("[{label}] saturated: sweep stops");
            break;
        }
    }
    let best250 = best(&steps, 250.0).cloned();
    let best100 = best(&steps, 100.0).cloned();
    let saturation = steps
        .iter()
        .filter_map(|s| s["deliveries_per_sec"].as_f64())
        .fold(0.0, f64::max);

    let mut half = Value::Null;
    if let (true, Some(b)) = (ctx.args.half_rate_step, &best250) {
        let rate = b["rate_target"].as_f64().unwrap_or(1.0) / 2.0;
        let target = ctx.args.sockets;
        if ctx.fleet.open.load(Ordering::Relaxed) < target {
            eprintln!("[{label}] reopening closed sockets before the half-rate step");
            ctx.fill(target).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        half = ctx
            .step(steps.len() + 1, rate, ctx.args.step_secs * 2.0)
            .await;
    }

    let (_, idle_hb, _) = ctx.fleet.step(0);
    let result = json!({
        "label": label,
        "transport": ctx.args.transport,
        "url": ctx.args.url,
        "sockets_target": ctx.args.sockets,
        "sockets_open": open,
        "connect_secs": connect_secs,
        "connect_failures": ctx.fleet.connect_failures.load(Ordering::Relaxed),
        "payload_pad_bytes": ctx.args.payload,
        "payload_body": ctx.args.body,
        "message_bytes_example": message_example(&ctx.args),
        "deflate_offered": ctx.args.deflate,
        "read_every": ctx.args.read_every,
        "heartbeat_secs": ctx.args.heartbeat_secs,
        "server_rss_before_bytes": before.map(|s| s.rss_bytes),
        "server_rss_idle_bytes": idle.map(|s| s.rss_bytes),
        "server_rss_per_socket_bytes": per_socket,
        "idle_heartbeat": hist_json(&idle_hb),
        "paths": urls.len(),
        "probe_ms": ctx.args.probe_ms,
        "idle_probe_heartbeat": ctx.probe.as_ref().map(|p| hist_json(&p.steps[0])),
        "probe_unanswered": ctx.probe.as_ref().map(|p| p.unanswered.load(Ordering::Relaxed)),
        "heartbeats_unanswered": ctx.fleet.heartbeats_unanswered.load(Ordering::Relaxed),
        "steps": steps,
        "half_rate_step": half,
        "summary": {
            "best_p99_250": best250.as_ref().map(|s| json!({"rate": s["rate_target"], "deliveries_per_sec": s["deliveries_per_sec"], "p99_ms": s["latency"]["p99_ms"]})),
            "best_p99_100": best100.as_ref().map(|s| json!({"rate": s["rate_target"], "deliveries_per_sec": s["deliveries_per_sec"], "p99_ms": s["latency"]["p99_ms"]})),
            "saturation_deliveries_per_sec": saturation,
            "half_rate_heartbeat_p99_ms": half["heartbeat"]["p99_ms"],
            "half_rate_probe_heartbeat_p99_ms": half["probe_heartbeat"]["p99_ms"],
            "misdelivered": ctx.fleet.misdelivered.load(Ordering::Relaxed),
        },
        "errors": ctx.fleet.errors.lock().unwrap().clone(),
    });
    let text = serde_json::to_string_pretty(&result).unwrap();
    println!("{text}");
    if let Some(out) = &ctx.args.out {
        std::fs::write(out, text + "\n").expect("write --out");
    }
    std::process::exit(0);
}
