//! A TURN client (RFC 8656) on the overlay UDP socket, for relayed candidates: a node behind
//! a NAT allocates a relayed address on a TURN server (`overlay.turn_server`), offers it in its
//! Attaches, lets the peers it Attaches with in (CreatePermission), and sends to peers that
//! reached it through the relay with Send indications; Data indications from the server are
//! unwrapped and handled as if the peer had sent them directly.
//!
//! Authentication: anonymous when the server allows it (the lab's coturn with `--no-auth`);
//! when it answers 401, long-term credentials (RFC 8489 9.2) set with
//! [`Relay::set_credentials`] (the overlay's, see [`super::turn_server::credentials`]).
//! Limits: no ChannelBind (Send/Data indications only), UDP relays only. Nodes that are not
//! behind a NAT run a TURN server themselves ([`super::turn_server`]). Without `overlay.turn_server`
//! the relay starts without a server and [`super::turn_service`] sets the one it finds
//! through the overlay's TURN-SERVICE usage.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;

const COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const ALLOCATE: u16 = 0x0003;
const REFRESH: u16 = 0x0004;
const CREATE_PERMISSION: u16 = 0x0008;
const SEND_INDICATION: u16 = 0x0016;
const BINDING_INDICATION: u16 = 0x0011;
const DATA_INDICATION: u16 = 0x0017;
const ATTR_XOR_PEER: u16 = 0x0012;
const ATTR_DATA: u16 = 0x0013;
const ATTR_LIFETIME: u16 = 0x000d;
const ATTR_XOR_RELAYED: u16 = 0x0016;
const ATTR_REQUESTED_TRANSPORT: u16 = 0x0019;
const ATTR_USERNAME: u16 = 0x0006;
const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
const ATTR_ERROR_CODE: u16 = 0x0009;
const ATTR_REALM: u16 = 0x0014;
const ATTR_NONCE: u16 = 0x0015;

/// The overlay UDP socket with an optional TURN relay: every send of the overlay port goes
/// through [`UdpOut::send_to`].
#[derive(Debug)]
pub struct UdpOut {
    /// The socket.
    pub sock: Arc<UdpSocket>,
    /// The relay, when `overlay.turn_server` is set.
    pub relay: Option<Arc<Relay>>,
}

impl UdpOut {
    /// Sends `d` to `to` directly.
    pub async fn send_to(&self, d: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        self.sock.send_to(d, to).await
    }

    /// Sends `d` to `to`, through our relay (a Send indication) when `via_relay`.
    pub async fn send_via(
        &self,
        d: &[u8],
        to: SocketAddr,
        via_relay: bool,
    ) -> std::io::Result<usize> {
        if via_relay
            && let Some(r) = &self.relay
            && let Some(server) = r.server()
        {
            let m = message(
                SEND_INDICATION,
                &[(ATTR_XOR_PEER, xor_addr(to)), (ATTR_DATA, d.to_vec())],
            );
            return self.sock.send_to(&m, server).await;
        }
        self.sock.send_to(d, to).await
    }
}

/// What the server answered to one of our requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// A success response.
    Granted,
    /// An error response: its code, and whether it brought a realm/nonce worth a new try.
    Refused { code: Option<u16>, new_nonce: bool },
}

/// Why a request to the TURN server did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TurnError {
    /// The server answered with an error code.
    #[error("refused with error {0}")]
    Refused(u16),
    /// The server answered with an error without a code.
    #[error("refused")]
    RefusedNoCode,
    /// No answer after every retransmission.
    #[error("no answer")]
    Timeout,
}

/// Retransmissions of one request (RFC 8489 6.2.1: Rc = 7; fewer here, the overlay retries).
const MAX_SENDS: u32 = 6;
/// First retransmission timeout; doubles up to [`MAX_RTO`].
const FIRST_RTO: Duration = Duration::from_millis(250);
/// Largest retransmission timeout.
const MAX_RTO: Duration = Duration::from_secs(2);
/// Interval of the keepalives that hold our NAT's mapping towards the TURN server open
/// (RFC 8445 11 suggests 15 s; Linux drops an idle UDP mapping after 30 s): without them
/// the next request leaves from a new port, which the server does not know.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// Allocation lifetime asked for, and when it and the permissions are refreshed.
const LIFETIME_S: u32 = 600;
const REFRESH_EVERY: Duration = Duration::from_secs(240);

