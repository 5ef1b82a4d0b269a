//! The driver's messages, built with `push_str` instead of `format!`: `core::fmt` (integer and
//! `Duration` formatting, `Debug` escaping) would be several kilobytes of the download. The
//! error texts are the session core's (`Error::text`, which its `Display` prints).

// The session core's writers: one copy of them in the download.
pub(crate) use moleculer_ws_session::text::{message, whole_ms, Part};
