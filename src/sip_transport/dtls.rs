//! Inter-node SIP over DTLS (docs/CALLS.md "SIP over DTLS"): how a node that cannot be
//! reached over TCP (behind a NAT, or a firewall that drops inbound TCP) is still called.
//!
//! One UDP socket per node for applications, apart from the overlay's: the overlay socket
//! keys its DTLS associations by peer address, and two nodes usually share an overlay DTLS
//! link already, so a second association between the same addresses would collide. This
//! socket reuses the overlay's pieces on its own state: the mux
//! ([`crate::overlay::dtls::run_mux`]: STUN, DTLS, TURN by first byte), the ICE agent
//! ([`crate::overlay::ice`]: checks with USERNAME/MESSAGE-INTEGRITY/FINGERPRINT, roles,
//! nomination, consent), its own TURN allocation ([`crate::overlay::turn`]) on the overlay's
//! TURN server with the same credentials, and the DTLS link task
//! ([`crate::overlay::dtls::run_link`]: DTLS 1.2 with the node certificates, the peer must
//! prove the Node-ID, RFC 6940 simple-reliability framing).
//!
//! AppAttach (application 5060) offers this socket's candidates as `DTLS-UDP-SR` next to the
//! TLS listener's TCP host candidate. The requester is controlling and the DTLS client
//! (RFC 4145 "active"); the answerer is controlled and the DTLS server, and lets the
//! requester's candidate addresses in through its relay before the checks arrive. Each SIP
//! message is one framed message in one DTLS record; the framing's ACKs and retransmissions
//! (RFC 6940 6.6.3) make the link reliable, so SIP treats it like its TLS connections (no
//! SIP retransmissions): same connection table, same pool per Node-ID, same idle close.

use super::ToDriver;
use super::tls::Dialer;
use crate::overlay::app_ice::{AppIceEvent, AppIceHook};
use crate::overlay::dtls::{LinkParams, Report, Routes, run_link, run_mux};
use crate::overlay::ice::{self, Creds, IceAgent, SharedIce};
use crate::overlay::link::LinkEvent;
use crate::overlay::turn::{self, Relay, UdpOut};
use crate::overlay::{OverlayHandle, advertised};
use reload::node::IceCredentials;
use reload::node::LinkId;
use reload::node::app_attach::AppAttachReqAnsExt;
use reload::node::msg::Candidate;
use reload::wire::{APPLICATION_SIP, AppAttachReqAns, CandType, NodeId, OverlayLinkType};
use sip::{ConnId, Transport};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long the caller's connectivity checks may take.
pub const CHECKS: Duration = Duration::from_secs(4);
/// How long the answerer keeps checking towards the requester.
const ANSWERER_CHECKS: Duration = Duration::from_secs(8);
/// Bound on the DTLS handshake after nomination.
const HANDSHAKE: Duration = Duration::from_secs(6);
/// Largest SIP message on a DTLS link (one framed message in one DTLS record).
const MAX_MESSAGE: usize = 16_000;

/// The application UDP socket for SIP over DTLS; cheap to clone.
#[derive(Clone)]
pub struct AppSocket {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AppSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AppSocket({})", self.inner.host)
    }
}

type Waiter = oneshot::Sender<Result<(ConnId, SocketAddr), String>>;

struct LinkInfo {
    addr: SocketAddr,
    via_relay: bool,
    /// The link's outgoing queue until it is up (then the writer task owns it).
    tx: Option<mpsc::Sender<Vec<u8>>>,
    conn: Option<ConnId>,
    peer: Option<NodeId>,
    waiter: Option<Waiter>,
    /// How the link was reached, for the log.
    how: String,
    last: Arc<AtomicU64>,
}

struct Inner {
    out: Arc<UdpOut>,
    relay: Arc<Relay>,
    ice: SharedIce,
    routes: Routes,
    reports: mpsc::Sender<Report>,
    host: SocketAddr,
    /// The local address SIP messages from these links carry (the inter-node listener's,
    /// so that Record-Routes naming it are ours).
    sip_local: SocketAddr,
    dialer: Dialer,
    next_link: AtomicU64,
    links: Mutex<HashMap<LinkId, LinkInfo>>,
    /// One dial per node at a time: concurrent calls to a node share its link.
    dialing: Mutex<HashMap<NodeId, Arc<tokio::sync::Mutex<()>>>>,
}

