//! End-to-end REST calls against the reference gateway on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use moleculer_ws_client::{Client, Error, Method, StatusCode, WebSocketConfig};
use moleculer_ws_server::GatewayConfig;
use serde_json::json;
use support::*;

#[tokio::test]
async fn rest_call_triggers_a_broadcast() {
    let gw = gateway().await;
    let c = client(&gw);
    let (ws, mut events) = c.ws("/ws/chat", WebSocketConfig::default()).unwrap();
    ws.connect().await.unwrap();
    clients_at(&gw, "/ws/chat", 1).await;

    let resp = c
        .post("/api/chat/send", &json!({"user": "ann", "text": "hello"}))
        .await
        .unwrap();
    assert!(resp.is_success(), "{resp:?}");
    let m = message(&mut events).await;
    let v = m.json().unwrap();
    assert_eq!(
        (&v["type"], &v["user"], &v["text"]),
        (&json!("message"), &json!("ann"), &json!("hello"))
    );
    assert!(v.get("time").is_some());

    // Errors are responses with a typed gateway error.
    let resp = c.get("/api/nope").query(&[("a", "1")]).await.unwrap();
    assert_eq!(resp.status(), 404);
    let e = resp.error().unwrap();
    assert_eq!(
        (e.status, e.message.as_str()),
        (404, "Not Found: /api/nope")
    );
    assert!(matches!(resp.error_for_status(), Err(Error::Gateway(_))));
    ws.disconnect().await;
}

#[tokio::test]
async fn token_reaches_socket_and_rest_and_is_asked_per_attempt() {
    let gw = gateway_at(GatewayConfig::default().token("secret"), "127.0.0.1:0").await;
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    let c = Client::builder()
        .base_url(&base(gw.local_addr()))
        .token_provider(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            Some("secret".into())
        })
        .build()
        .unwrap();
    let (ws, mut events) = c.ws("/ws/secure", fast()).unwrap();
    ws.connect().await.unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    clients_at(&gw, "/ws/secure", 1).await;

    // The protected trigger route needs the bearer token the provider gives.
    let resp = c
        .post(
            "/api/websocket/send",
            &json!({"path": "/ws/secure", "data": {"n": 1}}),
        )
        .await
        .unwrap();
    assert!(resp.is_success(), "{resp:?}");
    assert_eq!(message(&mut events).await.json(), Some(&json!({"n": 1})));
    assert_eq!(asked.load(Ordering::SeqCst), 2);

    // Per-request headers override the default one.
    let resp = c
        .request(Method::GET, "/api/websocket/clients")
        .header("Authorization", "Bearer wrong")
        .timeout(ms(5000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "{resp:?}");
    ws.disconnect().await;
}

