//! Our Rust client under the Autobahn TestSuite's fuzzing server (`wstest -m fuzzingserver`,
//! driven by `tests/autobahn/run.sh`).
//!
//! The real tokio driver (its tungstenite settings, read loop and close handling) runs every
//! case; the only difference is `WebSocketConfig::echo` (feature `autobahn`), which sends each
//! text and binary message back as the suite requires. The heartbeat and reconnect are off so
//! that the client sends nothing of its own.
//!
//! ```text
//! wstest -m fuzzingserver -s fuzzingserver.json &      # listens on, e.g., 127.0.0.1:9001
//! cargo run -p moleculer-ws-conformance --example autobahn-client -- --url ws://127.0.0.1:9001
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use moleculer_ws_client::{Client, Event, ReconnectPolicy, WebSocketConfig};

/// Command line of the Autobahn client runner.
#[derive(Parser, Debug)]
struct Args {
    /// The fuzzing server's URL.
    #[arg(long, default_value = "ws://127.0.0.1:9001")]
    url: String,
    /// The agent name under which the reports are filed.
    #[arg(long, default_value = "moleculer-ws-client")]
    agent: String,
    /// Longest time one case may take before the runner gives up on it and moves on.
    #[arg(long, default_value_t = 120)]
    case_timeout_secs: u64,
}

/// One connection with the driver's defaults, except: echo on, no heartbeat, no reconnect.
fn config(query: &[(&str, String)]) -> WebSocketConfig {
    let mut config = WebSocketConfig::default()
        .echo(true)
        .heartbeat_interval(Duration::ZERO)
        .heartbeat_timeout(Duration::ZERO)
        .reconnect(ReconnectPolicy::disabled());
    for (name, value) in query {
        config = config.query(*name, value.clone());
    }
    config
}

/// Runs one connection until the server closes it; returns the text messages received.
async fn run(
    client: &Client,
    url: &str,
    config: WebSocketConfig,
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let (socket, mut events) = client.ws(url, config).map_err(|e| e.to_string())?;
    let mut texts = Vec::new();
    let outcome = tokio::time::timeout(timeout, async {
        while let Some(event) = events.recv().await {
            match event {
                Event::Message(m) => texts.push(m.into_text()),
                Event::Closed { .. } | Event::Stopped(_) => break,
                _ => {}
            }
        }
    })
    .await;
    socket.disconnect().await;
    outcome.map_err(|_| format!("{url}: no close within {timeout:?}"))?;
    Ok(texts)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let base = args.url.trim_end_matches('/');
    let timeout = Duration::from_secs(args.case_timeout_secs);
    let client = match Client::new() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("autobahn-client: {e}");
            return ExitCode::FAILURE;
        }
    };

    let count_url = format!("{base}/getCaseCount");
    let count = match run(&client, &count_url, config(&[]), timeout).await {
        Ok(texts) => texts.first().and_then(|t| t.trim().parse::<u32>().ok()),
        Err(e) => {
            eprintln!("autobahn-client: {e}");
            None
        }
    };
    let Some(count) = count else {
        eprintln!("autobahn-client: no case count from {count_url}");
        return ExitCode::FAILURE;
    };
    println!("autobahn-client: {count} cases");

    let mut stuck = 0;
    for case in 1..=count {
        let query = [("case", case.to_string()), ("agent", args.agent.clone())];
        if let Err(e) = run(&client, &format!("{base}/runCase"), config(&query), timeout).await {
            eprintln!("autobahn-client: case {case}: {e}");
            stuck += 1;
        }
        if case % 100 == 0 {
            println!("autobahn-client: {case}/{count} cases run");
        }
    }

    let query = [("agent", args.agent.clone())];
    let reports = format!("{base}/updateReports");
    if let Err(e) = run(&client, &reports, config(&query), timeout).await {
        eprintln!("autobahn-client: {e}");
        return ExitCode::FAILURE;
    }
    println!("autobahn-client: reports updated ({stuck} cases timed out)");
    // A stuck case shows in the report too; the exit code says it as well.
    if stuck == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
