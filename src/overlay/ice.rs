//! ICE for Attach over the overlay UDP port (RFC 6940 6.5.1 with RFC 8445 checks).
//!
//! Choice: our own agent, hardened to RFC 8445, rather than `rice-proto` 0.4 (the crate
//! DEPENDENCIES.md prefers). rice's agent owns gathering, its own TURN client and the data
//! path of relayed pairs, while here one UDP socket is shared by a demultiplexer
//! ([`super::dtls::run_mux`]: STUN, DTLS and TURN), DTLS links and our TURN client
//! ([`super::turn`]), and nominated pairs are handed to the DTLS layer as a plain address.
//! Fitting rice in means moving TURN and the relayed data path into it: more than the time
//! this step had. The STUN codec below is small and covered by tests (RFC 5769 vector).
//!
//! * Credentials: every Attach carries fresh random ufrag/password (the engine draws them,
//!   [`reload::node::Node::poll_ice_credentials`]). Checks carry USERNAME
//!   `remote-ufrag:local-ufrag`, PRIORITY, ICE-CONTROLLING/ICE-CONTROLLED with a per-session
//!   tie-breaker, MESSAGE-INTEGRITY (HMAC-SHA1 keyed with the remote password) and
//!   FINGERPRINT. Incoming checks are verified: unknown ufrag or bad MESSAGE-INTEGRITY gets a
//!   401, missing MESSAGE-INTEGRITY a 400, and neither makes a pair valid or nominated.
//!   Responses must carry MESSAGE-INTEGRITY with the remote password and come from the
//!   address checked (symmetric).
//! * Roles (RFC 6940 6.5.1.9): the Attach requester (role "passive") is controlling, the
//!   answerer ("active") controlled; conflicts are still detected and resolved with the
//!   tie-breakers and 487 (RFC 8445 7.3.1.1, 7.2.5.1).
//! * Gathering: a host candidate (the advertised overlay address), a server-reflexive one,
//!   learned from STUN Binding requests to known peers (every p2psip node answers plain STUN
//!   Binding on its overlay UDP port), a TLS-TCP-FH-NO-ICE host fallback and a relayed one
//!   (TURN allocation, [`super::turn`]) when `overlay.turn_server` is set.
//! * Checks (RFC 8445 6.1.2, 6.1.4): both sides form pairs of our host base, and of our
//!   relayed candidate when we have a TURN allocation (its checks go out as Send indications
//!   and their answers come back as Data indications), with the peer's DTLS-UDP-SR
//!   candidates, ordered by pair priority (6.1.2.3); one check per Ta (50 ms),
//!   triggered checks first (7.3.1.4), retransmitted with back-off. A check from an address
//!   that is not a candidate yields a peer-reflexive remote candidate (7.3.1.3) that is
//!   checked too.
//! * Nomination (regular, 8.1.1): the controlling side picks the best valid pair and sends
//!   a check with USE-CANDIDATE on it; its success nominates the pair and the DTLS handshake
//!   runs on it. The controlled side nominates when USE-CANDIDATE arrives on a valid pair.
//! * Keepalives and consent (RFC 8445 11, RFC 6940 6.5.1.10.3, RFC 7675): a DTLS link bound
//!   to an ICE session ([`IceState::bind_link`]) sends an authenticated consent check every
//!   5 s +- 20 % and closes 30 s after the last authenticated answer; idle links also send a
//!   STUN Binding indication every 15 s ([`binding_indication`]).
//!
//! Deviations (also in docs/DEPLOY.md, "Deviations and limits"): each retransmission of a
//! check is a new STUN transaction; links with no Attach behind them (the first link to a
//! bootstrap peer) have no session, so only Binding indications. AppAttach runs the same
//! agent on a separate application socket with its own [`IceState`] (SIP over DTLS,
//! `crate::sip_transport::dtls`). Crossing Attaches (both peers controlling in their own
//! session, both nominating) are settled in the driver: the lower Node-ID defers its DTLS
//! handshake.

use super::dtls::StunVerdict;
use super::turn::UdpOut;
use reload::node::msg::Candidate;
use reload::wire::{CandType, OverlayLinkType};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const BINDING_ERROR: u16 = 0x0111;
const BINDING_INDICATION: u16 = 0x0011;
const USERNAME: u16 = 0x0006;
const MESSAGE_INTEGRITY: u16 = 0x0008;
const ERROR_CODE: u16 = 0x0009;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;
const PRIORITY: u16 = 0x0024;
const USE_CANDIDATE: u16 = 0x0025;
const FINGERPRINT: u16 = 0x8028;
const ICE_CONTROLLED: u16 = 0x8029;
const ICE_CONTROLLING: u16 = 0x802a;
const FINGERPRINT_XOR: u32 = 0x5354_554e;

/// Ta, the pacing of checks (RFC 8445 14.2).
pub const TA: Duration = Duration::from_millis(50);
/// Consent lapses this long after the last answer to a consent check (RFC 7675 5.1).
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The time to the next consent check: 5 s +- 20 % (RFC 7675 5.1).
pub fn consent_interval() -> Duration {
    Duration::from_millis(4000 + rand::random::<u64>() % 2000)
}

/// Type preferences (RFC 8445 5.1.2.2).
const HOST_PREF: u32 = 126;
const PRFLX_PREF: u32 = 110;
const RELAY_PREF: u32 = 0;

/// RFC 8445 5.1.2.1 priority for component 1 with local preference 65535.
pub fn priority(type_pref: u32) -> u32 {
    (type_pref << 24) | (65535 << 8) | 255
}

/// RFC 8445 6.1.2.3 pair priority from our and the peer's candidate priorities.
pub fn pair_priority(controlling: bool, local: u32, remote: u32) -> u64 {
    let (g, d) = if controlling {
        (u64::from(local), u64::from(remote))
    } else {
        (u64::from(remote), u64::from(local))
    };
    (g.min(d) << 32) + 2 * g.max(d) + u64::from(g > d)
}

