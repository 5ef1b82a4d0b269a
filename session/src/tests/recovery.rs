//! Heartbeat loss, close policy, backoff and its reset.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::*;

#[test]
fn lost_heartbeat_closes_and_reconnects() {
    let mut sc = Scenario::new(config()).opened();
    let a = sc.advance_to(499);
    assert_eq!(a, vec![Action::SendHeartbeat]);
    let a = sc.advance_to(500);
    assert_eq!(a[0], Action::Close { code: 1001 });
    assert!(has(&a, &Action::Emit(Event::Error(Error::HeartbeatLost))));
    assert!(has(
        &a,
        &Action::Emit(Event::Closed {
            code: None,
            reason: String::new(),
            will_reconnect: true
        })
    ));
    assert_eq!(reconnecting(&a), Some((1, ms(3000))));
    assert_eq!(sc.s.state(), ConnectionState::Waiting);
    // The reconnect fires after the delay.
    assert!(sc.advance_to(3499).is_empty());
    let a = sc.advance_to(3500);
    assert_eq!(
        a,
        vec![
            Action::Emit(Event::Connecting { attempt: 1 }),
            Action::Connect
        ]
    );
}

#[test]
fn clean_server_close_reconnects_at_once_policy_wise() {
    let mut sc = Scenario::new(config()).opened();
    sc.s.on_closed(Millis(50), Some(1000), "bye");
    let a = sc.actions();
    assert!(
        !a.iter().any(|a| matches!(a, Action::Close { .. })),
        "no close of a closed socket"
    );
    assert_eq!(
        a[0],
        Action::Emit(Event::Closed {
            code: Some(1000),
            reason: "bye".into(),
            will_reconnect: true
        })
    );
    assert_eq!(reconnecting(&a), Some((1, ms(3000))));
}

#[test]
fn close_1013_waits_at_least_try_again_later_delay() {
    let mut sc = Scenario::new(config()).opened();
    sc.s.on_closed(Millis(50), Some(1013), "");
    assert_eq!(
        reconnecting(&sc.actions()),
        Some((1, Duration::from_secs(30)))
    );
}

#[test]
fn transport_error_closes_and_reconnects() {
    let mut sc = Scenario::new(config()).opened();
    sc.s.on_transport_error(Millis(50), "reset by peer");
    let a = sc.actions();
    assert_eq!(a[0], Action::Close { code: 1001 });
    assert!(has(
        &a,
        &Action::Emit(Event::Error(Error::Transport("reset by peer".into())))
    ));
    assert!(reconnecting(&a).is_some());
}

#[test]
fn backoff_grows_across_failed_attempts() {
    let mut sc = Scenario::new(config()).opened();
    sc.s.on_closed(Millis(0), None, "");
    let mut delays = vec![reconnecting(&sc.actions()).unwrap()];
    for _ in 0..5 {
        let until = sc.s.poll_timeout().unwrap().0;
        sc.advance_to(until);
        sc.s.on_connect_failed(sc.now, ConnectFailure::Transport("refused".into()));
        delays.push(reconnecting(&sc.actions()).unwrap());
    }
    let secs: Vec<(u32, u64)> = delays.iter().map(|(a, d)| (*a, d.as_secs())).collect();
    assert_eq!(
        secs,
        vec![(1, 3), (2, 6), (3, 12), (4, 24), (5, 30), (6, 30)]
    );
    assert_eq!(sc.s.stats(sc.now).failed_attempts, 5);
}

#[test]
fn backoff_resets_only_after_a_healthy_connection() {
    let mut sc = Scenario::new(config()).opened();
    // Two flapping connections that never complete a heartbeat: the delay keeps growing.
    sc.s.on_closed(Millis(0), Some(1000), "");
    assert_eq!(reconnecting(&sc.actions()), Some((1, ms(3000))));
    sc.advance_to(3000);
    sc.s.on_open(sc.now);
    sc.s.on_closed(sc.now, Some(1000), "");
    assert_eq!(reconnecting(&sc.actions()), Some((2, ms(6000))));
    sc.advance_to(9000);
    sc.s.on_open(sc.now);
    sc.actions();
    // Now a heartbeat round trip: healthy, the next loss starts over.
    sc.advance_to(9400);
    sc.reply();
    sc.actions();
    sc.s.on_closed(sc.now, Some(1000), "");
    assert_eq!(reconnecting(&sc.actions()), Some((1, ms(3000))));
}

#[test]
fn without_heartbeat_a_long_enough_connection_counts_as_healthy() {
    let cfg = config().heartbeat_interval(Duration::ZERO).reconnect(
        ReconnectPolicy::default()
            .jitter(false)
            .healthy_after(ms(5000)),
    );
    let mut sc = Scenario::new(cfg).opened();
    assert_eq!(sc.s.poll_timeout(), None, "no heartbeat timer");
    sc.s.on_closed(Millis(100), None, "");
    assert_eq!(reconnecting(&sc.actions()), Some((1, ms(3000))));
    sc.advance_to(3100);
    sc.s.on_open(sc.now);
    sc.s.on_closed(Millis(4000), None, "");
    assert_eq!(
        reconnecting(&sc.actions()),
        Some((2, ms(6000))),
        "short: not healthy"
    );
    sc.advance_to(10_000);
    sc.s.on_open(sc.now);
    sc.s.on_closed(Millis(15_000), None, "");
    assert_eq!(
        reconnecting(&sc.actions()),
        Some((1, ms(3000))),
        "5 s open: healthy"
    );
}

