//! Usages on the deterministic simulator: real engines, real Store/Fetch/Find through
//! CHORD-RELOAD routing. ReDiR (RFC 7374; the model test in `reload::usage::redir` checks the
//! tree walk on an ideal DHT) and TURN-SERVICE discovery (RFC 6940 9; model test in
//! `reload::usage::turn`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reload::codec::Codec;
use reload::node::{Outcome, RequestId};
use reload::sim::{Sim, SimConfig};
use reload::storage::{DataValue, KIND_REDIR, KIND_TURN_SERVICE, Selector, ValueKey};
use reload::usage::redir::{Lookup, Next, RedirParams, Registration, Step};
use reload::usage::turn::{Discovery, TurnNext, advertise};
use reload::wire::{IpAddressPort, NodeId, RedirServiceProvider, TurnServer};
use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};

/// Waits (bounded, in virtual time) for request `req` of peer `i`.
fn wait(sim: &mut Sim, i: usize, req: RequestId) -> Outcome {
    for _ in 0..600 {
        sim.run_for(100);
        if let Some((_, r)) = sim.take_completions(i).into_iter().find(|(r, _)| *r == req) {
            return r.expect("request failed");
        }
    }
    panic!("no completion for {req:?} within 60 s of virtual time");
}

/// Performs one ReDiR step from peer `i` (Store if asked, then Fetch); the providers found.
/// Counts the operations per tree node in `load`.
fn perform(
    sim: &mut Sim,
    i: usize,
    step: &Step,
    namespace: &[u8],
    load: &mut HashMap<(u16, u64), u64>,
) -> Vec<NodeId> {
    *load.entry((step.level, step.node)).or_default() += 1;
    if let Some(v) = &step.store {
        let value = v.to_bytes().unwrap();
        let key = ValueKey::Key(v.service_provider.to_array().to_vec());
        let res = step.resource.clone();
        let req = sim
            .with_node(i, |n, t| {
                n.store(
                    t,
                    res,
                    KIND_REDIR,
                    vec![(
                        key,
                        DataValue {
                            exists: true,
                            value,
                        },
                        3600,
                    )],
                )
            })
            .unwrap();
        assert!(
            matches!(wait(sim, i, req), Outcome::Stored(_)),
            "ReDiR store refused"
        );
    }
    let res = step.resource.clone();
    let req = sim
        .with_node(i, |n, t| {
            n.fetch(t, res, vec![(KIND_REDIR, Selector::Dictionary(Vec::new()))])
        })
        .unwrap();
    let Outcome::Fetched(kinds) = wait(sim, i, req) else {
        panic!("ReDiR fetch: unexpected outcome");
    };
    let mut ids = BTreeSet::new();
    for v in kinds
        .iter()
        .filter(|k| k.kind == KIND_REDIR)
        .flat_map(|k| k.values.iter())
        .filter(|v| v.value.exists)
    {
        let p = RedirServiceProvider::from_bytes(&v.value.value).unwrap();
        assert_eq!(p.namespace.0, namespace);
        ids.insert(p.service_provider);
    }
    ids.into_iter().collect()
}

/// 1000 peers, 60 of them providers of `pstn-gateway`: every lookup from a random peer for a
/// random key finds the provider that is the key's closest successor, and the load spreads
/// over many tree nodes (no single Resource-ID takes most of the traffic).
#[test]
fn redir_on_1000_simulated_peers_finds_the_closest_provider() {
    let mut sim = Sim::new(SimConfig {
        nodes: 1000,
        seed: 7,
        ..SimConfig::default()
    });
    sim.build();
    let params = RedirParams::new("pstn-gateway");
    let ns = params.namespace.clone();
    let mut load = HashMap::new();
    let n = sim.node_count();
    // Providers: every 16th peer that is alive and joined.
    let providers: Vec<usize> = (0..n)
        .step_by(16)
        .filter(|i| sim.node(*i).is_some_and(|p| p.is_joined()))
        .take(60)
        .collect();
    let mut provider_ids = BTreeSet::new();
    for &p in &providers {
        let me = sim.node(p).unwrap().id();
        provider_ids.insert(me.0);
        let (mut reg, mut step) = Registration::start(params.clone(), me);
        let mut steps = 0;
        loop {
            let ids = perform(&mut sim, p, &step, &ns, &mut load);
            steps += 1;
            assert!(steps < 64, "registration walk does not end");
            match reg.fetched(&ids) {
                Next::Step(s) => step = s,
                Next::Done(_) => break,
            }
        }
    }
    let reg_ops: u64 = load.values().sum();
    let lookups = 300u64;
    let mut ok = 0;
    let mut lookup_ops = 0u64;
    for k in 0..lookups {
        let from = (k as usize * 37 + 5) % n;
        if !sim.node(from).is_some_and(|p| p.is_joined()) {
            continue;
        }
        let key = u128::from(k).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
        let want = provider_ids
            .range(key..)
            .next()
            .or(provider_ids.iter().next())
            .copied();
        let (mut l, mut step) = Lookup::start(params.clone(), key);
        let got = loop {
            let ids = perform(&mut sim, from, &step, &ns, &mut load);
            lookup_ops += 1;
            assert!(lookup_ops < 64 * lookups, "lookup walk does not end");
            match l.fetched(&ids) {
                Next::Step(s) => step = s,
                Next::Done(r) => break r,
            }
        };
        if got.map(|g| g.0) == want {
            ok += 1;
        }
    }
    let busiest = load.values().max().copied().unwrap_or(0);
    let total: u64 = load.values().sum();
    eprintln!(
        "ReDiR on 1000 simulated peers: {} providers ({:.1} steps each), {ok}/{lookups} lookups exact ({:.2} steps each), {} tree nodes used, busiest {busiest} of {total} operations",
        providers.len(),
        reg_ops as f64 / providers.len() as f64,
        lookup_ops as f64 / lookups as f64,
        load.len()
    );
    assert_eq!(ok, lookups, "every lookup finds the closest successor");
    assert!(
        busiest * 5 < total,
        "one tree node took {busiest} of {total} operations"
    );
}