// ------------------------------------------------------------------------ STUN codec

/// CRC-32 (ISO-HDLC, as FINGERPRINT uses).
fn crc32(d: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for b in d {
        c ^= u32::from(*b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn hmac_sha1(key: &[u8], d: &[u8]) -> [u8; 20] {
    use aws_lc_rs::hmac;
    let k = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let mut out = [0u8; 20];
    out.copy_from_slice(hmac::sign(&k, d).as_ref());
    out
}

fn set_len(m: &mut [u8], len: usize) {
    if let Some(l) = m.get_mut(2..4) {
        l.copy_from_slice(&(len as u16).to_be_bytes());
    }
}

fn push_attr(m: &mut Vec<u8>, t: u16, v: &[u8]) {
    m.extend_from_slice(&t.to_be_bytes());
    m.extend_from_slice(&(v.len() as u16).to_be_bytes());
    m.extend_from_slice(v);
    m.resize(m.len() + (4 - v.len() % 4) % 4, 0);
}

/// Encodes a STUN message; with `key`, MESSAGE-INTEGRITY (short-term credential) and
/// FINGERPRINT follow the attributes.
pub fn build(typ: u16, txid: &[u8; 12], attrs: &[(u16, Vec<u8>)], key: Option<&[u8]>) -> Vec<u8> {
    let mut m = Vec::with_capacity(128);
    m.extend_from_slice(&typ.to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&COOKIE);
    m.extend_from_slice(txid);
    for (t, v) in attrs {
        push_attr(&mut m, *t, v);
    }
    if let Some(k) = key {
        let len = m.len() - 20 + 24;
        set_len(&mut m, len);
        let mac = hmac_sha1(k, &m);
        push_attr(&mut m, MESSAGE_INTEGRITY, &mac);
    }
    let len = m.len() - 20 + 8;
    set_len(&mut m, len);
    let crc = crc32(&m) ^ FINGERPRINT_XOR;
    push_attr(&mut m, FINGERPRINT, &crc.to_be_bytes());
    m
}

/// A parsed STUN message (RFC 8489 5, 14).
#[derive(Debug)]
pub struct Stun<'a> {
    /// Message type (method and class).
    pub typ: u16,
    /// Transaction id.
    pub txid: [u8; 12],
    /// Attributes: type, value, offset of the attribute header in `raw`.
    attrs: Vec<(u16, &'a [u8], usize)>,
    raw: &'a [u8],
}

impl<'a> Stun<'a> {
    /// Parses `d`; `None` unless it is a well-formed STUN message with the magic cookie.
    pub fn parse(d: &'a [u8]) -> Option<Self> {
        if d.len() < 20 || d.get(4..8)? != COOKIE || d.first()? & 0xc0 != 0 {
            return None;
        }
        let typ = u16::from_be_bytes([*d.first()?, *d.get(1)?]);
        let len = usize::from(u16::from_be_bytes([*d.get(2)?, *d.get(3)?]));
        if len % 4 != 0 {
            return None;
        }
        let raw = d.get(..20 + len)?;
        let txid: [u8; 12] = raw.get(8..20)?.try_into().ok()?;
        let mut attrs = Vec::new();
        let mut i = 20;
        while i < raw.len() {
            let t = u16::from_be_bytes([*raw.get(i)?, *raw.get(i + 1)?]);
            let l = usize::from(u16::from_be_bytes([*raw.get(i + 2)?, *raw.get(i + 3)?]));
            let v = raw.get(i + 4..i + 4 + l)?;
            attrs.push((t, v, i));
            i += 4 + l.div_ceil(4) * 4;
        }
        Some(Self {
            typ,
            txid,
            attrs,
            raw,
        })
    }

    /// The first attribute of type `t` before MESSAGE-INTEGRITY (later ones, but for
    /// FINGERPRINT, are ignored: RFC 8489 14.5).
    pub fn attr(&self, t: u16) -> Option<&'a [u8]> {
        for (k, v, _) in &self.attrs {
            if *k == t {
                return Some(v);
            }
            if *k == MESSAGE_INTEGRITY {
                return None;
            }
        }
        None
    }

    /// Has a MESSAGE-INTEGRITY attribute.
    pub fn has_integrity(&self) -> bool {
        self.attrs.iter().any(|(k, _, _)| *k == MESSAGE_INTEGRITY)
    }

    /// MESSAGE-INTEGRITY is present and right for the short-term key `key`.
    pub fn integrity_ok(&self, key: &[u8]) -> bool {
        let Some((_, v, off)) = self.attrs.iter().find(|(k, _, _)| *k == MESSAGE_INTEGRITY) else {
            return false;
        };
        let Some(before) = self.raw.get(..*off) else {
            return false;
        };
        let mut m = before.to_vec();
        set_len(&mut m, off + 24 - 20);
        use aws_lc_rs::hmac;
        let k = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
        hmac::verify(&k, &m, v).is_ok()
    }

    /// FINGERPRINT is the last attribute and right.
    pub fn fingerprint_ok(&self) -> bool {
        match self.attrs.last() {
            Some((FINGERPRINT, v, off)) if v.len() == 4 => {
                let Some(before) = self.raw.get(..*off) else {
                    return false;
                };
                let want = crc32(before) ^ FINGERPRINT_XOR;
                **v == want.to_be_bytes()
            }
            _ => false,
        }
    }

    /// The ERROR-CODE number (RFC 8489 14.8).
    pub fn error_code(&self) -> Option<u16> {
        let v = self.attr(ERROR_CODE)?;
        Some(u16::from(*v.get(2)? & 7) * 100 + u16::from(*v.get(3)?))
    }

    /// The XOR-MAPPED-ADDRESS.
    pub fn mapped(&self) -> Option<SocketAddr> {
        parse_xor_addr(self.attr(XOR_MAPPED_ADDRESS)?, &self.txid)
    }

    fn u64_attr(&self, t: u16) -> Option<u64> {
        Some(u64::from_be_bytes(self.attr(t)?.try_into().ok()?))
    }
}

/// XOR-MAPPED-ADDRESS value for `a` (RFC 8489 14.2).
pub fn xor_addr(a: SocketAddr, txid: &[u8; 12]) -> Vec<u8> {
    let mut v = vec![0, if a.is_ipv4() { 1 } else { 2 }];
    v.extend_from_slice(&(a.port() ^ 0x2112).to_be_bytes());
    let key: Vec<u8> = COOKIE.iter().chain(txid).copied().collect();
    let ip = match a {
        SocketAddr::V4(a) => a.ip().octets().to_vec(),
        SocketAddr::V6(a) => a.ip().octets().to_vec(),
    };
    v.extend(ip.iter().zip(key).map(|(b, k)| b ^ k));
    v
}

fn parse_xor_addr(v: &[u8], txid: &[u8; 12]) -> Option<SocketAddr> {
    let port = u16::from_be_bytes([*v.get(2)?, *v.get(3)?]) ^ 0x2112;
    let key: Vec<u8> = COOKIE.iter().chain(txid).copied().collect();
    match v.get(1)? {
        1 => {
            let ip: [u8; 4] = v.get(4..8)?.try_into().ok()?;
            let ip: Vec<u8> = ip.iter().zip(&key).map(|(b, k)| b ^ k).collect();
            let ip: [u8; 4] = ip.try_into().ok()?;
            Some(SocketAddr::from((ip, port)))
        }
        2 => {
            let ip: [u8; 16] = v.get(4..20)?.try_into().ok()?;
            let ip: Vec<u8> = ip.iter().zip(&key).map(|(b, k)| b ^ k).collect();
            let ip: [u8; 16] = ip.try_into().ok()?;
            Some(SocketAddr::from((ip, port)))
        }
        _ => None,
    }
}

fn error_value(code: u16, reason: &str) -> Vec<u8> {
    let mut v = vec![0, 0, (code / 100) as u8, (code % 100) as u8];
    v.extend_from_slice(reason.as_bytes());
    v
}

/// A STUN Binding request with a random transaction id (no attributes): server-reflexive
/// gathering, where the peer acts as a plain STUN server.
pub fn binding_request() -> Vec<u8> {
    let mut m = vec![0x00, 0x01, 0x00, 0x00];
    m.extend_from_slice(&COOKIE);
    m.extend_from_slice(&rand::random::<[u8; 12]>());
    m
}

/// A STUN Binding indication (RFC 8445 11 keepalive; never answered), with FINGERPRINT.
pub fn binding_indication() -> Vec<u8> {
    build(BINDING_INDICATION, &rand::random(), &[], None)
}

/// The XOR-MAPPED-ADDRESS of a Binding success response, if `d` is one.
#[cfg(test)]
pub fn mapped_address(d: &[u8]) -> Option<SocketAddr> {
    let m = Stun::parse(d)?;
    if m.typ != BINDING_SUCCESS {
        return None;
    }
    m.mapped()
}

// ------------------------------------------------------------------------ agent state

/// Short-term credentials of one side of an ICE session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    /// Username fragment.
    pub ufrag: Vec<u8>,
    /// Password.
    pub pwd: Vec<u8>,
}

/// One ICE session (one Attach exchange), keyed by our ufrag.
#[derive(Debug)]
pub struct Session {
    /// Our credentials.
    pub local: Creds,
    /// The peer's, once its Attach is known.
    pub remote: Option<Creds>,
    /// Our role.
    pub controlling: bool,
    /// Our tie-breaker (RFC 8445 7.1.1).
    pub tie_breaker: u64,
    created: Instant,
    /// Pairs (remote address, through our relay) whose check succeeded.
    pub valid: HashSet<(SocketAddr, bool)>,
    /// Pairs (remote address, through our relay) whose check failed for good (401 and such).
    pub failed: HashSet<(SocketAddr, bool)>,
    /// Triggered checks to send (RFC 8445 7.3.1.4).
    pub triggered: VecDeque<(SocketAddr, bool)>,
    /// Peer-reflexive remote candidates (RFC 8445 7.3.1.3) and their PRIORITY.
    /// Their PRIORITY, and whether the check came through our relay.
    pub prflx: HashMap<SocketAddr, (u32, bool)>,
    /// USE-CANDIDATE arrived on these pairs, before they were valid.
    use_candidate_seen: HashSet<(SocketAddr, bool)>,
    /// The nominated pair: the remote address, and whether it runs through our relay.
    pub nominated: Option<(SocketAddr, bool)>,
    /// Last authenticated answer to one of our checks, by remote address (consent).
    answers: HashMap<SocketAddr, Instant>,
    /// A link runs on this session (kept longer; consent checks use it).
    in_use: bool,
}

impl Session {
    /// A new session with our credentials; controlling until told otherwise.
    pub fn new(local: Creds, tie_breaker: u64) -> Self {
        Self {
            local,
            remote: None,
            controlling: true,
            tie_breaker,
            created: Instant::now(),
            valid: HashSet::new(),
            failed: HashSet::new(),
            triggered: VecDeque::new(),
            prflx: HashMap::new(),
            use_candidate_seen: HashSet::new(),
            nominated: None,
            answers: HashMap::new(),
            in_use: false,
        }
    }
}

#[derive(Debug)]
struct Txn {
    ufrag: Vec<u8>,
    to: SocketAddr,
    via_relay: bool,
    use_candidate: bool,
    controlling: bool,
    sent: Instant,
}

/// What the STUN side of the overlay UDP port has learned; shared by the mux hook and the
/// agents.
#[derive(Debug, Default)]
pub struct IceState {
    /// Our server-reflexive address as peers see it (when it differs from the host one).
    pub srflx: Option<SocketAddr>,
    /// ICE sessions by our ufrag.
    pub sessions: HashMap<Vec<u8>, Session>,
    /// When a peer first answered one of our gathering Binding requests (with or without a
    /// server-reflexive address): TURN-SERVICE decides from it that we are not behind a NAT.
    pub gathered_at: Option<Instant>,
    txns: HashMap<[u8; 12], Txn>,
}

/// Shared [`IceState`].
pub type SharedIce = Arc<Mutex<IceState>>;

impl IceState {
    /// Adds a session for credentials one of our Attaches carries (oldest dropped past 512).
    pub fn add_session(&mut self, local: Creds) {
        if self.sessions.len() >= 512
            && let Some(old) = self
                .sessions
                .iter()
                .min_by_key(|(_, s)| (s.in_use, s.created))
                .map(|(k, _)| k.clone())
        {
            self.sessions.remove(&old);
        }
        self.sessions
            .insert(local.ufrag.clone(), Session::new(local, rand::random()));
    }

    /// Sets the peer's credentials and our role in session `ufrag`.
    pub fn set_remote(&mut self, ufrag: &[u8], remote: Creds, controlling: bool) -> bool {
        match self.sessions.get_mut(ufrag) {
            Some(s) => {
                if s.remote.is_none() {
                    s.controlling = controlling;
                }
                s.remote = Some(remote);
                true
            }
            None => false,
        }
    }

    /// The session a link to `addr` runs on: the newest one that nominated `addr`, else the
    /// newest with a valid pair or a check from it. Marks it in use.
    pub fn bind_link(&mut self, addr: SocketAddr) -> Option<Vec<u8>> {
        let (u, s) = self
            .sessions
            .iter_mut()
            .filter(|(_, s)| {
                s.remote.is_some()
                    && (s.nominated.is_some_and(|(a, _)| a == addr)
                        || s.valid.iter().any(|(a, _)| *a == addr)
                        || s.prflx.contains_key(&addr))
            })
            .max_by_key(|(_, s)| (s.nominated.is_some_and(|(a, _)| a == addr), s.created))?;
        s.in_use = true;
        Some(u.clone())
    }

    /// When `addr` last answered a check of session `ufrag`.
    pub fn last_answer(&self, ufrag: &[u8], addr: SocketAddr) -> Option<Instant> {
        self.sessions.get(ufrag)?.answers.get(&addr).copied()
    }

    /// A connectivity check of session `ufrag` towards `to`, recorded as a transaction.
    pub fn check_request(
        &mut self,
        ufrag: &[u8],
        to: SocketAddr,
        via_relay: bool,
        use_candidate: bool,
        now: Instant,
    ) -> Option<Vec<u8>> {
        let s = self.sessions.get(ufrag)?;
        let r = s.remote.as_ref()?;
        let txid: [u8; 12] = rand::random();
        let mut username = r.ufrag.clone();
        username.push(b':');
        username.extend_from_slice(&s.local.ufrag);
        let mut attrs = vec![
            (USERNAME, username),
            (PRIORITY, priority(PRFLX_PREF).to_be_bytes().to_vec()),
            (
                if s.controlling {
                    ICE_CONTROLLING
                } else {
                    ICE_CONTROLLED
                },
                s.tie_breaker.to_be_bytes().to_vec(),
            ),
        ];
        let use_candidate = use_candidate && s.controlling;
        if use_candidate {
            attrs.push((USE_CANDIDATE, Vec::new()));
        }
        let m = build(BINDING_REQUEST, &txid, &attrs, Some(&r.pwd));
        tracing::debug!(
            "ICE check to {to} (through our relay: {via_relay}, nominating: {use_candidate})"
        );
        if self.txns.len() >= 4096 {
            self.txns
                .retain(|_, t| now.duration_since(t.sent) < Duration::from_secs(10));
        }
        self.txns.insert(
            txid,
            Txn {
                ufrag: ufrag.to_vec(),
                to,
                via_relay,
                use_candidate,
                controlling: s.controlling,
                sent: now,
            },
        );
        Some(m)
    }

    /// Handles a STUN datagram from `from` (`via_relay`: it came through our TURN relay):
    /// checks and their responses, gathering responses and keepalives.
    pub fn handle(
        &mut self,
        from: SocketAddr,
        d: &[u8],
        via_relay: bool,
        host: SocketAddr,
    ) -> StunVerdict {
        let Some(m) = Stun::parse(d) else {
            return StunVerdict::Pass;
        };
        match m.typ {
            BINDING_REQUEST => self.on_request(&m, from, via_relay),
            BINDING_SUCCESS | BINDING_ERROR => {
                if self.txns.contains_key(&m.txid) {
                    self.on_response(&m, from);
                } else if m.typ == BINDING_SUCCESS {
                    self.on_gathered(&m, from, via_relay, host);
                }
                StunVerdict::Taken
            }
            BINDING_INDICATION => StunVerdict::Taken,
            _ => StunVerdict::Pass,
        }
    }

    fn on_gathered(&mut self, m: &Stun<'_>, from: SocketAddr, via_relay: bool, host: SocketAddr) {
        if !via_relay && self.gathered_at.is_none() {
            self.gathered_at = Some(Instant::now());
        }
        // Through our relay, the peer sees the relayed address: not reflexive.
        if let Some(a) = m.mapped().filter(|_| !via_relay)
            && a != host
            && !a.ip().is_loopback()
            && self.srflx != Some(a)
        {
            tracing::info!("server-reflexive address {a} (as {from} sees us)");
            self.srflx = Some(a);
        }
    }

    fn on_request(&mut self, m: &Stun<'_>, from: SocketAddr, via_relay: bool) -> StunVerdict {
        let Some(user) = m.attr(USERNAME) else {
            // A plain Binding request: we answer as a STUN server (gathering).
            return StunVerdict::Pass;
        };
        if m.attrs.iter().any(|(k, _, _)| *k == FINGERPRINT) && !m.fingerprint_ok() {
            return StunVerdict::Taken;
        }
        let err = |code: u16, reason: &str, key: Option<&[u8]>| {
            StunVerdict::Reply(build(
                BINDING_ERROR,
                &m.txid,
                &[(ERROR_CODE, error_value(code, reason))],
                key,
            ))
        };
        let local = user.split(|b| *b == b':').next().unwrap_or_default();
        let Some(s) = self.sessions.get_mut(local) else {
            tracing::debug!("ICE check from {from} for an unknown ufrag: 401");
            return err(401, "Unauthenticated", None);
        };
        if !m.has_integrity() {
            return err(400, "Bad Request", None);
        }
        if !m.integrity_ok(&s.local.pwd) {
            tracing::debug!("ICE check from {from} with a bad MESSAGE-INTEGRITY: 401");
            return err(401, "Unauthenticated", None);
        }
        let key = s.local.pwd.clone();
        // Role conflict (RFC 8445 7.3.1.1).
        if s.controlling
            && let Some(t) = m.u64_attr(ICE_CONTROLLING)
        {
            if s.tie_breaker >= t {
                return err(487, "Role Conflict", Some(&key));
            }
            tracing::debug!("ICE role conflict: we switch to controlled");
            s.controlling = false;
        } else if !s.controlling
            && let Some(t) = m.u64_attr(ICE_CONTROLLED)
        {
            if s.tie_breaker >= t {
                tracing::debug!("ICE role conflict: we switch to controlling");
                s.controlling = true;
            } else {
                return err(487, "Role Conflict", Some(&key));
            }
        }
        // Peer-reflexive remote candidate (7.3.1.3) and triggered check (7.3.1.4).
        if let Some(p) = m.attr(PRIORITY).and_then(|v| <[u8; 4]>::try_from(v).ok())
            && s.prflx.len() < 64
        {
            let e = s
                .prflx
                .entry(from)
                .or_insert((u32::from_be_bytes(p), via_relay));
            e.1 |= via_relay;
        }
        let valid = s.valid.contains(&(from, via_relay));
        if !valid && !s.triggered.contains(&(from, via_relay)) && s.triggered.len() < 64 {
            s.triggered.push_back((from, via_relay));
        }
        tracing::debug!("ICE check from {from} (through our relay: {via_relay}) answered");
        // Nomination on the controlled side (7.3.1.5).
        if !s.controlling && m.attr(USE_CANDIDATE).is_some() {
            if valid {
                s.nominated.get_or_insert((from, via_relay));
            } else {
                s.use_candidate_seen.insert((from, via_relay));
            }
        }
        StunVerdict::Reply(build(
            BINDING_SUCCESS,
            &m.txid,
            &[(XOR_MAPPED_ADDRESS, xor_addr(from, &m.txid))],
            Some(&key),
        ))
    }

    fn on_response(&mut self, m: &Stun<'_>, from: SocketAddr) {
        let Some(t) = self.txns.get(&m.txid) else {
            return;
        };
        let Some(s) = self.sessions.get_mut(&t.ufrag) else {
            return;
        };
        let Some(r) = &s.remote else { return };
        let authentic = m.integrity_ok(&r.pwd);
        let code = m.error_code();
        // An error without MESSAGE-INTEGRITY (401, 400) still ends the pair: the
        // transaction id matched one of ours.
        if !authentic && (m.typ == BINDING_SUCCESS || m.has_integrity()) {
            return;
        }
        let Some(t) = self.txns.remove(&m.txid) else {
            return;
        };
        if m.typ == BINDING_ERROR {
            match code {
                Some(487) => {
                    // 7.2.5.1: switch to the role opposite the one the check claimed.
                    s.controlling = !t.controlling;
                    tracing::debug!(controlling = s.controlling, "ICE 487: role switched");
                    if !s.triggered.contains(&(t.to, t.via_relay)) {
                        s.triggered.push_back((t.to, t.via_relay));
                    }
                }
                _ => {
                    tracing::debug!(?code, "ICE check to {} failed", t.to);
                    s.failed.insert((t.to, t.via_relay));
                }
            }
            return;
        }
        // 7.2.5.2.1: the response must come from where the check went.
        if from != t.to {
            tracing::debug!(
                "ICE answer from {from} to a check sent to {}: ignored",
                t.to
            );
            return;
        }
        tracing::debug!(
            "ICE check to {from} succeeded (through our relay: {})",
            t.via_relay
        );
        s.valid.insert((from, t.via_relay));
        s.answers.insert(from, Instant::now());
        // Controlling: our USE-CANDIDATE check succeeded. Controlled: USE-CANDIDATE came
        // before this pair was valid (RFC 8445 7.3.1.5).
        if (t.use_candidate && s.controlling)
            || (!s.controlling && s.use_candidate_seen.contains(&(from, t.via_relay)))
        {
            s.nominated.get_or_insert((from, t.via_relay));
        }
    }
}

/// The mux hook: checks (answered here, verified), responses to our checks and to gathering
/// requests, keepalives; plain Binding requests fall through to the STUN answerer.
pub fn stun_hook(state: SharedIce, host: SocketAddr) -> super::dtls::StunHook {
    Arc::new(move |from, d, via_relay| match state.lock() {
        Ok(mut s) => s.handle(from, d, via_relay, host),
        Err(_) => StunVerdict::Pass,
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
            priority: priority(RELAY_PREF),
            foundation: b"4".to_vec(),
        });
    }
    v
}

