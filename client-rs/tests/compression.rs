//! permessage-deflate in the tokio driver, against the gateway: compressed broadcasts arrive
//! whole, with fewer bytes on the wire than without the offer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use moleculer_ws_client::Client;
use serde_json::json;
use support::*;
use tokio::net::{TcpListener, TcpStream};

/// A TCP relay to `target`: each connection's byte counts (client to gateway, gateway to
/// client) are recorded when it ends.
async fn relay(target: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<(u64, u64)>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&counts);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let record = Arc::clone(&record);
            tokio::spawn(async move {
                let mut outbound = TcpStream::connect(target).await.unwrap();
                if let Ok(n) = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await {
                    record.lock().unwrap().push(n);
                }
            });
        }
    });
    (addr, counts)
}

#[tokio::test]
async fn compressed_broadcasts_arrive_whole_in_fewer_bytes() {
    let gw = gateway().await;
    let trigger = client(&gw);
    let mut received = Vec::new();
    for compression in [true, false] {
        let (addr, counts) = relay(gw.local_addr()).await;
        let c = Client::builder().base_url(&base(addr)).build().unwrap();
        let (ws, mut events) = c.ws("/ws/z", fast().compression(compression)).unwrap();
        within(ws.connect()).await.unwrap();
        clients_at(&gw, "/ws/z", 1).await;
        let mut texts = Vec::new();
        for n in 0..20 {
            // About 1 KiB of JSON each, as pushes are.
            let data = json!({"seq": n, "items": (0..20).map(|i| json!({
                "id": i, "name": format!("item {i}"), "price": i * 3, "tags": ["new", "sale"]
            })).collect::<Vec<_>>()});
            trigger
                .post(
                    "/api/websocket/send",
                    &json!({"path": "ws/z", "data": data}),
                )
                .await
                .unwrap();
            let text = message(&mut events).await.text().to_owned();
            assert_eq!(text, data.to_string());
            texts.push(text);
        }
        ws.disconnect().await;
        clients_at(&gw, "/ws/z", 0).await;
        let watched = Arc::clone(&counts);
        eventually(WAIT, "the relay's counts", move || {
            let done = !watched.lock().unwrap().is_empty();
            async move { done }
        })
        .await;
        let counts = counts.lock().unwrap()[0];
        received.push((texts, counts.1));
    }
    let (with, without) = (&received[0], &received[1]);
    println!(
        "gateway to client: {} bytes with compression, {} without",
        with.1, without.1
    );
    assert_eq!(with.0, without.0);
    let payload: usize = with.0.iter().map(String::len).sum();
    assert!(without.1 as usize > payload, "{} of {payload}", without.1);
    // The 101 answers are about the same size; the messages shrink about 5x.
    assert!(
        with.1 * 10 < without.1 * 4,
        "{} vs {} bytes",
        with.1,
        without.1
    );
}