#[test]
fn forbidden_upgrade_stops_with_the_error() {
    let mut sc = Scenario::new(config());
    sc.s.connect(Millis(0));
    sc.actions();
    sc.s.on_connect_failed(Millis(5), ConnectFailure::HttpStatus(403));
    let e = sc.events();
    assert_eq!(
        e,
        vec![
            Event::Error(Error::UpgradeStatus { status: 403 }),
            Event::Stopped(Some(Error::Rejected { status: 403 })),
        ]
    );
    assert_eq!(sc.s.state(), ConnectionState::Stopped);
    assert_eq!(sc.s.poll_timeout(), None);
}

#[test]
fn other_upgrade_status_retries() {
    let mut sc = Scenario::new(config());
    sc.s.connect(Millis(0));
    sc.actions();
    sc.s.on_connect_failed(Millis(5), ConnectFailure::HttpStatus(502));
    assert_eq!(reconnecting(&sc.actions()), Some((1, ms(3000))));
}

#[test]
fn connect_timeout_abandons_the_attempt_and_retries() {
    let mut sc = Scenario::new(config());
    sc.s.connect(Millis(0));
    sc.actions();
    let a = sc.advance_to(1000);
    assert_eq!(a[0], Action::AbortConnect);
    assert!(has(&a, &Action::Emit(Event::Error(Error::ConnectTimeout))));
    assert_eq!(reconnecting(&a), Some((1, ms(3000))));
    // Without a connect timeout there is no deadline.
    let mut sc = Scenario::new(config().connect_timeout(Duration::ZERO));
    sc.s.connect(Millis(0));
    assert_eq!(sc.s.poll_timeout(), None);
}

#[test]
fn attempt_limit_gives_up() {
    let cfg = config().reconnect(ReconnectPolicy::fixed().max_attempts(Some(2)));
    let mut sc = Scenario::new(cfg);
    sc.s.connect(Millis(0));
    for _ in 0..2 {
        sc.actions();
        sc.s.on_connect_failed(sc.now, ConnectFailure::Transport("refused".into()));
        assert_eq!(reconnecting(&sc.actions()).map(|r| r.1), Some(ms(3000)));
        let until = sc.s.poll_timeout().unwrap().0;
        sc.advance_to(until);
    }
    sc.s.on_connect_failed(sc.now, ConnectFailure::Transport("refused".into()));
    let e = sc.events();
    assert_eq!(
        e.last(),
        Some(&Event::Stopped(Some(Error::GaveUp { attempts: 2 })))
    );
}

#[test]
fn disabled_reconnect_stops_after_a_close() {
    let cfg = config().reconnect(ReconnectPolicy::disabled());
    let mut sc = Scenario::new(cfg).opened();
    sc.s.on_closed(Millis(10), Some(1001), "going");
    let e = sc.events();
    assert_eq!(
        e,
        vec![
            Event::Closed {
                code: Some(1001),
                reason: "going".into(),
                will_reconnect: false
            },
            Event::Stopped(Some(Error::ConnectionClosed {
                code: Some(1001),
                reason: "going".into()
            })),
        ]
    );
}

#[test]
fn heartbeat_timestamps_reset_on_reconnect() {
    let mut sc = Scenario::new(config()).opened();
    sc.advance_to(400); // ping sent at 400, never answered
    sc.s.on_closed(Millis(420), Some(1000), "");
    sc.actions();
    sc.advance_to(3420);
    sc.s.on_open(sc.now);
    sc.actions();
    // The old unanswered ping must not count against the new connection.
    let a = sc.advance_to(3420 + 300);
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(sc.advance_to(3420 + 400), vec![Action::SendHeartbeat]);
}

#[test]
fn jittered_reconnect_delay_stays_in_bounds() {
    for seed in 0..100 {
        let cfg = config().reconnect(ReconnectPolicy::default());
        let mut s = Session::new(cfg, seed).unwrap();
        s.connect(Millis(0));
        s.on_open(Millis(0));
        s.on_closed(Millis(0), None, "");
        let (_, d) =
            reconnecting(&std::iter::from_fn(|| s.poll_action()).collect::<Vec<_>>()).unwrap();
        assert!(d >= ms(3000) && d < ms(6000), "seed {seed}: {d:?}");
    }
}

#[test]
fn retry_after_is_honoured_and_capped() {
    let mut sc = Scenario::new(config());
    sc.s.connect(Millis(0));
    sc.actions();
    let busy = ConnectFailure::RetryAfter {
        status: 503,
        delay: Duration::from_secs(10),
    };
    sc.s.on_connect_failed(Millis(5), busy);
    let a = sc.actions();
    assert_eq!(reconnecting(&a), Some((1, ms(10_000))));
    assert!(has(
        &a,
        &Action::Emit(Event::Error(Error::UpgradeStatus { status: 503 }))
    ));
    // A shorter Retry-After never shortens the policy's own delay.
    let mut sc = Scenario::new(config());
    sc.s.connect(Millis(0));
    sc.actions();
    let soon = ConnectFailure::RetryAfter {
        status: 429,
        delay: Duration::from_secs(1),
    };
    sc.s.on_connect_failed(Millis(5), soon);
    assert_eq!(reconnecting(&sc.actions()), Some((1, ms(3000))));
    // A server cannot park the client for more than an hour.
    let mut sc = Scenario::new(config());
    sc.s.connect(Millis(0));
    sc.actions();
    let forever = ConnectFailure::RetryAfter {
        status: 503,
        delay: Duration::from_secs(86_400),
    };
    sc.s.on_connect_failed(Millis(5), forever);
    assert_eq!(reconnecting(&sc.actions()), Some((1, ms(3_600_000))));
}
