//! The registry of remote nodes: what each announced (actions, event listeners and their
//! groups), when it was last heard of; the immutable views that routing reads; and the
//! round-robin choice among nodes.
//!
//! Everything here comes from other nodes, so everything is bounded: the number of nodes (the
//! cluster's `max_nodes`), the actions, events, patterns and groups per node and the length of
//! each name (the `MAX_*` constants), and the round-robin state (a fixed table of counters).
//! Event patterns are compiled once, when INFO arrives ([`EventPattern`]).

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::pattern::EventPattern;

/// The longest action, event (or pattern) and group name kept, in bytes.
pub(crate) const MAX_NAME_LEN: usize = 256;
/// The most actions kept per node.
pub(crate) const MAX_ACTIONS: usize = 1024;
/// The most event names and patterns kept per node.
pub(crate) const MAX_EVENTS: usize = 1024;
/// The most event patterns (names with `*` or `?`) kept per node, and their total length in
/// bytes: each is tried against every event this node sends (in time linear in its length),
/// so together they bound the matching work a node can cause per event.
pub(crate) const MAX_PATTERNS: usize = 64;
pub(crate) const MAX_PATTERN_BYTES: usize = 2048;
/// The most listener groups kept per node (every group a node listens with goes into the EVENT
/// packets sent to it, so this also bounds their size).
pub(crate) const MAX_GROUPS: usize = 64;
/// Round-robin counters: one per action or event group, shared when the keys hash alike.
const ROUND_ROBIN_SLOTS: usize = 1024;

/// What one remote node offers, as its last INFO announced it (within the caps). Never changed
/// once made: the registry and the views share it.
#[derive(Debug)]
pub(crate) struct NodeServices {
    id: String,
    actions: BTreeSet<String>,
    /// Event names without wildcards -> listener groups.
    events: BTreeMap<String, BTreeSet<String>>,
    /// Event patterns (`user.*`), compiled, with their listener groups.
    patterns: Vec<(EventPattern, BTreeSet<String>)>,
}

impl NodeServices {
    /// Reads the actions and event listeners out of INFO's `services`, skipping what is
    /// malformed, the actions other nodes may not call (`visibility` private or protected) and
    /// what exceeds the caps. Returns the services and how many names were left out.
    pub(crate) fn read(id: &str, services: &[Value]) -> (Self, u64) {
        let mut dropped = 0u64;
        let mut actions = BTreeSet::new();
        let mut events: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        // Patterns kept so far and their length; every group name kept so far.
        let (mut patterns, mut pattern_bytes) = (0usize, 0usize);
        let mut all_groups: BTreeSet<String> = BTreeSet::new();
        let name_of = |key: &str, item: &Value| {
            item.get("name")
                .and_then(Value::as_str)
                .unwrap_or(key)
                .to_owned()
        };
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
                    let name = name_of(key, action);
                    if name.len() > MAX_NAME_LEN
                        || (actions.len() >= MAX_ACTIONS && !actions.contains(&name))
                    {
                        dropped += 1;
                        continue;
                    }
                    actions.insert(name);
                }
            }
            if let Some(map) = service.get("events").and_then(Value::as_object) {
                for (key, event) in map {
                    let name = name_of(key, event);
                    let group = event
                        .get("group")
                        .and_then(Value::as_str)
                        .unwrap_or(service_name);
                    let is_pattern = name.contains(['*', '?']);
                    let new_event_fits = events.len() < MAX_EVENTS
                        && (!is_pattern
                            || (patterns < MAX_PATTERNS
                                && pattern_bytes + name.len() <= MAX_PATTERN_BYTES));
                    let fits = name.len() <= MAX_NAME_LEN
                        && group.len() <= MAX_NAME_LEN
                        && (events.contains_key(&name) || new_event_fits)
                        && (all_groups.contains(group) || all_groups.len() < MAX_GROUPS);
                    if !fits {
                        dropped += 1;
                        continue;
                    }
                    all_groups.insert(group.to_owned());
                    let groups = events.entry(name).or_insert_with_key(|name| {
                        if is_pattern {
                            patterns += 1;
                            pattern_bytes += name.len();
                        }
                        BTreeSet::new()
                    });
                    groups.insert(group.to_owned());
                }
            }
        }
        let mut node = Self {
            id: id.to_owned(),
            actions,
            events: BTreeMap::new(),
            patterns: Vec::new(),
        };
        for (name, groups) in events {
            match EventPattern::compile(&name) {
                Some(pattern) => node.patterns.push((pattern, groups)),
                None => {
                    node.events.insert(name, groups);
                }
            }
        }
        (node, dropped)
    }

    /// The groups of this node listening to `event` (sorted).
    fn groups_for(&self, event: &str) -> BTreeSet<&str> {
        let mut groups: BTreeSet<&str> = self
            .events
            .get(event)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        for (pattern, of_pattern) in &self.patterns {
            if pattern.matches(event) {
                groups.extend(of_pattern.iter().map(String::as_str));
            }
        }
        groups
    }
}

/// One remote node in the registry.
#[derive(Debug)]
struct RemoteNode {
    instance_id: Option<String>,
    /// Since when it shares the recovery history (INFO metadata), if it does.
    history_since: Option<u64>,
    last_seen: Instant,
    services: Arc<NodeServices>,
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
    /// A node not known before, and the table is full: not taken in.
    Refused,
}

