//! Our gateway in echo mode, for the Autobahn TestSuite's fuzzing client
//! (`tests/autobahn/run.sh`): the real accept path, filter, limits and close handling, with
//! text and binary messages sent back instead of ignored.
//!
//! ```text
//! cargo run -p moleculer-ws-conformance --example echo-gateway -- \
//!     --listen 127.0.0.1:0 --max-message-size 16777216 --max-frames-per-second 0 \
//!     --max-fragments 0
//! ```
//!
//! Prints `listening on ws://ADDR/` once bound, then runs until SIGINT or SIGTERM.

use std::net::SocketAddr;

use clap::Parser;
use moleculer_ws_server::{Gateway, GatewayConfig};

/// Command line of the echo gateway.
#[derive(Parser, Debug)]
struct Args {
    /// Address to bind; port 0 picks a free port (printed once bound).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Largest inbound message and frame, in bytes (the gateway's default is 64 KiB;
    /// Autobahn's 9.* cases send up to 16 MiB).
    #[arg(long, default_value_t = GatewayConfig::default().max_message_size)]
    max_message_size: usize,
    /// Most inbound frames per second per socket, 0 for no limit (the gateway's default is
    /// 100; Autobahn's 9.7 and 9.8 cases send 1000 messages back to back).
    #[arg(long, default_value_t = GatewayConfig::default().max_frames_per_second)]
    max_frames_per_second: u32,
    /// Most frames one inbound message may be fragmented into, 0 for no limit (the gateway's
    /// default is 128; Autobahn's 9.3 and 9.4 cases send 4 MiB in fragments from 64 bytes up).
    #[arg(long, default_value_t = GatewayConfig::default().max_fragments)]
    max_fragments: u32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let config = GatewayConfig::default()
        .echo(true)
        .sample_chat(false)
        .max_message_size(args.max_message_size)
        .max_frames_per_second(args.max_frames_per_second)
        .max_fragments(args.max_fragments);
    let running = Gateway::builder()
        .config(config)
        .build()?
        .bind(args.listen)
        .await?;
    println!("listening on ws://{}/", running.local_addr());

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    running.shutdown().await;
    Ok(())
}
