//! Unit tests of the recovery histories.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use crate::metrics::Metrics;

const ORIGIN: Origin<'static> = Origin {
    sender: "n",
    request_id: None,
};

fn limits(n: usize) -> Limits {
    Limits {
        max_messages: n,
        max_age: Duration::from_secs(300),
        max_bytes: usize::MAX,
    }
}

fn reg_ok(
    rec: &Recovery,
    reg: &Registry,
    since: Option<(u64, u64)>,
) -> (Registration, Vec<Utf8Bytes>) {
    rec.register(reg, "/p", 16, &RecoverRequest { since }, |_| Ok(()))
        .unwrap()
}

#[test]
fn a_replay_over_budget_and_a_full_gateway_are_refused_and_register_nothing() {
    let reg = Registry::default();
    let rec = Recovery::new(limits(10), 1);
    let m = Metrics::default();
    let (_first, frames) = reg_ok(&rec, &reg, None);
    let epoch = epoch_of(frames[0].as_str());
    rec.deliver(&reg, "/p", &Utf8Bytes::from("1234"), ORIGIN, usize::MAX, &m);
    let wait = Duration::from_secs(3);
    let mut asked = 0;
    let since = RecoverRequest {
        since: Some((epoch, 0)),
    };
    let refused = rec.register(&reg, "/p", 16, &since, |bytes| {
        asked = bytes;
        Err(wait)
    });
    assert_eq!(refused.err(), Some(Refused::Throttled(wait)));
    assert_eq!(asked, format!("#{epoch:016x}:1:1234").len());
    assert_eq!(
        reg.count_clients().get("/p"),
        Some(&1),
        "nothing registered"
    );
    assert_eq!(
        rec.recovered.load(Ordering::Relaxed),
        0,
        "nothing recovered"
    );
    let other = rec.register(&reg, "/q", 16, &RecoverRequest { since: None }, |_| Ok(()));
    assert_eq!(other.err(), Some(Refused::PathsFull));
}

fn epoch_of(status: &str) -> u64 {
    let hex = status.split(':').nth(1).unwrap();
    u64::from_str_radix(hex, 16).unwrap()
}

#[test]
fn query_parsing() {
    assert_eq!(RecoverRequest::from_query("token=x"), None);
    assert_eq!(
        RecoverRequest::from_query("recover=1"),
        Some(RecoverRequest { since: None })
    );
    assert_eq!(
        RecoverRequest::from_query("recover=1&epoch=00000000000000ff&seq=7"),
        Some(RecoverRequest {
            since: Some((255, 7))
        })
    );
    assert_eq!(
        RecoverRequest::from_query("recover=1&epoch=zz&seq=7"),
        Some(RecoverRequest { since: None })
    );
    assert_eq!(
        RecoverRequest::from_query("recover=1&epoch=00000000000000ff&seq=+7"),
        Some(RecoverRequest { since: None })
    );
}

#[test]
fn last_event_id_parsing() {
    let asked = |query: &str, id: Option<&str>| {
        RecoverRequest::from_query(query).map(|r| r.with_last_event_id(id.map(str::as_bytes)).since)
    };
    // The event stream's id wins over the query's position; a bad one means no position.
    let query = "recover=1&epoch=00000000000000ff&seq=7";
    assert_eq!(asked(query, None), Some(Some((255, 7))));
    assert_eq!(
        asked(query, Some("00000000000000fe:9")),
        Some(Some((254, 9)))
    );
    for bad in [
        "",
        "9",
        "fe:9",
        "00000000000000fe:",
        "00000000000000fe:x",
        "0000000000000g00:1",
    ] {
        assert_eq!(asked(query, Some(bad)), Some(None), "{bad}");
    }
    assert_eq!(asked("token=x", Some("00000000000000fe:9")), None);
}

#[tokio::test]
async fn replays_what_was_missed_and_resets_when_too_short() {
    let reg = Registry::default();
    let rec = Recovery::new(limits(3), usize::MAX);
    let m = Metrics::default();
    let (first, frames) = reg_ok(&rec, &reg, None);
    assert!(frames[0].as_str().starts_with("#reset:"));
    let epoch = epoch_of(frames[0].as_str());
    let plain = reg.register("/p", 16).unwrap();
    for i in 1..=4 {
        rec.deliver(
            &reg,
            "/p",
            &Utf8Bytes::from(i.to_string()),
            ORIGIN,
            usize::MAX,
            &m,
        );
    }
    assert_eq!(plain.outbox.recv().await.as_str(), "1");
    assert_eq!(
        first.outbox.recv().await.as_str(),
        format!("#{epoch:016x}:1:1")
    );
    // Position 2: messages 3 and 4 are still held.
    let since = Some((epoch, 2));
    let (_, frames) = reg_ok(&rec, &reg, since);
    let texts: Vec<&str> = frames.iter().map(|f| f.as_str()).collect();
    assert_eq!(
        texts,
        vec![
            format!("#recovered:{epoch:016x}:4:2").as_str(),
            &format!("#{epoch:016x}:3:3"),
            &format!("#{epoch:016x}:4:4")
        ]
    );
    // Position 0: message 1 fell out of the history (3 kept).
    let since = Some((epoch, 0));
    let (_, frames) = reg_ok(&rec, &reg, since);
    assert_eq!(frames.len(), 1);
    assert!(frames[0].as_str().starts_with("#reset:"));
    // Another epoch: reset.
    let since = Some((epoch ^ 1, 4));
    let (_, frames) = reg_ok(&rec, &reg, since);
    assert!(frames[0].as_str().starts_with("#reset:"));
    assert_eq!(rec.totals(), (1, 3, rec.totals().2));
}

