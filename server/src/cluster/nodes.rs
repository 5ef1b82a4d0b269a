//! The registry of remote nodes: what each announced (actions, event listeners and their
//! groups), when it was last heard of, and the round-robin choice among nodes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::packets::InfoPacket;

/// One remote node as its last INFO described it.
#[derive(Debug)]
struct RemoteNode {
    instance_id: Option<String>,
    actions: BTreeSet<String>,
    /// Event name (or moleculer pattern like `user.*`) -> listener groups.
    events: BTreeMap<String, BTreeSet<String>>,
    last_seen: Instant,
}

/// What an INFO packet changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InfoChange {
    /// A node not known before.
    Joined,
    /// A known node with a new instance ID: it restarted.
    Restarted,
    /// A known node's services, refreshed.
    Updated,
}

/// Remote nodes by ID (sorted, so choices are deterministic).
#[derive(Debug, Default)]
pub(crate) struct NodeRegistry {
    nodes: BTreeMap<String, RemoteNode>,
    turns: HashMap<String, usize>,
}

impl NodeRegistry {
    /// Records the services `info` announces for `sender`.
    pub(crate) fn apply_info(
        &mut self,
        sender: &str,
        info: &InfoPacket,
        now: Instant,
    ) -> InfoChange {
        let (actions, events) = read_services(&info.services);
        let node = RemoteNode {
            instance_id: info.instance_id.clone(),
            actions,
            events,
            last_seen: now,
        };
        match self.nodes.insert(sender.to_owned(), node) {
            None => InfoChange::Joined,
            Some(old) if old.instance_id != info.instance_id => InfoChange::Restarted,
            Some(_) => InfoChange::Updated,
        }
    }

    /// Notes a sign of life; `false` when the node is unknown (ask it for INFO).
    pub(crate) fn seen(&mut self, sender: &str, now: Instant) -> bool {
        match self.nodes.get_mut(sender) {
            Some(node) => {
                node.last_seen = now;
                true
            }
            None => false,
        }
    }

    /// Forgets a node; `true` when it was known.
    pub(crate) fn remove(&mut self, sender: &str) -> bool {
        self.nodes.remove(sender).is_some()
    }

    /// Forgets every node not heard of for `timeout`; returns their IDs.
    pub(crate) fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<String> {
        let gone: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| now.saturating_duration_since(n.last_seen) > timeout)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            self.nodes.remove(id);
        }
        gone
    }

    /// The known node IDs, sorted.
    pub(crate) fn ids(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    /// The next node (round robin) that offers `action`.
    pub(crate) fn pick_for_action(&mut self, action: &str) -> Option<String> {
        let offering: Vec<&String> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.actions.contains(action))
            .map(|(id, _)| id)
            .collect();
        let turn = self.turns.entry(format!("action:{action}")).or_default();
        let chosen = offering
            .get(*turn % offering.len().max(1))
            .map(|s| (*s).clone());
        *turn = turn.wrapping_add(1);
        chosen
    }

    /// For a broadcast: every node listening to `event`, with its groups.
    pub(crate) fn broadcast_targets(&self, event: &str) -> Vec<(String, Vec<String>)> {
        self.nodes
            .iter()
            .filter_map(|(id, n)| {
                let groups = n.groups_for(event);
                (!groups.is_empty()).then(|| (id.clone(), groups.into_iter().collect()))
            })
            .collect()
    }

    /// For an emit: one node per group (round robin) except `skip_groups`, grouped by node.
    pub(crate) fn balanced_targets(
        &mut self,
        event: &str,
        skip_groups: &[String],
    ) -> Vec<(String, Vec<String>)> {
        let mut candidates: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (id, n) in &self.nodes {
            for group in n.groups_for(event) {
                if !skip_groups.contains(&group) {
                    candidates.entry(group).or_default().push(id.clone());
                }
            }
        }
        let mut by_node: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (group, nodes) in candidates {
            let turn = self
                .turns
                .entry(format!("event:{event}:{group}"))
                .or_default();
            if let Some(node) = nodes.get(*turn % nodes.len().max(1)) {
                by_node.entry(node.clone()).or_default().push(group);
            }
            *turn = turn.wrapping_add(1);
        }
        by_node.into_iter().collect()
    }
}

impl RemoteNode {
    fn groups_for(&self, event: &str) -> BTreeSet<String> {
        self.events
            .iter()
            .filter(|(pattern, _)| event_matches(event, pattern))
            .flat_map(|(_, groups)| groups.iter().cloned())
            .collect()
    }
}

type Services = (BTreeSet<String>, BTreeMap<String, BTreeSet<String>>);

