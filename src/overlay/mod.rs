//! The tokio driver of the RELOAD peer: one task owns the sans-IO [`reload::node::Node`],
//! feeds it socket input and timers, and carries out its outputs. It makes no protocol
//! decisions: links, TLS and framing live here; routing, storage and Chord in the engine.
//!
//! Links are TLS over TCP with the RELOAD framing layer (RFC 6940 6.6.2, TLS-TCP-FH-NO-ICE),
//! mutually authenticated with the overlay certificates from [`crate::pki`].
//!
//! Deviation (RFC 6940 6.5.1.13 makes the Attach requester the TLS *server*): the side that
//! opens the TCP connection is always the TLS client. With plain TCP and no ICE the acceptor
//! cannot tell which role to take before any byte arrives; both sides still authenticate each
//! other with certificates, so the security properties are the same.

pub mod app_ice;
pub mod discovery;
pub mod dtls;
pub mod dtls_keylog;
pub mod ice;
pub mod link;
pub mod self_tune;
pub mod turn;
pub mod turn_server;
pub mod turn_service;

use crate::pki::local::Identity;
use link::LinkEvent;
use reload::node::{
    Event, Input, LinkId, Node, NodeConfig, Outcome, Output, RequestError, RequestId, Time,
};
use reload::storage::{DataValue, KindId, Selector, ValueKey};
use reload::wire::{Destination, DiagnosticsRequest, NodeId, ResourceId};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::Instrument;

/// Driver settings.
#[derive(Debug, Clone)]
pub struct OverlayConfig {
    /// Overlay instance name.
    pub overlay: String,
    /// TCP/TLS listen address.
    pub listen: SocketAddr,
    /// Bootstrap peers.
    pub bootstrap: Vec<SocketAddr>,
    /// Start a new overlay instead of joining (`None`: when no bootstrap peer is configured
    /// or discovered).
    pub first_node: Option<bool>,
    /// LAN discovery over multicast, if enabled.
    pub discovery: Option<discovery::DiscoveryConfig>,
    /// Largest RELOAD message accepted or sent (bytes).
    pub max_message_size: usize,
    /// File of peers seen before (bootstrap cache), if any.
    pub peer_cache: Option<PathBuf>,
    /// Our user name (in our certificate).
    pub user: String,
    /// Link protocol of the links this node opens (it accepts both).
    pub link: LinkProtocol,
    /// TURN server for a relayed candidate (DTLS links only), if any.
    pub turn_server: Option<SocketAddr>,
    /// TURN-SERVICE usage: advertising a TURN server, discovering one (RFC 6940 9).
    pub turn_service: turn_service::TurnServiceConfig,
    /// Derive the stabilization interval from the estimated churn (RFC 7363).
    pub self_tuning: bool,
    /// Leave our certificate out of requests once it is stored in the overlay (receivers
    /// fetch it from CERTIFICATE_BY_NODE, RFC 6940 6.3.4).
    pub omit_certificates: bool,
}

/// The overlay link protocol a node uses for the links it opens (RFC 6940 6.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkProtocol {
    /// TLS over TCP with the framing header, no ICE (TLS-TCP-FH-NO-ICE).
    #[default]
    Tls,
    /// DTLS over UDP with simple reliability (DTLS-UDP-SR), candidates and checks.
    Dtls,
}

/// Milliseconds since the Unix epoch: the engine's clock.
pub fn now() -> Time {
    Time(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    )
}

/// Requests to the driver task.
enum Command {
    Store {
        resource: ResourceId,
        kind: KindId,
        values: Vec<(ValueKey, DataValue, u32)>,
        reply: oneshot::Sender<Result<Outcome, RequestError>>,
    },
    Fetch {
        resource: ResourceId,
        specifiers: Vec<(KindId, Selector)>,
        reply: oneshot::Sender<Result<Outcome, RequestError>>,
    },
    Find {
        resource: ResourceId,
        kinds: Vec<KindId>,
        reply: oneshot::Sender<Result<Outcome, RequestError>>,
    },
    Ping {
        dest: Vec<Destination>,
        reply: oneshot::Sender<(Result<Outcome, RequestError>, u32)>,
    },
    PathTrack {
        via: Vec<Destination>,
        target: Destination,
        request: DiagnosticsRequest,
        reply: oneshot::Sender<(Result<Outcome, RequestError>, u32)>,
    },
    NextHop {
        key: u128,
        reply: oneshot::Sender<NodeId>,
    },
    Status(oneshot::Sender<serde_json::Value>),
    /// Forget the peer certificates verified so far (admin debug).
    ForgetCertificates(oneshot::Sender<()>),
    Metrics(oneshot::Sender<String>),
    Leave(oneshot::Sender<()>),
    // calls: AppAttach (RFC 6940 6.5.2)
    RegisterApplication {
        application: u16,
        addrs: Vec<SocketAddr>,
    },
    // calls: AppAttach with ICE (app_ice.rs)
    AppAttachIce {
        peer: NodeId,
        application: u16,
        reply: oneshot::Sender<(reload::node::IceCredentials, Result<Outcome, RequestError>)>,
    },
    AppCandidates {
        application: u16,
        candidates: Vec<reload::node::msg::Candidate>,
    },
    AppIceHook(app_ice::AppIceHook),
}

/// Why a handle call failed.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The driver task is gone.
    #[error("the overlay driver has stopped")]
    Stopped,
    /// The overlay answered with a failure.
    #[error("overlay request failed: {0:?}")]
    Request(RequestError),
}

/// A clone-able handle to the driver task (the SIP gateway stores and fetches through it).
#[derive(Clone, Debug)]
pub struct OverlayHandle {
    tx: mpsc::Sender<Command>,
    /// Our Node-ID.
    pub node_id: NodeId,
    /// Our user name.
    pub user: String,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl OverlayHandle {
    /// A handle whose driver is gone (every call fails): for unit tests.
    #[cfg(test)]
    pub fn for_tests() -> OverlayHandle {
        let (tx, _rx) = mpsc::channel(1);
        OverlayHandle {
            tx,
            node_id: NodeId(1),
            user: "test".into(),
        }
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, HandleError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| HandleError::Stopped)?;
        rx.await.map_err(|_| HandleError::Stopped)
    }

    /// Stores `values` (key, value, lifetime s) of `kind` at `resource`; the engine's outcome.
    pub async fn store(
        &self,
        resource: ResourceId,
        kind: KindId,
        values: Vec<(ValueKey, DataValue, u32)>,
    ) -> Result<Outcome, HandleError> {
        self.call(|reply| Command::Store {
            resource,
            kind,
            values,
            reply,
        })
        .await?
        .map_err(HandleError::Request)
    }

    /// Fetches `specifiers` at `resource`; the engine's outcome.
    pub async fn fetch(
        &self,
        resource: ResourceId,
        specifiers: Vec<(KindId, Selector)>,
    ) -> Result<Outcome, HandleError> {
        self.call(|reply| Command::Fetch {
            resource,
            specifiers,
            reply,
        })
        .await?
        .map_err(HandleError::Request)
    }

