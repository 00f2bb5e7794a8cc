//! DTLS over UDP overlay links (RFC 6940 6.6.4, DTLS-UDP-SR) carrying the RELOAD framing
//! layer with Simple Reliability (RFC 6940 6.6.3): every data frame is ACKed with the
//! `received` bitmask, and the sender runs the stop-and-wait algorithm of 6.6.3.1 — one
//! unacknowledged message per link, each retransmission under a new sequence number after an
//! RTO that doubles each time, at most 5 sends before the link is closed, 10 ms between an ACK
//! and the next message. The RTO follows RFC 6298 rounded to the millisecond (not to a
//! second, as 6.6.3.1 asks), starting at the static 500 ms default, never below 200 ms.
//!
//! One UDP socket per node carries every DTLS association; [`run_mux`] demultiplexes
//! datagrams by the first byte (RFC 7983): STUN (0..3) goes to the STUN answerer (Binding
//! requests get a success response with XOR-MAPPED-ADDRESS, so peers learn their
//! server-reflexive address from us) or the ICE agent, DTLS (20..63) to the link task of the
//! sending address; a ClientHello from an unknown address becomes a new incoming link.
//!
//! DTLS is `dimpl` (DTLS 1.2, ECDHE-ECDSA with AES-GCM; RFC 6940 names
//! TLS_RSA_WITH_AES_128_CBC_SHA as mandatory, which no maintained pure-Rust stack offers).
//! dimpl hands over the peer's leaf certificate only; we check it against the overlay root
//! and the Node-ID the peer claims with the same function the TLS verifiers use.
//! With `SSLKEYLOGFILE` set, the session keys go to the key log too ([`super::dtls_keylog`]),
//! so Wireshark decrypts DTLS links as it does TLS ones.

use super::link::LinkEvent;
use super::turn::UdpOut;
use crate::pki::local::Identity;
use reload::codec::Codec;
use reload::node::LinkId;
use reload::wire::NodeId;
use reload::wire::framing::FramedMessage;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Largest RELOAD message sent in one DTLS record (a record holds at most 2^14 bytes); the
/// engine fragments larger ones to this size (the driver's `link_mtu`).
pub const MAX_DTLS_MESSAGE: usize = 16_000;
/// Sends of one message before the link is given up (RFC 6940 6.6.3.1).
const MAX_SENDS: u32 = 5;
/// Wait between an ACK and the next message (RFC 6940 6.6.3.1).
const ACK_GAP: Duration = Duration::from_millis(10);
/// Messages queued behind the one in flight before new ones are dropped.
const MAX_QUEUE: usize = 4096;
/// Handshake bound.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Datagram inboxes of the link tasks, by peer address and whether the peer reaches us
/// through our TURN relay (the same address can be a direct and a relayed peer).
pub type Routes = Arc<Mutex<HashMap<(SocketAddr, bool), mpsc::Sender<Vec<u8>>>>>;

/// The queue of the link task that still runs for `addr` (`via_relay`: through our relay).
pub fn live_route(
    routes: &Routes,
    addr: SocketAddr,
    via_relay: bool,
) -> Option<mpsc::Sender<Vec<u8>>> {
    routes
        .lock()
        .ok()?
        .get(&(addr, via_relay))
        .filter(|t| !t.is_closed())
        .cloned()
}

/// A handler for STUN datagrams the mux receives (ICE checks): sender, datagram, whether it
/// came through our TURN relay; says what to do with it.
pub type StunHook = Arc<dyn Fn(SocketAddr, &[u8], bool) -> StunVerdict + Send + Sync>;

/// What the [`StunHook`] did with a STUN datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StunVerdict {
    /// Not for the hook: plain Binding requests get the STUN server answer.
    Pass,
    /// Consumed.
    Taken,
    /// Consumed; send this answer back the way the datagram came.
    Reply(Vec<u8>),
}

