//! The one place each default of [`GatewayConfig`] is written (the program's `--help` shows
//! these, read from here).

use std::time::Duration;

use super::GatewayConfig;

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            max_message_size: 64 * 1024,
            ws_read_buffer: 2 * 1024,
            ws_write_buffer: 8 * 1024,
            compression: true,
            compression_threshold: 256,
            event_streams: true,
            event_stream_keep_alive: Duration::from_secs(5),
            outbound_queue: 256,
            sweep_period: Duration::from_secs(15),
            max_path_length: 1024,
            max_paths: 100_000,
            token: None,
            trigger: false,
            sample_chat: false,
            metrics_token: None,
            metrics_max_paths: 100,
            allowed_origins: Vec::new(),
            allowed_path_prefixes: Vec::new(),
            static_dir: None,
            max_body_size: 1024 * 1024,
            body_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            #[cfg(feature = "test-hooks")]
            test_hooks: false,
            #[cfg(feature = "test-hooks")]
            echo: false,
            shutdown_timeout: Duration::from_secs(10),
            max_sockets: 50_000,
            max_sockets_per_address: 0,
            handshake_timeout: Duration::from_secs(10),
            max_header_size: 16 * 1024,
            max_frames_per_second: 100,
            max_fragments: 128,
            outbound_queue_bytes: 4 * 1024 * 1024,
            write_timeout: Duration::from_secs(10),
            recovery_history: 1000,
            recovery_max_age: Duration::from_secs(300),
            recovery_history_bytes: 16 * 1024 * 1024,
            recovery_replay_rate: 1024 * 1024,
            idle_timeout: None,
            request_timeout: Duration::from_secs(30),
            cors_origins: Vec::new(),
            tls_cert: None,
            tls_key: None,
            trust_proxy: None,
        }
    }
}

#[cfg(all(test, feature = "cli"))]
mod tests {
    use super::GatewayConfig;

    /// The defaults of the command line are these, for every field (the skipped ones too).
    #[test]
    fn the_options_default_to_these() {
        let parsed = crate::cli_values::parsed_without_options::<GatewayConfig>();
        assert_eq!(
            format!("{parsed:?}"),
            format!("{:?}", GatewayConfig::default())
        );
    }
}
