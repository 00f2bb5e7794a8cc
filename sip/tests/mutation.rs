//! Mutated valid messages never make the parser, the framer or the endpoint panic, and
//! whatever parses prints back to something that parses to the same message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use sip::message::{Frame, SipMessage, StreamFramer, parse_message};
use sip::{Endpoint, EndpointConfig, Input, Transport};
use std::time::{Duration, Instant};

const SEEDS: &[&str] = &[
    "INVITE sip:bob@biloxi.example.com;transport=tcp SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;rport, SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bK2\r\n\
Max-Forwards: 70\r\n\
To: \"Bob \\\"B\\\"\" <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>;expires=60, sip:a2@h;q=0.5\r\n\
Route: <sip:p1.example.com;lr>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\n",
    "REGISTER sips:ss2.biloxi.example.com SIP/2.0\r\n\
v: SIP/2.0/TLS client.biloxi.example.com:5061;branch=z9hG4bKnashds7\r\n\
Max-Forwards: 70\r\n\
f: Bob <sips:bob@biloxi.example.com>;tag=a73kszlfl\r\n\
t: Bob <sips:bob@biloxi.example.com>\r\n\
i: 1j9FpLxk3uxtm8tn@biloxi.example.com\r\n\
CSeq: 1 REGISTER\r\n\
m: <sips:bob@client.biloxi.example.com>\r\n\
Expires: 7200\r\n\
Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n\
l: 0\r\n\r\n",
    "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP server10.biloxi.example.com;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.3\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:bob@192.0.2.4>\r\n\
Content-Length: 0\r\n\r\n",
    "OPTIONS tel:+1-201-555-0123 SIP/2.0\r\n\
Via: SIP/2.0/TCP h;branch=z9hG4bKx\r\n\
To: <tel:+1-201-555-0123>\r\n\
From: <sip:a@b>;tag=1\r\n\
Call-ID: x\r\n\
CSeq: 1 OPTIONS\r\n\
Max-Forwards: 0\r\n\
Require: foo\r\n\
Content-Length: 0\r\n\r\n",
];

const INSERTS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b" ",
    b"\t",
    b":",
    b";",
    b",",
    b"<",
    b">",
    b"\"",
    b"\\",
    b"@",
    b"=",
    b"/",
    b"%",
    b"\0",
    b"\xff",
    b"\xc3",
    b"l: 99\r\n",
    b"\r\n ",
    b"Via: ",
    b"[",
    b"]",
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, usize),
    Truncate(usize),
    Duplicate(usize, usize, usize),
}

fn apply(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let len = b.len().max(1);
        match *m {
            Mutation::Flip(i, x) => {
                if let Some(c) = b.get_mut(i % len) {
                    *c ^= x;
                }
            }
            Mutation::Delete(i, n) => {
                let s = i % len;
                let e = (s + n % 16).min(b.len());
                if s < e {
                    b.drain(s..e);
                }
            }
            Mutation::Insert(i, k) => {
                let at = (i % len).min(b.len());
                let ins = INSERTS[k % INSERTS.len()];
                b.splice(at..at, ins.iter().copied());
            }
            Mutation::Truncate(i) => b.truncate(i % len),
            Mutation::Duplicate(i, n, at) => {
                let s = i % len;
                let e = (s + n % 40).min(b.len());
                let piece = b.get(s..e).map(<[u8]>::to_vec).unwrap_or_default();
                let at = (at % len).min(b.len());
                b.splice(at..at, piece);
            }
        }
    }
    b
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, k)| Mutation::Insert(i, k)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<usize>(), any::<usize>())
            .prop_map(|(i, n, a)| Mutation::Duplicate(i, n, a)),
    ]
}

/// Everything we do with untrusted bytes.
fn exercise(bytes: &[u8], now: Instant) {
    if let Ok(msg) = parse_message(bytes) {
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
        let again = parse_message(&printed).unwrap_or_else(|e| {
            panic!(
                "printed message does not parse ({e}):\n{}",
                String::from_utf8_lossy(&printed)
            )
        });
        // Printing always writes one Content-Length (it is mandatory on streams), so
        // compare without it.
        let strip = |m: &SipMessage| {
            let mut m = m.clone();
            match &mut m {
                SipMessage::Request(r) => r.headers.remove("Content-Length"),
                SipMessage::Response(r) => r.headers.remove("Content-Length"),
            };
            m
        };
        assert_eq!(strip(&again), strip(&msg), "round trip changed the message");
    }
    let mut ep = Endpoint::new(EndpointConfig::default());
    for transport in [Transport::Udp, Transport::Tcp] {
        ep.handle_input(
            now,
            Input::Received {
                transport,
                local: "192.0.2.1:5060".parse().unwrap(),
                remote: "[2001:db8::7]:40000".parse().unwrap(),
                conn: None,
                bytes: bytes.to_vec(),
            },
        );
    }
    ep.handle_input(now + Duration::from_secs(40), Input::Timeout);
    while ep.poll_output().is_some() {}
    let mut framer = StreamFramer::new(4096);
    for chunk in bytes.chunks(7) {
        framer.push(chunk);
        while let Ok(Some(f)) = framer.next_frame() {
            if let Frame::Message(m) = f {
                let _ = parse_message(&m);
            }
        }
    }
}

#[allow(clippy::disallowed_methods)] // the test drives the clock
fn epoch() -> Instant {
    Instant::now()
}

#[test]
fn seeds_parse_and_round_trip() {
    for s in SEEDS {
        let msg = parse_message(s.as_bytes()).unwrap();
        assert_eq!(parse_message(&msg.to_bytes()).unwrap(), msg);
        exercise(s.as_bytes(), epoch());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_messages_never_panic(seed in 0..SEEDS.len(), muts in prop::collection::vec(mutation(), 1..6)) {
        let bytes = apply(SEEDS[seed].as_bytes().to_vec(), &muts);
        exercise(&bytes, epoch());
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        exercise(&bytes, epoch());
    }
}
