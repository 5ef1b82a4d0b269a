//! The packets of the Moleculer transporter protocol (versions 4 and 5) as JSON, and the
//! topics they travel on (docs/protocol.md section 5).
//!
//! Incoming packets are read in two steps: [`read_header`] checks that the bytes are a JSON
//! object with `ver` and `sender` (so the caller can drop other versions and its own packets
//! first), then [`read_body`] reads the fields the packet's kind needs. Both fail with a message
//! fit for the log; nothing here panics on outside data.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::MoleculerError;

/// The protocol version spoken on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// `"4"`: moleculer 0.14 and moleculer-java.
    V4,
    /// `"5"`: moleculer 0.15 (adds `headers` to EVENT, REQ and RES).
    V5,
}

impl Version {
    pub(crate) fn from_number(n: u8) -> Option<Self> {
        match n {
            4 => Some(Self::V4),
            5 => Some(Self::V5),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::V4 => "4",
            Self::V5 => "5",
        }
    }

    /// `Some({})` where the version carries `headers`.
    fn headers(self) -> Option<Map<String, Value>> {
        (self == Self::V5).then(Map::new)
    }
}

/// The kind of a packet, named by its topic (`MOL.<CMD>[.<node>]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Event,
    Request,
    Response,
    Discover,
    Info,
    Disconnect,
    Heartbeat,
    Ping,
    Pong,
}

impl Kind {
    fn cmd(self) -> &'static str {
        match self {
            Self::Event => "EVENT",
            Self::Request => "REQ",
            Self::Response => "RES",
            Self::Discover => "DISCOVER",
            Self::Info => "INFO",
            Self::Disconnect => "DISCONNECT",
            Self::Heartbeat => "HEARTBEAT",
            Self::Ping => "PING",
            Self::Pong => "PONG",
        }
    }

    fn from_cmd(cmd: &str) -> Option<Self> {
        [
            Self::Event,
            Self::Request,
            Self::Response,
            Self::Discover,
            Self::Info,
            Self::Disconnect,
            Self::Heartbeat,
            Self::Ping,
            Self::Pong,
        ]
        .into_iter()
        .find(|k| k.cmd() == cmd)
    }
}

/// Topic names: `MOL.<CMD>` and `MOL.<CMD>.<node>`, or `MOL-<namespace>...` with a namespace.
#[derive(Debug, Clone)]
pub(crate) struct Topics {
    prefix: String,
}

impl Topics {
    pub(crate) fn new(namespace: &str) -> Self {
        let prefix = if namespace.is_empty() {
            "MOL".to_owned()
        } else {
            format!("MOL-{namespace}")
        };
        Self { prefix }
    }

    /// The topic every node listens to, e.g. `MOL.DISCOVER`.
    pub(crate) fn broadcast(&self, kind: Kind) -> String {
        format!("{}.{}", self.prefix, kind.cmd())
    }

    /// The topic of one node, e.g. `MOL.REQ.node-1`.
    pub(crate) fn to_node(&self, kind: Kind, node: &str) -> String {
        format!("{}.{}.{node}", self.prefix, kind.cmd())
    }

    /// What the node `node` subscribes to (the same list as moleculer's transit).
    pub(crate) fn subscriptions(&self, node: &str) -> Vec<String> {
        use Kind::*;
        let mut topics: Vec<String> = [Event, Request, Response, Discover, Info, Ping, Pong]
            .into_iter()
            .map(|k| self.to_node(k, node))
            .collect();
        topics.extend([Discover, Info, Disconnect, Heartbeat, Ping].map(|k| self.broadcast(k)));
        topics
    }

    /// The kind of packet a topic carries; `None` for a foreign topic.
    pub(crate) fn kind_of(&self, topic: &str) -> Option<Kind> {
        let rest = topic.strip_prefix(&self.prefix)?.strip_prefix('.')?;
        Kind::from_cmd(rest.split('.').next().unwrap_or(rest))
    }
}

