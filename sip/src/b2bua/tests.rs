use super::*;
use crate::endpoint::{EndpointConfig, Input, Output};
use crate::message::{SipMessage, parse_message};

const NODE: &str = "192.0.2.10:5060";
const PHONE: &str = "198.51.100.1:5060";
const TRUNK1: &str = "203.0.113.1:5060";
const TRUNK2: &str = "203.0.113.2:5060";

struct World {
    ep: Endpoint,
    b2b: B2bua,
    now: Instant,
    /// Requests handed to the app (not the B2BUA's).
    app_requests: Vec<(TransactionKey, Request)>,
}

fn target(addr: &str, creds: bool) -> FarTarget {
    FarTarget {
        name: format!("trunk-{addr}"),
        uri: Uri::parse(&format!("sip:+4940123456@{addr}")).unwrap(),
        from: Uri::parse(&format!("sip:+494099999@{addr}")).unwrap(),
        from_display: None,
        to: Uri::parse(&format!("sip:+4940123456@{addr}")).unwrap(),
        dest: Destination {
            transport: Transport::Udp,
            remote: addr.parse().unwrap(),
            conn: None,
        },
        credentials: creds.then(|| DigestCredentials {
            username: "trunkuser".into(),
            password: "trunkpass".into(),
        }),
    }
}

const INVITE: &str = "INVITE sip:004940123456@p2psip.local SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKa1;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:1001@p2psip.local>;tag=ft\r\n\
To: <sip:004940123456@p2psip.local>\r\n\
Call-ID: callA\r\n\
CSeq: 5 INVITE\r\n\
Contact: <sip:1001@198.51.100.1:5060>\r\n\
Record-Route: <sip:hidden.example;lr>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\n";

impl World {
    fn new() -> World {
        World {
            ep: Endpoint::new(EndpointConfig::default()),
            b2b: B2bua::new(B2buaConfig {
                local: vec![(Transport::Udp, NODE.parse().unwrap())],
                ..B2buaConfig::default()
            }),
            now: crate::transaction::test_epoch(),
            app_requests: Vec::new(),
        }
    }

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
                    if let Some(Event::Request { key, request, .. }) =
                        self.b2b.on_event(&mut self.ep, self.now, e)
                    {
                        self.app_requests.push((key, request));
                    }
                }
            }
        }
        sent
    }

    fn advance(&mut self, d: Duration) -> Vec<(SocketAddr, SipMessage)> {
        self.now += d;
        self.ep.handle_input(self.now, Input::Timeout);
        self.b2b.handle_timeout(&mut self.ep, self.now);
        self.pump()
    }

    /// Receives the phone's INVITE and starts the bridge to `targets`.
    fn start(&mut self, targets: Vec<FarTarget>) -> Vec<(SocketAddr, SipMessage)> {
        let mut sent = self.recv(PHONE, INVITE.as_bytes());
        let (key, req) = self.app_requests.pop().unwrap();
        let source = Source {
            transport: Transport::Udp,
            local: NODE.parse().unwrap(),
            remote: PHONE.parse().unwrap(),
            conn: None,
        };
        self.b2b
            .start(&mut self.ep, self.now, key, req, source, targets)
            .unwrap();
        sent.extend(self.pump());
        sent
    }
}

