//! A node on a config file alone answers SIP OPTIONS over UDP and TCP, and a malformed
//! request gets a 400 whose reason names the problem.

use crate::harness::addr_after;
use crate::harness::{NodeProc, loopback_config};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn options(transport: &str, local: SocketAddr, node: SocketAddr, call_id: &str) -> String {
    format!(
        "OPTIONS sip:{node} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch=z9hG4bK-{call_id}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:tester@example.com>;tag=t1\r\n\
         To: <sip:{node}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn read_response(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(T)).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk).expect("read response");
        assert!(n > 0, "connection closed before a response");
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[test]
fn answers_options_over_udp_and_tcp_and_400_for_malformed() {
    let mut n = NodeProc::start(&loopback_config());
    let udp = addr_after(
        &n.wait_line("SIP listening on udp", T),
        "SIP listening on udp ",
    );
    let tcp = addr_after(
        &n.wait_line("SIP listening on tcp", T),
        "SIP listening on tcp ",
    );

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(T)).unwrap();
    let me = sock.local_addr().unwrap();
    sock.send_to(options("UDP", me, udp, "udp-opt-1").as_bytes(), udp)
        .unwrap();
    let mut buf = [0u8; 4096];
    let (len, _) = sock.recv_from(&mut buf).expect("UDP response");
    let resp = String::from_utf8_lossy(&buf[..len]);
    assert!(resp.starts_with("SIP/2.0 200 OK\r\n"), "{resp}");
    assert!(resp.contains("udp-opt-1"), "Call-ID echoed: {resp}");

    let mut s = TcpStream::connect(tcp).unwrap();
    let me = s.local_addr().unwrap();
    s.write_all(options("TCP", me, tcp, "tcp-opt-1").as_bytes())
        .unwrap();
    let resp = read_response(&mut s);
    assert!(resp.starts_with("SIP/2.0 200 OK\r\n"), "{resp}");

    // A CSeq that is not a number: a 400 whose reason phrase says so.
    let bad = options("UDP", sock.local_addr().unwrap(), udp, "x")
        .replace("CSeq: 1 OPTIONS", "CSeq: one OPTIONS");
    sock.send_to(bad.as_bytes(), udp).unwrap();
    let (len, _) = sock.recv_from(&mut buf).expect("UDP 400");
    let resp = String::from_utf8_lossy(&buf[..len]);
    let status = resp.lines().next().unwrap_or_default();
    assert!(status.starts_with("SIP/2.0 400 "), "{resp}");
    assert!(
        status.to_ascii_lowercase().contains("cseq"),
        "reason names the problem: {status}"
    );

    assert_eq!(n.signal_and_wait("TERM", T), Some(0));
}