    /// Finds the closest stored Resource-ID of each of `kinds` at the peer responsible for
    /// `resource` (RFC 6940 7.4.4 Find); the engine's outcome ([`Outcome::Found`]).
    pub async fn find(
        &self,
        resource: ResourceId,
        kinds: Vec<KindId>,
    ) -> Result<Outcome, HandleError> {
        self.call(|reply| Command::Find {
            resource,
            kinds,
            reply,
        })
        .await?
        .map_err(HandleError::Request)
    }

    /// Pings whatever node is responsible for the last entry of `dest` (RFC 6940 6.4.2.4);
    /// the engine's outcome and the overlay hops the answer took.
    pub async fn ping(&self, dest: Vec<Destination>) -> Result<(Outcome, u32), HandleError> {
        let (r, hops) = self.call(|reply| Command::Ping { dest, reply }).await?;
        r.map(|o| (o, hops)).map_err(HandleError::Request)
    }

    /// Sends a PathTrack (RFC 7851 6.2) for `target` to the node `via` names; the answer
    /// ([`Outcome::PathTrack`]) and the overlay hops it took.
    pub async fn path_track(
        &self,
        via: Vec<Destination>,
        target: Destination,
        request: DiagnosticsRequest,
    ) -> Result<(Outcome, u32), HandleError> {
        let (r, hops) = self
            .call(|reply| Command::PathTrack {
                via,
                target,
                request,
                reply,
            })
            .await?;
        r.map(|o| (o, hops)).map_err(HandleError::Request)
    }

    /// Asks the node at `dest` for diagnostics (a PathTrack whose target is that node).
    pub async fn diagnostics(
        &self,
        dest: Destination,
        request: DiagnosticsRequest,
    ) -> Result<(Outcome, u32), HandleError> {
        self.path_track(vec![dest.clone()], dest, request).await
    }

    /// Our routing table's next hop towards `key` (our own Node-ID if we are responsible).
    pub async fn next_hop(&self, key: u128) -> Result<NodeId, HandleError> {
        self.call(|reply| Command::NextHop { key, reply }).await
    }

    /// calls: answers AppAttach for `application` with these listener addresses.
    pub async fn register_application(
        &self,
        application: u16,
        addrs: Vec<SocketAddr>,
    ) -> Result<(), HandleError> {
        self.tx
            .send(Command::RegisterApplication { application, addrs })
            .await
            .map_err(|_| HandleError::Stopped)
    }

    /// calls: sends an AppAttach for `application` to `peer` (RFC 6940 6.5.2); our ICE
    /// credentials in the request (the application socket verifies the peer's checks with
    /// them) and the peer's answer ([`Outcome::AppAttached`]) with its candidates.
    pub async fn app_attach_ice(
        &self,
        peer: NodeId,
        application: u16,
    ) -> Result<(reload::node::IceCredentials, Outcome), HandleError> {
        let (creds, r) = self
            .call(|reply| Command::AppAttachIce {
                peer,
                application,
                reply,
            })
            .await?;
        r.map(|o| (creds, o)).map_err(HandleError::Request)
    }

    /// calls: AppAttach for `application` also offers these ICE candidates (DTLS-UDP-SR) of
    /// the application's UDP socket.
    pub async fn set_application_candidates(
        &self,
        application: u16,
        candidates: Vec<reload::node::msg::Candidate>,
    ) -> Result<(), HandleError> {
        self.tx
            .send(Command::AppCandidates {
                application,
                candidates,
            })
            .await
            .map_err(|_| HandleError::Stopped)
    }

    /// calls: the hook the driver tells about AppAttach ICE sessions ([`app_ice`]).
    pub async fn set_app_ice_hook(&self, hook: app_ice::AppIceHook) -> Result<(), HandleError> {
        self.tx
            .send(Command::AppIceHook(hook))
            .await
            .map_err(|_| HandleError::Stopped)
    }

    /// The node's state as JSON (for `GET /status`).
    pub async fn status(&self) -> Result<serde_json::Value, HandleError> {
        self.call(Command::Status).await
    }

    /// Forgets the peer certificates verified so far (`POST /debug/forget-certificates`).
    pub async fn forget_certificates(&self) -> Result<(), HandleError> {
        self.call(Command::ForgetCertificates).await
    }

    /// Prometheus text (for `GET /metrics`).
    pub async fn metrics(&self) -> Result<String, HandleError> {
        self.call(Command::Metrics).await
    }

    /// Leaves the overlay gracefully and stops the driver; returns once the Leave went out
    /// (or after a short bound).
    pub async fn leave(&self) -> Result<(), HandleError> {
        self.call(Command::Leave).await
    }
}