/// What the mux and the DTLS link tasks tell the driver.
#[derive(Debug)]
pub enum Report {
    /// A ClientHello arrived from an address without a link.
    Incoming {
        /// Sender.
        from: SocketAddr,
        /// It came through our TURN relay.
        via_relay: bool,
        /// The datagram.
        first: Vec<u8>,
    },
    /// The handshake finished and the certificate names `peer`.
    Up {
        /// Link.
        link: LinkId,
        /// Authenticated Node-ID.
        peer: NodeId,
    },
    /// The handshake failed.
    Failed {
        /// Link.
        link: LinkId,
        /// Whom we wanted.
        peer: Option<NodeId>,
        /// Where.
        addr: SocketAddr,
        /// Why, in words.
        why: String,
        /// We opened this link.
        outgoing: bool,
    },
    /// Traffic of an established link (same events as TLS links).
    Link(LinkEvent),
    /// Connectivity checks towards `peer` ended: the nominated pair, or none (then the TLS
    /// fallback candidate, if the peer offered one).
    Checked {
        /// Whom we Attached to.
        peer: NodeId,
        /// The nominated pair: the peer's address, and whether it runs through our relay.
        nominated: Option<super::ice::Pair>,
        /// The peer's TLS-TCP-FH-NO-ICE candidate.
        fallback: Option<SocketAddr>,
        /// The address the engine named.
        addr: SocketAddr,
    },
}

/// Interval of STUN keepalives on an idle DTLS link (RFC 6940 6.6.4: keepalives are used).
const KEEPALIVE: Duration = Duration::from_secs(15);

/// The RTT estimator of RFC 6298 as RFC 6940 6.6.3.1 applies it: rounded up to the
/// millisecond, initial RTO 500 ms, floor 200 ms, ceiling 60 s.
#[derive(Debug, Clone)]
pub struct SrRto {
    /// Smoothed RTT (ms), once a sample exists.
    pub srtt: Option<f64>,
    /// RTT variation (ms).
    pub rttvar: f64,
    /// Current RTO (ms).
    pub rto: f64,
}

impl Default for SrRto {
    fn default() -> Self {
        Self {
            srtt: None,
            rttvar: 0.0,
            rto: 500.0,
        }
    }
}

impl SrRto {
    /// Feeds one RTT measurement in ms (formulas 2.2 and 2.3 of RFC 6298).
    pub fn sample(&mut self, r: f64) {
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2.0;
            }
            Some(s) => {
                self.rttvar = 0.75 * self.rttvar + 0.25 * (s - r).abs();
                self.srtt = Some(0.875 * s + 0.125 * r);
            }
        }
        let s = self.srtt.unwrap_or(r);
        self.rto = (s + (4.0 * self.rttvar).max(1.0))
            .ceil()
            .clamp(200.0, 60_000.0);
    }
}

/// Received-sequence window of the receiver: which of the 32 sequence numbers before the one
/// being ACKed arrived (RFC 6940 6.6.2: bit N-M set for received sequence M, LSB = N-1).
#[derive(Debug, Default, Clone)]
pub struct ReceivedWindow {
    /// Highest sequence number seen and the bitmask of the 32 below it.
    top: Option<(u32, u32)>,
}

impl ReceivedWindow {
    /// Records `seq` and returns the `received` mask for its ACK.
    pub fn record(&mut self, seq: u32) -> u32 {
        match self.top {
            None => {
                self.top = Some((seq, 0));
                0
            }
            Some((top, mask)) => {
                let d = seq.wrapping_sub(top);
                if d == 0 {
                    mask
                } else if (d as i32) > 0 {
                    // New top: shift the old window up and mark the old top.
                    let shifted = if d >= 33 {
                        0
                    } else {
                        let m = ((u64::from(mask) << 1) | 1) << (d - 1);
                        m as u32
                    };
                    self.top = Some((seq, shifted));
                    shifted
                } else {
                    // Older than the top: mark it, and answer relative to `seq` itself.
                    let back = top.wrapping_sub(seq);
                    let mut m = mask;
                    if (1..=32).contains(&back) {
                        m |= 1 << (back - 1);
                    }
                    self.top = Some((top, m));
                    // Bits relative to seq: those of the window below seq.
                    if back >= 32 { 0 } else { m >> back }
                }
            }
        }
    }
}

