//! `moleculer-ws-conformance`: check a gateway by URL, check our Rust client under faults, or
//! run the fault proxy for other clients (the browser tests drive it).

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use moleculer_ws_conformance::{
    check_gateway, check_rust_client, report, CaseResult, ClientTarget, Fault, FaultProxy,
    GatewayTarget,
};

/// Conformance harness for Moleculer WebSocket gateways and clients.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a gateway (ours or any Moleculer-Java one) against the contract.
    Gateway {
        /// The gateway's base URL, e.g. http://127.0.0.1:3000.
        #[arg(long)]
        url: url::Url,
        /// The route that broadcasts `websocket.send` with the posted `{path, data}`.
        #[arg(long, default_value = "/api/websocket/send")]
        trigger: String,
        /// Bearer token for the trigger and the sockets.
        #[arg(long)]
        token: Option<String>,
        /// How long to wait for an expected frame, in ms.
        #[arg(long, default_value_t = 5000)]
        wait_ms: u64,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Drive our Rust client through the fault proxy against a reference gateway started with
    /// --trigger --test-hooks (built with the cargo feature test-hooks) and, for the
    /// event-stream cases, --event-stream-keep-alive 200ms (below the clients' 600 ms
    /// heartbeat interval).
    Clients {
        /// The gateway's address, e.g. 127.0.0.1:3000.
        #[arg(long)]
        gateway: SocketAddr,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Run the fault proxy: prints `listening <addr>`, then reads one command per line on
    /// standard input: pass, blackhole, slice, refuse-upgrades, down, delay:<ms>, cut; answers
    /// `ok <command>`.
    Proxy {
        /// Where to forward, e.g. 127.0.0.1:3000.
        #[arg(long)]
        upstream: SocketAddr,
    },
}

fn print_results(results: &[CaseResult], json: bool) -> ExitCode {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(results).unwrap_or_default()
        );
    } else {
        print!("{}", report::table(results));
        println!("info: {} reported", report::info_count(results));
        println!("{}", report::summary(results));
    }
    if report::any_failed(results) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn proxy(upstream: SocketAddr) -> ExitCode {
    let proxy = match FaultProxy::start(upstream).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot start the proxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening {}", proxy.local_addr());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = rx.recv().await {
        let cmd = line.trim();
        if cmd == "cut" {
            proxy.cut();
        } else {
            match cmd.parse::<Fault>() {
                Ok(f) => proxy.set(f),
                Err(e) => {
                    println!("error {e}");
                    continue;
                }
            }
        }
        println!("ok {cmd}");
    }
    ExitCode::SUCCESS
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Gateway {
            url,
            trigger,
            token,
            wait_ms,
            json,
        } => {
            let mut target = GatewayTarget::new(url);
            target.trigger = trigger;
            target.token = token;
            target.wait = Duration::from_millis(wait_ms);
            print_results(&check_gateway(target).await, json)
        }
        Command::Clients { gateway, json } => {
            print_results(&check_rust_client(ClientTarget::new(gateway)).await, json)
        }
        Command::Proxy { upstream } => proxy(upstream).await,
    }
}