/// The longest node ID accepted, in bytes.
pub(crate) const MAX_NODE_ID_LEN: usize = 128;

/// Whether `id` may be a node ID: 1 to [`MAX_NODE_ID_LEN`] bytes of ASCII letters, digits,
/// `-`, `_` and `.`, with no empty dot-separated part.
///
/// A sender's ID becomes the last part of the topics this node answers it on
/// (`MOL.RES.<sender>`), so it must never carry what NATS reads as syntax: whitespace ends the
/// subject (and the rest is taken as more of the protocol line), `*` and `>` are wildcards.
/// Moleculer's IDs are `<hostname>-<pid>` or chosen names (`node-1`, `gw_rust`); a host name
/// may be dotted (`web1.example.com-42`), so `.` is allowed: in NATS it only makes the subject
/// longer (`MOL.RES.web1.example.com-42`, which that node subscribes to exactly), never reaches
/// another node's subject, and empty parts (`a..b`, a leading or trailing dot) are refused.
pub(crate) fn valid_node_id(id: &str) -> bool {
    (1..=MAX_NODE_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && id.split('.').all(|part| !part.is_empty())
}

/// Who sent a packet, in which version: what is checked before anything else.
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) ver: String,
    pub(crate) sender: String,
}

/// Why [`read_header`] refused a packet.
#[derive(Debug)]
pub(crate) enum BadHeader {
    /// Not a JSON object with `ver` and `sender`.
    Malformed(String),
    /// `sender` is not a valid node ID ([`valid_node_id`]); the ID is kept for the log.
    Sender(String),
}

/// Reads `ver` and `sender` of a packet; the JSON object is returned for [`read_body`].
pub(crate) fn read_header(bytes: &[u8]) -> Result<(Header, Value), BadHeader> {
    let (header, value) = read_fields(bytes).map_err(BadHeader::Malformed)?;
    if !valid_node_id(&header.sender) {
        return Err(BadHeader::Sender(header.sender));
    }
    Ok((header, value))
}

fn read_fields(bytes: &[u8]) -> Result<(Header, Value), String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let obj = value.as_object().ok_or("the packet is not a JSON object")?;
    let ver = match obj.get("ver") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("the packet has no 'ver'".to_owned()),
    };
    let sender = match obj.get("sender") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err("the packet has no 'sender'".to_owned()),
    };
    Ok((Header { ver, sender }, value))
}

/// EVENT: an event for this node's listeners.
#[derive(Debug, Deserialize)]
pub(crate) struct EventPacket {
    pub(crate) event: String,
    #[serde(default)]
    pub(crate) data: Value,
    #[serde(default)]
    pub(crate) groups: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) broadcast: bool,
    /// The copy's own ID, and the request's (the same in every copy of a broadcast).
    #[serde(default)]
    pub(crate) id: Option<Value>,
    #[serde(default, rename = "requestID")]
    pub(crate) request_id: Option<Value>,
}

/// The longest event or request ID kept (an ID is a key of the shared recovery history).
pub(crate) const MAX_EVENT_ID_LEN: usize = 128;

impl EventPacket {
    /// The event's identity across the copies a broadcast sends: `requestID`, else `id`;
    /// only a string of at most [`MAX_EVENT_ID_LEN`] bytes counts.
    pub(crate) fn request_id(&self) -> Option<String> {
        let usable = |v: &Option<Value>| match v {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_EVENT_ID_LEN => {
                Some(s.clone())
            }
            _ => None,
        };
        usable(&self.request_id).or_else(|| usable(&self.id))
    }
}

/// REQ: a call of one of this node's actions.
#[derive(Debug, Deserialize)]
pub(crate) struct RequestPacket {
    pub(crate) id: String,
    pub(crate) action: String,
    #[serde(default)]
    pub(crate) params: Value,
    /// The caller's timeout in milliseconds; 0, missing or not a number: none given.
    #[serde(default)]
    pub(crate) timeout: Value,
}