fn millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn short(n: NodeId) -> String {
    hex::encode(n.to_array()).chars().take(8).collect()
}

impl AppSocket {
    /// Binds `bind` (port 0: any), starts the mux, gathering towards `bootstrap` (their
    /// overlay ports answer STUN Binding), the candidate updates and the hook in `overlay`.
    /// `sip_local` is the inter-node listener's address (see [`Inner::sip_local`]).
    pub async fn start(
        bind: SocketAddr,
        bootstrap: &[SocketAddr],
        dialer: Dialer,
        sip_local: SocketAddr,
        overlay: &OverlayHandle,
    ) -> io::Result<AppSocket> {
        let sock = tokio::net::UdpSocket::bind(bind).await?;
        let host = advertised(sock.local_addr()?, bootstrap);
        let relay = Arc::new(Relay::pending());
        let out = Arc::new(UdpOut {
            sock: Arc::new(sock),
            relay: Some(relay.clone()),
        });
        let ice = SharedIce::default();
        let routes = Routes::default();
        let (rtx, rrx) = mpsc::channel(1024);
        tokio::spawn(run_mux(
            out.clone(),
            routes.clone(),
            rtx.clone(),
            Some(ice::stun_hook(ice.clone(), host)),
        ));
        if !bootstrap.is_empty() {
            tokio::spawn(ice::gather(out.clone(), bootstrap.to_vec()));
        }
        let me = AppSocket {
            inner: Arc::new(Inner {
                out,
                relay,
                ice,
                routes,
                reports: rtx,
                host,
                sip_local,
                dialer,
                next_link: AtomicU64::new(1),
                links: Mutex::new(HashMap::new()),
                dialing: Mutex::new(HashMap::new()),
            }),
        };
        tokio::spawn(me.clone().serve(rrx));
        let hook_me = me.clone();
        let hook: AppIceHook = Arc::new(move |ev| hook_me.on_event(ev));
        if overlay.set_app_ice_hook(hook).await.is_err() {
            return Err(io::Error::other("the overlay stopped"));
        }
        tokio::spawn(me.clone().advertise(overlay.clone()));
        tracing::info!("inter-node SIP/DTLS socket on {host} (ICE candidates in AppAttach)");
        Ok(me)
    }

    /// The host candidate's address.
    pub fn host(&self) -> SocketAddr {
        self.inner.host
    }

