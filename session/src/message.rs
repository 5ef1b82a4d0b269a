//! Message classification, exactly as the Java client does it (docs/protocol.md section 4.3).

/// The parsed JSON, kept once computed: thread-safe on native targets (a `Message` is `Send`
/// and `Sync`, so it can be shared across tasks); on wasm32 (one thread, and every byte of the
/// browser download counts) the single-threaded cell.
#[cfg(not(target_arch = "wasm32"))]
type Lazy<T> = std::sync::OnceLock<T>;
#[cfg(target_arch = "wasm32")]
type Lazy<T> = std::cell::OnceCell<T>;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Error;

/// A message pushed by the gateway.
///
/// Classified as the Java client does: a frame starting with `{` or `[` that parses as JSON is
/// [`Message::json`]; anything else (including `123` or `"hi"` with its quotes) is delivered as
/// its raw text. The raw text is always kept, so [`Message::parse`] can read any frame as `T`.
///
/// The JSON is parsed on first use, so a driver that only hands the text on (the browser
/// client) never pays for parsing. On native targets a `Message` is `Send` and `Sync`:
///
/// ```
/// # use moleculer_ws_session::Message;
/// let message = std::sync::Arc::new(Message::from_text(r#"{"n": 1}"#));
/// let shared = std::sync::Arc::clone(&message);
/// let n = std::thread::spawn(move || shared.json().map(|v| v["n"].clone()))
///     .join()
///     .unwrap();
/// assert_eq!(n, Some(serde_json::json!(1)));
/// ```
#[derive(Clone, Debug)]
pub struct Message {
    text: String,
    json: Lazy<Option<Value>>,
}

/// Two messages are equal when their texts are: whether one was parsed already does not count.
impl PartialEq for Message {
    fn eq(&self, other: &Message) -> bool {
        self.text == other.text
    }
}

impl Message {
    /// Builds a message from a frame's text, classifying it like the Java client.
    pub fn from_text(text: impl Into<String>) -> Message {
        Message {
            text: text.into(),
            json: Lazy::new(),
        }
    }

    /// The frame's text, exactly as received.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The parsed JSON object or array, if the frame starts with `{` or `[` and is valid JSON.
    pub fn json(&self) -> Option<&Value> {
        self.json
            .get_or_init(|| match self.text.as_bytes().first() {
                Some(b'{') | Some(b'[') => serde_json::from_str(&self.text).ok(),
                _ => None,
            })
            .as_ref()
    }

    /// Whether the frame was classified as JSON.
    pub fn is_json(&self) -> bool {
        self.json().is_some()
    }

    /// The message as the Java client hands it to `onMessage`: the parsed JSON, or the raw text
    /// as a JSON string.
    pub fn to_value(&self) -> Value {
        match self.json() {
            Some(v) => v.clone(),
            None => Value::String(self.text.clone()),
        }
    }

    /// Deserializes the frame's text as `T` (any JSON, so `123` parses as a number here).
    ///
    /// # Errors
    /// [`Error::Decode`] if the text is not valid JSON for `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_str(&self.text).map_err(|e| Error::Decode(e.to_string()))
    }

    /// Gives up the raw text.
    pub fn into_text(self) -> String {
        self.text
    }
}

/// The heartbeat frame: the text a client sends to probe the link and the gateway's answer.
pub const HEARTBEAT: &str = "!";

/// Whether a text frame whose first UTF-16 code unit is `first` (`None`: an empty frame) is
/// for the session (the heartbeat reply, or a frame [`Session::on_text`](crate::Session::on_text)
/// ignores) rather than a message: a driver can hand messages on without reading their text
/// (see [`Session::on_message_kept`](crate::Session::on_message_kept)).
pub fn is_control_frame(first: Option<u16>) -> bool {
    first.is_none_or(|c| c == u16::from(HEARTBEAT.as_bytes()[0]))
}

/// What an inbound text frame is.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Inbound {
    /// The heartbeat reply `!`.
    HeartbeatReply,
    /// An empty frame or another frame starting with `!`: not delivered.
    Ignored,
    /// A message for the application.
    Deliver(Message),
}

/// Classifies an inbound text frame.
///
/// Only the exact text `!` counts as a heartbeat reply (the protocol says a client must only
/// rely on `!`); other `!`-prefixed frames are dropped like the Java client drops them.
pub(crate) fn classify(text: &str) -> Inbound {
    if text == HEARTBEAT {
        Inbound::HeartbeatReply
    } else if text.is_empty() || text.starts_with(HEARTBEAT) {
        Inbound::Ignored
    } else {
        Inbound::Deliver(Message::from_text(text))
    }
}

/// A `Message` can be shared across threads and tasks (native targets).
#[cfg(not(target_arch = "wasm32"))]
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<Message>();
};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn delivered(text: &str) -> Message {
        match classify(text) {
            Inbound::Deliver(m) => m,
            other => panic!("{text:?} was {other:?}"),
        }
    }

    #[test]
    fn equality_is_by_text_parsed_or_not() {
        let (a, b) = (delivered("{\"a\":1}"), delivered("{\"a\":1}"));
        assert!(a.json().is_some());
        assert_eq!(a, b);
        assert_ne!(a, delivered("{\"a\":2}"));
    }

    #[test]
    fn heartbeat_and_ignored_frames() {
        assert_eq!(classify("!"), Inbound::HeartbeatReply);
        assert_eq!(classify(""), Inbound::Ignored);
        assert_eq!(classify("!!"), Inbound::Ignored);
        assert_eq!(classify("!{\"a\":1}"), Inbound::Ignored);
    }

    #[test]
    fn objects_and_arrays_are_json() {
        let m = delivered("{\"a\":1}");
        assert_eq!(m.json(), Some(&json!({"a": 1})));
        assert_eq!(m.text(), "{\"a\":1}");
        assert!(m.is_json());
        assert_eq!(delivered("[1,2]").to_value(), json!([1, 2]));
    }

    #[test]
    fn invalid_json_is_delivered_as_text() {
        for text in ["{not json", "[1,", "{\"a\":1}trailing", "[\u{0}]"] {
            let m = delivered(text);
            assert!(!m.is_json(), "{text}");
            assert_eq!(m.text(), text);
            assert_eq!(m.to_value(), Value::String(text.to_owned()));
        }
    }

    #[test]
    fn scalars_stay_raw_text() {
        // As the Java client: `123` arrives as the text `123`, `"hi"` with its quotes.
        let n = delivered("123");
        assert!(!n.is_json());
        assert_eq!(n.text(), "123");
        assert_eq!(n.parse::<u32>().unwrap(), 123);
        let s = delivered("\"hi\"");
        assert_eq!(s.text(), "\"hi\"");
        assert_eq!(s.parse::<String>().unwrap(), "hi");
        assert_eq!(delivered("null").text(), "null");
        assert_eq!(
            delivered(" {\"a\":1}").json(),
            None,
            "leading space: not JSON"
        );
        assert_eq!(delivered("hello").into_text(), "hello");
    }

    #[test]
    fn typed_parse() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Chat {
            user: String,
        }
        let m = delivered("{\"user\":\"ann\",\"x\":1}");
        assert_eq!(m.parse::<Chat>().unwrap(), Chat { user: "ann".into() });
        let err = delivered("hello").parse::<Chat>().unwrap_err();
        assert!(matches!(err, Error::Decode(_)));
    }
}
