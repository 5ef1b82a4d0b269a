//! Client conformance: our Rust client through the fault proxy, fault by fault.
//!
//! Each case opens a client through a fresh [`FaultProxy`] to the gateway, injects one fault,
//! and checks what a user would see: the loss noticed in time (interval + timeout +
//! interval/3), the reconnect delay within the policy, messages delivered after recovery, and
//! exactly one socket at the gateway afterwards (no leaked connection, task or timer).

use std::net::SocketAddr;
use std::time::Duration;

use moleculer_ws_client::{
    Carrier, Client, Event, Events, ReconnectPolicy, Transport, WebSocket, WebSocketConfig,
};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::proxy::{Fault, FaultProxy};
use crate::report::{CaseResult, Outcome};

/// The gateway the clients talk to; it needs the trigger, the client count route
/// (`--trigger`) and the heartbeat fault hook of the reference gateway (`--test-hooks`, in a
/// build with the cargo feature `test-hooks`).
#[derive(Debug, Clone)]
pub struct ClientTarget {
    /// The gateway's address.
    pub gateway: SocketAddr,
    /// Heartbeat interval of the clients under test (default 600 ms).
    pub interval: Duration,
    /// Heartbeat timeout (default 200 ms).
    pub timeout: Duration,
    /// Fixed reconnect delay (default 300 ms).
    pub delay: Duration,
    /// Scheduling allowance added to every time bound (default 400 ms).
    pub slack: Duration,
}

impl ClientTarget {
    /// The defaults, against `gateway`.
    pub fn new(gateway: SocketAddr) -> Self {
        Self {
            gateway,
            interval: Duration::from_millis(600),
            timeout: Duration::from_millis(200),
            delay: Duration::from_millis(300),
            slack: Duration::from_millis(400),
        }
    }

    /// interval + timeout + interval/3: the contract's worst case to notice a dead link.
    pub fn detection_bound(&self) -> Duration {
        self.interval + self.timeout + self.interval / 3
    }
}

/// Runs the fault matrix against our Rust client.
pub async fn check_rust_client(target: ClientTarget) -> Vec<CaseResult> {
    let bound = target.detection_bound() + target.slack;
    let mut out = Vec::new();
    let cases: [(&str, String); 9] = [
        ("rust.pass", "messages delivered; one socket".into()),
        (
            "rust.blackhole",
            format!("loss noticed within {bound:?}, fixed delay, recovery"),
        ),
        (
            "rust.delay",
            "50 ms each way: no false alarm, RTT >= 100 ms, delivery".into(),
        ),
        (
            "rust.cut",
            "RST noticed at once, reconnect after the delay, recovery".into(),
        ),
        (
            "rust.slice",
            "bytes one at a time: handshake, heartbeat and a 20 KB message intact".into(),
        ),
        (
            "rust.silent-gateway",
            format!("gateway stops answering `!`: noticed within {bound:?}, recovery"),
        ),
        (
            "rust.sse.blackhole",
            format!("event stream: silence noticed within {bound:?}, fixed delay, recovery"),
        ),
        (
            "rust.sse.cut-recover",
            "event stream with recover: a cut under 200 msg/s loses nothing".into(),
        ),
        (
            "rust.auto.refuse-upgrades",
            "upgrades refused with 403: auto falls back to the stream, back to the WebSocket once allowed".into(),
        ),
    ];
    for (i, (case, expectation)) in cases.into_iter().enumerate() {
        let r = match i {
            0 => pass(&target, case).await,
            1 => blackhole(&target, case).await,
            2 => delay(&target, case).await,
            3 => cut(&target, case).await,
            4 => slice(&target, case).await,
            5 => silent(&target, case).await,
            6 => stream_blackhole(&target, case).await,
            7 => stream_cut_recover(&target, case).await,
            _ => auto_refused_upgrades(&target, case).await,
        };
        out.push(match r {
            Ok(d) => CaseResult::new(case, &expectation, Outcome::Pass, d),
            Err(d) => CaseResult::new(case, &expectation, Outcome::Fail, d),
        });
    }
    out
}

const WAIT: Duration = Duration::from_secs(10);

struct Run {
    proxy: FaultProxy,
    ws: WebSocket,
    events: Events,
    path: String,
    target: ClientTarget,
    http: reqwest::Client,
}

