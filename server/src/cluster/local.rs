//! What this node tells the cluster about itself: its services for INFO (from the broker's
//! actions and listeners), host name, instance ID and CPU load for HEARTBEAT.

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::broker::Broker;

/// The INFO `services` list: actions grouped by service name (the action name up to its last
/// dot: `websocket.send` belongs to `websocket`), listeners by their group.
pub(crate) fn services(broker: &Broker) -> Vec<Value> {
    #[derive(Default)]
    struct Service {
        actions: Map<String, Value>,
        events: Map<String, Value>,
    }
    let mut by_name: BTreeMap<String, Service> = BTreeMap::new();
    for action in broker.local_actions() {
        let (service, raw) = action.rsplit_once('.').unwrap_or((&action, &action));
        let entry = json!({"name": action, "rawName": raw});
        by_name
            .entry(service.to_owned())
            .or_default()
            .actions
            .insert(action.clone(), entry);
    }
    for (event, groups) in broker.local_events() {
        for group in groups {
            let entry = json!({"name": event, "group": group});
            by_name
                .entry(group)
                .or_default()
                .events
                .insert(event.clone(), entry);
        }
    }
    by_name
        .into_iter()
        .map(|(name, s)| {
            json!({
                "name": name,
                "fullName": name,
                "version": null,
                "settings": {},
                "metadata": {},
                "dependencies": [],
                "actions": s.actions,
                "events": s.events,
            })
        })
        .collect()
}

/// The INFO fields beside `services`.
pub(crate) fn info(broker: &Broker, instance_id: &str, seq: u64, history_since: u64) -> Value {
    let metadata = if history_since > 0 {
        json!({ super::packets::HISTORY_SINCE: history_since })
    } else {
        json!({})
    };
    json!({
        "services": services(broker),
        "config": {},
        "instanceID": instance_id,
        "ipList": [],
        "hostname": hostname(),
        "client": {
            "type": "rust",
            "version": env!("CARGO_PKG_VERSION"),
            "langVersion": env!("CARGO_PKG_RUST_VERSION"),
        },
        "seq": seq,
        "metadata": metadata,
    })
}

/// The machine's host name (Linux: from /proc; else `$HOSTNAME`), or `localhost`.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// A node ID in moleculer's style: `<hostname>-<pid>`.
pub(crate) fn default_node_id() -> String {
    format!("{}-{}", hostname(), std::process::id())
}

/// A random 128-bit instance ID in hex (changes with every start, so peers see restarts).
pub(crate) fn instance_id() -> String {
    let state = RandomState::new();
    let hi = state.hash_one((now_ms(), std::process::id()));
    let lo = RandomState::new().hash_one(hi);
    format!("{hi:016x}{lo:016x}")
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// CPU load in percent for HEARTBEAT: the 1-minute load average over the cores (Linux), else 0.
pub(crate) fn cpu_percent() -> u64 {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    (load / cores * 100.0).clamp(0.0, 100.0).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_group_by_service_and_listeners_by_group() {
        let broker = Broker::new("n1");
        broker.add_action("websocket.send", |_| async { Ok(Value::Null) });
        broker.add_action("v2.users.get", |_| async { Ok(Value::Null) });
        broker.on_event("websocket.send", "websocket", |_| {});
        let services = services(&broker);
        let names: Vec<&str> = services.iter().filter_map(|s| s["name"].as_str()).collect();
        assert_eq!(names, ["v2.users", "websocket"]);
        let ws = &services[1];
        assert_eq!(ws["actions"]["websocket.send"]["rawName"], "send");
        assert_eq!(
            ws["events"]["websocket.send"],
            json!({"name": "websocket.send", "group": "websocket"})
        );
        assert_ne!(instance_id(), instance_id());
    }
}