fn requests(sent: &[(SocketAddr, SipMessage)], to: &str) -> Vec<Request> {
    sent.iter()
        .filter(|(a, _)| a.to_string() == to)
        .filter_map(|(_, m)| match m {
            SipMessage::Request(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn responses(sent: &[(SocketAddr, SipMessage)], to: &str) -> Vec<Response> {
    sent.iter()
        .filter(|(a, _)| a.to_string() == to)
        .filter_map(|(_, m)| match m {
            SipMessage::Response(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

/// A response to `req` from the far side.
fn answer(req: &Request, status: u16, reason: &str, extra: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut r = crate::response::response_to(req, status, reason, Some("farTag"), None);
    for (n, v) in extra {
        r.headers.push(n, *v);
    }
    if !body.is_empty() {
        r.headers.push("Content-Type", "application/sdp");
        r.body = body.as_bytes().to_vec();
        r.headers.set("Content-Length", body.len().to_string());
    }
    r.to_bytes()
}

#[test]
fn far_leg_hides_topology_and_relays_answer_ack_and_bye() {
    let mut w = World::new();
    let sent = w.start(vec![target(TRUNK1, false)]);
    let inv = requests(&sent, TRUNK1).pop().expect("far INVITE");
    // New dialog identifiers, none of the caller's topology.
    assert_ne!(inv.headers.call_id(), Some("callA"));
    let text = String::from_utf8(inv.to_bytes()).unwrap();
    for hidden in ["198.51.100.1", "hidden.example", "ft", "1001@"] {
        assert!(!text.contains(hidden), "{hidden} leaked: {text}");
    }
    assert_eq!(inv.uri.to_string(), "sip:+4940123456@203.0.113.1:5060");
    assert_eq!(inv.body, b"v=0\n");
    assert_eq!(inv.headers.get("Content-Type"), Some("application/sdp"));
    // Ringing and answer come back to the caller on the A dialog.
    let sent = w.recv(
        TRUNK1,
        &answer(
            &inv,
            180,
            "Ringing",
            &[("Contact", "<sip:gw@203.0.113.1>")],
            "",
        ),
    );
    let r = responses(&sent, PHONE);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, 180);
    assert_eq!(r[0].headers.call_id(), Some("callA"));
    let sent = w.recv(
        TRUNK1,
        &answer(
            &inv,
            200,
            "OK",
            &[("Contact", "<sip:gw@203.0.113.1:5060>")],
            "v=1\n",
        ),
    );
    // B's 2xx is ACKed at once (the offer was in the INVITE).
    let acks = requests(&sent, TRUNK1);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].method, Method::Ack);
    assert_eq!(acks[0].uri.to_string(), "sip:gw@203.0.113.1:5060");
    let ok = responses(&sent, PHONE);
    assert_eq!(ok[0].status, 200);
    assert_eq!(ok[0].body, b"v=1\n");
    let contact = ok[0].headers.get("Contact").unwrap();
    assert!(contact.contains("192.0.2.10:5060"), "{contact}");
    assert!(
        !String::from_utf8(ok[0].to_bytes())
            .unwrap()
            .contains("203.0.113")
    );
    let a_tag = ok[0].headers.to().unwrap().tag().unwrap().to_owned();
    // The caller's ACK stops the 2xx retransmissions.
    let ack = format!(
        "ACK sip:b2b1@192.0.2.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKa2;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:1001@p2psip.local>;tag=ft\r\nTo: <sip:004940123456@p2psip.local>;tag={a_tag}\r\n\
         Call-ID: callA\r\nCSeq: 5 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    let sent = w.recv(PHONE, ack.as_bytes());
    assert!(sent.is_empty(), "{sent:?}");
    let sent = w.advance(Duration::from_secs(1));
    assert!(responses(&sent, PHONE).is_empty());
    // The far side hangs up: 200 to it, BYE to the caller on the A dialog.
    let bye = format!(
        "BYE sip:b2b1@192.0.2.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKb9\r\n\
         Max-Forwards: 70\r\nFrom: {};tag=farTag\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        inv.headers.get("To").unwrap(),
        inv.headers.get("From").unwrap(),
        inv.headers.call_id().unwrap()
    );
    let sent = w.recv(TRUNK1, bye.as_bytes());
    assert_eq!(responses(&sent, TRUNK1)[0].status, 200);
    let byes = requests(&sent, PHONE);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].method, Method::Bye);
    assert_eq!(byes[0].uri.to_string(), "sip:1001@198.51.100.1:5060");
    assert_eq!(byes[0].headers.call_id(), Some("callA"));
    assert_eq!(byes[0].headers.from().unwrap().tag(), Some(a_tag.as_str()));
    assert_eq!(byes[0].headers.to().unwrap().tag(), Some("ft"));
    // The caller's Record-Route is its route set.
    assert_eq!(
        byes[0].headers.get("Route"),
        Some("<sip:hidden.example;lr>")
    );
    let rec = w.b2b.poll_record().unwrap();
    assert_eq!(rec.result, "answered");
    assert_eq!(rec.call_id, "callA");
    assert!(rec.answer.is_some());
}

#[test]
fn challenge_is_answered_with_trunk_credentials() {
    let mut w = World::new();
    let sent = w.start(vec![target(TRUNK1, true)]);
    let inv = requests(&sent, TRUNK1).pop().unwrap();
    let sent = w.recv(
        TRUNK1,
        &answer(
            &inv,
            407,
            "Proxy Authentication Required",
            &[(
                "Proxy-Authenticate",
                "Digest realm=\"carrier\", nonce=\"abc\", qop=\"auth\"",
            )],
            "",
        ),
    );
    let reqs = requests(&sent, TRUNK1);
    // The endpoint ACKs the 407; then the INVITE again with credentials.
    assert_eq!(reqs[0].method, Method::Ack);
    let inv2 = reqs.iter().find(|r| r.method == Method::Invite).unwrap();
    assert_eq!(inv2.headers.call_id(), inv.headers.call_id());
    assert_eq!(inv2.headers.cseq().unwrap().seq, 2);
    let cred =
        crate::auth::Credentials::parse(inv2.headers.get("Proxy-Authorization").unwrap()).unwrap();
    assert_eq!(cred.username, "trunkuser");
    let ha1 = crate::auth::ha1(
        crate::auth::Algorithm::Md5,
        "trunkuser",
        "carrier",
        "trunkpass",
    );
    cred.verify_ha1(&ha1, "INVITE").unwrap();
    // The caller saw nothing of it.
    assert!(responses(&sent, PHONE).is_empty());
    // A second challenge is not answered again: the caller gets 403.
    let sent = w.recv(
        TRUNK1,
        &answer(
            inv2,
            407,
            "Proxy Authentication Required",
            &[(
                "Proxy-Authenticate",
                "Digest realm=\"carrier\", nonce=\"x\"",
            )],
            "",
        ),
    );
    assert_eq!(responses(&sent, PHONE)[0].status, 403);
    assert_eq!(w.b2b.poll_record().unwrap().status, 403);
}

#[test]
fn fails_over_on_503_and_on_silence() {
    let mut w = World::new();
    let sent = w.start(vec![
        target(TRUNK1, false),
        target(TRUNK2, false),
        target(TRUNK1, false),
    ]);
    let inv = requests(&sent, TRUNK1).pop().unwrap();
    let sent = w.recv(TRUNK1, &answer(&inv, 503, "Service Unavailable", &[], ""));
    let inv2 = requests(&sent, TRUNK2)
        .into_iter()
        .find(|r| r.method == Method::Invite)
        .unwrap();
    assert_ne!(inv2.headers.call_id(), inv.headers.call_id());
    assert!(responses(&sent, PHONE).is_empty());
    // TRUNK2 says nothing at all: after the attempt timeout, the third target.
    let sent = w.advance(Duration::from_secs(6));
    let inv3 = requests(&sent, TRUNK1)
        .into_iter()
        .find(|r| r.method == Method::Invite)
        .expect("third attempt");
    let sent = w.recv(TRUNK1, &answer(&inv3, 486, "Busy Here", &[], ""));
    let r = responses(&sent, PHONE);
    assert_eq!(r[0].status, 486);
    assert_eq!(w.b2b.poll_record().unwrap().result, "busy");
    // A late 200 from the abandoned second attempt is ACKed and hung up.
    let sent = w.recv(
        TRUNK2,
        &answer(&inv2, 200, "OK", &[("Contact", "<sip:x@203.0.113.2>")], ""),
    );
    let reqs = requests(&sent, TRUNK2);
    assert!(reqs.iter().any(|r| r.method == Method::Ack));
    assert!(reqs.iter().any(|r| r.method == Method::Bye));
}

#[test]
fn last_503_reaches_the_caller_and_empty_list_is_503() {
    let mut w = World::new();
    let sent = w.start(vec![target(TRUNK1, false)]);
    let inv = requests(&sent, TRUNK1).pop().unwrap();
    let sent = w.recv(TRUNK1, &answer(&inv, 503, "Service Unavailable", &[], ""));
    assert_eq!(responses(&sent, PHONE)[0].status, 503);
    let mut w = World::new();
    let sent = w.start(Vec::new());
    assert_eq!(responses(&sent, PHONE).last().unwrap().status, 503);
}

#[test]
fn cancel_from_the_caller_cancels_the_far_leg() {
    let mut w = World::new();
    let sent = w.start(vec![target(TRUNK1, false)]);
    let inv = requests(&sent, TRUNK1).pop().unwrap();
    w.recv(TRUNK1, &answer(&inv, 180, "Ringing", &[], ""));
    let cancel = "CANCEL sip:004940123456@p2psip.local SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKa1;rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:1001@p2psip.local>;tag=ft\r\nTo: <sip:004940123456@p2psip.local>\r\n\
Call-ID: callA\r\nCSeq: 5 CANCEL\r\nContent-Length: 0\r\n\r\n";
    let sent = w.recv(PHONE, cancel.as_bytes());
    let statuses: Vec<u16> = responses(&sent, PHONE).iter().map(|r| r.status).collect();
    assert!(
        statuses.contains(&200) && statuses.contains(&487),
        "{statuses:?}"
    );
    let c = requests(&sent, TRUNK1);
    assert_eq!(c[0].method, Method::Cancel);
    assert_eq!(c[0].headers.call_id(), inv.headers.call_id());
    assert_eq!(w.b2b.poll_record().unwrap().result, "cancelled");
    // The far side's 487 is absorbed.
    let sent = w.recv(TRUNK1, &answer(&inv, 487, "Request Terminated", &[], ""));
    assert!(responses(&sent, PHONE).is_empty());
}

#[test]
fn reinvite_from_the_far_side_is_relayed_with_its_answer_and_ack() {
    let mut w = World::new();
    let sent = w.start(vec![target(TRUNK1, false)]);
    let inv = requests(&sent, TRUNK1).pop().unwrap();
    let sent = w.recv(
        TRUNK1,
        &answer(
            &inv,
            200,
            "OK",
            &[("Contact", "<sip:gw@203.0.113.1:5060>")],
            "v=1\n",
        ),
    );
    let a_tag = responses(&sent, PHONE)[0]
        .headers
        .to()
        .unwrap()
        .tag()
        .unwrap()
        .to_owned();
    let reinvite = format!(
        "INVITE sip:b2b1@192.0.2.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKr1\r\n\
         Max-Forwards: 70\r\nFrom: {};tag=farTag\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 7 INVITE\r\n\
         Contact: <sip:gw@203.0.113.1:5060>\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=2\n",
        inv.headers.get("To").unwrap(),
        inv.headers.get("From").unwrap(),
        inv.headers.call_id().unwrap()
    );
    let sent = w.recv(TRUNK1, reinvite.as_bytes());
    let fwd = requests(&sent, PHONE)
        .into_iter()
        .find(|r| r.method == Method::Invite)
        .unwrap();
    assert_eq!(fwd.headers.call_id(), Some("callA"));
    assert_eq!(fwd.headers.from().unwrap().tag(), Some(a_tag.as_str()));
    assert_eq!(fwd.body, b"v=2\n");
    let sent = w.recv(PHONE, &answer(&fwd, 200, "OK", &[], "v=3\n"));
    let up = responses(&sent, TRUNK1)
        .into_iter()
        .find(|r| r.status == 200)
        .unwrap();
    assert_eq!(up.body, b"v=3\n");
    assert_eq!(up.headers.cseq().unwrap().seq, 7);
    // The far side's ACK goes to the phone with the phone-leg CSeq.
    let ack = format!(
        "ACK sip:b2b1@192.0.2.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKr2\r\n\
         Max-Forwards: 70\r\nFrom: {};tag=farTag\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 7 ACK\r\nContent-Length: 0\r\n\r\n",
        inv.headers.get("To").unwrap(),
        up.headers.get("To").unwrap(),
        inv.headers.call_id().unwrap()
    );
    let sent = w.recv(TRUNK1, ack.as_bytes());
    let acks = requests(&sent, PHONE);
    assert_eq!(acks[0].method, Method::Ack);
    assert_eq!(
        acks[0].headers.cseq().unwrap().seq,
        fwd.headers.cseq().unwrap().seq
    );
}

#[test]
fn unanswered_2xx_is_retransmitted_then_the_call_is_hung_up() {
    let mut w = World::new();
    let sent = w.start(vec![target(TRUNK1, false)]);
    let inv = requests(&sent, TRUNK1).pop().unwrap();
    w.recv(
        TRUNK1,
        &answer(
            &inv,
            200,
            "OK",
            &[("Contact", "<sip:gw@203.0.113.1:5060>")],
            "",
        ),
    );
    let sent = w.advance(Duration::from_millis(600));
    assert_eq!(responses(&sent, PHONE)[0].status, 200);
    let mut byes = Vec::new();
    for _ in 0..80 {
        let sent = w.advance(Duration::from_secs(1));
        byes.extend(requests(&sent, TRUNK1));
    }
    assert!(byes.iter().any(|r| r.method == Method::Bye));
}

#[test]
fn events_of_others_are_returned() {
    let mut w = World::new();
    let ev = Event::Timeout {
        key: TransactionKey {
            branch: "z9hG4bKx".into(),
            sent_by: String::new(),
            method: Method::Options,
        },
    };
    assert!(!w.b2b.owns(&ev));
    assert!(w.b2b.on_event(&mut w.ep, w.now, ev).is_some());
}

#[test]
fn register_client_answers_challenge_and_refreshes() {
    use super::regclient::{RegClient, RegClientConfig, RegState};
    let mut ep = Endpoint::new(EndpointConfig::default());
    let now = crate::transaction::test_epoch();
    let mut rc = RegClient::new(
        RegClientConfig {
            name: "carrier".into(),
            registrar: Uri::parse("sip:203.0.113.1").unwrap(),
            aor: Uri::parse("sip:trunkuser@203.0.113.1").unwrap(),
            dest: Destination {
                transport: Transport::Udp,
                remote: TRUNK1.parse().unwrap(),
                conn: None,
            },
            local: NODE.parse().unwrap(),
            expires: 600,
            credentials: Some(DigestCredentials {
                username: "trunkuser".into(),
                password: "trunkpass".into(),
            }),
            retry: Duration::from_secs(30),
        },
        "reg1".into(),
        "rt".into(),
        now,
    );
    let step = |ep: &mut Endpoint, rc: &mut RegClient, now: Instant, input: Option<Vec<u8>>| {
        if let Some(b) = input {
            ep.handle_input(
                now,
                Input::Received {
                    transport: Transport::Udp,
                    local: NODE.parse().unwrap(),
                    remote: TRUNK1.parse().unwrap(),
                    conn: None,
                    bytes: b,
                },
            );
        } else {
            rc.handle_timeout(ep, now);
        }
        let mut out = Vec::new();
        while let Some(o) = ep.poll_output() {
            match o {
                Output::Transmit { bytes, .. } => {
                    if let Ok(SipMessage::Request(r)) = parse_message(&bytes) {
                        out.push(r)
                    }
                }
                Output::Event(e) => assert!(rc.on_event(ep, now, e).is_none()),
            }
        }
        out
    };
    let reg = step(&mut ep, &mut rc, now, None).pop().unwrap();
    assert_eq!(reg.method, Method::Register);
    let chall = answer(
        &reg,
        401,
        "Unauthorized",
        &[("WWW-Authenticate", "Digest realm=\"carrier\", nonce=\"n1\"")],
        "",
    );
    let reg2 = step(&mut ep, &mut rc, now, Some(chall)).pop().unwrap();
    let cred = crate::auth::Credentials::parse(reg2.headers.get("Authorization").unwrap()).unwrap();
    let ha1 = crate::auth::ha1(
        crate::auth::Algorithm::Md5,
        "trunkuser",
        "carrier",
        "trunkpass",
    );
    cred.verify_ha1(&ha1, "REGISTER").unwrap();
    let ok = answer(&reg2, 200, "OK", &[("Expires", "100")], "");
    assert!(step(&mut ep, &mut rc, now, Some(ok)).is_empty());
    assert!(matches!(rc.state(), RegState::Registered(_)));
    assert_eq!(rc.poll_timeout(), Some(now + Duration::from_secs(80)));
}

/// Establishes a call through a trunk with credentials; returns the far INVITE and the
/// caller's To tag.
fn established(w: &mut World) -> (Request, String) {
    let sent = w.start(vec![target(TRUNK1, true)]);
    let inv = requests(&sent, TRUNK1).pop().unwrap();
    let sent = w.recv(
        TRUNK1,
        &answer(
            &inv,
            200,
            "OK",
            &[("Contact", "<sip:gw@203.0.113.1:5060>")],
            "v=1\n",
        ),
    );
    let a_tag = responses(&sent, PHONE)[0]
        .headers
        .to()
        .unwrap()
        .tag()
        .unwrap()
        .to_owned();
    (inv, a_tag)
}

fn from_phone(method: &str, seq: u32, a_tag: &str, body: &str) -> String {
    format!(
        "{method} sip:b2b1@192.0.2.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKp{seq};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:1001@p2psip.local>;tag=ft\r\nTo: <sip:004940123456@p2psip.local>;tag={a_tag}\r\n\
         Call-ID: callA\r\nCSeq: {seq} {method}\r\nContact: <sip:1001@198.51.100.1:5060>\r\n{}Content-Length: {}\r\n\r\n{body}",
        if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        },
        body.len()
    )
}

#[test]
fn caller_reinvite_and_bye_reach_the_trunk_answering_its_challenges() {
    let mut w = World::new();
    let (inv, a_tag) = established(&mut w);
    let sent = w.recv(PHONE, from_phone("INVITE", 6, &a_tag, "v=4\n").as_bytes());
    let re = requests(&sent, TRUNK1)
        .into_iter()
        .find(|r| r.method == Method::Invite)
        .unwrap();
    assert_eq!(re.headers.call_id(), inv.headers.call_id());
    assert_eq!(re.uri.to_string(), "sip:gw@203.0.113.1:5060");
    assert_eq!(re.headers.to().unwrap().tag(), Some("farTag"));
    assert_eq!(re.body, b"v=4\n");
    // The trunk challenges the re-INVITE: answered with the trunk credentials.
    let sent = w.recv(
        TRUNK1,
        &answer(
            &re,
            407,
            "Proxy Authentication Required",
            &[(
                "Proxy-Authenticate",
                "Digest realm=\"carrier\", nonce=\"r1\"",
            )],
            "",
        ),
    );
    let re2 = requests(&sent, TRUNK1)
        .into_iter()
        .find(|r| r.method == Method::Invite)
        .unwrap();
    assert!(re2.headers.contains("Proxy-Authorization"));
    assert!(responses(&sent, PHONE).is_empty());
    let sent = w.recv(TRUNK1, &answer(&re2, 200, "OK", &[], "v=5\n"));
    let ok = responses(&sent, PHONE).pop().unwrap();
    assert_eq!((ok.status, ok.body.as_slice()), (200, &b"v=5\n"[..]));
    assert_eq!(ok.headers.cseq().unwrap().seq, 6);
    // The phone's ACK goes on to the trunk with the trunk-leg CSeq of the re-INVITE.
    let sent = w.recv(PHONE, from_phone("ACK", 6, &a_tag, "").as_bytes());
    let ack = requests(&sent, TRUNK1).pop().unwrap();
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(
        ack.headers.cseq().unwrap().seq,
        re2.headers.cseq().unwrap().seq
    );
    // The phone hangs up; the trunk wants credentials for the BYE too.
    let sent = w.recv(PHONE, from_phone("BYE", 7, &a_tag, "").as_bytes());
    assert_eq!(responses(&sent, PHONE)[0].status, 200);
    let bye = requests(&sent, TRUNK1).pop().unwrap();
    assert_eq!(bye.method, Method::Bye);
    let sent = w.recv(
        TRUNK1,
        &answer(
            &bye,
            401,
            "Unauthorized",
            &[("WWW-Authenticate", "Digest realm=\"carrier\", nonce=\"b1\"")],
            "",
        ),
    );
    let bye2 = requests(&sent, TRUNK1).pop().unwrap();
    assert_eq!(bye2.method, Method::Bye);
    let cred = crate::auth::Credentials::parse(bye2.headers.get("Authorization").unwrap()).unwrap();
    assert_eq!(cred.username, "trunkuser");
    assert_eq!(w.b2b.poll_record().unwrap().result, "answered");
    // Everything is gone after the linger time.
    w.advance(Duration::from_secs(40));
    assert_eq!(w.b2b.call_count(), 0);
}
