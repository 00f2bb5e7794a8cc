//! A deterministic discrete-event simulator for RELOAD peers: a virtual clock, one seeded RNG,
//! links with latency and loss, an event heap, nodes joining one by one, churn (joins,
//! graceful leaves, crashes) and a SIP-REGISTRATION-like Store/Fetch workload. The same
//! [`SimConfig`] always gives the same [`SimReport`] (apart from `wall_seconds`, which the
//! caller measures because this crate never reads a clock).

use crate::crypto::CryptoProvider;
use crate::node::{
    Event, Input, LinkId, Node, NodeConfig, Outcome, Output, RequestError, RequestId, Time,
};
use crate::storage::{DataValue, KIND_SIP_REGISTRATION, Selector, ValueKey};
use crate::topology::dist;
use crate::wire::{NodeId, ResourceId};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};

/// Simulation parameters.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Peers in the initial overlay.
    pub nodes: usize,
    /// RNG seed.
    pub seed: u64,
    /// Churn events (join, leave or crash, in equal shares) per simulated minute.
    pub churn_per_min: f64,
    /// Length of the workload phase in simulated seconds.
    pub duration_secs: u64,
    /// Fetches issued during the workload phase.
    pub lookups: u64,
    /// Smallest one-way link latency (ms).
    pub min_latency_ms: u64,
    /// Largest one-way link latency (ms).
    pub max_latency_ms: u64,
    /// Probability that a message is lost on a link.
    pub loss: f64,
    /// Spacing of initial joins (ms).
    pub join_interval_ms: u64,
    /// How long a crash takes to be noticed by link peers (ms).
    pub crash_detect_ms: u64,
    /// chord-update-interval for the peers (ms).
    pub update_interval_ms: u64,
    /// Quiet time after the workload before the final checks (s).
    pub settle_secs: u64,
    /// Print progress to stderr.
    pub progress: bool,
    /// Which crypto provider the peers use.
    pub crypto: SimCrypto,
    /// Peers leave their certificate out of requests once it is stored in the overlay, so
    /// receivers fetch it (CERTIFICATE_BY_NODE).
    pub omit_certificates: bool,
    /// Link MTU in bytes; larger messages are fragmented (0: never).
    pub link_mtu: usize,
    /// Every peer tunes its chord-update-interval from the churn it observes (RFC 7363,
    /// [`crate::usage::self_tuning::SelfTuner`]), `update_interval_ms` being the longest.
    pub self_tuning: bool,
}

/// Makes a peer's identity: given the slot index and a proposed random Node-ID, returns the
/// Node-ID the peer runs as and its crypto provider (which may or may not match).
pub type CryptoFactory =
    std::sync::Arc<dyn Fn(usize, NodeId) -> (NodeId, Box<dyn CryptoProvider>) + Send + Sync>;

/// The simulator's crypto choice.
#[derive(Clone, Default)]
pub enum SimCrypto {
    /// [`crate::crypto::TestCrypto`] (keyed SHA-1): fast, for the large runs.
    #[default]
    Test,
    /// A caller-supplied provider per peer (for example X.509 with real certificates).
    Custom(CryptoFactory),
}

impl std::fmt::Debug for SimCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimCrypto::Test => f.write_str("Test"),
            SimCrypto::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// The result of a request issued through [`Sim::with_node`].
pub type Completion = (RequestId, Result<Outcome, RequestError>);

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            nodes: 100,
            seed: 1,
            churn_per_min: 0.0,
            duration_secs: 600,
            lookups: 1000,
            min_latency_ms: 5,
            max_latency_ms: 40,
            loss: 0.0,
            join_interval_ms: 50,
            crash_detect_ms: 2000,
            update_interval_ms: 120_000,
            settle_secs: 120,
            progress: false,
            crypto: SimCrypto::Test,
            omit_certificates: false,
            link_mtu: 0,
            self_tuning: false,
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SimReport {
    /// Initial overlay size.
    pub nodes: usize,
    /// Seed.
    pub seed: u64,
    /// Lookups that completed or timed out (lookups whose requester crashed are excluded).
    pub lookups: u64,
    /// Fraction of lookups that found the registration.
    pub lookup_success_rate: f64,
    /// Mean overlay hops of successful lookups.
    pub mean_hops: f64,
    /// 99th percentile of hops.
    pub p99_hops: u32,
    /// Registrations stored successfully.
    pub registrations_stored: u64,
    /// Stored registrations missing at their responsible peer at the end.
    pub registrations_lost: u64,
    /// Simulated seconds.
    pub virtual_seconds: f64,
    /// Wall-clock seconds (filled in by the caller).
    pub wall_seconds: f64,
    /// Peers alive at the end.
    pub nodes_alive: usize,
    /// Joins during churn.
    pub churn_joins: u64,
    /// Graceful leaves.
    pub churn_leaves: u64,
    /// Crashes.
    pub churn_crashes: u64,
    /// Successor/predecessor pointers that differ from the true ring at the end.
    pub ring_errors: u64,
    /// Messages delivered.
    pub messages: u64,
    /// Lookups aborted because their requester left or crashed.
    pub lookups_aborted: u64,
    /// Messages delivered per peer and simulated minute (maintenance plus workload).
    pub messages_per_peer_min: f64,
    /// Mean chord-update-interval of the live peers at the end (s).
    pub mean_update_interval_s: f64,
}

