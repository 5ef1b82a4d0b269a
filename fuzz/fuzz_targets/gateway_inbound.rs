//! The gateway's inbound handling fed arbitrary bytes: the raw WebSocket stream of a client
//! (read with the gateway's limits and classified as the gateway does), and REST requests
//! (path, query, content type, body). Nothing may panic; every REST failure must be a client
//! error with the Moleculer shape.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moleculer_ws_server::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    if head & 1 == 0 {
        fuzzing::inbound_stream(rest, 1024);
    } else {
        let split = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        let (query, body) = rest.split_at(split);
        let query = String::from_utf8_lossy(query);
        let content_type = (head & 2 == 2).then_some("application/x-www-form-urlencoded");
        if let Err(e) = fuzzing::rest_params(&query, content_type, body.to_vec(), 4096) {
            assert!((400..500).contains(&e.code), "{e:?}");
            assert!(!e.name.is_empty() && !e.kind.is_empty());
        }
    }
});
