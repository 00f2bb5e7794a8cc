//! ReDiR (RFC 7374): service discovery over a tree of dictionary resources.
//!
//! Level `l` of the tree splits the 128-bit identifier space into `b^l` equal intervals; tree
//! node `(l, j)` covers the `j`-th and lives at the Resource-ID of the Resource Name
//! `"<namespace>,<level>,<j>"` (level and j in decimal ASCII, e.g. `pstn-gateway,2,37`),
//! hashed with the overlay's SHA-1/128. RFC 7374 section 4 names a tree node by
//! `H(namespace, level, node)`; the RFC text itself could not be read here, and this textual
//! form is the one RELOAD.NET (the one other implementation found) uses for its REDIR
//! resource names. It replaces an earlier binary `namespace || uint16 level || uint16 j`
//! (docs/DEPLOY.md "RFC verification (7851, 7374, 7363)").
//!
//! Registration (a provider `n`): store `n` at the starting level's node containing `n`, then
//! fetch it; while `n` is the lowest or highest id there, also store one level up (to the
//! root). Then walk down from the starting level, storing at each deeper node containing
//! `n`, until `n` is alone in its node (or the deepest level is reached). Registrations are
//! refreshed periodically by running this again.
//!
//! Lookup (a key `k`): fetch the starting level's node containing `k`. If no record there is
//! `>= k`, go up (at the root the successor wraps to the lowest record). If `k` is sandwiched
//! between two records of its own sub-interval one level down, go down. Otherwise the lowest
//! record `>= k` is the closest successor. Each step is a [`Step`] the caller performs
//! (Store if asked, then Fetch) and answers with the provider ids it fetched.

use crate::codec::Opaque;
use crate::wire::{NodeId, RedirServiceProvider, ResourceId, sha1_128};

/// REDIR Kind-ID (RFC 7374).
pub const REDIR_KIND: u32 = 104;

/// Tree parameters (RFC 7374 configuration: branching factor and starting level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirParams {
    /// Namespace, e.g. `pstn-gateway`.
    pub namespace: Vec<u8>,
    /// Branching factor b (>= 2).
    pub branching: u32,
    /// Starting level.
    pub starting_level: u16,
    /// Deepest level used (b^max_level must fit in 64 bits).
    pub max_level: u16,
}

impl RedirParams {
    /// b = 10, starting level 2 (RFC 7374's suggested defaults), deepest level 16.
    pub fn new(namespace: &str) -> Self {
        RedirParams {
            namespace: namespace.as_bytes().to_vec(),
            branching: 10,
            starting_level: 2,
            max_level: 16,
        }
    }

    /// Index of the node at `level` whose interval contains `key`: floor(key * b^l / 2^128).
    pub fn node_index(&self, level: u16, key: u128) -> u64 {
        let m = (self.branching.max(2) as u128).saturating_pow(u32::from(level));
        let m = m.min(u64::MAX as u128);
        let hi = key >> 64;
        let lo = key & u128::from(u64::MAX);
        // (hi*2^64 + lo) * m / 2^128 = (hi*m + (lo*m >> 64)) >> 64
        ((hi * m + ((lo * m) >> 64)) >> 64) as u64
    }

    /// Resource Name of tree node (level, j): `namespace,level,j` with decimal numbers.
    pub fn resource_name(&self, level: u16, j: u64) -> Vec<u8> {
        let mut name = self.namespace.clone();
        name.extend_from_slice(format!(",{level},{j}").as_bytes());
        name
    }

    /// Resource-ID of tree node (level, j): the hash of its [`Self::resource_name`].
    pub fn resource_id(&self, level: u16, j: u64) -> ResourceId {
        ResourceId(sha1_128(&self.resource_name(level, j)).to_vec())
    }

    fn step(&self, level: u16, key: u128, store: Option<NodeId>) -> Step {
        let j = self.node_index(level, key);
        Step {
            level,
            node: j,
            resource: self.resource_id(level, j),
            store: store.map(|n| RedirServiceProvider {
                service_provider: n,
                namespace: Opaque(self.namespace.clone()),
                level,
                node: j as u16,
            }),
        }
    }
}

/// One round trip for the caller: Store `store` (if any) at `resource` under dictionary key
/// `store.service_provider`, then Fetch the whole dictionary and report the provider ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Tree level.
    pub level: u16,
    /// Node index within the level.
    pub node: u64,
    /// Where the tree node lives.
    pub resource: ResourceId,
    /// The value to store first, if registering.
    pub store: Option<RedirServiceProvider>,
}

/// What a state machine wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Perform this step and call `fetched` with the result.
    Step(Step),
    /// Finished; for a lookup, the provider found (None if the namespace is empty).
    Done(Option<NodeId>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Up,
    Down,
}

/// A provider's registration walk.
#[derive(Debug, Clone)]
pub struct Registration {
    params: RedirParams,
    me: NodeId,
    level: u16,
    phase: Phase,
    alone_at_start: bool,
}