/// State of our allocation on one TURN server.
#[derive(Debug)]
pub struct Relay {
    server: std::sync::OnceLock<SocketAddr>,
    relayed: Mutex<Option<SocketAddr>>,
    /// Peers' IPs we want permitted (granted, or waiting for the allocation).
    permitted: Mutex<HashMap<IpAddr, ()>>,
    /// Long-term credentials (user, password), used once the server asks for them.
    creds: Mutex<Option<(String, String)>>,
    /// The server's realm and nonce from its last 401/438 answer.
    auth: Mutex<Option<(String, String)>>,
    /// Answers to our requests, by transaction id, until the requester takes them.
    answers: Mutex<HashMap<[u8; 12], Answer>>,
    /// Woken when an answer arrives.
    answered: tokio::sync::Notify,
}

impl Relay {
    /// No allocation yet.
    pub fn new(server: SocketAddr) -> Self {
        let r = Self::pending();
        r.set_server(server);
        r
    }

    /// No server yet (it is found through the overlay, then set with [`Relay::set_server`]).
    pub fn pending() -> Self {
        Self {
            server: std::sync::OnceLock::new(),
            relayed: Mutex::new(None),
            permitted: Mutex::new(HashMap::new()),
            creds: Mutex::new(None),
            auth: Mutex::new(None),
            answers: Mutex::new(HashMap::new()),
            answered: tokio::sync::Notify::new(),
        }
    }

    /// Sets the long-term credentials (RFC 8489 9.2) sent when the server answers 401.
    pub fn set_credentials(&self, creds: (String, String)) {
        if let Ok(mut c) = self.creds.lock() {
            *c = Some(creds);
        }
    }

    /// The long-term credentials set with [`Relay::set_credentials`], if any.
    pub fn credentials(&self) -> Option<(String, String)> {
        self.creds.lock().ok().and_then(|c| c.clone())
    }

    /// A request of type `t` with `attrs`, authenticated (USERNAME, REALM, NONCE,
    /// MESSAGE-INTEGRITY) once the server has told us its realm and nonce.
    fn request(&self, t: u16, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let creds = self.creds.lock().ok().and_then(|c| c.clone());
        let auth = self.auth.lock().ok().and_then(|a| a.clone());
        match (creds, auth) {
            (Some((user, pass)), Some((realm, nonce))) => {
                authenticated(t, attrs, &user, &pass, &realm, &nonce)
            }
            _ => message(t, attrs),
        }
    }

