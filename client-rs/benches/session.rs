//! Micro-benchmarks of the runtime-free session core (issue #6): message classification and
//! the steady-state cycles a driver runs, each next to a baseline in the same group so the
//! results read as ratios.
//!
//! - `classification/*`: a received text frame to what the application gets, through the
//!   public API the drivers use (`Session::on_text` then `Session::poll_action`), against a
//!   naive client's `serde_json::from_str::<Value>` of the same text and against copying the
//!   text (the floor: the session keeps the frame as an owned `String`);
//! - `deliver`: N messages through an open session, against a copy into a queue;
//! - `heartbeat_cycle`: ticks every `interval / 3` until `!` is due, the `!` answered, the
//!   round trip reported; against the same rule in a bare struct;
//! - `reconnect_cycle`: lost, backoff delay, reconnect at the deadline, open; against the bare
//!   `backon` delay computation.
//!
//! Time is a scripted clock (`Millis` values fed in): nothing sleeps. Each bench checks once,
//! outside the timed loop, that it exercises what it names. No timing is asserted.
//!
//! ```sh
//! cargo bench -p moleculer-ws-client --bench session
//! bench/criterion.sh    # the same, plus a table and bench/results/criterion.json
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use moleculer_ws_client::session::{Action, Millis, Session, SessionConfig};
use moleculer_ws_client::{ConnectionState, Event, Message};
use serde_json::Value;

/// A 16-hex-digit epoch of the recovery extension.
const EPOCH: &str = "00000000000000aa";
/// Recovery frames fed between two position resets (kept small so they stay in cache, like
/// the single frame of the other classification benches).
const ENVELOPE_CHUNK: u64 = 256;
/// Messages per iteration of the `deliver` group.
const DELIVER_N: usize = 1000;

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20)
}

// ---------------------------------------------------------------------------------------------
// Frames

/// A chat-like JSON object of about `size` bytes.
fn object_of(size: usize) -> String {
    let head = r#"{"user":"ann","room":"ws/chat","ts":1718000000000,"seq":42,"text":""#;
    let tail = r#""}"#;
    let pad = size.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "x".repeat(pad))
}

/// A JSON object of about `size` bytes with nested structure (an array of small objects).
fn snapshot_of(size: usize) -> String {
    let mut s = String::from(r#"{"type":"snapshot","items":["#);
    let mut i = 0;
    while s.len() + 80 < size {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            r#"{{"id":{i},"name":"item-{i:04}","price":{}.5,"tags":["a","bc"],"ok":true}}"#,
            i * 3
        ));
        i += 1;
    }
    s.push_str("]}");
    s
}

/// One classification input: its label, the frame as received, and the JSON text a naive
/// client would parse (the frame itself, except for the recovery envelope's body).
struct Frame {
    label: &'static str,
    text: String,
    body: String,
    expect: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// Delivered as `Event::Message`, `Message::json()` is an object.
    JsonObject,
    /// Delivered as `Event::Message` with raw text only.
    Text,
    /// The heartbeat answer: no message.
    HeartbeatReply,
}