impl Registration {
    /// Starts registering `me`; returns the first step.
    pub fn start(params: RedirParams, me: NodeId) -> (Self, Step) {
        let l = params.starting_level;
        let step = params.step(l, me.0, Some(me));
        (
            Registration {
                params,
                me,
                level: l,
                phase: Phase::Up,
                alone_at_start: false,
            },
            step,
        )
    }

    /// The providers fetched after the last step's store.
    pub fn fetched(&mut self, ids: &[NodeId]) -> Next {
        let me = self.me;
        // Only registrations of our own interval count: deep levels have more nodes than the
        // uint16 node index distinguishes, so one Resource-ID may hold several intervals.
        let j = self.params.node_index(self.level, me.0);
        let ids: Vec<NodeId> = ids
            .iter()
            .copied()
            .filter(|i| self.params.node_index(self.level, i.0) == j)
            .collect();
        let extreme = ids.iter().all(|i| i.0 >= me.0) || ids.iter().all(|i| i.0 <= me.0);
        let alone = ids.iter().all(|i| *i == me);
        match self.phase {
            Phase::Up => {
                if self.level == self.params.starting_level {
                    self.alone_at_start = alone;
                }
                if extreme && self.level > 0 {
                    self.level -= 1;
                    return Next::Step(self.params.step(self.level, me.0, Some(me)));
                }
                self.down_from(self.params.starting_level)
            }
            Phase::Down => {
                if alone {
                    return Next::Done(Some(me));
                }
                self.down_from(self.level)
            }
        }
    }

    fn down_from(&mut self, l: u16) -> Next {
        if (l == self.params.starting_level && self.alone_at_start) || l >= self.params.max_level {
            return Next::Done(Some(self.me));
        }
        self.phase = Phase::Down;
        self.level = l + 1;
        Next::Step(self.params.step(self.level, self.me.0, Some(self.me)))
    }
}

/// A lookup of the provider closest after `key` (its successor on the ring).
#[derive(Debug, Clone)]
pub struct Lookup {
    params: RedirParams,
    key: u128,
    level: u16,
    went_up: bool,
    steps: u32,
}

impl Lookup {
    /// Starts a lookup; returns the first step (a Fetch).
    pub fn start(params: RedirParams, key: u128) -> (Self, Step) {
        let l = params.starting_level;
        let step = params.step(l, key, None);
        (
            Lookup {
                params,
                key,
                level: l,
                went_up: false,
                steps: 1,
            },
            step,
        )
    }

