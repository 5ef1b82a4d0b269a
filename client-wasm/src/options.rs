//! The JS options object: session configuration and callbacks.

use std::time::Duration;

use js_sys::{Function, Reflect};
use moleculer_ws_session::{
    detectable_timeout, BackoffKind, ReconnectPolicy, SessionConfig, Transport,
};
use wasm_bindgen::{JsCast, JsValue};

// Texts are built with the session core's writers, not `format!`: `core::fmt` would be several
// kilobytes of the download.
use moleculer_ws_session::text::{message, whole_ms, Part};

/// Defaults of the original `websocket.js` (docs/protocol.md section 3.2).
const DEFAULT_INTERVAL_MS: f64 = 6000.0;
const DEFAULT_TIMEOUT_MS: f64 = 1000.0;
const DEFAULT_RECONNECT_MS: f64 = 3000.0;

/// The page's callbacks; any may be missing.
#[derive(Clone, Default)]
pub(crate) struct Callbacks {
    pub handler: Option<Function>,
    pub onopen: Option<Function>,
    pub onreconnect: Option<Function>,
    pub onclose: Option<Function>,
    pub onerror: Option<Function>,
    pub onstatechange: Option<Function>,
    pub onresync: Option<Function>,
    pub debug: bool,
}

fn get(opts: &JsValue, key: &str) -> JsValue {
    if !opts.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(opts, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn function(opts: &JsValue, key: &str) -> Option<Function> {
    get(opts, key).dyn_into::<Function>().ok()
}

/// A number option in milliseconds; `null`/`undefined` give the default. Negative, NaN or
/// non-numbers are a clear error.
fn millis(opts: &JsValue, key: &str, default: f64) -> Result<Duration, JsValue> {
    let v = get(opts, key);
    let ms = if v.is_undefined() || v.is_null() {
        default
    } else {
        v.as_f64().ok_or_else(|| {
            JsValue::from(js_sys::TypeError::new(&message(&[
                Part::Str(key),
                Part::Str(" must be a number of milliseconds"),
            ])))
        })?
    };
    if ms.is_nan() || ms < 0.0 || !ms.is_finite() {
        return Err(js_sys::RangeError::new(&message(&[
            Part::Str(key),
            Part::Str(" must be 0 or more milliseconds"),
        ]))
        .into());
    }
    Ok(Duration::from_millis(ms as u64))
}

/// Reads the callbacks (`handler` is passed separately by the loader under that key).
pub(crate) fn callbacks(opts: &JsValue) -> Callbacks {
    Callbacks {
        handler: function(opts, "handler"),
        onopen: function(opts, "onopen"),
        onreconnect: function(opts, "onreconnect"),
        onclose: function(opts, "onclose"),
        onerror: function(opts, "onerror"),
        onstatechange: function(opts, "onstatechange"),
        onresync: function(opts, "onresync"),
        debug: get(opts, "debug").is_truthy(),
    }
}

/// Builds the session configuration.
///
/// `heartbeatInterval`/`heartbeatTimeout`: ms, defaults 6000/1000, 0 turns the heartbeat off.
/// `reconnectDelay` (3000), `maxReconnectDelay` (default: equal to `reconnectDelay`, i.e. the
/// original's fixed delay; larger values back off exponentially), `jitter` (default true: each
/// delay grows by a random part of up to `reconnectDelay`; `false` gives the original's exact
/// delays), `connectTimeout` (10000, 0 = none), `recover` (default false: message
/// recovery, README "Message recovery"), `transport` (`"websocket"`, the default, `"sse"` or
/// `"auto"`, with the session core's defaults for `auto`: an event stream after 2 failed
/// WebSocket opens, the WebSocket again after 5 minutes on it).
pub(crate) fn session_config(opts: &JsValue) -> Result<SessionConfig, JsValue> {
    let mut interval = millis(opts, "heartbeatInterval", DEFAULT_INTERVAL_MS)?;
    let mut timeout = millis(opts, "heartbeatTimeout", DEFAULT_TIMEOUT_MS)?;
    if interval.is_zero() || timeout.is_zero() {
        interval = Duration::ZERO;
        timeout = Duration::ZERO;
    }
    let detectable = detectable_timeout(interval, timeout);
    if detectable != timeout {
        web_sys::console::warn_1(&JsValue::from_str(&message(&[
            Part::Str("moleculer-ws: heartbeatTimeout "),
            Part::Number(whole_ms(timeout)),
            Part::Str(" ms can never expire with heartbeatInterval "),
            Part::Number(whole_ms(interval)),
            Part::Str(" ms (a new heartbeat is sent first); using "),
            Part::Number(whole_ms(detectable)),
            Part::Str(" ms"),
        ])));
        timeout = detectable;
    }
    let delay = millis(opts, "reconnectDelay", DEFAULT_RECONNECT_MS)?;
    let max_delay = millis(opts, "maxReconnectDelay", whole_ms(delay) as f64)?.max(delay);
    // On unless `jitter: false`: pages that lost the gateway together come back spread over
    // `reconnectDelay` instead of in the same instant.
    let jitter = get(opts, "jitter").as_bool() != Some(false);
    let kind = if max_delay > delay {
        BackoffKind::Exponential
    } else {
        BackoffKind::Fixed
    };
    let policy = ReconnectPolicy::default()
        .kind(kind)
        .delay(delay)
        .max_delay(max_delay)
        .jitter(jitter)
        // The browser does not expose the HTTP status of a refused upgrade: keep retrying.
        .stop_on_http_status(Vec::new());
    let transport = match get(opts, "transport").as_string().as_deref() {
        None => Transport::WebSocket,
        Some(name) => Transport::parse(name).ok_or_else(|| {
            JsValue::from(js_sys::TypeError::new(
                "transport must be \"websocket\", \"sse\" or \"auto\"",
            ))
        })?,
    };
    Ok(SessionConfig::default()
        .transport(transport)
        .heartbeat_interval(interval)
        .heartbeat_timeout(timeout)
        .connect_timeout(millis(opts, "connectTimeout", 10_000.0)?)
        .recover(get(opts, "recover").is_truthy())
        .reconnect(policy))
}
