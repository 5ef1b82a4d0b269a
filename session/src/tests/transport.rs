//! The event-stream transport and `Transport::Auto` on a scripted clock: what the session
//! delivers from a stream's bytes, the heartbeat without `!`, and when `auto` changes carrier.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const EPOCH: &str = "00000000000000ff";

fn stream_config() -> SessionConfig {
    config().transport(Transport::EventStream)
}

fn auto_config() -> SessionConfig {
    config()
        .transport(Transport::Auto)
        .websocket_retry(ms(10_000))
}

fn messages(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Emit(Event::Message(m)) => Some(m.text().to_owned()),
            _ => None,
        })
        .collect()
}

impl Scenario {
    fn feed(&mut self, bytes: &str) -> Vec<Action> {
        self.s.on_event_stream(self.now, bytes.as_bytes());
        self.actions()
    }

    fn fail(&mut self, failure: ConnectFailure) -> Vec<Action> {
        self.s.on_connect_failed(self.now, failure);
        self.actions()
    }
}

#[test]
fn a_stream_delivers_its_events_as_messages_and_sends_nothing() {
    let sc = Scenario::new(stream_config());
    assert_eq!(sc.s.carrier(), Carrier::EventStream);
    let mut sc = sc.opened();
    let a = sc.feed(":\ndata: {\"a\":1}\n\ndata: \"hi\"\n\nevent: other\ndata: x\n\nda");
    assert_eq!(messages(&a), vec!["{\"a\":1}", "\"hi\""]);
    // The rest of an event in the next chunk.
    assert_eq!(messages(&sc.feed("ta: 42\n\n")), vec!["42"]);
    assert_eq!(sc.s.stats(sc.now).messages_received, 3);
    // Keep-alives within interval + timeout (400 ms) keep it open; no `!` is ever sent.
    for t in (300..=3000).step_by(300) {
        let a = sc.advance_to(t);
        assert!(!has(&a, &Action::SendHeartbeat), "{a:?}");
        assert!(
            !a.iter().any(|a| matches!(a, Action::Close { .. })),
            "{a:?}"
        );
        sc.feed(":\n");
    }
    sc.s.probe(sc.now);
    assert!(sc.actions().is_empty(), "a probe sends nothing on a stream");
}

#[test]
fn a_silent_stream_is_a_lost_link() {
    let mut sc = Scenario::new(stream_config()).opened();
    sc.feed(":\n");
    assert!(sc.advance_to(400).is_empty());
    let a = sc.advance_to(500);
    assert_eq!(a[0], Action::Close { code: 1001 });
    assert!(has(&a, &Action::Emit(Event::Error(Error::HeartbeatLost))));
    assert!(reconnecting(&a).is_some());
    assert_eq!(sc.s.carrier(), Carrier::EventStream);
}

#[test]
fn with_recover_the_frames_are_the_recovery_frames_and_the_query_asks_for_frames() {
    let mut sc = Scenario::new(stream_config().recover(true));
    sc.s.connect(sc.now);
    sc.actions();
    assert_eq!(
        sc.s.connect_query(),
        [("recover", "1".to_owned()), ("frames", "1".to_owned())]
    );
    sc.s.on_open(sc.now);
    sc.actions();
    let a = sc.feed(&format!(
        "data: #reset:{EPOCH}:0\n\ndata: #{EPOCH}:1:1\n\ndata: #{EPOCH}:2:2\n\n\
         data: #{EPOCH}:2:2\n\ndata: !\n\n"
    ));
    assert!(has(
        &a,
        &Action::Emit(Event::Recovery {
            recovered: false,
            replayed: 0
        })
    ));
    assert_eq!(messages(&a), vec!["1", "2"], "the duplicate is dropped");
    assert_eq!(sc.s.recovery_position(), Some((EPOCH, 2)));
    sc.s.on_closed(sc.now, None, "");
    sc.actions();
    sc.advance_to(10_000);
    assert_eq!(
        sc.s.connect_query(),
        [
            ("recover", "1".to_owned()),
            ("epoch", EPOCH.to_owned()),
            ("seq", "2".to_owned()),
            ("frames", "1".to_owned())
        ]
    );
    sc.s.on_open(sc.now);
    sc.actions();
    let a = sc.feed(&format!(
        "data: #recovered:{EPOCH}:3:1\n\ndata: #{EPOCH}:3:3\n\n"
    ));
    assert!(has(
        &a,
        &Action::Emit(Event::Recovery {
            recovered: true,
            replayed: 1
        })
    ));
    assert_eq!(messages(&a), vec!["3"]);
    assert!(!has(&a, &Action::Emit(Event::Resync)));
}

#[test]
fn the_close_event_closes_with_its_code() {
    let mut sc = Scenario::new(stream_config()).opened();
    let a = sc.feed("event: close\ndata: 1013 later\n\ndata: 1\n\n");
    assert_eq!(a[0], Action::Close { code: 1000 });
    assert!(has(
        &a,
        &Action::Emit(Event::Closed {
            code: Some(1013),
            reason: "later".into(),
            will_reconnect: true
        })
    ));
    // 1013 waits as long as it does on a WebSocket, and what followed the close is dropped.
    assert_eq!(reconnecting(&a), Some((1, Duration::from_secs(30))));
    assert!(messages(&a).is_empty());
}