/// A candidate pair: the remote address, and whether our side is the relayed candidate (the
/// check and the link go through our TURN relay) rather than the host base.
pub type Pair = (SocketAddr, bool);

/// The check list of a session (RFC 8445 6.1.2): our host base, and our relayed candidate
/// when we have one (`relayed`), each paired with the peer's DTLS-UDP-SR candidates and
/// peer-reflexive ones, highest pair priority first. A server-reflexive local candidate is
/// its host base (6.1.2.4), so it forms no pairs of its own. Our relayed candidate is not
/// paired with the peer's host candidates, nor with peer-reflexive ones that reached us on
/// the host base: those are often private addresses the TURN server has no route to, and
/// coturn closes the whole allocation when a relayed datagram fails so (seen with Debian's
/// coturn 4.6.1, "udp send: Network is unreachable"). A peer that only its host candidate
/// reaches is reached from our host base.
pub fn check_list(
    controlling: bool,
    remote: &[Candidate],
    prflx: &HashMap<SocketAddr, (u32, bool)>,
    relayed: bool,
) -> Vec<(Pair, u64)> {
    // (address, priority, worth a check from our relay)
    let mut remotes: Vec<(SocketAddr, u32, bool)> = remote
        .iter()
        .filter(|c| c.link == OverlayLinkType::DTLS_UDP_SR)
        .map(|c| (c.addr, c.priority, c.cand_type != CandType::HOST))
        .collect();
    for (a, (p, via_relay)) in prflx {
        match remotes.iter_mut().find(|(x, _, _)| x == a) {
            Some(r) => r.2 |= *via_relay,
            None => remotes.push((*a, *p, *via_relay)),
        }
    }
    let host = priority(HOST_PREF);
    let mut v: Vec<(Pair, u64)> = remotes
        .iter()
        .map(|(a, p, _)| ((*a, false), pair_priority(controlling, host, *p)))
        .collect();
    if relayed {
        let relay = priority(RELAY_PREF);
        v.extend(
            remotes
                .iter()
                .filter(|r| r.2)
                .map(|(a, p, _)| ((*a, true), pair_priority(controlling, relay, *p))),
        );
    }
    v.sort_by_key(|(a, p)| (std::cmp::Reverse(*p), *a));
    v
}

