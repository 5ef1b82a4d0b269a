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

    /// The JSON `data` of the broadcast with `"p"` a list of chat-like records of at least
    /// `pad` bytes in all: what JSON pushes look like to a compressor (repeated keys, words of
    /// a language, numbers that differ), where `x` repeated would compress 100-fold. The
    /// records follow from `seq`, so every run publishes the same bytes.
    pub fn to_json_records(&self, pad: usize) -> String {
        let mut s = self.to_json(0);
        s.pop();
        s.push_str(r#","p":["#);
        let start = s.len();
        let mut rng = self.seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move |n: u64| {
            // xorshift64
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut id = 1_000_000 + self.seq * 16;
        while s.len() - start < pad {
            if s.len() > start {
                s.push(',');
            }
            id += 1 + next(5);
            let words: Vec<&str> = (0..4 + next(8))
                .map(|_| WORDS[next(WORDS.len() as u64) as usize])
                .collect();
            s.push_str(&format!(
                r#"{{"id":{id},"user":"user_{:04}","room":"{}","text":"{}","at":{},"score":{}.{:04}}}"#,
                next(10_000),
                ROOMS[next(ROOMS.len() as u64) as usize],
                words.join(" "),
                1_764_979_200_000 + self.micros / 1000 + next(1000),
                next(100),
                next(10_000),
            ));
        }
        s.push_str("]}");
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

const ROOMS: [&str; 6] = ["lobby", "general", "support", "random", "sales", "ops"];

const WORDS: [&str; 63] = [
    "the",
    "order",
    "was",
    "shipped",
    "to",
    "a",
    "new",
    "address",
    "and",
    "is",
    "on",
    "its",
    "way",
    "please",
    "check",
    "your",
    "account",
    "for",
    "details",
    "price",
    "changed",
    "from",
    "yesterday",
    "we",
    "have",
    "updated",
    "the",
    "status",
    "of",
    "ticket",
    "meeting",
    "moved",
    "at",
    "noon",
    "today",
    "thanks",
    "everyone",
    "great",
    "work",
    "deploy",
    "finished",
    "build",
    "failed",
    "retry",
    "in",
    "five",
    "minutes",
    "server",
    "restarted",
    "alert",
    "cleared",
    "user",
    "joined",
    "left",
    "room",
    "message",
    "deleted",
    "edited",
    "hello",
    "there",
    "see",
    "you",
    "soon",
];

fn field(text: &str, key: &str) -> Option<u64> {
    let start = text.find(key)? + key.len();
    let digits = text[start..].bytes().take_while(u8::is_ascii_digit).count();
    text[start..start + digits].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_as_json_reach_the_size_and_keep_the_stamp() {
        let stamp = Stamp {
            step: 2,
            seq: 77,
            micros: 123_456,
            path: 1,
        };
        let text = stamp.to_json_records(1000);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(v["p"].as_array().unwrap().len() > 3);
        assert!(text.len() >= 1000 && text.len() < 1300, "{}", text.len());
        assert_eq!(Stamp::parse(&text), Some(stamp));
        assert_eq!(
            text,
            stamp.to_json_records(1000),
            "the same bytes every run"
        );
    }

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
