//! RFC 4475 torture messages, written from the RFC's descriptions of each test (section
//! numbers in the test names), each checked for the outcome the RFC expects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sip::message::{Contacts, Method, Reason, SipMessage, Uri, parse_message};
use sip::response::{Unanswerable, error_response};
use sip::transaction::TransactionKey;
use sip::{Endpoint, EndpointConfig, Event, Input, Output, Transport};
use std::time::Instant;

/// Joins head lines with CRLF (a `\n` in the literal becomes CRLF), adds the empty line
/// and the body.
fn m(head: &str, body: &[u8]) -> Vec<u8> {
    let mut out = head.replace('\n', "\r\n").into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
    out
}

const SDP: &str = "v=0\r\no=torture 1 1 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\nm=audio 49217 RTP/AVP 0 12\r\na=rtpmap:31 LPC\r\n";

fn ok(bytes: &[u8]) -> SipMessage {
    parse_message(bytes).unwrap_or_else(|e| panic!("expected to parse, got {e:?}"))
}

fn req(bytes: &[u8]) -> sip::message::Request {
    match ok(bytes) {
        SipMessage::Request(r) => r,
        SipMessage::Response(r) => panic!("expected a request, got {r:?}"),
    }
}

fn resp(bytes: &[u8]) -> sip::message::Response {
    match ok(bytes) {
        SipMessage::Response(r) => r,
        SipMessage::Request(r) => panic!("expected a response, got {r:?}"),
    }
}

/// The request is rejected with `reason` and can be answered with `status`.
fn rejected(bytes: &[u8], reason: Reason, status: u16) {
    let e = parse_message(bytes).expect_err("expected a parse error");
    assert_eq!(e.reason, reason);
    let r = error_response(&e, Some("tag1"), Some("test")).expect("answerable");
    assert_eq!(r.status, status);
    assert_eq!(r.reason, reason.to_string());
    // The answer itself must be a well-formed message whenever the request carried the
    // mandatory headers.
    let _ = parse_message(&r.to_bytes());
}

/// Runs a message through an endpoint over UDP and returns what came out.
fn through_endpoint(bytes: &[u8]) -> Vec<Output> {
    #[allow(clippy::disallowed_methods)] // the test is the driver: it owns the clock
    let now = Instant::now();
    let mut ep = Endpoint::new(EndpointConfig::default());
    ep.handle_input(
        now,
        Input::Received {
            transport: Transport::Udp,
            local: "192.0.2.1:5060".parse().unwrap(),
            remote: "192.0.2.99:5060".parse().unwrap(),
            conn: None,
            bytes: bytes.to_vec(),
        },
    );
    std::iter::from_fn(|| ep.poll_output()).collect()
}

fn statuses(out: &[Output]) -> Vec<u16> {
    out.iter()
        .filter_map(|o| match o {
            Output::Transmit { bytes, .. } => {
                let text = String::from_utf8_lossy(bytes);
                text.get(8..11).and_then(|s| s.parse().ok())
            }
            Output::Event(_) => None,
        })
        .collect()
}

// ---- 3.1.1 Valid messages ------------------------------------------------------------