    /// Records the realm and nonce of a 401/438 error response; true when they are new
    /// (the request is worth sending again with them).
    fn challenge(&self, code: Option<u16>, attrs: &[(u16, &[u8])]) -> bool {
        let text = |a: u16| {
            attrs
                .iter()
                .find(|(k, _)| *k == a)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        if !matches!(code, Some(401 | 438)) {
            return false;
        }
        let (Some(realm), Some(nonce)) = (text(ATTR_REALM), text(ATTR_NONCE)) else {
            return false;
        };
        let has_creds = self.creds.lock().is_ok_and(|c| c.is_some());
        let Ok(mut a) = self.auth.lock() else {
            return false;
        };
        let new = Some((realm, nonce));
        if !has_creds || *a == new {
            return false;
        }
        *a = new;
        true
    }

    /// Sends the request `make()` builds until the server answers: retransmitted with a
    /// doubling timeout, built again (new nonce) after a 401/438 that brought a new one.
    async fn transact(
        &self,
        out: &UdpOut,
        server: SocketAddr,
        make: impl Fn() -> Vec<u8>,
    ) -> Result<(), TurnError> {
        let mut rto = FIRST_RTO;
        let mut challenges = 0;
        let mut sends = 0;
        let mut m = make();
        while sends < MAX_SENDS {
            let Some(txid) = m.get(8..20).and_then(|t| <[u8; 12]>::try_from(t).ok()) else {
                return Err(TurnError::Timeout);
            };
            let deadline = tokio::time::Instant::now() + rto;
            let _ = out.sock.send_to(&m, server).await;
            sends += 1;
            let answer = loop {
                let woken = self.answered.notified();
                tokio::pin!(woken);
                woken.as_mut().enable();
                if let Some(a) = self.answers.lock().ok().and_then(|mut a| a.remove(&txid)) {
                    break Some(a);
                }
                if tokio::time::timeout_at(deadline, woken).await.is_err() {
                    break None;
                }
            };
            match answer {
                Some(Answer::Granted) => return Ok(()),
                Some(Answer::Refused {
                    new_nonce: true, ..
                }) if challenges < 2 => {
                    challenges += 1;
                    m = make();
                }
                Some(Answer::Refused { code, .. }) => {
                    return Err(code.map_or(TurnError::RefusedNoCode, TurnError::Refused));
                }
                None => {
                    // Retransmission: the same transaction (RFC 8489 6.2.1).
                    rto = (rto * 2).min(MAX_RTO);
                }
            }
        }
        Err(TurnError::Timeout)
    }

    /// The TURN server, once known.
    pub fn server(&self) -> Option<SocketAddr> {
        self.server.get().copied()
    }

    /// Sets the TURN server; false if one was already set (the first one stays).
    pub fn set_server(&self, server: SocketAddr) -> bool {
        self.server.set(server).is_ok()
    }

    /// The relayed transport address, once allocated.
    pub fn relayed(&self) -> Option<SocketAddr> {
        self.relayed.lock().ok().and_then(|r| *r)
    }

    /// Handles a datagram from the server: records allocations and answers to our
    /// requests; for a Data indication, returns the peer and the data.
    pub fn handle(&self, d: &[u8]) -> Option<(SocketAddr, Vec<u8>)> {
        let t = u16::from_be_bytes([*d.first()?, *d.get(1)?]);
        let txid = d.get(8..20)?;
        let attrs = attributes(d)?;
        if t == DATA_INDICATION {
            let peer = attrs
                .iter()
                .find(|(k, _)| *k == ATTR_XOR_PEER)
                .and_then(|(_, v)| parse_xor_addr(v, txid))?;
            let data = attrs.iter().find(|(k, _)| *k == ATTR_DATA)?.1.to_vec();
            return Some((peer, data));
        }
        let answer = match t {
            // Allocate success.
            0x0103 => {
                if let Some(a) = attrs
                    .iter()
                    .find(|(k, _)| *k == ATTR_XOR_RELAYED)
                    .and_then(|(_, v)| parse_xor_addr(v, txid))
                    && let Ok(mut r) = self.relayed.lock()
                    && *r != Some(a)
                {
                    tracing::info!(
                        "TURN: relayed address {a} on {}",
                        self.server().map_or("?".into(), |s| s.to_string())
                    );
                    *r = Some(a);
                }
                Answer::Granted
            }
            // Refresh and CreatePermission successes.
            0x0104 | 0x0108 => Answer::Granted,
            // Allocate, Refresh and CreatePermission errors.
            0x0113 | 0x0114 | 0x0118 => {
                let code = attrs
                    .iter()
                    .find(|(k, _)| *k == ATTR_ERROR_CODE)
                    .and_then(|(_, v)| {
                        Some(u16::from(*v.get(2)? & 7) * 100 + u16::from(*v.get(3)?))
                    });
                Answer::Refused {
                    code,
                    new_nonce: self.challenge(code, &attrs),
                }
            }
            _ => return None,
        };
        if let (Ok(txid), Ok(mut a)) = (<[u8; 12]>::try_from(txid), self.answers.lock()) {
            if a.len() >= 256 {
                a.clear();
            }
            a.insert(txid, answer);
        }
        self.answered.notify_waiters();
        None
    }

    /// Lets `ips` send to us through the relay (CreatePermission, retransmitted until the
    /// server answers; refreshed by [`run`]). Before the allocation exists, [`run`] sends
    /// them once it does.
    pub async fn permit(&self, out: &UdpOut, ips: Vec<IpAddr>) {
        let new: Vec<IpAddr> = match self.permitted.lock() {
            Ok(mut p) => ips
                .into_iter()
                .filter(|ip| p.insert(*ip, ()).is_none())
                .collect(),
            Err(_) => return,
        };
        if new.is_empty() {
            return;
        }
        let (Some(_), Some(server)) = (self.relayed(), self.server()) else {
            tracing::debug!("TURN: permission for {new:?} waits for the allocation");
            return;
        };
        match self.transact(out, server, || self.permission(&new)).await {
            Ok(()) => tracing::debug!("TURN: {server} permits {new:?} on our relay"),
            Err(e) => {
                tracing::warn!("TURN: permission for {new:?} on {server}: {e}");
                // Not permitted: the next Attach with these addresses tries again.
                if let Ok(mut p) = self.permitted.lock() {
                    for ip in &new {
                        p.remove(ip);
                    }
                }
            }
        }
    }

    fn permission(&self, ips: &[IpAddr]) -> Vec<u8> {
        let attrs: Vec<(u16, Vec<u8>)> = ips
            .iter()
            .map(|ip| (ATTR_XOR_PEER, xor_addr(SocketAddr::new(*ip, 0))))
            .collect();
        self.request(CREATE_PERMISSION, &attrs)
    }

    /// Sends the permissions of every IP in the permitted set (after an allocation, and
    /// to refresh them).
    async fn permit_all(&self, out: &UdpOut, server: SocketAddr) {
        let ips: Vec<IpAddr> = self
            .permitted
            .lock()
            .map(|p| p.keys().copied().collect())
            .unwrap_or_default();
        if ips.is_empty() {
            return;
        }
        if let Err(e) = self.transact(out, server, || self.permission(&ips)).await {
            tracing::warn!("TURN: permissions for {ips:?} on {server}: {e}");
        }
    }
}

/// Keeps the allocation: Allocate (retried with a growing pause), keepalives every
/// [`KEEPALIVE`] so the NAT mapping towards the server stays, Refresh and permissions every
/// 4 minutes; a Refresh the server refuses or does not answer means the allocation is gone
/// (e.g. our NAT mapping changed): a new one is made, and the new relayed address goes into
/// later Attaches. Returns at once if the relay has no server yet.
pub async fn run(out: Arc<UdpOut>, relay: Arc<Relay>) {
    let Some(server) = relay.server() else {
        return;
    };
    let transport = (ATTR_REQUESTED_TRANSPORT, vec![17, 0, 0, 0]);
    let lifetime = (ATTR_LIFETIME, LIFETIME_S.to_be_bytes().to_vec());
    let mut pause = Duration::from_millis(500);
    loop {
        if relay.relayed().is_none() {
            let r = relay
                .transact(&out, server, || {
                    relay.request(ALLOCATE, &[transport.clone(), lifetime.clone()])
                })
                .await;
            if relay.relayed().is_none() {
                match r {
                    Err(TurnError::Timeout) => {}
                    Err(e) => tracing::warn!("TURN: allocation refused by {server}: {e}"),
                    Ok(()) => tracing::warn!("TURN: {server} answered without a relayed address"),
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(30));
                continue;
            }
            pause = Duration::from_millis(500);
            relay.permit_all(&out, server).await;
        }
        let refresh_at = tokio::time::Instant::now() + REFRESH_EVERY;
        while tokio::time::Instant::now() + KEEPALIVE < refresh_at {
            tokio::time::sleep(KEEPALIVE).await;
            let _ = out
                .sock
                .send_to(&message(BINDING_INDICATION, &[]), server)
                .await;
        }
        tokio::time::sleep_until(refresh_at).await;
        match relay
            .transact(&out, server, || {
                relay.request(REFRESH, std::slice::from_ref(&lifetime))
            })
            .await
        {
            Ok(()) => relay.permit_all(&out, server).await,
            Err(e) => {
                tracing::warn!(
                    "TURN: refreshing the allocation on {server} failed ({e}); allocating again"
                );
                if let Ok(mut r) = relay.relayed.lock() {
                    *r = None;
                }
            }
        }
    }
}

/// A STUN message of `t` with a random transaction id and `attrs`.
fn message(t: u16, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in attrs {
        body.extend_from_slice(&k.to_be_bytes());
        body.extend_from_slice(&(v.len() as u16).to_be_bytes());
        body.extend_from_slice(v);
        body.resize(body.len().div_ceil(4) * 4, 0);
    }
    let mut m = t.to_be_bytes().to_vec();
    m.extend_from_slice(&(body.len() as u16).to_be_bytes());
    m.extend_from_slice(&COOKIE);
    m.extend_from_slice(&rand::random::<[u8; 12]>());
    m.extend_from_slice(&body);
    m
}

/// `message` with USERNAME, REALM, NONCE and a MESSAGE-INTEGRITY keyed with the long-term
/// key MD5(user ":" realm ":" password) (RFC 8489 9.2.2, 14.5; ASCII credentials, so no
/// OpaqueString preparation).
fn authenticated(
    t: u16,
    attrs: &[(u16, Vec<u8>)],
    user: &str,
    pass: &str,
    realm: &str,
    nonce: &str,
) -> Vec<u8> {
    use md5::Digest;
    let mut all = attrs.to_vec();
    all.push((ATTR_USERNAME, user.as_bytes().to_vec()));
    all.push((ATTR_REALM, realm.as_bytes().to_vec()));
    all.push((ATTR_NONCE, nonce.as_bytes().to_vec()));
    let mut m = message(t, &all);
    // The length covers the MESSAGE-INTEGRITY attribute (4 + 20 bytes) being added.
    let len = (m.len() - 20 + 24) as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    let key = md5::Md5::digest(format!("{user}:{realm}:{pass}").as_bytes());
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key);
    let tag = aws_lc_rs::hmac::sign(&k, &m);
    m.extend_from_slice(&ATTR_MESSAGE_INTEGRITY.to_be_bytes());
    m.extend_from_slice(&20u16.to_be_bytes());
    m.extend_from_slice(tag.as_ref());
    m
}

