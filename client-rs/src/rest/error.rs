//! The error body of a Moleculer gateway.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An error answered by a Moleculer gateway: the body
/// `{"name","message","nodeID","code","type","retryable","stack","data"}` plus the HTTP status.
///
/// A body that is not of that shape (for example the 404 `{"success":false,"message":...}`)
/// still gives a `MoleculerError`: the missing fields are empty and `code` is the status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MoleculerError {
    /// Error class name, e.g. `ServiceNotFoundError`.
    #[serde(default)]
    pub name: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// The error code (the HTTP status the gateway chose).
    #[serde(default)]
    pub code: u16,
    /// The type in UPPER_SNAKE, e.g. `SERVICE_NOT_FOUND`.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Extra data of the error.
    #[serde(default)]
    pub data: Value,
    /// Node that raised it.
    #[serde(default, rename = "nodeID")]
    pub node_id: Option<String>,
    /// Whether the action may be retried.
    #[serde(default)]
    pub retryable: bool,
    /// The HTTP status of the response.
    #[serde(skip)]
    pub status: u16,
}

impl std::fmt::Display for MoleculerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = if self.name.is_empty() {
            "Error"
        } else {
            &self.name
        };
        write!(f, "{name} (HTTP {}): {}", self.status, self.message)
    }
}

impl MoleculerError {
    /// Reads a gateway error from a response body and status; never fails.
    pub fn from_body(status: u16, body: &Value) -> MoleculerError {
        let mut e: MoleculerError = serde_json::from_value(body.clone()).unwrap_or_default();
        if e.message.is_empty() {
            if let Some(text) = body.as_str() {
                e.message = text.to_owned();
            }
        }
        if e.code == 0 {
            e.code = status;
        }
        e.status = status;
        e
    }
}
