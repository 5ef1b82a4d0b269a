//! The cross-field checks of [`GatewayConfig`], in one place.

use std::time::Duration;

use super::GatewayConfig;
use crate::error::ServerError;

impl GatewayConfig {
    /// Cross-field checks, in one place.
    pub(crate) fn validate(&self) -> Result<(), ServerError> {
        let bad = |m: &str| Err(ServerError::Config(m.to_owned()));
        if self.max_message_size < 16 {
            return bad("max_message_size must be at least 16 bytes");
        }
        if self.ws_read_buffer < 256 {
            return bad("ws_read_buffer must be at least 256 bytes");
        }
        if self.outbound_queue == 0 {
            return bad("outbound_queue must be at least 1");
        }
        if self.sweep_period.is_zero() {
            return bad("sweep_period must be more than 0");
        }
        if self.max_header_size < 8192 {
            return bad("max_header_size must be at least 8192 bytes");
        }
        if self.handshake_timeout.is_zero() || self.write_timeout.is_zero() {
            return bad("handshake_timeout and write_timeout must be more than 0");
        }
        if self.event_stream_keep_alive.is_zero() {
            return bad("event_stream_keep_alive must be more than 0");
        }
        if self.request_timeout.is_zero() {
            return bad("request_timeout must be more than 0");
        }
        if self
            .idle_timeout
            .is_some_and(|t| t < Duration::from_secs(1))
        {
            return bad("idle_timeout must be at least 1 s (well above the clients' heartbeat)");
        }
        if let Some(o) = self
            .cors_origins
            .iter()
            .find(|o| *o != "*" && o.parse::<axum::http::HeaderValue>().is_err())
        {
            return Err(ServerError::Config(format!(
                "CORS origin {o:?} is not a valid header value"
            )));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return bad("tls_cert and tls_key must be set together");
        }
        if self.token.as_deref() == Some("") || self.metrics_token.as_deref() == Some("") {
            return bad("token and metrics_token must not be empty");
        }
        if self.max_path_length == 0 || self.max_paths == 0 {
            return bad("max_path_length and max_paths must be at least 1");
        }
        if self.body_timeout.is_zero() {
            return bad("body_timeout must be more than 0");
        }
        if let Some(p) = self
            .allowed_path_prefixes
            .iter()
            .find(|p| !p.starts_with('/'))
        {
            return Err(ServerError::Config(format!(
                "allowed path prefix {p:?} must start with '/'"
            )));
        }
        Ok(())
    }
}
