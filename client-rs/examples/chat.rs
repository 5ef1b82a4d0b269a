//! A chat listener: prints every message pushed to `ws/chat` and posts one over REST. It asks
//! for message recovery and says what each reconnect recovered.
//!
//! ```text
//! cargo run -p moleculer-ws-server -- --demo             # a gateway with the chat on 127.0.0.1:3000
//! cargo run -p moleculer-ws-client --example chat -- http://127.0.0.1:3000/ ann "hello"
//! ```
//!
//! Several gateways of a cluster, comma-separated: the socket moves to the next one when its
//! gateway goes away (README "Message recovery", cluster model).

use std::time::Duration;

use moleculer_ws_client::{Client, Event, WebSocketConfig};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), moleculer_ws_client::Error> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:3000/".into());
    let user = args.next().unwrap_or_else(|| "rust".into());
    let text = args.next().unwrap_or_else(|| "hello from Rust".into());

    let bases: Vec<&str> = base.split(',').collect();
    let client = Client::builder().base_url(bases[0]).build()?;
    let config = WebSocketConfig::default()
        .heartbeat_interval(Duration::from_secs(30))
        .recover(true);
    let urls: Vec<String> = bases
        .iter()
        .map(|b| format!("{}/ws/chat", b.trim_end_matches('/')))
        .collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let (socket, mut events) = client.ws_any(&urls, config)?;
    socket.wait_for_connection(Duration::from_secs(10)).await?;
    println!("connected to /ws/chat on {base}");

    let answer = client
        .post("/api/chat/send", &json!({"user": user, "text": text}))
        .await?
        .error_for_status()?;
    println!("posted: HTTP {}", answer.status());

    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(Event::Message(m)) => match m.json() {
                    Some(v) => println!(
                        "[{}] {}",
                        v["user"].as_str().unwrap_or("?"),
                        v["text"].as_str().unwrap_or_default()
                    ),
                    None => println!("{}", m.text()),
                },
                Some(Event::Reconnecting { attempt, delay }) => {
                    println!("connection lost, attempt {attempt} in {delay:?}");
                }
                Some(Event::Recovery { recovered: true, replayed }) => {
                    println!("reconnected: {replayed} missed messages recovered");
                }
                Some(Event::Resync) => println!("messages may have been missed: refetch the state"),
                Some(Event::Stopped(error)) => {
                    println!("stopped: {error:?}");
                    break;
                }
                Some(_) => {}
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    socket.disconnect().await;
    Ok(())
}