impl Run {
    async fn start(target: &ClientTarget, case: &str, initial: Fault) -> Result<Run, String> {
        Run::start_with(target, case, initial, |c| c).await
    }

    /// [`start`](Self::start) with the client's configuration changed by `configure`.
    async fn start_with(
        target: &ClientTarget,
        case: &str,
        initial: Fault,
        configure: impl FnOnce(WebSocketConfig) -> WebSocketConfig,
    ) -> Result<Run, String> {
        let proxy = FaultProxy::start(target.gateway)
            .await
            .map_err(|e| e.to_string())?;
        proxy.set(initial);
        let path = format!("/ws/clients/{case}");
        let config = WebSocketConfig::default()
            .heartbeat_interval(target.interval)
            .heartbeat_timeout(target.timeout)
            .connect_timeout(Duration::from_secs(1))
            .reconnect(ReconnectPolicy::fixed().delay(target.delay));
        let config = configure(config);
        let client = Client::builder().build().map_err(|e| e.to_string())?;
        let url = format!("ws://{}{path}", proxy.local_addr());
        let (ws, events) = client.ws(&url, config).map_err(|e| e.to_string())?;
        let run = Run {
            proxy,
            ws,
            events,
            path,
            target: target.clone(),
            http: reqwest::Client::new(),
        };
        tokio::time::timeout(WAIT, run.ws.connect())
            .await
            .map_err(|_| "connect timed out".to_owned())?
            .map_err(|e| format!("connect failed: {e}"))?;
        run.sockets_become(1).await?;
        Ok(run)
    }

    async fn http(
        &self,
        method: reqwest::Method,
        route: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("http://{}{route}", self.target.gateway);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("{route}: HTTP {}", resp.status()));
        }
        Ok(resp.json().await.unwrap_or(Value::Null))
    }

    async fn sockets(&self) -> Result<u64, String> {
        let counts = self
            .http(reqwest::Method::GET, "/api/websocket/clients", None)
            .await?;
        Ok(counts[&self.path].as_u64().unwrap_or(0))
    }

    /// Waits until the gateway counts `n` sockets at the path.
    async fn sockets_become(&self, n: u64) -> Result<(), String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let now = self.sockets().await?;
            if now == n {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("gateway counts {now} sockets, expected {n}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn heartbeat_replies(&self, on: bool) -> Result<(), String> {
        self.http(
            reqwest::Method::POST,
            "/api/test/heartbeat-replies",
            Some(json!({"on": on})),
        )
        .await
        .map(|_| ())
    }

    /// The first event matching `pred`, with when it came.
    async fn until(
        &mut self,
        what: &str,
        pred: impl Fn(&Event) -> bool,
    ) -> Result<(Event, Instant), String> {
        let deadline = Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => return Err(format!("no {what} within {WAIT:?}")),
                Ok(None) => return Err(format!("event stream ended before {what}")),
                Ok(Some(e)) if pred(&e) => return Ok((e, Instant::now())),
                Ok(Some(_)) => {}
            }
        }
    }

    /// Broadcasts `text` at the path and waits for it.
    async fn deliver(&mut self, data: Value) -> Result<(), String> {
        let want = data.to_string();
        self.http(
            reqwest::Method::POST,
            "/api/websocket/send",
            Some(json!({"path": self.path, "data": data})),
        )
        .await?;
        self.until(
            "the message",
            |e| matches!(e, Event::Message(m) if m.text() == want),
        )
        .await
        .map(|_| ())
    }

    /// After a fault at `fault_at`: the close must come within `bound`. Returns when it came.
    async fn lost(
        &mut self,
        fault_at: Instant,
        bound: Duration,
    ) -> Result<(Duration, Instant), String> {
        let (_, lost_at) = self
            .until("the close", |e| matches!(e, Event::Closed { .. }))
            .await?;
        let detected = lost_at - fault_at;
        if detected > bound {
            return Err(format!("loss noticed after {detected:?}, bound {bound:?}"));
        }
        Ok((detected, lost_at))
    }

    /// After the loss: the next attempt must come after the policy's delay, then the client
    /// must reopen and receive again.
    async fn recovered(&mut self, detected: Duration, lost_at: Instant) -> Result<String, String> {
        let (_, attempt_at) = self
            .until("a reconnect attempt", |e| {
                matches!(e, Event::Connecting { .. })
            })
            .await?;
        let waited = attempt_at - lost_at;
        let d = self.target.delay;
        if waited + Duration::from_millis(20) < d || waited > d + self.target.slack {
            return Err(format!("reconnected after {waited:?}, policy delay {d:?}"));
        }
        self.until("the reopen", |e| matches!(e, Event::Open))
            .await?;
        self.sockets_become(1).await?;
        self.deliver(json!("after recovery")).await?;
        Ok(format!(
            "noticed in {} ms, retried after {} ms, recovered",
            detected.as_millis(),
            waited.as_millis()
        ))
    }

    /// Blackholes the link: the loss must be noticed within the detection bound, then the
    /// client must recover as [`recovered`](Self::recovered) says; then [`finish`](Self::finish).
    async fn blackholed(mut self, t: &ClientTarget) -> Result<String, String> {
        let at = Instant::now();
        self.proxy.set(Fault::Blackhole);
        let (detected, lost_at) = self.lost(at, t.detection_bound() + t.slack).await?;
        self.proxy.set(Fault::Pass);
        let d = self.recovered(detected, lost_at).await?;
        self.finish(d).await
    }

    /// Disconnects and checks nothing is left: no socket at the gateway, no proxied connection.
    async fn finish(self, detail: String) -> Result<String, String> {
        let n = self.sockets().await?;
        if n != 1 {
            return Err(format!(
                "{detail}; but the gateway counts {n} sockets for one client"
            ));
        }
        tokio::time::timeout(WAIT, self.ws.disconnect())
            .await
            .map_err(|_| "disconnect timed out".to_owned())?;
        self.sockets_become(0).await?;
        Ok(detail)
    }
}

