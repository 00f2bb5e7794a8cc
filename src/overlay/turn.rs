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

/// State of our allocation on one TURN server.
#[derive(Debug)]
pub struct Relay {
    server: std::sync::OnceLock<SocketAddr>,
    relayed: Mutex<Option<SocketAddr>>,
    permitted: Mutex<HashMap<IpAddr, ()>>,
    /// Long-term credentials (user, password), used once the server asks for them.
    creds: Mutex<Option<(String, String)>>,
    /// The server's realm and nonce from its last 401/438 answer.
    auth: Mutex<Option<(String, String)>>,
    /// Woken when the server sent a new nonce: the last request is sent again.
    retry: tokio::sync::Notify,
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
            retry: tokio::sync::Notify::new(),
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
    fn challenge(&self, attrs: &[(u16, &[u8])]) -> bool {
        let code = attrs
            .iter()
            .find(|(k, _)| *k == ATTR_ERROR_CODE)
            .and_then(|(_, v)| Some(u16::from(*v.get(2)? & 7) * 100 + u16::from(*v.get(3)?)));
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
        self.retry.notify_one();
        true
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

    /// Handles a datagram from the server: records an allocation; for a Data indication,
    /// returns the peer and the data.
    pub fn handle(&self, d: &[u8]) -> Option<(SocketAddr, Vec<u8>)> {
        let t = u16::from_be_bytes([*d.first()?, *d.get(1)?]);
        let txid = d.get(8..20)?;
        let attrs = attributes(d)?;
        match t {
            DATA_INDICATION => {
                let peer = attrs
                    .iter()
                    .find(|(k, _)| *k == ATTR_XOR_PEER)
                    .and_then(|(_, v)| parse_xor_addr(v, txid))?;
                let data = attrs.iter().find(|(k, _)| *k == ATTR_DATA)?.1.to_vec();
                Some((peer, data))
            }
            0x0103 => {
                // Allocate success.
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
                None
            }
            0x0113 => {
                if !self.challenge(&attrs) {
                    tracing::warn!(
                        "TURN: allocation refused by {}",
                        self.server().map_or("?".into(), |s| s.to_string())
                    );
                }
                None
            }
            // Refresh or CreatePermission error: a stale nonce is answered by sending again.
            0x0114 | 0x0118 => {
                self.challenge(&attrs);
                None
            }
            _ => None,
        }
    }

    /// Lets `ips` send to us through the relay (CreatePermission; refreshed by [`run`]).
    pub async fn permit(&self, out: &UdpOut, ips: Vec<IpAddr>) {
        let new: Vec<IpAddr> = match self.permitted.lock() {
            Ok(mut p) => ips
                .into_iter()
                .filter(|ip| p.insert(*ip, ()).is_none())
                .collect(),
            Err(_) => return,
        };
        if !new.is_empty()
            && self.relayed().is_some()
            && let Some(server) = self.server()
        {
            let _ = out.sock.send_to(&self.permission(&new), server).await;
        }
    }

    fn permission(&self, ips: &[IpAddr]) -> Vec<u8> {
        let attrs: Vec<(u16, Vec<u8>)> = ips
            .iter()
            .map(|ip| (ATTR_XOR_PEER, xor_addr(SocketAddr::new(*ip, 0))))
            .collect();
        self.request(CREATE_PERMISSION, &attrs)
    }

    /// Sends `make()` to the server, and once more if it answers with a new nonce within 2 s.
    async fn send_with_retry(&self, out: &UdpOut, server: SocketAddr, make: impl Fn() -> Vec<u8>) {
        let _ = out.sock.send_to(&make(), server).await;
        if tokio::time::timeout(Duration::from_secs(2), self.retry.notified())
            .await
            .is_ok()
        {
            let _ = out.sock.send_to(&make(), server).await;
        }
    }
}

/// Keeps the allocation (Allocate, then Refresh every 4 minutes; permissions re-sent).
/// Returns at once if the relay has no server yet.
pub async fn run(out: Arc<UdpOut>, relay: Arc<Relay>) {
    let Some(server) = relay.server() else {
        return;
    };
    let transport = (ATTR_REQUESTED_TRANSPORT, vec![17, 0, 0, 0]);
    let mut wait = Duration::from_millis(200);
    while relay.relayed().is_none() {
        let _ = out
            .sock
            .send_to(
                &relay.request(ALLOCATE, std::slice::from_ref(&transport)),
                server,
            )
            .await;
        // A 401 with the realm and nonce wakes us to send the authenticated Allocate.
        if tokio::time::timeout(wait, relay.retry.notified())
            .await
            .is_err()
        {
            wait = (wait * 2).min(Duration::from_secs(10));
        }
    }
    loop {
        let ips: Vec<IpAddr> = relay
            .permitted
            .lock()
            .map(|p| p.keys().copied().collect())
            .unwrap_or_default();
        if !ips.is_empty() {
            relay
                .send_with_retry(&out, server, || relay.permission(&ips))
                .await;
        }
        tokio::time::sleep(Duration::from_secs(240)).await;
        relay
            .send_with_retry(&out, server, || {
                relay.request(REFRESH, &[(ATTR_LIFETIME, 600u32.to_be_bytes().to_vec())])
            })
            .await;
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