/// 1000 peers, 40 of them TURN servers advertising with turn density 5: a discovery from
/// any peer (Find at a random Resource-ID, then Fetch; RFC 6940 9) finds an advertised server.
#[test]
fn turn_service_discovery_on_1000_simulated_peers() {
    let mut sim = Sim::new(SimConfig {
        nodes: 1000,
        seed: 11,
        ..SimConfig::default()
    });
    sim.build();
    let n = sim.node_count();
    let servers: Vec<usize> = (3..n)
        .step_by(25)
        .filter(|i| sim.node(*i).is_some_and(|p| p.is_joined()))
        .take(40)
        .collect();
    let mut advertised = std::collections::HashSet::new();
    for (k, &s) in servers.iter().enumerate() {
        let me = sim.node(s).unwrap().id();
        let addr = IpAddressPort::from(SocketAddr::from((
            Ipv4Addr::from(0x0a00_0000 + k as u32),
            3478,
        )));
        advertised.insert(addr.clone());
        for (resource, value) in advertise(me, 5, addr) {
            let bytes = value.to_bytes().unwrap();
            let req = sim
                .with_node(s, |node, t| {
                    node.store(
                        t,
                        resource,
                        KIND_TURN_SERVICE,
                        vec![(
                            ValueKey::Single,
                            DataValue {
                                exists: true,
                                value: bytes,
                            },
                            600,
                        )],
                    )
                })
                .unwrap();
            assert!(
                matches!(wait(&mut sim, s, req), Outcome::Stored(_)),
                "TURN-SERVICE store refused (NODE-MULTIPLE)"
            );
        }
    }
    let discoveries = 200u64;
    let (mut ok, mut finds) = (0, 0u64);
    for k in 0..discoveries {
        let from = (k as usize * 53 + 1) % n;
        if !sim.node(from).is_some_and(|p| p.is_joined()) {
            continue;
        }
        let rnd = |j: u64| {
            u128::from(k * 1000 + j).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
        };
        let (mut d, mut next) = Discovery::start(rnd(0), 20);
        let mut j = 1;
        let found = loop {
            j += 1;
            next = match next {
                TurnNext::Find(r) => {
                    finds += 1;
                    let req = sim
                        .with_node(from, |node, t| node.find(t, r, vec![KIND_TURN_SERVICE]))
                        .unwrap();
                    let Outcome::Found(v) = wait(&mut sim, from, req) else {
                        panic!("Find: unexpected outcome");
                    };
                    let closest = v
                        .into_iter()
                        .find(|(kind, _)| *kind == KIND_TURN_SERVICE)
                        .map(|(_, r)| r)
                        .filter(|r| r.0.iter().any(|b| *b != 0));
                    d.found(closest, rnd(j))
                }
                TurnNext::Fetch(r) => {
                    let req = sim
                        .with_node(from, |node, t| {
                            node.fetch(t, r, vec![(KIND_TURN_SERVICE, Selector::Single)])
                        })
                        .unwrap();
                    let Outcome::Fetched(kinds) = wait(&mut sim, from, req) else {
                        panic!("Fetch: unexpected outcome");
                    };
                    let servers: Vec<TurnServer> = kinds
                        .iter()
                        .filter(|k| k.kind == KIND_TURN_SERVICE)
                        .flat_map(|k| k.values.iter())
                        .filter(|v| v.value.exists)
                        .filter_map(|v| TurnServer::from_bytes(&v.value.value).ok())
                        .collect();
                    d.fetched(servers, rnd(j))
                }
                TurnNext::Done(v) => break v,
            };
        };
        if !found.is_empty() && found.iter().all(|s| advertised.contains(&s.server_address)) {
            ok += 1;
        }
    }
    eprintln!(
        "TURN-SERVICE on 1000 simulated peers: {} servers x density 5, {ok}/{discoveries} discoveries found a server, {:.2} Finds each",
        servers.len(),
        finds as f64 / discoveries as f64
    );
    assert_eq!(
        ok, discoveries,
        "every discovery finds an advertised server"
    );
}
