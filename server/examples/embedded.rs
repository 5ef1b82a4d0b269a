//! The gateway inside an existing axum application: the application keeps its own routes and
//! listener, nests the gateway under `/realtime`, and pushes from its own handlers.
//!
//! ```sh
//! cargo run -p moleculer-ws-server --example embedded -- 127.0.0.1:3000
//! # a WebSocket client at ws://127.0.0.1:3000/realtime/ws/news, then:
//! curl -X POST http://127.0.0.1:3000/news -H 'Content-Type: application/json' -d '{"title":"hi"}'
//! ```

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use moleculer_ws_server::{Broker, EmbeddedGateway, Gateway, GatewayConfig, ServerError};
use serde_json::{json, Value};

/// The gateway: sockets only under `/ws/` (relative to where it is mounted), no sample chat.
pub fn gateway() -> Result<EmbeddedGateway, ServerError> {
    Gateway::builder()
        .config(
            GatewayConfig::default()
                .sample_chat(false)
                .allow_path_prefix("/ws/"),
        )
        .build()?
        .embed()
}

/// The application: its own routes, and the gateway nested under `/realtime`
/// (`ws://host/realtime/ws/news`, `GET /realtime/metrics`, ...).
pub fn app(gateway: &EmbeddedGateway) -> Router {
    Router::new()
        .route("/", get(|| async { "my application" }))
        .route("/news", post(publish))
        .with_state(gateway.broker().clone())
        .nest("/realtime", gateway.router())
}

/// The application's own handler pushes to every socket at `/realtime/ws/news`.
async fn publish(State(broker): State<Broker>, Json(news): Json<Value>) -> StatusCode {
    broker
        .broadcast("websocket.send", json!({"path": "ws/news", "data": news}))
        .await;
    StatusCode::ACCEPTED
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let gateway = gateway()?;
    let app = app(&gateway);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("application on http://{}/", listener.local_addr()?);
    // The peer's address reaches the gateway's access filter through ConnectInfo.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = tokio::signal::ctrl_c().await;
        // Upgraded sockets are not requests: close them before the server stops.
        gateway.shutdown().await;
    })
    .await?;
    Ok(())
}