fn frames() -> Vec<Frame> {
    let obj = object_of(100);
    let frame = |label, text: String, expect| Frame {
        label,
        body: text.clone(),
        text,
        expect,
    };
    vec![
        frame("object_100B", obj.clone(), Kind::JsonObject),
        frame("object_4KiB", snapshot_of(4096), Kind::JsonObject),
        frame(
            "json_string",
            format!(
                "\"{}\"",
                "a JSON string frame, delivered as its raw text ".repeat(2)
            ),
            Kind::Text,
        ),
        frame(
            "plain_text",
            "plain text from the gateway: not JSON at all, handed on as it is, 100 bytes long.."
                .to_owned(),
            Kind::Text,
        ),
        frame("heartbeat", "!".to_owned(), Kind::HeartbeatReply),
        Frame {
            label: "envelope_100B",
            text: format!("#{EPOCH}:1:{obj}"),
            body: obj,
            expect: Kind::JsonObject,
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Session helpers

/// An open session at `Millis(0)`, its opening events drained.
fn open_session(config: SessionConfig) -> Session {
    let mut s = Session::new(config, 42).unwrap();
    s.connect(Millis(0));
    s.on_open(Millis(0));
    while s.poll_action().is_some() {}
    assert_eq!(s.state(), ConnectionState::Open);
    s
}

fn drain(s: &mut Session) -> Vec<Action> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

/// The message of the next action, which must be one.
fn next_message(s: &mut Session) -> Message {
    match s.poll_action() {
        Some(Action::Emit(Event::Message(m))) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// Checks once that feeding `frame` is classified as `expect`.
fn check_kind(s: &mut Session, text: &str, expect: Kind) {
    match expect {
        Kind::JsonObject => {
            s.on_text(Millis(1), text);
            let m = next_message(s);
            assert!(m.json().is_some_and(Value::is_object), "{text}");
        }
        Kind::Text => {
            s.on_text(Millis(1), text);
            let m = next_message(s);
            assert!(!m.is_json());
            assert_eq!(m.text(), text);
        }
        Kind::HeartbeatReply => {
            // With a `!` in flight, the answer reports a round trip.
            s.probe(Millis(1));
            assert_eq!(s.poll_action(), Some(Action::SendHeartbeat));
            s.on_text(Millis(2), text);
            assert!(matches!(
                s.poll_action(),
                Some(Action::Emit(Event::HeartbeatRoundTrip { .. }))
            ));
        }
    }
    assert_eq!(s.poll_action(), None);
}

/// The recovery frames 1..=n of the epoch: after `reset_position`, the session delivers each once.
fn envelopes(body: &str, n: u64) -> Vec<String> {
    (1..=n)
        .map(|seq| format!("#{EPOCH}:{seq}:{body}"))
        .collect()
}

/// Moves the session's recovery position back to 0 (untimed), so `envelopes` deliver again.
fn reset_position(s: &mut Session) {
    s.on_text(Millis(1), &format!("#reset:{EPOCH}:0"));
    while s.poll_action().is_some() {}
}

// ---------------------------------------------------------------------------------------------
// classification

fn classification(c: &mut Criterion) {
    let mut g = c.benchmark_group("classification");
    for f in frames() {
        g.throughput(Throughput::Bytes(f.text.len() as u64));
        let recover = f.label.starts_with("envelope");
        let cfg = SessionConfig::default().recover(recover);
        let json = f.expect == Kind::JsonObject;

        if recover {
            // The sequence numbers must grow: feed a chunk of frames per position reset.
            let chunk = &envelopes(&f.body, ENVELOPE_CHUNK);
            {
                let mut s = open_session(cfg.clone());
                reset_position(&mut s);
                check_kind(&mut s, &chunk[0], f.expect);
            }
            let run = |read_json: bool| {
                let mut s = open_session(cfg.clone());
                move |iters: u64| {
                    let mut total = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let n = left.min(ENVELOPE_CHUNK);
                        reset_position(&mut s);
                        let start = Instant::now();
                        for text in &chunk[..n as usize] {
                            s.on_text(Millis(1), black_box(text));
                            if read_json {
                                let m = next_message(&mut s);
                                black_box(m.json());
                                black_box(m);
                            } else {
                                black_box(s.poll_action());
                            }
                        }
                        total += start.elapsed();
                        left -= n;
                    }
                    total
                }
            };
            let mut deliver = run(false);
            g.bench_function(BenchmarkId::new("session", f.label), |b| {
                b.iter_custom(&mut deliver)
            });
            let mut deliver_json = run(true);
            g.bench_function(BenchmarkId::new("session_json", f.label), |b| {
                b.iter_custom(&mut deliver_json)
            });
        } else {
            let mut s = open_session(cfg.clone());
            check_kind(&mut s, &f.text, f.expect);
            g.bench_function(BenchmarkId::new("session", f.label), |b| {
                b.iter(|| {
                    s.on_text(Millis(1), black_box(&f.text));
                    s.poll_action()
                })
            });
            if json {
                g.bench_function(BenchmarkId::new("session_json", f.label), |b| {
                    b.iter(|| {
                        s.on_text(Millis(1), black_box(&f.text));
                        let m = next_message(&mut s);
                        black_box(m.json());
                        m
                    })
                });
            }
        }

        // The naive client: parse every frame (the envelope's body: the frame is not JSON).
        let naive_ok = !matches!(f.label, "plain_text" | "heartbeat");
        assert_eq!(serde_json::from_str::<Value>(&f.body).is_ok(), naive_ok);
        g.bench_function(BenchmarkId::new("serde_value", f.label), |b| {
            b.iter(|| serde_json::from_str::<Value>(black_box(&f.body)))
        });
        // The floor: the frame copied into an owned string.
        g.bench_function(BenchmarkId::new("copy", f.label), |b| {
            b.iter(|| black_box(f.text.as_str()).to_owned())
        });
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// deliver: N messages through an open session

fn deliver(c: &mut Criterion) {
    let text = object_of(100);
    let mut g = c.benchmark_group("deliver");
    g.throughput(Throughput::Elements(DELIVER_N as u64));

    let mut s = open_session(SessionConfig::default());
    for _ in 0..3 {
        check_kind(&mut s, &text, Kind::JsonObject);
    }
    let before = s.stats(Millis(1)).messages_received;
    g.bench_function(BenchmarkId::new("session", DELIVER_N), |b| {
        b.iter(|| {
            for _ in 0..DELIVER_N {
                s.on_text(Millis(1), black_box(&text));
                black_box(s.poll_action());
            }
        })
    });
    assert!(s.stats(Millis(1)).messages_received >= before + DELIVER_N as u64);

    // The floor of any queue-based delivery: copy into a queue, take it out.
    let mut q: VecDeque<String> = VecDeque::new();
    g.bench_function(BenchmarkId::new("queue_copy", DELIVER_N), |b| {
        b.iter(|| {
            for _ in 0..DELIVER_N {
                q.push_back(black_box(text.as_str()).to_owned());
                black_box(q.pop_front());
            }
        })
    });
    // The naive client: parse each one.
    g.bench_function(BenchmarkId::new("serde_value", DELIVER_N), |b| {
        b.iter(|| {
            for _ in 0..DELIVER_N {
                black_box(serde_json::from_str::<Value>(black_box(&text)).unwrap());
            }
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// heartbeat_cycle

/// The round trip of the `!` answer in the heartbeat benches.
const RTT: Duration = Duration::from_millis(5);

/// One heartbeat cycle with a scripted clock: run each due tick until one asks for `!`, answer
/// it `RTT` later, and take the round-trip event. Returns (ticks run, the round trip).
fn heartbeat_cycle(s: &mut Session, now: &mut Millis) -> (u32, Option<Duration>) {
    let mut ticks = 0;
    loop {
        *now = s.poll_timeout().unwrap();
        s.handle_timeout(*now);
        ticks += 1;
        match s.poll_action() {
            Some(Action::SendHeartbeat) => break,
            None => {}
            Some(other) => panic!("unexpected {other:?}"),
        }
    }
    *now = *now + RTT;
    s.on_text(*now, "!");
    let rtt = match s.poll_action() {
        Some(Action::Emit(Event::HeartbeatRoundTrip { rtt })) => Some(rtt),
        _ => None,
    };
    (ticks, rtt)
}

/// The same rule in a bare struct: the floor of any heartbeat implementation.
struct BareHeartbeat {
    interval: u64,
    timeout: u64,
    period: u64,
    last_sent: u64,
    last_received: u64,
    next_tick: u64,
    pending: bool,
}

impl BareHeartbeat {
    fn new(interval: u64, timeout: u64, now: u64) -> BareHeartbeat {
        BareHeartbeat {
            interval,
            timeout,
            period: interval / 3,
            last_sent: now,
            last_received: now,
            next_tick: now + interval / 3,
            pending: false,
        }
    }

    /// Returns whether to send `!` (panics on a loss, which the cycle never provokes).
    fn tick(&mut self, now: u64) -> bool {
        self.next_tick += self.period;
        if now - self.last_sent > self.interval {
            self.last_sent = now;
            self.pending = true;
            return true;
        }
        let lost = self.last_sent.saturating_sub(self.last_received) >= self.timeout
            && now - self.last_sent >= self.timeout;
        assert!(!lost);
        false
    }

    fn on_reply(&mut self, now: u64) -> Option<u64> {
        self.last_received = now;
        std::mem::take(&mut self.pending).then(|| now - self.last_sent)
    }

    fn cycle(&mut self, now: &mut u64) -> (u32, Option<u64>) {
        let mut ticks = 0;
        loop {
            *now = self.next_tick;
            ticks += 1;
            if self.tick(*now) {
                break;
            }
        }
        *now += 5;
        (ticks, self.on_reply(*now))
    }
}

fn heartbeat(c: &mut Criterion) {
    let mut g = c.benchmark_group("heartbeat_cycle");
    g.throughput(Throughput::Elements(1));
    let cfg = SessionConfig::default(); // 60 s / 10 s: a tick every 20 s, `!` every 4th tick

    let mut s = open_session(cfg.clone());
    let mut now = Millis(0);
    for _ in 0..3 {
        assert_eq!(heartbeat_cycle(&mut s, &mut now), (4, Some(RTT)));
        assert_eq!(s.poll_action(), None);
    }
    assert_eq!(s.state(), ConnectionState::Open);
    assert_eq!(s.stats(now).last_rtt, Some(RTT));
    g.bench_function(BenchmarkId::new("session", "60s"), |b| {
        b.iter(|| heartbeat_cycle(&mut s, &mut now))
    });

    let mut bare = BareHeartbeat::new(60_000, 10_000, 0);
    let mut t = 0;
    assert_eq!(bare.cycle(&mut t), (4, Some(5)));
    g.bench_function(BenchmarkId::new("bare_timer", "60s"), |b| {
        b.iter(|| bare.cycle(black_box(&mut t)))
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// reconnect_cycle

/// One reconnect cycle with a scripted clock: the open socket is lost (no close frame), the
/// backoff delay is computed, the deadline fires, the attempt opens. With `healthy`, a `!`
/// round trip first proves the connection healthy, which resets the backoff. Returns the delay.
fn reconnect_cycle(s: &mut Session, now: &mut Millis, healthy: bool) -> Duration {
    if healthy {
        s.probe(*now);
        *now = *now + RTT;
        s.on_text(*now, "!");
        while s.poll_action().is_some() {}
    }
    s.on_closed(*now, None, "");
    let mut delay = None;
    while let Some(a) = s.poll_action() {
        if let Action::Emit(Event::Reconnecting { delay: d, .. }) = a {
            delay = Some(d);
        }
    }
    *now = s.poll_timeout().unwrap();
    s.handle_timeout(*now);
    while s.poll_action().is_some() {}
    *now = *now + Duration::from_millis(10);
    s.on_open(*now);
    while s.poll_action().is_some() {}
    delay.unwrap()
}

fn reconnect(c: &mut Criterion) {
    let mut g = c.benchmark_group("reconnect_cycle");
    g.throughput(Throughput::Elements(1));
    let cfg = SessionConfig::default(); // exponential 3 s .. 30 s with jitter

    for (label, healthy) in [("session_flapping", false), ("session_after_healthy", true)] {
        let mut s = open_session(cfg.clone());
        let mut now = Millis(0);
        // Check the cycle once: the events, the states, the delay within the policy.
        {
            let mut probe = open_session(cfg.clone());
            let mut t = Millis(0);
            probe.on_closed(t, None, "");
            let a = drain(&mut probe);
            assert!(a.iter().any(|a| matches!(
                a,
                Action::Emit(Event::Closed {
                    will_reconnect: true,
                    ..
                })
            )));
            assert_eq!(probe.state(), ConnectionState::Waiting);
            t = probe.poll_timeout().unwrap();
            probe.handle_timeout(t);
            assert!(drain(&mut probe).contains(&Action::Connect));
            probe.on_open(t);
            assert_eq!(drain(&mut probe), vec![Action::Emit(Event::Open)]);
        }
        for _ in 0..3 {
            let d = reconnect_cycle(&mut s, &mut now, healthy);
            assert!(d >= Duration::from_secs(3) && d <= Duration::from_secs(30));
            assert_eq!(s.state(), ConnectionState::Open);
        }
        let before = s.stats(now).reconnects;
        g.bench_function(BenchmarkId::new(label, "default_policy"), |b| {
            b.iter(|| reconnect_cycle(&mut s, &mut now, healthy))
        });
        assert!(s.stats(now).reconnects > before);
    }

    // The bare delay computation (backon, as the session's policy configures it).
    let build = || {
        ExponentialBuilder::new()
            .with_factor(2.0)
            .with_min_delay(Duration::from_secs(3))
            .with_max_delay(Duration::from_secs(15))
            .with_jitter()
            .with_jitter_seed(42)
            .without_max_times()
            .build()
    };
    let mut delays = build();
    assert!(delays.next().is_some());
    g.bench_function(BenchmarkId::new("backon_next", "default_policy"), |b| {
        b.iter(|| delays.next())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = classification, deliver, heartbeat, reconnect
}
criterion_main!(benches);
