use super::*;
use crate::endpoint::{EndpointConfig, Input, Output};
use crate::message::{SipMessage, parse_message};

const NODE: &str = "192.0.2.10:5060";
const ALICE: &str = "198.51.100.1:5060";
const BOB1: &str = "198.51.100.2:5060";
const BOB2: &str = "198.51.100.3:5060";

struct Loc {
    targets: HashMap<String, Vec<Target>>,
    pending: bool,
}

impl Location for Loc {
    fn lookup(&mut self, uri: &Uri, _now: Instant) -> Lookup {
        if self.pending {
            return Lookup::Pending(7);
        }
        let user = uri.as_sip().and_then(|u| u.user()).unwrap_or_default();
        match self.targets.get(user) {
            Some(t) => Lookup::Targets(t.clone()),
            None if user == "carol" => Lookup::Targets(Vec::new()),
            None => Lookup::UnknownUser,
        }
    }
    fn resolve_contact(&mut self, _uri: &Uri, _now: Instant) -> Option<Destination> {
        None
    }
}

impl Authenticator for Loc {
    fn authenticate(&mut self, request: &Request, _now: Instant) -> AuthVerdict {
        let ours = request
            .headers
            .from()
            .and_then(|f| f.uri.as_sip().map(|u| u.host == "example.com"))
            .unwrap_or(false);
        if !ours {
            AuthVerdict::NotRequired
        } else if request.headers.contains("Proxy-Authorization") {
            AuthVerdict::Authenticated("alice".into())
        } else {
            AuthVerdict::Reject {
                status: 407,
                reason: "Proxy Authentication Required".into(),
                headers: vec![(
                    "Proxy-Authenticate".into(),
                    "Digest realm=\"example.com\", nonce=\"n\"".into(),
                )],
            }
        }
    }
}

fn target(addr: &str, q: u16) -> Target {
    Target {
        uri: Uri::parse(&format!("sip:bob@{addr}")).unwrap(),
        q,
        dest: Some(Destination {
            transport: Transport::Udp,
            remote: addr.parse().unwrap(),
            conn: None,
        }),
        path: Vec::new(),
    }
}

struct World {
    ep: Endpoint,
    proxy: Proxy,
    loc: Loc,
    now: Instant,
}

impl World {
    fn new(targets: Vec<Target>) -> World {
        let mut t = HashMap::new();
        t.insert("bob".to_owned(), targets);
        World {
            ep: Endpoint::new(EndpointConfig::default()),
            proxy: Proxy::new(ProxyConfig {
                local: vec![(Transport::Udp, NODE.parse().unwrap())],
                ring_timeout: Duration::from_secs(30),
                ..ProxyConfig::default()
            }),
            loc: Loc {
                targets: t,
                pending: false,
            },
            now: crate::transaction::test_epoch(),
        }
    }

    /// Feeds bytes from `from`, runs the proxy, returns what was transmitted.
    fn recv(&mut self, from: &str, msg: &[u8]) -> Vec<(SocketAddr, SipMessage)> {
        self.ep.handle_input(
            self.now,
            Input::Received {
                transport: Transport::Udp,
                local: NODE.parse().unwrap(),
                remote: from.parse().unwrap(),
                conn: None,
                bytes: msg.to_vec(),
            },
        );
        self.pump()
    }

    fn pump(&mut self) -> Vec<(SocketAddr, SipMessage)> {
        let mut sent = Vec::new();
        while let Some(o) = self.ep.poll_output() {
            match o {
                Output::Transmit { remote, bytes, .. } => {
                    sent.push((remote, parse_message(&bytes).unwrap()))
                }
                Output::Event(e) => {
                    let _ = self
                        .proxy
                        .on_event(&mut self.ep, self.now, e, &mut self.loc);
                }
            }
        }
        sent
    }

    fn advance(&mut self, d: Duration) -> Vec<(SocketAddr, SipMessage)> {
        self.now += d;
        self.proxy.handle_timeout(&mut self.ep, self.now);
        let mut out = self.pump();
        self.ep.handle_input(self.now, Input::Timeout);
        out.extend(self.pump());
        out
    }
}

