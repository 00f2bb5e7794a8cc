//! TURN-SERVICE (RFC 6940 9): advertising and discovering TURN servers.
//!
//! A peer that offers TURN stores a [`TurnServer`] at `H(Node-ID || d)` for each
//! `d` in 1..=turn-density (Kind 2, SINGLE-VALUE, NODE-MULTIPLE). RFC 6940 section 9 says
//! only that the peer "forms a Resource Name by concatenating its Node-ID and the value d"
//! and hashes it; section 7.3.4 (NODE-MULTIPLE, `H(Node-ID || i)`) does not fix the width of
//! `i` either. We encode `d` as a uint32 big-endian after the 16-byte Node-ID, the same choice
//! as for NODE-MULTIPLE verification in `storage` (the verifier tries every `i` up to the
//! Kind's maximum with the same encoding). Another implementation that hashes `d` as one
//! byte would not find our advertisements (docs/DEPLOY.md "RFC verification (7851, 7374,
//! 7363)" records it). A client discovers servers by a Find for
//! TURN-SERVICE at a random Resource-ID, then a Fetch of the Resource-ID the Find returns;
//! when the answering peer stores none it tries another random key.

use crate::wire::{IpAddressPort, NodeId, ResourceId, TurnServer, sha1_128};

/// TURN-SERVICE Kind-ID (RFC 6940 14.6).
pub const TURN_SERVICE_KIND: u32 = 2;

/// The Resource-ID of advertisement `d` of `node`.
pub fn turn_resource(node: NodeId, d: u32) -> ResourceId {
    let mut input = node.to_array().to_vec();
    input.extend_from_slice(&d.to_be_bytes());
    ResourceId(sha1_128(&input).to_vec())
}

/// The Stores a TURN server makes: one per `d` in 1..=density (density 0 = none; values
/// above 255 are capped, since `iteration` is a uint8).
pub fn advertise(
    node: NodeId,
    density: u32,
    server: IpAddressPort,
) -> Vec<(ResourceId, TurnServer)> {
    (1..=density.min(255))
        .map(|d| {
            (
                turn_resource(node, d),
                TurnServer {
                    iteration: d as u8, // ok: capped at 255 above
                    server_address: server.clone(),
                },
            )
        })
        .collect()
}

/// What discovery wants the caller to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnNext {
    /// Find TURN-SERVICE at this Resource-ID; report with [`Discovery::found`].
    Find(ResourceId),
    /// Fetch TURN-SERVICE at this Resource-ID; report with [`Discovery::fetched`].
    Fetch(ResourceId),
    /// Done: the servers found (empty after `max_tries` fruitless Finds).
    Done(Vec<TurnServer>),
}

/// A TURN server discovery.
#[derive(Debug, Clone)]
pub struct Discovery {
    tries: u32,
    max_tries: u32,
}

impl Discovery {
    /// Starts with a random key from the caller (no RNG in this crate).
    pub fn start(random_key: u128, max_tries: u32) -> (Self, TurnNext) {
        (
            Discovery {
                tries: 1,
                max_tries,
            },
            TurnNext::Find(ResourceId(random_key.to_be_bytes().to_vec())),
        )
    }

    /// The Find answer for TURN-SERVICE (`None` or an empty Resource-ID: nothing stored
    /// there); `next_random` is used if another try is needed.
    pub fn found(&mut self, closest: Option<ResourceId>, next_random: u128) -> TurnNext {
        match closest {
            Some(r) if !r.0.is_empty() => TurnNext::Fetch(r),
            _ => self.retry(next_random),
        }
    }

    /// The values fetched.
    pub fn fetched(&mut self, servers: Vec<TurnServer>, next_random: u128) -> TurnNext {
        if servers.is_empty() {
            self.retry(next_random)
        } else {
            TurnNext::Done(servers)
        }
    }

    /// Finds made so far.
    pub fn tries(&self) -> u32 {
        self.tries
    }

    fn retry(&mut self, k: u128) -> TurnNext {
        if self.tries >= self.max_tries {
            return TurnNext::Done(Vec::new());
        }
        self.tries += 1;
        TurnNext::Find(ResourceId(k.to_be_bytes().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::collections::{BTreeMap, BTreeSet};
    use std::net::{Ipv4Addr, SocketAddr};

    fn addr(i: u32) -> IpAddressPort {
        IpAddressPort::from(SocketAddr::from((Ipv4Addr::from(0x0a00_0000 + i), 3478)))
    }

    #[test]
    fn resource_ids() {
        let n = NodeId(7);
        let mut inp = 7u128.to_be_bytes().to_vec();
        inp.extend_from_slice(&[0, 0, 0, 2]);
        assert_eq!(turn_resource(n, 2).0, sha1_128(&inp).to_vec());
        let ads = advertise(n, 3, addr(1));
        assert_eq!(ads.len(), 3);
        assert_eq!(ads[2].1.iteration, 3);
        assert!(advertise(n, 0, addr(1)).is_empty());
    }

    #[test]
    fn discovery_in_a_model_overlay() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let peers: BTreeSet<u128> = (0..1000).map(|_| rng.random()).collect();
        let resp = |k: u128| {
            peers
                .range(k..)
                .next()
                .or(peers.iter().next())
                .copied()
                .unwrap()
        };
        // 50 TURN servers, density 3: each peer stores the advertisements it is responsible for.
        let mut stored: BTreeMap<u128, BTreeMap<u128, TurnServer>> = BTreeMap::new();
        let mut servers = std::collections::HashSet::new();
        for i in 0..50u32 {
            let n = NodeId(rng.random());
            for (r, v) in advertise(n, 3, addr(i)) {
                let k = r.as_u128().unwrap();
                stored.entry(resp(k)).or_default().insert(k, v.clone());
                servers.insert(v.server_address);
            }
        }
        let lookups = 500;
        let (mut ok, mut tries) = (0, 0);
        for _ in 0..lookups {
            let (mut d, mut next) = Discovery::start(rng.random(), 20);
            let result = loop {
                next = match next {
                    TurnNext::Find(r) => {
                        let k = r.as_u128().unwrap();
                        // Find: the closest stored Resource-ID at the responsible peer.
                        let closest = stored.get(&resp(k)).and_then(|m| {
                            m.keys()
                                .min_by_key(|x| x.wrapping_sub(k))
                                .map(|x| ResourceId(x.to_be_bytes().to_vec()))
                        });
                        d.found(closest, rng.random())
                    }
                    TurnNext::Fetch(r) => {
                        let k = r.as_u128().unwrap();
                        let v = stored
                            .get(&resp(k))
                            .and_then(|m| m.get(&k))
                            .cloned()
                            .into_iter()
                            .collect();
                        d.fetched(v, rng.random())
                    }
                    TurnNext::Done(v) => break v,
                };
            };
            tries += d.tries();
            if result.iter().all(|s| servers.contains(&s.server_address)) && !result.is_empty() {
                ok += 1;
            }
        }
        eprintln!(
            "TURN: 1000 peers, 50 servers x density 3: {ok}/{lookups} discoveries, {:.2} Finds each",
            tries as f64 / lookups as f64
        );
        assert_eq!(ok, lookups);
    }
}
