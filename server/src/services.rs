//! Built-in services: the `websocket.send` trigger, client counts, and the sample chat.

use std::sync::Weak;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::broker::{Broker, Context};
use crate::config::GatewayConfig;
use crate::error::MoleculerError;
use crate::rest::Route;
use crate::state::Shared;

/// The event every gateway listens to; params `{path, data}`.
pub const SEND_EVENT: &str = "websocket.send";

/// Registers the gateway's own listener and actions; returns the routes the configuration
/// asks for (the trigger, the sample chat, the test hooks), behind the token when one is set.
pub(crate) fn register(
    broker: &Broker,
    shared: Weak<Shared>,
    config: &GatewayConfig,
) -> Vec<Route> {
    let token = config.token.as_deref();
    let listener = shared.clone();
    broker.on_event(SEND_EVENT, "websocket", move |event| {
        if let Some(shared) = listener.upgrade() {
            shared.deliver(event);
        }
    });

    broker.add_action("websocket.send", |ctx: Context| async move {
        match ctx.params.get("path").and_then(Value::as_str) {
            Some(p) if !p.is_empty() => {}
            _ => {
                return Err(MoleculerError::validation(
                    "The parameter 'path' must be a non-empty string.",
                )
                .with_data(json!([{"field": "path", "type": "required"}])))
            }
        }
        ctx.broker.broadcast(SEND_EVENT, ctx.params).await;
        Ok(Value::Null)
    });

    let counted = shared.clone();
    broker.add_action("websocket.clients", move |_ctx: Context| {
        let counts = counted.upgrade().map(|s| s.registry.count_clients());
        async move { Ok(json!(counts.unwrap_or_default())) }
    });

    let protect = |r: Route| match token {
        Some(t) => r.bearer_token(t),
        None => r,
    };
    let mut routes = Vec::new();
    if config.trigger {
        routes.push(protect(Route::post(
            "/api/websocket/send",
            "websocket.send",
        )));
        routes.push(protect(Route::get(
            "/api/websocket/clients",
            "websocket.clients",
        )));
    }
    if config.sample_chat {
        broker.add_action("chat.send", chat_send);
        routes.push(protect(Route::post("/api/chat/send", "chat.send")));
    }
    #[cfg(feature = "test-hooks")]
    if config.test_hooks {
        broker.add_action("test.heartbeatReplies", move |ctx: Context| {
            let on = ctx.params.get("on").and_then(Value::as_bool);
            let shared = shared.upgrade();
            async move {
                let on = on.ok_or_else(|| MoleculerError::validation("'on' must be a boolean"))?;
                if let Some(s) = shared {
                    s.heartbeat_replies
                        .store(on, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(json!({ "on": on }))
            }
        });
        routes.push(Route::post(
            "/api/test/heartbeat-replies",
            "test.heartbeatReplies",
        ));
    }
    routes
}

/// `chat.send {user, text}`: broadcasts `{"type":"message",user,text,time}` to `ws/chat` and
/// returns it.
async fn chat_send(ctx: Context) -> Result<Value, MoleculerError> {
    let text = match ctx.params.get("text").and_then(Value::as_str) {
        Some(t) if !t.trim().is_empty() => t.to_owned(),
        _ => {
            return Err(MoleculerError::validation(
                "The parameter 'text' must be a non-empty string.",
            )
            .with_data(json!([{"field": "text", "type": "required"}])))
        }
    };
    let user = ctx
        .params
        .get("user")
        .and_then(Value::as_str)
        .filter(|u| !u.trim().is_empty())
        .unwrap_or("anonymous")
        .to_owned();
    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let message = json!({"type": "message", "user": user, "text": text, "time": time});
    ctx.broker
        .broadcast(SEND_EVENT, json!({"path": "ws/chat", "data": message}))
        .await;
    Ok(message)
}
