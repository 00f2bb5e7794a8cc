//! Candidates and connectivity checks for Attach over the overlay UDP port (RFC 6940 6.5.1,
//! in the spirit of RFC 8445; see "Deviations" below).
//!
//! * Gathering: a host candidate (the advertised overlay address) and a server-reflexive one,
//!   learned from STUN Binding requests to known peers — every p2psip node answers STUN
//!   Binding on its overlay UDP port ([`super::dtls::run_mux`]). Both are DTLS-UDP-SR; a
//!   TLS-TCP-FH-NO-ICE host candidate follows as a fallback for peers that only run TLS, and a
//!   relayed one (TURN allocation) last.
//! * Checks: the Attach requester sends STUN Binding requests to every DTLS-UDP-SR candidate
//!   of the answer, paced and retransmitted; the answerer, once it has answered, sends Binding
//!   requests towards the requester's candidates, which opens its own NAT's pinhole (the
//!   "both sides check" part of ICE that lets two NATed peers meet). The first candidate that
//!   answers, highest priority first, is nominated and the DTLS handshake runs on it.
//! * Keepalives: idle DTLS links send a STUN Binding indication every 15 s
//!   ([`binding_indication`]) so NAT bindings stay open.
//!
//! [`IceAgent`] is the reusable part (for AppAttach too): give it remote candidates, it
//! returns the nominated address.
//!
//! Deviations from RFC 8445 (listed in docs/DEPLOY.md, "Deviations and limits"): checks carry no
//! USERNAME/MESSAGE-INTEGRITY (the DTLS handshake with Node-ID certificates authenticates the
//! peer right after nomination), there is no pair-priority ordering beyond "highest remote
//! priority that answered", no ICE-CONTROLLING tie-breaker (the Attach requester always
//! controls). Relayed candidates come from [`super::turn`] when `overlay.turn_server` is set.

use super::turn::UdpOut;
use reload::node::msg::Candidate;
use reload::wire::{CandType, OverlayLinkType};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];

/// RFC 8445 5.1.2.1 priority for component 1 with local preference 65535.
pub fn priority(type_pref: u32) -> u32 {
    (type_pref << 24) | (65535 << 8) | 255
}

/// A STUN Binding request with a random transaction id (no attributes).
pub fn binding_request() -> Vec<u8> {
    let mut m = vec![0x00, 0x01, 0x00, 0x00];
    m.extend_from_slice(&COOKIE);
    m.extend_from_slice(&rand::random::<[u8; 12]>());
    m
}

/// A STUN Binding indication (RFC 8489 keepalive; never answered).
pub fn binding_indication() -> Vec<u8> {
    let mut m = vec![0x00, 0x11, 0x00, 0x00];
    m.extend_from_slice(&COOKIE);
    m.extend_from_slice(&rand::random::<[u8; 12]>());
    m
}

/// The XOR-MAPPED-ADDRESS of a Binding success response, if `d` is one.
pub fn mapped_address(d: &[u8]) -> Option<SocketAddr> {
    if d.len() < 20 || d.get(0..2)? != [0x01, 0x01] || d.get(4..8)? != COOKIE {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*d.get(2)?, *d.get(3)?]));
    let body = d.get(20..20 + len)?;
    let txid = d.get(8..20)?;
    let mut i = 0;
    while i + 4 <= body.len() {
        let t = u16::from_be_bytes([body[i], body[i + 1]]);
        let l = usize::from(u16::from_be_bytes([body[i + 2], body[i + 3]]));
        let v = body.get(i + 4..i + 4 + l)?;
        if t == 0x0020 && v.len() >= 8 {
            let port = u16::from_be_bytes([v[2], v[3]]) ^ 0x2112;
            match v[1] {
                1 => {
                    let mut ip = [0u8; 4];
                    for (k, o) in ip.iter_mut().enumerate() {
                        *o = v[4 + k] ^ COOKIE[k];
                    }
                    return Some(SocketAddr::from((ip, port)));
                }
                2 if v.len() >= 20 => {
                    let key: Vec<u8> = COOKIE.iter().chain(txid).copied().collect();
                    let mut ip = [0u8; 16];
                    for (k, o) in ip.iter_mut().enumerate() {
                        *o = v[4 + k] ^ key[k];
                    }
                    return Some(SocketAddr::from((ip, port)));
                }
                _ => return None,
            }
        }
        i += 4 + l.div_ceil(4) * 4;
    }
    None
}

/// What the STUN side of the overlay UDP port has learned; shared by the mux hook and the
/// driver.
#[derive(Debug, Default)]
pub struct IceState {
    /// Our server-reflexive address as peers see it (when it differs from the host one).
    pub srflx: Option<SocketAddr>,
    /// Addresses that answered one of our Binding requests, and when.
    pub answered: HashMap<SocketAddr, Instant>,
}

/// Shared [`IceState`].
pub type SharedIce = Arc<Mutex<IceState>>;

/// The mux hook: takes Binding success responses (recording who answered and our mapped
/// address) and Binding indications (keepalives); requests fall through to the answerer.
pub fn stun_hook(state: SharedIce, host: SocketAddr) -> super::dtls::StunHook {
    Arc::new(move |from, d, via_relay| match d.get(0..2) {
        Some([0x01, 0x01]) => {
            if let Ok(mut s) = state.lock() {
                if s.answered.len() > 4096 {
                    s.answered.clear();
                }
                s.answered.insert(from, Instant::now());
                // Through our relay, the peer sees the relayed address: not reflexive.
                if let Some(m) = mapped_address(d).filter(|_| !via_relay)
                    && m != host
                    && !m.ip().is_loopback()
                    && s.srflx != Some(m)
                {
                    tracing::info!("server-reflexive address {m} (as {from} sees us)");
                    s.srflx = Some(m);
                }
            }
            true
        }
        Some([0x00, 0x11]) => true,
        _ => false,
    })
}

