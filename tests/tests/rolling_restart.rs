//! A rolling restart of a cluster, end to end (README "Message recovery", cluster model):
//! three gateway programs on one NATS JetStream (or one Redis) behind a round-robin TCP
//! balancer, 1,000 recovering Rust clients and a browser page through the balancer, a Node.js
//! moleculer broker broadcasting 100 messages a second; each gateway is stopped with SIGTERM
//! (its sockets get 1012 and reconnect through the balancer to another gateway) and started
//! again, in turn; then the one that stores the history is killed with SIGKILL and started
//! again. Every client must receive every message exactly once, in order, and every reconnect
//! must be `recovered: true`.
//!
//! Needs the gateway program (`target/<profile>/moleculer-ws-server`, built by `cargo test
//! --workspace`; or `MWS_SERVER_BIN`), `nats-server`, `redis-server`, Node.js with
//! `tests/moleculer-node` and `js/` installed (`npm ci`), and Chromium.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../server/tests/support/servers.rs"]
#[allow(dead_code)]
mod servers;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moleculer_ws_client::{Client, Event, ReconnectPolicy, WebSocketConfig};
use moleculer_ws_conformance::Balancer;
use serde_json::{json, Value};
use servers::{NatsServer, NodeBroker, RedisServer};

/// What `servers` waits for a process at most (twice this for its ready line).
const WAIT: Duration = Duration::from_secs(15);
const PATH: &str = "/ws/rolling";
const CLIENTS: usize = 1000;
/// Messages per broadcast run of the Node.js broker (at 100 per second).
const CHUNK: u64 = 500;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The gateway program: `MWS_SERVER_BIN`, else the one beside this test's own build.
fn gateway_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("MWS_SERVER_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let bin = dir.join("moleculer-ws-server");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p moleculer-ws-server)",
        bin.display()
    );
    bin
}

/// One gateway program, restartable on its port.
struct Program {
    child: Option<Child>,
    port: u16,
    node: String,
    url: String,
}