#[test]
fn s3_1_1_1_short_tortuous_invite() {
    let body = SDP.as_bytes();
    let head = format!(
        "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : {}
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33",
        body.len()
    );
    let r = req(&m(&head, body));
    assert_eq!(r.method, Method::Invite);
    assert_eq!(r.headers.to().unwrap().tag(), Some("1918181833n"));
    let from = r.headers.from().unwrap();
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(from.display_name().as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(r.headers.max_forwards(), Some(68));
    assert_eq!(r.headers.cseq().unwrap().seq, 9);
    let vias = r.headers.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(r.headers.get("Subject"), Some(""));
    assert_eq!(
        r.headers.get("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    let Some(Contacts::List(c)) = r.headers.contacts() else {
        panic!()
    };
    assert_eq!(c[0].param("q"), Some(Some("0.33")));
    assert_eq!(r.body, body);
    // What we print parses back to the same message.
    assert_eq!(req(&r.to_bytes()), r);
}

#[test]
fn s3_1_1_2_wide_range_of_valid_characters() {
    let method = "!interesting-Method0123456789_*+`.%indeed'~";
    let head = format!(
        "{method} sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0
Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~
To: \"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>
From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"работающий\";tag=_token~1'+`*%!-.
Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}}{{
CSeq: 139122385 {method}
Max-Forwards: 255
extensionHeader-!.%*+_`'~:\u{feff}大停電
Content-Length: 0"
    );
    let r = req(&m(&head, b""));
    assert_eq!(r.method, Method::Extension(method.to_owned()));
    let uri = r.uri.as_sip().unwrap();
    assert_eq!(uri.host, "example.com");
    assert_eq!(r.headers.from().unwrap().tag(), Some("_token~1'+`*%!-."));
    assert_eq!(
        r.headers.from().unwrap().display.as_deref(),
        Some("token1~` token2'+_ token3*%!.-")
    );
    assert!(
        r.headers
            .to()
            .unwrap()
            .display_name()
            .unwrap()
            .contains('\0')
    );
    // An endpoint answers an unknown method with 501.
    assert!(statuses(&through_endpoint(&m(&head, b""))).contains(&501));
}

#[test]
fn s3_1_1_3_valid_use_of_percent_escaping() {
    let body = SDP.as_bytes();
    let head = format!(
        "INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0
To: sip:%75se%72@example.com
From: <sip:I%20have%20spaces@example.net>;tag=938
Max-Forwards: 87
i: esc01.239409asdfakjkn23onasd0-3234
CSeq: 234234 INVITE
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw
C: application/sdp
Contact:
  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>
Content-Length: {}",
        body.len()
    );
    let r = req(&m(&head, body));
    assert_eq!(
        r.uri.as_sip().unwrap().user(),
        Some("sips%3Auser%40example.com")
    );
    assert_eq!(
        r.headers.call_id(),
        Some("esc01.239409asdfakjkn23onasd0-3234")
    );
    assert_eq!(r.headers.get("Content-Type"), Some("application/sdp"));
    assert!(r.headers.contacts().is_some());
}

#[test]
fn s3_1_1_4_escaped_nulls_in_uris() {
    let head = "REGISTER sip:example.com SIP/2.0
To: sip:null-%00-null@example.com
From: sip:null-%00-null@example.com;tag=839923423
Max-Forwards: 70
Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw
Contact: <sip:%00@host5.example.com>
Contact: <sip:%00%00@host5.example.com>
L:0";
    let r = req(&m(head, b""));
    let Some(Contacts::List(c)) = r.headers.contacts() else {
        panic!()
    };
    assert_eq!(c.len(), 2);
}

#[test]
fn s3_1_1_5_percent_that_is_not_an_escape() {
    let head = "RE%47IST%45R sip:registrar.example.com SIP/2.0
To: \"%Z%45\" <sip:resource@example.com>
From: \"%Z%45\" <sip:resource@example.com>;tag=f232jadfj23
Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf
Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234
CSeq: 29344 RE%47IST%45R
Max-Forwards: 70
Contact: <sip:alias1@host1.example.com>
C%6Fntact: <sip:alias2@host2.example.com>
Contact: <sip:alias3@host3.example.com>
l: 0";
    let r = req(&m(head, b""));
    // The method is not REGISTER and C%6Fntact is not Contact.
    assert_eq!(r.method, Method::Extension("RE%47IST%45R".into()));
    assert_eq!(r.headers.count("Contact"), 2);
    assert_eq!(r.headers.count("C%6Fntact"), 1);
    assert!(statuses(&through_endpoint(&m(head, b""))).contains(&501));
}

#[test]
fn s3_1_1_6_no_lws_between_display_name_and_laquot() {
    let head = "OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: caller<sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: lwsdisp.1234abcd@funky.example.com
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw
l: 0";
    let r = req(&m(head, b""));
    assert_eq!(r.headers.from().unwrap().display.as_deref(), Some("caller"));
}

#[test]
fn s3_1_1_7_long_values_in_header_fields() {
    let long = "long".repeat(60);
    let mut head = format!(
        "INVITE sip:user@example.com SIP/2.0
To: \"I have a user name of {x} proportion\"<sip:user@example.com:6000;unknownparam1=very{long}value;longparamname{long}=shortvalue;very{long}ParameterNameWithNoValue>
F: sip:{caller}@example.net;tag={tag}
Call-ID: longreq.one{really}longcallid
CSeq: 3882340 INVITE
Unknown-{longname}-Name: unknown-{long}-value; unknown-{long}-parameter-name = unknown-{long}-parameter-value
",
        x = "extreme".repeat(10),
        caller = "amazinglylongcallername".repeat(5),
        tag = "98".repeat(70),
        really = "really".repeat(20),
        longname = "Long".repeat(20),
    );
    head.push_str("Via: SIP/2.0/TCP sip33.example.com\n");
    for (i, name) in [
        "v", "V", "Via", "ViA", "VIa", "VIA", "via", "viA", "vIa", "vIA", "V ", "v ", "V  ", "v  ",
        "Via ", "Via  ",
    ]
    .iter()
    .enumerate()
    {
        head.push_str(&format!("{name}: SIP/2.0/TCP sip{}.example.com\n", 32 - i));
    }
    for i in (1..=16).rev() {
        head.push_str(&format!("Via: SIP/2.0/TCP sip{i}.example.com\n"));
    }
    head.push_str(&format!(
        "Via: SIP/2.0/TCP host.example.com;received=192.0.2.5;branch=very{long}branchvalue\n"
    ));
    head.push_str("Max-Forwards: 70\nContact: <sip:amazinglylongcallername@host5.example.net>\nContent-Type: application/sdp\n");
    head.push_str(&format!("l: {}", SDP.len()));
    let r = req(&m(&head, SDP.as_bytes()));
    assert_eq!(r.headers.vias().unwrap().len(), 34);
    assert_eq!(
        r.headers.to().unwrap().uri.as_sip().unwrap().port,
        Some(6000)
    );
    assert_eq!(r.headers.from().unwrap().tag().map(str::len), Some(140));
}

#[test]
fn s3_1_1_8_extra_trailing_octets_in_a_udp_datagram() {
    let first = m(
        "REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=43251j3j324
Max-Forwards: 8
I: dblreq.0ha0isndaksdj99sdfafnl3lk233412
Contact: sip:j.user@host.example.com
CSeq: 8 REGISTER
Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492
Content-Length: 0",
        b"",
    );
    let mut datagram = first.clone();
    datagram.extend_from_slice(b"\r\n");
    datagram.extend_from_slice(&m(
        "INVITE sip:joe@example.com SIP/2.0
t: sip:joe@example.com
From: sip:caller@example.net;tag=141334
Max-Forwards: 8
Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234
Content-Type: application/sdp
Content-Length: 150",
        SDP.as_bytes(),
    ));
    let r = req(&datagram);
    assert_eq!(r.method, Method::Register);
    assert!(r.body.is_empty());
}

#[test]
fn s3_1_1_9_semicolon_separated_parameters_in_uri_user_part() {
    let head = "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Call-ID: semiuri.0ha0isndaksdj
CSeq: 8 OPTIONS
Accept: application/sdp, application/pkcs7-mime,
        multipart/mixed, multipart/signed,
        message/sip, message/sipfrag
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw
l: 0";
    let r = req(&m(head, b""));
    let u = r.uri.as_sip().unwrap();
    assert_eq!(u.userinfo.as_deref(), Some("user;par=u%40example.net"));
    assert_eq!(u.host, "example.com");
    assert!(u.params.is_empty());
}

#[test]
fn s3_1_1_10_varied_and_unknown_transport_types() {
    let head = "OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: <sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID:  transports.kijh4akdnaqjkwendsasfdj
Accept: application/sdp
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw
Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf
Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj
Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en
Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee
l: 0";
    let r = req(&m(head, b""));
    let t: Vec<String> = r
        .headers
        .vias()
        .unwrap()
        .into_iter()
        .map(|v| v.transport)
        .collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
}

#[test]
fn s3_1_1_11_multipart_mime_message() {
    let mut body = b"--7a9cbec02ceef655\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\nHello\r\n--7a9cbec02ceef655\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n".to_vec();
    body.extend((0u8..=255).chain((0u8..=255).rev()));
    body.extend_from_slice(b"\r\n--7a9cbec02ceef655--\r\n");
    let head = format!(
        "MESSAGE sip:kumiko@example.org SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport
Max-Forwards: 70
Route: <sip:127.0.0.1:5080>
Identity: r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuLIK0YWVKZhKv9Mj8UeXqkMVbnVq37CD+813gvYjcBUaZngQmXc9WNZSDNGCzA+fWl9MEUHWIZo1CeJebdY/XlgKeTa0Olvq0rt70Q5jiSfbqMJmQFteeivUhkMWYUA8=
Contact: <sip:fluffy@127.0.0.1:5070>
To: <sip:kumiko@example.org>
From: <sip:fluffy@example.com>;tag=2fb0dcc9
Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..
CSeq: 1 MESSAGE
Content-Transfer-Encoding: binary
Content-Type: multipart/mixed;boundary=7a9cbec02ceef655
Date: Sat, 15 Oct 2005 04:44:56 GMT
User-Agent: SIPimp.org/0.2.5 (curses)
Content-Length: {}",
        body.len()
    );
    let r = req(&m(&head, &body));
    assert_eq!(r.body, body);
    assert_eq!(r.headers.top_via().unwrap().rport(), Some(None));
}

#[test]
fn s3_1_1_12_unusual_reason_phrase() {
    let head = format!(
        "SIP/2.0 200 = 2**3 * 5**2 но сто девяносто девять - простое
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Call-ID: unreason.1234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: {}
Content-Type: application/sdp
Contact: <sip:user@host198.example.com>",
        SDP.len()
    );
    let r = resp(&m(&head, SDP.as_bytes()));
    assert_eq!(r.status, 200);
    assert!(r.reason.ends_with("простое"));
}

#[test]
fn s3_1_1_13_empty_reason_phrase() {
    let head = "SIP/2.0 100 
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: noreason.asndj203insdf99223ndf
CSeq: 35 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>";
    let r = resp(&m(head, b""));
    assert_eq!((r.status, r.reason.as_str()), (100, ""));
}

// ---- 3.1.2 Invalid messages ----------------------------------------------------------

fn invite_with(extra_head: &str, body: &[u8]) -> Vec<u8> {
    m(
        &format!(
            "INVITE sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=134161461246
Max-Forwards: 7
Call-ID: torture.0ha0isndaksdjasdf3234nas
CSeq: 8 INVITE
{extra_head}"
        ),
        body,
    )
}

#[test]
fn s3_1_2_1_extraneous_header_field_separators() {
    let b = invite_with(
        "Via: SIP/2.0/UDP 192.0.2.15;;,;,,
Contact: \"Joe\" <sip:joe@example.org>;;;;
Content-Length: 0",
        b"",
    );
    let e = parse_message(&b).unwrap_err();
    assert_eq!(e.reason, Reason::BadHeader("Via"));
    // The Via is too broken to send a response along: dropped, and said so.
    assert_eq!(error_response(&e, None, None), Err(Unanswerable::BadVia));
    assert!(matches!(
        &through_endpoint(&b)[..],
        [Output::Event(Event::Dropped { .. })]
    ));
}

#[test]
fn s3_1_2_2_content_length_larger_than_message() {
    let b = invite_with(
        "Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523
Content-Type: application/sdp
Content-Length: 9999",
        SDP.as_bytes(),
    );
    rejected(&b, Reason::Truncated, 400);
}

#[test]
fn s3_1_2_3_negative_content_length() {
    let b = invite_with(
        "Via: SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw
Content-Type: application/sdp
Content-Length: -999",
        SDP.as_bytes(),
    );
    rejected(&b, Reason::BadHeader("Content-Length"), 400);
}

#[test]
fn s3_1_2_4_request_scalar_fields_with_overlarge_values() {
    let b = m(
        "REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3
To: <sip:user@example.com>
From: <sip:user@example.com>;tag=239232jh3
CSeq: 36893488147419103232 REGISTER
Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32
Max-Forwards: 300
Expires: 1000000000000000000000000000000000000000000000000000000000000
Contact: <sip:user@host129.example.com>
  ;expires=280297596632815
Content-Length: 0",
        b"",
    );
    rejected(&b, Reason::BadHeader("CSeq"), 400);
    let fixed = String::from_utf8(b)
        .unwrap()
        .replace("36893488147419103232", "1");
    rejected(fixed.as_bytes(), Reason::BadHeader("Max-Forwards"), 400);
}

#[test]
fn s3_1_2_5_response_scalar_fields_with_overlarge_values() {
    let b = m(
        "SIP/2.0 503 Service Unavailable
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129
To: <sip:user@example.com>
From: <sip:other@example.net>;tag=2easdjfejw
CSeq: 9292394834772304023312 OPTIONS
Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r
Retry-After: 949302838503028349304023988
Warning: 1812 overture \"In Progress\"
Content-Length: 0",
        b"",
    );
    let e = parse_message(&b).unwrap_err();
    assert_eq!(e.reason, Reason::BadHeader("CSeq"));
    // Responses are never answered: the element discards it.
    assert_eq!(
        error_response(&e, None, None),
        Err(Unanswerable::NotARequest)
    );
}

#[test]
fn s3_1_2_6_unterminated_quoted_string_in_display_name() {
    let b = m(
        &format!(
            "INVITE sip:user@example.com SIP/2.0
To: \"Mr. J. User <sip:j.user@example.com>
From: sip:caller@example.net;tag=93334
Max-Forwards: 10
Call-ID: quotbal.aksdj
Contact: <sip:caller@host59.example.net>
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234
Content-Type: application/sdp
Content-Length: {}",
            SDP.len()
        ),
        SDP.as_bytes(),
    );
    rejected(&b, Reason::BadHeader("To"), 400);
}

fn start_line_variant(start: &str) -> Vec<u8> {
    m(
        &format!(
            "{start}
To: sip:user@example.com
From: sip:caller@example.net;tag=39291
Max-Forwards: 23
Call-ID: startline.1@192.0.2.5
CSeq: 1 INVITE
Via: SIP/2.0/UDP 192.0.2.5;branch=z9hG4bKstart
Contact: <sip:caller@host5.example.net>
Content-Type: application/sdp
Content-Length: {}",
            SDP.len()
        ),
        SDP.as_bytes(),
    )
}

#[test]
fn s3_1_2_7_laquot_raquot_enclosing_request_uri() {
    rejected(
        &start_line_variant("INVITE <sip:user@example.com> SIP/2.0"),
        Reason::BadRequestUri,
        400,
    );
}

#[test]
fn s3_1_2_8_malformed_request_uri_embedded_lws() {
    rejected(
        &start_line_variant("INVITE sip:user@example.com; lr SIP/2.0"),
        Reason::BadRequestLine,
        400,
    );
}

#[test]
fn s3_1_2_9_multiple_sp_separating_request_line_elements() {
    rejected(
        &start_line_variant("INVITE  sip:user@example.com  SIP/2.0"),
        Reason::BadRequestLine,
        400,
    );
}

#[test]
fn s3_1_2_10_sp_characters_at_end_of_request_line() {
    rejected(
        &start_line_variant("INVITE sip:user@example.com SIP/2.0  "),
        Reason::BadRequestLine,
        400,
    );
}

#[test]
fn s3_1_2_11_escaped_headers_in_sip_request_uri() {
    rejected(
        &start_line_variant("INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0"),
        Reason::BadRequestUri,
        400,
    );
}

#[test]
fn s3_1_2_12_invalid_time_zone_in_date_header_field() {
    let b = invite_with(
        &format!(
            "Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw
Date: Fri, 01 Jan 2010 16:00:00 EST
Contact: <sip:caller@host5.example.net>
Content-Type: application/sdp
Content-Length: {}",
            SDP.len()
        ),
        SDP.as_bytes(),
    );
    rejected(&b, Reason::BadHeader("Date"), 400);
}

#[test]
fn s3_1_2_13_failure_to_enclose_name_addr_uri_in_angle_brackets() {
    let b = m(
        "REGISTER sip:example.com SIP/2.0
To: sip:user@example.com
From: sip:user@example.com;tag=998332
Max-Forwards: 70
Call-ID: regbadct.k345asrl3fdbv@10.0.0.1
CSeq: 1 REGISTER
Via: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw
Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E
l: 0",
        b"",
    );
    rejected(&b, Reason::BadHeader("Contact"), 400);
}

#[test]
fn s3_1_2_14_spaces_within_addr_spec() {
    let b = m(
        "OPTIONS sip:user@example.org SIP/2.0
Via: SIP/2.0/UDP host4.example.com:5060;branch=z9hG4bKkdju43234
Max-Forwards: 70
From: \"Bell, Alexander\" <sip:a.g.bell@example.com>;tag=433423
To: \"Watson, Thomas\" < sip:t.watson@example.org >
Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3
Accept: application/sdp
CSeq: 3923239 OPTIONS
l: 0",
        b"",
    );
    rejected(&b, Reason::BadHeader("To"), 400);
}

#[test]
fn s3_1_2_15_non_token_characters_in_display_name() {
    let b = m(
        "OPTIONS sip:t.watson@example.org SIP/2.0
Via:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw
Max-Forwards:      70
From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43
To:      Watson, Thomas <sip:t.watson@example.org>
Call-ID: baddn.31415@c.example.com
Accept: application/sdp
CSeq:    3923239 OPTIONS
l: 0",
        b"",
    );
    rejected(&b, Reason::BadHeader("From"), 400);
}

#[test]
fn s3_1_2_16_unknown_protocol_version() {
    let b = m(
        "OPTIONS sip:t.watson@example.org SIP/7.0
Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw
Max-Forwards:     70
From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe
To:      T. Watson <sip:t.watson@example.org>
Call-ID: badvers.31417@c.example.com
CSeq:    1 OPTIONS
l: 0",
        b"",
    );
    rejected(&b, Reason::BadVersion, 505);
}

#[test]
fn s3_1_2_17_start_line_and_cseq_method_mismatch() {
    let b = m(
        "OPTIONS sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=34525
Max-Forwards: 6
Call-ID: mismatch01.dj0234sxdfl3
CSeq: 8 INVITE
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw
l: 0",
        b"",
    );
    rejected(&b, Reason::CSeqMismatch, 400);
}

#[test]
fn s3_1_2_18_unknown_method_with_cseq_method_mismatch() {
    let b = m(
        &format!(
            "NEWMETHOD sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=34525
Max-Forwards: 6
Call-ID: mismatch02.dj0234sxdfl3
CSeq: 8 INVITE
Contact: <sip:caller@host.example.net>
Via: SIP/2.0/UDP host.example.net;branch=z9hG4bKkdjuw
Content-Type: application/sdp
l: {}",
            SDP.len()
        ),
        SDP.as_bytes(),
    );
    rejected(&b, Reason::CSeqMismatch, 400);
    assert_eq!(statuses(&through_endpoint(&b)), vec![400]);
}

#[test]
fn s3_1_2_19_overlarge_response_code() {
    let b = m(
        "SIP/2.0 4294967301 better not break the receiver
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i
CSeq: 353494 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>",
        b"",
    );
    let e = parse_message(&b).unwrap_err();
    assert_eq!(e.reason, Reason::BadStatusLine);
    assert_eq!(
        error_response(&e, None, None),
        Err(Unanswerable::NotARequest)
    );
    assert!(matches!(
        &through_endpoint(&b)[..],
        [Output::Event(Event::Dropped { .. })]
    ));
}

// ---- 3.2 Transaction layer semantics -------------------------------------------------

#[test]
fn s3_2_1_missing_transaction_identifier() {
    let b = m(
        "OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK
Accept: application/sdp
Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n
CSeq: 8 OPTIONS
l: 0",
        b"",
    );
    let r = req(&b);
    // The branch is only the magic cookie: still a usable transaction key.
    assert_eq!(TransactionKey::server(&r).unwrap().branch, "z9hG4bK");
    assert!(matches!(
        &through_endpoint(&b)[..],
        [Output::Event(Event::Request { .. })]
    ));
}

// ---- 3.3 Application layer semantics -------------------------------------------------

#[test]
fn s3_3_1_missing_required_header_fields() {
    let b = m(
        &format!(
            "INVITE sip:user@example.com SIP/2.0
CSeq: 193942 INVITE
Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf
Content-Type: application/sdp
l: {}",
            SDP.len()
        ),
        SDP.as_bytes(),
    );
    let e = parse_message(&b).unwrap_err();
    assert_eq!(e.reason, Reason::MissingHeader("From"));
    // Without a Call-ID no well-formed response can be built: dropped and reported
    // (RFC 4475 says "ideally" 400; our rule is to drop what cannot be answered).
    assert_eq!(error_response(&e, None, None), Err(Unanswerable::BadCallId));
    assert!(matches!(
        &through_endpoint(&b)[..],
        [Output::Event(Event::Dropped { .. })]
    ));
}

fn options_to(uri: &str, call_id: &str) -> Vec<u8> {
    m(
        &format!(
            "OPTIONS {uri} SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=384
Max-Forwards: 3
Call-ID: {call_id}
CSeq: 3923423 OPTIONS
Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234
Content-Length: 0"
        ),
        b"",
    )
}

#[test]
fn s3_3_2_request_uri_with_unknown_scheme() {
    let b = options_to(
        "nobodyKnowsThisScheme:totallyopaquecontent",
        "unkscm.nasdfasser0q239nwsdfasdkl34",
    );
    let r = req(&b);
    assert!(matches!(r.uri, Uri::Other { .. }));
    assert_eq!(statuses(&through_endpoint(&b)), vec![416]);
}

#[test]
fn s3_3_3_request_uri_with_known_but_atypical_scheme() {
    let b = options_to(
        "soap.beep://192.0.2.103:3002",
        "novelsc.asdfasser0q239nwsdfasdkl34",
    );
    assert_eq!(req(&b).uri.scheme(), "soap.beep");
    assert_eq!(statuses(&through_endpoint(&b)), vec![416]);
}

#[test]
fn s3_3_4_unknown_uri_schemes_in_header_fields() {
    let b = m(
        "REGISTER sip:example.com SIP/2.0
To: isbn:2983792873
From: <http://www.example.com>;tag=3234233
Call-ID: unksm2.daksdj@hyphenated-host.example.com
CSeq: 234902 REGISTER
Max-Forwards: 70
Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKkdjuw
Contact: <name:John_Smith>
l: 0",
        b"",
    );
    let r = req(&b);
    assert_eq!(r.headers.to().unwrap().uri.scheme(), "isbn");
    assert_eq!(r.headers.from().unwrap().uri.scheme(), "http");
}

#[test]
fn s3_3_5_proxy_require_and_require() {
    let b = m(
        "OPTIONS sip:user@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.net;tag=242etr
Max-Forwards: 6
Call-ID: bext01.0ha0isndaksdj
Require: nothingSupportsThis, nothingSupportsThisEither
Proxy-Require: noProxiesSupportThis, norDoAnyProxiesSupportThis
CSeq: 8 OPTIONS
Via: SIP/2.0/TLS fold-and-staple.example.com;branch=z9hG4bKkdjuw
Content-Length: 0",
        b"",
    );
    let out = through_endpoint(&b);
    assert_eq!(statuses(&out), vec![420]);
    let Output::Transmit { bytes, .. } = &out[0] else {
        panic!()
    };
    let SipMessage::Response(r) = parse_message(bytes).unwrap() else {
        panic!()
    };
    assert_eq!(
        r.headers.get("Unsupported"),
        Some("noProxiesSupportThis, norDoAnyProxiesSupportThis")
    );
}

#[test]
fn s3_3_6_unknown_content_type() {
    let body = b"<audio>\r\n <pcmu port=\"443\"/>\r\n</audio>\r\n";
    let b = invite_with(
        &format!(
            "Via: SIP/2.0/UDP somehost.example.com;branch=z9hG4bKkdjuw
Content-Type: application/unknownformat
Content-Length: {}",
            body.len()
        ),
        body,
    );
    // Parses; rejecting it with 415 is the called UA's decision, which a proxy forwards.
    assert_eq!(req(&b).body, body);
    let out = through_endpoint(&b);
    assert_eq!(statuses(&out), vec![100]);
    assert!(matches!(out[1], Output::Event(Event::Request { .. })));
}

#[test]
fn s3_3_7_unknown_authorization_scheme() {
    let b = m(
        "REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=87321hj23128
Max-Forwards: 8
Call-ID: regaut01.0ha0isndaksdj
CSeq: 9338 REGISTER
Via: SIP/2.0/TCP 192.0.2.253;branch=z9hG4bKkdjuw
Authorization: NoOneKnowsThisScheme opaque-data=here
Content-Length:0",
        b"",
    );
    assert_eq!(
        req(&b).headers.get("Authorization"),
        Some("NoOneKnowsThisScheme opaque-data=here")
    );
}

#[test]
fn s3_3_8_multiple_values_in_single_value_required_fields() {
    let b = m(
        &format!(
            "INVITE sip:user@company.com SIP/2.0
Contact: <sip:caller@host25.example.net>
Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw
Max-Forwards: 70
CSeq: 5 INVITE
Call-ID: multi01.98asdh@192.0.2.1
CSeq: 59 INVITE
Call-ID: multi01.98asdh@192.0.2.2
From: sip:caller@example.com;tag=3413415
To: sip:user@example.com
To: sip:other@example.net
From: sip:caller@example.net;tag=2923420123
Content-Type: application/sdp
l: {}
Contact: <sip:caller@host36.example.net>
Max-Forwards: 5",
            SDP.len()
        ),
        SDP.as_bytes(),
    );
    rejected(&b, Reason::MultipleHeader("From"), 400);
}

#[test]
fn s3_3_9_multiple_content_length_values() {
    let b = m(
        "OPTIONS sip:user@example.com SIP/2.0
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bK293423
To: sip:user@example.com
From: sip:other@example.net;tag=3923942
Call-ID: mcl01.fhn2323orihawfdoa3o4r52o3irsdf
CSeq: 15932 OPTIONS
Content-Length: 13
Max-Forwards: 60
Content-Length: 5
Content-Type: text/plain",
        b"There's no way to know how many octets are supposed to be here.\r\n",
    );
    rejected(&b, Reason::MultipleHeader("Content-Length"), 400);
}

#[test]
fn s3_3_10_200_ok_with_broadcast_via() {
    let b = m(
        &format!(
            "SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23
Call-ID: bcast.0384840201234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: {}
Content-Type: application/sdp
Contact: <sip:user@host28.example.com>",
            SDP.len()
        ),
        SDP.as_bytes(),
    );
    assert_eq!(resp(&b).status, 200);
    // It matches none of our transactions, so nothing is ever sent towards 255.255.255.255.
    let out = through_endpoint(&b);
    assert!(matches!(&out[..], [Output::Event(Event::Dropped { .. })]));
}

#[test]
fn s3_3_11_max_forwards_of_zero() {
    let b = m(
        "OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=3ghsd41
Call-ID: zeromf.jfasdlfnm2o2l43r5u0asdfas
CSeq: 39234321 OPTIONS
Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw2349i
Max-Forwards: 0
Content-Length: 0",
        b"",
    );
    // An OPTIONS with Max-Forwards 0 is answered by the element itself (RFC 3261 16.3).
    assert_eq!(statuses(&through_endpoint(&b)), vec![200]);
    let bye = String::from_utf8(b).unwrap().replace("OPTIONS", "BYE");
    assert_eq!(statuses(&through_endpoint(bye.as_bytes())), vec![483]);
}

fn register_with_contact(contact: &str) -> Vec<u8> {
    m(
        &format!(
            "REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw
Max-Forwards: 70
From: sip:watson@example.com;tag=DkfVgjkrtMwaerKKpe
To: sip:watson@example.com
Call-ID: cparam.70710@saturn.example.com
CSeq: 2 REGISTER
{contact}
l: 0"
        ),
        b"",
    )
}

#[test]
fn s3_3_12_register_with_a_contact_header_parameter() {
    let r = req(&register_with_contact(
        "Contact: sip:+19725552222@gw1.example.net;unknownparam",
    ));
    let Some(Contacts::List(c)) = r.headers.contacts() else {
        panic!()
    };
    // Unbracketed: the parameter belongs to the header field, not to the URI.
    assert_eq!(c[0].param("unknownparam"), Some(None));
    assert!(c[0].uri.as_sip().unwrap().params.is_empty());
}

#[test]
fn s3_3_13_register_with_a_url_parameter() {
    let r = req(&register_with_contact(
        "Contact: <sip:+19725552222@gw1.example.net;unknownparam>",
    ));
    let Some(Contacts::List(c)) = r.headers.contacts() else {
        panic!()
    };
    assert!(c[0].params.is_empty());
    assert!(c[0].uri.as_sip().unwrap().param("unknownparam").is_some());
}

#[test]
fn s3_3_14_register_with_a_url_escaped_header() {
    let r = req(&register_with_contact(
        "M: <sip:user@example.com?Route=%3Csip:sip.example.com%3E>",
    ));
    let Some(Contacts::List(c)) = r.headers.contacts() else {
        panic!()
    };
    assert_eq!(
        c[0].uri.as_sip().unwrap().headers.as_deref(),
        Some("Route=%3Csip:sip.example.com%3E")
    );
}

#[test]
fn s3_3_15_unacceptable_accept_offering() {
    let b = invite_with(
        &format!(
            "Accept: text/nobodyKnowsThis
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw
Content-Length: {}
Content-Type: application/sdp",
            SDP.len()
        ),
        SDP.as_bytes(),
    );
    // Parses; the 406 is the called UA's to give.
    assert_eq!(req(&b).headers.get("Accept"), Some("text/nobodyKnowsThis"));
}

// ---- 3.4 Backward compatibility ------------------------------------------------------

#[test]
fn s3_4_1_invite_with_rfc_2543_syntax() {
    let b = m(
        "INVITE sip:UserB@example.com SIP/2.0
Via: SIP/2.0/UDP iftgw.example.com
From: <sip:+13035551111@ift.client.example.net;user=phone>
Record-Route: <sip:UserB@example.com;maddr=ss1.example.com>
To: sip:+16505552222@ss1.example.net;user=phone
Call-ID: inv2543.1717@ift.client.example.com
CSeq: 56 INVITE
Content-Type: application/sdp",
        SDP.as_bytes(),
    );
    let r = req(&b);
    // No Content-Length on a datagram: the body runs to its end.
    assert_eq!(r.body, SDP.as_bytes());
    assert_eq!(r.headers.to().unwrap().param("user"), Some(Some("phone")));
    // No branch: the RFC 2543 transaction identity is used.
    assert!(
        TransactionKey::server(&r)
            .unwrap()
            .branch
            .starts_with("2543|")
    );
    let out = through_endpoint(&b);
    assert_eq!(statuses(&out), vec![100]);
}

#[test]
fn tel_request_uri_is_accepted() {
    let b = options_to("tel:+1-201-555-0123", "tel.1@example.com");
    assert_eq!(req(&b).uri.scheme(), "tel");
}
