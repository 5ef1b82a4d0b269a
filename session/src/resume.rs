//! Message recovery on the client side (README "Message recovery"): remembers the last
//! position (epoch, sequence), asks for it on reconnect, unwraps the envelopes and drops
//! duplicates.
//!
//! Frames of the extension (only sent to a client that asked with `?recover=1`):
//! `#<epoch>:<seq>:<text>` a message; `#recovered:<epoch>:<seq>:<n>` the missed messages follow;
//! `#reset:<epoch>:<seq>` no recovery, continue from there. A frame that does not parse is
//! dropped; a plain frame (a gateway without the extension) is delivered as it is.

use super::text::decimal;

/// What one inbound frame means for the application.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Resumed<'a> {
    /// Not an envelope: deliver the frame as it is.
    Plain,
    /// A new message: deliver this text.
    Deliver(&'a str),
    /// A duplicate, a malformed or an unexpected frame: deliver nothing.
    Drop,
    /// The gateway's answer to the request: `recovered`, `replayed` messages follow; `resync`
    /// when the application must refetch its state (recovery was asked for and failed, or a
    /// gap was seen).
    Status {
        recovered: bool,
        replayed: u64,
        resync: bool,
    },
    /// A message after a gap (never expected from a correct gateway): deliver it, and tell the
    /// application to resynchronise.
    DeliverAfterGap(&'a str),
}

/// The remembered position.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Position {
    /// Epoch and last sequence number delivered; `None` before the first status frame.
    last: Option<(String, u64)>,
    /// Whether the attempt in progress asked to resume from `last`.
    asked: bool,
}

fn parse_epoch(s: &str) -> Option<&str> {
    (s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())).then_some(s)
}

impl Position {
    /// The query pairs for the next attempt (and remembers whether it asks to resume).
    pub(crate) fn query(&mut self) -> Vec<(&'static str, String)> {
        let mut q = vec![("recover", "1".to_owned())];
        self.asked = false;
        if let Some((epoch, seq)) = &self.last {
            q.push(("epoch", epoch.clone()));
            q.push(("seq", decimal(*seq)));
            self.asked = true;
        }
        q
    }

    /// The remembered epoch and sequence number.
    pub(crate) fn last(&self) -> Option<(&str, u64)> {
        self.last.as_ref().map(|(e, s)| (e.as_str(), *s))
    }

    /// Takes `epoch` and `seq` as the last position delivered (another holder of the same
    /// channel delivered up to there). An epoch that is not 16 hexadecimal digits is ignored.
    pub(crate) fn set(&mut self, epoch: &str, seq: u64) {
        if let Some(epoch) = parse_epoch(epoch) {
            self.last = Some((epoch.to_owned(), seq));
        }
    }

