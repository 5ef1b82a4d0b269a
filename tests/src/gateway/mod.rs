//! Gateway conformance: one named case per rule of docs/protocol.md sections 1 and 2, and the
//! event-stream extension of section 6.7 (`sse.*`; information only on a gateway without it).
//!
//! To make the gateway broadcast, the checks post `{path, data}` to a trigger route
//! (`/api/websocket/send` by default) that broadcasts `websocket.send` with those params.

mod delivery;
mod frames;
mod rest;
mod sse;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use url::Url;

use crate::report::{CaseResult, Outcome};
use crate::wire::{self, Next, Socket};

/// What to check and how to reach it.
#[derive(Debug, Clone)]
pub struct GatewayTarget {
    /// The gateway's base URL, `http://host:port` (or `https://`).
    pub url: Url,
    /// The trigger route, default `/api/websocket/send`.
    pub trigger: String,
    /// Bearer token for the trigger, and for the sockets when the gateway requires one.
    pub token: Option<String>,
    /// How long to wait for an expected frame (default 5 s).
    pub wait: Duration,
    /// How long silence must last to count as "nothing" (default 300 ms).
    pub quiet: Duration,
}

impl GatewayTarget {
    /// A target at `url` with the defaults.
    pub fn new(url: Url) -> Self {
        Self {
            url,
            trigger: "/api/websocket/send".to_owned(),
            token: None,
            wait: Duration::from_secs(5),
            quiet: Duration::from_millis(300),
        }
    }
}

/// Shared state of one run.
pub(crate) struct Ctx {
    target: GatewayTarget,
    http: reqwest::Client,
    /// Unique per run, so runs against a shared deployment do not see each other.
    run: String,
}

impl Ctx {
    /// A unique path for a case, with a leading slash: `/ws/conformance-<run>/<name>`.
    pub(crate) fn path(&self, name: &str) -> String {
        format!("/ws/conformance-{}/{name}", self.run)
    }

    /// The `ws(s)://` URL of a path (and query, if any; the path may be percent-encoded).
    pub(crate) fn ws_url(&self, path_and_query: &str) -> String {
        let mut u = self.target.url.clone();
        let scheme = if u.scheme() == "https" { "wss" } else { "ws" };
        let _ = u.set_scheme(scheme);
        format!("{}{}", u.as_str().trim_end_matches('/'), path_and_query)
    }

    pub(crate) fn http_url(&self, path: &str) -> String {
        format!("{}{}", self.target.url.as_str().trim_end_matches('/'), path)
    }

    pub(crate) async fn open(&self, path_and_query: &str) -> Result<Socket, String> {
        wire::open(
            &self.ws_url(path_and_query),
            self.target.token.as_deref(),
            self.target.wait,
        )
        .await
    }

    pub(crate) async fn next(&self, ws: &mut Socket) -> Next {
        wire::next(ws, self.target.wait).await
    }

    /// Asserts silence for the quiet period.
    pub(crate) async fn quiet(&self, ws: &mut Socket) -> Next {
        wire::next(ws, self.target.quiet).await
    }

    /// Posts the trigger with the given params (any JSON value, normally `{path, data}`).
    pub(crate) async fn trigger(&self, params: &Value) -> Result<(), String> {
        self.trigger_raw(params.to_string())
            .await
            .and_then(|(status, body)| {
                if (200..300).contains(&status) {
                    Ok(())
                } else {
                    Err(format!("trigger answered HTTP {status}: {body}"))
                }
            })
    }

    pub(crate) async fn trigger_raw(&self, body: String) -> Result<(u16, String), String> {
        let url = self.http_url(&self.target.trigger);
        wire::post_json(&self.http, &url, self.target.token.as_deref(), body).await
    }
}

/// Runs every gateway case, in a fixed order.
pub async fn check_gateway(target: GatewayTarget) -> Vec<CaseResult> {
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| format!("{:x}", d.as_nanos()))
        .unwrap_or_else(|_| "0".into());
    let ctx = Ctx {
        target,
        http: reqwest::Client::new(),
        run,
    };
    let mut out = Vec::new();
    out.extend(frames::run(&ctx).await);
    out.extend(delivery::run(&ctx).await);
    out.extend(rest::run(&ctx).await);
    out.extend(sse::run(&ctx).await);
    out
}

/// A row from a check's outcome: `Ok(detail)` passes, `Err(detail)` fails.
pub(crate) fn row(case: &str, expectation: &str, r: Result<String, String>) -> CaseResult {
    match r {
        Ok(d) => CaseResult::new(case, expectation, Outcome::Pass, d),
        Err(d) => CaseResult::new(case, expectation, Outcome::Fail, d),
    }
}

/// `Ok` when `got` is the text frame `want`.
pub(crate) fn expect_text(got: &Next, want: &str) -> Result<String, String> {
    match got {
        Next::Text(t) if t == want => Ok(format!("received {got}")),
        other => Err(format!("expected text {want:?}, got {other}")),
    }
}
