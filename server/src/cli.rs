//! The program's command line: every option with its environment variable, and the
//! [`GatewayConfig`] it makes.

use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use moleculer_ws_server::GatewayConfig;

/// The Moleculer WebSocket gateway: pushes `websocket.send` events to WebSocket clients and
/// maps REST routes to actions. Every option can also be set by the environment variable shown.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub(crate) struct Cli {
    /// Address to listen on (use port 0 for any free port).
    #[arg(long, env = "MOLECULER_WS_LISTEN", default_value = "127.0.0.1:3000")]
    pub(crate) listen: String,

    /// This node's ID (in error bodies; in a cluster, the Moleculer node ID, unique per node).
    /// Default: moleculer-ws-<pid>, or <hostname>-<pid> with --transporter.
    #[arg(long, env = "MOLECULER_WS_NODE_ID")]
    pub(crate) node_id: Option<String>,

    /// Join a Moleculer cluster through this transporter: nats://host:port or
    /// redis://host:port. Default: none (embedded broker, this process only).
    #[arg(long, env = "MOLECULER_WS_TRANSPORTER")]
    pub(crate) transporter: Option<String>,

    /// Cluster namespace: only nodes of the same namespace see each other (topics MOL-<ns>.*).
    #[arg(long, env = "MOLECULER_WS_NAMESPACE", default_value = "")]
    pub(crate) namespace: String,

    /// Moleculer protocol version: 4 for moleculer 0.14 and moleculer-java, 5 for moleculer 0.15.
    #[arg(long, env = "MOLECULER_WS_PROTOCOL_VERSION", default_value_t = 4,
          value_parser = clap::value_parser!(u8).range(4..=5))]
    pub(crate) protocol_version: u8,

    /// How often the cluster HEARTBEAT is sent; silent nodes are dropped after 3 intervals.
    #[arg(long, env = "MOLECULER_WS_CLUSTER_HEARTBEAT_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub(crate) cluster_heartbeat_interval: Duration,

    /// How long a call of an action on another node may take before 504 REQUEST_TIMEOUT.
    #[arg(long, env = "MOLECULER_WS_CLUSTER_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub(crate) cluster_request_timeout: Duration,

    /// Largest packet accepted from the transporter, in bytes; larger ones are dropped and
    /// counted.
    #[arg(long, env = "MOLECULER_WS_CLUSTER_MAX_PACKET_SIZE", default_value_t = 1024 * 1024)]
    pub(crate) cluster_max_packet_size: usize,

    /// Most other nodes kept in the node table; INFO from more is refused until one leaves.
    #[arg(long, env = "MOLECULER_WS_CLUSTER_MAX_NODES", default_value_t = 1024)]
    pub(crate) cluster_max_nodes: usize,

    /// Most calls from other nodes running at once; more get 429 QUEUE_FULL at once.
    #[arg(
        long,
        env = "MOLECULER_WS_CLUSTER_MAX_CONCURRENT_REQUESTS",
        default_value_t = 256
    )]
    pub(crate) cluster_max_concurrent_requests: usize,

    /// Run the demo: the sample chat (POST /api/chat/send broadcasts to ws/chat) and the demo
    /// page (the directory --static-dir, default ./js) at /.
    #[arg(long, env = "MOLECULER_WS_DEMO")]
    pub(crate) demo: bool,

    /// Every gateway option: the fields of the library's config, with their docs as help.
    #[command(flatten)]
    pub(crate) gateway: GatewayConfig,
}

/// Parses `250ms`, `15s`, `2m` or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 250ms, 15s or 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?}: use ms, s or m")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

impl Cli {
    /// Reads the command line and the environment; on an error, and for `--help` and
    /// `--version`, prints and exits as clap does. `--help` shows one line per option: the
    /// first paragraph of its doc (the rest of a config field's doc is for the library's
    /// rustdoc, with its links and details).
    pub(crate) fn from_args() -> Self {
        let mut command = Self::command().mut_args(|arg| arg.long_help(None::<&str>));
        let mut matches = command.get_matches_mut();
        Self::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.format(&mut command).exit())
    }

    /// The gateway's settings: the options as given, with `--demo`'s chat and page.
    pub(crate) fn config(&self) -> GatewayConfig {
        let mut config = self.gateway.clone().sample_chat(self.demo);
        if self.demo && config.static_dir.is_none() {
            config = config.static_dir("js");
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3h").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// `--demo` is the sample chat and the page in ./js, unless `--static-dir` names another.
    #[test]
    fn demo_is_the_chat_and_its_page() {
        let config = |args: &[&str]| {
            let args = std::iter::once("moleculer-ws-server").chain(args.iter().copied());
            Cli::try_parse_from(args).unwrap().config()
        };
        let plain = config(&[]);
        assert!(!plain.sample_chat && plain.static_dir.is_none());
        let demo = config(&["--demo"]);
        assert!(demo.sample_chat);
        assert_eq!(demo.static_dir.as_deref(), Some(std::path::Path::new("js")));
        let own_page = config(&["--demo", "--static-dir", "public"]);
        assert!(own_page.sample_chat);
        assert_eq!(
            own_page.static_dir.as_deref(),
            Some(std::path::Path::new("public"))
        );
    }
}
