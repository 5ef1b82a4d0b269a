//! Unit tests of `nodes`.
#![allow(clippy::unwrap_used)]
use super::*;
use crate::cluster::packets::InfoPacket;
use serde_json::json;

fn info(services: Value, instance: &str) -> InfoPacket {
    serde_json::from_value(json!({"services": services, "instanceID": instance})).unwrap()
}

fn apply(reg: &mut NodeRegistry, id: &str, info: &InfoPacket, now: Instant) -> InfoChange {
    let (services, _) = NodeServices::read(id, &info.services);
    reg.apply_info(
        info.instance_id.clone(),
        info.history_since(),
        services,
        now,
    )
}

fn gateway_services() -> Value {
    json!([{"name": "websocket",
            "actions": {"websocket.send": {"name": "websocket.send"},
                        "websocket.secret": {"name": "websocket.secret", "visibility": "private"}},
            "events": {"websocket.send": {"name": "websocket.send"}}},
           {"name": "broken"}, 42])
}

#[test]
fn info_registers_actions_and_groups_skipping_private_and_malformed() {
    let mut reg = NodeRegistry::new(10);
    let turns = RoundRobin::default();
    let now = Instant::now();
    let svc = gateway_services();
    assert_eq!(
        apply(&mut reg, "a", &info(svc.clone(), "i1"), now),
        InfoChange::Joined
    );
    assert_eq!(
        apply(&mut reg, "a", &info(svc.clone(), "i1"), now),
        InfoChange::Updated
    );
    assert_eq!(
        apply(&mut reg, "a", &info(svc, "i2"), now),
        InfoChange::Restarted
    );
    let view = reg.view();
    assert_eq!(
        view.pick_for_action(&turns, "websocket.send"),
        Some("a".to_owned())
    );
    assert_eq!(view.pick_for_action(&turns, "websocket.secret"), None);
    assert_eq!(
        view.broadcast_targets("websocket.send"),
        vec![("a".to_owned(), vec!["websocket".to_owned()])]
    );
}

#[test]
fn actions_round_robin_and_nodes_expire() {
    let mut reg = NodeRegistry::new(10);
    let turns = RoundRobin::default();
    let t0 = Instant::now();
    apply(&mut reg, "a", &info(gateway_services(), "1"), t0);
    apply(&mut reg, "b", &info(gateway_services(), "2"), t0);
    let view = reg.view();
    let picks: Vec<_> = (0..4)
        .filter_map(|_| view.pick_for_action(&turns, "websocket.send"))
        .collect();
    assert_eq!(picks, ["a", "b", "a", "b"]);
    assert!(reg.seen("b", t0 + Duration::from_secs(20)));
    assert!(!reg.seen("c", t0));
    assert_eq!(
        reg.expire(t0 + Duration::from_secs(31), Duration::from_secs(30)),
        ["a"]
    );
    assert_eq!(reg.ids(), ["b"]);
    assert_eq!(view.len(), 2, "a view is a snapshot: it keeps what it saw");
    assert_eq!(reg.view().len(), 1);
}

#[test]
fn emit_reaches_one_node_per_group_except_skipped() {
    let mut reg = NodeRegistry::new(10);
    // Turns whose counters for the two groups differ: keys that share a counter (a chance of
    // one in ROUND_ROBIN_SLOTS per table) rotate together, and the alternation checked below
    // would then not hold.
    let slot = |t: &RoundRobin, group: &str| {
        t.hasher.hash_one(("event", "order.created", group)) % ROUND_ROBIN_SLOTS as u64
    };
    let turns = std::iter::repeat_with(RoundRobin::default)
        .find(|t| slot(t, "mail") != slot(t, "stock"))
        .unwrap();
    let t0 = Instant::now();
    let svc = |group: &str| json!([{"name": group, "events": {"order.*": {"name": "order.*", "group": group}}}]);
    apply(&mut reg, "a", &info(svc("mail"), "1"), t0);
    apply(&mut reg, "b", &info(svc("mail"), "2"), t0);
    apply(&mut reg, "c", &info(svc("stock"), "3"), t0);
    let view = reg.view();
    let first = view.balanced_targets(&turns, "order.created", &[]);
    assert_eq!(first.len(), 2);
    let second = view.balanced_targets(&turns, "order.created", &["stock".to_owned()]);
    assert_eq!(second.len(), 1);
    assert_ne!(
        first[0].0, second[0].0,
        "the mail group alternates between a and b"
    );
    assert!(view
        .balanced_targets(&turns, "user.created", &[])
        .is_empty());
}

