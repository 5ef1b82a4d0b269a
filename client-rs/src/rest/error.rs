//! The error body of a Moleculer gateway, and a failed request.

#[cfg(feature = "rest")]
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[cfg(feature = "rest")]
/// A REST call that failed below HTTP: no connection, TLS, a timeout, a body cut short.
/// It prints reqwest's message; [`source`](std::error::Error::source) leads to what failed
/// below it (each cause once, as error reporters expect).
#[derive(Clone, Debug)]
pub struct RequestError {
    inner: Arc<reqwest::Error>,
}

#[cfg(feature = "rest")]
impl RequestError {
    pub(crate) fn new(e: reqwest::Error) -> RequestError {
        RequestError { inner: Arc::new(e) }
    }

    /// Whether the call ran out of time (the client's or the request's timeout).
    pub fn is_timeout(&self) -> bool {
        self.inner.is_timeout()
    }

    /// Whether no connection to the server (or the proxy) could be made.
    pub fn is_connect(&self) -> bool {
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.inner.is_connect()
        }
        #[cfg(target_arch = "wasm32")]
        {
            false
        }
    }
}

#[cfg(feature = "rest")]
impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_timeout() {
            f.write_str("timed out: ")?;
        }
        // reqwest's own text; its causes are this error's sources.
        write!(f, "{}", self.inner)
    }
}

#[cfg(feature = "rest")]
impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.inner)
    }
}

#[cfg(feature = "rest")]
/// Two request errors are equal when they say the same (reqwest's errors are not comparable).
impl PartialEq for RequestError {
    fn eq(&self, other: &RequestError) -> bool {
        self.to_string() == other.to_string()
    }
}

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

impl std::error::Error for MoleculerError {}

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