async fn pass(t: &ClientTarget, case: &str) -> Result<String, String> {
    let mut run = Run::start(t, case, Fault::Pass).await?;
    run.deliver(json!({"fault": "none"})).await?;
    run.finish("delivered".into()).await
}

async fn blackhole(t: &ClientTarget, case: &str) -> Result<String, String> {
    let mut run = Run::start(t, case, Fault::Pass).await?;
    run.until("a heartbeat round trip", |e| {
        matches!(e, Event::HeartbeatRoundTrip { .. })
    })
    .await?;
    run.blackholed(t).await
}

async fn delay(t: &ClientTarget, case: &str) -> Result<String, String> {
    let mut run = Run::start(t, case, Fault::Delay(Duration::from_millis(50))).await?;
    let mut rtts = Vec::new();
    while rtts.len() < 3 {
        let (e, _) = run
            .until("a round trip", |e| {
                matches!(e, Event::HeartbeatRoundTrip { .. } | Event::Closed { .. })
            })
            .await?;
        match e {
            Event::HeartbeatRoundTrip { rtt } => rtts.push(rtt),
            other => return Err(format!("false alarm under 50 ms latency: {other:?}")),
        }
    }
    if let Some(short) = rtts.iter().find(|r| **r < Duration::from_millis(100)) {
        return Err(format!("RTT {short:?} is below the injected 100 ms"));
    }
    run.deliver(json!("delayed")).await?;
    let ms: Vec<u128> = rtts.iter().map(Duration::as_millis).collect();
    run.finish(format!("3 round trips, RTT {ms:?} ms, delivered"))
        .await
}

async fn cut(t: &ClientTarget, case: &str) -> Result<String, String> {
    let mut run = Run::start(t, case, Fault::Pass).await?;
    let at = Instant::now();
    run.proxy.cut();
    // A reset is seen at once; allow only the slack, not the heartbeat bound.
    let (detected, lost_at) = run.lost(at, t.slack).await?;
    let d = run.recovered(detected, lost_at).await?;
    run.finish(d).await
}

async fn slice(t: &ClientTarget, case: &str) -> Result<String, String> {
    let mut run = Run::start(t, case, Fault::Slice).await?;
    run.until("a heartbeat round trip", |e| {
        matches!(e, Event::HeartbeatRoundTrip { .. })
    })
    .await?;
    run.deliver(json!({"big": "s".repeat(20 * 1024)})).await?;
    run.finish("handshake, heartbeat and 20 KB delivered byte by byte".into())
        .await
}