#[test]
fn a_broken_stream_is_a_transport_error() {
    let mut sc = Scenario::new(stream_config()).opened();
    let mut sc2 = Scenario::new(stream_config()).opened();
    sc.s.on_event_stream(sc.now, b"data: \xff\n\n");
    let a = sc.actions();
    assert_eq!(a[0], Action::Close { code: 1001 });
    assert!(reconnecting(&a).is_some());
    // An event over 64 MiB: the same, before the session holds more.
    let mut big = Scenario::new(stream_config()).opened();
    let chunk = vec![b'a'; 1 << 20];
    big.s.on_event_stream(big.now, b"data: ");
    let mut closed = Vec::new();
    for _ in 0..=(MAX_EVENT >> 20) {
        big.s.on_event_stream(big.now, &chunk);
        closed = big.actions();
        if !closed.is_empty() {
            break;
        }
    }
    assert_eq!(closed[0], Action::Close { code: 1001 });
    assert!(has(
        &closed,
        &Action::Emit(Event::Error(Error::Transport(
            "an event of the stream is over 64 MiB".into()
        )))
    ));
    // A WebSocket session ignores stream bytes.
    let mut ws = Scenario::new(config()).opened();
    assert!(ws.feed("data: 1\n\n").is_empty());
    assert!(sc2.feed("data: 1\n\n").len() == 1);
}

/// Fires the pending reconnect (whatever its delay) and returns the actions.
fn next_attempt(sc: &mut Scenario) -> Vec<Action> {
    let due = sc.s.poll_timeout().expect("a reconnect is pending").0;
    sc.advance_to(due)
}

/// Keeps an open stream alive with keep-alives until `until`; returns the actions of the last
/// step.
fn alive_until(sc: &mut Scenario, until: u64) -> Vec<Action> {
    let mut t = sc.now.0;
    loop {
        t = (t + 300).min(until);
        let a = sc.advance_to(t);
        if t == until || has(&a, &Action::Connect) {
            return a;
        }
        sc.feed("data: !\n\n");
    }
}

#[test]
fn auto_falls_back_to_a_stream_after_failed_upgrades_and_tries_the_websocket_again() {
    let mut sc = Scenario::new(auto_config());
    sc.s.connect(sc.now);
    sc.actions();
    assert_eq!(sc.s.carrier(), Carrier::WebSocket);
    // A proxy's 403 to the upgrade does not stop an `auto` session: it retries (backoff).
    let a = sc.fail(ConnectFailure::HttpStatus(403));
    assert_eq!(reconnecting(&a), Some((1, ms(3000))));
    assert!(!a
        .iter()
        .any(|a| matches!(a, Action::Emit(Event::Stopped(_)))));
    let a = next_attempt(&mut sc);
    assert!(has(&a, &Action::Connect));
    assert_eq!(sc.s.carrier(), Carrier::WebSocket);
    // The second failure in a row: an event stream next.
    let a = sc.fail(ConnectFailure::HttpStatus(400));
    assert!(has(
        &a,
        &Action::Emit(Event::Transport(Carrier::EventStream))
    ));
    assert!(reconnecting(&a).is_some());
    next_attempt(&mut sc);
    assert_eq!(sc.s.carrier(), Carrier::EventStream);
    let opened = sc.now.0;
    sc.s.on_open(sc.now);
    sc.actions();
    // Kept alive until the WebSocket is due again, 10 s after the stream opened.
    let a = alive_until(&mut sc, opened + 10_000);
    assert_eq!(a[0], Action::Close { code: 1000 });
    assert!(has(&a, &Action::Emit(Event::Transport(Carrier::WebSocket))));
    assert!(has(&a, &Action::Connect));
    assert_eq!(sc.s.carrier(), Carrier::WebSocket);
    // Still refused: back to the stream at once.
    let a = sc.fail(ConnectFailure::HttpStatus(403));
    assert!(has(
        &a,
        &Action::Emit(Event::Transport(Carrier::EventStream))
    ));
    assert_eq!(reconnecting(&a).map(|r| r.1), Some(Duration::ZERO));
    let a = next_attempt(&mut sc);
    assert!(has(&a, &Action::Connect));
    assert_eq!(sc.s.carrier(), Carrier::EventStream);
    let reopened = sc.now.0;
    sc.s.on_open(sc.now);
    sc.actions();
    // Next time the WebSocket opens: it stays.
    let a = alive_until(&mut sc, reopened + 10_000);
    assert!(has(&a, &Action::Connect));
    sc.s.on_open(sc.now);
    sc.actions();
    assert_eq!(sc.s.carrier(), Carrier::WebSocket);
    // Opened on the stream, again on the stream, then on the WebSocket.
    assert_eq!(sc.s.stats(sc.now).reconnects, 2);
    // Nothing more is scheduled but the heartbeat: the WebSocket stays (answered `!`).
    let from = sc.now.0;
    for t in (1..=300).map(|k| from + k * 100) {
        let a = sc.advance_to(t);
        assert!(
            !a.iter()
                .any(|a| matches!(a, Action::Connect | Action::Close { .. })),
            "{a:?}"
        );
        sc.reply();
    }
}