#[derive(Debug)]
enum Ev {
    Deliver {
        to: usize,
        link: u64,
        bytes: Vec<u8>,
    },
    Timer {
        node: usize,
    },
    LinkUp {
        node: usize,
        link: u64,
        peer: NodeId,
    },
    LinkDown {
        node: usize,
        link: u64,
    },
    ConnectFailed {
        node: usize,
        peer: Option<NodeId>,
        addr: SocketAddr,
    },
    Start {
        node: usize,
    },
    Register {
        node: usize,
    },
    Lookup,
    Refresh,
    Churn,
    CloseAll {
        node: usize,
    },
    Progress,
}

/// A heap entry: the event itself waits in `Sim::slab` so the heap moves 24 bytes.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Queued {
    at: Time,
    seq: u64,
    slot: usize,
}

struct SimLink {
    a: usize,
    b: usize,
    latency: u64,
}

struct Slot {
    node: Node,
    tuner: Option<crate::usage::self_tuning::SelfTuner>,
    alive: bool,
    timer_at: Option<Time>,
    links: BTreeSet<u64>,
}

#[derive(Debug, Clone)]
struct Registration {
    resource: ResourceId,
    owner: NodeId,
    stored: bool,
}

enum Req {
    Register(usize),
    Lookup(usize),
}

/// The simulator.
pub struct Sim {
    cfg: SimConfig,
    rng: ChaCha8Rng,
    now: Time,
    seq: u64,
    heap: BinaryHeap<Reverse<Queued>>,
    slab: Vec<Option<Ev>>,
    free: Vec<usize>,
    slots: Vec<Slot>,
    links: HashMap<u64, SimLink>,
    pairs: HashMap<(usize, usize), u64>,
    next_link: u64,
    regs: Vec<Registration>,
    reg_index: HashMap<NodeId, usize>,
    reqs: HashMap<(usize, RequestId), Req>,
    lookups_issued: u64,
    lookups_done: u64,
    lookups_ok: u64,
    lookups_aborted: u64,
    hops: Vec<u32>,
    registrations_stored: u64,
    churn: (u64, u64, u64),
    messages: u64,
    workload_start: Time,
    workload_end: Time,
    /// Messages delivered when the workload started and when it ended.
    workload_messages: (u64, u64),
    completions: HashMap<usize, Vec<Completion>>,
}

/// Virtual time the simulation starts at (ms since the Unix epoch, 2026-01-01).
pub const SIM_EPOCH_MS: u64 = 1_767_225_600_000;
const REG_LIFETIME_S: u32 = 7 * 24 * 3600;

fn addr_of(i: usize) -> SocketAddr {
    let ip = 0x0a00_0000u32.wrapping_add(i as u32);
    SocketAddr::from((Ipv4Addr::from(ip), 6084))
}

fn index_of(addr: SocketAddr) -> Option<usize> {
    match addr {
        SocketAddr::V4(a) => Some(u32::from(*a.ip()).wrapping_sub(0x0a00_0000) as usize),
        SocketAddr::V6(_) => None,
    }
}

fn user_of(i: usize) -> String {
    format!("user{i}@sim.invalid")
}

/// A SipRegistration (RFC 7904 3.2) of type sip_registration_uri.
fn sip_registration(uri: &str) -> Vec<u8> {
    let u = uri.as_bytes();
    let mut v = vec![1u8];
    v.extend_from_slice(&((u.len() + 2) as u16).to_be_bytes());
    v.extend_from_slice(&(u.len() as u16).to_be_bytes());
    v.extend_from_slice(u);
    v
}