impl Program {
    fn start(transporter: &str, node: &str, port: u16) -> Program {
        let mut p = Program {
            child: None,
            port,
            node: node.to_owned(),
            url: transporter.to_owned(),
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let js = repo().join("js");
        let mut child = Command::new(gateway_bin())
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--transporter", &self.url, "--node-id", &self.node])
            .args(["--shared-history", "on", "--trigger", "--static-dir"])
            .arg(js)
            .args([
                "--protocol-version",
                "5",
                "--cluster-heartbeat-interval",
                "1s",
            ])
            .args(["--shutdown-timeout", "5s"])
            // Every client comes from the balancer's address: the per-address replay budget
            // would hold back a thousand replays at once (README: behind a balancer).
            .args(["--recovery-replay-rate", "1000000000"])
            .env(
                "RUST_LOG",
                std::env::var("MWS_GATEWAY_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the gateway program");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .rsplit(' ')
            .next()
            .unwrap()
            .trim_end_matches('/');
        self.port = base.rsplit(':').next().unwrap().parse().unwrap();
        self.child = Some(child);
    }

    fn addr(&self) -> std::net::SocketAddr {
        format!("127.0.0.1:{}", self.port).parse().unwrap()
    }

    /// SIGTERM (sockets get 1012, the cluster DISCONNECT) or SIGKILL (nothing at all), wait
    /// for the exit, start again on the same port.
    fn restart(&mut self, signal: &str) {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = child.wait().unwrap();
        if signal == "-TERM" {
            assert!(exit.success(), "{} exited with {exit:?}", self.node);
        }
        self.spawn();
    }

    /// The sockets it holds at `PATH`.
    async fn sockets(&self) -> usize {
        let url = format!("http://{}/api/websocket/clients", self.addr());
        let Ok(resp) = reqwest::get(url).await else {
            return 0;
        };
        let counts: Value = resp.json().await.unwrap_or(Value::Null);
        counts[PATH].as_u64().unwrap_or(0) as usize
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What one client saw.
#[derive(Default, Debug)]
struct Seen {
    msgs: Vec<u64>,
    /// Every other event, with the number of messages before it (for a failure's report).
    log: Vec<(usize, String)>,
    recoveries: Vec<(bool, u64)>,
    resyncs: usize,
}

/// The browser page (`js/test/rolling-page.mjs`).
struct Page {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Page {
    fn start(base: &str) -> Page {
        let mut child = Command::new("node")
            .arg("test/rolling-page.mjs")
            .arg(format!("{base}/test/pages/probe.html"))
            .arg(format!("{}{PATH}", base.replacen("http", "ws", 1)))
            .current_dir(repo().join("js"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(json) = line.strip_prefix("@@ ") {
                    let _ = tx.send(json.to_owned());
                }
            }
        });
        let stdin = child.stdin.take();
        let page = Page {
            child,
            stdin,
            lines,
        };
        let ready = page
            .lines
            .recv_timeout(WAIT * 2)
            .expect("the page never opened");
        assert_eq!(ready, r#"{"ready":true}"#);
        page
    }

    fn report(&mut self) -> Value {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "report").unwrap();
        stdin.flush().unwrap();
        serde_json::from_str(&self.lines.recv_timeout(WAIT).unwrap()).unwrap()
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.wait();
    }
}

/// One recovering client through the balancer. Counts its first answer in `opened`, raises
/// `newest` to the newest message it got, and ends once `last` (0 until known) arrived.
async fn run_client(
    base: String,
    opened: Arc<AtomicUsize>,
    newest: Arc<AtomicU64>,
    last: Arc<AtomicU64>,
) -> Seen {
    let client = Client::builder().base_url(&base).build().unwrap();
    let config = WebSocketConfig::default().recover(true).reconnect(
        ReconnectPolicy::exponential()
            .delay(Duration::from_millis(100))
            .max_delay(Duration::from_secs(1))
            .jitter(true),
    );
    let (ws, mut events) = client.ws(PATH, config).unwrap();
    ws.connect().await.unwrap();
    let mut seen = Seen::default();
    loop {
        let last = last.load(Ordering::Relaxed);
        if last > 0 && seen.msgs.last() == Some(&last) {
            break;
        }
        // Woken at least every 200 ms to see whether the last message is known.
        let Ok(event) = tokio::time::timeout(Duration::from_millis(200), events.recv()).await
        else {
            continue;
        };
        match event {
            Some(Event::Message(m)) => {
                let n: u64 = m.parse().unwrap();
                newest.fetch_max(n, Ordering::Relaxed);
                seen.msgs.push(n);
            }
            Some(Event::Recovery {
                recovered,
                replayed,
            }) => {
                seen.log
                    .push((seen.msgs.len(), format!("recovery {recovered} {replayed}")));
                if seen.recoveries.is_empty() {
                    opened.fetch_add(1, Ordering::Relaxed);
                }
                seen.recoveries.push((recovered, replayed));
            }
            Some(Event::Resync) => seen.resyncs += 1,
            Some(e) => seen.log.push((seen.msgs.len(), format!("{e:?}"))),
            None => break,
        }
    }
    ws.disconnect().await;
    seen
}

/// One rolling restart at a time: each takes the machine's two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn rolling_restart(url: &str) {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut gateways: Vec<Program> = (0..3)
        .map(|i| Program::start(url, &format!("gw-{i}"), 0))
        .collect();
    let balancer = Balancer::start(gateways.iter().map(Program::addr).collect())
        .await
        .unwrap();
    let base = format!("http://{}", balancer.local_addr());
    let node = NodeBroker::start(url, "publisher");

    // The clients, 50 at a time, until every one has its first answer.
    let opened = Arc::new(AtomicUsize::new(0));
    let newest = Arc::new(AtomicU64::new(0));
    let last = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let (o, n, l) = (opened.clone(), newest.clone(), last.clone());
        let base = format!("{base}/");
        clients.push(tokio::spawn(
            async move { (i, run_client(base, o, n, l).await) },
        ));
        if i % 50 == 49 {
            let want = i + 1;
            wait_until("clients open", || opened.load(Ordering::Relaxed) >= want).await;
        }
    }
    let mut page = Page::start(&base);

    // The broadcasts: runs of CHUNK messages at 100/s until the restarts are done (and one
    // more run after them).
    let restarted = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let publisher = {
        let (restarted, sent) = (restarted.clone(), sent.clone());
        let mut node = node;
        std::thread::spawn(move || {
            let mut after = 0;
            loop {
                let from = sent.load(Ordering::Relaxed) + 1;
                node.send(
                    json!({"pace": {"path": PATH, "from": from, "count": CHUNK, "rate": 100}}),
                );
                let reply = node.reply_within(Duration::from_secs(60));
                assert_eq!(reply, json!({"sent": CHUNK}));
                sent.fetch_add(CHUNK, Ordering::Relaxed);
                if restarted.load(Ordering::Relaxed) {
                    after += 1;
                    if after == 2 {
                        return node;
                    }
                }
            }
        })
    };

    // Each gateway stopped with SIGTERM in turn; then the one that stores (the oldest now,
    // gw-0) killed with SIGKILL.
    let steps = [(0, "-TERM"), (1, "-TERM"), (2, "-TERM"), (0, "-KILL")];
    for (i, signal) in steps {
        // 150 messages (1.5 s) of traffic, then the restart; the next one once every socket
        // is back.
        let from = newest.load(Ordering::Relaxed);
        wait_until("traffic", || newest.load(Ordering::Relaxed) >= from + 150).await;
        let g = &mut gateways[i];
        tokio::task::block_in_place(|| g.restart(signal));
        let deadline = tokio::time::Instant::now() + WAIT * 2;
        loop {
            let mut n = 0;
            for g in &gateways {
                n += g.sockets().await;
            }
            if n == CLIENTS + 1 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} sockets after restart {i}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    restarted.store(true, Ordering::Relaxed);
    let node = tokio::task::spawn_blocking(move || publisher.join().unwrap())
        .await
        .unwrap();
    let total = sent.load(Ordering::Relaxed);
    last.store(total, Ordering::Relaxed);

    let mut reconnects = 0;
    let mut replayed = 0;
    let expected: Vec<u64> = (1..=total).collect();
    for c in clients {
        let (i, seen) = tokio::time::timeout(WAIT * 4, c)
            .await
            .expect("a client never got the last message")
            .unwrap();
        if seen.msgs != expected {
            let at = seen.msgs.iter().zip(&expected).position(|(a, b)| a != b);
            let from = at.unwrap_or(seen.msgs.len()).saturating_sub(3);
            panic!(
                "client {i}: {} messages, first wrong at {at:?}: {:?}; recoveries {:?}, \
                 resyncs {}; events {:?}",
                seen.msgs.len(),
                &seen.msgs[from..(from + 8).min(seen.msgs.len())],
                seen.recoveries,
                seen.resyncs,
                seen.log
            );
        }
        assert_eq!(seen.recoveries.first(), Some(&(false, 0)), "client {i}");
        assert!(seen.recoveries.len() >= 2, "client {i} never reconnected");
        assert!(
            seen.recoveries[1..].iter().all(|(r, _)| *r),
            "client {i}: a reconnect not recovered: {:?}",
            seen.recoveries
        );
        assert_eq!(seen.resyncs, 0, "client {i}");
        reconnects += seen.recoveries.len() - 1;
        replayed += seen.recoveries.iter().map(|(_, n)| n).sum::<u64>();
    }
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    let report = loop {
        let report = tokio::task::block_in_place(|| page.report());
        if report["msgs"].as_array().unwrap().last() == Some(&json!(total)) {
            break report;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page never got message {total}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let msgs: Vec<u64> = serde_json::from_value(report["msgs"].clone()).unwrap();
    assert!(msgs == expected, "the page: {} messages", msgs.len());
    let opens = report["opens"].as_array().unwrap();
    assert_eq!(opens[0], json!({"recovered": false, "replayed": 0}));
    assert!(opens.len() >= 2, "the page never reconnected");
    assert!(
        opens[1..].iter().all(|o| o["recovered"] == json!(true)),
        "{opens:?}"
    );
    assert_eq!(report["resyncs"], json!(0));
    assert_eq!(report["errors"], json!([]));
    drop(node);
    println!(
        "rolling restart on {url}: {CLIENTS} clients and a page, {last} messages each, \
         {reconnects} client reconnects (all recovered, {replayed} messages replayed)",
        last = total
    );
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_on_nats_jetstream_loses_nothing() {
    let nats = NatsServer::start_jetstream();
    rolling_restart(&nats.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_on_redis_loses_nothing() {
    let redis = RedisServer::start();
    rolling_restart(&redis.url()).await;
}
