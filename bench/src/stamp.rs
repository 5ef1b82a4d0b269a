//! The stamp each benchmark broadcast carries: `{"s":step,"q":seq,"t":micros,"k":path,"p":"..."}`.
//!
//! `t` is microseconds since the load generator started (one process publishes and receives,
//! so one clock). Parsing is a small scan, not a JSON parser, so that the receiving side of
//! the load generator costs as little CPU as possible.

/// What a broadcast carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Index of the rate step it was published in.
    pub step: u32,
    /// Publish sequence number, increasing over the whole run (from 1).
    pub seq: u64,
    /// Publish time in microseconds since the load generator started.
    pub micros: u64,
    /// Index of the path it was published to (runs with several paths).
    pub path: u32,
}

impl Stamp {
    /// The JSON `data` of the broadcast, padded with `pad` bytes in `"p"`.
    pub fn to_json(&self, pad: usize) -> String {
        let mut s = format!(
            r#"{{"s":{},"q":{},"t":{},"k":{}"#,
            self.step, self.seq, self.micros, self.path
        );
        if pad > 0 {
            s.push_str(r#","p":""#);
            s.extend(std::iter::repeat_n('x', pad));
            s.push('"');
        }
        s.push('}');
        s
    }

    /// Reads a stamp from a received text frame; `None` when it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        Some(Self {
            step: u32::try_from(field(text, "\"s\":")?).ok()?,
            seq: field(text, "\"q\":")?,
            micros: field(text, "\"t\":")?,
            path: u32::try_from(field(text, "\"k\":")?).ok()?,
        })
    }
}

fn field(text: &str, key: &str) -> Option<u64> {
    let start = text.find(key)? + key.len();
    let digits = text[start..].bytes().take_while(u8::is_ascii_digit).count();
    text[start..start + digits].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_padding() {
        let s = Stamp {
            step: 3,
            seq: 99,
            micros: 1_234_567,
            path: 42,
        };
        let json = s.to_json(10);
        assert_eq!(json.len(), 50);
        assert_eq!(Stamp::parse(&json), Some(s));
        assert_eq!(Stamp::parse("!"), None);
        assert_eq!(Stamp::parse("{\"s\":1}"), None);
    }
}