/// Runs the checks of sessions on the overlay UDP socket.
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

    /// Checks session `ufrag` against the peer's candidates `remote` for up to `limit`
    /// (one check per [`TA`]), from our host base and, when we have a TURN allocation, from
    /// our relayed candidate; the controlling side nominates the best valid pair. Returns
    /// the nominated pair, `None` if there is none by then.
    pub async fn run(
        &self,
        ufrag: Vec<u8>,
        remote: Vec<Candidate>,
        limit: Duration,
    ) -> Option<Pair> {
        let start = Instant::now();
        // Next transmission and retransmission timeout of each pair.
        let mut due: HashMap<Pair, (Instant, Duration)> = HashMap::new();
        let mut nominate_due = start;
        let mut first_valid: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let relayed = self
                .sock
                .relay
                .as_ref()
                .is_some_and(|r| r.relayed().is_some());
            let send = {
                let mut st = self.state.lock().ok()?;
                let s = st.sessions.get_mut(&ufrag)?;
                if let Some(n) = s.nominated {
                    return Some(n);
                }
                if now.duration_since(start) > limit {
                    return None;
                }
                let list = check_list(s.controlling, &remote, &s.prflx, relayed);
                let best_valid = list
                    .iter()
                    .find(|(p, _)| s.valid.contains(p))
                    .map(|(p, _)| *p);
                if best_valid.is_some() && first_valid.is_none() {
                    first_valid = Some(now);
                }
                // Nominate once the best pair is valid, or 200 ms after the first valid one
                // (higher-priority pairs had their chance).
                let nominate = best_valid.filter(|p| {
                    s.controlling
                        && now >= nominate_due
                        && (list.first().map(|(x, _)| x) == Some(p)
                            || first_valid.is_some_and(|f| now.duration_since(f) >= 4 * TA))
                });
                let mut pick: Option<(Pair, bool)> = None;
                if let Some(p) = nominate {
                    nominate_due = now + 4 * TA;
                    pick = Some((p, true));
                } else if let Some(p) = s.triggered.pop_front() {
                    pick = Some((p, false));
                } else if let Some((p, _)) = list.iter().find(|(p, _)| {
                    !s.valid.contains(p)
                        && !s.failed.contains(p)
                        && due.get(p).is_none_or(|(t, _)| *t <= now)
                }) {
                    pick = Some((*p, false));
                }
                match pick {
                    Some((p, use_candidate)) => {
                        if !use_candidate {
                            let rto = due.get(&p).map_or(Duration::from_millis(100), |(_, r)| {
                                (*r * 2).min(Duration::from_millis(1600))
                            });
                            due.insert(p, (now + rto, rto));
                        }
                        st.check_request(&ufrag, p.0, p.1, use_candidate, now)
                            .map(|m| (m, p))
                    }
                    None => None,
                }
            };
            if let Some((m, (to, via_relay))) = send {
                let _ = self.sock.send_via(&m, to, via_relay).await;
            }
            tokio::time::sleep(TA).await;
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
            let txid = [9u8; 12];
            let v = xor_addr(from, &txid);
            assert_eq!(parse_xor_addr(&v, &txid), Some(from));
        }
        assert_eq!(mapped_address(&req), None);
        assert_eq!(mapped_address(&binding_indication()), None);
        assert!(Stun::parse(&binding_indication()).unwrap().fingerprint_ok());
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

    /// RFC 5769 2.1: the sample request verifies with its password, and not with another.
    #[test]
    fn rfc5769_sample_request_verifies() {
        let hex = "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e20746573742063\
                   6c69656e74002400046e0001ff80290008932ff9b151263b360006000965767\
                   46a3a6836765920202000080014 9aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2\
                   80280004e57a3bcf";
        let d = hex::decode(hex.replace([' ', '\\'], "")).unwrap();
        let m = Stun::parse(&d).unwrap();
        assert_eq!(m.typ, BINDING_REQUEST);
        assert!(m.fingerprint_ok());
        assert!(m.integrity_ok(b"VOkJxbRl1RmTxUk/WvJxBt"));
        assert!(!m.integrity_ok(b"VOkJxbRl1RmTxUk/WvJxBT"));
        assert_eq!(m.attr(USERNAME), Some(&b"evtj:h6vY"[..]));
        assert_eq!(m.u64_attr(ICE_CONTROLLED), Some(0x932f_f9b1_5126_3b36));
        // Our encoder gives the same MESSAGE-INTEGRITY and FINGERPRINT for the same content.
        let txid: [u8; 12] = d[8..20].try_into().unwrap();
        let again = build(
            BINDING_REQUEST,
            &txid,
            &[
                (0x8022, b"STUN test client".to_vec()),
                (PRIORITY, vec![0x6e, 0, 1, 0xff]),
                (ICE_CONTROLLED, d[52..60].to_vec()),
                (USERNAME, b"evtj:h6vY".to_vec()),
            ],
            Some(b"VOkJxbRl1RmTxUk/WvJxBt"),
        );
        // The sample pads USERNAME with spaces, we with zeros: compare the verdicts.
        let m2 = Stun::parse(&again).unwrap();
        assert!(m2.fingerprint_ok() && m2.integrity_ok(b"VOkJxbRl1RmTxUk/WvJxBt"));
        assert_eq!(again.len(), d.len());
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Two agents' states with one session each: A requested (controlling), B answered.
    fn pair(a_pwd_for_b: &[u8]) -> (IceState, IceState) {
        let ca = Creds {
            ufrag: b"aaaa".to_vec(),
            pwd: b"apasswordapasswordapassw".to_vec(),
        };
        let cb = Creds {
            ufrag: b"bbbb".to_vec(),
            pwd: b"bpasswordbpasswordbpassw".to_vec(),
        };
        let (mut a, mut b) = (IceState::default(), IceState::default());
        a.add_session(ca.clone());
        b.add_session(cb.clone());
        let mut cb_seen_by_a = cb.clone();
        cb_seen_by_a.pwd = a_pwd_for_b.to_vec();
        assert!(a.set_remote(b"aaaa", cb_seen_by_a, true));
        assert!(b.set_remote(b"bbbb", ca, false));
        (a, b)
    }

    fn reply(v: StunVerdict) -> Vec<u8> {
        match v {
            StunVerdict::Reply(r) => r,
            other => panic!("no reply: {other:?}"),
        }
    }

    const A: &str = "192.0.2.1:6084";
    const B: &str = "198.51.100.2:6084";

    #[test]
    fn checks_verify_and_the_controlling_side_nominates() {
        let (mut a, mut b) = pair(b"bpasswordbpasswordbpassw");
        let now = Instant::now();
        // A checks B: authenticated, B answers with MESSAGE-INTEGRITY, A's pair is valid.
        let req = a
            .check_request(b"aaaa", addr(B), false, false, now)
            .unwrap();
        let m = Stun::parse(&req).unwrap();
        assert_eq!(m.attr(USERNAME), Some(&b"bbbb:aaaa"[..]));
        assert!(m.attr(ICE_CONTROLLING).is_some() && m.fingerprint_ok());
        let resp = reply(b.handle(addr(A), &req, false, addr(B)));
        assert_eq!(Stun::parse(&resp).unwrap().typ, BINDING_SUCCESS);
        assert_eq!(mapped_address(&resp), Some(addr(A)));
        // The response from another address than the one checked does not count.
        assert_eq!(
            a.handle(addr("203.0.113.5:1"), &resp, false, addr(A)),
            StunVerdict::Taken
        );
        assert!(a.sessions[&b"aaaa"[..]].valid.is_empty());
        let req = a
            .check_request(b"aaaa", addr(B), false, false, now)
            .unwrap();
        let resp = reply(b.handle(addr(A), &req, false, addr(B)));
        a.handle(addr(B), &resp, false, addr(A));
        assert!(a.sessions[&b"aaaa"[..]].valid.contains(&(addr(B), false)));
        // B queued a triggered check towards A; it succeeds too.
        let (to, relay) = b
            .sessions
            .get_mut(&b"bbbb"[..])
            .unwrap()
            .triggered
            .pop_front()
            .unwrap();
        assert_eq!((to, relay), (addr(A), false));
        let req = b.check_request(b"bbbb", to, false, false, now).unwrap();
        assert!(Stun::parse(&req).unwrap().attr(ICE_CONTROLLED).is_some());
        let resp = reply(a.handle(addr(B), &req, false, addr(A)));
        b.handle(addr(A), &resp, false, addr(B));
        assert!(b.sessions[&b"bbbb"[..]].valid.contains(&(addr(A), false)));
        // A nominates: USE-CANDIDATE on the valid pair; both sides agree.
        let req = a.check_request(b"aaaa", addr(B), false, true, now).unwrap();
        assert!(Stun::parse(&req).unwrap().attr(USE_CANDIDATE).is_some());
        let resp = reply(b.handle(addr(A), &req, false, addr(B)));
        assert_eq!(b.sessions[&b"bbbb"[..]].nominated, Some((addr(A), false)));
        a.handle(addr(B), &resp, false, addr(A));
        assert_eq!(a.sessions[&b"aaaa"[..]].nominated, Some((addr(B), false)));
        // Links bind to the sessions; consent checks refresh the last answer.
        assert_eq!(a.bind_link(addr(B)), Some(b"aaaa".to_vec()));
        assert_eq!(b.bind_link(addr(A)), Some(b"bbbb".to_vec()));
        assert_eq!(a.bind_link(addr("203.0.113.5:1")), None);
        let before = a.last_answer(b"aaaa", addr(B)).unwrap();
        let req = a
            .check_request(b"aaaa", addr(B), false, false, now)
            .unwrap();
        let resp = reply(b.handle(addr(A), &req, false, addr(B)));
        a.handle(addr(B), &resp, false, addr(A));
        assert!(a.last_answer(b"aaaa", addr(B)).unwrap() >= before);
    }

    #[test]
    fn a_wrong_password_gets_401_and_no_nomination() {
        let (mut a, mut b) = pair(b"not-the-password-of-bbbb");
        let now = Instant::now();
        let req = a.check_request(b"aaaa", addr(B), false, true, now).unwrap();
        let resp = reply(b.handle(addr(A), &req, false, addr(B)));
        let m = Stun::parse(&resp).unwrap();
        assert_eq!((m.typ, m.error_code()), (BINDING_ERROR, Some(401)));
        let s = &b.sessions[&b"bbbb"[..]];
        assert!(s.nominated.is_none() && s.triggered.is_empty() && s.valid.is_empty());
        a.handle(addr(B), &resp, false, addr(A));
        let s = &a.sessions[&b"aaaa"[..]];
        assert!(
            s.failed.contains(&(addr(B), false)) && s.valid.is_empty() && s.nominated.is_none()
        );
        // Unknown ufrag: 401; no MESSAGE-INTEGRITY: 400.
        let bogus = build(
            BINDING_REQUEST,
            &[1; 12],
            &[(USERNAME, b"zzzz:aaaa".to_vec())],
            Some(b"x"),
        );
        let m = reply(b.handle(addr(A), &bogus, false, addr(B)));
        assert_eq!(Stun::parse(&m).unwrap().error_code(), Some(401));
        let bare = build(
            BINDING_REQUEST,
            &[2; 12],
            &[(USERNAME, b"bbbb:aaaa".to_vec())],
            None,
        );
        let m = reply(b.handle(addr(A), &bare, false, addr(B)));
        assert_eq!(Stun::parse(&m).unwrap().error_code(), Some(400));
        // A forged success (right txid, wrong key) makes nothing valid.
        let req = a
            .check_request(b"aaaa", addr(B), false, false, now)
            .unwrap();
        let txid: [u8; 12] = req[8..20].try_into().unwrap();
        let forged = build(
            BINDING_SUCCESS,
            &txid,
            &[(XOR_MAPPED_ADDRESS, xor_addr(addr(A), &txid))],
            Some(b"guess"),
        );
        a.handle(addr(B), &forged, false, addr(A));
        assert!(a.sessions[&b"aaaa"[..]].valid.is_empty());
        // Plain Binding requests (no USERNAME) pass to the STUN answerer.
        assert_eq!(
            b.handle(addr(A), &binding_request(), false, addr(B)),
            StunVerdict::Pass
        );
    }

    #[test]
    fn a_role_conflict_is_resolved_by_the_tie_breakers() {
        for swap in [false, true] {
            let (mut a, mut b) = pair(b"bpasswordbpasswordbpassw");
            // Both believe they control.
            b.sessions.get_mut(&b"bbbb"[..]).unwrap().controlling = true;
            let (ta, tb) = if swap { (7, 9) } else { (9, 7) };
            a.sessions.get_mut(&b"aaaa"[..]).unwrap().tie_breaker = ta;
            b.sessions.get_mut(&b"bbbb"[..]).unwrap().tie_breaker = tb;
            let req = a
                .check_request(b"aaaa", addr(B), false, false, Instant::now())
                .unwrap();
            let resp = reply(b.handle(addr(A), &req, false, addr(B)));
            a.handle(addr(B), &resp, false, addr(A));
            let (ca, cb) = (
                a.sessions[&b"aaaa"[..]].controlling,
                b.sessions[&b"bbbb"[..]].controlling,
            );
            assert_ne!(ca, cb, "roles complementary after the conflict");
            // The larger tie-breaker controls (RFC 8445 7.3.1.1).
            assert_eq!(ca, ta > tb);
            if tb > ta {
                // B answered 487; A switched and queued the check again.
                assert_eq!(Stun::parse(&resp).unwrap().error_code(), Some(487));
                assert!(
                    Stun::parse(&resp)
                        .unwrap()
                        .integrity_ok(b"bpasswordbpasswordbpassw")
                );
                assert_eq!(
                    a.sessions[&b"aaaa"[..]].triggered.front(),
                    Some(&(addr(B), false))
                );
            }
        }
    }

    #[test]
    fn pairs_are_ordered_by_pair_priority() {
        // RFC 8445 6.1.2.3: symmetric for both agents.
        let (h, s) = (priority(126), priority(100));
        assert_eq!(pair_priority(true, h, s), pair_priority(false, s, h));
        assert_eq!(pair_priority(true, 10, 20), (10u64 << 32) + 2 * 20);
        assert_eq!(pair_priority(false, 10, 20), (10u64 << 32) + 2 * 20 + 1);
        let host: SocketAddr = addr("10.0.0.2:6084");
        let c = local_candidates(
            host,
            Some(addr("203.0.113.9:6084")),
            Some(addr("203.0.113.1:50000")),
        );
        let mut prflx = HashMap::new();
        prflx.insert(addr("203.0.113.9:7000"), (priority(PRFLX_PREF), false));
        let l = check_list(true, &c, &prflx, false);
        let order: Vec<Pair> = l.iter().map(|(p, _)| *p).collect();
        // Host, peer-reflexive, server-reflexive, relayed; the TLS candidate is no pair.
        let remotes = [
            host,
            addr("203.0.113.9:7000"),
            addr("203.0.113.9:6084"),
            addr("203.0.113.1:50000"),
        ];
        assert_eq!(order, remotes.map(|a| (a, false)).to_vec());
        assert!(l.windows(2).all(|w| w[0].1 > w[1].1));
        // With a TURN allocation of our own, the server-reflexive and relayed remotes are
        // paired with our relayed candidate too, after every pair of the host base (RFC 8445
        // 6.1.2.3); the host candidate and the peer-reflexive one seen on our host base are
        // not (the TURN server may have no route to them).
        let l = check_list(true, &c, &prflx, true);
        let order: Vec<Pair> = l.iter().map(|(p, _)| *p).collect();
        let mut want = remotes.map(|a| (a, false)).to_vec();
        want.extend([(remotes[2], true), (remotes[3], true)]);
        assert_eq!(order, want);
        assert!(l.windows(2).all(|w| w[0].1 > w[1].1));
        // A peer-reflexive address that reached us through the relay is paired with it.
        prflx.insert(addr("198.51.100.7:4000"), (priority(PRFLX_PREF), true));
        let l = check_list(true, &c, &prflx, true);
        assert!(
            l.iter()
                .any(|(p, _)| *p == (addr("198.51.100.7:4000"), true))
        );
        assert!(
            !l.iter()
                .any(|(p, _)| *p == (addr("203.0.113.9:7000"), true))
        );
    }
}