fn invite(to: &str, auth: bool) -> String {
    format!(
        "INVITE sip:{to}@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKa1;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:{to}@example.com>\r\n\
From: <sip:alice@example.com>;tag=fa\r\n\
Call-ID: call1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@198.51.100.1:5060>\r\n\
{}Content-Length: 0\r\n\r\n",
        if auth {
            "Proxy-Authorization: Digest username=\"alice\"\r\n"
        } else {
            ""
        }
    )
}

fn req(m: &SipMessage) -> &Request {
    match m {
        SipMessage::Request(r) => r,
        SipMessage::Response(r) => panic!("response {}", r.status),
    }
}

fn status(m: &SipMessage) -> u16 {
    match m {
        SipMessage::Response(r) => r.status,
        SipMessage::Request(r) => panic!("request {}", r.method),
    }
}

/// What the phone answers to a forwarded request.
fn answer(r: &Request, code: u16, tag: &str) -> Vec<u8> {
    let mut resp = crate::response::response_to(r, code, "X", Some(tag), None);
    if (200..300).contains(&code) {
        resp.headers.push(
            "Contact",
            format!("<sip:bob@{}>", r.uri.as_sip().unwrap().host_port()),
        );
        for rr in r.headers.get_all("Record-Route") {
            resp.headers.push("Record-Route", rr);
        }
    }
    resp.to_bytes()
}