    /// For `/status`: the socket, its candidates and its links to other nodes.
    pub fn status(&self) -> serde_json::Value {
        let candidates: Vec<serde_json::Value> = self
            .candidates()
            .iter()
            .map(|c| {
                let typ = match c.cand_type {
                    CandType::HOST => "host",
                    CandType::SRFLX => "srflx",
                    CandType::RELAY => "relay",
                    _ => "prflx",
                };
                serde_json::json!({"type": typ, "addr": c.addr.to_string()})
            })
            .collect();
        let links: Vec<serde_json::Value> = self
            .inner
            .links
            .lock()
            .map(|l| {
                l.values()
                    .map(|i| {
                        serde_json::json!({
                            "peer": i.peer.map(|p| hex::encode(p.to_array())),
                            "addr": i.addr.to_string(),
                            "through_our_relay": i.via_relay,
                            "state": if i.conn.is_some() { "up" } else { "connecting" },
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        serde_json::json!({
            "listen": self.inner.host.to_string(),
            "candidates": candidates,
            "links": links,
        })
    }

    /// Our candidates: host, server-reflexive (once learned), relayed (once allocated).
    pub fn candidates(&self) -> Vec<Candidate> {
        let srflx = self.inner.ice.lock().ok().and_then(|s| s.srflx);
        ice::local_candidates(self.inner.host, srflx, self.inner.relay.relayed())
            .into_iter()
            .filter(|c| c.link == OverlayLinkType::DTLS_UDP_SR)
            .collect()
    }

    /// Keeps the engine's AppAttach candidates up to date.
    async fn advertise(self, overlay: OverlayHandle) {
        let mut last: Vec<Candidate> = Vec::new();
        loop {
            let now = self.candidates();
            if now != last {
                if overlay
                    .set_application_candidates(APPLICATION_SIP, now.clone())
                    .await
                    .is_err()
                {
                    return;
                }
                last = now;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// What the overlay driver tells us (runs inside the driver: no waiting here).
    fn on_event(&self, ev: AppIceEvent) {
        let i = &self.inner;
        match ev {
            AppIceEvent::Issued((ufrag, pwd)) => {
                if let Ok(mut s) = i.ice.lock() {
                    s.add_session(Creds { ufrag, pwd });
                }
            }
            AppIceEvent::Answered(a) => {
                if a.request.application != APPLICATION_SIP {
                    return;
                }
                let remote = a.request.udp_candidates();
                if remote.is_empty() {
                    return;
                }
                // Let the requester's addresses in through our relay before its checks come.
                self.permit(&remote);
                let (ufrag, pwd) = a.local;
                let (rufrag, rpwd) = a.request.credentials();
                let ok = i.ice.lock().is_ok_and(|mut s| {
                    s.add_session(Creds {
                        ufrag: ufrag.clone(),
                        pwd,
                    });
                    s.set_remote(
                        &ufrag,
                        Creds {
                            ufrag: rufrag,
                            pwd: rpwd,
                        },
                        false,
                    )
                });
                if !ok {
                    return;
                }
                // The controlled half: checks towards the requester (they also open our NAT
                // towards it); its USE-CANDIDATE nominates.
                let agent = IceAgent::new(i.out.clone(), i.ice.clone());
                let peer = a.peer;
                tokio::spawn(async move {
                    if let Some((n, via_relay)) = agent.run(ufrag, remote, ANSWERER_CHECKS).await {
                        tracing::debug!(
                            "SIP/DTLS: node {} nominated {n} (through our relay: {via_relay})",
                            short(peer)
                        );
                    }
                });
            }
            AppIceEvent::Turn { server, creds } => {
                i.relay.set_credentials(creds);
                if i.relay.set_server(server) {
                    tracing::info!(
                        "inter-node SIP/DTLS: allocating a relayed candidate on TURN server {server}"
                    );
                    tokio::spawn(turn::run(i.out.clone(), i.relay.clone()));
                }
            }
        }
    }

    fn permit(&self, cands: &[Candidate]) {
        let ips: Vec<std::net::IpAddr> = cands.iter().map(|c| c.addr.ip()).collect();
        let (r, out) = (self.inner.relay.clone(), self.inner.out.clone());
        tokio::spawn(async move { r.permit(&out, ips).await });
    }

    /// Reaches `node` over SIP/DTLS with its AppAttach answer `ans` (our credentials in the
    /// request: `mine`): checks (controlling), then a DTLS handshake as client whose peer
    /// must prove `node`. Returns the connection (pooled like TLS ones) and how it went.
    pub async fn dial(
        &self,
        node: NodeId,
        ans: &AppAttachReqAns,
        mine: IceCredentials,
    ) -> Result<(ConnId, SocketAddr), String> {
        let i = &self.inner;
        let remote = ans.udp_candidates();
        if remote.is_empty() {
            return Err("the answer offers no UDP candidate".into());
        }
        // Calls to the same node at the same moment: the first one's link serves them all.
        let gate = {
            let mut d = i.dialing.lock().map_err(|_| "dial state")?;
            if d.len() > 1024 {
                d.retain(|_, g| Arc::strong_count(g) > 1);
            }
            d.entry(node).or_default().clone()
        };
        let _one = gate.lock().await;
        if let Some(c) = i.dialer.peers.conn_to(node) {
            return Ok(c);
        }
        self.permit(&remote);
        let (ufrag, pwd) = mine;
        let (rufrag, rpwd) = ans.credentials();
        let rcreds = Creds {
            ufrag: rufrag,
            pwd: rpwd,
        };
        if let Ok(mut s) = i.ice.lock()
            && !s.sessions.contains_key(&ufrag)
        {
            s.add_session(Creds {
                ufrag: ufrag.clone(),
                pwd,
            });
        }
        if !i
            .ice
            .lock()
            .is_ok_and(|mut s| s.set_remote(&ufrag, rcreds, true))
        {
            return Err("ICE session gone".into());
        }
        let agent = IceAgent::new(i.out.clone(), i.ice.clone());
        let nominated = agent
            .run(ufrag, remote.clone(), CHECKS)
            .await
            .ok_or_else(|| {
                format!(
                    "ICE: no UDP candidate pair answered within {} s ({} candidates)",
                    CHECKS.as_secs(),
                    remote.len()
                )
            })?;
        let (nominated, via_relay) = nominated;
        let mut how = match remote.iter().find(|c| c.addr == nominated) {
            Some(c) if c.cand_type == CandType::RELAY => {
                format!("through relay {nominated} (its TURN allocation)")
            }
            Some(c) if c.cand_type == CandType::SRFLX => {
                format!("at its server-reflexive address {nominated} (ICE through its NAT)")
            }
            Some(_) => format!("at its host address {nominated} (ICE)"),
            None => format!("at peer-reflexive address {nominated} (ICE)"),
        };
        if via_relay {
            let ours = i
                .relay
                .relayed()
                .map(|r| format!(" {r}"))
                .unwrap_or_default();
            how.push_str(&format!(
                ", sent from our relayed address{ours} (our TURN allocation)"
            ));
        }
        let (tx, rx) = oneshot::channel();
        self.open_link(nominated, via_relay, true, Some(node), None, Some(tx), how)?;
        match tokio::time::timeout(HANDSHAKE, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err("link task ended".into()),
            Err(_) => Err("DTLS handshake timed out".into()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn open_link(
        &self,
        addr: SocketAddr,
        via_relay: bool,
        active: bool,
        expected: Option<NodeId>,
        first: Option<Vec<u8>>,
        waiter: Option<Waiter>,
        how: String,
    ) -> Result<(), String> {
        let i = &self.inner;
        let (in_tx, in_rx) = mpsc::channel(256);
        {
            let mut r = i.routes.lock().map_err(|_| "routes")?;
            if r.get(&(addr, via_relay)).is_some_and(|t| !t.is_closed()) {
                return Err(format!("a SIP/DTLS link with {addr} exists already"));
            }
            r.insert((addr, via_relay), in_tx);
        }
        let link = LinkId(i.next_link.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel(256);
        let params = LinkParams {
            link,
            addr,
            active,
            expected,
            identity: i.dialer.identity.clone(),
            max_message: MAX_MESSAGE,
            first,
            sock: i.out.clone(),
            routes: i.routes.clone(),
            via_relay,
            consent: i
                .ice
                .lock()
                .ok()
                .and_then(|mut s| s.bind_link(addr))
                .map(|u| (i.ice.clone(), u)),
        };
        if let Ok(mut l) = i.links.lock() {
            l.insert(
                link,
                LinkInfo {
                    addr,
                    via_relay,
                    tx: Some(tx),
                    conn: None,
                    peer: expected,
                    waiter,
                    how,
                    last: Arc::new(AtomicU64::new(millis())),
                },
            );
        }
        tokio::spawn(run_link(params, in_rx, rx, i.reports.clone()));
        Ok(())
    }

    /// Handles what the mux and the link tasks report.
    async fn serve(self, mut reports: mpsc::Receiver<Report>) {
        while let Some(r) = reports.recv().await {
            match r {
                Report::Incoming {
                    from,
                    via_relay,
                    first,
                } => match crate::overlay::dtls::live_route(&self.inner.routes, from, via_relay) {
                    Some(tx) => {
                        let _ = tx.try_send(first);
                    }
                    None => {
                        let how = if via_relay {
                            format!("from {from} through our TURN relay")
                        } else {
                            format!("from {from}")
                        };
                        let _ =
                            self.open_link(from, via_relay, false, None, Some(first), None, how);
                    }
                },
                Report::Up { link, peer } => self.up(link, peer).await,
                Report::Failed {
                    link, addr, why, ..
                } => {
                    let info = self
                        .inner
                        .links
                        .lock()
                        .ok()
                        .and_then(|mut l| l.remove(&link));
                    match info.and_then(|i| i.waiter) {
                        Some(w) => {
                            let _ = w.send(Err(format!("DTLS with {addr}: {why}")));
                        }
                        None => tracing::info!("refused a SIP/DTLS association from {addr}: {why}"),
                    }
                }
                Report::Link(LinkEvent::Message { link, bytes }) => {
                    let found = self.inner.links.lock().ok().and_then(|l| {
                        l.get(&link).and_then(|i| {
                            i.last.store(millis(), Ordering::Relaxed);
                            i.conn.map(|c| (c, i.addr))
                        })
                    });
                    if let Some((conn, remote)) = found {
                        let msg = ToDriver::Received {
                            transport: Transport::Tls,
                            local: self.inner.sip_local,
                            remote,
                            conn: Some(conn),
                            bytes,
                        };
                        if self.inner.dialer.to_driver.send(msg).await.is_err() {
                            return;
                        }
                    }
                }
                Report::Link(LinkEvent::Down { link, why }) => {
                    let info = self
                        .inner
                        .links
                        .lock()
                        .ok()
                        .and_then(|mut l| l.remove(&link));
                    if let Some(i) = info {
                        if let Some(w) = i.waiter {
                            let _ = w.send(Err(why.clone()));
                        }
                        if let Some(c) = i.conn {
                            self.inner.dialer.peers.remove(c);
                            let _ = self
                                .inner
                                .dialer
                                .to_driver
                                .send(ToDriver::Closed { id: c })
                                .await;
                            tracing::info!(
                                "inter-node SIP/DTLS link to node {} ({}) closed: {why}",
                                i.peer.map(short).unwrap_or_default(),
                                i.addr
                            );
                        }
                    }
                }
                Report::Link(_) | Report::Checked { .. } => {}
            }
        }
    }

    /// A link is up: into the SIP connection table and the per-Node-ID pool.
    async fn up(&self, link: LinkId, peer: NodeId) {
        let d = &self.inner.dialer;
        let conn = ConnId(d.next_conn.fetch_add(1, Ordering::Relaxed));
        let taken = self.inner.links.lock().ok().and_then(|mut l| {
            let i = l.get_mut(&link)?;
            i.conn = Some(conn);
            i.peer = Some(peer);
            Some((
                i.tx.take()?,
                i.waiter.take(),
                i.addr,
                i.how.clone(),
                i.last.clone(),
            ))
        });
        let Some((link_tx, waiter, addr, how, last)) = taken else {
            return;
        };
        // The SIP driver writes into `writer`; this task forwards to the link and closes it
        // (by dropping its queue) after the idle time without traffic either way.
        let (writer, mut writes) = mpsc::channel::<Vec<u8>>(256);
        let idle = d.idle;
        tokio::spawn(async move {
            loop {
                match tokio::time::timeout(idle, writes.recv()).await {
                    Ok(Some(m)) => {
                        last.store(millis(), Ordering::Relaxed);
                        if link_tx.send(m).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(_) => {
                        let quiet = millis().saturating_sub(last.load(Ordering::Relaxed));
                        if u128::from(quiet) >= idle.as_millis() {
                            tracing::info!(
                                "closing inter-node SIP/DTLS link to {addr}: idle for {} s",
                                idle.as_secs()
                            );
                            return;
                        }
                    }
                }
            }
        });
        let opened = ToDriver::Opened {
            id: conn,
            remote: addr,
            writer,
        };
        if d.to_driver.send(opened).await.is_err() {
            return;
        }
        d.peers.add(conn, peer, addr);
        match &waiter {
            Some(_) => tracing::info!("reached node {} over SIP/DTLS {how}", short(peer)),
            None => tracing::info!(
                "inter-node SIP/DTLS link from node {} is up ({how})",
                short(peer)
            ),
        }
        if let Some(w) = waiter {
            let _ = w.send(Ok((conn, addr)));
        }
    }
}
