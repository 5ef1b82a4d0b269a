//! This node's outgoing packets: every one carries `ver` and `sender`.

use serde::Serialize;
use serde_json::{Map, Value};

use super::Version;
use crate::broker::ActionResult;

/// Writes this node's packets: every one carries `ver` and `sender`.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    pub(crate) version: Version,
    pub(crate) sender: String,
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    ver: &'static str,
    sender: &'a str,
    #[serde(flatten)]
    body: T,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventOut<'a> {
    id: &'a str,
    event: &'a str,
    data: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<&'a [String]>,
    broadcast: bool,
    meta: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<Map<String, Value>>,
    level: u32,
    #[serde(rename = "requestID")]
    request_id: &'a str,
    need_ack: bool,
}

#[derive(Serialize)]
struct RequestOut<'a> {
    id: &'a str,
    action: &'a str,
    params: &'a Value,
    meta: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<Map<String, Value>>,
    timeout: u64,
    level: u32,
    #[serde(rename = "requestID")]
    request_id: &'a str,
    stream: bool,
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    id: &'a str,
    success: bool,
    data: &'a Value,
    error: Option<Value>,
    meta: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<Map<String, Value>>,
    stream: bool,
}

impl Writer {
    fn write<T: Serialize>(&self, body: T) -> Vec<u8> {
        let envelope = Envelope {
            ver: self.version.as_str(),
            sender: &self.sender,
            body,
        };
        // Serializing these plain structs and JSON values cannot fail.
        serde_json::to_vec(&envelope).unwrap_or_default()
    }

    /// DISCOVER, DISCONNECT: nothing but the envelope.
    pub(crate) fn bare(&self) -> Vec<u8> {
        self.write(Map::new())
    }

    /// INFO, HEARTBEAT, PONG: the envelope around `fields` (a JSON object).
    pub(crate) fn with_fields(&self, fields: Value) -> Vec<u8> {
        self.write(fields)
    }

    pub(crate) fn event(
        &self,
        id: &str,
        request_id: &str,
        event: &str,
        data: &Value,
        groups: Option<&[String]>,
        broadcast: bool,
    ) -> Vec<u8> {
        self.write(EventOut {
            id,
            event,
            data,
            groups,
            broadcast,
            meta: Map::new(),
            headers: self.version.headers(),
            level: 1,
            request_id,
            need_ack: false,
        })
    }

    pub(crate) fn request(
        &self,
        id: &str,
        action: &str,
        params: &Value,
        timeout_ms: u64,
    ) -> Vec<u8> {
        self.write(RequestOut {
            id,
            action,
            params,
            meta: Map::new(),
            headers: self.version.headers(),
            timeout: timeout_ms,
            level: 1,
            request_id: id,
            stream: false,
        })
    }

    pub(crate) fn response(&self, id: &str, result: &ActionResult) -> Vec<u8> {
        let (data, error) = match result {
            Ok(v) => (v, None),
            Err(e) => (&Value::Null, Some(e.to_body(&self.sender))),
        };
        self.write(ResponseOut {
            id,
            success: result.is_ok(),
            data,
            error,
            meta: Map::new(),
            headers: self.version.headers(),
            stream: false,
        })
    }
}