/// Our candidates: DTLS-UDP-SR host and server-reflexive, then a TLS-TCP-FH-NO-ICE host,
/// then a DTLS-UDP-SR relayed one (a TURN allocation), if any.
pub fn local_candidates(
    host: SocketAddr,
    srflx: Option<SocketAddr>,
    relayed: Option<SocketAddr>,
) -> Vec<Candidate> {
    let mut v = vec![Candidate {
        addr: host,
        link: OverlayLinkType::DTLS_UDP_SR,
        cand_type: CandType::HOST,
        related: None,
        priority: priority(126),
        foundation: b"1".to_vec(),
    }];
    if let Some(s) = srflx.filter(|s| *s != host) {
        v.push(Candidate {
            addr: s,
            link: OverlayLinkType::DTLS_UDP_SR,
            cand_type: CandType::SRFLX,
            related: Some(host),
            priority: priority(100),
            foundation: b"2".to_vec(),
        });
    }
    let mut tls = Candidate::tls_host(host);
    tls.priority = priority(90);
    tls.foundation = b"3".to_vec();
    v.push(tls);
    if let Some(r) = relayed {
        v.push(Candidate {
            addr: r,
            link: OverlayLinkType::DTLS_UDP_SR,
            cand_type: CandType::RELAY,
            related: Some(srflx.unwrap_or(host)),
            priority: priority(0),
            foundation: b"4".to_vec(),
        });
    }
    v
}

/// Sends Binding requests to `targets` for about 6 s (at 0, 50, 150, 350, 750 ms, then every
/// 500 ms): the answerer's half of the checks, which also opens its NAT towards the
/// requester while the requester checks us.
pub async fn punch(sock: Arc<UdpOut>, targets: Vec<SocketAddr>) {
    let mut wait = Duration::from_millis(50);
    for _ in 0..15 {
        for t in &targets {
            let _ = sock.send_to(&binding_request(), *t).await;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(500));
    }
}

/// A connectivity check run: sends Binding requests to remote candidates until one answers.
#[derive(Debug, Clone)]
pub struct IceAgent {
    sock: Arc<UdpOut>,
    state: SharedIce,
}

impl IceAgent {
    /// An agent on the overlay UDP socket.
    pub fn new(sock: Arc<UdpOut>, state: SharedIce) -> Self {
        Self { sock, state }
    }

    /// Checks the DTLS-UDP-SR candidates among `remote` (highest priority first) for up to
    /// `limit`; returns the nominated address, `None` if none answered.
    pub async fn check(&self, remote: &[Candidate], limit: Duration) -> Option<SocketAddr> {
        let mut cands: Vec<&Candidate> = remote
            .iter()
            .filter(|c| c.link == OverlayLinkType::DTLS_UDP_SR)
            .collect();
        cands.sort_by_key(|c| std::cmp::Reverse(c.priority));
        if cands.is_empty() {
            return None;
        }
        let start = Instant::now();
        let mut wait = Duration::from_millis(50);
        let mut next_send = start;
        loop {
            let now = Instant::now();
            // Nominate the highest-priority candidate that answered since we started.
            let answered: Vec<SocketAddr> = self
                .state
                .lock()
                .map(|s| {
                    cands
                        .iter()
                        .filter(|c| s.answered.get(&c.addr).is_some_and(|t| *t >= start))
                        .map(|c| c.addr)
                        .collect()
                })
                .unwrap_or_default();
            if let Some(best) = answered.first() {
                return Some(*best);
            }
            if now.duration_since(start) > limit {
                return None;
            }
            if now >= next_send {
                for c in &cands {
                    let _ = self.sock.send_to(&binding_request(), c.addr).await;
                }
                next_send = now + wait;
                wait = (wait * 2).min(Duration::from_millis(500));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Asks `peers` for our mapped address now and then (server-reflexive gathering).
pub async fn gather(sock: Arc<UdpOut>, peers: Vec<SocketAddr>) {
    let mut wait = Duration::from_millis(200);
    loop {
        for p in &peers {
            let _ = sock.send_to(&binding_request(), *p).await;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_address_round_trips_with_the_answerer() {
        let req = binding_request();
        for from in ["198.51.100.7:40000", "[2001:db8::5]:6084"] {
            let from: SocketAddr = from.parse().unwrap();
            let resp = super::super::dtls::stun_binding_response(&req, from).unwrap();
            assert_eq!(mapped_address(&resp), Some(from));
        }
        assert_eq!(mapped_address(&req), None);
        assert_eq!(mapped_address(&binding_indication()), None);
    }

    #[test]
    fn candidates_are_ordered_and_typed() {
        let h: SocketAddr = "10.0.0.2:6084".parse().unwrap();
        let s: SocketAddr = "203.0.113.9:6084".parse().unwrap();
        let r: SocketAddr = "203.0.113.1:50000".parse().unwrap();
        let c = local_candidates(h, Some(s), Some(r));
        assert_eq!(c.len(), 4);
        assert_eq!(c[3].cand_type, CandType::RELAY);
        assert!(c[0].priority > c[1].priority && c[1].priority > c[2].priority);
        assert_eq!(c[1].cand_type, CandType::SRFLX);
        assert_eq!(c[1].related, Some(h));
        assert_eq!(c[2].link, OverlayLinkType::TLS_TCP_FH_NO_ICE);
        assert_eq!(local_candidates(h, Some(h), None).len(), 2);
    }
}
