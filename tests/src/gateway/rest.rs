//! REST rules: the 404 shape and the error shape.

use serde_json::Value;

use super::{row, Ctx};
use crate::report::CaseResult;

pub(super) async fn run(ctx: &Ctx) -> Vec<CaseResult> {
    vec![
        row(
            "rest.not-found",
            "an unknown route gives 404 {\"success\":false,\"message\":\"Not Found: <path>\"}",
            not_found(ctx).await,
        ),
        row(
            "rest.error-shape",
            "a failed call gives a 4xx/5xx Moleculer error body {name,message,code,type,...}",
            error_shape(ctx).await,
        ),
    ]
}

async fn not_found(ctx: &Ctx) -> Result<String, String> {
    let path = format!("/conformance-{}/no/such/route", ctx.run);
    let resp = ctx
        .http
        .get(ctx.http_url(&path))
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body: Value = resp
        .json()
        .await
        .map_err(|e| format!("HTTP {status}, body not JSON: {e}"))?;
    if status != 404 {
        return Err(format!("expected 404, got {status} {body}"));
    }
    let want = serde_json::json!({"success": false, "message": format!("Not Found: {path}")});
    if body != want {
        return Err(format!("expected {want}, got {body}"));
    }
    Ok(format!("404 {body}"))
}

/// The trigger with a malformed JSON body must fail with the Moleculer error shape.
async fn error_shape(ctx: &Ctx) -> Result<String, String> {
    let (status, text) = ctx.trigger_raw("{not json".to_owned()).await?;
    if !(400..600).contains(&status) {
        return Err(format!("expected a 4xx/5xx, got {status} {text}"));
    }
    let body: Value =
        serde_json::from_str(&text).map_err(|_| format!("HTTP {status}, body not JSON: {text}"))?;
    let missing: Vec<&str> = ["name", "message", "code", "type"]
        .into_iter()
        .filter(|k| body.get(k).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(format!("HTTP {status}: body lacks {missing:?}: {body}"));
    }
    Ok(format!(
        "HTTP {status}, {} / {}",
        body["name"], body["type"]
    ))
}