#[test]
fn a_full_table_refuses_new_nodes_but_refreshes_known_ones() {
    let mut reg = NodeRegistry::new(2);
    let t0 = Instant::now();
    apply(&mut reg, "a", &info(json!([]), "1"), t0);
    apply(&mut reg, "b", &info(json!([]), "1"), t0);
    assert!(reg.refuses("c"));
    assert_eq!(
        apply(&mut reg, "c", &info(json!([]), "1"), t0),
        InfoChange::Refused
    );
    assert_eq!(
        apply(&mut reg, "b", &info(json!([]), "2"), t0),
        InfoChange::Restarted
    );
    assert_eq!(reg.ids(), ["a", "b"]);
    assert!(reg.remove("a"));
    assert_eq!(
        apply(&mut reg, "c", &info(json!([]), "1"), t0),
        InfoChange::Joined
    );
}

#[test]
fn names_beyond_the_caps_are_left_out_and_counted() {
    let actions: serde_json::Map<String, Value> = (0..MAX_ACTIONS + 10)
        .map(|i| (format!("s.a{i}"), json!({})))
        .collect();
    let mut events: serde_json::Map<String, Value> = (0..MAX_PATTERNS + 5)
        .map(|i| (format!("p{i}.*"), json!({})))
        .collect();
    events.insert("x".repeat(MAX_NAME_LEN + 1), json!({}));
    events.insert("ok".into(), json!({"group": "g".repeat(MAX_NAME_LEN + 1)}));
    // Group `s` and 66 more: 63 of them fit.
    let mut services = vec![json!({"name": "s", "actions": actions, "events": events})];
    for g in 0..MAX_GROUPS + 2 {
        services.push(json!({"name": format!("g{g}"), "events": {"ev": {}}}));
    }
    let (node, dropped) = NodeServices::read("n", &services);
    assert_eq!(node.actions.len(), MAX_ACTIONS);
    assert_eq!(node.patterns.len(), MAX_PATTERNS);
    assert_eq!(node.events["ev"].len(), MAX_GROUPS - 1);
    assert!(!node.events.contains_key("ok"));
    assert_eq!(dropped, 10 + 5 + 1 + 1 + 3);

    let many: serde_json::Map<String, Value> = (0..MAX_EVENTS + 7)
        .map(|i| (format!("e{i}"), json!({})))
        .collect();
    let (node, dropped) = NodeServices::read("n", &[json!({"name": "s", "events": many})]);
    assert_eq!((node.events.len(), dropped), (MAX_EVENTS, 7));

    // 20 patterns of 200 bytes: 10 fit in MAX_PATTERN_BYTES.
    let long: serde_json::Map<String, Value> = (0..20)
        .map(|i| (format!("{i:02}{}*", "a".repeat(197)), json!({})))
        .collect();
    let (node, dropped) = NodeServices::read("n", &[json!({"name": "s", "events": long})]);
    assert_eq!(
        (node.patterns.len(), dropped),
        (MAX_PATTERN_BYTES / 200, 10)
    );
}

#[test]
fn round_robin_rotates_per_key_in_a_fixed_table() {
    let turns = RoundRobin::default();
    for i in 0..10_000 {
        turns.next(("event", format!("made-up-{i}"), "g"));
    }
    assert_eq!(turns.slots.len(), ROUND_ROBIN_SLOTS);
    let fresh = RoundRobin::default();
    let picks: Vec<usize> = (0..3).map(|_| fresh.next(("action", "a"))).collect();
    assert_eq!(picks, [0, 1, 2]);
}

#[test]
fn patterns_and_plain_names_route_alike() {
    let mut reg = NodeRegistry::new(10);
    let svc = json!([{"name": "svc", "events": {"user.*": {}, "user.created": {"group": "audit"}, "**": {"group": "all"}}}]);
    apply(&mut reg, "a", &info(svc, "1"), Instant::now());
    let targets = reg.view().broadcast_targets("user.created");
    assert_eq!(targets[0].1, ["all", "audit", "svc"]);
    assert_eq!(reg.view().broadcast_targets("user.x.y")[0].1, ["all"]);
}