#[test]
fn paths_nobody_opted_into_have_no_history() {
    let reg = Registry::default();
    let rec = Recovery::new(limits(3), usize::MAX);
    let m = Metrics::default();
    let _plain = reg.register("/p", 16).unwrap();
    rec.deliver(&reg, "/p", &Utf8Bytes::from("1"), ORIGIN, usize::MAX, &m);
    assert_eq!(rec.totals(), (0, 0, 0));
}

#[test]
fn sweep_drops_unused_empty_histories_with_their_epoch() {
    let reg = Registry::default();
    let rec = Recovery::new(
        Limits {
            max_age: Duration::ZERO,
            ..limits(3)
        },
        usize::MAX,
    );
    let (r, frames) = reg_ok(&rec, &reg, None);
    let epoch = epoch_of(frames[0].as_str());
    rec.sweep();
    assert_eq!(rec.totals().0, 1, "kept while a socket uses it");
    reg.deregister("/p", r.id);
    rec.release("/p");
    rec.sweep();
    assert_eq!(rec.totals().0, 0);
    let (_, frames) = reg_ok(&rec, &reg, None);
    assert_ne!(epoch_of(frames[0].as_str()), epoch);
}

/// The shared mode's two orders of "stored" and "sent locally" for one message: either way the
/// recovering socket gets its text once, and every jump is announced with `#reset`.
#[test]
fn a_message_both_stored_and_sent_locally_reaches_a_socket_once() {
    use crate::history::{Append, Stored};
    let reg = Registry::default();
    let rec = Recovery::new(limits(10), 4);
    let m = Metrics::default();
    let (jobs, _queue) = tokio::sync::mpsc::channel(8);
    rec.attach(Some(jobs));
    let stored = |seq: u64, id: &str| Stored {
        path: "/p".into(),
        epoch: 7,
        seq,
        pos: seq,
        text: Utf8Bytes::from(format!("m{seq}")),
        id: Some(id.into()),
        marker: false,
    };
    let append = |seq: u64, id: &str| Append {
        path: "/p".into(),
        id: id.into(),
        text: Utf8Bytes::from(format!("m{seq}")),
        received: Instant::now(),
        sender: "n".into(),
    };
    rec.stored(&reg, stored(1, "a"), usize::MAX, &m);
    let (socket, frames) = reg_ok(&rec, &reg, None);
    assert_eq!(frames[0].as_str(), format!("#reset:{:016x}:1", 7));
    // Stored and read back, then its offer's answer lost: not sent again.
    rec.stored(&reg, stored(2, "b"), usize::MAX, &m);
    rec.unstored(&reg, append(2, "b"), usize::MAX, &m);
    // Sent locally first (no answer in time), then stored after all: the socket moves past it.
    rec.unstored(&reg, append(3, "c"), usize::MAX, &m);
    rec.stored(&reg, stored(3, "c"), usize::MAX, &m);
    let mut got = Vec::new();
    while let Some(frame) = socket.outbox.try_recv() {
        got.push(frame.as_str().to_owned());
    }
    let texts: Vec<&str> = got
        .iter()
        .filter(|f| !f.starts_with("#reset:"))
        .map(|f| f.rsplit(':').next().unwrap())
        .collect();
    assert_eq!(texts, ["m2", "m3"], "{got:?}");
    assert_eq!(got[0], format!("#{:016x}:2:m2", 7));
    assert!(got[1].starts_with("#reset:"), "{got:?}");
    assert_eq!(
        got.last().unwrap(),
        &format!("#reset:{:016x}:3", 7),
        "{got:?}"
    );
}

/// A message the engine gives twice under two positions (it lost its store and took the
/// message again): the sockets here do not get its text twice, only a `#reset` past it.
#[test]
fn a_message_stored_twice_by_the_engine_reaches_a_socket_once() {
    use crate::history::Stored;
    let reg = Registry::default();
    let rec = Recovery::new(limits(10), 4);
    let m = Metrics::default();
    let (jobs, _queue) = tokio::sync::mpsc::channel(8);
    rec.attach(Some(jobs));
    let stored = |epoch: u64, seq: u64, id: &str, text: &str| Stored {
        path: "/p".into(),
        epoch,
        seq,
        pos: seq,
        text: Utf8Bytes::from(text.to_owned()),
        id: Some(id.into()),
        marker: false,
    };
    rec.stored(&reg, stored(7, 1, "a", "m1"), usize::MAX, &m);
    let (socket, _) = reg_ok(&rec, &reg, None);
    rec.stored(&reg, stored(7, 2, "b", "m2"), usize::MAX, &m);
    // The engine lost "b" and stored it again later, under another epoch.
    rec.stored(&reg, stored(9, 1, "b", "m2"), usize::MAX, &m);
    rec.stored(&reg, stored(9, 2, "c", "m3"), usize::MAX, &m);
    let mut got = Vec::new();
    while let Some(frame) = socket.outbox.try_recv() {
        got.push(frame.as_str().to_owned());
    }
    assert_eq!(
        got,
        [
            format!("#{:016x}:2:m2", 7),
            format!("#reset:{:016x}:1", 9),
            format!("#{:016x}:2:m3", 9),
        ]
    );
}
