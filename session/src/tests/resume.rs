//! Message recovery through the whole state machine: the query per attempt, dedupe, order,
//! the recovery and resync events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const E: &str = "0123456789abcdef";
const F: &str = "fedcba9876543210";

fn texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.text().to_owned()),
            _ => None,
        })
        .collect()
}

fn recovering() -> Scenario {
    Scenario::new(config().recover(true))
}

/// Opens, reads the frames, then loses the connection and reconnects (after the 3 s delay).
fn frames(sc: &mut Scenario, frames: &[String]) -> Vec<Event> {
    for f in frames {
        sc.s.on_text(sc.now, f);
    }
    sc.events()
}

fn reconnect(sc: &mut Scenario) {
    sc.s.on_closed(sc.now, Some(1012), "restart");
    sc.actions();
    let t = sc.now.0 + 3000;
    sc.advance_to(t);
    sc.s.on_open(sc.now);
    sc.actions();
}

#[test]
fn off_by_default_no_query_and_envelopes_are_plain_text() {
    let mut sc = Scenario::new(config()).opened();
    assert!(sc.s.connect_query().is_empty());
    let ev = frames(&mut sc, &[format!("#{E}:1:1")]);
    assert_eq!(texts(&ev), vec![format!("#{E}:1:1")]);
}

#[test]
fn replay_and_live_are_delivered_once_in_order() {
    let mut sc = recovering();
    sc.s.connect(sc.now);
    assert_eq!(sc.s.connect_query(), &[("recover", "1".to_owned())]);
    sc.s.on_open(sc.now);
    sc.actions();
    let ev = frames(
        &mut sc,
        &[
            format!("#reset:{E}:0"),
            format!("#{E}:1:{{\"n\":1}}"),
            format!("#{E}:2:2"),
        ],
    );
    assert_eq!(
        ev.iter().find(|e| matches!(e, Event::Recovery { .. })),
        Some(&Event::Recovery {
            recovered: false,
            replayed: 0
        })
    );
    assert!(
        !ev.contains(&Event::Resync),
        "no resync on the first connection"
    );
    assert_eq!(texts(&ev), vec!["{\"n\":1}", "2"]);
    assert_eq!(sc.s.recovery_position(), Some((E, 2)));

    reconnect(&mut sc);
    assert_eq!(
        sc.s.connect_query(),
        &[
            ("recover", "1".to_owned()),
            ("epoch", E.to_owned()),
            ("seq", "2".to_owned())
        ]
    );
    // The same pairs, on a URL held as text (the browser driver's).
    let mut url = "ws://h/ws/x".to_owned();
    sc.s.append_connect_query(&mut url);
    assert_eq!(url, format!("ws://h/ws/x?recover=1&epoch={E}&seq=2"));
    let mut url = "ws://h/ws/x?token=t".to_owned();
    sc.s.append_connect_query(&mut url);
    assert_eq!(
        url,
        format!("ws://h/ws/x?token=t&recover=1&epoch={E}&seq=2")
    );
    // The replay overlaps what was delivered (2), then live messages repeat one (4).
    let ev = frames(
        &mut sc,
        &[
            format!("#recovered:{E}:4:3"),
            format!("#{E}:2:2"),
            format!("#{E}:3:3"),
            format!("#{E}:4:4"),
            format!("#{E}:4:4"),
            format!("#{E}:5:5"),
            "!".to_owned(),
        ],
    );
    assert_eq!(
        ev[0],
        Event::Recovery {
            recovered: true,
            replayed: 3
        }
    );
    assert!(!ev.contains(&Event::Resync));
    assert_eq!(texts(&ev), vec!["3", "4", "5"]);
    assert_eq!(sc.s.stats(sc.now).messages_received, 5);
}

#[test]
fn another_epoch_means_resync_then_live() {
    let mut sc = recovering().opened();
    frames(&mut sc, &[format!("#reset:{E}:0"), format!("#{E}:1:1")]);
    reconnect(&mut sc);
    let ev = frames(&mut sc, &[format!("#reset:{F}:7"), format!("#{F}:8:8")]);
    assert_eq!(
        &ev[..2],
        &[
            Event::Recovery {
                recovered: false,
                replayed: 0
            },
            Event::Resync
        ]
    );
    assert_eq!(texts(&ev), vec!["8"]);
    assert_eq!(sc.s.recovery_position(), Some((F, 8)));
}

#[test]
fn a_gap_is_never_silent() {
    let mut sc = recovering().opened();
    let ev = frames(
        &mut sc,
        &[
            format!("#reset:{E}:0"),
            format!("#{E}:1:1"),
            format!("#{E}:3:3"),
        ],
    );
    assert_eq!(texts(&ev), vec!["1", "3"]);
    assert!(ev.contains(&Event::Resync));
}

#[test]
fn malformed_envelopes_are_dropped_and_plain_frames_delivered() {
    let mut sc = recovering().opened();
    let ev = frames(
        &mut sc,
        &[
            "#".to_owned(),
            "#recovered:x".to_owned(),
            format!("#{E}:x:1"),
            format!("#{E}:1"),
            "{\"old\":true}".to_owned(),
        ],
    );
    assert_eq!(texts(&ev), vec!["{\"old\":true}"]);
    assert!(!ev
        .iter()
        .any(|e| matches!(e, Event::Recovery { .. } | Event::Resync)));
}