async fn silent(t: &ClientTarget, case: &str) -> Result<String, String> {
    let mut run = Run::start(t, case, Fault::Pass).await?;
    run.until("a heartbeat round trip", |e| {
        matches!(e, Event::HeartbeatRoundTrip { .. })
    })
    .await?;
    let at = Instant::now();
    run.heartbeat_replies(false).await?;
    let lost = run.lost(at, t.detection_bound() + t.slack).await;
    // Restore the gateway for everyone, whatever happened.
    run.heartbeat_replies(true).await?;
    let (detected, lost_at) = lost?;
    let d = run.recovered(detected, lost_at).await?;
    run.finish(d).await
}

async fn stream_blackhole(t: &ClientTarget, case: &str) -> Result<String, String> {
    let sse = |c: WebSocketConfig| c.transport(Transport::EventStream);
    let mut run = Run::start_with(t, case, Fault::Pass, sse).await?;
    run.deliver(json!("on the stream")).await?;
    run.blackholed(t).await
}

async fn stream_cut_recover(t: &ClientTarget, case: &str) -> Result<String, String> {
    let sse = |c: WebSocketConfig| c.transport(Transport::EventStream).recover(true);
    let mut run = Run::start_with(t, case, Fault::Pass, sse).await?;
    // 300 messages at about 200/s, cut after 100: the stream comes back with the rest.
    const TOTAL: u64 = 300;
    let http = run.http.clone();
    let url = format!("http://{}/api/websocket/send", t.gateway);
    let path = run.path.clone();
    let sending = tokio::spawn(async move {
        for n in 1..=TOTAL {
            let body = json!({"path": path, "data": n});
            if http.post(&url).json(&body).send().await.is_err() {
                return Err(format!("broadcast {n} failed"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    });
    let mut got = Vec::new();
    let mut recovered = None;
    let deadline = Instant::now() + WAIT * 2;
    while got.last() != Some(&TOTAL) {
        match tokio::time::timeout_at(deadline, run.events.recv()).await {
            Err(_) => return Err(format!("{} of {TOTAL} messages arrived", got.len())),
            Ok(None) => return Err("event stream ended".into()),
            Ok(Some(Event::Message(m))) => {
                got.push(m.text().parse::<u64>().map_err(|e| e.to_string())?);
                if got.len() == 100 {
                    run.proxy.cut();
                }
            }
            Ok(Some(Event::Recovery {
                recovered: r,
                replayed,
            })) if got.len() >= 100 => recovered = Some((r, replayed)),
            Ok(Some(Event::Resync)) => return Err("resync after the cut".into()),
            Ok(Some(_)) => {}
        }
    }
    sending.await.map_err(|e| e.to_string())??;
    if got != (1..=TOTAL).collect::<Vec<_>>() {
        return Err(format!("not every message once and in order: {got:?}"));
    }
    let Some((true, replayed)) = recovered else {
        return Err(format!("the reconnect was not recovered: {recovered:?}"));
    };
    run.sockets_become(1).await?;
    run.finish(format!(
        "cut after 100 of {TOTAL}: recovered, {replayed} replayed, every message once in order"
    ))
    .await
}

async fn auto_refused_upgrades(t: &ClientTarget, case: &str) -> Result<String, String> {
    let auto = |c: WebSocketConfig| {
        c.transport(Transport::Auto)
            .websocket_retry(Duration::from_secs(1))
    };
    let mut run = Run::start_with(t, case, Fault::RefuseUpgrades, auto).await?;
    let refused = run.proxy.refused_upgrades();
    if refused < 2 {
        return Err(format!("open after {refused} refused upgrades, expected 2"));
    }
    // Every broadcast arrives over the stream.
    for n in 0..20 {
        run.deliver(json!({"over the stream": n})).await?;
    }
    // Upgrades pass again: the next try of the WebSocket (1 s after the stream opened) stays.
    run.proxy.set(Fault::Pass);
    run.until("the switch back", |e| {
        matches!(e, Event::Transport(Carrier::WebSocket))
    })
    .await?;
    run.until("the reopen", |e| matches!(e, Event::Open))
        .await?;
    run.until("a heartbeat round trip on the WebSocket", |e| {
        matches!(e, Event::HeartbeatRoundTrip { .. })
    })
    .await?;
    run.deliver(json!("over the WebSocket")).await?;
    run.finish(format!(
        "{refused} upgrades refused, 20 delivered on the stream, then on the WebSocket"
    ))
    .await
}
