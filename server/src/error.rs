//! Errors: the Moleculer error that actions return and the gateway renders, and the gateway's own.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A Moleculer error, as returned by actions and rendered by the REST side.
///
/// The HTTP status of a failed REST call is [`code`](Self::code) (a code outside 400..=599 is
/// rendered as 500) and the body is [`to_body`](Self::to_body): the shape Moleculer gateways use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{name}: {message}")]
#[non_exhaustive]
pub struct MoleculerError {
    /// Error class name, e.g. `ServiceNotFoundError`.
    pub name: String,
    /// Human-readable message.
    pub message: String,
    /// Status-like code: 404, 422, 500, ...
    pub code: u16,
    /// Machine-readable kind in UPPER_SNAKE, e.g. `SERVICE_NOT_FOUND`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Extra data for the caller (validation details, ...); `null` when there is none.
    #[serde(default)]
    pub data: Value,
    /// Whether retrying the same call may succeed.
    #[serde(default)]
    pub retryable: bool,
}

impl MoleculerError {
    /// A new error with the given name, message, code and type.
    pub fn new(
        name: impl Into<String>,
        message: impl Into<String>,
        code: u16,
        kind: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            message: message.into(),
            code,
            kind: kind.into(),
            data: Value::Null,
            retryable: false,
        }
    }

    /// Attaches `data` for the caller.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }

    /// Marks the error retryable.
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// 404 `ServiceNotFoundError` / `SERVICE_NOT_FOUND`: no node offers the action.
    pub fn service_not_found(action: &str) -> Self {
        Self::new(
            "ServiceNotFoundError",
            format!("Service '{action}' is not found."),
            404,
            "SERVICE_NOT_FOUND",
        )
        .with_data(json!({ "action": action }))
        .retryable(true)
    }

    /// 422 `ValidationError` / `VALIDATION_ERROR`: the params are not what the action takes.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationError", message, 422, "VALIDATION_ERROR")
    }

    /// 400 `BadRequestError` with the given type, e.g. `INVALID_REQUEST_BODY`.
    pub fn bad_request(message: impl Into<String>, kind: &str) -> Self {
        Self::new("BadRequestError", message, 400, kind)
    }

    /// 401 `UnAuthorizedError` / `INVALID_TOKEN`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new("UnAuthorizedError", message, 401, "INVALID_TOKEN")
    }

    /// 403 `ForbiddenError` / `FORBIDDEN`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new("ForbiddenError", message, 403, "FORBIDDEN")
    }

    /// 500 `MoleculerError` / `INTERNAL_ERROR`. The message is shown to the caller: never put
    /// a panic message or stack in it.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("MoleculerError", message, 500, "INTERNAL_ERROR")
    }

    /// The HTTP status for this error: `code` when it is a 4xx/5xx status, else 500.
    pub fn http_status(&self) -> u16 {
        if (400..=599).contains(&self.code) {
            self.code
        } else {
            500
        }
    }

    /// The REST error body:
    /// `{"name","message","nodeID","code","type","retryable","stack","data"}`.
    /// `stack` is always `null`: the gateway never leaks server internals.
    pub fn to_body(&self, node_id: &str) -> Value {
        json!({
            "name": self.name,
            "message": self.message,
            "nodeID": node_id,
            "code": self.code,
            "type": self.kind,
            "retryable": self.retryable,
            "stack": Value::Null,
            "data": self.data,
        })
    }
}

/// Errors of the gateway itself: configuration and binding.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration is inconsistent; the message says which setting. Fix the setting.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A REST route could not be compiled; the message names the route. Fix the pattern.
    #[error("invalid route: {0}")]
    Route(String),
    /// The listening socket could not be bound or served (address in use, permission).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS certificate or key could not be read or used; the message names the file and
    /// the problem. Fix the file (PEM certificate chain, PEM private key that matches it).
    #[error("TLS: {0}")]
    Tls(String),
}