/// An XOR-*-ADDRESS value for IPv4 (IPv6 addresses are XORed with the cookie and a zero
/// transaction id only where the caller uses them; p2psip's lab is IPv4).
fn xor_addr(a: SocketAddr) -> Vec<u8> {
    let mut v = vec![0];
    let port = a.port() ^ 0x2112;
    match a.ip() {
        IpAddr::V4(ip) => {
            v.push(1);
            v.extend_from_slice(&port.to_be_bytes());
            for (b, c) in ip.octets().iter().zip(COOKIE) {
                v.push(b ^ c);
            }
        }
        IpAddr::V6(ip) => {
            // Without the transaction id at hand: only used for permissions and Send, whose
            // IPv6 form needs it; IPv6 relays are not supported.
            v.push(2);
            v.extend_from_slice(&port.to_be_bytes());
            v.extend_from_slice(&ip.octets());
        }
    }
    v
}

fn parse_xor_addr(v: &[u8], txid: &[u8]) -> Option<SocketAddr> {
    let port = u16::from_be_bytes([*v.get(2)?, *v.get(3)?]) ^ 0x2112;
    match v.get(1)? {
        1 => {
            let mut ip = [0u8; 4];
            for (k, o) in ip.iter_mut().enumerate() {
                *o = v.get(4 + k)? ^ COOKIE[k];
            }
            Some(SocketAddr::from((ip, port)))
        }
        2 => {
            let key: Vec<u8> = COOKIE.iter().chain(txid).copied().collect();
            let mut ip = [0u8; 16];
            for (k, o) in ip.iter_mut().enumerate() {
                *o = v.get(4 + k)? ^ key.get(k)?;
            }
            Some(SocketAddr::from((ip, port)))
        }
        _ => None,
    }
}

