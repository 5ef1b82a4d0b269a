//! Several gateway URLs: the next one at once on a failure, the backoff once per round.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn failure() -> ConnectFailure {
    ConnectFailure::Transport("refused".into())
}

/// The endpoint of each attempt, and the delay before it, over `attempts` failed attempts.
fn tour(sc: &mut Scenario, attempts: usize) -> Vec<(usize, Duration)> {
    let mut seen = Vec::new();
    for _ in 0..attempts {
        let endpoint = sc.s.endpoint();
        sc.s.on_connect_failed(sc.now, failure());
        let actions = sc.actions();
        let (_, delay) = reconnecting(&actions).expect("a reconnect");
        seen.push((endpoint, delay));
        let t = sc.now.0 + delay.as_millis() as u64;
        let actions = sc.advance_to(t);
        assert!(has(&actions, &Action::Connect), "{actions:?}");
    }
    seen
}

#[test]
fn one_url_keeps_the_backoff_of_every_attempt() {
    let mut sc = Scenario::new(config());
    sc.s.set_endpoints(1);
    sc.s.connect(sc.now);
    sc.actions();
    assert_eq!(
        tour(&mut sc, 3),
        vec![(0, ms(3000)), (0, ms(6000)), (0, ms(12_000))]
    );
}

#[test]
fn three_urls_are_tried_in_turn_with_the_backoff_per_round() {
    let mut sc = Scenario::new(config());
    sc.s.set_endpoints(3);
    let start = sc.s.endpoint();
    assert!(start < 3);
    sc.s.connect(sc.now);
    sc.actions();
    let seen = tour(&mut sc, 6);
    let order: Vec<usize> = seen.iter().map(|(e, _)| *e).collect();
    let expected: Vec<usize> = (0..6).map(|i| (start + i) % 3).collect();
    assert_eq!(order, expected);
    let delays: Vec<Duration> = seen.iter().map(|(_, d)| *d).collect();
    assert_eq!(delays, vec![ms(0), ms(0), ms(3000), ms(0), ms(0), ms(6000)]);
}

#[test]
fn the_start_url_depends_on_the_seed() {
    let starts: std::collections::BTreeSet<usize> = (0..32)
        .map(|seed| {
            let mut s = Session::new(config(), seed).unwrap();
            s.set_endpoints(4);
            s.endpoint()
        })
        .collect();
    assert!(starts.len() > 1, "always {starts:?}");
}

#[test]
fn a_lost_connection_moves_to_the_next_url_at_once() {
    let mut sc = Scenario::new(config());
    sc.s.set_endpoints(2);
    let first = sc.s.endpoint();
    let mut sc = sc.opened();
    // The gateway restarts (1012): the other one, without a delay.
    sc.s.on_closed(sc.now, Some(1012), "restart");
    let actions = sc.actions();
    assert_eq!(reconnecting(&actions), Some((0, ms(0))));
    assert_eq!(sc.s.endpoint(), (first + 1) % 2);
    let t = sc.now.0;
    assert!(has(&sc.advance_to(t), &Action::Connect));
    sc.s.on_open(sc.now);
    sc.actions();
    // And back, as the first one is up again.
    sc.s.on_closed(sc.now, Some(1012), "restart");
    let actions = sc.actions();
    assert_eq!(reconnecting(&actions), Some((0, ms(0))));
    assert_eq!(sc.s.endpoint(), first);
}

#[test]
fn the_attempt_limit_counts_rounds() {
    let policy = ReconnectPolicy::default()
        .jitter(false)
        .delay(ms(100))
        .max_attempts(Some(1));
    let mut sc = Scenario::new(config().reconnect(policy));
    sc.s.set_endpoints(2);
    sc.s.connect(sc.now);
    sc.actions();
    // Round 1: the second URL at once, then the one delayed attempt.
    assert_eq!(tour(&mut sc, 2).len(), 2);
    // Round 2: the other URL at once, then the limit.
    sc.s.on_connect_failed(sc.now, failure());
    let t = sc.now.0;
    sc.actions();
    assert!(has(&sc.advance_to(t), &Action::Connect));
    sc.s.on_connect_failed(sc.now, failure());
    let events = sc.events();
    assert!(
        events.contains(&Event::Stopped(Some(Error::GaveUp { attempts: 1 }))),
        "{events:?}"
    );
}
