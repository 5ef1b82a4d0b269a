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
    // A WebSocket session ignores stream bytes.
    let mut ws = Scenario::new(config()).opened();
    assert!(ws.feed("data: 1\n\n").is_empty());
    assert!(sc2.feed("data: 1\n\n").len() == 1);
}

#[test]
fn auto_falls_back_to_a_stream_after_failed_upgrades_and_tries_the_websocket_again() {
    let mut sc = Scenario::new(auto_config());
    sc.s.connect(sc.now);
    sc.actions();
    assert_eq!(sc.s.carrier(), Carrier::WebSocket);
    // A proxy's 403 to the upgrade does not stop an `auto` session: it retries at once.
    let a = sc.fail(ConnectFailure::HttpStatus(403));
    assert_eq!(reconnecting(&a), Some((0, Duration::ZERO)));
    let a = sc.advance_to(0);
    assert!(has(&a, &Action::Connect));
    assert_eq!(sc.s.carrier(), Carrier::WebSocket);
    // The second failure in a row: an event stream next, at once.
    let a = sc.fail(ConnectFailure::HttpStatus(400));
    assert!(has(
        &a,
        &Action::Emit(Event::Transport(Carrier::EventStream))
    ));
    assert_eq!(reconnecting(&a), Some((0, Duration::ZERO)));
    sc.advance_to(0);
    assert_eq!(sc.s.carrier(), Carrier::EventStream);
    sc.s.on_open(sc.now);
    sc.actions();
    // Keep it alive until the WebSocket is due again (10 s after the opening).
    for t in (300..10_000).step_by(300) {
        let a = sc.advance_to(t);
        assert!(!has(&a, &Action::Connect), "{t}: {a:?}");
        sc.feed(":\n");
    }
    let a = sc.advance_to(10_000);
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
    let a = sc.advance_to(10_000);
    assert!(has(&a, &Action::Connect));
    assert_eq!(sc.s.carrier(), Carrier::EventStream);
    sc.s.on_open(sc.now);
    sc.actions();
    // Next time the WebSocket opens: it stays.
    sc.feed(":\n");
    let until = 20_000;
    for t in (10_300..until).step_by(300) {
        sc.advance_to(t);
        sc.feed(":\n");
    }
    let a = sc.advance_to(until);
    assert!(has(&a, &Action::Connect));
    sc.s.on_open(sc.now);
    sc.actions();
    assert_eq!(sc.s.carrier(), Carrier::WebSocket);
    // Opened on the stream, again on the stream, then on the WebSocket.
    assert_eq!(sc.s.stats(sc.now).reconnects, 2);
}

#[test]
fn auto_goes_back_to_the_websocket_when_the_stream_is_unreachable_too() {
    let mut sc = Scenario::new(auto_config().fallback_after(1));
    sc.s.connect(sc.now);
    sc.actions();
    sc.fail(ConnectFailure::Transport("refused".into()));
    sc.advance_to(0);
    assert_eq!(sc.s.carrier(), Carrier::EventStream);
    // No answer from plain HTTP either: nothing says the WebSocket is blocked.
    let a = sc.fail(ConnectFailure::Transport("refused".into()));
    assert!(has(&a, &Action::Emit(Event::Transport(Carrier::WebSocket))));
    assert_eq!(reconnecting(&a), Some((1, ms(3000))));
    assert_eq!(sc.s.carrier(), Carrier::WebSocket);
}

#[test]
fn auto_stops_when_the_stream_is_refused_by_the_gateway() {
    let mut sc = Scenario::new(auto_config().fallback_after(1));
    sc.s.connect(sc.now);
    sc.actions();
    sc.fail(ConnectFailure::HttpStatus(403));
    sc.advance_to(0);
    let a = sc.fail(ConnectFailure::HttpStatus(403));
    assert!(has(
        &a,
        &Action::Emit(Event::Stopped(Some(Error::Rejected { status: 403 })))
    ));
}

#[test]
fn fallback_after_zero_is_refused() {
    let err = Session::new(auto_config().fallback_after(0), 1).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err:?}");
}