/// Reads the actions and event listeners out of INFO's `services`, skipping what is malformed
/// and the actions other nodes may not call (`visibility` private or protected).
fn read_services(services: &[Value]) -> Services {
    let mut actions = BTreeSet::new();
    let mut events: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for service in services {
        let Some(service_name) = service.get("name").and_then(Value::as_str) else {
            continue;
        };
        if let Some(map) = service.get("actions").and_then(Value::as_object) {
            for (key, action) in map {
                let visibility = action.get("visibility").and_then(Value::as_str);
                if matches!(visibility, Some("private" | "protected")) {
                    continue;
                }
                let name = action.get("name").and_then(Value::as_str).unwrap_or(key);
                actions.insert(name.to_owned());
            }
        }
        if let Some(map) = service.get("events").and_then(Value::as_object) {
            for (key, event) in map {
                let name = event.get("name").and_then(Value::as_str).unwrap_or(key);
                let group = event
                    .get("group")
                    .and_then(Value::as_str)
                    .unwrap_or(service_name);
                events
                    .entry(name.to_owned())
                    .or_default()
                    .insert(group.to_owned());
            }
        }
    }
    (actions, events)
}

/// Moleculer's event name matching: `*` is any text within a segment, `**` any text, `?` one
/// character; anything else must be equal.
pub(crate) fn event_matches(name: &str, pattern: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return name == pattern;
    }
    fn go(n: &[u8], p: &[u8]) -> bool {
        match p {
            [] => n.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=n.len()).any(|i| go(&n[i..], rest)),
            [b'*', rest @ ..] => {
                let segment = n.iter().position(|&c| c == b'.').unwrap_or(n.len());
                (0..=segment).any(|i| go(&n[i..], rest))
            }
            [b'?', rest @ ..] => !n.is_empty() && go(&n[1..], rest),
            [c, rest @ ..] => n.first() == Some(c) && go(&n[1..], rest),
        }
    }
    go(name.as_bytes(), pattern.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn info(services: Value, instance: &str) -> InfoPacket {
        serde_json::from_value(json!({"services": services, "instanceID": instance})).unwrap()
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
        let mut reg = NodeRegistry::default();
        let now = Instant::now();
        assert_eq!(
            reg.apply_info("a", &info(gateway_services(), "i1"), now),
            InfoChange::Joined
        );
        assert_eq!(
            reg.apply_info("a", &info(gateway_services(), "i1"), now),
            InfoChange::Updated
        );
        assert_eq!(
            reg.apply_info("a", &info(gateway_services(), "i2"), now),
            InfoChange::Restarted
        );
        assert_eq!(reg.pick_for_action("websocket.send"), Some("a".to_owned()));
        assert_eq!(reg.pick_for_action("websocket.secret"), None);
        assert_eq!(
            reg.broadcast_targets("websocket.send"),
            vec![("a".to_owned(), vec!["websocket".to_owned()])]
        );
    }

    #[test]
    fn actions_round_robin_and_nodes_expire() {
        let mut reg = NodeRegistry::default();
        let t0 = Instant::now();
        reg.apply_info("a", &info(gateway_services(), "1"), t0);
        reg.apply_info("b", &info(gateway_services(), "2"), t0);
        let picks: Vec<_> = (0..4)
            .filter_map(|_| reg.pick_for_action("websocket.send"))
            .collect();
        assert_eq!(picks, ["a", "b", "a", "b"]);
        assert!(reg.seen("b", t0 + Duration::from_secs(20)));
        assert!(!reg.seen("c", t0));
        assert_eq!(
            reg.expire(t0 + Duration::from_secs(31), Duration::from_secs(30)),
            ["a"]
        );
        assert_eq!(reg.ids(), ["b"]);
    }

    #[test]
    fn emit_reaches_one_node_per_group_except_skipped() {
        let mut reg = NodeRegistry::default();
        let t0 = Instant::now();
        let svc = |group: &str| json!([{"name": group, "events": {"order.*": {"name": "order.*", "group": group}}}]);
        reg.apply_info("a", &info(svc("mail"), "1"), t0);
        reg.apply_info("b", &info(svc("mail"), "2"), t0);
        reg.apply_info("c", &info(svc("stock"), "3"), t0);
        let first = reg.balanced_targets("order.created", &[]);
        assert_eq!(first.len(), 2);
        let second = reg.balanced_targets("order.created", &["stock".to_owned()]);
        assert_eq!(second.len(), 1);
        assert_ne!(
            first[0].0, second[0].0,
            "the mail group alternates between a and b"
        );
        assert!(reg.balanced_targets("user.created", &[]).is_empty());
    }

    #[test]
    fn moleculer_wildcards() {
        assert!(event_matches("websocket.send", "websocket.send"));
        assert!(event_matches("websocket.send", "websocket.*"));
        assert!(!event_matches("a.b.c", "a.*"));
        assert!(event_matches("a.b.c", "a.**"));
        assert!(event_matches("a.bc", "a.?c"));
        assert!(!event_matches("websocket.send", "websocket.sen"));
    }
}
