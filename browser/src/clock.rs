//! The browser's clock and randomness for the driver and the tab sharing.

use js_sys::Function;
use moleculer_ws_session::Millis;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    pub(crate) fn set_timeout(handler: &Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    pub(crate) fn clear_timeout(id: &JsValue);
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// Monotonic milliseconds: real elapsed time, so a throttled background tab whose timers fire
/// late measures the true gap instead of counting ticks.
pub fn now() -> Millis {
    Millis(performance_now().max(0.0) as u64)
}

/// A random jitter seed (`Math.random`).
pub fn seed() -> u64 {
    (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64
}

/// The longest delay `setTimeout` keeps (2^31 - 1 ms, about 24.8 days); a longer one fires at
/// once. A later deadline is reached in several timeouts: the session ignores an early call.
pub const MAX_TIMEOUT_MS: u64 = i32::MAX as u64;