/// Answers a STUN Binding request (RFC 8489 without authentication) with a success
/// response carrying XOR-MAPPED-ADDRESS; `None` for anything else.
pub fn stun_binding_response(req: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
    const COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
    if req.len() < 20 || req.get(0..2)? != [0x00, 0x01] || req.get(4..8)? != COOKIE {
        return None;
    }
    let txid = req.get(8..20)?;
    let mut attr = Vec::new();
    let xport = from.port() ^ 0x2112;
    match from {
        SocketAddr::V4(a) => {
            attr.extend_from_slice(&[0x00, 0x20, 0x00, 0x08, 0x00, 0x01]);
            attr.extend_from_slice(&xport.to_be_bytes());
            for (b, c) in a.ip().octets().iter().zip(COOKIE) {
                attr.push(b ^ c);
            }
        }
        SocketAddr::V6(a) => {
            attr.extend_from_slice(&[0x00, 0x20, 0x00, 0x14, 0x00, 0x02]);
            attr.extend_from_slice(&xport.to_be_bytes());
            let key: Vec<u8> = COOKIE.iter().chain(txid.iter()).copied().collect();
            for (b, c) in a.ip().octets().iter().zip(key) {
                attr.push(b ^ c);
            }
        }
    }
    let mut out = vec![0x01, 0x01];
    out.extend_from_slice(&(attr.len() as u16).to_be_bytes());
    out.extend_from_slice(&COOKIE);
    out.extend_from_slice(txid);
    out.extend_from_slice(&attr);
    Some(out)
}

/// True when `d` starts with a DTLS handshake record of epoch 0 holding a ClientHello.
pub fn is_client_hello(d: &[u8]) -> bool {
    d.len() > 13 && d[0] == 22 && d[3] == 0 && d[4] == 0 && d[13] == 1
}

/// Receives every datagram of the overlay UDP socket and hands it on (see the module doc).
pub async fn run_mux(
    out: Arc<UdpOut>,
    routes: Routes,
    reports: mpsc::Sender<Report>,
    stun: Option<StunHook>,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, mut from) = match out.sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP errors surface here on Linux; they are per datagram.
                tracing::debug!("overlay UDP receive: {e}");
                continue;
            }
        };
        let Some(mut d) = buf.get(..n) else { continue };
        // From the TURN server: our allocation, or a peer's datagram relayed to us.
        let relayed;
        let mut via_relay = false;
        if let Some(r) = &out.relay
            && r.server() == Some(from)
        {
            match r.handle(d) {
                Some((peer, data)) => {
                    relayed = data;
                    from = peer;
                    via_relay = true;
                    d = &relayed;
                }
                None => continue,
            }
        }
        match d.first() {
            Some(0..=3) => {
                match stun.as_ref().map(|h| h(from, d, via_relay)) {
                    Some(StunVerdict::Taken) => continue,
                    Some(StunVerdict::Reply(r)) => {
                        let _ = out.send_via(&r, from, via_relay).await;
                        continue;
                    }
                    _ => {}
                }
                if let Some(resp) = stun_binding_response(d, from) {
                    let _ = out.send_via(&resp, from, via_relay).await;
                }
            }
            Some(20..=63) => match live_route(&routes, from, via_relay) {
                Some(tx) => {
                    let _ = tx.try_send(d.to_vec());
                }
                None if is_client_hello(d) => {
                    let _ = reports.try_send(Report::Incoming {
                        from,
                        via_relay,
                        first: d.to_vec(),
                    });
                }
                None => {}
            },
            _ => {}
        }
    }
}

/// Everything one DTLS link task needs.
pub struct LinkParams {
    /// Link handle.
    pub link: LinkId,
    /// Peer transport address.
    pub addr: SocketAddr,
    /// We are the DTLS client.
    pub active: bool,
    /// The Node-ID the peer must present, when known.
    pub expected: Option<NodeId>,
    /// Our certificate, key and overlay root.
    pub identity: Arc<Identity>,
    /// Largest message accepted or sent.
    pub max_message: usize,
    /// The ClientHello that created a passive link.
    pub first: Option<Vec<u8>>,
    /// The overlay UDP socket.
    pub sock: Arc<UdpOut>,
    /// The mux's routing table (the task removes its own entry when it ends).
    pub routes: Routes,
    /// The peer reaches us through our TURN relay.
    pub via_relay: bool,
    /// The ICE session whose pair this link uses (our ufrag): consent checks (RFC 7675)
    /// run on it; `None` (no Attach behind the link): Binding indications only.
    pub consent: Option<(super::ice::SharedIce, Vec<u8>)>,
}

