//! REST rules of docs/protocol.md section 2, built-in routes, static files and metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use moleculer_ws_server::{Gateway, GatewayConfig, MoleculerError, Route};
use serde_json::{json, Value};
use support::*;

async fn echo_gateway() -> moleculer_ws_server::RunningGateway {
    let gw = start(
        Gateway::builder()
            .route(Route::post("/api/echo/:id", "test.echo"))
            .route(Route::get("/api/nothing", "test.nothing"))
            .route(Route::get("/api/fail", "test.fail"))
            .route(Route::new("*", "/api/any/*", "test.echo"))
            .route(Route::get("/api/missing", "no.such.action")),
    )
    .await;
    gw.broker()
        .add_action("test.echo", |ctx| async move { Ok(ctx.params) });
    gw.broker()
        .add_action("test.nothing", |_ctx| async move { Ok(Value::Null) });
    gw.broker().add_action("test.fail", |_ctx| async move {
        Err(
            MoleculerError::new("CustomError", "it broke", 418, "CUSTOM")
                .with_data(json!({"x": 1})),
        )
    });
    gw
}

#[tokio::test]
async fn params_merge_path_query_body_and_result_is_compact_json_no_cache() {
    let gw = echo_gateway().await;
    let resp = reqwest::Client::new()
        .post(http_url(&gw, "/api/echo/7?q=1&id=ignored"))
        .header("content-type", "application/json")
        .body(r#"{"id": 99, "q": "body", "b": [1, 2]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers();
    assert_eq!(h["content-type"], "application/json;charset=utf-8");
    assert_eq!(h["cache-control"], "no-store, no-cache, must-revalidate");
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"id":"7","q":"1","b":[1,2]}"#
    );
}

#[tokio::test]
async fn wildcard_route_takes_any_method_and_rest() {
    let gw = echo_gateway().await;
    let c = reqwest::Client::new();
    for path in ["/api/any", "/api/any/a/b/c"] {
        let resp = c
            .delete(http_url(&gw, path))
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn null_result_is_204_without_body() {
    let gw = echo_gateway().await;
    let resp = reqwest::get(http_url(&gw, "/api/nothing")).await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.text().await.unwrap(), "");
}

#[tokio::test]
async fn action_error_status_is_its_code_with_moleculer_body() {
    let gw = echo_gateway().await;
    let resp = reqwest::get(http_url(&gw, "/api/fail")).await.unwrap();
    assert_eq!(resp.status(), 418);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"name": "CustomError", "message": "it broke", "nodeID": gw.broker().node_id(),
               "code": 418, "type": "CUSTOM", "retryable": false, "stack": null, "data": {"x": 1}})
    );
    let resp = reqwest::get(http_url(&gw, "/api/missing")).await.unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "SERVICE_NOT_FOUND");
}

/// A gateway with the sample chat and the trigger routes (off by default).
async fn with_builtin_routes(config: GatewayConfig) -> moleculer_ws_server::RunningGateway {
    start(Gateway::builder().config(config.sample_chat(true).trigger(true))).await
}