#[test]
fn auto_tries_the_websocket_again_also_when_streams_are_cut_often() {
    let mut sc = Scenario::new(auto_config().fallback_after(1));
    sc.s.connect(sc.now);
    sc.actions();
    sc.fail(ConnectFailure::HttpStatus(403));
    next_attempt(&mut sc);
    let first_open = sc.now.0;
    sc.s.on_open(sc.now);
    sc.actions();
    // A proxy cuts the stream every 4 s: the 10 s count from the first stream goes on.
    let mut tried_ws = false;
    for _ in 0..5 {
        let until = sc.now.0 + 4_000;
        let a = alive_until(&mut sc, until);
        if has(&a, &Action::Connect) {
            tried_ws = sc.s.carrier() == Carrier::WebSocket;
            break;
        }
        sc.s.on_closed(sc.now, None, "");
        sc.actions();
        let a = next_attempt(&mut sc);
        if sc.s.carrier() == Carrier::WebSocket {
            assert!(has(&a, &Action::Connect));
            tried_ws = true;
            break;
        }
        sc.s.on_open(sc.now);
        sc.actions();
    }
    assert!(tried_ws, "the WebSocket was never tried again");
    assert!(sc.now.0 >= first_open + 10_000);
}

#[test]
fn auto_goes_back_to_the_websocket_when_the_stream_is_unreachable_too() {
    let mut sc = Scenario::new(auto_config().fallback_after(1));
    sc.s.connect(sc.now);
    sc.actions();
    sc.fail(ConnectFailure::Transport("refused".into()));
    next_attempt(&mut sc);
    assert_eq!(sc.s.carrier(), Carrier::EventStream);
    // No answer from plain HTTP either: nothing says the WebSocket is blocked.
    let a = sc.fail(ConnectFailure::Transport("refused".into()));
    assert!(has(&a, &Action::Emit(Event::Transport(Carrier::WebSocket))));
    assert!(reconnecting(&a).is_some());
    assert_eq!(sc.s.carrier(), Carrier::WebSocket);
}

#[test]
fn auto_never_stops_on_a_gateway_without_streams() {
    // Upgrades fail (a balancer's 502 while it deploys), the stream is answered 404 (an
    // original gateway, or streams off): back to the WebSocket, never a stop.
    let mut sc = Scenario::new(auto_config().fallback_after(2));
    sc.s.connect(sc.now);
    sc.actions();
    for _ in 0..3 {
        sc.fail(ConnectFailure::HttpStatus(502));
        next_attempt(&mut sc);
        sc.fail(ConnectFailure::HttpStatus(502));
        next_attempt(&mut sc);
        assert_eq!(sc.s.carrier(), Carrier::EventStream);
        let a = sc.fail(ConnectFailure::HttpStatus(404));
        assert!(
            !a.iter()
                .any(|a| matches!(a, Action::Emit(Event::Stopped(_)))),
            "{a:?}"
        );
        assert!(has(&a, &Action::Emit(Event::Transport(Carrier::WebSocket))));
        next_attempt(&mut sc);
    }
    sc.s.on_open(sc.now);
    assert_eq!(sc.s.state(), ConnectionState::Open);
    assert_eq!(sc.s.carrier(), Carrier::WebSocket);
}

#[test]
fn auto_stops_when_the_gateway_refuses_both() {
    let mut sc = Scenario::new(auto_config().fallback_after(1));
    sc.s.connect(sc.now);
    sc.actions();
    sc.fail(ConnectFailure::HttpStatus(403));
    next_attempt(&mut sc);
    let a = sc.fail(ConnectFailure::HttpStatus(403));
    assert!(has(
        &a,
        &Action::Emit(Event::Stopped(Some(Error::Rejected { status: 403 })))
    ));
}

#[test]
fn a_disconnect_leaves_no_retry_that_could_close_a_websocket_later() {
    let mut sc = Scenario::new(auto_config().fallback_after(1));
    sc.s.connect(sc.now);
    sc.actions();
    sc.fail(ConnectFailure::HttpStatus(403));
    next_attempt(&mut sc);
    sc.s.on_open(sc.now);
    sc.actions();
    sc.s.disconnect(sc.now);
    sc.actions();
    // Connected again: the stream is unreachable, the WebSocket opens.
    sc.s.connect(sc.now);
    sc.actions();
    sc.fail(ConnectFailure::Transport("refused".into()));
    next_attempt(&mut sc);
    assert_eq!(sc.s.carrier(), Carrier::WebSocket);
    sc.s.on_open(sc.now);
    sc.actions();
    let from = sc.now.0;
    for t in (1..=40).map(|k| from + k * 100) {
        let a = sc.advance_to(t);
        assert!(
            !a.iter().any(|a| matches!(a, Action::Close { .. })),
            "{a:?}"
        );
        sc.reply();
    }
}

#[test]
fn fallback_after_zero_is_refused() {
    let err = Session::new(auto_config().fallback_after(0), 1).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err:?}");
}