/// Starts the driver: binds the listener, builds the engine and spawns the task.
pub async fn start(
    cfg: OverlayConfig,
    identity: Arc<Identity>,
) -> std::io::Result<(OverlayHandle, tokio::task::JoinHandle<()>)> {
    let (listener, udp) = bind_pair(cfg.listen).await?;
    let local_addr = listener.local_addr()?;
    let discover_turn = cfg.link == LinkProtocol::Dtls
        && cfg.turn_server.is_none()
        && cfg.turn_service.discover
        && cfg.turn_service.advertise.is_none();
    let turn_creds = turn_server::credentials(
        &cfg.overlay,
        &identity.root_der,
        cfg.turn_service.secret.as_deref(),
    );
    let relay = match (cfg.turn_server, cfg.link) {
        (Some(s), LinkProtocol::Dtls) => Some(Arc::new(turn::Relay::new(s))),
        // The server is found through the overlay (turn_service::discover).
        (None, LinkProtocol::Dtls) if discover_turn => Some(Arc::new(turn::Relay::pending())),
        _ => None,
    };
    let udp = Arc::new(turn::UdpOut {
        sock: Arc::new(udp),
        relay: relay.clone(),
    });
    if let Some(r) = &relay {
        r.set_credentials(turn_creds.clone());
        tokio::spawn(turn::run(udp.clone(), r.clone()));
    }
    tracing::info!(
        "overlay {} listening on tls {local_addr}, dtls {local_addr}, Node-ID {}",
        cfg.overlay,
        hex::encode(identity.node_id.to_array())
    );
    let mut bootstrap = cfg.bootstrap.clone();
    let cache = cfg
        .peer_cache
        .as_ref()
        .map(|p| load_cache(p))
        .unwrap_or_default();
    let joined_flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let disc_sock = match &cfg.discovery {
        Some(d) => match discovery::socket(d) {
            Ok(s) => Some((s, d.clone())),
            Err(e) => {
                tracing::warn!(
                    "LAN discovery off: cannot join multicast group {}: {e}",
                    d.group
                );
                None
            }
        },
        None => None,
    };
    if cfg.first_node.is_none()
        && bootstrap.is_empty()
        && let Some((sock, d)) = &disc_sock
    {
        tracing::info!(
            "no bootstrap peer configured: listening {} ms for overlay nodes on {}",
            d.wait_ms,
            d.group
        );
        bootstrap = discovery::listen(sock, d, &cfg.overlay, identity.node_id).await;
    }
    let first_node = cfg.first_node.unwrap_or(bootstrap.is_empty());
    if !first_node {
        for a in &cache {
            if !bootstrap.contains(a) && *a != local_addr {
                bootstrap.push(*a);
            }
        }
    }
    if let Some((sock, d)) = disc_sock {
        tokio::spawn(discovery::announce(
            sock,
            d,
            cfg.overlay.clone(),
            identity.node_id,
            local_addr.port(),
            joined_flag.clone(),
        ));
    }
    tracing::info!(
        "{}",
        if first_node {
            "starting a new overlay (first node)".to_string()
        } else {
            format!("joining the overlay through {bootstrap:?}")
        }
    );
    let host = advertised(local_addr, &bootstrap);
    let ice_state = ice::SharedIce::default();
    if cfg.link == LinkProtocol::Dtls && !bootstrap.is_empty() {
        tokio::spawn(ice::gather(udp.clone(), bootstrap.clone()));
    }
    let ncfg = NodeConfig {
        local_candidates: if cfg.link == LinkProtocol::Dtls {
            ice::local_candidates(host, None, None)
        } else {
            Vec::new()
        },
        overlay: cfg.overlay.clone(),
        first_node,
        local_addr: host,
        bootstrap,
        user: Some(cfg.user.clone()),
        // Timers suited to a LAN of desk phones (the defaults are for the Internet).
        update_interval_ms: 60_000,
        finger_ping_interval_ms: 300_000,
        // A DTLS record carries one RELOAD message of at most this size; larger ones (a
        // replica hand-over, a big Fetch answer) are fragmented by the engine (RFC 6940 6.7)
        // on every link, TLS ones too, so the same message can cross any link.
        link_mtu: dtls::MAX_DTLS_MESSAGE,
        omit_certificates: cfg.omit_certificates,
        ..NodeConfig::default()
    };
    // One X.509 provider (reload::crypto::x509); the engine's time is Unix ms, so epoch 0.
    let crypto = reload::crypto::x509::X509Crypto::new(
        &identity.overlay,
        &identity.root_der,
        &identity.cert_der,
        &identity.key_pkcs8,
        0,
    )
    .map_err(|e| std::io::Error::other(e.to_string()))?;
    reload::crypto::CryptoProvider::set_time(&crypto, now().0);
    let node = Node::with_crypto(ncfg, identity.node_id, rand::random(), Box::new(crypto));
    let (tx, rx) = mpsc::channel(256);
    let handle = OverlayHandle {
        tx,
        node_id: identity.node_id,
        user: cfg.user.clone(),
    };
    let tls_client = Arc::new(
        crate::pki::tls::client_config(&identity, None)
            .map_err(|e| std::io::Error::other(e.to_string()))?,
    );
    let tls_server = Arc::new(
        crate::pki::tls::server_config(&identity, None)
            .map_err(|e| std::io::Error::other(e.to_string()))?,
    );
    let keylog = std::env::var_os("SSLKEYLOGFILE").is_some();
    let (tls_client, tls_server) = if keylog {
        tracing::warn!("SSLKEYLOGFILE is set: TLS and DTLS session keys are written to it");
        let mut c = (*tls_client).clone();
        c.key_log = Arc::new(rustls::KeyLogFile::new());
        let mut s = (*tls_server).clone();
        s.key_log = Arc::new(rustls::KeyLogFile::new());
        (Arc::new(c), Arc::new(s))
    } else {
        (tls_client, tls_server)
    };
    let (ev_tx, ev_rx) = mpsc::channel(1024);
    let routes = dtls::Routes::default();
    let (dtls_tx, dtls_rx) = mpsc::channel(1024);
    tokio::spawn(dtls::run_mux(
        udp.clone(),
        routes.clone(),
        dtls_tx.clone(),
        Some(ice::stun_hook(ice_state.clone(), host)),
    ));
    turn_service::spawn(
        &cfg.turn_service,
        handle.clone(),
        joined_flag.clone(),
        relay
            .clone()
            .filter(|_| discover_turn)
            .map(|r| (udp.clone(), r)),
        ice_state.clone(),
        host,
        turn_service::ServeCtx {
            dtls: cfg.link == LinkProtocol::Dtls,
            realm: cfg.overlay.clone(),
            creds: turn_creds,
        },
    );
    let mut driver = Driver {
        ice: ice_state,
        host,
        srflx_seen: None,
        attached_by: HashMap::new(),
        relay,
        relayed_seen: None,
        udp,
        routes,
        dtls_tx,
        dtls_rx,
        node,
        cfg,
        identity,
        listener,
        cmds: rx,
        events: ev_rx,
        ev_tx,
        tls_client,
        tls_server,
        next_link: 1,
        links: BTreeMap::new(),
        waiting: HashMap::new(),
        cache,
        metrics: Metrics::default(),
        leaving: None,
        joined: joined_flag,
        tuner: None,
        app_ice: app_ice::AppIce::default(),
    };
    if driver.cfg.self_tuning {
        driver.tuner = Some(self_tune::SelfTuner::new(
            now().0,
            driver.node.update_interval_ms(),
        ));
    }
    // The engine is not `Send` (its crypto provider is a plain `Box<dyn CryptoProvider>`), so
    // the driver runs as a local task on the thread that runs the node (see main.rs).
    let task = tokio::task::spawn_local(driver.run());
    Ok((handle, task))
}