/// One message being delivered by stop-and-wait.
struct InFlight {
    message: Vec<u8>,
    /// Sequence numbers of its transmissions and when each went out.
    sent: Vec<(u32, Instant)>,
    deadline: Instant,
    wait: Duration,
}

fn dtls_config() -> Result<Arc<dimpl::Config>, String> {
    let mut b = dimpl::Config::builder();
    if std::env::var_os("SSLKEYLOGFILE").is_some() {
        b = b.with_crypto_provider(super::dtls_keylog::provider());
    }
    b.mtu(1400)
        .require_client_certificate(true)
        .handshake_timeout(HANDSHAKE)
        .build()
        .map(Arc::new)
        .map_err(|e| format!("DTLS configuration: {e}"))
}

/// Runs one DTLS link: handshake, certificate check, then framed messages until either side
/// ends it. `inbox` carries the datagrams the mux routes to us.
pub async fn run_link(
    p: LinkParams,
    mut inbox: mpsc::Receiver<Vec<u8>>,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
    reports: mpsc::Sender<Report>,
) {
    let link = p.link;
    let addr = p.addr;
    let why = match link_loop(&p, &mut inbox, &mut outgoing, &reports).await {
        Ok(w) => w,
        Err(LinkEnd::Handshake(why)) => {
            let _ = reports
                .send(Report::Failed {
                    link,
                    peer: p.expected,
                    addr,
                    why,
                    outgoing: p.active,
                })
                .await;
            remove_route(&p);
            return;
        }
    };
    remove_route(&p);
    let _ = reports
        .send(Report::Link(LinkEvent::Down { link, why }))
        .await;
}

fn remove_route(p: &LinkParams) {
    let key = (p.addr, p.via_relay);
    if let Ok(mut r) = p.routes.lock()
        && r.get(&key).is_some_and(|t| t.is_closed())
    {
        r.remove(&key);
    }
}

enum LinkEnd {
    Handshake(String),
}