#[test]
fn challenge_then_call_answered_and_hung_up() {
    let mut w = World::new(vec![target(BOB1, 1000)]);
    let out = w.recv(ALICE, invite("bob", false).as_bytes());
    let statuses: Vec<u16> = out.iter().map(|(_, m)| status(m)).collect();
    assert_eq!(statuses, vec![100, 407]);
    let out = w.recv(
        ALICE,
        invite("bob", true)
            .replace("z9hG4bKa1", "z9hG4bKa2")
            .as_bytes(),
    );
    assert_eq!(status(&out[0].1), 100);
    let (to, fwd) = &out[1];
    assert_eq!(*to, BOB1.parse::<SocketAddr>().unwrap());
    let fwd = req(fwd).clone();
    assert_eq!(fwd.uri.to_string(), format!("sip:bob@{BOB1}"));
    assert_eq!(fwd.headers.max_forwards(), Some(69));
    assert!(!fwd.headers.contains("Proxy-Authorization"));
    let rr = fwd.headers.get("Record-Route").unwrap();
    assert!(rr.contains(";lr") && rr.contains("p2pnode=local"), "{rr}");
    let top = fwd.headers.top_via().unwrap();
    assert!(top.branch().unwrap().starts_with("z9hG4bKp2p"));
    assert_eq!(fwd.headers.count("Via"), 2);
    // 180 goes upstream without our Via.
    let out = w.recv(BOB1, &answer(&fwd, 180, "b1"));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, ALICE.parse::<SocketAddr>().unwrap());
    let SipMessage::Response(ringing) = &out[0].1 else {
        panic!()
    };
    assert_eq!(ringing.status, 180);
    assert_eq!(
        ringing.headers.top_via().unwrap().branch(),
        Some("z9hG4bKa2")
    );
    let out = w.recv(BOB1, &answer(&fwd, 200, "b1"));
    assert_eq!(status(&out[0].1), 200);
    // The ACK for the 2xx is routed by Route (our Record-Route) to the callee.
    let ack = format!(
        "ACK sip:bob@{BOB1} SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKack\r\n\
Route: {rr}\r\nMax-Forwards: 70\r\nTo: <sip:bob@example.com>;tag=b1\r\n\
From: <sip:alice@example.com>;tag=fa\r\nCall-ID: call1\r\nCSeq: 2 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    let out = w.recv(ALICE, ack.as_bytes());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, BOB1.parse::<SocketAddr>().unwrap());
    let a = req(&out[0].1);
    assert_eq!(a.method, Method::Ack);
    assert!(!a.headers.contains("Route"));
    // BYE from the callee to the caller's contact.
    let bye = format!(
        "BYE sip:alice@198.51.100.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {BOB1};branch=z9hG4bKbye\r\n\
Route: {rr}\r\nMax-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=b1\r\n\
To: <sip:alice@example.com>;tag=fa\r\nCall-ID: call1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let out = w.recv(BOB1, bye.as_bytes());
    assert_eq!(out[0].0, ALICE.parse::<SocketAddr>().unwrap());
    let b = req(&out[0].1).clone();
    assert_eq!(b.method, Method::Bye);
    let out = w.recv(ALICE, &answer(&b, 200, "fa"));
    assert_eq!(out[0].0, BOB1.parse::<SocketAddr>().unwrap());
    assert_eq!(status(&out[0].1), 200);
    let rec = w.proxy.poll_record().unwrap();
    assert_eq!(
        (rec.result.as_str(), rec.status, rec.caller.as_str()),
        ("answered", 200, "sip:alice@example.com")
    );
    assert!(rec.answer.is_some());
    // Contexts go away after the linger time.
    w.advance(Duration::from_secs(40));
    assert_eq!(w.proxy.context_count(), 0);
}

#[test]
fn parallel_fork_first_2xx_wins_and_the_other_is_cancelled() {
    let mut w = World::new(vec![target(BOB1, 1000), target(BOB2, 1000)]);
    let out = w.recv(ALICE, invite("bob", true).as_bytes());
    let fwd: Vec<(SocketAddr, Request)> =
        out[1..].iter().map(|(a, m)| (*a, req(m).clone())).collect();
    assert_eq!(fwd.len(), 2);
    let b1 = fwd[0].1.clone();
    let b2 = fwd[1].1.clone();
    assert_ne!(
        b1.headers.top_via().unwrap().branch(),
        b2.headers.top_via().unwrap().branch()
    );
    w.recv(BOB1, &answer(&b1, 180, "t1"));
    w.recv(BOB2, &answer(&b2, 180, "t2"));
    let out = w.recv(BOB1, &answer(&b1, 200, "t1"));
    let kinds: Vec<String> = out
        .iter()
        .map(|(a, m)| match m {
            SipMessage::Request(r) => format!("{} to {a}", r.method),
            SipMessage::Response(r) => format!("{} to {a}", r.status),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![format!("200 to {ALICE}"), format!("CANCEL to {BOB2}")]
    );
    let cancel = req(&out[1].1);
    assert_eq!(
        cancel.headers.top_via().unwrap().branch(),
        b2.headers.top_via().unwrap().branch()
    );
    // The cancelled branch's 487 is absorbed (ACKed by its transaction), not forwarded.
    let out = w.recv(BOB2, &answer(&b2, 487, "t2"));
    assert!(
        out.iter()
            .all(|(a, _)| *a == BOB2.parse::<SocketAddr>().unwrap())
    );
}

#[test]
fn sequential_q_groups_then_busy_is_passed_back() {
    let mut w = World::new(vec![target(BOB2, 500), target(BOB1, 1000)]);
    let out = w.recv(ALICE, invite("bob", true).as_bytes());
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].0, BOB1.parse::<SocketAddr>().unwrap());
    let b1 = req(&out[1].1).clone();
    let out = w.recv(BOB1, &answer(&b1, 480, "t1"));
    // ACK to BOB1, then the next group.
    let to_b2: Vec<&Request> = out
        .iter()
        .filter(|(a, _)| *a == BOB2.parse::<SocketAddr>().unwrap())
        .map(|(_, m)| req(m))
        .collect();
    assert_eq!(to_b2.len(), 1);
    let b2 = to_b2[0].clone();
    let out = w.recv(BOB2, &answer(&b2, 486, "t2"));
    let up: Vec<u16> = out
        .iter()
        .filter(|(a, _)| *a == ALICE.parse::<SocketAddr>().unwrap())
        .map(|(_, m)| status(m))
        .collect();
    // 16.7: 4xx vs 4xx, both are 4xx, the first of the lowest class is kept.
    assert_eq!(up, vec![480]);
    let rec = w.proxy.poll_record().unwrap();
    assert_eq!(rec.answer, None);
}

