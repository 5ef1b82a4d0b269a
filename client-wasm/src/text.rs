//! The driver's messages, built with `push_str` instead of `format!`: `core::fmt` (integer and
//! `Duration` formatting, `Debug` escaping) would be several kilobytes of the download. The
//! error texts are the session core's (`Error::text`, which its `Display` prints).

use std::time::Duration;


/// Whole milliseconds of `d` (as `d.as_millis()`, without 128-bit arithmetic; saturating).
pub(crate) fn whole_ms(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
}

// The session core's writers: one copy of them in the download.
pub(crate) use moleculer_ws_session::text::{message, Part};
