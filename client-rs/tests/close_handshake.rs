//! The close handshake against a bare tungstenite server on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use moleculer_ws_client::{Client, Event, ReconnectPolicy, WebSocketConfig};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(5);

/// A server's close frame is answered with a close frame before the TCP connection goes
/// (RFC 6455 section 5.5.1). The Autobahn TestSuite found every close unclean before.
#[tokio::test]
async fn a_server_close_is_answered_with_a_close_frame() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let bye = CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        };
        ws.send(Message::Close(Some(bye))).await.unwrap();
        tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("no answer to the close frame")
    });

    let config = WebSocketConfig::default().reconnect(ReconnectPolicy::disabled());
    let (socket, mut events) = Client::new()
        .unwrap()
        .ws(&format!("ws://{addr}/ws"), config)
        .unwrap();
    let closed = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.recv().await {
            if let Event::Closed { code, reason, .. } = event {
                return (code, reason);
            }
        }
        panic!("the event stream ended before Closed");
    })
    .await
    .expect("no Closed event");
    assert_eq!(closed, (Some(1000), "bye".to_owned()));

    match server.await.unwrap() {
        Some(Ok(Message::Close(Some(reply)))) => assert_eq!(reply.code, CloseCode::Normal),
        other => panic!("expected the client's close reply, got {other:?}"),
    }
    socket.disconnect().await;
}
