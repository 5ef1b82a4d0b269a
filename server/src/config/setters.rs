//! The by-value setters of [`GatewayConfig`], one per field (each field's documentation says
//! its default and trade-off).

use std::path::PathBuf;
use std::time::Duration;

use super::{GatewayConfig, ProxyHeader};

impl GatewayConfig {
    /// Sets [`max_message_size`](Self::max_message_size).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }
    /// Sets [`ws_read_buffer`](Self::ws_read_buffer).
    pub fn ws_read_buffer(mut self, bytes: usize) -> Self {
        self.ws_read_buffer = bytes;
        self
    }
    /// Sets [`ws_write_buffer`](Self::ws_write_buffer).
    pub fn ws_write_buffer(mut self, bytes: usize) -> Self {
        self.ws_write_buffer = bytes;
        self
    }
    /// Sets [`compression`](Self::compression).
    pub fn compression(mut self, on: bool) -> Self {
        self.compression = on;
        self
    }
    /// Sets [`event_streams`](Self::event_streams).
    pub fn event_streams(mut self, on: bool) -> Self {
        self.event_streams = on;
        self
    }

    /// Sets [`event_stream_keep_alive`](Self::event_stream_keep_alive).
    pub fn event_stream_keep_alive(mut self, period: Duration) -> Self {
        self.event_stream_keep_alive = period;
        self
    }

    /// Sets [`compression_threshold`](Self::compression_threshold).
    pub fn compression_threshold(mut self, bytes: usize) -> Self {
        self.compression_threshold = bytes;
        self
    }
    /// Sets [`outbound_queue`](Self::outbound_queue).
    pub fn outbound_queue(mut self, messages: usize) -> Self {
        self.outbound_queue = messages;
        self
    }
    /// Sets [`sweep_period`](Self::sweep_period).
    pub fn sweep_period(mut self, period: Duration) -> Self {
        self.sweep_period = period;
        self
    }
    /// Sets [`max_path_length`](Self::max_path_length).
    pub fn max_path_length(mut self, bytes: usize) -> Self {
        self.max_path_length = bytes;
        self
    }
    /// Sets [`max_paths`](Self::max_paths).
    pub fn max_paths(mut self, n: usize) -> Self {
        self.max_paths = n;
        self
    }
    /// Sets [`token`](Self::token).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
    /// Adds an allowed origin ([`allowed_origins`](Self::allowed_origins)).
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.allowed_origins.push(origin.into());
        self
    }
    /// Adds an allowed path prefix ([`allowed_path_prefixes`](Self::allowed_path_prefixes)).
    pub fn allow_path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.allowed_path_prefixes.push(prefix.into());
        self
    }
    /// Sets [`static_dir`](Self::static_dir).
    pub fn static_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.static_dir = Some(dir.into());
        self
    }
    /// Sets [`sample_chat`](Self::sample_chat).
    pub fn sample_chat(mut self, on: bool) -> Self {
        self.sample_chat = on;
        self
    }
    /// Sets [`trigger`](Self::trigger).
    pub fn trigger(mut self, on: bool) -> Self {
        self.trigger = on;
        self
    }
    /// Sets [`max_body_size`](Self::max_body_size).
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }
    /// Sets [`body_timeout`](Self::body_timeout).
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }
    /// Sets [`max_connections`](Self::max_connections).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }
    /// Sets [`shutdown_timeout`](Self::shutdown_timeout).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Sets [`max_sockets`](Self::max_sockets).
    pub fn max_sockets(mut self, n: usize) -> Self {
        self.max_sockets = n;
        self
    }
    /// Sets [`max_sockets_per_address`](Self::max_sockets_per_address).
    pub fn max_sockets_per_address(mut self, n: usize) -> Self {
        self.max_sockets_per_address = n;
        self
    }
    /// Sets [`handshake_timeout`](Self::handshake_timeout).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
    /// Sets [`max_header_size`](Self::max_header_size).
    pub fn max_header_size(mut self, bytes: usize) -> Self {
        self.max_header_size = bytes;
        self
    }
    /// Sets [`max_frames_per_second`](Self::max_frames_per_second).
    pub fn max_frames_per_second(mut self, n: u32) -> Self {
        self.max_frames_per_second = n;
        self
    }
    /// Sets [`max_fragments`](Self::max_fragments).
    pub fn max_fragments(mut self, n: u32) -> Self {
        self.max_fragments = n;
        self
    }
    /// Sets [`outbound_queue_bytes`](Self::outbound_queue_bytes).
    pub fn outbound_queue_bytes(mut self, bytes: usize) -> Self {
        self.outbound_queue_bytes = bytes;
        self
    }
    /// Sets [`write_timeout`](Self::write_timeout).
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }
    /// Sets [`idle_timeout`](Self::idle_timeout).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }
    /// Sets [`request_timeout`](Self::request_timeout).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
    /// Adds a CORS origin ([`cors_origins`](Self::cors_origins)).
    pub fn cors_origin(mut self, origin: impl Into<String>) -> Self {
        self.cors_origins.push(origin.into());
        self
    }
    /// Sets [`metrics_token`](Self::metrics_token).
    pub fn metrics_token(mut self, token: impl Into<String>) -> Self {
        self.metrics_token = Some(token.into());
        self
    }
    /// Sets [`metrics_max_paths`](Self::metrics_max_paths).
    pub fn metrics_max_paths(mut self, n: usize) -> Self {
        self.metrics_max_paths = n;
        self
    }
    /// Sets [`test_hooks`](Self::test_hooks) (cargo feature `test-hooks` only).
    #[cfg(feature = "test-hooks")]
    pub fn test_hooks(mut self, on: bool) -> Self {
        self.test_hooks = on;
        self
    }

    /// Sets [`echo`](Self::echo) (cargo feature `test-hooks` only).
    #[cfg(feature = "test-hooks")]
    pub fn echo(mut self, on: bool) -> Self {
        self.echo = on;
        self
    }

    /// Serves TLS with this PEM certificate chain and private key
    /// ([`tls_cert`](Self::tls_cert), [`tls_key`](Self::tls_key)); the files are read when
    /// the gateway is built.
    pub fn tls_pem_files(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls_cert = Some(cert.into());
        self.tls_key = Some(key.into());
        self
    }

    /// Sets [`recovery_history`](Self::recovery_history).
    pub fn recovery_history(mut self, messages: usize) -> Self {
        self.recovery_history = messages;
        self
    }
    /// Sets [`recovery_max_age`](Self::recovery_max_age).
    pub fn recovery_max_age(mut self, age: Duration) -> Self {
        self.recovery_max_age = age;
        self
    }
    /// Sets [`recovery_history_bytes`](Self::recovery_history_bytes).
    pub fn recovery_history_bytes(mut self, bytes: usize) -> Self {
        self.recovery_history_bytes = bytes;
        self
    }
    /// Sets [`recovery_replay_rate`](Self::recovery_replay_rate).
    pub fn recovery_replay_rate(mut self, bytes_per_second: usize) -> Self {
        self.recovery_replay_rate = bytes_per_second;
        self
    }
    /// Sets [`trust_proxy`](Self::trust_proxy).
    pub fn trust_proxy(mut self, header: Option<ProxyHeader>) -> Self {
        self.trust_proxy = header;
        self
    }
}