impl RequestPacket {
    /// How long the action may run: the caller's timeout, at most `limit` (also when the
    /// caller gave none).
    pub(crate) fn time_limit(&self, limit: std::time::Duration) -> std::time::Duration {
        match self.timeout.as_f64() {
            Some(ms) if ms > 0.0 => std::time::Duration::try_from_secs_f64(ms / 1000.0)
                .map_or(limit, |caller| caller.min(limit)),
            _ => limit,
        }
    }
}

/// RES: the answer to one of this node's calls.
#[derive(Debug, Deserialize)]
pub(crate) struct ResponsePacket {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) success: bool,
    #[serde(default)]
    pub(crate) data: Value,
    #[serde(default)]
    pub(crate) error: Option<Value>,
}

/// INFO: a node's services; what the registry needs of it.
#[derive(Debug, Deserialize)]
pub(crate) struct InfoPacket {
    #[serde(default)]
    pub(crate) services: Vec<Value>,
    #[serde(default, rename = "instanceID")]
    pub(crate) instance_id: Option<String>,
    #[serde(default)]
    pub(crate) metadata: Value,
}

/// The INFO metadata key under which a gateway announces since when (Unix ms) it shares the
/// recovery history (`cluster::history`: the oldest one stores, the others stand by).
pub(crate) const HISTORY_SINCE: &str = "moleculerWsHistorySince";

impl InfoPacket {
    /// Since when the node shares the recovery history, if it says so.
    pub(crate) fn history_since(&self) -> Option<u64> {
        self.metadata
            .get(HISTORY_SINCE)?
            .as_u64()
            .filter(|&t| t > 0)
    }
}

/// PING: answered with PONG `{time, id, arrived}`.
#[derive(Debug, Deserialize)]
pub(crate) struct PingPacket {
    #[serde(default)]
    pub(crate) time: Value,
    #[serde(default)]
    pub(crate) id: Value,
}

/// The body of an incoming packet.
#[derive(Debug)]
pub(crate) enum Incoming {
    Event(EventPacket),
    Request(RequestPacket),
    Response(ResponsePacket),
    Discover,
    Info(InfoPacket),
    Disconnect,
    Heartbeat,
    Ping(PingPacket),
    Pong,
}

/// Reads the fields a packet of `kind` needs; a missing required field is an error.
pub(crate) fn read_body(kind: Kind, value: Value) -> Result<Incoming, String> {
    fn parse<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }
    Ok(match kind {
        Kind::Event => Incoming::Event(parse(value)?),
        Kind::Request => Incoming::Request(parse(value)?),
        Kind::Response => Incoming::Response(parse(value)?),
        Kind::Discover => Incoming::Discover,
        Kind::Info => Incoming::Info(parse(value)?),
        Kind::Disconnect => Incoming::Disconnect,
        Kind::Heartbeat => Incoming::Heartbeat,
        Kind::Ping => Incoming::Ping(parse(value)?),
        Kind::Pong => Incoming::Pong,
    })
}

/// The error of a failed RES as a [`MoleculerError`]; lenient about missing fields.
pub(crate) fn error_from_response(error: Option<&Value>) -> MoleculerError {
    let text = |k: &str| error.and_then(|e| e.get(k)).and_then(Value::as_str);
    let code = error
        .and_then(|e| e.get("code"))
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(500);
    MoleculerError::new(
        text("name").unwrap_or("MoleculerError"),
        text("message").unwrap_or("The remote action failed."),
        code,
        text("type").unwrap_or(""),
    )
    .with_data(
        error
            .and_then(|e| e.get("data"))
            .cloned()
            .unwrap_or(Value::Null),
    )
    .retryable(
        error
            .and_then(|e| e.get("retryable"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
    )
}

mod writer;
pub(crate) use writer::Writer;

#[cfg(test)]
mod tests;