#[test]
fn busy_from_single_target_is_passed_back() {
    let mut w = World::new(vec![target(BOB1, 1000)]);
    let out = w.recv(ALICE, invite("bob", true).as_bytes());
    let b1 = req(&out[1].1).clone();
    let out = w.recv(BOB1, &answer(&b1, 486, "t1"));
    let up: Vec<u16> = out
        .iter()
        .filter(|(a, _)| *a == ALICE.parse::<SocketAddr>().unwrap())
        .map(|(_, m)| status(m))
        .collect();
    assert_eq!(up, vec![486]);
    assert_eq!(w.proxy.poll_record().unwrap().result, "busy");
}

#[test]
fn unknown_user_404_unregistered_480() {
    let mut w = World::new(vec![]);
    let out = w.recv(ALICE, invite("nobody", true).as_bytes());
    let st: Vec<u16> = out.iter().map(|(_, m)| status(m)).collect();
    assert_eq!(st, vec![100, 404]);
    let out = w.recv(
        ALICE,
        invite("carol", true)
            .replace("call1", "call2")
            .replace("a1;", "a9;")
            .as_bytes(),
    );
    assert_eq!(status(&out[1].1), 480);
}

#[test]
fn no_answer_times_out_with_480_and_cancel() {
    let mut w = World::new(vec![target(BOB1, 1000)]);
    let out = w.recv(ALICE, invite("bob", true).as_bytes());
    let b1 = req(&out[1].1).clone();
    w.recv(BOB1, &answer(&b1, 180, "t1"));
    let out = w.advance(Duration::from_secs(31));
    let cancel = out
        .iter()
        .find(|(_, m)| matches!(m, SipMessage::Request(r) if r.method == Method::Cancel));
    assert!(cancel.is_some(), "{out:?}");
    let out = w.recv(BOB1, &answer(&b1, 487, "t1"));
    let up: Vec<u16> = out
        .iter()
        .filter(|(a, _)| *a == ALICE.parse::<SocketAddr>().unwrap())
        .map(|(_, m)| status(m))
        .collect();
    assert_eq!(up, vec![480]);
    assert_eq!(w.proxy.poll_record().unwrap().result, "no answer");
}

#[test]
fn caller_cancel_is_forwarded_and_487_comes_back() {
    let mut w = World::new(vec![target(BOB1, 1000)]);
    let out = w.recv(ALICE, invite("bob", true).as_bytes());
    let b1 = req(&out[1].1).clone();
    w.recv(BOB1, &answer(&b1, 180, "t1"));
    let cancel = invite("bob", true).replace("INVITE", "CANCEL");
    let out = w.recv(ALICE, cancel.as_bytes());
    assert_eq!(status(&out[0].1), 200);
    assert_eq!(req(&out[1].1).method, Method::Cancel);
    assert_eq!(out[1].0, BOB1.parse::<SocketAddr>().unwrap());
    let out = w.recv(BOB1, &answer(&b1, 487, "t1"));
    let up: Vec<u16> = out
        .iter()
        .filter(|(a, _)| *a == ALICE.parse::<SocketAddr>().unwrap())
        .map(|(_, m)| status(m))
        .collect();
    assert_eq!(up, vec![487]);
}

#[test]
fn loop_is_detected() {
    let mut w = World::new(vec![target(NODE, 1000)]);
    // Forwarding to ourselves: the copy comes back with our Via and the same hash.
    let out = w.recv(ALICE, invite("bob", true).as_bytes());
    let (to, fwd) = &out[1];
    assert_eq!(*to, NODE.parse::<SocketAddr>().unwrap());
    let mut again = req(fwd).clone();
    again.uri = Uri::parse("sip:bob@example.com").unwrap();
    let out = w.recv(NODE, &again.to_bytes());
    assert!(
        out.iter()
            .any(|(_, m)| matches!(m, SipMessage::Response(r) if r.status == 482))
    );
}

