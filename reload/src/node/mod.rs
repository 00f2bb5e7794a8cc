//! The RELOAD peer as a sans-IO engine (RFC 6940): feed it [`Input`]s with the current
//! [`Time`], drain [`Output`]s with [`Node::poll_output`], and wake it at
//! [`Node::poll_timeout`]. Links are handles ([`LinkId`]); the driver owns sockets, TLS and
//! ICE. Routing is symmetric recursive (section 6.2), the topology CHORD-RELOAD (section 10),
//! storage section 7.
//!
//! A driver's loop, here with two peers wired back to back:
//!
//! ```
//! use reload::node::{Input, LinkId, Node, NodeConfig, Output, Time};
//! use reload::wire::NodeId;
//!
//! let a_addr = "10.0.0.1:6084".parse().unwrap();
//! let mut a = Node::new(
//!     NodeConfig { first_node: true, local_addr: a_addr, ..NodeConfig::default() },
//!     NodeId(1 << 120),
//!     1,
//! );
//! let mut b = Node::new(
//!     NodeConfig { bootstrap: vec![a_addr], ..NodeConfig::default() },
//!     NodeId(1 << 126),
//!     2,
//! );
//! let mut now = Time(0);
//! a.start(now);
//! b.start(now);
//! let link = LinkId(1);
//! for _ in 0..50 {
//!     let mut to_a = Vec::new();
//!     let mut to_b = Vec::new();
//!     while let Some(o) = b.poll_output() {
//!         match o {
//!             // Our "transport": any connect request gets the one link between a and b.
//!             Output::Connect { .. } => {
//!                 to_a.push(Input::LinkUp { link, peer: b.id() });
//!                 to_b.push(Input::LinkUp { link, peer: a.id() });
//!             }
//!             Output::Send { bytes, .. } => to_a.push(Input::Message { link, bytes }),
//!             _ => {}
//!         }
//!     }
//!     while let Some(o) = a.poll_output() {
//!         if let Output::Send { bytes, .. } = o {
//!             to_b.push(Input::Message { link, bytes });
//!         }
//!     }
//!     to_a.into_iter().for_each(|i| a.handle_input(now, i));
//!     to_b.into_iter().for_each(|i| b.handle_input(now, i));
//!     // Wake whoever asked for it.
//!     now = Time(now.0 + 10);
//!     if a.poll_timeout().is_some_and(|t| t <= now) { a.handle_input(now, Input::Timeout) }
//!     if b.poll_timeout().is_some_and(|t| t <= now) { b.handle_input(now, Input::Timeout) }
//! }
//! assert!(b.is_joined());
//! assert_eq!(a.table().successor(), Some(b.id()));
//! ```

pub mod app_attach;
mod certs;
pub mod config_update;
mod diag_ping;
pub mod fragment;
pub mod glue;
mod maintenance;
pub mod msg;
mod usage_hooks; // usages: RFC 7851 PathTrack/diagnostics (see usage_hooks.rs) // calls: AppAttach (RFC 6940 6.5.2), see app_attach.rs

use crate::crypto::{CryptoProvider, SignatureParts, Signer, TestCrypto};
use crate::storage::{
    self, DataValue, FetchKind, KindId, KindRegistry, Selector, Storage, StoreError, StoreKind,
    StoredValue, ValueKey,
};
use crate::topology::{ChordTable, dist, in_range};
use crate::wire::{ForwardingOption, NodeId, ResourceId, overlay_hash};
use msg::{Attach, Body, Candidate, ChordUpdate, Dest, Header, LeaveData, Security, error_code};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;

/// Milliseconds on the driver's clock. Storage times are taken from it, so a real driver
/// counts from the Unix epoch; the simulator starts wherever it likes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub u64);

impl Time {
    /// `self + ms`.
    #[must_use]
    pub fn plus_ms(self, ms: u64) -> Time {
        Time(self.0.saturating_add(ms))
    }
}

/// The crate's notion of an instant (virtual or real milliseconds).
pub type Instant = Time;

/// A link handle chosen by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u64);

/// Identifies an application request for its completion event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// Configuration of one peer (the parts of the overlay configuration it uses).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Overlay instance name.
    pub overlay: String,
    /// Configuration sequence number.
    pub config_sequence: u16,
    /// initial-ttl (default 100).
    pub initial_ttl: u8,
    /// overlay-reliability-timer in ms (default 3000).
    pub reliability_timer_ms: u64,
    /// End-to-end sends before giving up (5).
    pub max_sends: u32,
    /// Successors kept (3).
    pub successors: usize,
    /// Predecessors kept (3).
    pub predecessors: usize,
    /// Replicas per resource besides the primary (2).
    pub replicas: usize,
    /// chord-update-interval in ms (600 s).
    pub update_interval_ms: u64,
    /// How often fingers are pinged for liveness, in ms (chord-ping-interval, 3600 s).
    pub finger_ping_interval_ms: u64,
    /// This peer starts a new overlay instead of joining one.
    pub first_node: bool,
    /// Bootstrap peers.
    pub bootstrap: Vec<SocketAddr>,
    /// Our own address, offered as host candidate.
    pub local_addr: SocketAddr,
    /// The candidates our Attaches offer (empty: one TLS-TCP-FH-NO-ICE host candidate at
    /// `local_addr`). The driver may change them with [`Node::set_local_candidates`].
    pub local_candidates: Vec<Candidate>,
    /// ICE username fragment and password our Attaches carry (`None`: derived from the
    /// Node-ID).
    pub ice_credentials: Option<(Vec<u8>, Vec<u8>)>,
    /// Known Kinds.
    pub kinds: KindRegistry,
    /// Secret for the test crypto provider (simulator).
    pub test_secret: Vec<u8>,
    /// User name in our test certificate.
    pub user: Option<String>,
    /// MTU of the links in bytes: larger messages are fragmented (RFC 6940 6.7); 0 = never
    /// (stream links such as TLS/TCP).
    pub link_mtu: usize,
    /// Leave our certificate out of requests once it is stored in the overlay (receivers
    /// fetch it from CERTIFICATE_BY_NODE, RFC 6940 6.3.4, 8); answers always carry it.
    pub omit_certificates: bool,
    /// The signed overlay configuration document (RFC 6940 11.1), pushed with ConfigUpdate
    /// to peers whose configuration sequence is older (6.3.2.1); None: not pushed.
    pub config_document: Option<Vec<u8>>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            overlay: "overlay.invalid".into(),
            config_sequence: 1,
            initial_ttl: 100,
            reliability_timer_ms: 3000,
            max_sends: 5,
            successors: 3,
            predecessors: 3,
            replicas: 2,
            update_interval_ms: 600_000,
            finger_ping_interval_ms: 3_600_000,
            first_node: false,
            bootstrap: Vec::new(),
            local_addr: SocketAddr::from(([127, 0, 0, 1], 6084)),
            local_candidates: Vec::new(),
            ice_credentials: None,
            kinds: KindRegistry::default(),
            test_secret: b"p2psip-test".to_vec(),
            user: None,
            link_mtu: 0,
            omit_certificates: false,
            config_document: None,
        }
    }
}

/// What the driver tells the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A link (TLS/DTLS connection) to `peer` is up.
    LinkUp {
        /// Handle.
        link: LinkId,
        /// The authenticated peer.
        peer: NodeId,
    },
    /// A link went down.
    LinkDown {
        /// Handle.
        link: LinkId,
    },
    /// A connection we asked for could not be made.
    ConnectFailed {
        /// The peer we wanted, if known.
        peer: Option<NodeId>,
        /// Address tried.
        addr: SocketAddr,
    },
    /// A whole RELOAD message arrived on a link (framing already removed).
    Message {
        /// Handle.
        link: LinkId,
        /// Bytes.
        bytes: Vec<u8>,
    },
    /// The time from [`Node::poll_timeout`] has come.
    Timeout,
}

/// Why an application request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// No answer after all retransmissions (Error_Request_Timeout).
    Timeout,
    /// The overlay answered with an error.
    Error {
        /// RFC 6940 error code.
        code: u16,
        /// error_info.
        info: Vec<u8>,
    },
    /// The answer did not make sense.
    BadAnswer,
}

/// The result of an application request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Store succeeded: (kind, generation, replicas).
    Stored(Vec<(KindId, u64, Vec<NodeId>)>),
    /// Fetch answer (values whose signatures verified).
    Fetched(Vec<FetchKind>),
    /// Stat answer.
    Stat(Vec<msg::StatKind>),
    /// Find answer.
    Found(Vec<(KindId, ResourceId)>),
    /// Ping answered.
    Pong,
    /// RouteQuery answered (RFC 6940 6.4.2.4, 10.8): the responder's next hop.
    RouteQuery(NodeId),
    /// Probe answered (RFC 6940 6.4.2.5): the known info, in the requested order.
    Probe(Vec<crate::wire::ProbeInformation>),
    /// usages: a PathTrack (RFC 7851) answer: the responder's next hop and diagnostics.
    PathTrack(crate::wire::PathTrackAns),
    /// calls: an AppAttach answer (RFC 6940 6.5.2): the peer's candidates for the application.
    AppAttached(crate::wire::AppAttachReqAns),
    /// A Ping with the Diagnostic_Ping extension (RFC 7851) answered: the responder's
    /// diagnostics (an answer without the extension gives [`Outcome::Pong`]).
    DiagnosticPing(crate::wire::DiagnosticsResponse),
}

/// Application-visible events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// We joined the overlay.
    Joined,
    /// An application request finished.
    Completed {
        /// The request.
        request: RequestId,
        /// Overlay hops the answer took.
        hops: u32,
        /// Result.
        result: Result<Outcome, RequestError>,
    },
    /// We have left (graceful Leave sent).
    Left,
}

/// What the node asks the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send a message on a link.
    Send {
        /// Handle.
        link: LinkId,
        /// Bytes.
        bytes: Vec<u8>,
    },
    /// Open a link to `peer` (or to whoever is at `addr` when bootstrapping).
    Connect {
        /// Expected peer, if known.
        peer: Option<NodeId>,
        /// Address hint (first host candidate).
        addr: SocketAddr,
    },
    /// Close a link.
    Disconnect {
        /// Handle.
        link: LinkId,
    },
    /// Something for the application.
    Event(Event),
}

/// Signs StoredData `v` of `kind` at `resource` with `crypto` (RFC 6940 7.1): fills the
/// SignerIdentity, the signature and the certificates kept with the value.
pub fn sign_stored_value(
    crypto: &dyn CryptoProvider,
    resource: &ResourceId,
    kind: KindId,
    v: &mut StoredValue,
) {
    let (ih, ch) = crypto.identity();
    let certs = crypto.certificates();
    v.signature.identity_hash_alg = ih;
    v.signature.cert_hash = ch;
    let input = glue::stored_data_signature_input(resource, kind, v);
    let (h, s, value) = crypto.sign(&input);
    v.signature.hash_alg = h;
    v.signature.sig_alg = s;
    v.signature.value = value;
    v.certs = certs;
}