/// Remote nodes by ID (sorted, so choices are deterministic), at most `max_nodes` of them.
///
/// A new node past the cap is refused rather than evicting the least recently seen one:
/// eviction would let a flood of made-up IDs push the real nodes out, one by one, however long
/// they have been serving, while refusal keeps every node that was there first. A refused real
/// node is not lost for good: its next HEARTBEAT, once a place is free (a node left or went
/// silent), makes this node ask for its INFO again.
#[derive(Debug)]
pub(crate) struct NodeRegistry {
    nodes: BTreeMap<String, RemoteNode>,
    max_nodes: usize,
}

impl NodeRegistry {
    pub(crate) fn new(max_nodes: usize) -> Self {
        Self {
            nodes: BTreeMap::new(),
            max_nodes,
        }
    }

    /// Whether the INFO of `sender` would be refused (a new node, and the table is full).
    pub(crate) fn refuses(&self, sender: &str) -> bool {
        self.nodes.len() >= self.max_nodes && !self.nodes.contains_key(sender)
    }

    /// Records the services a node announced (read by [`NodeServices::read`]).
    pub(crate) fn apply_info(
        &mut self,
        instance_id: Option<String>,
        history_since: Option<u64>,
        services: NodeServices,
        now: Instant,
    ) -> InfoChange {
        if self.refuses(&services.id) {
            return InfoChange::Refused;
        }
        let node = RemoteNode {
            instance_id,
            history_since,
            last_seen: now,
            services: Arc::new(services),
        };
        let id = node.services.id.clone();
        let instance_id = node.instance_id.clone();
        match self.nodes.insert(id, node) {
            None => InfoChange::Joined,
            Some(old) if old.instance_id != instance_id => InfoChange::Restarted,
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

    /// The oldest node sharing the recovery history: `(since, id)`, the smallest.
    pub(crate) fn oldest_history_node(&self) -> Option<(u64, &str)> {
        self.nodes
            .iter()
            .filter_map(|(id, n)| Some((n.history_since?, id.as_str())))
            .min()
    }

    /// The known node IDs, sorted.
    pub(crate) fn ids(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    /// A copy of the table for routing: one `Arc` per node, no names copied.
    pub(crate) fn view(&self) -> NodeView {
        NodeView {
            nodes: self.nodes.values().map(|n| n.services.clone()).collect(),
        }
    }
}

/// The nodes' services at one moment, for routing: taken with an `Arc` clone, then read
/// (and its patterns matched) without any lock, so a broadcast never waits on the registry.
#[derive(Debug, Default)]
pub(crate) struct NodeView {
    /// Sorted by node ID.
    nodes: Vec<Arc<NodeServices>>,
}

impl NodeView {
    /// How many nodes.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The next node (round robin) that offers `action`.
    pub(crate) fn pick_for_action(&self, turns: &RoundRobin, action: &str) -> Option<String> {
        let offering: Vec<&str> = self
            .nodes
            .iter()
            .filter(|n| n.actions.contains(action))
            .map(|n| n.id.as_str())
            .collect();
        if offering.is_empty() {
            return None;
        }
        let turn = turns.next(("action", action));
        offering.get(turn % offering.len()).map(|s| (*s).to_owned())
    }

    /// For a broadcast: every node listening to `event`, with its groups.
    pub(crate) fn broadcast_targets(&self, event: &str) -> Vec<(String, Vec<String>)> {
        self.nodes
            .iter()
            .filter_map(|n| {
                let groups = n.groups_for(event);
                (!groups.is_empty()).then(|| {
                    (
                        n.id.clone(),
                        groups.into_iter().map(str::to_owned).collect(),
                    )
                })
            })
            .collect()
    }

    /// For an emit: one node per group (round robin) except `skip_groups`, grouped by node.
    pub(crate) fn balanced_targets(
        &self,
        turns: &RoundRobin,
        event: &str,
        skip_groups: &[String],
    ) -> Vec<(String, Vec<String>)> {
        let mut candidates: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for n in &self.nodes {
            for group in n.groups_for(event) {
                if !skip_groups.iter().any(|g| g == group) {
                    candidates.entry(group).or_default().push(&n.id);
                }
            }
        }
        let mut by_node: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (group, nodes) in candidates {
            let turn = turns.next(("event", event, group));
            if let Some(node) = nodes.get(turn % nodes.len().max(1)) {
                by_node.entry(node).or_default().push(group.to_owned());
            }
        }
        by_node
            .into_iter()
            .map(|(node, groups)| (node.to_owned(), groups))
            .collect()
    }
}

/// Round-robin turns per action and per event group, in a fixed table of counters (the keys
/// are names other nodes chose, so a map of them would grow without bound). Keys that hash to
/// the same counter share it: each still rotates, only less evenly.
#[derive(Debug)]
pub(crate) struct RoundRobin {
    slots: Box<[AtomicUsize]>,
    hasher: RandomState,
}

impl Default for RoundRobin {
    fn default() -> Self {
        Self {
            slots: (0..ROUND_ROBIN_SLOTS)
                .map(|_| AtomicUsize::new(0))
                .collect(),
            hasher: RandomState::new(),
        }
    }
}

impl RoundRobin {
    /// The turn of `key` (0, 1, 2, ... for a key alone in its counter).
    pub(crate) fn next(&self, key: impl Hash) -> usize {
        let hash = self.hasher.hash_one(key);
        // The remainder is below ROUND_ROBIN_SLOTS, so it fits a usize.
        let slot = (hash % ROUND_ROBIN_SLOTS as u64) as usize;
        self.slots[slot].fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
