//! ReDiR (RFC 7374) on the deterministic simulator: real engines, real Store and Fetch of the
//! REDIR kind through CHORD-RELOAD routing (the model test in `reload::usage::redir` checks
//! the tree walk on an ideal DHT with 1500 peers; this one runs it through the overlay).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reload::codec::Codec;
use reload::node::{Outcome, RequestId};
use reload::sim::{Sim, SimConfig};
use reload::storage::{DataValue, KIND_REDIR, Selector, ValueKey};
use reload::usage::redir::{Lookup, Next, RedirParams, Registration, Step};
use reload::wire::{NodeId, RedirServiceProvider};
use std::collections::{BTreeSet, HashMap};

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
