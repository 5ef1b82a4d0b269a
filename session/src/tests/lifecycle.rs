//! Connecting, delivering, counting and disconnecting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::*;

#[test]
fn connect_emits_connecting_and_connect() {
    let mut sc = Scenario::new(config());
    assert_eq!(sc.s.state(), ConnectionState::Idle);
    assert_eq!(sc.s.poll_timeout(), None);
    sc.s.connect(Millis(0));
    assert_eq!(
        sc.actions(),
        vec![
            Action::Emit(Event::Connecting { attempt: 0 }),
            Action::Connect
        ]
    );
    assert_eq!(sc.s.state(), ConnectionState::Connecting);
    assert_eq!(sc.s.poll_timeout(), Some(Millis(1000)), "connect timeout");
    sc.s.connect(Millis(1));
    assert!(
        sc.actions().is_empty(),
        "connect while connecting is a no-op"
    );
    sc.s.on_open(Millis(10));
    assert_eq!(sc.events(), vec![Event::Open]);
    assert_eq!(sc.s.state(), ConnectionState::Open);
    assert_eq!(
        sc.s.poll_timeout(),
        Some(Millis(110)),
        "first heartbeat tick"
    );
}

#[test]
fn heartbeat_round_trip_is_reported() {
    let mut sc = Scenario::new(config()).opened();
    let a = sc.advance_to(400);
    assert_eq!(a, vec![Action::SendHeartbeat]);
    sc.now = Millis(425);
    sc.reply();
    assert_eq!(sc.events(), vec![Event::HeartbeatRoundTrip { rtt: ms(25) }]);
    assert_eq!(sc.s.stats(sc.now).last_rtt, Some(ms(25)));
    // Replies keep coming: no loss for a long time.
    for round in 1..20u64 {
        let a = sc.advance_to(400 + round * 400);
        assert!(!has(&a, &Action::Close { code: 1001 }), "round {round}");
        sc.reply();
        sc.actions();
    }
    assert_eq!(sc.s.state(), ConnectionState::Open);
}

#[test]
fn disconnect_while_open_closes_and_never_reconnects() {
    let mut sc = Scenario::new(config()).opened();
    sc.s.disconnect(Millis(10));
    let a = sc.actions();
    assert_eq!(a[0], Action::Close { code: 1000 });
    assert_eq!(a.last(), Some(&Action::Emit(Event::Stopped(None))));
    assert_eq!(sc.s.poll_timeout(), None, "every timer stopped");
    // Late socket news changes nothing.
    sc.s.on_closed(Millis(20), Some(1000), "");
    sc.s.on_transport_error(Millis(20), "x");
    sc.s.on_text(Millis(20), "{\"a\":1}");
    assert!(sc.actions().is_empty());
    assert!(sc.advance_to(100_000).is_empty());
    sc.s.disconnect(Millis(30));
    assert!(sc.actions().is_empty(), "a second disconnect is a no-op");
}

#[test]
fn disconnect_while_waiting_cancels_the_reconnect() {
    let mut sc = Scenario::new(config()).opened();
    sc.s.on_closed(Millis(0), None, "");
    sc.actions();
    assert_eq!(sc.s.state(), ConnectionState::Waiting);
    sc.s.disconnect(Millis(10));
    assert_eq!(sc.events(), vec![Event::Stopped(None)]);
    assert!(sc.advance_to(100_000).is_empty());
}

#[test]
fn disconnect_while_connecting_aborts_and_ignores_a_late_open() {
    let mut sc = Scenario::new(config());
    sc.s.connect(Millis(0));
    sc.actions();
    sc.s.disconnect(Millis(1));
    assert_eq!(sc.actions()[0], Action::AbortConnect);
    sc.s.on_open(Millis(2));
    sc.s.on_connect_failed(Millis(2), ConnectFailure::HttpStatus(403));
    assert!(sc.actions().is_empty());
    assert_eq!(sc.s.state(), ConnectionState::Stopped);
}

#[test]
fn connect_after_stop_starts_over() {
    let mut sc = Scenario::new(config()).opened();
    sc.s.disconnect(Millis(10));
    sc.actions();
    sc.s.connect(Millis(20));
    assert_eq!(
        sc.actions(),
        vec![
            Action::Emit(Event::Connecting { attempt: 0 }),
            Action::Connect
        ]
    );
}