#[tokio::test]
async fn every_method_and_typed_action_errors() {
    use moleculer_ws_server::{Gateway, MoleculerError as ServerError, Route};
    let gateway = Gateway::builder()
        .route(Route::new("PUT", "/api/items/:id", "items.put"))
        .route(Route::new("PATCH", "/api/items/:id", "items.put"))
        .route(Route::new("DELETE", "/api/items/:id", "items.put"))
        .route(Route::new("OPTIONS", "/api/items/:id", "items.put"))
        .route(Route::get("/api/items/:id", "items.put"))
        .route(Route::post("/api/invalid", "items.invalid"))
        .route(Route::get("/api/slow", "items.slow"))
        .build()
        .unwrap();
    gateway
        .broker()
        .add_action("items.put", |ctx| async move { Ok(ctx.params) });
    gateway
        .broker()
        .add_action("items.invalid", |_ctx| async move {
            Err(ServerError::validation("name is required").with_data(json!({"field": "name"})))
        });
    gateway
        .broker()
        .add_action("items.slow", |_ctx| async move {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            Ok(json!(null))
        });
    let gw = gateway.bind("127.0.0.1:0").await.unwrap();
    let c = client(&gw);

    // Path variables, query and JSON body all reach the action.
    let r = c.put("/api/items/7", &json!({"name": "x"})).await.unwrap();
    assert_eq!(
        (r.status(), r.json()),
        (StatusCode::OK, &json!({"id": "7", "name": "x"}))
    );
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let r = c.patch("/api/items/8", &json!({"n": 1})).await.unwrap();
    assert_eq!(r.json()["n"], 1);
    let r = c.delete("/api/items/9").json(&json!({})).await.unwrap();
    assert_eq!(r.json()["id"], "9");
    let r = c.get("/api/items/1").query(&[("q", "a b")]).await.unwrap();
    assert_eq!(r.json(), &json!({"id": "1", "q": "a b"}));
    let r = c
        .options("/api/items/2")
        .query(&[("o", "1")])
        .await
        .unwrap();
    assert_eq!(r.json()["o"], "1");
    let r = c
        .head("/api/nothing-here")
        .query(&[("h", "1")])
        .await
        .unwrap();
    assert_eq!(
        (r.status(), r.json()),
        (StatusCode::NOT_FOUND, &serde_json::Value::Null)
    );

    // An action error: status = code, typed body.
    let r = c.post("/api/invalid", &json!({})).await.unwrap();
    assert_eq!(r.status(), 422);
    let e = r.error().unwrap();
    assert_eq!(e.kind, "VALIDATION_ERROR");
    assert_eq!(e.message, "name is required");
    assert_eq!(e.data, json!({"field": "name"}));
    assert_eq!((e.code, e.status), (422, 422));

    // A per-request timeout.
    let err = c
        .request(Method::GET, "/api/slow")
        .timeout(std::time::Duration::from_millis(100))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Request(e) if e.is_timeout() && e.to_string().starts_with("timed out")),
        "{err:?}"
    );

    // Nothing listening: a transport error, not a response.
    drop(gw);
    let err = c.get("/api/items/1").await.unwrap_err();
    let Error::Request(e) = &err else {
        panic!("expected a request error, got {err:?}");
    };
    assert!(e.is_connect(), "{e}");
    // The causes are there to walk, each said once: the error prints reqwest's message, its
    // sources what failed below (down to the system's error).
    let mut chain = vec![err.to_string()];
    let mut cause = std::error::Error::source(&err);
    while let Some(c) = cause {
        chain.push(c.to_string());
        cause = c.source();
    }
    assert!(chain[0].starts_with("request failed: "), "{chain:?}");
    assert!(chain.len() >= 2, "{chain:?}");
    for (i, text) in chain.iter().enumerate().skip(1) {
        assert!(
            !chain[i - 1].ends_with(text.as_str()),
            "said twice: {chain:?}"
        );
    }
    // The last cause is the system's (refused, or reset while the gateway goes away).
    assert!(
        chain.last().is_some_and(|t| t.contains("os error")),
        "{chain:?}"
    );
}

#[tokio::test]
async fn requests_without_a_body_are_json_unless_get_or_head() {
    use moleculer_ws_server::{Gateway, Route};
    let mut builder = Gateway::builder();
    for method in ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "GET"] {
        builder = builder.route(Route::new(method, "/api/echo/:id", "echo.params"));
    }
    let gateway = builder.build().unwrap();
    gateway
        .broker()
        .add_action("echo.params", |ctx| async move { Ok(ctx.params) });
    let gw = gateway.bind("127.0.0.1:0").await.unwrap();
    let c = client(&gw);

    // The gateway refuses (415) a request that is not GET or HEAD unless it is JSON, also
    // without a body: the client says application/json on every such request.
    for method in [
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ] {
        let r = c
            .request(method.clone(), "/api/echo/1")
            .query(&[("q", "a")])
            .send()
            .await
            .unwrap();
        assert_eq!(
            (r.status(), r.json()),
            (StatusCode::OK, &json!({"id": "1", "q": "a"})),
            "{method:?}"
        );
    }
    // A GET says no Content-Type and passes.
    let r = c.request(Method::GET, "/api/echo/2").send().await.unwrap();
    assert_eq!(
        (r.status(), r.json()),
        (StatusCode::OK, &json!({"id": "2"}))
    );
    // A per-request Content-Type replaces it: the gateway then refuses the call.
    let r = c
        .request(Method::POST, "/api/echo/3")
        .header("Content-Type", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415, "{r:?}");
    assert_eq!(r.error().unwrap().kind, "UNSUPPORTED_MEDIA_TYPE");
}
