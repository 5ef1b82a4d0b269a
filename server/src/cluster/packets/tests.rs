//! Unit tests of `packets`.
#![allow(clippy::unwrap_used)]
use super::*;
use serde_json::json;
use std::time::Duration;

#[test]
fn node_ids_of_moleculer_pass_subject_syntax_and_long_ones_do_not() {
    for ok in ["gw-rust", "node-js", "web1.example.com-4242", "gw_1", "A9"] {
        assert!(valid_node_id(ok), "{ok}");
    }
    let long = "a".repeat(MAX_NODE_ID_LEN + 1);
    for bad in [
        "",
        "x.>",
        "x.*",
        ">",
        "a b",
        "a\tb",
        "a\r\nPUB x 0",
        ".a",
        "a.",
        "a..b",
        "é",
        "a/b",
        &long,
    ] {
        assert!(!valid_node_id(bad), "{bad:?}");
    }
    assert!(valid_node_id(&long[1..]));
}

#[test]
fn header_refuses_bad_senders_apart_from_malformed_packets() {
    let bad = read_header(br#"{"ver":"4","sender":"x.>"}"#).unwrap_err();
    assert!(matches!(bad, BadHeader::Sender(s) if s == "x.>"));
    let bad = read_header(br#"{"ver":"4","sender":7}"#).unwrap_err();
    assert!(matches!(bad, BadHeader::Malformed(_)));
    assert_eq!(
        read_header(br#"{"ver":4,"sender":"n-1"}"#).unwrap().0.ver,
        "4"
    );
}

#[test]
fn request_time_limit_is_the_callers_timeout_within_the_configured_one() {
    let limit = Duration::from_secs(10);
    let req = |timeout: Value| {
        let packet = json!({"id": "1", "action": "a", "timeout": timeout});
        serde_json::from_value::<RequestPacket>(packet).unwrap()
    };
    assert_eq!(
        req(json!(200)).time_limit(limit),
        Duration::from_millis(200)
    );
    assert_eq!(
        req(json!(2.5)).time_limit(limit),
        Duration::from_micros(2500)
    );
    for none in [json!(0), json!(-5), json!(null), json!("200"), json!(1e300)] {
        assert_eq!(req(none.clone()).time_limit(limit), limit, "{none}");
    }
    assert_eq!(req(json!(60_000)).time_limit(limit), limit);
    let missing: RequestPacket = serde_json::from_value(json!({"id": "1", "action": "a"})).unwrap();
    assert_eq!(missing.time_limit(limit), limit);
}
