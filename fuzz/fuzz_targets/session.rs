//! The session core fed arbitrary event sequences and frames: it must never panic, and it
//! must keep its basic promises (timers never in the past of the last input, nothing but a
//! new connect() after a stop).
#![no_main]

use libfuzzer_sys::fuzz_target;
use moleculer_ws_session::{
    Action, ConnectFailure, ConnectionState, Millis, ReconnectPolicy, Session, SessionConfig,
};
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let interval = u64::from(head % 16) * 100;
    let config = SessionConfig::default()
        .heartbeat_interval(Duration::from_millis(interval))
        .heartbeat_timeout(Duration::from_millis(interval / 4))
        .connect_timeout(Duration::from_millis(u64::from(head % 7) * 50))
        .recover(head & 0x40 != 0)
        .reconnect(if head & 0x80 == 0 {
            ReconnectPolicy::default().delay(Duration::from_millis(10))
        } else {
            ReconnectPolicy::fixed().delay(Duration::from_millis(10)).max_attempts(Some(3))
        });
    let Ok(mut s) = Session::new(config, u64::from(head)) else {
        return;
    };
    let mut now = Millis(0);
    let mut bytes = rest.chunks(3);
    while let Some(op) = bytes.next() {
        let arg = op.get(1).copied().unwrap_or(0);
        now = Millis(now.0 + u64::from(op.get(2).copied().unwrap_or(0)) * 7);
        match op[0] % 12 {
            0 => s.connect(now),
            1 => s.disconnect(now),
            2 => s.on_open(now),
            3 => {
                let mut text: String = bytes.next().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
                // Odd: a recovery envelope-shaped frame (`#` + epoch-like digits + the rest).
                if arg & 1 == 1 {
                    text = format!("#{:016x}:{}", u64::from(arg) * 0x0101, text.replacen(',', ":", 2));
                }
                s.on_text(now, &text);
            }
            4 => s.on_binary(now, bytes.next().unwrap_or(&[])),
            5 => s.on_closed(now, (arg > 0).then_some(1000 + u16::from(arg)), "fuzz"),
            6 => s.on_transport_error(now, "fuzz"),
            7 => s.on_connect_failed(now, ConnectFailure::HttpStatus(400 + u16::from(arg))),
            8 => s.on_connect_failed(now, ConnectFailure::Transport("fuzz".into())),
            9 => s.probe(now),
            _ => {
                if let Some(t) = s.poll_timeout() {
                    now = Millis(now.0.max(t.0));
                    s.handle_timeout(now);
                }
            }
        }
        let stopped = s.state() == ConnectionState::Stopped;
        while let Some(action) = s.poll_action() {
            if stopped {
                assert!(
                    !matches!(action, Action::Connect | Action::SendHeartbeat),
                    "{action:?} after a stop"
                );
            }
        }
        let _ = s.stats(now);
    }
});