fn attributes(d: &[u8]) -> Option<Vec<(u16, &[u8])>> {
    let len = usize::from(u16::from_be_bytes([*d.get(2)?, *d.get(3)?]));
    let body = d.get(20..20 + len)?;
    let mut out = Vec::new();
    let mut i = 0;
    while i + 4 <= body.len() {
        let t = u16::from_be_bytes([body[i], body[i + 1]]);
        let l = usize::from(u16::from_be_bytes([body[i + 2], body[i + 3]]));
        out.push((t, body.get(i + 4..i + 4 + l)?));
        i += 4 + l.div_ceil(4) * 4;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_indication_round_trip() {
        let peer: SocketAddr = "10.77.0.21:40001".parse().unwrap();
        let m = message(
            DATA_INDICATION,
            &[
                (ATTR_XOR_PEER, xor_addr(peer)),
                (ATTR_DATA, b"hello".to_vec()),
            ],
        );
        let r = Relay::new("10.77.0.13:3478".parse().unwrap());
        assert_eq!(r.handle(&m), Some((peer, b"hello".to_vec())));
        let ok = message(
            0x0103,
            &[(
                ATTR_XOR_RELAYED,
                xor_addr("10.77.0.13:50000".parse().unwrap()),
            )],
        );
        assert_eq!(r.handle(&ok), None);
        assert_eq!(r.relayed(), Some("10.77.0.13:50000".parse().unwrap()));
        assert!(r.handle(b"junk").is_none());
    }
}