#[tokio::test]
async fn validation_error_is_422() {
    let gw = with_builtin_routes(GatewayConfig::default()).await;
    let resp = reqwest::Client::new()
        .post(http_url(&gw, "/api/chat/send"))
        .json(&json!({"user": "ann"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        (body["name"].as_str(), body["type"].as_str()),
        (Some("ValidationError"), Some("VALIDATION_ERROR"))
    );
}

#[tokio::test]
async fn malformed_json_is_400_with_error_body() {
    let gw = echo_gateway().await;
    let resp = reqwest::Client::new()
        .post(http_url(&gw, "/api/echo/1"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "INVALID_REQUEST_BODY");
    assert_eq!(body["code"], 400);
    for key in ["name", "message", "nodeID", "retryable", "stack", "data"] {
        assert!(body.get(key).is_some(), "missing {key}");
    }
}

#[tokio::test]
async fn oversized_body_is_413() {
    let gw = start(
        Gateway::builder()
            .config(GatewayConfig::default().max_body_size(100))
            .route(Route::post("/api/echo", "test.echo")),
    )
    .await;
    gw.broker()
        .add_action("test.echo", |ctx| async move { Ok(ctx.params) });
    let resp = reqwest::Client::new()
        .post(http_url(&gw, "/api/echo"))
        .header("content-type", "application/json")
        .body(format!("{{\"a\":\"{}\"}}", "x".repeat(200)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
}

#[tokio::test]
async fn unknown_route_is_404_json_for_json_clients() {
    let gw = start_default().await;
    let resp = reqwest::Client::new()
        .get(http_url(&gw, "/no/such/thing"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"success": false, "message": "Not Found: /no/such/thing"})
    );
}

#[tokio::test]
async fn trigger_route_broadcasts_and_counts_clients() {
    let gw = with_builtin_routes(GatewayConfig::default()).await;
    let mut ws = connect(&gw, "/ws/trigger").await;
    let c = reqwest::Client::new();
    let resp = c
        .post(http_url(&gw, "/api/websocket/send"))
        .json(&json!({"path": "ws/trigger", "data": {"n": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(next_text(&mut ws).await, r#"{"n":1}"#);
    let counts: Value = reqwest::get(http_url(&gw, "/api/websocket/clients"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counts, json!({"/ws/trigger": 1}));
    let resp = c
        .post(http_url(&gw, "/api/websocket/send"))
        .json(&json!({"data": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
}

#[tokio::test]
async fn trigger_route_needs_the_bearer_token_when_configured() {
    let gw = with_builtin_routes(GatewayConfig::default().token("tok")).await;
    let mut ws = connect(&gw, "/ws/t?token=tok").await;
    let c = reqwest::Client::new();
    let url = http_url(&gw, "/api/websocket/send");
    let body = json!({"path": "/ws/t", "data": "secured"});
    let resp = c.post(&url).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["name"], "UnAuthorizedError");
    let resp = c
        .post(&url)
        .bearer_auth("wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = c
        .post(&url)
        .bearer_auth("tok")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(next_text(&mut ws).await, "\"secured\"");
    // The chat is behind the token too, and the scheme name is case-insensitive.
    let chat = http_url(&gw, "/api/chat/send");
    let msg = json!({"user": "eve", "text": "<img src=x onerror=alert(1)>"});
    let resp = c.post(&chat).json(&msg).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = c
        .post(&chat)
        .header("authorization", "bearer tok")
        .json(&msg)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn defaults_register_no_trigger_and_no_chat_route() {
    let gw = start_default().await;
    let c = reqwest::Client::new();
    for path in ["/api/websocket/send", "/api/chat/send"] {
        let resp = c
            .post(http_url(&gw, path))
            .json(&json!({"path": "ws/chat", "data": 1, "text": "hi"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{path}");
    }
    let resp = reqwest::get(http_url(&gw, "/api/websocket/clients"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // Services of the broker still push and count through the actions.
    assert_eq!(
        gw.broker().call("websocket.clients", json!({})).await,
        Ok(json!({}))
    );
}

/// What a page on another site can send without a CORS preflight: a form (urlencoded,
/// multipart or text/plain) or a body-less `fetch(..., {mode: "no-cors"})`. None reaches an
/// action: 415, and the socket receives nothing of it.
#[tokio::test]
async fn cross_site_simple_requests_are_415_and_reach_no_action() {
    let gw = with_builtin_routes(GatewayConfig::default()).await;
    let mut ws = connect(&gw, "/ws/x").await;
    let c = reqwest::Client::new();
    let url = http_url(&gw, "/api/websocket/send?path=ws/x&data=query");
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=b"),
        None,
    ] {
        let mut req = c.post(&url).body(r#"{"path":"ws/x","data":"body"}"#);
        if let Some(t) = content_type {
            req = req.header("content-type", t);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 415, "{content_type:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["type"], "UNSUPPORTED_MEDIA_TYPE");
    }
    let resp = c
        .post(http_url(&gw, "/api/websocket/send"))
        .json(&json!({"path": "ws/x", "data": "json"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        next_text(&mut ws).await,
        "\"json\"",
        "only the JSON request arrived"
    );
    let text = metrics_text(&gw).await;
    assert!(
        text.contains("moleculer_ws_rest_requests_total{code=\"415\"} 4\n"),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_need_the_token_or_their_own_token() {
    let gw = start(Gateway::builder().config(GatewayConfig::default().token("tok"))).await;
    let c = reqwest::Client::new();
    let url = http_url(&gw, "/metrics");
    assert_eq!(c.get(&url).send().await.unwrap().status(), 401);
    let resp = c.get(&url).bearer_auth("tok").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let gw = start(
        Gateway::builder().config(
            GatewayConfig::default()
                .token("tok")
                .metrics_token("scrape"),
        ),
    )
    .await;
    let url = http_url(&gw, "/metrics");
    assert_eq!(
        c.get(&url)
            .bearer_auth("tok")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let resp = c.get(&url).bearer_auth("scrape").send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

/// Static files never leave their directory, however the path is spelled.
#[tokio::test]
async fn static_files_do_not_escape_their_directory() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let root = std::env::temp_dir().join(format!("mws-traversal-{}", std::process::id()));
    let public = root.join("public");
    std::fs::create_dir_all(&public).unwrap();
    std::fs::write(public.join("index.html"), "public page").unwrap();
    std::fs::write(root.join("secret.txt"), "SECRET").unwrap();
    let gw = start(Gateway::builder().config(GatewayConfig::default().static_dir(&public))).await;
    for (target, status) in [
        ("/../secret.txt", 404),
        ("/%2e%2e/secret.txt", 404),
        ("/..%2fsecret.txt", 404),
        ("/%2e%2e%2fsecret.txt", 404),
        ("/..\\secret.txt", 404),
        ("/public/../../secret.txt", 404),
        ("//..//secret.txt", 404),
    ] {
        let mut s = tokio::net::TcpStream::connect(gw.local_addr())
            .await
            .unwrap();
        let req = format!("GET {target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut answer = String::new();
        within(s.read_to_string(&mut answer)).await.unwrap();
        assert!(!answer.contains("SECRET"), "{target}: {answer}");
        let expected = format!("HTTP/1.1 {status} ");
        assert!(answer.starts_with(&expected), "{target}: {answer}");
    }
    let resp = reqwest::get(http_url(&gw, "/index.html")).await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "public page");
    std::fs::remove_dir_all(&root).unwrap();
}

#[tokio::test]
async fn chat_service_broadcasts_typed_message_to_ws_chat() {
    let gw = with_builtin_routes(GatewayConfig::default()).await;
    let mut ws = connect(&gw, "/ws/chat").await;
    let resp = reqwest::Client::new()
        .post(http_url(&gw, "/api/chat/send"))
        .json(&json!({"user": "ann", "text": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let pushed: Value = serde_json::from_str(&next_text(&mut ws).await).unwrap();
    assert_eq!(pushed["type"], "message");
    assert_eq!(pushed["user"], "ann");
    assert_eq!(pushed["text"], "hello");
    assert!(pushed["time"].as_u64().unwrap() > 1_600_000_000_000);
}

#[tokio::test]
async fn static_files_are_served_and_missing_ones_are_404() {
    let dir = std::env::temp_dir().join(format!("mws-static-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<h1>demo</h1>").unwrap();
    let gw = start(Gateway::builder().config(GatewayConfig::default().static_dir(&dir))).await;
    let resp = reqwest::get(http_url(&gw, "/")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "<h1>demo</h1>");
    let resp = reqwest::get(http_url(&gw, "/nope.js")).await.unwrap();
    assert_eq!(resp.status(), 404);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn missing_static_dir_is_a_config_error() {
    let err = Gateway::builder()
        .config(GatewayConfig::default().static_dir("/definitely/not/here"))
        .build()
        .err()
        .unwrap();
    assert!(err.to_string().contains("/definitely/not/here"));
}

#[tokio::test]
async fn bad_route_pattern_is_a_build_error() {
    let err = Gateway::builder()
        .route(Route::get("no-slash", "a.b"))
        .build()
        .err()
        .unwrap();
    assert!(err.to_string().contains("no-slash"));
}

#[tokio::test]
async fn metrics_count_sockets_deliveries_and_heartbeats() {
    let gw = start_default().await;
    let mut ws = connect(&gw, "/ws/m").await;
    send_text(&mut ws, "!").await;
    assert_eq!(next_text(&mut ws).await, "!");
    push(&gw, json!({"path": "/ws/m", "data": 1})).await;
    assert_eq!(next_text(&mut ws).await, "1");
    let text = metrics_text(&gw).await;
    assert!(
        text.contains("moleculer_ws_sockets{path=\"/ws/m\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("moleculer_ws_frames_delivered_total 1\n"),
        "{text}"
    );
    assert!(
        text.contains("moleculer_ws_heartbeats_answered_total 1\n"),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_count_connections_upgrades_and_rest_calls() {
    let gw = echo_gateway().await;
    let _ws = connect(&gw, "/ws/m").await;
    let http = reqwest::Client::new();
    let ok = http
        .post(http_url(&gw, "/api/echo/1"))
        .json(&json!({"user": "ann", "text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let refused = http
        .post(http_url(&gw, "/api/echo/1"))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 415);
    let text = metrics_text(&gw).await;
    let version = format!(
        "moleculer_ws_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&version), "{text}");
    assert!(
        text.contains("moleculer_ws_sockets_opened_total 1\n"),
        "{text}"
    );
    // The socket, reqwest's pooled connection and the connection reading /metrics.
    assert!(
        sample(&text, "moleculer_ws_connections_accepted_total") >= 3,
        "{text}"
    );
    assert!(
        text.contains("moleculer_ws_rest_requests_total{code=\"200\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("moleculer_ws_rest_requests_total{code=\"415\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("moleculer_ws_rest_request_duration_seconds_count 2\n"),
        "{text}"
    );
    assert!(
        text.contains("moleculer_ws_rest_request_duration_seconds_bucket{le=\"+Inf\"} 2\n"),
        "{text}"
    );
}

#[tokio::test]
async fn every_503_says_retry_after() {
    let gw = start(Gateway::builder().route(Route::get("/api/busy", "test.busy"))).await;
    gw.broker().add_action("test.busy", |_ctx| async move {
        Err(MoleculerError::new("BusyError", "later", 503, "BUSY").retryable(true))
    });
    let resp = reqwest::get(http_url(&gw, "/api/busy")).await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
}