/// Counters for diagnostics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages that failed to decode.
    pub decode_errors: u64,
    /// Messages dropped for other reasons (no route, loop, bad signature...).
    pub dropped: u64,
    /// Error answers we sent.
    pub errors_sent: u64,
    /// Messages forwarded.
    pub forwarded: u64,
    /// Duplicate requests answered from the cache.
    pub duplicates: u64,
    /// Messages dropped because their signature did not verify (bad signature, unknown or
    /// untrusted certificate, foreign CA, expired) (RFC 6940 6.3.4).
    pub bad_signature: u64,
    /// Messages dropped because the originating Node-ID is not in the signer's certificate.
    pub impersonation: u64,
    /// Stores refused with Error_Forbidden (signature, access control, replica source).
    pub store_forbidden: u64,
    /// Fetched values dropped because their StoredData signature or policy check failed.
    pub fetch_values_dropped: u64,
    /// Fragments we sent (RFC 6940 6.7).
    pub fragments_sent: u64,
    /// Messages we reassembled from fragments.
    pub reassembled: u64,
    /// Incomplete messages dropped (reassembly timeout, too large, buffer full).
    pub reassembly_dropped: u64,
    /// Messages held until their signer's certificate was fetched.
    pub cert_held: u64,
    /// Certificate fetches sent (CERTIFICATE_BY_NODE).
    pub cert_fetches: u64,
    /// Certificate fetches that found no valid certificate.
    pub cert_fetch_failed: u64,
    /// Held messages dropped because their certificate did not come in time.
    pub cert_hold_timeouts: u64,
    /// Resources deleted because we left their replica set (RFC 6940 10.7.3).
    pub replicas_dropped: u64,
    /// Partitions found by the periodic check (RFC 6940 10.7.4.4).
    pub partitions_detected: u64,
    /// ConfigUpdates sent to peers with an older configuration (RFC 6940 6.3.2.1).
    pub config_updates_sent: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JoinState {
    Idle,
    Bootstrapping,
    WaitAp,
    Joining,
    Joined,
    Left,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    App(RequestId),
    BootstrapAttach,
    AttachNeighbor(NodeId),
    AttachFinger(usize),
    Join,
    Update(NodeId),
    Leave,
    Replicate,
    Refill,
    Liveness(NodeId),
    CertPublish,
    CertFetch(Vec<u8>),
    PartitionCheck(NodeId),
    ConfigPush,
}

#[derive(Debug)]
struct Pending {
    purpose: Purpose,
    header: Header,
    rest: Vec<u8>,
    sends: u32,
    next: Time,
    target: Option<NodeId>,
    via_link: Option<LinkId>,
}

/// ICE short-term credentials of an Attach: ufrag and password.
pub type IceCredentials = (Vec<u8>, Vec<u8>);

/// An answer kept for duplicate requests: expiry, code, body, certificates it needs.
type CachedAnswer = (Time, u16, Vec<u8>, Vec<Vec<u8>>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Retransmit(u64),
    Periodic,
    JoinRetry(u32),
    Housekeeping,
    CertRefresh,
    CertHold,
    ReplicaHoldDown,
}

/// A RELOAD peer.
#[derive(Debug)]
pub struct Node {
    cfg: NodeConfig,
    overlay: u32,
    me: NodeId,
    rng: ChaCha8Rng,
    crypto: Box<dyn CryptoProvider>,
    table: ChordTable,
    links: BTreeMap<LinkId, NodeId>,
    peer_links: BTreeMap<NodeId, LinkId>,
    bootstrap_links: BTreeSet<LinkId>,
    state: JoinState,
    started: Time,
    ap: Option<NodeId>,
    join_wait: BTreeSet<NodeId>,
    pending: HashMap<u64, Pending>,
    timers: BinaryHeap<Reverse<(Time, u64, Timer)>>,
    timer_seq: u64,
    answered: HashMap<u64, CachedAnswer>,
    answered_order: VecDeque<(Time, u64)>,
    attaching: BTreeSet<NodeId>,
    /// The Attach answers behind our Connects (for ICE in the driver).
    remote_attaches: BTreeMap<NodeId, Attach>,
    /// Attach requests we answered, for the driver.
    attach_answered: std::collections::VecDeque<(NodeId, Attach, IceCredentials)>,
    /// ICE credentials (ufrag, password) of our Attaches, newest last, for the driver.
    ice_issued: VecDeque<IceCredentials>,
    /// Our credentials in the Attach requests still in flight, by transaction id.
    ice_by_txid: VecDeque<(u64, IceCredentials)>,
    /// Our credentials in the Attach exchange behind each peer's link (requests answered
    /// and answers received).
    local_ice: BTreeMap<NodeId, IceCredentials>,
    want_update_on_link: BTreeSet<NodeId>,
    finger_wait: BTreeMap<NodeId, Vec<usize>>,
    dead: BTreeMap<NodeId, Time>,
    storage: Storage,
    out: VecDeque<Output>,
    next_request: u64,
    last_storage_time: u64,
    periodic_armed: bool,
    join_epoch: u32,
    periodic_round: u32,
    stats: Stats,
    reassembly: fragment::Reassembler,
    cert_store: certs::CertStore,
    certs_published: bool,
    apps: app_attach::Apps,
    partition_probe: Option<Time>,
    replica_hold_down: Option<Time>,
    left_reported: bool,
    leaves_after_answer: Vec<(NodeId, LeaveData)>,
    config_update: Option<Vec<u8>>,
}

const DUP_CACHE_MS: u64 = 15_000;
const DEAD_HOLD_MS: u64 = 60_000;
const HOUSEKEEPING_MS: u64 = 10_000;

/// Certificates of the StoredData a body carries (they travel in the SecurityBlock).
fn value_certs(body: &Body) -> Vec<Vec<u8>> {
    let mut certs: Vec<Vec<u8>> = Vec::new();
    let values: Box<dyn Iterator<Item = &StoredValue>> = match body {
        Body::FetchAns(kinds) => Box::new(kinds.iter().flat_map(|k| k.values.iter())),
        Body::StoreReq { kinds, .. } => Box::new(kinds.iter().flat_map(|k| k.values.iter())),
        _ => Box::new(std::iter::empty()),
    };
    for v in values {
        for c in &v.certs {
            if !certs.contains(c) {
                certs.push(c.clone());
            }
        }
    }
    certs
}

fn error_name(code: u16) -> &'static str {
    match code {
        error_code::FORBIDDEN => "Error_Forbidden",
        error_code::NOT_FOUND => "Error_Not_Found",
        error_code::TTL_EXCEEDED => "Error_TTL_Exceeded",
        error_code::UNKNOWN_KIND => "Error_Unknown_Kind",
        error_code::INVALID_MESSAGE => "Error_Invalid_Message",
        _ => "error",
    }
}

impl Node {
    /// A peer with Node-ID `id`, the test crypto provider and randomness from `rng_seed`.
    #[must_use]
    pub fn new(config: NodeConfig, id: NodeId, rng_seed: u64) -> Self {
        let crypto = TestCrypto::new(&config.test_secret, id, config.user.clone());
        Self::with_crypto(config, id, rng_seed, Box::new(crypto))
    }

    /// A peer with an explicit crypto provider.
    #[must_use]
    pub fn with_crypto(
        config: NodeConfig,
        id: NodeId,
        rng_seed: u64,
        crypto: Box<dyn CryptoProvider>,
    ) -> Self {
        let table = ChordTable::new(id, config.successors, config.predecessors);
        Self {
            overlay: overlay_hash(&config.overlay),
            me: id,
            rng: ChaCha8Rng::seed_from_u64(rng_seed),
            crypto,
            table,
            links: BTreeMap::new(),
            peer_links: BTreeMap::new(),
            bootstrap_links: BTreeSet::new(),
            state: JoinState::Idle,
            started: Time(0),
            ap: None,
            join_wait: BTreeSet::new(),
            pending: HashMap::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            answered: HashMap::new(),
            answered_order: VecDeque::new(),
            attaching: BTreeSet::new(),
            remote_attaches: BTreeMap::new(),
            attach_answered: std::collections::VecDeque::new(),
            ice_issued: VecDeque::new(),
            ice_by_txid: VecDeque::new(),
            local_ice: BTreeMap::new(),
            want_update_on_link: BTreeSet::new(),
            finger_wait: BTreeMap::new(),
            dead: BTreeMap::new(),
            storage: Storage::new(),
            out: VecDeque::new(),
            next_request: 1,
            last_storage_time: 0,
            periodic_armed: false,
            join_epoch: 0,
            periodic_round: 0,
            stats: Stats::default(),
            reassembly: fragment::Reassembler::default(),
            cert_store: certs::CertStore::default(),
            certs_published: false,
            apps: app_attach::Apps::default(),
            partition_probe: None,
            replica_hold_down: None,
            left_reported: false,
            leaves_after_answer: Vec::new(),
            config_update: None,
            cfg: config,
        }
    }