    /// Reads one inbound frame (never panics on any text).
    pub(crate) fn on_frame<'a>(&mut self, text: &'a str) -> Resumed<'a> {
        let Some(rest) = text.strip_prefix('#') else {
            return Resumed::Plain;
        };
        if let Some(status) = rest.strip_prefix("recovered:") {
            let mut it = status.splitn(3, ':');
            let (Some(epoch), Some(seq), Some(n)) = (
                it.next().and_then(parse_epoch),
                it.next().and_then(|s| s.parse::<u64>().ok()),
                it.next().and_then(|s| s.parse::<u64>().ok()),
            ) else {
                return Resumed::Drop;
            };
            let same = self
                .last
                .as_ref()
                .is_some_and(|(e, s)| e == epoch && *s <= seq);
            if same && self.asked {
                self.asked = false;
                return Resumed::Status {
                    recovered: true,
                    replayed: n,
                    resync: false,
                };
            }
            // A recovery we did not ask for: start over from the gateway's position.
            let resync = self.last.is_some();
            self.last = Some((epoch.to_owned(), seq));
            self.asked = false;
            return Resumed::Status {
                recovered: false,
                replayed: 0,
                resync,
            };
        }
        if let Some(status) = rest.strip_prefix("reset:") {
            let mut it = status.splitn(2, ':');
            let (Some(epoch), Some(seq)) = (
                it.next().and_then(parse_epoch),
                it.next().and_then(|s| s.parse::<u64>().ok()),
            ) else {
                return Resumed::Drop;
            };
            let resync = self.last.is_some();
            self.last = Some((epoch.to_owned(), seq));
            self.asked = false;
            return Resumed::Status {
                recovered: false,
                replayed: 0,
                resync,
            };
        }
        let mut it = rest.splitn(3, ':');
        let (Some(epoch), Some(seq), Some(body)) = (
            it.next().and_then(parse_epoch),
            it.next().and_then(|s| s.parse::<u64>().ok()),
            it.next(),
        ) else {
            return Resumed::Drop;
        };
        match &mut self.last {
            Some((e, last)) if e == epoch => {
                if seq <= *last {
                    Resumed::Drop
                } else if seq == *last + 1 {
                    *last = seq;
                    Resumed::Deliver(body)
                } else {
                    *last = seq;
                    Resumed::DeliverAfterGap(body)
                }
            }
            // A message of another epoch without a status frame first: a gap we cannot measure.
            Some(_) => {
                self.last = Some((epoch.to_owned(), seq));
                Resumed::DeliverAfterGap(body)
            }
            None => {
                self.last = Some((epoch.to_owned(), seq));
                Resumed::Deliver(body)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: &str = "00000000000000aa";
    const F: &str = "00000000000000bb";

    #[test]
    fn first_connect_then_resume() {
        let mut p = Position::default();
        assert_eq!(p.query(), vec![("recover", "1".to_owned())]);
        assert_eq!(
            p.on_frame(&format!("#reset:{E}:5")),
            Resumed::Status {
                recovered: false,
                replayed: 0,
                resync: false
            }
        );
        assert_eq!(
            p.on_frame(&format!("#{E}:6:{{\"a\":1}}")),
            Resumed::Deliver("{\"a\":1}")
        );
        assert_eq!(p.on_frame(&format!("#{E}:6:{{\"a\":1}}")), Resumed::Drop);
        assert_eq!(p.on_frame(&format!("#{E}:5:x")), Resumed::Drop);
        assert_eq!(
            p.query(),
            vec![
                ("recover", "1".to_owned()),
                ("epoch", E.to_owned()),
                ("seq", "6".to_owned())
            ]
        );
        assert_eq!(
            p.on_frame(&format!("#recovered:{E}:8:2")),
            Resumed::Status {
                recovered: true,
                replayed: 2,
                resync: false
            }
        );
        assert_eq!(p.on_frame(&format!("#{E}:7:a:b")), Resumed::Deliver("a:b"));
        assert_eq!(
            p.on_frame(&format!("#{E}:9:c")),
            Resumed::DeliverAfterGap("c")
        );
        assert_eq!(p.last(), Some((E, 9)));
    }

    #[test]
    fn a_position_set_from_outside_is_asked_for_and_dedups() {
        let mut p = Position::default();
        p.set("not an epoch", 3);
        assert_eq!(p.last(), None);
        p.set(E, 7);
        assert_eq!(
            p.query()[1..],
            [("epoch", E.to_owned()), ("seq", "7".to_owned())]
        );
        assert_eq!(p.on_frame(&format!("#{E}:7:x")), Resumed::Drop);
        assert_eq!(p.on_frame(&format!("#{E}:8:y")), Resumed::Deliver("y"));
    }

    #[test]
    fn reset_after_asking_means_resync() {
        let mut p = Position::default();
        p.on_frame(&format!("#reset:{E}:0"));
        p.query();
        assert_eq!(
            p.on_frame(&format!("#reset:{F}:0")),
            Resumed::Status {
                recovered: false,
                replayed: 0,
                resync: true
            }
        );
        assert_eq!(p.on_frame(&format!("#{F}:1:x")), Resumed::Deliver("x"));
    }

    #[test]
    fn malformed_frames_never_panic_and_are_dropped() {
        let mut p = Position::default();
        for t in [
            "#",
            "#:",
            "#::",
            "#reset:",
            "#reset:zz:1",
            "#recovered:",
            "#recovered:00:1:1",
            "#0000000000000000:x:y",
            "#0000000000000000:1",
            "#ééééééééééééééé:1:x",
            "#00000000000000000:1:x",
            "#reset:00000000000000aa:-1",
            "#00000000000000aa:99999999999999999999999:x",
        ] {
            assert_eq!(p.on_frame(t), Resumed::Drop, "{t}");
        }
        assert_eq!(p.on_frame("{\"plain\":1}"), Resumed::Plain);
        assert_eq!(p.last(), None);
    }
}