async fn link_loop(
    p: &LinkParams,
    inbox: &mut mpsc::Receiver<Vec<u8>>,
    outgoing: &mut mpsc::Receiver<Vec<u8>>,
    reports: &mpsc::Sender<Report>,
) -> Result<String, LinkEnd> {
    let hs = |w: String| LinkEnd::Handshake(w);
    let cfg = dtls_config().map_err(hs)?;
    let cert = dimpl::DtlsCertificate {
        certificate: p.identity.cert_der.clone(),
        private_key: p.identity.key_pkcs8.clone(),
    };
    let started = Instant::now();
    let mut dtls = dimpl::Dtls::new_12(cfg.clone(), cert.clone(), started);
    dtls.set_active(p.active);
    // dimpl initialises its random in handle_timeout: call it before any packet.
    dtls.handle_timeout(started)
        .map_err(|e| hs(format!("DTLS: {e}")))?;
    let mut active = p.active;
    if let Some(f) = &p.first {
        dtls.handle_packet(f)
            .map_err(|e| hs(format!("DTLS: {e}")))?;
    }
    let link = p.link;
    let mut peer: Option<NodeId> = None;
    let mut up = false;
    let mut connected = false;
    let mut out_buf = vec![0u8; 20_000];
    let mut app: Vec<Vec<u8>> = Vec::new();
    // Framing state.
    let mut next_seq: u32 = 0;
    let mut window = ReceivedWindow::default();
    let mut rto = SrRto::default();
    let mut queue: VecDeque<Vec<u8>> = VecDeque::new();
    let mut inflight: Option<InFlight> = None;
    let mut gap_until = Instant::now();
    let mut failing = false;
    let mut closed_outgoing = false;
    let mut last_tx = Instant::now();
    // RFC 7675: a consent check every 5 s (+-20 %); consent lapses 30 s after the last
    // authenticated answer.
    let mut consent_next = Instant::now() + super::ice::consent_interval();
    let mut consent_ok = Instant::now();
    loop {
        let dtls_wake: Option<Instant>;
        // Drain dimpl.
        loop {
            match dtls.poll_output(&mut out_buf) {
                dimpl::Output::Packet(pk) => {
                    let _ = p.sock.send_via(pk, p.addr, p.via_relay).await;
                    last_tx = Instant::now();
                }
                dimpl::Output::BufferTooSmall { needed } => out_buf.resize(needed, 0),
                dimpl::Output::Timeout(t) => {
                    dtls_wake = Some(t);
                    break;
                }
                dimpl::Output::Connected => connected = true,
                dimpl::Output::PeerCert(der) => {
                    let now = super::now().0 as i64 / 1000;
                    let info = reload::crypto::x509::verify_chain(
                        der,
                        &p.identity.root_der,
                        &p.identity.overlay,
                        now,
                    )
                    .map_err(|e| hs(format!("peer certificate refused: {e}")))?;
                    let got = match (p.expected, info.node_ids.first()) {
                        (Some(e), _) if info.node_ids.contains(&e) => e,
                        (Some(e), _) => {
                            return Err(hs(format!(
                                "peer at {} presented Node-ID(s) {:?} but we expected {}; closing the link",
                                p.addr,
                                info.node_ids
                                    .iter()
                                    .map(|i| hex::encode(i.to_array()))
                                    .collect::<Vec<_>>(),
                                hex::encode(e.to_array())
                            )));
                        }
                        (None, Some(f)) => *f,
                        (None, None) => {
                            return Err(hs("peer certificate carries no Node-ID".into()));
                        }
                    };
                    peer = Some(got);
                }
                dimpl::Output::ApplicationData(d) => app.push(d.to_vec()),
                dimpl::Output::CloseNotify => return Ok("peer closed the DTLS association".into()),
                _ => {}
            }
        }
        if !up {
            if dtls.is_closed() {
                return Err(hs("DTLS handshake failed".into()));
            }
            if started.elapsed() > HANDSHAKE {
                return Err(hs("DTLS handshake timed out".into()));
            }
            if let Some(pe) = peer
                && connected
                && dtls_connected(&dtls)
            {
                up = true;
                consent_ok = Instant::now();
                if reports.send(Report::Up { link, peer: pe }).await.is_err() {
                    return Ok("node stopped".into());
                }
            }
        }
        // Frames that arrived.
        for rec in app.drain(..) {
            let frame = match FramedMessage::decode_prefix(&rec) {
                Ok((f, _)) => f,
                Err(e) => {
                    tracing::debug!(?link, "undecodable frame on DTLS link: {e}");
                    continue;
                }
            };
            match frame {
                FramedMessage::Data { sequence, message } => {
                    let received = window.record(sequence);
                    let ack = FramedMessage::Ack {
                        ack_sequence: sequence,
                        received,
                    };
                    let mut enc = Vec::new();
                    if ack.encode(&mut enc).is_ok() {
                        let _ = dtls.send_application_data(&enc);
                    }
                    if message.0.len() > p.max_message {
                        tracing::warn!(
                            ?link,
                            "dropping a {}-byte message: above the maximum",
                            message.0.len()
                        );
                        continue;
                    }
                    if reports
                        .send(Report::Link(LinkEvent::Message {
                            link,
                            bytes: message.0,
                        }))
                        .await
                        .is_err()
                    {
                        return Ok("node stopped".into());
                    }
                }
                FramedMessage::Ack {
                    ack_sequence,
                    received,
                } => {
                    let now = Instant::now();
                    let hit = inflight.as_ref().and_then(|f| {
                        f.sent
                            .iter()
                            .find(|(s, _)| {
                                *s == ack_sequence || {
                                    let back = ack_sequence.wrapping_sub(*s);
                                    (1..=32).contains(&back) && received & (1 << (back - 1)) != 0
                                }
                            })
                            .map(|(_, t)| *t)
                    });
                    if let Some(t) = hit {
                        let ms = now.duration_since(t).as_secs_f64() * 1000.0;
                        rto.sample(ms);
                        failing = false;
                        inflight = None;
                        gap_until = now + ACK_GAP;
                        let _ = reports.try_send(Report::Link(LinkEvent::Rtt {
                            link,
                            sample_ms: ms,
                            srtt_ms: rto.srtt.unwrap_or(ms),
                            rto_ms: rto.rto,
                        }));
                    }
                }
            }
        }
        // Send the next queued message when allowed.
        let now = Instant::now();
        if up
            && inflight.is_none()
            && now >= gap_until
            && let Some(m) = queue.pop_front()
        {
            let wait = Duration::from_millis(rto.rto as u64);
            let seq = next_seq;
            next_seq = next_seq.wrapping_add(1);
            send_data(&mut dtls, seq, &m);
            inflight = Some(InFlight {
                message: m,
                sent: vec![(seq, now)],
                deadline: now + wait,
                wait,
            });
            continue;
        }
        if closed_outgoing && queue.is_empty() && inflight.is_none() {
            let _ = dtls.close();
            flush(&mut dtls, &mut out_buf, p).await;
            return Ok("closed by the node".into());
        }
        // Wait for the next thing to do.
        let mut wake = dtls_wake;
        let mut earliest = |t: Instant| {
            wake = Some(wake.map_or(t, |w| w.min(t)));
        };
        if let Some(f) = &inflight {
            earliest(f.deadline);
        } else if up && !queue.is_empty() {
            earliest(gap_until);
        }
        if !up {
            earliest(started + HANDSHAKE);
        } else {
            earliest(last_tx + KEEPALIVE);
            if p.consent.is_some() {
                earliest(consent_next);
            }
        }
        let sleep = async {
            match wake {
                Some(w) => tokio::time::sleep_until(w.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            d = inbox.recv() => {
                let Some(d) = d else { return Ok("socket closed".into()) };
                if up && is_client_hello(&d) {
                    return Ok("peer restarted (new ClientHello)".into());
                }
                if !up && active && is_client_hello(&d) && yield_to_peer(p) {
                    // Both sides dialled at once over the same address pair: the lower
                    // Node-ID stays client, the other becomes the server.
                    active = false;
                    dtls = dimpl::Dtls::new_12(cfg.clone(), cert.clone(), Instant::now());
                    dtls.set_active(false);
                    if let Err(e) = dtls.handle_timeout(Instant::now()) {
                        return Err(hs(format!("DTLS: {e}")));
                    }
                    connected = false;
                    peer = None;
                }
                if let Err(e) = dtls.handle_timeout(Instant::now()).and_then(|()| dtls.handle_packet(&d)) {
                    if up { return Ok(format!("DTLS error: {e}")); }
                    return Err(hs(format!("DTLS handshake failed: {e}")));
                }
            }
            m = outgoing.recv(), if !closed_outgoing => match m {
                Some(m) => {
                    if m.len() > p.max_message.min(MAX_DTLS_MESSAGE) {
                        tracing::warn!(?link, "not sending a {}-byte message over DTLS: above {}", m.len(), p.max_message.min(MAX_DTLS_MESSAGE));
                    } else if queue.len() >= MAX_QUEUE {
                        tracing::warn!(?link, "DTLS link queue full: message dropped");
                    } else {
                        queue.push_back(m);
                    }
                }
                None => closed_outgoing = true,
            },
            _ = sleep => {
                let now = Instant::now();
                if up
                    && now >= consent_next
                    && let Some((ice, ufrag)) = &p.consent
                {
                    consent_next = now + super::ice::consent_interval();
                    let (req, fresh) = match ice.lock() {
                        Ok(mut s) => (
                            s.check_request(ufrag, p.addr, p.via_relay, false, now),
                            s.last_answer(ufrag, p.addr),
                        ),
                        Err(_) => (None, None),
                    };
                    if let Some(t) = fresh {
                        consent_ok = consent_ok.max(t);
                    }
                    if let Some(r) = req {
                        if now.duration_since(consent_ok) > super::ice::CONSENT_TIMEOUT {
                            return Ok("ICE consent expired (RFC 7675)".into());
                        }
                        let _ = p.sock.send_via(&r, p.addr, p.via_relay).await;
                        last_tx = now;
                    }
                }
                if up && now >= last_tx + KEEPALIVE {
                    let _ = p.sock.send_via(&super::ice::binding_indication(), p.addr, p.via_relay).await;
                    last_tx = now;
                }
                if dtls_wake.is_some_and(|w| w <= now)
                    && let Err(e) = dtls.handle_timeout(now)
                {
                    if up { return Ok(format!("DTLS error: {e}")); }
                    return Err(hs(format!("DTLS handshake failed: {e}")));
                }
                if let Some(f) = &mut inflight && f.deadline <= now {
                    if f.sent.len() as u32 >= MAX_SENDS {
                        return Ok(format!("no ACK after {MAX_SENDS} sends: closing the link"));
                    }
                    // Retransmit under a new sequence number; double the wait.
                    let seq = next_seq;
                    next_seq = next_seq.wrapping_add(1);
                    send_data(&mut dtls, seq, &f.message);
                    f.sent.push((seq, now));
                    f.wait *= 2;
                    f.deadline = now + f.wait;
                    // 6.6.3.1: no ACK for an RTO and three retransmissions → failing.
                    if f.sent.len() >= 4 && !failing {
                        failing = true;
                        tracing::warn!(?link, "no ACK for three retransmissions: link is failing");
                        let _ = reports.send(Report::Link(LinkEvent::Failing { link })).await;
                    }
                }
            }
        }
    }
}

fn dtls_connected(d: &dimpl::Dtls) -> bool {
    !d.is_closed() && !d.is_closing()
}

/// In a simultaneous open, the side with the higher Node-ID (or without an expected peer)
/// becomes the DTLS server.
fn yield_to_peer(p: &LinkParams) -> bool {
    match p.expected {
        Some(e) => p.identity.node_id.0 > e.0,
        None => true,
    }
}

fn send_data(dtls: &mut dimpl::Dtls, seq: u32, m: &[u8]) {
    let f = FramedMessage::Data {
        sequence: seq,
        message: m.to_vec().into(),
    };
    let mut enc = Vec::with_capacity(m.len() + 8);
    if f.encode(&mut enc).is_ok()
        && let Err(e) = dtls.send_application_data(&enc)
    {
        tracing::debug!("DTLS send: {e}");
    }
}

async fn flush(dtls: &mut dimpl::Dtls, buf: &mut Vec<u8>, p: &LinkParams) {
    loop {
        match dtls.poll_output(buf) {
            dimpl::Output::Packet(pk) => {
                let _ = p.sock.send_via(pk, p.addr, p.via_relay).await;
            }
            dimpl::Output::BufferTooSmall { needed } => buf.resize(needed, 0),
            dimpl::Output::Timeout(_) => break,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_marks_earlier_sequences() {
        let mut w = ReceivedWindow::default();
        assert_eq!(w.record(0), 0);
        assert_eq!(w.record(1), 0b1);
        assert_eq!(w.record(2), 0b11);
        // 3 lost, 4 arrives: bit for 3 (N-1) clear, 2,1,0 set.
        assert_eq!(w.record(4), 0b1110);
        // 3 arrives late: relative to 3, 2,1,0 set.
        assert_eq!(w.record(3), 0b111);
        assert_eq!(w.record(5), 0b11111);
        // A jump beyond the window.
        assert_eq!(w.record(100), 0);
    }

    #[test]
    fn rto_is_rounded_to_ms_with_floor() {
        let mut r = SrRto::default();
        assert_eq!(r.rto, 500.0);
        r.sample(1.0);
        assert_eq!(r.rto, 200.0);
        for _ in 0..40 {
            r.sample(800.0);
        }
        assert!(r.rto > 800.0 && r.rto < 2000.0 && r.rto.fract() == 0.0);
    }

    #[test]
    fn stun_binding_answer_has_xor_mapped_address() {
        let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        req.extend_from_slice(&[7u8; 12]);
        let from: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        let r = stun_binding_response(&req, from).unwrap();
        assert_eq!(&r[0..2], &[0x01, 0x01]);
        assert_eq!(&r[8..20], &[7u8; 12]);
        // XOR-MAPPED-ADDRESS, family 1, port 32853 ^ 0x2112, 192.0.2.1 ^ cookie.
        assert_eq!(&r[20..26], &[0x00, 0x20, 0x00, 0x08, 0x00, 0x01]);
        assert_eq!(u16::from_be_bytes([r[26], r[27]]), 32853 ^ 0x2112);
        assert_eq!(&r[28..32], &[192 ^ 0x21, 0x12, 2 ^ 0xa4, 1 ^ 0x42]);
        assert!(stun_binding_response(b"short", from).is_none());
    }
}
