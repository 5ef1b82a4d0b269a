//! The cluster's packet handling fed arbitrary bytes from the transporter: the first byte picks
//! the topic (every kind of packet, broadcast or to this node), the rest is the payload. Must
//! never panic, whatever a peer sends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moleculer_ws_server::fuzzing;

const TOPICS: [&str; 12] = [
    "MOL.EVENT.me",
    "MOL.REQ.me",
    "MOL.RES.me",
    "MOL.DISCOVER",
    "MOL.DISCOVER.me",
    "MOL.INFO",
    "MOL.INFO.me",
    "MOL.DISCONNECT",
    "MOL.HEARTBEAT",
    "MOL.PING",
    "MOL.PING.me",
    "MOL.PONG.me",
];

fuzz_target!(|data: &[u8]| {
    let Some((&head, payload)) = data.split_first() else {
        return;
    };
    fuzzing::cluster_packet(TOPICS[usize::from(head) % TOPICS.len()], payload);
});