#[test]
fn pending_lookup_completes_later() {
    let mut w = World::new(vec![]);
    w.loc.pending = true;
    let out = w.recv(ALICE, invite("bob", true).as_bytes());
    assert_eq!(out.len(), 1); // only 100 Trying
    w.proxy.lookup_complete(
        &mut w.ep,
        w.now,
        7,
        Lookup::Targets(vec![target(BOB1, 1000)]),
    );
    let out = w.pump();
    assert_eq!(out[0].0, BOB1.parse::<SocketAddr>().unwrap());
}

#[test]
fn no_open_relay_for_foreign_routes() {
    let mut w = World::new(vec![target(BOB1, 1000)]);
    // A stranger (no credentials: challenged first) with a pre-loaded foreign Route.
    let routed = invite("bob", false).replace(
        "Max-Forwards",
        "Route: <sip:203.0.113.9;lr>\r\nMax-Forwards",
    );
    let out = w.recv(ALICE, routed.as_bytes());
    assert_eq!(status(&out[1].1), 407);
    // From another domain: not challenged, but not relayed either.
    let stranger = routed
        .replace("alice@example.com", "mallory@evil.example")
        .replace("a1;", "a3;");
    let out = w.recv(ALICE, stranger.as_bytes());
    let st: Vec<u16> = out.iter().map(|(_, m)| status(m)).collect();
    assert_eq!(st, vec![100, 403]);
    // An in-dialog request that does not name us in its Route set: refused too.
    let bye = format!(
        "BYE sip:bob@{BOB1} SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKb9\r\n\
Max-Forwards: 70\r\nFrom: <sip:mallory@evil.example>;tag=x\r\n\
To: <sip:bob@example.com>;tag=y\r\nCall-ID: c9\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let out = w.recv(ALICE, bye.as_bytes());
    assert_eq!(status(&out[0].1), 403);
}

#[test]
fn target_flow_is_used_instead_of_the_contact() {
    // Registered over TCP from behind a NAT: the Contact is private, the flow is not.
    let flow = Destination {
        transport: Transport::Tcp,
        remote: "203.0.113.5:41000".parse().unwrap(),
        conn: Some(crate::endpoint::ConnId(9)),
    };
    let t = Target {
        uri: Uri::parse("sip:bob@10.0.0.5:5060;transport=tcp").unwrap(),
        q: 1000,
        dest: Some(flow),
        path: Vec::new(),
    };
    let mut w = World::new(vec![t]);
    w.proxy = Proxy::new(ProxyConfig {
        local: vec![
            (Transport::Udp, NODE.parse().unwrap()),
            (Transport::Tcp, "192.0.2.10:5070".parse().unwrap()),
        ],
        ..ProxyConfig::default()
    });
    let out = w.recv(ALICE, invite("bob", true).as_bytes());
    let (to, fwd) = &out[1];
    assert_eq!(*to, flow.remote);
    let fwd = req(fwd);
    assert_eq!(fwd.uri.to_string(), "sip:bob@10.0.0.5:5060;transport=tcp");
    let via = fwd.headers.top_via().unwrap();
    assert_eq!(
        (via.transport.as_str(), via.sent_by()),
        ("TCP", "192.0.2.10:5070".to_owned())
    );
    // Double Record-Route (RFC 5658): TCP side for the callee on top, UDP for the caller.
    let rr: Vec<&str> = fwd.headers.get_all("Record-Route").collect();
    assert_eq!(rr.len(), 2, "{rr:?}");
    assert!(rr[0].contains("192.0.2.10:5070;transport=tcp;lr"), "{rr:?}");
    assert!(rr[1].starts_with("<sip:192.0.2.10:5060;lr"), "{rr:?}");
    // The callee's BYE carries both as Route: both are taken off, then the caller's contact.
    let bye = format!(
        "BYE sip:alice@198.51.100.1:5060 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bKbt\r\n\
Route: {}\r\nRoute: {}\r\nMax-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=b\r\n\
To: <sip:alice@example.com>;tag=fa\r\nCall-ID: call1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        rr[0], rr[1]
    );
    let out = w.recv(BOB1, bye.as_bytes());
    assert_eq!(out[0].0, ALICE.parse::<SocketAddr>().unwrap());
    assert!(!req(&out[0].1).headers.contains("Route"));
}
