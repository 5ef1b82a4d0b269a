//! Real `nats-server`, `redis-server` and Node.js moleculer processes on 127.0.0.1 for the
//! cluster tests. Each waits for the process's own "ready" log line (no sleeps) and kills the
//! process on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;

use super::WAIT;

/// Forwards every line of `pipe` to the returned channel, until the pipe closes.
fn lines(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                // Nobody listens any more: keep draining so the process never blocks.
                continue;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle`; returns it. Panics with the log so far on timeout.
fn wait_for_line(rx: &Receiver<String>, needle: &str, what: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT * 2;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(line) => seen.push(line),
            Err(_) => panic!(
                "{what} never logged {needle:?}; its output:\n{}",
                seen.join("\n")
            ),
        }
    }
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// A free port on 127.0.0.1 (bound, then released for the server to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// `nats-server` on 127.0.0.1, on a port of its choosing; can be stopped and started again
/// on the same port.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    /// JetStream's store (kept across a stop and start, removed on drop).
    store: Option<PathBuf>,
}

impl NatsServer {
    pub fn start() -> Self {
        let mut server = Self {
            child: None,
            port: 0,
            store: None,
        };
        server.spawn(None);
        server
    }

    /// With JetStream (`-js`), its store in a fresh temporary folder.
    pub fn start_jetstream() -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let store = std::env::temp_dir().join(format!("mws-js-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&store);
        let mut server = Self {
            child: None,
            port: 0,
            store: Some(store),
        };
        server.spawn(None);
        server
    }

    fn spawn(&mut self, port: Option<u16>) {
        let port_arg = port.map_or("-1".to_owned(), |p| p.to_string());
        let mut command = Command::new("nats-server");
        command.args(["-a", "127.0.0.1", "-p", &port_arg]);
        if let Some(store) = &self.store {
            command.arg("-js").arg("-sd").arg(store);
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nats-server not found: apt-get install nats-server");
        let log = lines(child.stderr.take().expect("stderr"));
        self.child = Some(child);
        let listening = wait_for_line(&log, "Listening for client connections on", "nats-server");
        self.port = listening
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .expect("nats-server port");
        wait_for_line(&log, "Server is ready", "nats-server");
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (no goodbye to clients, as a crash).
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts it again on the same port.
    pub fn start_again(&mut self) {
        self.spawn(Some(self.port));
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        kill(&mut self.child);
        if let Some(store) = &self.store {
            let _ = std::fs::remove_dir_all(store);
        }
    }
}

/// `redis-server` on 127.0.0.1 and a free port, without persistence; can be stopped and
/// started again on the same port.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    pub fn start() -> Self {
        let mut server = Self {
            child: None,
            port: free_port(),
        };
        server.start_again();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (no goodbye to clients, as a crash).
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts it (again) on its port.
    pub fn start_again(&mut self) {
        let mut child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server not found: apt-get install redis-server");
        let log = lines(child.stdout.take().expect("stdout"));
        self.child = Some(child);
        wait_for_line(&log, "Ready to accept connections", "redis-server");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// The folder of the Node.js interop broker (`tests/moleculer-node`).
pub fn moleculer_node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/moleculer-node")
}

/// A Node.js moleculer broker (`tests/moleculer-node/broker.js`), driven line by line.
pub struct NodeBroker {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    replies: Receiver<String>,
}

impl NodeBroker {
    /// Starts it and waits until it has seen the gateway's `websocket` service.
    pub fn start(transporter: &str, node_id: &str) -> Self {
        let mut child = Command::new("node")
            .arg("broker.js")
            .args([transporter, node_id])
            .current_dir(moleculer_node_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node not found");
        let replies = lines(child.stdout.take().expect("stdout"));
        let stdin = child.stdin.take();
        let broker = Self {
            child: Some(child),
            stdin,
            replies,
        };
        wait_for_line(&broker.replies, "@@ {\"ready\":true}", "the node broker");
        broker
    }

    /// Sends one command and returns its reply.
    pub fn command(&mut self, cmd: serde_json::Value) -> serde_json::Value {
        self.send(cmd);
        let line = wait_for_line(&self.replies, "@@ ", "the node broker");
        serde_json::from_str(line.trim_start_matches("@@ ")).expect("reply JSON")
    }

    /// Sends one command without waiting for its reply (see [`reply_within`](Self::reply_within)).
    pub fn send(&mut self, cmd: serde_json::Value) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{cmd}").expect("write to node");
        stdin.flush().expect("flush");
    }

    /// The next reply, waiting at most `wait`.
    pub fn reply_within(&mut self, wait: std::time::Duration) -> serde_json::Value {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.replies.recv_timeout(left) {
                Ok(line) if line.starts_with("@@ ") => {
                    return serde_json::from_str(&line[3..]).expect("reply JSON")
                }
                Ok(_) => {}
                Err(_) => panic!("the node broker did not reply within {wait:?}"),
            }
        }
    }
}

impl Drop for NodeBroker {
    fn drop(&mut self) {
        self.stdin.take();
        kill(&mut self.child);
    }
}