    /// The providers fetched at the last step.
    pub fn fetched(&mut self, ids: &[NodeId]) -> Next {
        let p = &self.params;
        let k = self.key;
        let j = p.node_index(self.level, k);
        let here: Vec<u128> = ids
            .iter()
            .map(|i| i.0)
            .filter(|i| p.node_index(self.level, *i) == j)
            .collect();
        let succ = here.iter().filter(|i| **i >= k).min().copied();
        let limit = 2 * u32::from(p.max_level) + 4;
        self.steps += 1;
        let Some(s) = succ else {
            if self.level == 0 {
                return Next::Done(here.iter().min().map(|i| NodeId(*i)));
            }
            if self.steps > limit {
                return Next::Done(None);
            }
            self.level -= 1;
            self.went_up = true;
            return Next::Step(p.step(self.level, k, None));
        };
        if self.level < p.max_level && !self.went_up && self.steps <= limit {
            let child = p.node_index(self.level + 1, k);
            let sub: Vec<u128> = here
                .iter()
                .copied()
                .filter(|i| p.node_index(self.level + 1, *i) == child)
                .collect();
            let below = sub.iter().any(|i| *i < k);
            let above = sub.iter().any(|i| *i >= k);
            if below && above {
                self.level += 1;
                return Next::Step(p.step(self.level, k, None));
            }
        }
        Next::Done(Some(NodeId(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::collections::{BTreeMap, BTreeSet, HashMap};

    #[test]
    fn node_index_arithmetic() {
        let p = RedirParams {
            branching: 4,
            ..RedirParams::new("x")
        };
        assert_eq!(p.node_index(0, u128::MAX), 0);
        assert_eq!(p.node_index(1, 0), 0);
        assert_eq!(p.node_index(1, 1 << 126), 1);
        assert_eq!(p.node_index(1, u128::MAX), 3);
        assert_eq!(p.node_index(2, (1 << 124) - 1), 0);
        assert_eq!(p.node_index(2, 1 << 124), 1);
        let p10 = RedirParams::new("x");
        assert_eq!(p10.node_index(2, u128::MAX), 99);
        assert_eq!(p10.node_index(2, u128::MAX / 10 + 1), 10);
        // Resource-IDs differ per level and node, and hash the name "ns,level,j".
        assert_eq!(p10.resource_name(2, 7), b"x,2,7");
        assert_eq!(p10.resource_name(12, 123_456), b"x,12,123456");
        assert_eq!(p10.resource_id(2, 7).0, sha1_128(b"x,2,7").to_vec());
        assert_ne!(p10.resource_id(2, 7), p10.resource_id(3, 7));
        assert_ne!(p10.resource_id(1, 27), p10.resource_id(12, 7));
    }

    /// An ideal DHT: every step lands at the peer responsible for its Resource-ID.
    struct Model {
        peers: BTreeSet<u128>,
        dict: HashMap<ResourceId, BTreeSet<u128>>,
        per_level: BTreeMap<u16, (u64, u64)>,
        per_node: HashMap<(u16, u64), u64>,
        per_peer: HashMap<u128, u64>,
    }

    impl Model {
        fn responsible(&self, k: u128) -> u128 {
            self.peers
                .range(k..)
                .next()
                .or(self.peers.iter().next())
                .copied()
                .unwrap()
        }
        fn run(&mut self, s: &Step) -> Vec<NodeId> {
            let k = s.resource.as_u128().unwrap();
            *self.per_peer.entry(self.responsible(k)).or_default() += 1;
            *self.per_node.entry((s.level, s.node)).or_default() += 1;
            let e = self.per_level.entry(s.level).or_default();
            if let Some(v) = &s.store {
                e.0 += 1;
                self.dict
                    .entry(s.resource.clone())
                    .or_default()
                    .insert(v.service_provider.0);
            }
            e.1 += 1;
            self.dict
                .get(&s.resource)
                .map(|d| d.iter().map(|i| NodeId(*i)).collect())
                .unwrap_or_default()
        }
    }

    fn drive(
        model: &mut Model,
        mut step: Step,
        mut f: impl FnMut(&[NodeId]) -> Next,
    ) -> Option<NodeId> {
        loop {
            let ids = model.run(&step);
            match f(&ids) {
                Next::Step(s) => step = s,
                Next::Done(r) => return r,
            }
        }
    }

    #[test]
    fn lookups_find_the_closest_successor_provider() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let peers: BTreeSet<u128> = (0..1500).map(|_| rng.random()).collect();
        let mut model = Model {
            peers,
            dict: HashMap::new(),
            per_level: BTreeMap::new(),
            per_node: HashMap::new(),
            per_peer: HashMap::new(),
        };
        let params = RedirParams::new("pstn-gateway");
        let providers: Vec<u128> = (0..300).map(|_| rng.random()).collect();
        // Register everyone, then one refresh round (RFC 7374 registrations are refreshed).
        for _round in 0..2 {
            for p in &providers {
                let (mut r, s) = Registration::start(params.clone(), NodeId(*p));
                drive(&mut model, s, |ids| r.fetched(ids));
            }
        }
        let reg_steps: u64 = model.per_level.values().map(|v| v.1).sum();
        let sorted: BTreeSet<u128> = providers.iter().copied().collect();
        let mut ok = 0;
        let n = 2000;
        let mut lookup_steps = 0u64;
        let before: u64 = model.per_level.values().map(|v| v.1).sum();
        for _ in 0..n {
            let k: u128 = rng.random();
            let want = sorted.range(k..).next().or(sorted.iter().next()).copied();
            let (mut l, s) = Lookup::start(params.clone(), k);
            let got = drive(&mut model, s, |ids| l.fetched(ids));
            if got.map(|g| g.0) == want {
                ok += 1;
            }
        }
        lookup_steps += model.per_level.values().map(|v| v.1).sum::<u64>() - before;
        eprintln!(
            "ReDiR: 1500 peers, 300 providers, b=10, start level 2: {ok}/{n} lookups exact; \
             {:.2} fetches/lookup; {:.2} steps/registration",
            lookup_steps as f64 / n as f64,
            reg_steps as f64 / 600.0
        );
        for (l, (st, fe)) in &model.per_level {
            let nodes = model
                .per_node
                .keys()
                .filter(|(lv, _)| lv == l)
                .count()
                .max(1);
            eprintln!(
                "  level {l}: {st} stores, {fe} fetches over {nodes} tree nodes ({:.1} ops/node)",
                (*fe) as f64 / nodes as f64
            );
        }
        let max_peer = model.per_peer.values().max().copied().unwrap_or(0);
        let total: u64 = model.per_peer.values().sum();
        eprintln!("  busiest peer: {max_peer} of {total} operations");
        assert_eq!(ok, n, "every lookup must find the closest successor");
    }

    #[test]
    fn empty_namespace_and_single_provider() {
        let params = RedirParams::new("empty");
        let (mut l, _s) = Lookup::start(params.clone(), 5);
        let mut r = l.fetched(&[]);
        while let Next::Step(_) = r {
            r = l.fetched(&[]);
        }
        assert_eq!(r, Next::Done(None));
        let (mut reg, s) = Registration::start(params, NodeId(42));
        assert_eq!(s.level, 2);
        // Alone at the starting level and extreme: it climbs to the root, then stops.
        let mut levels = vec![s.level];
        let mut next = reg.fetched(&[NodeId(42)]);
        while let Next::Step(st) = next {
            levels.push(st.level);
            next = reg.fetched(&[NodeId(42)]);
        }
        assert_eq!(levels, vec![2, 1, 0]);
    }
}