#[test]
fn connect_while_waiting_skips_the_delay() {
    let mut sc = Scenario::new(config()).opened();
    sc.s.on_closed(Millis(0), None, "");
    sc.actions();
    sc.s.connect(Millis(5));
    assert!(has(&sc.actions(), &Action::Connect));
    assert_eq!(sc.s.state(), ConnectionState::Connecting);
}

#[test]
fn messages_are_classified_and_counted() {
    let mut sc = Scenario::new(config()).opened();
    for text in ["", "!", "!x", "{\"a\":1}", "123", "{bad"] {
        sc.s.on_text(Millis(1), text);
    }
    sc.s.on_binary(Millis(1), b"[1]");
    sc.s.on_binary(Millis(1), &[0xff, 0xfe]);
    let texts: Vec<String> = sc
        .events()
        .into_iter()
        .map(|e| match e {
            Event::Message(m) => m.into_text(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(texts, vec!["{\"a\":1}", "123", "{bad", "[1]"]);
    assert_eq!(sc.s.stats(Millis(1)).messages_received, 4);
}

#[test]
fn frames_before_open_are_ignored() {
    let mut sc = Scenario::new(config());
    sc.s.on_text(Millis(0), "{\"a\":1}");
    sc.s.on_closed(Millis(0), None, "");
    sc.s.handle_timeout(Millis(100));
    assert!(sc.actions().is_empty());
}

#[test]
fn stats_count_reconnects_and_downtime() {
    let mut sc = Scenario::new(config().heartbeat_interval(Duration::ZERO)).opened();
    assert_eq!(sc.s.stats(Millis(0)), Stats::default());
    sc.s.on_closed(Millis(1000), None, "");
    assert_eq!(
        sc.s.stats(Millis(2500)).downtime,
        ms(1500),
        "ongoing outage counts"
    );
    sc.advance_to(4000);
    sc.s.on_open(Millis(4200));
    let st = sc.s.stats(Millis(9000));
    assert_eq!(st.reconnects, 1);
    assert_eq!(st.downtime, ms(3200));
    sc.s.disconnect(Millis(9000));
    assert_eq!(
        sc.s.stats(Millis(20_000)).downtime,
        ms(3200),
        "no downtime after disconnect"
    );
}

#[test]
fn invalid_config_is_rejected() {
    let cfg = config().reconnect(ReconnectPolicy::default().delay(ms(10)).max_delay(ms(5)));
    assert!(matches!(Session::new(cfg, 0), Err(Error::InvalidConfig(_))));
    let cfg = config().heartbeat_timeout(ms(400));
    assert!(matches!(Session::new(cfg, 0), Err(Error::InvalidConfig(_))));
}

#[test]
fn probe_while_open_sends_bang_now_and_detects_a_missing_reply_within_timeout() {
    let mut sc = Scenario::new(config()).opened();
    sc.advance_to(50);
    sc.s.probe(sc.now);
    assert_eq!(sc.actions(), vec![Action::SendHeartbeat]);
    // The reply comes: no loss, and the round trip is reported.
    sc.advance_to(60);
    sc.reply();
    assert!(sc
        .events()
        .iter()
        .any(|e| matches!(e, Event::HeartbeatRoundTrip { .. })));
    // A second probe, more than `timeout` after that reply, is never answered: the loss is
    // declared `timeout` (100 ms) after it, not at the regular cadence.
    sc.advance_to(180);
    sc.s.probe(sc.now);
    sc.actions();
    assert!(sc.advance_to(279).is_empty());
    let lost = sc.advance_to(280);
    assert!(
        has(&lost, &Action::Emit(Event::Error(Error::HeartbeatLost))),
        "{lost:?}"
    );
}

#[test]
fn probe_while_waiting_reconnects_at_once_and_does_nothing_when_idle_or_stopped() {
    let mut sc = Scenario::new(config());
    sc.s.probe(sc.now);
    assert!(sc.actions().is_empty());
    let mut sc = sc.opened();
    sc.s.on_closed(sc.now, Some(1001), "bye");
    sc.actions();
    assert_eq!(sc.s.state(), ConnectionState::Waiting);
    sc.s.probe(sc.now);
    assert!(has(&sc.actions(), &Action::Connect));
    sc.s.disconnect(sc.now);
    sc.actions();
    sc.s.probe(sc.now);
    assert!(sc.actions().is_empty());
}