impl Sim {
    /// A simulator for `cfg`.
    #[must_use]
    pub fn new(cfg: SimConfig) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            cfg,
            now: Time(SIM_EPOCH_MS),
            seq: 0,
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            slots: Vec::new(),
            links: HashMap::new(),
            pairs: HashMap::new(),
            next_link: 1,
            regs: Vec::new(),
            reg_index: HashMap::new(),
            reqs: HashMap::new(),
            lookups_issued: 0,
            lookups_done: 0,
            lookups_ok: 0,
            lookups_aborted: 0,
            hops: Vec::new(),
            registrations_stored: 0,
            churn: (0, 0, 0),
            messages: 0,
            workload_start: Time(0),
            workload_end: Time(0),
            workload_messages: (0, 0),
            completions: HashMap::new(),
        }
    }

    fn push(&mut self, at: Time, ev: Ev) {
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slab.get_mut(i) {
                    *s = Some(ev);
                }
                i
            }
            None => {
                self.slab.push(Some(ev));
                self.slab.len() - 1
            }
        };
        self.heap.push(Reverse(Queued {
            at,
            seq: self.seq,
            slot,
        }));
    }

    fn node_config(&self, i: usize, first: bool) -> NodeConfig {
        NodeConfig {
            overlay: "sim.invalid".into(),
            first_node: first,
            bootstrap: Vec::new(),
            local_addr: addr_of(i),
            update_interval_ms: self.cfg.update_interval_ms,
            finger_ping_interval_ms: self.cfg.update_interval_ms * 5,
            user: Some(user_of(i)),
            omit_certificates: self.cfg.omit_certificates,
            link_mtu: self.cfg.link_mtu,
            ..NodeConfig::default()
        }
    }

    fn add_node(&mut self, first: bool) -> usize {
        let i = self.slots.len();
        let mut cfg = self.node_config(i, first);
        if !first {
            // Pick the bootstrap at random among joined peers (cheaply: sample until found).
            for _ in 0..64 {
                let j = self.rng.random_range(0..self.slots.len().max(1));
                if self
                    .slots
                    .get(j)
                    .is_some_and(|s| s.alive && s.node.is_joined())
                {
                    cfg.bootstrap.push(addr_of(j));
                    break;
                }
            }
            if cfg.bootstrap.is_empty()
                && let Some(j) = (0..self.slots.len()).find(|j| {
                    self.slots
                        .get(*j)
                        .is_some_and(|s| s.alive && s.node.is_joined())
                })
            {
                cfg.bootstrap.push(addr_of(j));
            }
        }
        let id = loop {
            let v: u128 = self.rng.random();
            if v != 0 && v != u128::MAX {
                break NodeId(v);
            }
        };
        let seed: u64 = self.rng.random();
        let node = match &self.cfg.crypto {
            SimCrypto::Test => Node::new(cfg, id, seed),
            SimCrypto::Custom(f) => {
                let (id, crypto) = f(i, id);
                Node::with_crypto(cfg, id, seed, crypto)
            }
        };
        let tuner = self.cfg.self_tuning.then(|| {
            crate::usage::self_tuning::SelfTuner::new(self.now.0, self.cfg.update_interval_ms)
        });
        self.slots.push(Slot {
            node,
            tuner,
            alive: true,
            timer_at: None,
            links: BTreeSet::new(),
        });
        i
    }

    fn input(&mut self, i: usize, input: Input) {
        let now = self.now;
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        if !s.alive {
            return;
        }
        s.node.handle_input(now, input);
        self.drain(i);
    }

    fn drain(&mut self, i: usize) {
        loop {
            let Some(s) = self.slots.get_mut(i) else {
                return;
            };
            let Some(o) = s.node.poll_output() else {
                break;
            };
            self.on_output(i, o);
        }
        let now = self.now;
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        if !s.alive {
            return;
        }
        if let Some(tuner) = s.tuner.as_mut() {
            let table = s.node.table();
            let ms = tuner.observe(now.0, s.node.id(), table.predecessors(), table.successors());
            if ms != s.node.update_interval_ms() {
                s.node.set_update_interval_ms(ms);
            }
        }
        if let Some(t) = s.node.poll_timeout() {
            let t = t.max(now);
            if s.timer_at.is_none_or(|cur| t < cur) {
                s.timer_at = Some(t);
                self.push(t, Ev::Timer { node: i });
            }
        }
    }

    fn latency(&mut self) -> u64 {
        let (lo, hi) = (
            self.cfg.min_latency_ms,
            self.cfg.max_latency_ms.max(self.cfg.min_latency_ms),
        );
        self.rng.random_range(lo..=hi)
    }

    fn on_output(&mut self, i: usize, o: Output) {
        let now = self.now;
        match o {
            Output::Send { link, bytes } => {
                let Some(l) = self.links.get(&link.0) else {
                    return;
                };
                let (to, lat) = (if l.a == i { l.b } else { l.a }, l.latency);
                if self.cfg.loss > 0.0 && self.rng.random_bool(self.cfg.loss.min(1.0)) {
                    return;
                }
                self.push(
                    now.plus_ms(lat),
                    Ev::Deliver {
                        to,
                        link: link.0,
                        bytes,
                    },
                );
            }
            Output::Connect { peer, addr } => {
                let target = index_of(addr).filter(|j| {
                    self.slots
                        .get(*j)
                        .is_some_and(|s| s.alive && peer.is_none_or(|p| p == s.node.id()))
                });
                let Some(j) = target.filter(|j| *j != i) else {
                    let lat = self.latency();
                    self.push(
                        now.plus_ms(2 * lat),
                        Ev::ConnectFailed {
                            node: i,
                            peer,
                            addr,
                        },
                    );
                    return;
                };
                let key = (i.min(j), i.max(j));
                if let Some(&l) = self.pairs.get(&key) {
                    let peer_id = self.slots.get(j).map(|s| s.node.id()).unwrap_or_default();
                    self.push(
                        now.plus_ms(1),
                        Ev::LinkUp {
                            node: i,
                            link: l,
                            peer: peer_id,
                        },
                    );
                    return;
                }
                let lat = self.latency();
                let l = self.next_link;
                self.next_link += 1;
                self.links.insert(
                    l,
                    SimLink {
                        a: i,
                        b: j,
                        latency: lat,
                    },
                );
                self.pairs.insert(key, l);
                let (id_i, id_j) = (
                    self.slots.get(i).map(|s| s.node.id()).unwrap_or_default(),
                    self.slots.get(j).map(|s| s.node.id()).unwrap_or_default(),
                );
                if let Some(s) = self.slots.get_mut(i) {
                    s.links.insert(l);
                }
                if let Some(s) = self.slots.get_mut(j) {
                    s.links.insert(l);
                }
                // A handshake: the answerer sees the link after 1 RTT, the initiator after 1.5.
                self.push(
                    now.plus_ms(2 * lat),
                    Ev::LinkUp {
                        node: j,
                        link: l,
                        peer: id_i,
                    },
                );
                self.push(
                    now.plus_ms(3 * lat),
                    Ev::LinkUp {
                        node: i,
                        link: l,
                        peer: id_j,
                    },
                );
            }
            Output::Disconnect { link } => self.close_link(link.0, 0),
            Output::Event(e) => self.on_event(i, e),
        }
    }

    fn close_link(&mut self, l: u64, delay: u64) {
        let Some(link) = self.links.remove(&l) else {
            return;
        };
        self.pairs.remove(&(link.a.min(link.b), link.a.max(link.b)));
        for n in [link.a, link.b] {
            if let Some(s) = self.slots.get_mut(n) {
                s.links.remove(&l);
            }
            let at = self.now.plus_ms(delay + link.latency);
            self.push(at, Ev::LinkDown { node: n, link: l });
        }
    }

    fn on_event(&mut self, i: usize, e: Event) {
        match e {
            Event::Completed {
                request,
                hops,
                result,
            } => match self.reqs.remove(&(i, request)) {
                Some(Req::Register(r)) => {
                    if matches!(result, Ok(Outcome::Stored(_))) {
                        if let Some(reg) = self.regs.get_mut(r)
                            && !reg.stored
                        {
                            reg.stored = true;
                            self.registrations_stored += 1;
                        }
                    } else {
                        // Try again a little later.
                        let at = self.now.plus_ms(5000);
                        self.push(at, Ev::Register { node: i });
                    }
                }
                Some(Req::Lookup(r)) => {
                    self.lookups_done += 1;
                    let Some(reg) = self.regs.get(r) else { return };
                    let key = reg.owner.to_array().to_vec();
                    let ok = match &result {
                        Ok(Outcome::Fetched(kinds)) => kinds.iter().any(|k| {
                            k.values
                                .iter()
                                .any(|v| v.value.exists && v.key == ValueKey::Key(key.clone()))
                        }),
                        _ => false,
                    };
                    if ok {
                        self.lookups_ok += 1;
                        self.hops.push(hops);
                    }
                }
                None => self
                    .completions
                    .entry(i)
                    .or_default()
                    .push((request, result)),
            },
            Event::Joined | Event::Left => {}
        }
    }

    fn register(&mut self, i: usize) {
        let now = self.now;
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        if !s.alive {
            return;
        }
        if !s.node.is_joined() {
            let at = now.plus_ms(5000);
            self.push(at, Ev::Register { node: i });
            return;
        }
        let user = user_of(i);
        let resource = ResourceId::hash(user.as_bytes());
        let owner = s.node.id();
        let value = sip_registration(&format!("sip:{user};transport=udp"));
        let req = s.node.store(
            now,
            resource.clone(),
            KIND_SIP_REGISTRATION,
            vec![(
                ValueKey::Key(owner.to_array().to_vec()),
                DataValue {
                    exists: true,
                    value,
                },
                REG_LIFETIME_S,
            )],
        );
        let r = match self.reg_index.get(&owner) {
            Some(r) => *r,
            None => {
                self.regs.push(Registration {
                    resource,
                    owner,
                    stored: false,
                });
                self.reg_index.insert(owner, self.regs.len() - 1);
                self.regs.len() - 1
            }
        };
        self.reqs.insert((i, req), Req::Register(r));
        self.drain(i);
    }

    fn random_live(&mut self) -> Option<usize> {
        for _ in 0..1000 {
            let j = self.rng.random_range(0..self.slots.len().max(1));
            if self
                .slots
                .get(j)
                .is_some_and(|s| s.alive && s.node.is_joined())
            {
                return Some(j);
            }
        }
        None
    }

    fn lookup(&mut self) {
        let stored: usize = self.regs.len();
        if stored == 0 {
            return;
        }
        let Some(i) = self.random_live() else { return };
        let mut r = self.rng.random_range(0..stored);
        for _ in 0..stored {
            if self.regs.get(r).is_some_and(|g| g.stored) {
                break;
            }
            r = (r + 1) % stored;
        }
        let Some(reg) = self.regs.get(r).filter(|g| g.stored).cloned() else {
            return;
        };
        let now = self.now;
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        let req = s.node.fetch(
            now,
            reg.resource,
            vec![(KIND_SIP_REGISTRATION, Selector::Dictionary(Vec::new()))],
        );
        self.lookups_issued += 1;
        self.reqs.insert((i, req), Req::Lookup(r));
        self.drain(i);
    }

    fn churn(&mut self) {
        let what = self.rng.random_range(0..3u32);
        match what {
            0 => {
                self.churn.0 += 1;
                let i = self.add_node(false);
                self.push(self.now, Ev::Start { node: i });
                // The newcomer registers its user once it has joined.
                self.push(self.now.plus_ms(10_000), Ev::Register { node: i });
            }
            1 | 2 => {
                // Never take the overlay below a handful of peers.
                let live = self.slots.iter().filter(|s| s.alive).count();
                if live <= 8 {
                    return;
                }
                let Some(i) = self.random_live() else { return };
                if what == 1 {
                    self.churn.1 += 1;
                    let now = self.now;
                    if let Some(s) = self.slots.get_mut(i) {
                        s.node.leave(now);
                    }
                    self.drain(i);
                    self.push(self.now.plus_ms(1000), Ev::CloseAll { node: i });
                } else {
                    self.churn.2 += 1;
                    self.kill(i, self.cfg.crash_detect_ms);
                }
            }
            _ => {}
        }
    }

    fn kill(&mut self, i: usize, detect_ms: u64) {
        let links: Vec<u64> = match self.slots.get_mut(i) {
            Some(s) => {
                s.alive = false;
                std::mem::take(&mut s.links).into_iter().collect()
            }
            None => return,
        };
        self.abort_lookups_of(i);
        for l in links {
            self.close_link(l, detect_ms);
        }
    }

    fn abort_lookups_of(&mut self, i: usize) {
        let keys: Vec<(usize, RequestId)> =
            self.reqs.keys().filter(|(n, _)| *n == i).copied().collect();
        let mut ks = keys;
        ks.sort();
        for k in ks {
            if let Some(Req::Lookup(_)) = self.reqs.remove(&k) {
                self.lookups_aborted += 1;
            }
        }
    }

    fn step(&mut self, until: Time) -> bool {
        let Some(Reverse(q)) = self.heap.peek() else {
            return false;
        };
        if q.at > until {
            return false;
        }
        let Some(Reverse(q)) = self.heap.pop() else {
            return false;
        };
        self.now = q.at;
        let Some(ev) = self.slab.get_mut(q.slot).and_then(Option::take) else {
            return true;
        };
        self.free.push(q.slot);
        match ev {
            Ev::Deliver { to, link, bytes } => {
                if self.links.contains_key(&link) {
                    self.messages += 1;
                    self.input(
                        to,
                        Input::Message {
                            link: LinkId(link),
                            bytes,
                        },
                    );
                }
            }
            Ev::Timer { node } => {
                let now = self.now;
                if let Some(s) = self.slots.get_mut(node) {
                    if s.timer_at != Some(now) {
                        return true;
                    }
                    s.timer_at = None;
                    if s.alive && s.node.poll_timeout().is_some_and(|t| t <= now) {
                        s.node.handle_input(now, Input::Timeout);
                    }
                }
                self.drain(node);
            }
            Ev::LinkUp { node, link, peer } => {
                if self.links.contains_key(&link) {
                    self.input(
                        node,
                        Input::LinkUp {
                            link: LinkId(link),
                            peer,
                        },
                    );
                }
            }
            Ev::LinkDown { node, link } => self.input(node, Input::LinkDown { link: LinkId(link) }),
            Ev::ConnectFailed { node, peer, addr } => {
                self.input(node, Input::ConnectFailed { peer, addr });
            }
            Ev::Start { node } => {
                let now = self.now;
                if let Some(s) = self.slots.get_mut(node) {
                    s.node.start(now);
                }
                self.drain(node);
            }
            Ev::Register { node } => self.register(node),
            Ev::Lookup => self.lookup(),
            Ev::Refresh => {
                if let Some(i) = self.random_live() {
                    self.register(i);
                }
            }
            Ev::Churn => self.churn(),
            Ev::CloseAll { node } => {
                let links: Vec<u64> = self
                    .slots
                    .get_mut(node)
                    .map(|s| {
                        s.alive = false;
                        std::mem::take(&mut s.links).into_iter().collect()
                    })
                    .unwrap_or_default();
                self.abort_lookups_of(node);
                for l in links {
                    self.close_link(l, 0);
                }
            }
            Ev::Progress => {
                if self.cfg.progress {
                    let joined = self
                        .slots
                        .iter()
                        .filter(|s| s.alive && s.node.is_joined())
                        .count();
                    eprintln!(
                        "sim: t={:.0}s joined={} lookups={}/{} messages={}",
                        (self.now.0 - SIM_EPOCH_MS) as f64 / 1000.0,
                        joined,
                        self.lookups_done,
                        self.cfg.lookups,
                        self.messages
                    );
                    self.push(self.now.plus_ms(60_000), Ev::Progress);
                }
            }
        }
        true
    }

    fn run_until(&mut self, until: Time) {
        while self.step(until) {}
        self.now = self.now.max(until);
    }

    fn joined_count(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.alive && s.node.is_joined())
            .count()
    }

    /// Builds the overlay: node 0 starts it, the rest join one by one.
    pub fn build(&mut self) {
        let first = self.add_node(true);
        self.push(self.now, Ev::Start { node: first });
        if self.cfg.progress {
            self.push(self.now.plus_ms(60_000), Ev::Progress);
        }
        self.run_until(self.now.plus_ms(100));
        for _ in 1..self.cfg.nodes {
            let i = self.add_node(false);
            self.push(self.now, Ev::Start { node: i });
            let t = self.now.plus_ms(self.cfg.join_interval_ms);
            self.run_until(t);
        }
        // Wait until every peer joined (bounded).
        let deadline = self.now.plus_ms(600_000);
        while self.joined_count() < self.slots.iter().filter(|s| s.alive).count()
            && self.now < deadline
        {
            let t = self.now.plus_ms(1000);
            self.run_until(t);
        }
        // Let stabilisation settle.
        let t = self.now.plus_ms(30_000);
        self.run_until(t);
    }

    /// Adds one peer after [`Sim::build`] and runs until it joined (at most 60 s).
    pub fn join_node(&mut self) -> usize {
        let i = self.add_node(false);
        self.push(self.now, Ev::Start { node: i });
        let deadline = self.now.plus_ms(60_000);
        while !self.slots.get(i).is_some_and(|s| s.node.is_joined()) && self.now < deadline {
            let t = self.now.plus_ms(500);
            self.run_until(t);
        }
        i
    }

    /// Runs the simulation for `ms` more milliseconds.
    pub fn run_for(&mut self, ms: u64) {
        let t = self.now.plus_ms(ms);
        self.run_until(t);
    }

    /// The current virtual time.
    #[must_use]
    pub fn now(&self) -> Time {
        self.now
    }

    /// Calls `f` with peer `i` and the current time (to issue requests), then sends what the
    /// peer produced. Completions come back through [`Sim::take_completions`].
    pub fn with_node<R>(&mut self, i: usize, f: impl FnOnce(&mut Node, Time) -> R) -> Option<R> {
        let now = self.now;
        let r = f(&mut self.slots.get_mut(i)?.node, now);
        self.drain(i);
        Some(r)
    }

    /// Completed requests of peer `i` that were issued through [`Sim::with_node`].
    pub fn take_completions(&mut self, i: usize) -> Vec<Completion> {
        self.completions.remove(&i).unwrap_or_default()
    }

    /// Every live peer registers its user.
    pub fn register_all(&mut self) {
        let n = self.slots.len();
        for i in 0..n {
            let at = self.now.plus_ms(i as u64 % 10_000);
            self.push(at, Ev::Register { node: i });
        }
        let t = self.now.plus_ms(10_000 + 60_000);
        self.run_until(t);
    }

    /// The workload phase: lookups and churn over `duration_secs`.
    pub fn workload(&mut self) {
        let start = self.now;
        self.workload_start = start;
        self.workload_messages.0 = self.messages;
        let dur_ms = self.cfg.duration_secs.max(1) * 1000;
        for k in 0..self.cfg.lookups {
            let at = start.plus_ms(k * dur_ms / self.cfg.lookups.max(1));
            self.push(at, Ev::Lookup);
        }
        // One refresh Store (a re-REGISTER) for every ten lookups.
        for k in 0..self.cfg.lookups / 10 {
            let at = start.plus_ms(k * dur_ms / (self.cfg.lookups / 10).max(1) + 7);
            self.push(at, Ev::Refresh);
        }
        if self.cfg.churn_per_min > 0.0 {
            let gap = (60_000.0 / self.cfg.churn_per_min).max(1.0) as u64;
            let mut t = gap;
            while t < dur_ms {
                self.push(start.plus_ms(t), Ev::Churn);
                t += gap;
            }
        }
        let end = start.plus_ms(dur_ms);
        self.workload_end = end;
        self.run_until(end);
        self.workload_messages.1 = self.messages;
        // Let outstanding lookups finish and the ring settle.
        let t = end.plus_ms(self.cfg.settle_secs * 1000);
        self.run_until(t);
    }

    /// Live peers sorted by Node-ID.
    fn ring(&self) -> Vec<(NodeId, usize)> {
        let mut v: Vec<(NodeId, usize)> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.alive && s.node.is_joined())
            .map(|(i, s)| (s.node.id(), i))
            .collect();
        v.sort();
        v
    }

    /// Successor/predecessor pointers that differ from the true ring.
    #[must_use]
    pub fn ring_errors(&self) -> u64 {
        let ring = self.ring();
        let n = ring.len();
        let mut errors = 0;
        for (pos, (_, i)) in ring.iter().enumerate() {
            let Some(s) = self.slots.get(*i) else {
                continue;
            };
            let t = s.node.table();
            let want = 3.min(n.saturating_sub(1));
            for k in 0..want {
                let succ = ring.get((pos + 1 + k) % n).map(|x| x.0);
                let pred = ring.get((pos + n - 1 - k) % n).map(|x| x.0);
                if t.successors().get(k).copied() != succ {
                    errors += 1;
                }
                if t.predecessors().get(k).copied() != pred {
                    errors += 1;
                }
            }
        }
        errors
    }

    /// A human-readable dump of every live peer's neighbours against the true ring.
    #[must_use]
    pub fn ring_dump(&self) -> String {
        let ring = self.ring();
        let n = ring.len();
        let short = |x: &NodeId| format!("{:04x}", x.0 >> 112);
        let mut out = String::new();
        for (pos, (id, i)) in ring.iter().enumerate() {
            let Some(s) = self.slots.get(*i) else {
                continue;
            };
            let t = s.node.table();
            let want_s: Vec<String> = (1..=3.min(n - 1))
                .filter_map(|k| ring.get((pos + k) % n).map(|x| short(&x.0)))
                .collect();
            let want_p: Vec<String> = (1..=3.min(n - 1))
                .filter_map(|k| ring.get((pos + n - k) % n).map(|x| short(&x.0)))
                .collect();
            let have_s: Vec<String> = t.successors().iter().map(short).collect();
            let have_p: Vec<String> = t.predecessors().iter().map(short).collect();
            let mark = if want_s == have_s && want_p == have_p {
                " "
            } else {
                "*"
            };
            out.push_str(&format!(
                "{mark}{} #{i} succ {:?} want {:?} pred {:?} want {:?} links {}\n",
                short(id),
                have_s,
                want_s,
                have_p,
                want_p,
                s.node.link_count()
            ));
        }
        for (i, s) in self.slots.iter().enumerate() {
            if s.alive && !s.node.is_joined() {
                out.push_str(&format!(
                    "unjoined #{i} {}: {}\n",
                    s.node.id(),
                    s.node.debug_state()
                ));
            }
        }
        let unjoined = self
            .slots
            .iter()
            .filter(|s| s.alive && !s.node.is_joined())
            .count();
        out.push_str(&format!("unjoined live: {unjoined}\n"));
        out
    }

    /// Stored registrations not held by the peer now responsible for them.
    #[must_use]
    pub fn registrations_lost(&self) -> u64 {
        let ring = self.ring();
        let now = self.now.0;
        let mut lost = 0;
        for r in self.regs.iter().filter(|r| r.stored) {
            let Some(k) = r.resource.as_u128() else {
                continue;
            };
            // Responsible: the first peer at or after k.
            let idx = ring.partition_point(|(id, _)| id.0 < k);
            let Some((_, i)) = ring.get(idx % ring.len().max(1)) else {
                lost += 1;
                continue;
            };
            let key = ValueKey::Key(r.owner.to_array().to_vec());
            let held = self.slots.get(*i).is_some_and(|s| {
                s.node
                    .storage()
                    .has_value(now, &r.resource, KIND_SIP_REGISTRATION, &key)
            });
            if !held {
                lost += 1;
            }
        }
        lost
    }

    /// Where each lost registration's copies are (for debugging).
    #[must_use]
    pub fn lost_details(&self) -> String {
        let ring = self.ring();
        let now = self.now.0;
        let mut out = String::new();
        for r in self.regs.iter().filter(|r| r.stored) {
            let Some(k) = r.resource.as_u128() else {
                continue;
            };
            let idx = ring.partition_point(|(id, _)| id.0 < k);
            let Some((rid, ri)) = ring.get(idx % ring.len().max(1)) else {
                continue;
            };
            let key = ValueKey::Key(r.owner.to_array().to_vec());
            let held_by = |i: usize| {
                self.slots.get(i).is_some_and(|s| {
                    s.node
                        .storage()
                        .has_value(now, &r.resource, KIND_SIP_REGISTRATION, &key)
                })
            };
            if held_by(*ri) {
                continue;
            }
            out.push_str(&format!("lost {} responsible {} #{ri}\n", r.resource, rid));
            for (i, s) in self.slots.iter().enumerate() {
                if held_by(i) {
                    out.push_str(&format!(
                        "  held by #{i} {} alive={} joined={}\n",
                        s.node.id(),
                        s.alive,
                        s.node.is_joined()
                    ));
                }
            }
            for d in 0..4usize {
                let j = (idx + ring.len() * 2 + d).wrapping_sub(2) % ring.len().max(1);
                if let Some((id, i)) = ring.get(j) {
                    out.push_str(&format!("  ring[{j}] {id} #{i}\n"));
                }
            }
        }
        out
    }

    /// Read access to a peer.
    #[must_use]
    pub fn node(&self, i: usize) -> Option<&Node> {
        self.slots.get(i).map(|s| &s.node)
    }

    /// Number of peers ever created.
    #[must_use]
    pub fn node_count(&self) -> usize {
        self.slots.len()
    }

    /// Mean distance-based sanity: fraction of live peers whose first successor is right.
    #[must_use]
    pub fn report(&self) -> SimReport {
        let mut hops = self.hops.clone();
        hops.sort_unstable();
        let mean = if hops.is_empty() {
            0.0
        } else {
            hops.iter().map(|h| f64::from(*h)).sum::<f64>() / hops.len() as f64
        };
        let p99 = if hops.is_empty() {
            0
        } else {
            let idx = ((hops.len() as f64) * 0.99).ceil() as usize;
            hops.get(idx.saturating_sub(1).min(hops.len() - 1))
                .copied()
                .unwrap_or(0)
        };
        let done = self.lookups_done;
        SimReport {
            nodes: self.cfg.nodes,
            seed: self.cfg.seed,
            lookups: done,
            lookup_success_rate: if done == 0 {
                0.0
            } else {
                self.lookups_ok as f64 / done as f64
            },
            mean_hops: mean,
            p99_hops: p99,
            registrations_stored: self.registrations_stored,
            registrations_lost: self.registrations_lost(),
            virtual_seconds: (self.now.0 - SIM_EPOCH_MS) as f64 / 1000.0,
            wall_seconds: 0.0,
            nodes_alive: self.ring().len(),
            churn_joins: self.churn.0,
            churn_leaves: self.churn.1,
            churn_crashes: self.churn.2,
            ring_errors: self.ring_errors(),
            messages: self.messages,
            lookups_aborted: self.lookups_aborted,
            messages_per_peer_min: {
                let (a, b) = self.workload_messages;
                let mins =
                    self.workload_end.0.saturating_sub(self.workload_start.0) as f64 / 60_000.0;
                if mins > 0.0 && self.cfg.nodes > 0 {
                    b.saturating_sub(a) as f64 / mins / self.cfg.nodes as f64
                } else {
                    0.0
                }
            },
            mean_update_interval_s: {
                let live: Vec<u64> = self
                    .slots
                    .iter()
                    .filter(|s| s.alive && s.node.is_joined())
                    .map(|s| s.node.update_interval_ms())
                    .collect();
                if live.is_empty() {
                    0.0
                } else {
                    live.iter().sum::<u64>() as f64 / live.len() as f64 / 1000.0
                }
            },
        }
    }
}

/// Runs a whole simulation: build, register, workload with churn, settle, report.
#[must_use]
pub fn run(cfg: SimConfig) -> SimReport {
    let mut sim = Sim::new(cfg);
    sim.build();
    sim.register_all();
    sim.workload();
    sim.report()
}

/// Distance helper re-exported for tests.
#[must_use]
pub fn ring_distance(a: NodeId, b: NodeId) -> u128 {
    dist(a.0, b.0)
}
