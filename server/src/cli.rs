//! The program's command line: its own options, and those of the library's configs
//! ([`ClusterConfig`], [`GatewayConfig`]: each field's option, environment variable, default
//! and help are written there).

use clap::{CommandFactory, FromArgMatches, Parser};
use moleculer_ws_server::{ClusterConfig, GatewayConfig};

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

    /// Every cluster option (with --transporter): the fields of the library's config.
    #[command(flatten)]
    pub(crate) cluster: ClusterConfig,

    /// Run the demo: the sample chat (POST /api/chat/send broadcasts to ws/chat) and the demo
    /// page (the directory --static-dir, default ./js) at /.
    #[arg(long, env = "MOLECULER_WS_DEMO")]
    pub(crate) demo: bool,

    /// Every gateway option: the fields of the library's config, with their docs as help.
    #[command(flatten)]
    pub(crate) gateway: GatewayConfig,
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
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// `--demo` is the sample chat and the page in ./js, unless `--static-dir` names another.
    #[test]
    fn demo_is_the_chat_and_its_page() {
        // The environment is not read here (MOLECULER_WS_DEMO could be set where this runs).
        let config = |args: &[&str]| {
            let args = std::iter::once("moleculer-ws-server").chain(args.iter().copied());
            let mut command = Cli::command().mut_args(|a| a.env(None));
            let mut matches = command.try_get_matches_from_mut(args).unwrap();
            Cli::from_arg_matches_mut(&mut matches).unwrap().config()
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