/// Binds the TCP listener and the UDP socket of the overlay on the same address and port
/// (port 0: a port free for both).
async fn bind_pair(listen: SocketAddr) -> std::io::Result<(TcpListener, tokio::net::UdpSocket)> {
    let mut last = None;
    for _ in 0..20 {
        let l = TcpListener::bind(listen).await?;
        let a = l.local_addr()?;
        match tokio::net::UdpSocket::bind(a).await {
            Ok(u) => return Ok((l, u)),
            Err(e) if listen.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no port free for both TCP and UDP")))
}

/// The address we offer others as our host candidate: the listen address, or for a wildcard
/// listen address the local address the kernel would use towards the first bootstrap peer
/// (or the default route); loopback only when nothing better is known. No packet is sent.
pub fn advertised(a: SocketAddr, bootstrap: &[SocketAddr]) -> SocketAddr {
    if !a.ip().is_unspecified() {
        return a;
    }
    let towards = bootstrap
        .first()
        .copied()
        .unwrap_or_else(|| SocketAddr::from(([192, 0, 2, 1], 9)));
    let ip = std::net::UdpSocket::bind(SocketAddr::new(a.ip(), 0))
        .and_then(|u| u.connect(towards).and_then(|()| u.local_addr()))
        .map(|l| l.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    SocketAddr::new(ip, a.port())
}

fn load_cache(p: &std::path::Path) -> Vec<SocketAddr> {
    std::fs::read_to_string(p)
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// One link's bookkeeping in the driver.
struct LinkState {
    tx: Option<mpsc::Sender<Vec<u8>>>,
    peer: Option<NodeId>,
    addr: SocketAddr,
    outgoing: bool,
    srtt_ms: Option<f64>,
    rto_ms: f64,
    failing: bool,
    task: Option<tokio::task::JoinHandle<()>>,
    /// "tls" or "dtls".
    proto: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_address() {
        let l: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        assert_eq!(advertised(l, &[]), l);
        let any: SocketAddr = "0.0.0.0:7000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(advertised(any, &[b]), l);
    }

    #[test]
    fn method_names() {
        assert_eq!(code_name(9), "fetch");
        assert_eq!(code_name(10), "fetch");
        assert_eq!(method_of(b"junk"), "undecodable");
    }
}

#[derive(Default)]
struct Metrics {
    msgs_in: BTreeMap<String, u64>,
    msgs_out: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    bytes_in: u64,
    bytes_out: u64,
    rtt_buckets: [u64; 10],
    rtt_sum_ms: f64,
    rtt_count: u64,
    links_failed: u64,
}

const RTT_BOUNDS_MS: [f64; 9] = [0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 500.0];

/// The RELOAD method name of a message (for metrics): its message code.
fn method_of(bytes: &[u8]) -> String {
    let mut r = reload::codec::Reader::new(bytes);
    if reload::wire::header::ForwardingHeader::read_with_length(&mut r).is_err() {
        return "undecodable".into();
    }
    match r.u16("message_code") {
        Ok(c) => code_name(c).into(),
        Err(_) => "undecodable".into(),
    }
}

fn code_name(c: u16) -> &'static str {
    match c {
        1 | 2 => "probe",
        3 | 4 => "attach",
        7 | 8 => "store",
        9 | 10 => "fetch",
        13 | 14 => "find",
        15 | 16 => "join",
        17 | 18 => "leave",
        19 | 20 => "update",
        21 | 22 => "route_query",
        23 | 24 => "ping",
        25 | 26 => "stat",
        29 | 30 => "app_attach",
        33 | 34 => "config_update",
        0xffff => "error",
        _ => "other",
    }
}

struct Driver {
    ice: ice::SharedIce,
    host: SocketAddr,
    srflx_seen: Option<SocketAddr>,
    /// Peers whose Attach we answered lately (crossing Attaches: see `Report::Checked`).
    attached_by: HashMap<NodeId, std::time::Instant>,
    relay: Option<Arc<turn::Relay>>,
    relayed_seen: Option<SocketAddr>,
    udp: Arc<turn::UdpOut>,
    routes: dtls::Routes,
    dtls_tx: mpsc::Sender<dtls::Report>,
    dtls_rx: mpsc::Receiver<dtls::Report>,
    node: Node,
    cfg: OverlayConfig,
    identity: Arc<Identity>,
    listener: TcpListener,
    cmds: mpsc::Receiver<Command>,
    events: mpsc::Receiver<Arrival>,
    ev_tx: mpsc::Sender<Arrival>,
    tls_client: Arc<rustls::ClientConfig>,
    tls_server: Arc<rustls::ServerConfig>,
    next_link: u64,
    links: BTreeMap<LinkId, LinkState>,
    waiting: HashMap<RequestId, Waiting>,
    cache: Vec<SocketAddr>,
    metrics: Metrics,
    leaving: Option<oneshot::Sender<()>>,
    joined: Arc<std::sync::atomic::AtomicBool>,
    /// RFC 7363 self-tuning of the stabilization interval (`overlay.self_tuning`).
    tuner: Option<self_tune::SelfTuner>,
    /// calls: the application socket's view of AppAttach ICE sessions.
    app_ice: app_ice::AppIce,
}

/// Where an application request's answer goes.
enum ReplyTo {
    /// Store/Fetch: the result only.
    Plain(oneshot::Sender<Result<Outcome, RequestError>>),
    /// Diagnostics: the result and the overlay hops.
    WithHops(oneshot::Sender<(Result<Outcome, RequestError>, u32)>),
}

/// An application request in flight: where its answer goes, and its transaction span.
struct Waiting {
    reply: ReplyTo,
    started: std::time::Instant,
    span: tracing::Span,
}

/// Reports an authenticated link as up, then runs it, forwarding its events to the driver.
async fn serve_link<S>(
    tls: S,
    link: LinkId,
    peer: NodeId,
    ev: mpsc::Sender<Arrival>,
    outgoing: mpsc::Receiver<Vec<u8>>,
    max: usize,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if ev.send(Arrival::Up { link, peer }).await.is_err() {
        return;
    }
    let (ltx, mut lrx) = mpsc::channel(256);
    tokio::spawn(async move {
        while let Some(e) = lrx.recv().await {
            if ev.send(Arrival::Link(e)).await.is_err() {
                break;
            }
        }
    });
    link::run(tls, link, outgoing, ltx, max).await;
}

/// What link and handshake tasks report.
enum Arrival {
    Link(LinkEvent),
    Up {
        link: LinkId,
        peer: NodeId,
    },
    ConnectFailed {
        link: LinkId,
        peer: Option<NodeId>,
        addr: SocketAddr,
        why: String,
    },
}

impl Driver {
    async fn run(mut self) {
        self.node.start(now());
        loop {
            self.flush();
            if let Some(reply) = self.leaving.take() {
                self.finish_leave(reply).await;
                return;
            }
            let wake = self.node.poll_timeout().map(|t| {
                let d = t.0.saturating_sub(now().0);
                tokio::time::Instant::now() + Duration::from_millis(d)
            });
            let timer = async {
                match wake {
                    Some(w) => tokio::time::sleep_until(w).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                cmd = self.cmds.recv() => match cmd {
                    Some(c) => { self.refresh_candidates(); self.command(c) }
                    None => { self.node.leave(now()); self.flush(); return; }
                },
                ev = self.events.recv() => if let Some(ev) = ev {
                    self.refresh_candidates();
                    self.arrival(ev)
                },
                r = self.dtls_rx.recv() => if let Some(r) = r {
                    self.refresh_candidates();
                    self.dtls_report(r)
                },
                acc = self.listener.accept() => match acc {
                    Ok((sock, addr)) => self.accepted(sock, addr),
                    Err(e) => tracing::warn!("overlay accept failed: {e}"),
                },
                _ = timer => {
                    self.refresh_candidates();
                    let t = now();
                    if self.node.poll_timeout().is_some_and(|w| w <= t) {
                        self.node.handle_input(t, Input::Timeout);
                    }
                }
            }
            self.self_tune(now().0);
        }
    }

    /// Sends Leave, lets the links write it, closes them.
    async fn finish_leave(&mut self, reply: oneshot::Sender<()>) {
        let mut tasks = Vec::new();
        for (_, l) in std::mem::take(&mut self.links) {
            drop(l.tx);
            if let Some(t) = l.task {
                tasks.push(t);
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            for t in tasks {
                let _ = t.await;
            }
        })
        .await;
        tracing::info!("left the overlay");
        let _ = reply.send(());
    }

    fn command(&mut self, c: Command) {
        let t = now();
        match c {
            Command::Store {
                resource,
                kind,
                values,
                reply,
            } => {
                let span = tracing::debug_span!("overlay_tx", method = "store", resource = %resource, kind);
                let r = span.in_scope(|| self.node.store(t, resource, kind, values));
                self.waiting.insert(
                    r,
                    Waiting {
                        reply: ReplyTo::Plain(reply),
                        started: std::time::Instant::now(),
                        span,
                    },
                );
            }
            Command::Fetch {
                resource,
                specifiers,
                reply,
            } => {
                let span =
                    tracing::debug_span!("overlay_tx", method = "fetch", resource = %resource);
                let r = span.in_scope(|| self.node.fetch(t, resource, specifiers));
                self.waiting.insert(
                    r,
                    Waiting {
                        reply: ReplyTo::Plain(reply),
                        started: std::time::Instant::now(),
                        span,
                    },
                );
            }
            Command::Find {
                resource,
                kinds,
                reply,
            } => {
                let span =
                    tracing::debug_span!("overlay_tx", method = "find", resource = %resource);
                let r = span.in_scope(|| self.node.find(t, resource, kinds));
                self.waiting.insert(
                    r,
                    Waiting {
                        reply: ReplyTo::Plain(reply),
                        started: std::time::Instant::now(),
                        span,
                    },
                );
            }
            Command::Ping { dest, reply } => {
                let span = tracing::debug_span!("overlay_tx", method = "ping");
                let r = span.in_scope(|| self.node.ping(t, dest));
                self.waiting.insert(
                    r,
                    Waiting {
                        reply: ReplyTo::WithHops(reply),
                        started: std::time::Instant::now(),
                        span,
                    },
                );
            }
            Command::PathTrack {
                via,
                target,
                request,
                reply,
            } => {
                let span = tracing::debug_span!("overlay_tx", method = "path_track");
                let r = span.in_scope(|| self.node.path_track(t, via, target, request));
                self.waiting.insert(
                    r,
                    Waiting {
                        reply: ReplyTo::WithHops(reply),
                        started: std::time::Instant::now(),
                        span,
                    },
                );
            }
            Command::NextHop { key, reply } => {
                let table = self.node.table();
                let me = self.node.id();
                let hop = if table.is_responsible(key) {
                    me
                } else {
                    table.next_hop(key).unwrap_or(me)
                };
                let _ = reply.send(hop);
            }
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::ForgetCertificates(reply) => {
                tracing::info!("forgetting the peer certificates verified so far");
                self.node.forget_certificates();
                let _ = reply.send(());
            }
            Command::Metrics(reply) => {
                let _ = reply.send(self.prometheus());
            }
            Command::RegisterApplication { application, addrs } => {
                self.node.register_application(application, addrs);
            }
            Command::AppAttachIce {
                peer,
                application,
                reply,
            } => {
                let span = tracing::debug_span!("overlay_tx", method = "app_attach");
                let (r, creds) = span.in_scope(|| self.node.app_attach_ice(t, peer, application));
                self.app_ice.issued(&creds);
                let (tx, rx) = oneshot::channel();
                self.waiting.insert(
                    r,
                    Waiting {
                        reply: ReplyTo::Plain(tx),
                        started: std::time::Instant::now(),
                        span,
                    },
                );
                tokio::spawn(async move {
                    if let Ok(res) = rx.await {
                        let _ = reply.send((creds, res));
                    }
                });
            }
            Command::AppCandidates {
                application,
                candidates,
            } => self
                .node
                .set_application_candidates(application, &candidates),
            Command::AppIceHook(h) => self.app_ice.set(h),
            Command::Leave(reply) => {
                tracing::info!("leaving the overlay");
                self.node.leave(t);
                self.leaving = Some(reply);
            }
        }
    }

    fn new_link(&mut self) -> LinkId {
        let l = LinkId(self.next_link);
        self.next_link += 1;
        l
    }

    /// Gives the engine our current candidates: the server-reflexive address and the TURN
    /// allocation are learned by other tasks, so this runs before every input, or an Attach
    /// built on that input would miss what was learned since the last one (a peer behind a
    /// NAT then never permits our NAT's address on its relay).
    fn refresh_candidates(&mut self) {
        if self.cfg.link == LinkProtocol::Dtls {
            let srflx = self.ice.lock().ok().and_then(|s| s.srflx);
            let relayed = self.relay.as_ref().and_then(|r| r.relayed());
            if srflx != self.srflx_seen || relayed != self.relayed_seen {
                self.srflx_seen = srflx;
                self.relayed_seen = relayed;
                self.node
                    .set_local_candidates(ice::local_candidates(self.host, srflx, relayed));
            }
        }
    }

    fn flush(&mut self) {
        self.refresh_candidates();
        // Sessions for the credentials of the Attaches about to go out, so the checks
        // coming back verify.
        while let Some((ufrag, pwd)) = self.node.poll_ice_credentials() {
            if let Ok(mut s) = self.ice.lock() {
                s.add_session(ice::Creds { ufrag, pwd });
            }
        }
        while let Some((peer, a, (ufrag, _))) = self.node.poll_attach_answered_ice() {
            if self.attached_by.len() >= 1024 {
                self.attached_by.clear();
            }
            self.attached_by.insert(peer, std::time::Instant::now());
            let targets: Vec<SocketAddr> = a
                .candidates
                .iter()
                .filter(|c| c.link == reload::wire::OverlayLinkType::DTLS_UDP_SR)
                .map(|c| c.addr)
                .collect();
            self.permit(&targets);
            if targets.is_empty() || self.cfg.link != LinkProtocol::Dtls {
                continue;
            }
            // The answerer's half of ICE: controlled, checks towards the requester's
            // candidates (which also opens our NAT towards it).
            let remote = ice::Creds {
                ufrag: a.ufrag.clone(),
                pwd: a.password.clone(),
            };
            if self
                .ice
                .lock()
                .is_ok_and(|mut s| s.set_remote(&ufrag, remote, false))
            {
                let agent = ice::IceAgent::new(self.udp.clone(), self.ice.clone());
                let cands = a.candidates.clone();
                tokio::spawn(async move {
                    if let Some((n, via_relay)) =
                        agent.run(ufrag, cands, Duration::from_secs(6)).await
                    {
                        tracing::debug!(
                            "ICE: {n} (through our relay: {via_relay}) nominated by Node-ID {}",
                            hex::encode(peer.to_array())
                        );
                    }
                });
            }
        }
        self.app_ice.flush(&mut self.node, self.relay.as_ref());
        while let Some(o) = self.node.poll_output() {
            match o {
                Output::Send { link, bytes } => {
                    let method = method_of(&bytes);
                    if let Some(tx) = self.links.get(&link).and_then(|l| l.tx.as_ref()) {
                        self.metrics.bytes_out += bytes.len() as u64;
                        *self.metrics.msgs_out.entry(method).or_default() += 1;
                        if tx.try_send(bytes).is_err() {
                            tracing::warn!(
                                ?link,
                                "link send queue full or closed: message dropped"
                            );
                        }
                    }
                }
                Output::Connect { peer, addr } => self.connect(peer, addr),
                Output::Disconnect { link } => {
                    if let Some(l) = self.links.remove(&link) {
                        tracing::debug!(?link, "closing link at the node's request");
                        drop(l.tx);
                    }
                }
                Output::Event(e) => self.event(e),
            }
        }
    }

    fn event(&mut self, e: Event) {
        match e {
            Event::Joined => {
                self.joined
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(
                    "joined overlay {} as Node-ID {}",
                    self.cfg.overlay,
                    hex::encode(self.identity.node_id.to_array())
                );
            }
            Event::Completed {
                request,
                result,
                hops,
            } => {
                if let Err(RequestError::Error { code, .. }) = &result {
                    *self.metrics.errors.entry(code.to_string()).or_default() += 1;
                } else if let Err(RequestError::Timeout) = &result {
                    *self.metrics.errors.entry("timeout".into()).or_default() += 1;
                }
                if let Some(w) = self.waiting.remove(&request) {
                    w.span.in_scope(|| {
                        tracing::debug!(
                            hops,
                            ms = w.started.elapsed().as_secs_f64() * 1000.0,
                            ok = result.is_ok(),
                            "overlay transaction finished"
                        )
                    });
                    match w.reply {
                        ReplyTo::Plain(tx) => {
                            let _ = tx.send(result);
                        }
                        ReplyTo::WithHops(tx) => {
                            let _ = tx.send((result, hops));
                        }
                    }
                }
            }
            Event::Left => {
                self.joined
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                tracing::info!("Leave sent to our neighbours");
            }
        }
    }

    /// Opens a link for the engine's Connect: over the candidates of the peer's Attach when
    /// there is one (connectivity checks for DTLS-UDP-SR, else its TLS candidate).
    fn connect(&mut self, peer: Option<NodeId>, addr: SocketAddr) {
        use reload::wire::OverlayLinkType as L;
        let cands = peer
            .and_then(|p| self.node.remote_attach(p))
            .map(|a| a.candidates.clone())
            .unwrap_or_default();
        let tls = cands
            .iter()
            .filter(|c| c.link == L::TLS_TCP_FH_NO_ICE)
            .max_by_key(|c| c.priority)
            .map(|c| c.addr);
        let has_dtls = cands.iter().any(|c| c.link == L::DTLS_UDP_SR);
        match (self.cfg.link, peer) {
            (LinkProtocol::Dtls, Some(p)) if has_dtls => {
                let addrs: Vec<SocketAddr> = cands.iter().map(|c| c.addr).collect();
                self.permit(&addrs);
                // The requester's half: controlling, it nominates (RFC 6940 6.5.1.9).
                let remote = self.node.remote_attach(p).map(|a| ice::Creds {
                    ufrag: a.ufrag.clone(),
                    pwd: a.password.clone(),
                });
                let session = self.node.local_ice(p).map(|(u, _)| u.clone()).filter(|u| {
                    remote.clone().is_some_and(|r| {
                        self.ice.lock().is_ok_and(|mut s| s.set_remote(u, r, true))
                    })
                });
                let agent = ice::IceAgent::new(self.udp.clone(), self.ice.clone());
                let tx = self.dtls_tx.clone();
                tokio::spawn(async move {
                    let nominated = match session {
                        Some(u) => agent.run(u, cands, Duration::from_secs(5)).await,
                        None => None,
                    };
                    let _ = tx
                        .send(dtls::Report::Checked {
                            peer: p,
                            nominated,
                            fallback: tls,
                            addr,
                        })
                        .await;
                });
            }
            (LinkProtocol::Dtls, None) => self.open_dtls(None, addr, true, None, false),
            _ => self.connect_tls(peer, tls.unwrap_or(addr)),
        }
    }

    /// Lets the addresses of a peer's candidates send to us through our TURN relay.
    fn permit(&self, addrs: &[SocketAddr]) {
        if let Some(r) = &self.relay {
            let ips: Vec<std::net::IpAddr> = addrs.iter().map(|a| a.ip()).collect();
            let (r, out) = (r.clone(), self.udp.clone());
            tokio::spawn(async move { r.permit(&out, ips).await });
        }
    }

    fn connect_tls(&mut self, peer: Option<NodeId>, addr: SocketAddr) {
        let link = self.new_link();
        let cfg = match crate::pki::tls::client_config(&self.identity, peer) {
            Ok(mut c) => {
                c.key_log = self.tls_client.key_log.clone();
                Arc::new(c)
            }
            Err(_) => self.tls_client.clone(),
        };
        let (tx, rx) = mpsc::channel(256);
        let ev = self.ev_tx.clone();
        let max = self.cfg.max_message_size;
        let overlay = self.cfg.overlay.clone();
        let span = tracing::info_span!("link", id = link.0, %addr, dir = "out");
        let task = tokio::spawn(
            async move {
                let fail = |why: String| Arrival::ConnectFailed {
                    link,
                    peer,
                    addr,
                    why,
                };
                let sock =
                    match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
                        .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => return ev.send(fail(format!("{e}"))).await.unwrap_or(()),
                        Err(_) => return ev.send(fail("timed out".into())).await.unwrap_or(()),
                    };
                let _ = sock.set_nodelay(true);
                let conn = TlsConnector::from(cfg);
                let tls = match tokio::time::timeout(
                    Duration::from_secs(5),
                    conn.connect(crate::pki::tls::link_server_name(), sock),
                )
                .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        let why = match peer {
                            Some(p) => format!(
                                "TLS handshake failed (we expected Node-ID {}): {e}",
                                hex::encode(p.to_array())
                            ),
                            None => format!("TLS handshake failed: {e}"),
                        };
                        return ev.send(fail(why)).await.unwrap_or(());
                    }
                    Err(_) => return ev.send(fail("TLS handshake timed out".into())).await.unwrap_or(()),
                };
                let ids = crate::pki::tls::peer_node_ids(tls.get_ref().1.peer_certificates(), &overlay);
                let got = match (peer, ids.first()) {
                    (Some(p), _) if ids.contains(&p) => p,
                    (Some(p), _) => {
                        let why = format!(
                            "peer at {addr} presented Node-ID(s) {:?} but we expected {}; closing the link",
                            ids.iter().map(|i| hex::encode(i.to_array())).collect::<Vec<_>>(),
                            hex::encode(p.to_array())
                        );
                        return ev.send(fail(why)).await.unwrap_or(());
                    }
                    (None, Some(f)) => *f,
                    (None, None) => {
                        return ev
                            .send(fail("peer certificate carries no Node-ID".into()))
                            .await
                            .unwrap_or(());
                    }
                };
                serve_link(tls, link, got, ev, rx, max).await;
            }
            .instrument(span),
        );
        self.links.insert(
            link,
            LinkState {
                tx: Some(tx),
                peer,
                addr,
                outgoing: true,
                srtt_ms: None,
                rto_ms: 1000.0,
                failing: false,
                task: Some(task),
                proto: "tls",
            },
        );
    }

    fn accepted(&mut self, sock: TcpStream, addr: SocketAddr) {
        let link = self.new_link();
        let _ = sock.set_nodelay(true);
        let acc = TlsAcceptor::from(self.tls_server.clone());
        let (tx, rx) = mpsc::channel(256);
        let ev = self.ev_tx.clone();
        let max = self.cfg.max_message_size;
        let overlay = self.cfg.overlay.clone();
        let span = tracing::info_span!("link", id = link.0, %addr, dir = "in");
        let task = tokio::spawn(
            async move {
                let tls = match tokio::time::timeout(Duration::from_secs(5), acc.accept(sock)).await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::info!(
                            "refused an overlay connection from {addr}: TLS handshake failed: {e}"
                        );
                        let _ = ev
                            .send(Arrival::Link(LinkEvent::Down {
                                link,
                                why: "handshake failed".into(),
                            }))
                            .await;
                        return;
                    }
                    Err(_) => {
                        let _ = ev
                            .send(Arrival::Link(LinkEvent::Down {
                                link,
                                why: "handshake timed out".into(),
                            }))
                            .await;
                        return;
                    }
                };
                let ids =
                    crate::pki::tls::peer_node_ids(tls.get_ref().1.peer_certificates(), &overlay);
                let Some(peer) = ids.first().copied() else {
                    let _ = ev
                        .send(Arrival::Link(LinkEvent::Down {
                            link,
                            why: "peer certificate carries no Node-ID".into(),
                        }))
                        .await;
                    return;
                };
                serve_link(tls, link, peer, ev, rx, max).await;
            }
            .instrument(span),
        );
        self.links.insert(
            link,
            LinkState {
                tx: Some(tx),
                peer: None,
                addr,
                outgoing: false,
                srtt_ms: None,
                rto_ms: 1000.0,
                failing: false,
                task: Some(task),
                proto: "tls",
            },
        );
    }

    fn arrival(&mut self, a: Arrival) {
        let t = now();
        match a {
            Arrival::Up { link, peer } => {
                let Some(l) = self.links.get_mut(&link) else {
                    return;
                };
                l.peer = Some(peer);
                tracing::info!(
                    link = link.0,
                    "link up with Node-ID {} at {}",
                    hex::encode(peer.to_array()),
                    l.addr
                );
                if l.outgoing && !self.cache.contains(&l.addr) {
                    self.cache.push(l.addr);
                    self.save_cache();
                }
                self.node.handle_input(t, Input::LinkUp { link, peer });
            }
            Arrival::ConnectFailed {
                link,
                peer,
                addr,
                why,
            } => {
                tracing::info!("cannot open an overlay link to {addr}: {why}");
                if self.links.remove(&link).is_some() {
                    self.node
                        .handle_input(t, Input::ConnectFailed { peer, addr });
                }
            }
            Arrival::Link(LinkEvent::Message { link, bytes }) => {
                if self.links.contains_key(&link) {
                    self.metrics.bytes_in += bytes.len() as u64;
                    *self.metrics.msgs_in.entry(method_of(&bytes)).or_default() += 1;
                    self.node.handle_input(t, Input::Message { link, bytes });
                }
            }
            Arrival::Link(LinkEvent::Rtt {
                link,
                sample_ms,
                srtt_ms,
                rto_ms,
            }) => {
                if let Some(l) = self.links.get_mut(&link) {
                    l.srtt_ms = Some(srtt_ms);
                    l.rto_ms = rto_ms;
                    l.failing = false;
                }
                let i = RTT_BOUNDS_MS
                    .iter()
                    .position(|b| sample_ms <= *b)
                    .unwrap_or(RTT_BOUNDS_MS.len());
                if let Some(b) = self.metrics.rtt_buckets.get_mut(i) {
                    *b += 1;
                }
                self.metrics.rtt_sum_ms += sample_ms;
                self.metrics.rtt_count += 1;
            }
            Arrival::Link(LinkEvent::Failing { link }) => {
                if let Some(l) = self.links.get_mut(&link) {
                    l.failing = true;
                }
            }
            Arrival::Link(LinkEvent::Down { link, why }) => {
                if let Some(l) = self.links.remove(&link)
                    && l.peer.is_some()
                {
                    tracing::info!(link = link.0, "link to {} down: {why}", l.addr);
                    self.metrics.links_failed += 1;
                    self.node.handle_input(t, Input::LinkDown { link });
                }
            }
        }
    }

    /// Starts a DTLS link task (we dial when `active`; else `first` is the peer's ClientHello).
    fn open_dtls(
        &mut self,
        peer: Option<NodeId>,
        addr: SocketAddr,
        active: bool,
        first: Option<Vec<u8>>,
        via_relay: bool,
    ) {
        let link = self.new_link();
        let (in_tx, in_rx) = mpsc::channel(256);
        if let Ok(mut r) = self.routes.lock() {
            if r.get(&(addr, via_relay)).is_some_and(|t| !t.is_closed()) {
                drop(r);
                tracing::info!("cannot open a DTLS link to {addr}: one exists already");
                if active {
                    self.node
                        .handle_input(now(), Input::ConnectFailed { peer, addr });
                }
                return;
            }
            r.insert((addr, via_relay), in_tx);
        }
        let (tx, rx) = mpsc::channel(256);
        let params = dtls::LinkParams {
            link,
            addr,
            active,
            expected: peer,
            identity: self.identity.clone(),
            max_message: self.cfg.max_message_size,
            first,
            sock: self.udp.clone(),
            routes: self.routes.clone(),
            via_relay,
            consent: self
                .ice
                .lock()
                .ok()
                .and_then(|mut s| s.bind_link(addr))
                .map(|u| (self.ice.clone(), u)),
        };
        let span = tracing::info_span!("link", id = link.0, %addr, dir = if active { "out" } else { "in" }, proto = "dtls");
        let task =
            tokio::spawn(dtls::run_link(params, in_rx, rx, self.dtls_tx.clone()).instrument(span));
        self.links.insert(
            link,
            LinkState {
                tx: Some(tx),
                peer: None,
                addr,
                outgoing: active,
                srtt_ms: None,
                rto_ms: 500.0,
                failing: false,
                task: Some(task),
                proto: if via_relay { "dtls-relayed" } else { "dtls" },
            },
        );
    }

    fn dtls_report(&mut self, r: dtls::Report) {
        match r {
            dtls::Report::Incoming {
                from,
                via_relay,
                first,
            } => match dtls::live_route(&self.routes, from, via_relay) {
                Some(tx) => {
                    let _ = tx.try_send(first);
                }
                None => self.open_dtls(None, from, false, Some(first), via_relay),
            },
            dtls::Report::Up { link, peer } => self.arrival(Arrival::Up { link, peer }),
            dtls::Report::Failed {
                link,
                peer,
                addr,
                why,
                outgoing,
            } => {
                if outgoing {
                    self.arrival(Arrival::ConnectFailed {
                        link,
                        peer,
                        addr,
                        why,
                    });
                } else {
                    tracing::info!("refused a DTLS association from {addr}: {why}");
                    self.links.remove(&link);
                }
            }
            dtls::Report::Link(e) => self.arrival(Arrival::Link(e)),
            dtls::Report::Checked {
                peer,
                nominated,
                fallback,
                addr,
            } => match (nominated, fallback) {
                // Crossing Attaches: both sides nominated and would both start a DTLS
                // handshake as client on the same address pair (glare). The side with the
                // lower Node-ID waits a little, so the other's ClientHello arrives first and
                // its link is the one that comes up.
                (Some((a, _)), _)
                    if self.identity.node_id < peer
                        && self
                            .attached_by
                            .remove(&peer)
                            .is_some_and(|t| t.elapsed() < Duration::from_secs(10)) =>
                {
                    tracing::debug!("ICE: crossing Attaches with {a}: DTLS handshake deferred");
                    let tx = self.dtls_tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        let _ = tx
                            .send(dtls::Report::Checked {
                                peer,
                                nominated,
                                fallback,
                                addr,
                            })
                            .await;
                    });
                }
                (Some((a, via_relay)), _) => {
                    let how = if via_relay {
                        " through our TURN relay"
                    } else {
                        ""
                    };
                    tracing::info!(
                        "ICE: nominated {a}{how} for Node-ID {}",
                        hex::encode(peer.to_array())
                    );
                    self.open_dtls(Some(peer), a, true, None, via_relay)
                }
                (None, Some(t)) => {
                    tracing::info!("ICE: no DTLS candidate answered; TLS fallback to {t}");
                    self.connect_tls(Some(peer), t)
                }
                (None, None) => {
                    tracing::info!("ICE: no candidate of {addr} answered");
                    self.node.handle_input(
                        now(),
                        Input::ConnectFailed {
                            peer: Some(peer),
                            addr,
                        },
                    );
                }
            },
        }
    }

    fn save_cache(&self) {
        if let Some(p) = &self.cfg.peer_cache {
            let mut s = String::new();
            // Keep the newest 32 addresses.
            for a in self.cache.iter().rev().take(32).rev() {
                s.push_str(&format!("{a}\n"));
            }
            if let Err(e) = std::fs::write(p, s) {
                tracing::warn!("cannot write the peer cache {}: {e}", p.display());
            }
        }
    }

    /// RFC 7363: re-derive the stabilization interval from the neighbour lists' churn.
    fn self_tune(&mut self, now_ms: u64) {
        let Some(tuner) = self.tuner.as_mut() else {
            return;
        };
        let table = self.node.table();
        let (preds, succs) = (table.predecessors().to_vec(), table.successors().to_vec());
        let ms = tuner.observe(now_ms, self.node.id(), &preds, &succs);
        if ms != self.node.update_interval_ms() {
            tracing::info!(
                "self-tuning: stabilization interval {} ms (estimated {} peers)",
                ms,
                tuner.estimated_n.round()
            );
            self.node.set_update_interval_ms(ms);
        }
    }

    fn status(&self) -> serde_json::Value {
        let hexid = |n: &NodeId| hex::encode(n.to_array());
        let table = self.node.table();
        let links: Vec<_> = self
            .links
            .iter()
            .map(|(id, l)| {
                serde_json::json!({
                    "id": id.0,
                    "peer": l.peer.as_ref().map(hexid),
                    "addr": l.addr.to_string(),
                    "direction": if l.outgoing { "out" } else { "in" },
                    "protocol": l.proto,
                    "state": if l.peer.is_none() { "connecting" } else if l.failing { "failing" } else { "up" },
                    "srtt_ms": l.srtt_ms,
                    "rto_ms": l.rto_ms,
                })
            })
            .collect();
        let st = self.node.stats();
        serde_json::json!({
            "node_id": hexid(&self.node.id()),
            "overlay": self.cfg.overlay,
            "user": self.cfg.user,
            "listen": self.listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            "listen_udp": self.udp.sock.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            "candidates": {
                "srflx": self.srflx_seen.map(|a| a.to_string()),
                "relayed": self.relayed_seen.map(|a| a.to_string()),
            },
            "joined": self.node.is_joined(),
            "successors": table.successors().iter().map(hexid).collect::<Vec<_>>(),
            "predecessors": table.predecessors().iter().map(hexid).collect::<Vec<_>>(),
            "fingers": table.finger_list().iter().map(hexid).collect::<Vec<_>>(),
            "links": links,
            "stored_resources": self.node.storage().resource_count(),
            "self_tuning": self.tuner.as_ref().map_or_else(
                || serde_json::json!({"enabled": false, "update_interval_ms": self.node.update_interval_ms()}),
                self_tune::status,
            ),
            "stats": {
                "decode_errors": st.decode_errors,
                "dropped": st.dropped,
                "errors_sent": st.errors_sent,
                "forwarded": st.forwarded,
                "duplicates": st.duplicates,
                "bad_signature": st.bad_signature,
                "impersonation": st.impersonation,
                "store_forbidden": st.store_forbidden,
                "certificates_cached": self.node.certificates_cached(),
                "certificates_published": self.node.certificates_published(),
                "certificate_fetches": st.cert_fetches,
                "certificate_fetches_failed": st.cert_fetch_failed,
                "held_for_certificates": st.cert_held,
                "certificate_hold_timeouts": st.cert_hold_timeouts,
            },
        })
    }

    fn prometheus(&self) -> String {
        use std::fmt::Write;
        let m = &self.metrics;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP p2psip_overlay_messages_in_total RELOAD messages received, by method.\n# TYPE p2psip_overlay_messages_in_total counter"
        );
        for (k, v) in &m.msgs_in {
            let _ = writeln!(s, "p2psip_overlay_messages_in_total{{method=\"{k}\"}} {v}");
        }
        let _ = writeln!(
            s,
            "# HELP p2psip_overlay_messages_out_total RELOAD messages sent, by method.\n# TYPE p2psip_overlay_messages_out_total counter"
        );
        for (k, v) in &m.msgs_out {
            let _ = writeln!(s, "p2psip_overlay_messages_out_total{{method=\"{k}\"}} {v}");
        }
        let _ = writeln!(
            s,
            "# HELP p2psip_overlay_request_errors_total Application requests that failed, by error code.\n# TYPE p2psip_overlay_request_errors_total counter"
        );
        for (k, v) in &m.errors {
            let _ = writeln!(s, "p2psip_overlay_request_errors_total{{code=\"{k}\"}} {v}");
        }
        let st = self.node.stats();
        let _ = writeln!(
            s,
            "# TYPE p2psip_overlay_errors_sent_total counter\np2psip_overlay_errors_sent_total {}",
            st.errors_sent
        );
        let _ = writeln!(
            s,
            "# TYPE p2psip_overlay_decode_errors_total counter\np2psip_overlay_decode_errors_total {}",
            st.decode_errors
        );
        let _ = writeln!(
            s,
            "# HELP p2psip_overlay_certificate_fetches_total Signers' certificates fetched from CERTIFICATE_BY_NODE.\n# TYPE p2psip_overlay_certificate_fetches_total counter\np2psip_overlay_certificate_fetches_total {}",
            st.cert_fetches
        );
        let _ = writeln!(
            s,
            "# TYPE p2psip_overlay_bytes_in_total counter\np2psip_overlay_bytes_in_total {}",
            m.bytes_in
        );
        let _ = writeln!(
            s,
            "# TYPE p2psip_overlay_bytes_out_total counter\np2psip_overlay_bytes_out_total {}",
            m.bytes_out
        );
        let _ = writeln!(
            s,
            "# HELP p2psip_overlay_links Open overlay links.\n# TYPE p2psip_overlay_links gauge\np2psip_overlay_links {}",
            self.links.len()
        );
        let _ = writeln!(
            s,
            "# TYPE p2psip_overlay_links_lost_total counter\np2psip_overlay_links_lost_total {}",
            m.links_failed
        );
        let _ = writeln!(
            s,
            "# HELP p2psip_overlay_stored_resources Resources stored here.\n# TYPE p2psip_overlay_stored_resources gauge\np2psip_overlay_stored_resources {}",
            self.node.storage().resource_count()
        );
        let _ = writeln!(
            s,
            "# HELP p2psip_overlay_link_rtt_ms Link RTT samples from framing ACKs.\n# TYPE p2psip_overlay_link_rtt_ms histogram"
        );
        let mut cum = 0;
        for (i, b) in RTT_BOUNDS_MS.iter().enumerate() {
            cum += m.rtt_buckets.get(i).copied().unwrap_or(0);
            let _ = writeln!(s, "p2psip_overlay_link_rtt_ms_bucket{{le=\"{b}\"}} {cum}");
        }
        let _ = writeln!(
            s,
            "p2psip_overlay_link_rtt_ms_bucket{{le=\"+Inf\"}} {}",
            m.rtt_count
        );
        let _ = writeln!(s, "p2psip_overlay_link_rtt_ms_sum {}", m.rtt_sum_ms);
        let _ = writeln!(s, "p2psip_overlay_link_rtt_ms_count {}", m.rtt_count);
        s
    }
}