    /// Our Node-ID.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.me
    }

    /// The current chord-update-interval (stabilization period) in ms.
    #[must_use]
    pub fn update_interval_ms(&self) -> u64 {
        self.cfg.update_interval_ms
    }

    /// Sets the chord-update-interval (self-tuning, RFC 7363); it takes effect from the next
    /// periodic round.
    pub fn set_update_interval_ms(&mut self, ms: u64) {
        self.cfg.update_interval_ms = ms.max(1);
    }

    /// The routing table.
    #[must_use]
    pub fn table(&self) -> &ChordTable {
        &self.table
    }

    /// Stored data.
    #[must_use]
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Diagnostic counters.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// True once the Join completed (or we are the first node).
    #[must_use]
    pub fn is_joined(&self) -> bool {
        self.state == JoinState::Joined
    }

    /// A one-line summary of the join state (for debugging).
    #[must_use]
    pub fn debug_state(&self) -> String {
        format!(
            "{:?} ap={:?} wait={:?} attaching={:?} pending={:?} links={:?}",
            self.state,
            self.ap,
            self.join_wait,
            self.attaching,
            self.pending
                .values()
                .map(|p| (&p.purpose, p.sends))
                .collect::<Vec<_>>(),
            self.links.values().collect::<Vec<_>>()
        )
    }

    /// Number of open links.
    #[must_use]
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// Starts the node: the first node owns the ring at once, others contact a bootstrap peer.
    pub fn start(&mut self, now: Time) {
        self.started = now;
        self.arm(now.plus_ms(HOUSEKEEPING_MS), Timer::Housekeeping);
        if self.cfg.first_node {
            self.become_joined(now);
        } else {
            self.bootstrap(now);
        }
    }

    /// (Re)starts joining: through a bootstrap link that is still up if there is one (dialling
    /// the same address anew may be refused by the transport: one DTLS association per
    /// address), else by connecting to a configured bootstrap address.
    fn bootstrap(&mut self, now: Time) {
        self.state = JoinState::Bootstrapping;
        self.table.clear();
        let live = self
            .bootstrap_links
            .iter()
            .find_map(|l| self.links.get(l).map(|p| (*l, *p)));
        self.bootstrap_links.clear();
        if let Some((link, peer)) = live {
            self.arm_join_retry(now);
            self.on_link_up(now, link, peer);
            return;
        }
        if self.cfg.bootstrap.is_empty() {
            return;
        }
        let i = self.rng.random_range(0..self.cfg.bootstrap.len());
        if let Some(addr) = self.cfg.bootstrap.get(i).copied() {
            self.out.push_back(Output::Connect { peer: None, addr });
        }
        self.arm_join_retry(now);
    }

    /// Starts a new join attempt epoch and arms its retry timer.
    fn arm_join_retry(&mut self, now: Time) {
        self.join_epoch = self.join_epoch.wrapping_add(1);
        self.arm(
            now.plus_ms(self.cfg.reliability_timer_ms * 20),
            Timer::JoinRetry(self.join_epoch),
        );
    }

    /// The next output, if any.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When the node next wants [`Input::Timeout`].
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Time> {
        self.timers.peek().map(|Reverse((t, _, _))| *t)
    }

    fn arm(&mut self, at: Time, t: Timer) {
        self.timer_seq += 1;
        self.timers.push(Reverse((at, self.timer_seq, t)));
    }

    /// Feeds one input.
    pub fn handle_input(&mut self, now: Time, input: Input) {
        self.crypto.set_time(now.0);
        match input {
            Input::LinkUp { link, peer } => self.on_link_up(now, link, peer),
            Input::LinkDown { link } => self.on_link_down(now, link),
            Input::ConnectFailed { peer, .. } => {
                if let Some(p) = peer {
                    self.attaching.remove(&p);
                    self.join_wait.remove(&p);
                    self.dead.insert(p, now);
                    self.maybe_send_join(now);
                } else if self.state == JoinState::Bootstrapping {
                    // The bootstrap peer is unreachable: try again (maybe another) soon.
                    self.join_epoch = self.join_epoch.wrapping_add(1);
                    self.arm(
                        now.plus_ms(self.cfg.reliability_timer_ms),
                        Timer::JoinRetry(self.join_epoch),
                    );
                }
            }
            Input::Message { link, bytes } => self.on_message(now, link, &bytes),
            Input::Timeout => self.on_timeout(now),
        }
    }

    // ----------------------------------------------------------------- application API

    fn new_request(&mut self) -> RequestId {
        let r = RequestId(self.next_request);
        self.next_request += 1;
        r
    }

    fn sign_value(&self, resource: &ResourceId, kind: KindId, v: &mut StoredValue) {
        sign_stored_value(self.crypto.as_ref(), resource, kind, v);
    }

    /// Stores already-signed `values` of `kind` at `resource` as they are (no re-signing):
    /// for a registrar refreshing what it stored, and for tests that play an attacker.
    /// `replica_number` > 0 sends a replica Store. Completion: [`Event::Completed`].
    #[must_use = "the RequestId identifies the completion event"]
    pub fn store_signed(
        &mut self,
        now: Time,
        resource: ResourceId,
        replica_number: u8,
        kind: KindId,
        values: Vec<StoredValue>,
    ) -> RequestId {
        let body = Body::StoreReq {
            resource: resource.clone(),
            replica_number,
            kinds: vec![StoreKind {
                kind,
                generation: 0,
                values,
            }],
        };
        self.app_request(now, resource, &body)
    }

    /// Stores `values` (position, value, lifetime in seconds) of `kind` at `resource`.
    /// Each value is signed by us with a fresh storage_time. Completion: [`Event::Completed`].
    #[must_use = "the RequestId identifies the completion event"]
    pub fn store(
        &mut self,
        now: Time,
        resource: ResourceId,
        kind: KindId,
        values: Vec<(ValueKey, DataValue, u32)>,
    ) -> RequestId {
        let req = self.new_request();
        let st = now.0.max(self.last_storage_time + 1);
        self.last_storage_time = st;
        let mut vals = Vec::new();
        for (key, value, lifetime) in values {
            let mut v = StoredValue {
                key,
                storage_time: st,
                lifetime,
                value,
                signature: SignatureParts::default(),
                certs: Vec::new(),
            };
            self.sign_value(&resource, kind, &mut v);
            vals.push(v);
        }
        let body = Body::StoreReq {
            resource: resource.clone(),
            replica_number: 0,
            kinds: vec![StoreKind {
                kind,
                generation: 0,
                values: vals,
            }],
        };
        self.send_request(
            now,
            vec![Dest::Resource(resource)],
            &body,
            Purpose::App(req),
        );
        req
    }

    /// Sends an application request routed to `resource`; its completion carries the id.
    fn app_request(&mut self, now: Time, resource: ResourceId, body: &Body) -> RequestId {
        let req = self.new_request();
        self.send_request(now, vec![Dest::Resource(resource)], body, Purpose::App(req));
        req
    }

    /// Fetches `specifiers` (kind, selector) at `resource`.
    #[must_use = "the RequestId identifies the completion event"]
    pub fn fetch(
        &mut self,
        now: Time,
        resource: ResourceId,
        specifiers: Vec<(KindId, Selector)>,
    ) -> RequestId {
        let body = Body::FetchReq {
            resource: resource.clone(),
            specifiers: specifiers.into_iter().map(|(k, s)| (k, 0, s)).collect(),
        };
        self.app_request(now, resource, &body)
    }

    /// Stat (metadata only) of `specifiers` at `resource`.
    #[must_use = "the RequestId identifies the completion event"]
    pub fn stat(
        &mut self,
        now: Time,
        resource: ResourceId,
        specifiers: Vec<(KindId, Selector)>,
    ) -> RequestId {
        let body = Body::StatReq {
            resource: resource.clone(),
            specifiers: specifiers.into_iter().map(|(k, s)| (k, 0, s)).collect(),
        };
        self.app_request(now, resource, &body)
    }

    /// Find: the closest stored Resource-ID per Kind at the peer responsible for `resource`.
    #[must_use = "the RequestId identifies the completion event"]
    pub fn find(&mut self, now: Time, resource: ResourceId, kinds: Vec<KindId>) -> RequestId {
        let body = Body::FindReq {
            resource: resource.clone(),
            kinds,
        };
        self.app_request(now, resource, &body)
    }

    /// RouteQuery (RFC 6940 6.4.2.4) sent to `via`: asks where it would route a message
    /// for `destination`; with `send_update` it also sends us a full Update afterwards.
    #[must_use = "the RequestId identifies the completion event"]
    pub fn route_query(
        &mut self,
        now: Time,
        via: Vec<Dest>,
        destination: Dest,
        send_update: bool,
    ) -> RequestId {
        let req = self.new_request();
        let body = Body::RouteQueryReq {
            send_update,
            destination,
        };
        self.send_request(now, via, &body, Purpose::App(req));
        req
    }

    /// Probe (RFC 6940 6.4.2.5) of the node at `dest` for `info` types.
    #[must_use = "the RequestId identifies the completion event"]
    pub fn probe(
        &mut self,
        now: Time,
        dest: Vec<Dest>,
        info: Vec<crate::wire::ProbeInformationType>,
    ) -> RequestId {
        let req = self.new_request();
        self.send_request(now, dest, &Body::ProbeReq(info), Purpose::App(req));
        req
    }

    /// Our share of the ID space in parts per billion: dist(predecessor, self) / 2^128 * 1e9
    /// (RFC 6940 6.4.2.5.2 responsible_set). Alone (no predecessor), the whole ring.
    fn responsible_ppb(&self) -> u32 {
        let Some(pred) = self.table.predecessor() else {
            return 1_000_000_000;
        };
        let d = self.me.0.wrapping_sub(pred.0);
        if d == 0 {
            return 1_000_000_000;
        }
        // d * 1e9 / 2^128 without overflow: use the top 64 bits of d.
        let top = (d >> 64) as u64;
        ((u128::from(top) * 1_000_000_000) >> 64) as u32
    }

    /// Pings whatever node is responsible for `dest`.
    #[must_use = "the RequestId identifies the completion event"]
    pub fn ping(&mut self, now: Time, dest: Vec<Dest>) -> RequestId {
        let req = self.new_request();
        self.send_request(now, dest, &Body::PingReq, Purpose::App(req));
        req
    }

    /// Leaves gracefully (RFC 6940 10.9): hands our data to our successor, sends Leave to
    /// every neighbour. The driver may drop the links once the outputs are sent.
    pub fn leave(&mut self, now: Time) {
        if self.state != JoinState::Joined {
            self.state = JoinState::Left;
            return;
        }
        // Hand over everything we are primary for (our choice; the RFC does not require it).
        if let (Some(succ), Some(pred)) = (self.table.successor(), self.table.predecessor()) {
            for r in self.storage.resources(|k| in_range(k, pred.0, self.me.0)) {
                self.replicate_resource(now, &r, succ, 1);
            }
        }
        let succs = self.table.successors().to_vec();
        let preds = self.table.predecessors().to_vec();
        for p in &preds {
            let body = Body::LeaveReq(self.me, LeaveData::FromSucc(succs.clone()));
            self.send_request(now, vec![Dest::Node(*p)], &body, Purpose::Leave);
        }
        for s in &succs {
            let body = Body::LeaveReq(self.me, LeaveData::FromPred(preds.clone()));
            self.send_request(now, vec![Dest::Node(*s)], &body, Purpose::Leave);
        }
        self.state = JoinState::Left;
        self.pending
            .retain(|_, p| p.purpose == Purpose::Leave || p.purpose == Purpose::Replicate);
        // Event::Left once every Leave is answered (or given up on).
        self.leave_progress();
    }

    // ----------------------------------------------------------------- links

    fn on_link_up(&mut self, now: Time, link: LinkId, peer: NodeId) {
        if peer == self.me || peer == NodeId::INVALID {
            self.out.push_back(Output::Disconnect { link });
            return;
        }
        if let Some(old) = self.peer_links.get(&peer).copied()
            && old != link
        {
            // Keep one link per peer; the older one may still deliver, so keep its mapping.
            self.links.insert(link, peer);
        } else {
            self.links.insert(link, peer);
            self.peer_links.insert(peer, link);
        }
        self.dead.remove(&peer);
        if self.state == JoinState::Bootstrapping && self.bootstrap_links.is_empty() {
            self.bootstrap_links.insert(link);
            self.state = JoinState::WaitAp;
            let target = ResourceId::from_u128(self.me.0.wrapping_add(1));
            let body = Body::AttachReq(self.attach_body(true, true));
            self.send_request_via(
                now,
                vec![Dest::Resource(target)],
                &body,
                Purpose::BootstrapAttach,
                Some(link),
            );
            return;
        }
        if self.state == JoinState::Joined
            && self.partition_probe.is_some()
            && !self.attaching.contains(&peer)
            && self.partition_probe_link(now, link, peer)
        {
            return;
        }
        let was_attaching = self.attaching.remove(&peer);
        if self.want_update_on_link.remove(&peer) {
            let body = Body::UpdateReq(self.full_update(now));
            self.send_request(now, vec![Dest::Node(peer)], &body, Purpose::Update(peer));
        }
        if let Some(slots) = self.finger_wait.remove(&peer) {
            for i in slots {
                self.table.set_finger(i, peer);
            }
        }
        if was_attaching {
            if self.join_wait.remove(&peer) {
                self.maybe_send_join(now);
            }
            if self.state == JoinState::Joined || self.state == JoinState::Joining {
                self.consider_neighbors(now, [peer]);
            }
        }
    }

    fn on_link_down(&mut self, now: Time, link: LinkId) {
        self.bootstrap_links.remove(&link);
        let Some(peer) = self.links.remove(&link) else {
            return;
        };
        if self.peer_links.get(&peer) == Some(&link) {
            self.peer_links.remove(&peer);
            // Another link to the same peer may remain.
            if let Some(l) = self
                .links
                .iter()
                .find(|(_, p)| **p == peer)
                .map(|(l, _)| *l)
            {
                self.peer_links.insert(peer, l);
                return;
            }
        } else {
            return;
        }
        self.peer_failed(now, peer);
    }

    fn peer_failed(&mut self, now: Time, peer: NodeId) {
        self.dead.insert(peer, now);
        self.attaching.remove(&peer);
        if self.join_wait.remove(&peer) {
            self.maybe_send_join(now);
        }
        if let Some(l) = self.peer_links.remove(&peer) {
            self.links.remove(&l);
            self.out.push_back(Output::Disconnect { link: l });
        }
        let old_succs = self.table.successors().to_vec();
        let old_preds = self.table.predecessors().to_vec();
        let was_replica = old_succs.iter().take(self.cfg.replicas).any(|s| *s == peer);
        let (changed, slots) = self.table.remove(peer);
        if changed && was_replica && self.state == JoinState::Joined {
            self.start_replica_hold_down(now);
        }
        if self.state == JoinState::WaitAp && self.ap == Some(peer) {
            self.bootstrap(now);
            return;
        }
        if self.state != JoinState::Joined {
            return;
        }
        if changed {
            // Pull replacements from the peers we still know (connected peers first).
            let cands: Vec<NodeId> = self.peer_links.keys().copied().collect();
            self.table.merge_neighbors(
                cands
                    .into_iter()
                    .filter(|c| old_succs.contains(c) || old_preds.contains(c)),
            );
            self.neighbors_changed(now, &old_succs, &old_preds);
            if self.table.successors().is_empty() && !self.peer_links.is_empty() {
                // Lost every successor: use any connected peer as a stand-in.
                let c: Vec<NodeId> = self.peer_links.keys().copied().collect();
                self.table.merge_neighbors(c);
            }
            if self.table.successors().is_empty() && !self.cfg.first_node {
                // Cut off from the overlay (RFC 6940 10.7.1): join again.
                self.bootstrap(now);
                return;
            }
        }
        for i in slots {
            self.search_finger(now, i);
        }
    }

    fn link_to(&self, peer: NodeId) -> Option<LinkId> {
        self.peer_links.get(&peer).copied()
    }

    // ----------------------------------------------------------------- sending

    fn attach_body(&mut self, request: bool, send_update: bool) -> Attach {
        // RFC 8445 5.3: fresh random credentials per ICE session (every Attach), at least
        // 24 bits of ufrag and 128 bits of password; ice-chars so they also fit SDP.
        let (ufrag, password) = self.cfg.ice_credentials.clone().unwrap_or_else(|| {
            const ICE_CHARS: &[u8] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let mut pick = |n: usize| -> Vec<u8> {
                (0..n)
                    .map(|_| ICE_CHARS[self.rng.random_range(0..ICE_CHARS.len())]) // ok: index < len
                    .collect()
            };
            (pick(8), pick(24))
        });
        if self.ice_issued.len() >= 256 {
            self.ice_issued.pop_front();
        }
        self.ice_issued.push_back((ufrag.clone(), password.clone()));
        Attach {
            ufrag,
            password,
            role: if request {
                b"passive".to_vec()
            } else {
                b"active".to_vec()
            },
            candidates: if self.cfg.local_candidates.is_empty() {
                vec![Candidate::tls_host(self.cfg.local_addr)]
            } else {
                self.cfg.local_candidates.clone()
            },
            send_update,
        }
    }

    /// Replaces the candidates our Attaches offer (the driver learns server-reflexive and
    /// relayed addresses after start).
    pub fn set_local_candidates(&mut self, candidates: Vec<Candidate>) {
        self.cfg.local_candidates = candidates;
    }

    /// The Attach (candidates and ICE credentials) of `peer` behind the last
    /// [`Output::Connect`] for it: the driver runs ICE over all of them.
    pub fn remote_attach(&self, peer: NodeId) -> Option<&Attach> {
        self.remote_attaches.get(&peer)
    }

    /// The next ICE credentials (ufrag, password) one of our Attaches carries: the driver
    /// takes them before sending the Attach, to verify the checks that come back.
    pub fn poll_ice_credentials(&mut self) -> Option<(Vec<u8>, Vec<u8>)> {
        self.ice_issued.pop_front()
    }

    /// Our ICE credentials (ufrag, password) in the Attach exchange with `peer` (the request
    /// we answered, or our request it answered).
    pub fn local_ice(&self, peer: NodeId) -> Option<&(Vec<u8>, Vec<u8>)> {
        self.local_ice.get(&peer)
    }

    /// The next Attach request we answered: the requester and its Attach (the driver lets
    /// ICE checks and NAT pinholes go towards its candidates). At most 64 are kept.
    pub fn poll_attach_answered(&mut self) -> Option<(NodeId, Attach)> {
        self.attach_answered.pop_front().map(|(n, a, _)| (n, a))
    }

    /// As [`Node::poll_attach_answered`], with our ICE credentials in that answer.
    pub fn poll_attach_answered_ice(&mut self) -> Option<(NodeId, Attach, IceCredentials)> {
        self.attach_answered.pop_front()
    }

    fn encode_signed(&mut self, txid: u64, body: &Body) -> Vec<u8> {
        let (code, body_bytes) = glue::encode_body(body);
        let contents = glue::encode_contents(code, &body_bytes);
        let certs = value_certs(body);
        let as_user = if self.may_omit_certificates(body) {
            let (ih, ch) = self.crypto.identity();
            Some((ih, ch, Vec::new()))
        } else {
            None
        };
        self.sign_contents_as(txid, contents, &certs, as_user)
    }

    fn send_request(&mut self, now: Time, dest: Vec<Dest>, body: &Body, purpose: Purpose) -> u64 {
        self.send_request_via(now, dest, body, purpose, None)
    }

    fn send_request_via(
        &mut self,
        now: Time,
        dest: Vec<Dest>,
        body: &Body,
        purpose: Purpose,
        via_link: Option<LinkId>,
    ) -> u64 {
        let txid: u64 = self.rng.random();
        let rest = self.encode_signed(txid, body);
        if let Body::AttachReq(a) = body {
            if self.ice_by_txid.len() >= 256 {
                self.ice_by_txid.pop_front();
            }
            self.ice_by_txid
                .push_back((txid, (a.ufrag.clone(), a.password.clone())));
        }
        let target = match dest.last() {
            Some(Dest::Node(n)) if *n != NodeId::WILDCARD => Some(*n),
            _ => None,
        };
        let header = Header {
            overlay: self.overlay,
            configuration_sequence: self.cfg.config_sequence,
            ttl: self.cfg.initial_ttl,
            transaction_id: txid,
            destination_list: dest,
            ..Header::default()
        };
        let p = Pending {
            purpose,
            header: header.clone(),
            rest: rest.clone(),
            sends: 1,
            next: now.plus_ms(self.cfg.reliability_timer_ms),
            target,
            via_link,
        };
        self.pending.insert(txid, p);
        self.arm(
            now.plus_ms(self.cfg.reliability_timer_ms),
            Timer::Retransmit(txid),
        );
        self.route(now, header, rest, None, via_link);
        txid
    }

    /// Routes a message whose destination list head is not yet examined. `from` is the peer
    /// it came from (None if we originated it).
    fn route(
        &mut self,
        now: Time,
        mut header: Header,
        rest: Vec<u8>,
        from: Option<NodeId>,
        force_link: Option<LinkId>,
    ) {
        loop {
            let Some(head) = header.destination_list.first().cloned() else {
                self.stats.dropped += 1;
                return;
            };
            match head {
                Dest::Node(n) if n == self.me || n == NodeId::WILDCARD => {
                    if header.destination_list.len() == 1 || n == NodeId::WILDCARD {
                        header.destination_list.drain(..);
                        self.deliver(now, header, rest, from);
                        return;
                    }
                    header.destination_list.remove(0);
                }
                Dest::OpaqueId(_) | Dest::Compressed(_) | Dest::Unknown { .. } => {
                    // We never issue opaque ids, so this one cannot be expanded.
                    self.stats.dropped += 1;
                    return;
                }
                Dest::Node(n) => {
                    if let Some(l) = force_link.or_else(|| self.link_to(n)) {
                        self.transmit(l, header, &rest);
                        return;
                    }
                    if self.state == JoinState::Joined && self.table.is_responsible(n.0) {
                        // A foreign Node-ID that falls in our range: nobody to give it to.
                        self.stats.dropped += 1;
                        return;
                    }
                    self.forward_by_key(now, n.0, header, rest, from);
                    return;
                }
                Dest::Resource(r) => {
                    let Some(k) = r.as_u128() else {
                        self.stats.dropped += 1;
                        return;
                    };
                    if let Some(l) = force_link {
                        self.transmit(l, header, &rest);
                        return;
                    }
                    if self.state == JoinState::Joined && self.table.is_responsible(k) {
                        if header.destination_list.len() == 1 {
                            header.destination_list.drain(..);
                            self.deliver(now, header, rest, from);
                        } else {
                            self.stats.dropped += 1;
                        }
                        return;
                    }
                    self.forward_by_key(now, k, header, rest, from);
                    return;
                }
            }
        }
    }

    fn forward_by_key(
        &mut self,
        _now: Time,
        k: u128,
        header: Header,
        rest: Vec<u8>,
        from: Option<NodeId>,
    ) {
        let next = self
            .table
            .next_hop(k)
            .filter(|n| Some(*n) != from || self.table.successors().len() <= 1)
            .or_else(|| self.table.next_hop(k));
        let link = next.and_then(|n| self.link_to(n)).or_else(|| {
            // Not joined yet: anything goes through the bootstrap link.
            if self.state != JoinState::Joined {
                self.bootstrap_links.iter().next().copied()
            } else {
                None
            }
        });
        match link {
            Some(l) => self.transmit(l, header, &rest),
            None => self.stats.dropped += 1,
        }
    }

    fn transmit(&mut self, link: LinkId, mut header: Header, rest: &[u8]) {
        header.ttl = header.ttl.saturating_sub(1);
        if self.cfg.link_mtu > 0 {
            let base = header.fragment_offset();
            let last = header.is_last_fragment();
            let header_len = glue::encode_message(self.overlay, header.clone(), &[]).len();
            if let Some(parts) =
                fragment::split(header_len, rest.len(), base, last, self.cfg.link_mtu)
            {
                self.stats.fragments_sent += parts.len() as u64;
                for (field, range) in parts {
                    let mut h = header.clone();
                    h.fragment = field;
                    let chunk = rest.get(range).unwrap_or_default();
                    let bytes = glue::encode_message(self.overlay, h, chunk);
                    self.out.push_back(Output::Send { link, bytes });
                }
                return;
            }
        }
        let bytes = glue::encode_message(self.overlay, header, rest);
        self.out.push_back(Output::Send { link, bytes });
    }

    // ----------------------------------------------------------------- receiving

    fn on_message(&mut self, now: Time, link: LinkId, bytes: &[u8]) {
        let Some(from) = self.links.get(&link).copied() else {
            self.stats.dropped += 1;
            return;
        };
        let (header, rest) = match glue::decode_header_or_fragment(bytes, self.overlay) {
            Ok(x) => x,
            Err(_) => {
                self.stats.decode_errors += 1;
                return;
            }
        };
        if !header.is_unfragmented() {
            if let Some((header, whole)) = self.on_fragment(now, from, header, rest) {
                self.on_whole_message(now, from, header, whole);
            }
            return;
        }
        let rest = rest.to_vec();
        self.on_whole_message(now, from, header, rest);
    }

    /// A fragment (RFC 6940 6.7): forwarded as it is unless we are its destination, where it
    /// waits in the holding buffer. Returns the whole message once the last piece is in.
    fn on_fragment(
        &mut self,
        now: Time,
        from: NodeId,
        mut header: Header,
        payload: &[u8],
    ) -> Option<(Header, Vec<u8>)> {
        while let Some(Dest::Node(n)) = header.destination_list.first() {
            if *n == self.me && header.destination_list.len() > 1 {
                header.destination_list.remove(0);
            } else {
                break;
            }
        }
        if self.is_local_dest(&header) {
            let r = self.reassembly.add(now, header, payload);
            self.stats.reassembled = self.reassembly.reassembled;
            self.stats.reassembly_dropped = self.reassembly.dropped;
            return r.ok().flatten();
        }
        // Not ours: whether it is a request is unknown here, so every fragment gets the same
        // treatment (each node a message traverses appends to the via list, 6.3.2.2).
        if header.ttl == 0 || header.via_list.contains(&Dest::Node(self.me)) {
            self.stats.dropped += 1;
            return None;
        }
        header.via_list.push(Dest::Node(from));
        self.stats.forwarded += 1;
        self.route(now, header, payload.to_vec(), Some(from), None);
        None
    }

    /// True when the head of the destination list names us (after our own ids are popped).
    fn is_local_dest(&self, header: &Header) -> bool {
        match header.destination_list.first() {
            Some(Dest::Node(n)) => *n == self.me || *n == NodeId::WILDCARD,
            Some(Dest::Resource(r)) => {
                header.destination_list.len() == 1
                    && self.state == JoinState::Joined
                    && r.as_u128().is_some_and(|k| self.table.is_responsible(k))
            }
            _ => false,
        }
    }

    /// A whole (unfragmented or reassembled) message from the link peer `from`.
    fn on_whole_message(&mut self, now: Time, from: NodeId, mut header: Header, rest: Vec<u8>) {
        let Some(code) = glue::peek_code(&rest) else {
            self.stats.decode_errors += 1;
            return;
        };
        let request = msg::is_request(code);
        // Duplicate destination entries indicate a loop (RFC 6940 13.6.5).
        let dup = header
            .destination_list
            .iter()
            .enumerate()
            .any(|(i, d)| header.destination_list.iter().skip(i + 1).any(|e| e == d));
        if dup {
            if request {
                self.reply_error(now, &header, Some(from), error_code::INVALID_MESSAGE, b"");
            } else {
                self.stats.dropped += 1;
            }
            return;
        }
        if header.ttl > self.cfg.initial_ttl {
            if request {
                self.reply_error(now, &header, Some(from), error_code::TTL_EXCEEDED, b"");
            }
            return;
        }
        // Pop our own id(s) and see whether the message is for us.
        while let Some(Dest::Node(n)) = header.destination_list.first() {
            if *n == self.me && header.destination_list.len() > 1 {
                header.destination_list.remove(0);
            } else {
                break;
            }
        }
        let local = self.is_local_dest(&header);
        if !local {
            if header.ttl == 0 {
                if request {
                    self.reply_error(now, &header, Some(from), error_code::TTL_EXCEEDED, b"");
                }
                return;
            }
            if request {
                if header.via_list.contains(&Dest::Node(self.me)) {
                    // We already forwarded this request once: a routing loop.
                    self.stats.dropped += 1;
                    return;
                }
                header.via_list.push(Dest::Node(from));
            }
            if !header.options.is_empty() {
                // FORWARD_CRITICAL options we do not know (RFC 6940 6.3.2.3).
                if header
                    .options
                    .iter()
                    .any(|o| o.flags & ForwardingOption::FORWARD_CRITICAL != 0)
                {
                    if request {
                        header.via_list.pop();
                        self.reply_error(
                            now,
                            &header,
                            Some(from),
                            error_code::UNSUPPORTED_FORWARDING_OPTION,
                            b"",
                        );
                    }
                    return;
                }
            }
            self.stats.forwarded += 1;
            self.route(now, header, rest, Some(from), None);
            return;
        }
        header.destination_list.drain(..);
        self.deliver(now, header, rest, Some(from));
    }

    /// A message addressed to us. `from` is the previous hop (None if we sent it to ourselves).
    fn deliver(&mut self, now: Time, header: Header, rest: Vec<u8>, from: Option<NodeId>) {
        let parsed = match glue::decode_rest(&rest) {
            Ok(p) => p,
            Err(_) => {
                self.stats.decode_errors += 1;
                return;
            }
        };
        // Verify the message signature (RFC 6940 6.3.4).
        let mut input = Vec::with_capacity(12 + parsed.contents.len() + 64);
        input.extend_from_slice(&self.overlay.to_be_bytes());
        input.extend_from_slice(&header.transaction_id.to_be_bytes());
        input.extend_from_slice(parsed.contents);
        input.extend_from_slice(&glue::encode_signer_identity(&parsed.security.signature));
        let sig = &parsed.security.signature;
        let certs = self.certs_with_cached(sig, &parsed.security.certs);
        let Some(signer) = self.crypto.verify(&input, sig, &certs) else {
            tracing::debug!(
                carried = parsed.security.certs.len(),
                request = msg::is_request(parsed.code),
                "signature does not verify"
            );
            if self.cert_missing(sig, &parsed.security.certs) {
                // Fetch the signer's certificate (RFC 6940 6.3.4, 8), then try again.
                let origin = match header.via_list.first() {
                    _ if !msg::is_request(parsed.code) => None,
                    Some(Dest::Node(n)) => Some(*n),
                    Some(_) => None,
                    None => from,
                };
                let sig = sig.clone();
                if self.hold_for_cert(now, &sig, origin, header, rest.clone(), from) {
                    return;
                }
            }
            self.stats.dropped += 1;
            self.stats.bad_signature += 1;
            return;
        };
        // A request's originator (first via entry, else the link peer) must be a Node-ID of
        // the signer's certificate: nobody speaks for a Node-ID it cannot prove (RFC 6940
        // 6.3.4, 13.3). Answers carry no via list here; they are checked against the
        // expected responder below.
        let origin = match header.via_list.first() {
            _ if !msg::is_request(parsed.code) => None,
            Some(Dest::Node(n)) => Some(*n),
            Some(_) => None,
            None => from,
        };
        if let Some(o) = origin
            && !signer.node_ids.contains(&o)
        {
            self.stats.dropped += 1;
            self.stats.impersonation += 1;
            return;
        }
        let request = msg::is_request(parsed.code);
        if request {
            if let Some((_, code, body, certs)) = self.answered.get(&header.transaction_id).cloned()
            {
                self.stats.duplicates += 1;
                self.send_answer_raw(now, &header, from, code, body, &certs);
                return;
            }
            if parsed.critical_unknown_extension {
                self.reply_error(now, &header, from, error_code::UNKNOWN_EXTENSION, b"");
                return;
            }
            if header
                .options
                .iter()
                .any(|o| o.flags & ForwardingOption::DESTINATION_CRITICAL != 0)
            {
                self.reply_error(
                    now,
                    &header,
                    from,
                    error_code::UNSUPPORTED_FORWARDING_OPTION,
                    b"",
                );
                return;
            }
            if !self.check_config_sequence(now, &header, from, parsed.code) {
                return;
            }
            if parsed.code == config_update::CONFIG_UPDATE_REQ {
                let body = parsed.body.clone();
                self.answer_config_update(now, &header, from, &body);
                return;
            }
            // RFC 7851 Diagnostic_Ping: a Ping carrying a DiagnosticsRequest (diag_ping.rs).
            if parsed.code == msg::code::PING_REQ
                && let Some(ext) = parsed.diagnostic_ping.as_deref()
            {
                let ext = ext.to_vec();
                self.answer_diagnostic_ping(now, &header, from, &ext);
                return;
            }
            // usages: begin (RFC 7851 PathTrack, answered in usage_hooks.rs)
            if parsed.code == usage_hooks::PATH_TRACK_REQ {
                let (code, bytes) = self.usage_path_track(now, &header, &parsed.body);
                self.remember_answer(now, header.transaction_id, code, bytes.clone(), &[]);
                self.send_answer_raw(now, &header, from, code, bytes, &[]);
                return;
            }
            // usages: end
            // calls: AppAttach (RFC 6940 6.5.2), answered in app_attach.rs
            if parsed.code == app_attach::APP_ATTACH_REQ {
                let sender = signer.node_ids.first().copied().unwrap_or(NodeId::INVALID);
                let (code, bytes) = self.usage_app_attach_from(sender, &parsed.body);
                self.remember_answer(now, header.transaction_id, code, bytes.clone(), &[]);
                self.send_answer_raw(now, &header, from, code, bytes, &[]);
                return;
            }
            let body = match glue::decode_body(
                parsed.code,
                &parsed.body,
                &self.cfg.kinds,
                &parsed.security.certs,
            ) {
                Ok(b) => b,
                Err(_) => {
                    self.reply_error(now, &header, from, error_code::INVALID_MESSAGE, b"");
                    return;
                }
            };
            let answer = self.handle_request(now, &header, from, &signer, body);
            if let Some(answer) = answer {
                let (code, bytes) = glue::encode_body(&answer);
                let certs = value_certs(&answer);
                self.remember_answer(now, header.transaction_id, code, bytes.clone(), &certs);
                self.send_answer_raw(now, &header, from, code, bytes, &certs);
            }
            for (leaving, data) in std::mem::take(&mut self.leaves_after_answer) {
                self.on_leave(now, leaving, data);
            }
            self.flush_wanted_updates(now);
        } else {
            let Some(p) = self.pending.remove(&header.transaction_id) else {
                return; // late duplicate answer
            };
            if let Some(t) = p.target
                && !signer.node_ids.contains(&t)
            {
                // An answer to a Node-ID must come from that Node-ID.
                self.pending.insert(header.transaction_id, p);
                self.stats.dropped += 1;
                return;
            }
            let hops = u32::from(self.cfg.initial_ttl.saturating_sub(header.ttl));
            if parsed.code == msg::code::PING_ANS
                && let (Some(ext), Purpose::App(request)) = (&parsed.diagnostic_ping, &p.purpose)
            {
                let result = Self::diagnostic_ping_outcome(ext).ok_or(RequestError::BadAnswer);
                let ev = Event::Completed {
                    request: *request,
                    hops,
                    result,
                };
                self.out.push_back(Output::Event(ev));
                return;
            }
            // usages: begin (RFC 7851 PathTrack answers become Outcome::PathTrack)
            if parsed.code == usage_hooks::PATH_TRACK_ANS
                && let Purpose::App(request) = p.purpose
            {
                let result =
                    Self::usage_path_track_answer(&parsed.body).ok_or(RequestError::BadAnswer);
                let ev = Event::Completed {
                    request,
                    hops,
                    result,
                };
                self.out.push_back(Output::Event(ev));
                return;
            }
            // usages: end
            // calls: AppAttach answers become Outcome::AppAttached
            if parsed.code == app_attach::APP_ATTACH_ANS
                && let Purpose::App(request) = p.purpose
            {
                let result =
                    Self::usage_app_attach_answer(&parsed.body).ok_or(RequestError::BadAnswer);
                let ev = Event::Completed {
                    request,
                    hops,
                    result,
                };
                self.out.push_back(Output::Event(ev));
                return;
            }
            let body = match glue::decode_body(
                parsed.code,
                &parsed.body,
                &self.cfg.kinds,
                &parsed.security.certs,
            ) {
                Ok(b) => b,
                Err(_) => Body::Error {
                    code: 0,
                    info: b"undecodable answer".to_vec(),
                },
            };
            self.handle_answer(now, p, &signer, hops, body);
        }
    }

    /// Sends the `full` Updates promised to Attach requesters that are now connected.
    fn flush_wanted_updates(&mut self, now: Time) {
        let ready: Vec<NodeId> = self
            .want_update_on_link
            .iter()
            .filter(|n| self.link_to(**n).is_some())
            .copied()
            .collect();
        for n in ready {
            self.want_update_on_link.remove(&n);
            let b = Body::UpdateReq(self.full_update(now));
            self.send_request(now, vec![Dest::Node(n)], &b, Purpose::Update(n));
        }
    }

    fn remember_answer(
        &mut self,
        now: Time,
        txid: u64,
        code: u16,
        body: Vec<u8>,
        certs: &[Vec<u8>],
    ) {
        let exp = now.plus_ms(DUP_CACHE_MS);
        self.answered
            .insert(txid, (exp, code, body, certs.to_vec()));
        self.answered_order.push_back((exp, txid));
    }

    fn answer_dest(header: &Header, from: Option<NodeId>) -> Vec<Dest> {
        let mut d: Vec<Dest> = Vec::with_capacity(header.via_list.len() + 1);
        if let Some(f) = from {
            d.push(Dest::Node(f));
        }
        d.extend(header.via_list.iter().rev().cloned());
        d
    }

    fn send_answer_raw(
        &mut self,
        now: Time,
        req: &Header,
        from: Option<NodeId>,
        code: u16,
        body: Vec<u8>,
        certs: &[Vec<u8>],
    ) {
        let contents = glue::encode_contents(code, &body);
        self.send_answer_contents(now, req, from, contents, certs);
    }

    /// Signs and routes an answer whose MessageContents are already encoded.
    fn send_answer_contents(
        &mut self,
        now: Time,
        req: &Header,
        from: Option<NodeId>,
        contents: Vec<u8>,
        certs: &[Vec<u8>],
    ) {
        let rest = self.sign_contents(req.transaction_id, contents, certs);
        let header = Header {
            overlay: self.overlay,
            configuration_sequence: self.cfg.config_sequence,
            ttl: self.cfg.initial_ttl,
            transaction_id: req.transaction_id,
            destination_list: Self::answer_dest(req, from),
            ..Header::default()
        };
        if header.destination_list.is_empty() {
            // We asked ourselves.
            let mut h = header;
            h.destination_list.push(Dest::Node(self.me));
            self.route(now, h, rest, None, None);
        } else {
            self.route(now, header, rest, None, None);
        }
    }

    fn sign_contents(&mut self, txid: u64, contents: Vec<u8>, extra: &[Vec<u8>]) -> Vec<u8> {
        self.sign_contents_as(txid, contents, extra, None)
    }

    /// Signs as `as_user` (identity hash algorithm, cert hash, certificates) when given.
    fn sign_contents_as(
        &mut self,
        txid: u64,
        contents: Vec<u8>,
        extra: &[Vec<u8>],
        as_user: Option<(u8, Vec<u8>, Vec<Vec<u8>>)>,
    ) -> Vec<u8> {
        let (ih, ch, mut certs) = as_user.unwrap_or_else(|| {
            let (ih, ch) = self.crypto.identity();
            (ih, ch, self.crypto.certificates())
        });
        let identity = glue::encode_identity(ih, &ch);
        let mut input = Vec::with_capacity(12 + contents.len() + identity.len());
        input.extend_from_slice(&self.overlay.to_be_bytes());
        input.extend_from_slice(&txid.to_be_bytes());
        input.extend_from_slice(&contents);
        input.extend_from_slice(&identity);
        let (h, s, value) = self.crypto.sign(&input);
        for c in extra {
            if !certs.contains(c) {
                certs.push(c.clone());
            }
        }
        let sec = Security {
            certs,
            signature: SignatureParts {
                hash_alg: h,
                sig_alg: s,
                identity_hash_alg: ih,
                cert_hash: ch,
                value,
                node_id_hash: false,
            },
        };
        let mut rest = contents;
        rest.extend_from_slice(&glue::encode_security(&sec));
        rest
    }

    fn reply_error(
        &mut self,
        now: Time,
        req: &Header,
        from: Option<NodeId>,
        code: u16,
        info: &[u8],
    ) {
        self.stats.errors_sent += 1;
        let (c, b) = glue::encode_body(&Body::Error {
            code,
            info: if info.is_empty() {
                error_name(code).as_bytes().to_vec()
            } else {
                info.to_vec()
            },
        });
        self.remember_answer(now, req.transaction_id, c, b.clone(), &[]);
        self.send_answer_raw(now, req, from, c, b, &[]);
    }

    // ----------------------------------------------------------------- requests

    fn handle_request(
        &mut self,
        now: Time,
        header: &Header,
        from: Option<NodeId>,
        signer: &Signer,
        body: Body,
    ) -> Option<Body> {
        let sender = signer.node_ids.first().copied().unwrap_or(NodeId::INVALID);
        Some(match body {
            Body::PingReq => Body::PingAns {
                response_id: self.rng.random(),
                time: now.0,
            },
            Body::AttachReq(a) => {
                let ans = self.attach_body(false, false);
                let creds = (ans.ufrag.clone(), ans.password.clone());
                if self.attach_answered.len() >= 64 {
                    self.attach_answered.pop_front();
                }
                self.attach_answered
                    .push_back((sender, a.clone(), creds.clone()));
                if a.send_update {
                    // Sent once the link is up, and never before this answer.
                    self.want_update_on_link.insert(sender);
                }
                if self.local_ice.len() >= 1024 {
                    self.local_ice.pop_first();
                }
                self.local_ice.insert(sender, creds);
                Body::AttachAns(ans)
            }
            Body::JoinReq(joining) => {
                // Signed by the joining peer and received over its own connection (6.4.2.1).
                if joining != sender || from != Some(joining) {
                    return Some(self.error_body(error_code::FORBIDDEN));
                }
                if self.state != JoinState::Joined {
                    return Some(self.error_body(error_code::NOT_FOUND));
                }
                self.admit(now, joining);
                Body::JoinAns
            }
            Body::LeaveReq(leaving, data) => {
                if leaving != sender || from != Some(leaving) {
                    return Some(self.error_body(error_code::FORBIDDEN));
                }
                // Acted on after the answer is sent: the link to the leaving peer closes then.
                self.leaves_after_answer.push((leaving, data));
                Body::LeaveAns
            }
            Body::UpdateReq(u) => {
                self.on_update(now, sender, u);
                Body::UpdateAns
            }
            Body::RouteQueryReq {
                send_update,
                destination,
            } => {
                let next = match &destination {
                    Dest::Node(n) if *n == self.me => self.me,
                    // As route() does: a direct link first, then the routing table.
                    Dest::Node(n) if self.link_to(*n).is_some() => *n,
                    Dest::Node(n) => self.next_hop_node(n.0),
                    Dest::Resource(r) => match r.as_u128() {
                        Some(k) => self.next_hop_node(k),
                        None => return Some(self.error_body(error_code::INVALID_MESSAGE)),
                    },
                    _ => return Some(self.error_body(error_code::INVALID_MESSAGE)),
                };
                if send_update && sender != NodeId::INVALID && sender != self.me {
                    if self.link_to(sender).is_some() {
                        // Sent right after this answer (flush_wanted_updates).
                        self.want_update_on_link.insert(sender);
                    } else {
                        let b = Body::UpdateReq(self.full_update(now));
                        self.send_request(
                            now,
                            vec![Dest::Node(sender)],
                            &b,
                            Purpose::Update(sender),
                        );
                    }
                }
                Body::RouteQueryAns(next)
            }
            Body::ProbeReq(types) => {
                use crate::wire::{ProbeInformation as I, ProbeInformationType as T};
                let info = types
                    .iter()
                    .filter_map(|t| match *t {
                        T::RESPONSIBLE_SET => Some(I::ResponsibleSet(self.responsible_ppb())),
                        T::NUM_RESOURCES => Some(I::NumResources(
                            u32::try_from(self.storage.resource_count()).unwrap_or(u32::MAX),
                        )),
                        T::UPTIME => Some(I::Uptime(self.uptime(now))),
                        _ => None,
                    })
                    .collect();
                Body::ProbeAns(info)
            }
            Body::StoreReq {
                resource,
                replica_number,
                kinds,
            } => self.on_store(now, header, signer, resource, replica_number, kinds),
            Body::FetchReq {
                resource,
                specifiers,
            } => self.on_fetch(now, resource, specifiers),
            Body::StatReq {
                resource,
                specifiers,
            } => self.on_stat(now, resource, specifiers),
            Body::FindReq { resource, kinds } => {
                let mut seen = HashSet::new();
                if kinds.iter().any(|k| !seen.insert(*k)) {
                    return Some(self.error_body(error_code::INVALID_MESSAGE));
                }
                let pred = self.table.predecessor().map_or(self.me.0, |p| p.0);
                let me = self.me.0;
                let res = kinds
                    .into_iter()
                    .map(|k| {
                        let found = if self.cfg.kinds.get(k).is_some() {
                            self.storage.find(&resource, k, |r| {
                                r.as_u128().is_some_and(|x| in_range(x, pred, me))
                            })
                        } else {
                            None
                        };
                        (k, found.unwrap_or(ResourceId::from_u128(0)))
                    })
                    .collect();
                Body::FindAns(res)
            }
            _ => self.error_body(error_code::INVALID_MESSAGE),
        })
    }

    fn error_body(&mut self, code: u16) -> Body {
        self.stats.errors_sent += 1;
        Body::Error {
            code,
            info: error_name(code).as_bytes().to_vec(),
        }
    }

    fn verify_value(&self, resource: &ResourceId, kind: KindId, v: &StoredValue) -> Option<Signer> {
        if v.signature.sig_alg == 0 && v.signature.hash_alg == 0 {
            return None;
        }
        let input = glue::stored_data_signature_input(resource, kind, v);
        let certs = self.certs_with_cached(&v.signature, &v.certs);
        self.crypto.verify(&input, &v.signature, &certs)
    }

    fn on_store(
        &mut self,
        now: Time,
        header: &Header,
        signer: &Signer,
        resource: ResourceId,
        replica_number: u8,
        mut kinds: Vec<StoreKind>,
    ) -> Body {
        let _ = header;
        let Some(k) = resource.as_u128() else {
            return self.error_body(error_code::INVALID_MESSAGE);
        };
        let replica = replica_number > 0;
        if !replica && !self.table.is_responsible(k) {
            return self.error_body(error_code::NOT_FOUND);
        }
        // A replica (or hand-over) comes from a neighbour: a predecessor within the replica
        // window, or a successor handing data to us on join/leave (RFC 6940 7.4.1.1, 10).
        if replica {
            let window = self.cfg.replicas.max(1) + 1;
            let plausible = signer.node_ids.iter().any(|n| {
                self.table
                    .predecessors()
                    .iter()
                    .take(window)
                    .any(|p| p == n)
                    || self.table.successors().iter().take(window).any(|p| p == n)
            });
            if !plausible {
                self.stats.store_forbidden += 1;
                return self.error_body(error_code::FORBIDDEN);
            }
        }
        // Unknown kinds first (error_info lists them).
        let unknown: Vec<KindId> = kinds
            .iter()
            .filter(|sk| self.cfg.kinds.get(sk.kind).is_none())
            .map(|sk| sk.kind)
            .collect();
        if !unknown.is_empty() {
            self.stats.errors_sent += 1;
            return Body::Error {
                code: error_code::UNKNOWN_KIND,
                info: glue::encode_kind_list(&unknown),
            };
        }
        // Signatures and access control (RFC 6940 7.4.1.1, 7.3).
        for sk in &mut kinds {
            let Some(def) = self.cfg.kinds.get(sk.kind).cloned() else {
                continue;
            };
            for v in &mut sk.values {
                let Some(who) = self.verify_value(&resource, sk.kind, v) else {
                    self.stats.store_forbidden += 1;
                    return self.error_body(error_code::FORBIDDEN);
                };
                if !storage::access_allowed(def.policy, &resource, &v.key, &who) {
                    self.stats.store_forbidden += 1;
                    return self.error_body(error_code::FORBIDDEN);
                }
                if !replica && !storage::access_allowed(def.policy, &resource, &v.key, signer) {
                    self.stats.store_forbidden += 1;
                    return self.error_body(error_code::FORBIDDEN);
                }
                // Keep only the certificates this value needs.
                let certs = std::mem::take(&mut v.certs);
                v.certs = certs
                    .into_iter()
                    .filter(|c| {
                        self.crypto
                            .hash(v.signature.identity_hash_alg, c)
                            .as_deref()
                            == Some(&v.signature.cert_hash[..])
                    })
                    .collect();
            }
        }
        match self
            .storage
            .store(now.0, &self.cfg.kinds, &resource, replica, &kinds)
        {
            Ok(gens) => {
                let replicas: Vec<NodeId> = if replica {
                    Vec::new()
                } else {
                    self.table
                        .successors()
                        .iter()
                        .take(self.cfg.replicas)
                        .copied()
                        .collect()
                };
                if !replica {
                    for (i, r) in replicas.clone().into_iter().enumerate() {
                        self.replicate_resource(now, &resource, r, (i + 1) as u8);
                    }
                }
                Body::StoreAns(
                    gens.into_iter()
                        .map(|(k, g)| (k, g, replicas.clone()))
                        .collect(),
                )
            }
            Err(e) => {
                self.stats.errors_sent += 1;
                match e {
                    StoreError::UnknownKind(k) => Body::Error {
                        code: error_code::UNKNOWN_KIND,
                        info: glue::encode_kind_list(&k),
                    },
                    StoreError::GenerationTooLow(g) => Body::Error {
                        code: error_code::GENERATION_COUNTER_TOO_LOW,
                        info: glue::encode_body(&Body::StoreAns(
                            g.into_iter().map(|(k, g)| (k, g, Vec::new())).collect(),
                        ))
                        .1,
                    },
                    StoreError::DataTooOld => Body::Error {
                        code: error_code::DATA_TOO_OLD,
                        info: b"Error_Data_Too_Old".to_vec(),
                    },
                    StoreError::DataTooLarge => Body::Error {
                        code: error_code::DATA_TOO_LARGE,
                        info: b"Error_Data_Too_Large".to_vec(),
                    },
                    StoreError::Forbidden => Body::Error {
                        code: error_code::FORBIDDEN,
                        info: b"Error_Forbidden".to_vec(),
                    },
                    StoreError::Invalid => Body::Error {
                        code: error_code::INVALID_MESSAGE,
                        info: b"Error_Invalid_Message".to_vec(),
                    },
                }
            }
        }
    }

    fn on_fetch(
        &mut self,
        now: Time,
        resource: ResourceId,
        specifiers: Vec<(KindId, u64, Selector)>,
    ) -> Body {
        let unknown: Vec<KindId> = specifiers
            .iter()
            .filter(|(k, _, _)| self.cfg.kinds.get(*k).is_none())
            .map(|(k, _, _)| *k)
            .collect();
        if !unknown.is_empty() {
            self.stats.errors_sent += 1;
            return Body::Error {
                code: error_code::UNKNOWN_KIND,
                info: glue::encode_kind_list(&unknown),
            };
        }
        let mut out = Vec::new();
        for (kind, generation, sel) in specifiers {
            match self
                .storage
                .fetch(now.0, &self.cfg.kinds, &resource, kind, generation, &sel)
            {
                Ok(f) => out.push(f),
                Err(_) => return self.error_body(error_code::INVALID_MESSAGE),
            }
        }
        Body::FetchAns(out)
    }

    fn on_stat(
        &mut self,
        now: Time,
        resource: ResourceId,
        specifiers: Vec<(KindId, u64, Selector)>,
    ) -> Body {
        let fetched = self.on_fetch(now, resource, specifiers);
        let Body::FetchAns(kinds) = fetched else {
            return fetched;
        };
        Body::StatAns(
            kinds
                .into_iter()
                .map(|k| msg::StatKind {
                    kind: k.kind,
                    generation: k.generation,
                    values: k
                        .values
                        .into_iter()
                        .map(|v| {
                            let lenpref = glue::opaque32(&v.value.value);
                            msg::StatValue {
                                value_length: v.value.value.len() as u32,
                                storage_time: v.storage_time,
                                lifetime: v.lifetime,
                                exists: v.value.exists,
                                hash_alg: crate::crypto::HASH_SHA1,
                                hash: self
                                    .crypto
                                    .hash(crate::crypto::HASH_SHA1, &lenpref)
                                    .unwrap_or_default(),
                                key: v.key,
                            }
                        })
                        .collect(),
                })
                .collect(),
        )
    }

    // ----------------------------------------------------------------- answers

    fn handle_answer(&mut self, now: Time, p: Pending, signer: &Signer, hops: u32, body: Body) {
        let responder = signer.node_ids.first().copied().unwrap_or(NodeId::INVALID);
        if let Body::AttachAns(_) = &body
            && let Some(i) = self
                .ice_by_txid
                .iter()
                .position(|(t, _)| *t == p.header.transaction_id)
            && let Some((_, creds)) = self.ice_by_txid.remove(i)
        {
            if self.local_ice.len() >= 1024 {
                self.local_ice.pop_first();
            }
            self.local_ice.insert(responder, creds);
        }
        match p.purpose {
            Purpose::App(req) => {
                let result = match body {
                    Body::Error { code, info } => Err(RequestError::Error { code, info }),
                    Body::StoreAns(k) => Ok(Outcome::Stored(k)),
                    Body::FetchAns(kinds) => {
                        let resource = match p.header.destination_list.last() {
                            Some(Dest::Resource(r)) => r.clone(),
                            _ => ResourceId::default(),
                        };
                        // Every reader verifies every value: signature, trusted certificate
                        // and the Kind's access policy (RFC 6940 7.1, 7.3).
                        let mut dropped = 0u64;
                        let kinds = kinds
                            .into_iter()
                            .map(|mut k| {
                                let kind = k.kind;
                                let policy = self.cfg.kinds.get(kind).map(|d| d.policy);
                                let before = k.values.len();
                                k.values.retain(|v| {
                                    !v.value.exists && v.signature.sig_alg == 0
                                        || self.verify_value(&resource, kind, v).is_some_and(
                                            |who| {
                                                policy.is_none_or(|p| {
                                                    storage::access_allowed(
                                                        p, &resource, &v.key, &who,
                                                    )
                                                })
                                            },
                                        )
                                });
                                dropped += (before - k.values.len()) as u64;
                                k
                            })
                            .collect();
                        self.stats.fetch_values_dropped += dropped;
                        Ok(Outcome::Fetched(kinds))
                    }
                    Body::StatAns(s) => Ok(Outcome::Stat(s)),
                    Body::FindAns(f) => Ok(Outcome::Found(f)),
                    Body::PingAns { .. } => Ok(Outcome::Pong),
                    Body::RouteQueryAns(n) => Ok(Outcome::RouteQuery(n)),
                    Body::ProbeAns(i) => Ok(Outcome::Probe(i)),
                    _ => Err(RequestError::BadAnswer),
                };
                self.out.push_back(Output::Event(Event::Completed {
                    request: req,
                    hops,
                    result,
                }));
            }
            Purpose::BootstrapAttach => {
                if let Body::AttachAns(a) = body {
                    if responder == self.me || responder == NodeId::INVALID {
                        return;
                    }
                    self.ap = Some(responder);
                    self.state = JoinState::WaitAp;
                    if self.link_to(responder).is_none() {
                        self.connect(responder, &a);
                    }
                    // The AP sends its Update once connected (send_update was set).
                } else {
                    self.bootstrap(now);
                }
            }
            Purpose::AttachNeighbor(n) => {
                if let Body::AttachAns(a) = body
                    && responder == n
                {
                    if self.link_to(n).is_none() {
                        self.connect(n, &a);
                    } else {
                        self.attaching.remove(&n);
                        self.consider_neighbors(now, [n]);
                    }
                } else {
                    self.attaching.remove(&n);
                    if self.join_wait.remove(&n) {
                        self.maybe_send_join(now);
                    }
                }
            }
            Purpose::AttachFinger(i) => {
                if let Body::AttachAns(a) = body
                    && responder != self.me
                    && responder != NodeId::INVALID
                {
                    if self.link_to(responder).is_some() {
                        self.table.set_finger(i, responder);
                    } else {
                        self.finger_wait.entry(responder).or_default().push(i);
                        self.connect(responder, &a);
                    }
                }
            }
            Purpose::Join => {
                if matches!(body, Body::JoinAns) {
                    self.become_joined(now);
                } else {
                    self.bootstrap(now);
                }
            }
            Purpose::CertPublish => self.on_cert_published(matches!(body, Body::StoreAns(_))),
            Purpose::PartitionCheck(via) => {
                if matches!(body, Body::PingAns { .. }) {
                    self.on_partition_answer(now, via, responder);
                }
            }
            Purpose::Leave => self.leave_progress(),
            Purpose::CertFetch(hash) => {
                let resource = match p.header.destination_list.last() {
                    Some(Dest::Resource(r)) => r.clone(),
                    _ => ResourceId::default(),
                };
                self.on_cert_fetch(now, hash, resource, Some(body));
            }
            Purpose::Update(_)
            | Purpose::ConfigPush
            | Purpose::Replicate
            | Purpose::Refill
            | Purpose::Liveness(_) => {
                if let Body::Error { code, .. } = body
                    && p.purpose == Purpose::Replicate
                    && (code == error_code::GENERATION_COUNTER_TOO_LOW
                        || code == error_code::DATA_TOO_OLD)
                {
                    // The replica holder has newer data: nothing to do for us.
                }
            }
        }
    }

    fn connect(&mut self, peer: NodeId, a: &Attach) {
        if let Some(c) = a.candidates.iter().max_by_key(|c| c.priority) {
            if self.remote_attaches.len() >= 256 {
                self.remote_attaches.pop_first();
            }
            self.remote_attaches.insert(peer, a.clone());
            self.attaching.insert(peer);
            self.out.push_back(Output::Connect {
                peer: Some(peer),
                addr: c.addr,
            });
        }
    }

    // ----------------------------------------------------------------- chord

    /// The next hop we would use for key `k` (ourselves when responsible, RFC 6940 10.8).
    fn next_hop_node(&self, k: u128) -> NodeId {
        if self.state == JoinState::Joined && self.table.is_responsible(k) {
            return self.me;
        }
        self.table.next_hop(k).unwrap_or(self.me)
    }

    fn uptime(&self, now: Time) -> u32 {
        (now.0.saturating_sub(self.started.0) / 1000) as u32
    }

    fn full_update(&self, now: Time) -> ChordUpdate {
        ChordUpdate::Full {
            uptime: self.uptime(now),
            predecessors: self.table.predecessors().to_vec(),
            successors: self.table.successors().to_vec(),
            fingers: self.table.finger_list(),
        }
    }

    fn neighbors_update(&self, now: Time) -> ChordUpdate {
        ChordUpdate::Neighbors {
            uptime: self.uptime(now),
            predecessors: self.table.predecessors().to_vec(),
            successors: self.table.successors().to_vec(),
        }
    }

    fn on_update(&mut self, now: Time, sender: NodeId, u: ChordUpdate) {
        let (preds, succs) = match u {
            ChordUpdate::PeerReady { .. } => (Vec::new(), Vec::new()),
            ChordUpdate::Neighbors {
                predecessors,
                successors,
                ..
            }
            | ChordUpdate::Full {
                predecessors,
                successors,
                ..
            } => (predecessors, successors),
        };
        match self.state {
            JoinState::WaitAp if Some(sender) == self.ap => {
                // The admitting peer's table: attach to everyone who belongs in ours.
                self.state = JoinState::Joining;
                if self.link_to(sender).is_some() {
                    self.table.merge_neighbors([sender]);
                }
                let mut targets: Vec<NodeId> = preds
                    .iter()
                    .chain(succs.iter())
                    .copied()
                    .filter(|n| *n != self.me && *n != sender)
                    .collect();
                targets.sort_unstable();
                targets.dedup();
                // Only those that would be our neighbours.
                let mut probe = self.table.clone();
                probe.merge_neighbors(targets.iter().copied().chain([sender]));
                for t in targets {
                    if probe.is_neighbor(t) {
                        if self.link_to(t).is_some() {
                            self.table.merge_neighbors([t]);
                        } else {
                            self.join_wait.insert(t);
                            self.attach_to(now, t, Some(sender));
                        }
                    }
                }
                self.maybe_send_join(now);
            }
            JoinState::Joined => {
                if self.link_to(sender).is_some() {
                    self.consider_neighbors(now, [sender]);
                }
                for n in preds.iter().chain(succs.iter()).copied() {
                    if n == self.me || self.table.is_neighbor(n) {
                        continue;
                    }
                    if self.link_to(n).is_some() {
                        self.consider_neighbors(now, [n]);
                    } else if self.table.would_be_neighbor(n) {
                        self.attach_to(now, n, Some(sender));
                    }
                }
                // Stabilisation: if we know peers that belong in the sender's neighbour table
                // but are missing from what it sent, tell it (it then Attaches to them).
                if !preds.is_empty() || !succs.is_empty() {
                    let mut theirs =
                        ChordTable::new(sender, self.cfg.successors, self.cfg.predecessors);
                    theirs.merge_neighbors(preds.iter().chain(succs.iter()).copied());
                    let better = self
                        .neighbor_set()
                        .into_iter()
                        .chain([self.me])
                        .any(|c| c != sender && theirs.would_be_neighbor(c));
                    if better {
                        let body = Body::UpdateReq(self.neighbors_update(now));
                        self.send_request(
                            now,
                            vec![Dest::Node(sender)],
                            &body,
                            Purpose::Update(sender),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    fn attach_to(&mut self, now: Time, n: NodeId, through: Option<NodeId>) {
        if self.attaching.contains(&n) || self.link_to(n).is_some() {
            return;
        }
        if let Some(t) = self.dead.get(&n)
            && now.0 < t.0.saturating_add(DEAD_HOLD_MS)
        {
            self.join_wait.remove(&n);
            return;
        }
        self.attaching.insert(n);
        let dest = match through {
            Some(t) if t != n && self.link_to(t).is_some() => vec![Dest::Node(t), Dest::Node(n)],
            _ => vec![Dest::Node(n)],
        };
        let body = Body::AttachReq(self.attach_body(true, false));
        self.send_request(now, dest, &body, Purpose::AttachNeighbor(n));
    }

    fn maybe_send_join(&mut self, now: Time) {
        if self.state != JoinState::Joining || !self.join_wait.is_empty() {
            return;
        }
        let Some(ap) = self.ap else { return };
        if self.pending.values().any(|p| p.purpose == Purpose::Join) {
            return;
        }
        self.send_request(
            now,
            vec![Dest::Node(ap)],
            &Body::JoinReq(self.me),
            Purpose::Join,
        );
    }

    fn become_joined(&mut self, now: Time) {
        self.state = JoinState::Joined;
        self.join_wait.clear();
        self.out.push_back(Output::Event(Event::Joined));
        // Tell every neighbour about ourselves (RFC 6940 10.5 step 9).
        let ns: Vec<NodeId> = self.neighbor_set();
        for n in ns {
            let body = Body::UpdateReq(self.neighbors_update(now));
            self.send_request(now, vec![Dest::Node(n)], &body, Purpose::Update(n));
        }
        self.search_fingers(now);
        self.publish_certificates(now);
        if !self.periodic_armed {
            self.periodic_armed = true;
            let jitter = self.rng.random_range(0..self.cfg.update_interval_ms.max(1));
            self.arm(
                now.plus_ms(self.cfg.update_interval_ms / 2 + jitter / 2),
                Timer::Periodic,
            );
        }
    }

    fn neighbor_set(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self
            .table
            .successors()
            .iter()
            .chain(self.table.predecessors().iter())
            .copied()
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    fn search_fingers(&mut self, now: Time) {
        for i in 0..crate::topology::chord::MAX_FINGERS {
            if !self.table.finger_wanted(i) {
                break;
            }
            self.search_finger(now, i);
        }
    }

    fn search_finger(&mut self, now: Time, i: usize) {
        if self.state != JoinState::Joined || !self.table.finger_wanted(i) {
            return;
        }
        let target = ResourceId::from_u128(self.table.finger_target(i));
        let body = Body::AttachReq(self.attach_body(true, false));
        self.send_request(
            now,
            vec![Dest::Resource(target)],
            &body,
            Purpose::AttachFinger(i),
        );
    }

    /// Admitting peer side of a Join (RFC 6940 10.5 steps 6-8).
    fn admit(&mut self, now: Time, joining: NodeId) {
        let old_pred = self.table.predecessor();
        // Hand over what the joining peer now owns.
        let lo = old_pred.map_or(self.me.0, |p| p.0);
        if in_range(joining.0, lo, self.me.0) || old_pred.is_none() {
            for r in self.storage.resources(|k| in_range(k, lo, joining.0)) {
                self.replicate_resource(now, &r, joining, 1);
            }
        }
        if self.link_to(joining).is_some() {
            self.consider_neighbors(now, [joining]);
        }
    }

    /// Adds connected peers to the neighbour table and reacts to changes.
    fn consider_neighbors<I: IntoIterator<Item = NodeId>>(&mut self, now: Time, peers: I) {
        let old_succs = self.table.successors().to_vec();
        let old_preds = self.table.predecessors().to_vec();
        let cands: Vec<NodeId> = peers
            .into_iter()
            .filter(|p| self.link_to(*p).is_some())
            .collect();
        if self.table.merge_neighbors(cands) && self.state == JoinState::Joined {
            self.neighbors_changed(now, &old_succs, &old_preds);
        }
    }

    /// Reactive recovery (RFC 6940 10.7.3): Update the neighbours, fix replicas and hand over
    /// data whose owner changed.
    fn neighbors_changed(&mut self, now: Time, old_succs: &[NodeId], old_preds: &[NodeId]) {
        let ns = self.neighbor_set();
        let mut targets: Vec<NodeId> = ns.clone();
        for o in old_succs.iter().chain(old_preds.iter()) {
            if !targets.contains(o) && self.link_to(*o).is_some() {
                targets.push(*o);
            }
        }
        for n in targets {
            let body = Body::UpdateReq(self.neighbors_update(now));
            self.send_request(now, vec![Dest::Node(n)], &body, Purpose::Update(n));
        }
        let me = self.me.0;
        let new_pred = self.table.predecessor();
        let old_pred = old_preds.first().copied();
        // Our range grew (predecessor died or left): we are primary for more data.
        let grew = match (old_pred, new_pred) {
            (Some(o), Some(n)) => dist(n.0, me) > dist(o.0, me),
            _ => false,
        };
        let replicas: Vec<NodeId> = self
            .table
            .successors()
            .iter()
            .take(self.cfg.replicas)
            .copied()
            .collect();
        let old_replicas: Vec<NodeId> = old_succs.iter().take(self.cfg.replicas).copied().collect();
        if let Some(pred) = new_pred {
            let mine = self.storage.resources(|k| in_range(k, pred.0, me));
            let hold = self.in_replica_hold_down(now);
            for (i, r) in replicas.iter().enumerate() {
                if grew || (!old_replicas.contains(r) && !hold) {
                    for res in &mine {
                        self.replicate_resource(now, res, *r, (i + 1) as u8);
                    }
                }
            }
            // A new, closer predecessor owns part of what we held: give it its data.
            if let Some(o) = old_pred
                && dist(pred.0, me) < dist(o.0, me)
            {
                let lo = self.table.predecessors().get(1).map_or(o.0, |p| p.0);
                for res in self.storage.resources(|k| in_range(k, lo, pred.0)) {
                    self.replicate_resource(now, &res, pred, 1);
                }
            }
        }
        if self.table.successors().len() < old_succs.len().min(self.cfg.successors)
            || self.table.predecessors().len() < old_preds.len().min(self.cfg.predecessors)
        {
            // Ask the nearest survivors for their tables to refill ours.
            let probe: Vec<NodeId> = self
                .table
                .successors()
                .first()
                .into_iter()
                .chain(self.table.predecessors().first())
                .copied()
                .collect();
            for n in probe {
                if let Some(l) = self.link_to(n) {
                    let _ = l;
                    let body = Body::AttachReq(self.attach_body(true, true));
                    self.send_request(now, vec![Dest::Node(n)], &body, Purpose::Refill);
                }
            }
        }
    }

    fn replicate_resource(&mut self, now: Time, r: &ResourceId, to: NodeId, replica: u8) {
        if to == self.me {
            return;
        }
        let kinds = self.storage.export(now.0, r);
        if kinds.is_empty() {
            return;
        }
        let body = Body::StoreReq {
            resource: r.clone(),
            replica_number: replica.max(1),
            kinds,
        };
        self.send_request(now, vec![Dest::Node(to)], &body, Purpose::Replicate);
    }

    fn on_leave(&mut self, now: Time, leaving: NodeId, data: LeaveData) {
        let list = match data {
            LeaveData::FromSucc(v) | LeaveData::FromPred(v) => v,
        };
        self.peer_failed(now, leaving);
        if self.state == JoinState::Joined {
            for n in list {
                if n == self.me || self.table.is_neighbor(n) {
                    continue;
                }
                if self.link_to(n).is_some() {
                    self.consider_neighbors(now, [n]);
                } else if self.table.would_be_neighbor(n) {
                    self.dead.remove(&n);
                    self.attach_to(now, n, None);
                }
            }
        }
    }

    // ----------------------------------------------------------------- timers

    fn on_timeout(&mut self, now: Time) {
        while let Some(Reverse((t, _, timer))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::Retransmit(txid) => self.retransmit(now, txid),
                Timer::Periodic => {
                    if self.state == JoinState::Joined {
                        for n in self.neighbor_set() {
                            let body = Body::UpdateReq(self.neighbors_update(now));
                            self.send_request(now, vec![Dest::Node(n)], &body, Purpose::Update(n));
                        }
                        // Every few rounds, Ping the fingers that are not neighbours (the
                        // Updates above check the neighbours): a silent finger is replaced.
                        self.periodic_round = self.periodic_round.wrapping_add(1);
                        let every = (self.cfg.finger_ping_interval_ms
                            / self.cfg.update_interval_ms.max(1))
                        .max(1);
                        if u64::from(self.periodic_round) % every == 0 {
                            let fingers: Vec<NodeId> = self
                                .table
                                .finger_list()
                                .into_iter()
                                .filter(|f| !self.table.is_neighbor(*f))
                                .collect();
                            for f in fingers {
                                self.send_request(
                                    now,
                                    vec![Dest::Node(f)],
                                    &Body::PingReq,
                                    Purpose::Liveness(f),
                                );
                            }
                        }
                        // Refill invalid finger entries (RFC 6940 10.7.4.2).
                        self.refresh_fingers(now);
                        // Data we no longer replicate (10.7.3).
                        self.drop_foreign_data();
                        // Partition detection (10.7.4.4).
                        if self
                            .partition_probe
                            .is_some_and(|t| now.0 >= t.0 + self.cfg.update_interval_ms)
                        {
                            self.partition_probe = None;
                        }
                        if self
                            .periodic_round
                            .is_multiple_of(maintenance::PARTITION_CHECK_ROUNDS)
                        {
                            self.start_partition_check(now);
                        }
                        self.arm(now.plus_ms(self.cfg.update_interval_ms), Timer::Periodic);
                    } else {
                        self.periodic_armed = false;
                    }
                }
                Timer::JoinRetry(epoch) => {
                    if epoch == self.join_epoch
                        && matches!(
                            self.state,
                            JoinState::Bootstrapping | JoinState::WaitAp | JoinState::Joining
                        )
                    {
                        self.bootstrap(now);
                    }
                }
                Timer::CertRefresh => {
                    if self.state == JoinState::Joined {
                        self.refresh_certificates(now);
                    }
                }
                Timer::CertHold => self.expire_held(now),
                Timer::ReplicaHoldDown => self.end_replica_hold_down(now),
                Timer::Housekeeping => {
                    self.expire_held(now);
                    self.storage.expire(now.0);
                    self.reassembly.expire(now);
                    self.stats.reassembly_dropped = self.reassembly.dropped;
                    while let Some((exp, txid)) = self.answered_order.front().copied() {
                        if exp > now {
                            break;
                        }
                        self.answered_order.pop_front();
                        if self
                            .answered
                            .get(&txid)
                            .is_some_and(|(e, _, _, _)| *e <= now)
                        {
                            self.answered.remove(&txid);
                        }
                    }
                    self.dead
                        .retain(|_, t| now.0 < t.0.saturating_add(DEAD_HOLD_MS));
                    if self.state != JoinState::Left {
                        self.arm(now.plus_ms(HOUSEKEEPING_MS), Timer::Housekeeping);
                    }
                }
            }
        }
    }

    fn retransmit(&mut self, now: Time, txid: u64) {
        let Some(p) = self.pending.get_mut(&txid) else {
            return;
        };
        if p.next > now {
            return;
        }
        if p.sends >= self.cfg.max_sends {
            let Some(p) = self.pending.remove(&txid) else {
                return;
            };
            self.transaction_failed(now, p);
            return;
        }
        p.sends += 1;
        p.next = now.plus_ms(self.cfg.reliability_timer_ms);
        let header = p.header.clone();
        let rest = p.rest.clone();
        let via = p.via_link.filter(|l| self.links.contains_key(l));
        self.arm(
            now.plus_ms(self.cfg.reliability_timer_ms),
            Timer::Retransmit(txid),
        );
        self.route(now, header, rest, None, via);
    }

    fn transaction_failed(&mut self, now: Time, p: Pending) {
        match p.purpose {
            Purpose::App(req) => {
                self.out.push_back(Output::Event(Event::Completed {
                    request: req,
                    hops: 0,
                    result: Err(RequestError::Timeout),
                }));
            }
            Purpose::BootstrapAttach | Purpose::Join
                if self.state != JoinState::Joined && self.state != JoinState::Left =>
            {
                self.bootstrap(now);
            }
            Purpose::AttachNeighbor(n) => {
                self.attaching.remove(&n);
                self.dead.insert(n, now);
                if self.join_wait.remove(&n) {
                    self.maybe_send_join(now);
                }
            }
            // A neighbour that does not answer is dead (RFC 6940 10.7.1).
            Purpose::Update(n) if self.table.is_neighbor(n) => self.peer_failed(now, n),
            Purpose::Liveness(n) if self.table.contains(n) => self.peer_failed(now, n),
            Purpose::CertFetch(hash) => {
                self.on_cert_fetch(now, hash, ResourceId::default(), None);
            }
            Purpose::Leave => self.leave_progress(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
