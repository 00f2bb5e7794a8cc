//! Entry points for the cargo-fuzz targets in `sip/fuzz` (feature `fuzzing`): each one
//! runs untrusted bytes through everything that reads them and checks that a message
//! that parses prints back to the same message. These asserts are the point of the
//! module: it is compiled only for fuzzing, never into the node.

use crate::message::{Frame, SipMessage, StreamFramer, parse_message};
use crate::{Endpoint, EndpointConfig, Input, Transport};
use std::time::{Duration, Instant};

fn without_length(m: &SipMessage) -> SipMessage {
    let mut m = m.clone();
    match &mut m {
        SipMessage::Request(r) => r.headers.remove("Content-Length"),
        SipMessage::Response(r) => r.headers.remove("Content-Length"),
    };
    m
}

/// One datagram: parse, typed headers, print/parse round trip, endpoint over UDP and TCP.
pub fn datagram(data: &[u8], now: Instant) {
    if let Ok(msg) = parse_message(data) {
        let h = msg.headers();
        let _ = (
            h.vias(),
            h.from(),
            h.to(),
            h.cseq(),
            h.contacts(),
            h.expires(),
        );
        let printed = msg.to_bytes();
        match parse_message(&printed) {
            Ok(again) => assert_eq!(without_length(&again), without_length(&msg)),
            Err(e) => panic!("printed message does not parse: {e}"), // ok: a fuzz check reports a failure by panicking
        }
    }
    let mut ep = Endpoint::new(EndpointConfig::default());
    for transport in [Transport::Udp, Transport::Tcp] {
        ep.handle_input(
            now,
            Input::Received {
                transport,
                local: std::net::SocketAddr::from(([192, 0, 2, 1], 5060)),
                remote: std::net::SocketAddr::from(([198, 51, 100, 7], 40000)),
                conn: None,
                bytes: data.to_vec(),
            },
        );
    }
    ep.handle_input(now + Duration::from_secs(40), Input::Timeout);
    while ep.poll_output().is_some() {}
}

/// A byte stream cut in uneven pieces through the framer, each message parsed.
pub fn stream(data: &[u8]) {
    let mut framer = StreamFramer::new(8192);
    let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
    for chunk in data.chunks(step) {
        framer.push(chunk);
        while let Ok(Some(f)) = framer.next_frame() {
            if let Frame::Message(m) = f {
                let _ = parse_message(&m);
            }
        }
    }
}
