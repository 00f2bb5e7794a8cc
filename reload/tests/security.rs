//! Attacks on a simulated overlay whose peers use the X.509 provider with real certificates:
//! forged, tampered and replayed Stores, another user's AOR, a foreign CA, an expired
//! certificate, an impersonated Node-ID, a replica from a non-neighbour, and the registrar
//! role for SIP-REGISTRATION. Each attack is refused and the stored data stays as it was.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/pki.rs"]
mod pki;

use pki::{NOW, TestCa, TestIdentity};
use reload::crypto::CryptoProvider;
use reload::crypto::SignatureParts;
use reload::crypto::x509::X509Crypto;
use reload::node::msg::error_code;
use reload::node::{Node, Outcome, RequestError, RequestId, sign_stored_value};
use reload::sim::{Sim, SimConfig, SimCrypto};
use reload::storage::{DataValue, KIND_SIP_REGISTRATION, Selector, StoredValue, ValueKey};
use reload::wire::{NodeId, ResourceId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const OVERLAY: &str = "sim.invalid";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Plan {
    Normal,
    Registrar,
    ForeignCa,
    Expired,
    Impersonate,
}

struct World {
    ca: TestCa,
    foreign: TestCa,
    plans: Mutex<HashMap<usize, Plan>>,
    /// Index -> identity the peer was given (for tests that sign as that peer).
    ids: Mutex<HashMap<usize, TestIdentity>>,
}

fn user_of(i: usize) -> String {
    format!("user{i}@sim.invalid")
}

fn provider(root: &[u8], id: &TestIdentity) -> Box<dyn CryptoProvider> {
    Box::new(X509Crypto::new(OVERLAY, root, &id.cert_der, &id.key_der, 0).unwrap())
}

impl World {
    fn identity(&self, i: usize, id: NodeId) -> (NodeId, TestIdentity) {
        let plan = self
            .plans
            .lock()
            .unwrap()
            .get(&i)
            .copied()
            .unwrap_or(Plan::Normal);
        let user = user_of(i);
        let year = 86_400 * 365;
        let ident = match plan {
            Plan::Normal => self.ca.node(&user, id),
            Plan::Registrar => self.ca.issue(
                "registrar@sim.invalid",
                &[id],
                &["sim.invalid"],
                NOW - 3600,
                NOW + year,
                false,
            ),
            Plan::ForeignCa => self.foreign.node(&user, id),
            Plan::Expired => self
                .ca
                .issue(&user, &[id], &[], NOW - 7200, NOW - 3600, false),
            Plan::Impersonate => self.ca.node(&user, NodeId(id.0 ^ 0xffff)),
        };
        (id, ident)
    }
}

fn setup(nodes: usize) -> (Sim, Arc<World>) {
    setup_with(nodes, |_| {})
}

fn setup_with(nodes: usize, tweak: impl FnOnce(&mut SimConfig)) -> (Sim, Arc<World>) {
    let world = Arc::new(World {
        ca: TestCa::new(OVERLAY),
        foreign: TestCa::new(OVERLAY),
        plans: Mutex::new(HashMap::new()),
        ids: Mutex::new(HashMap::new()),
    });
    let w = world.clone();
    let cfg = SimConfig {
        nodes,
        seed: 11,
        lookups: 0,
        crypto: SimCrypto::Custom(Arc::new(move |i, id| {
            let (id, ident) = w.identity(i, id);
            let p = provider(&w.ca.cert_der, &ident);
            w.ids.lock().unwrap().insert(i, ident);
            (id, p)
        })),
        ..SimConfig::default()
    };
    let mut cfg = cfg;
    tweak(&mut cfg);
    let mut sim = Sim::new(cfg);
    sim.build();
    assert_eq!(sim.ring_errors(), 0, "{}", sim.ring_dump());
    (sim, world)
}

fn reg_value(uri: &str) -> Vec<u8> {
    let u = uri.as_bytes();
    let mut v = vec![1u8];
    v.extend_from_slice(&((u.len() + 2) as u16).to_be_bytes());
    v.extend_from_slice(&(u.len() as u16).to_be_bytes());
    v.extend_from_slice(u);
    v
}

fn aor(user: &str) -> ResourceId {
    ResourceId::hash(user.as_bytes())
}

fn value(key: NodeId, uri: &str, storage_time: u64) -> StoredValue {
    StoredValue {
        key: ValueKey::Key(key.to_array().to_vec()),
        storage_time,
        lifetime: 3600,
        value: DataValue {
            exists: true,
            value: reg_value(uri),
        },
        signature: SignatureParts::default(),
        certs: Vec::new(),
    }
}

/// Runs until request `req` of peer `i` completes (bounded).
fn wait(sim: &mut Sim, i: usize, req: RequestId) -> Result<Outcome, RequestError> {
    for _ in 0..120 {
        sim.run_for(500);
        if let Some((_, r)) = sim.take_completions(i).into_iter().find(|(q, _)| *q == req) {
            return r;
        }
    }
    panic!("request did not complete");
}

fn store(
    sim: &mut Sim,
    i: usize,
    res: &ResourceId,
    vals: Vec<StoredValue>,
    replica: u8,
) -> Result<Outcome, RequestError> {
    let r = res.clone();
    let req = sim
        .with_node(i, move |n: &mut Node, now| {
            n.store_signed(now, r, replica, KIND_SIP_REGISTRATION, vals)
        })
        .unwrap();
    wait(sim, i, req)
}

/// Signs `v` at `res` with peer `i`'s identity (or `ident`) as the writer.
fn signed(
    world: &World,
    ident: &TestIdentity,
    res: &ResourceId,
    mut v: StoredValue,
) -> StoredValue {
    let p = provider(&world.ca.cert_der, ident);
    sign_stored_value(p.as_ref(), res, KIND_SIP_REGISTRATION, &mut v);
    v
}

fn fetch_all(sim: &mut Sim, i: usize, res: &ResourceId) -> Vec<StoredValue> {
    let r = res.clone();
    let req = sim
        .with_node(i, move |n: &mut Node, now| {
            n.fetch(
                now,
                r,
                vec![(KIND_SIP_REGISTRATION, Selector::Dictionary(vec![]))],
            )
        })
        .unwrap();
    match wait(sim, i, req) {
        Ok(Outcome::Fetched(kinds)) => kinds
            .into_iter()
            .flat_map(|k| k.values)
            .filter(|v| v.value.exists)
            .collect(),
        other => panic!("fetch failed: {other:?}"),
    }
}

fn code(r: &Result<Outcome, RequestError>) -> Option<u16> {
    match r {
        Err(RequestError::Error { code, .. }) => Some(*code),
        _ => None,
    }
}

fn stored(r: &Result<Outcome, RequestError>) -> bool {
    matches!(r, Ok(Outcome::Stored(_)))
}

#[test]
fn forged_stores_are_refused_and_change_nothing() {
    let (mut sim, world) = setup(20);
    let (alice, mallory, reader) = (3usize, 7usize, 12usize);
    let alice_id = sim.node(alice).unwrap().id();
    let mallory_id = sim.node(mallory).unwrap().id();
    let alice_ident = world.ids.lock().unwrap()[&alice].clone();
    let mallory_ident = world.ids.lock().unwrap()[&mallory].clone();
    let res = aor(&user_of(alice));
    let t0 = sim.now().0;

    // Alice registers herself (USER-NODE-MATCH): two versions, t0 then t0+1.
    let old = signed(
        &world,
        &alice_ident,
        &res,
        value(alice_id, "sip:alice@10.0.0.1", t0),
    );
    assert!(stored(&store(&mut sim, alice, &res, vec![old.clone()], 0)));
    let new = signed(
        &world,
        &alice_ident,
        &res,
        value(alice_id, "sip:alice@10.0.0.2", t0 + 1),
    );
    assert!(stored(&store(&mut sim, alice, &res, vec![new.clone()], 0)));
    let baseline = fetch_all(&mut sim, reader, &res);
    assert_eq!(baseline.len(), 1);
    assert_eq!(baseline[0].value, new.value);

    // 1. Mallory writes Alice's AOR under her own key, signed by herself: wrong user.
    let v = signed(
        &world,
        &mallory_ident,
        &res,
        value(mallory_id, "sip:evil@6.6.6.6", t0 + 5),
    );
    assert_eq!(
        code(&store(&mut sim, mallory, &res, vec![v], 0)),
        Some(error_code::FORBIDDEN)
    );
    // 2. ... and under Alice's key, signed by herself: wrong signer.
    let v = signed(
        &world,
        &mallory_ident,
        &res,
        value(alice_id, "sip:evil@6.6.6.6", t0 + 6),
    );
    assert_eq!(
        code(&store(&mut sim, mallory, &res, vec![v], 0)),
        Some(error_code::FORBIDDEN)
    );
    // 3. Alice's genuine value with a tampered contact.
    let mut v = signed(
        &world,
        &alice_ident,
        &res,
        value(alice_id, "sip:alice@10.0.0.3", t0 + 7),
    );
    v.value.value = reg_value("sip:evil@6.6.6.6");
    assert_eq!(
        code(&store(&mut sim, mallory, &res, vec![v], 0)),
        Some(error_code::FORBIDDEN)
    );
    // 4. A replay of Alice's older value (as a replayed Store of Alice's would carry it):
    //    Error_Data_Too_Old (RFC 6940 7.4.1.1). Sent by Mallory it is Forbidden anyway.
    assert_eq!(
        code(&store(&mut sim, mallory, &res, vec![old.clone()], 0)),
        Some(error_code::FORBIDDEN)
    );
    assert_eq!(
        code(&store(&mut sim, alice, &res, vec![old.clone()], 0)),
        Some(error_code::DATA_TOO_OLD)
    );
    // 5. A certificate for Alice's identity from another CA.
    let forged = world.foreign.node(&user_of(alice), alice_id);
    let mut v = value(alice_id, "sip:evil@6.6.6.6", t0 + 8);
    let p = X509Crypto::new(
        OVERLAY,
        &world.foreign.cert_der,
        &forged.cert_der,
        &forged.key_der,
        0,
    )
    .unwrap();
    sign_stored_value(&p, &res, KIND_SIP_REGISTRATION, &mut v);
    assert_eq!(
        code(&store(&mut sim, mallory, &res, vec![v], 0)),
        Some(error_code::FORBIDDEN)
    );
    // 6. An expired certificate for Alice's identity from the right CA.
    let expired = world.ca.issue(
        &user_of(alice),
        &[alice_id],
        &[],
        NOW - 7200,
        NOW - 3600,
        false,
    );
    let v = signed(
        &world,
        &expired,
        &res,
        value(alice_id, "sip:evil@6.6.6.6", t0 + 9),
    );
    assert_eq!(
        code(&store(&mut sim, mallory, &res, vec![v], 0)),
        Some(error_code::FORBIDDEN)
    );
    // 7. Atomicity: one good value (Mallory's own key is not allowed either way) plus a bad
    //    one from Alice in the same Store changes nothing.
    let good = signed(
        &world,
        &alice_ident,
        &res,
        value(alice_id, "sip:alice@10.0.0.9", t0 + 10),
    );
    let mut bad = good.clone();
    bad.value.value = reg_value("sip:evil@6.6.6.6");
    assert_eq!(
        code(&store(&mut sim, mallory, &res, vec![good, bad], 0)),
        Some(error_code::FORBIDDEN)
    );
    // 8. A deletion of Alice's entry by Mallory.
    let mut del = value(alice_id, "", t0 + 11);
    del.value = DataValue {
        exists: false,
        value: Vec::new(),
    };
    let del = signed(&world, &mallory_ident, &res, del);
    assert_eq!(
        code(&store(&mut sim, mallory, &res, vec![del], 0)),
        Some(error_code::FORBIDDEN)
    );

    // Unchanged, as seen by a third peer that verifies every entry.
    let after = fetch_all(&mut sim, reader, &res);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].value, new.value);
    assert_eq!(after[0].storage_time, new.storage_time);
    let forbidden: u64 = (0..20)
        .map(|i| sim.node(i).unwrap().stats().store_forbidden)
        .sum();
    assert!(forbidden >= 7, "store_forbidden = {forbidden}");
}

#[test]
fn replica_store_from_a_non_neighbour_is_refused() {
    let (mut sim, world) = setup(20);
    let alice = 2usize;
    let alice_id = sim.node(alice).unwrap().id();
    let alice_ident = world.ids.lock().unwrap()[&alice].clone();
    let res = aor(&user_of(alice));
    let t0 = sim.now().0;
    let v = signed(
        &world,
        &alice_ident,
        &res,
        value(alice_id, "sip:alice@10.0.0.1", t0),
    );
    assert!(stored(&store(&mut sim, alice, &res, vec![v.clone()], 0)));
    // The responsible peer and a peer far from it on the ring.
    let k = res.as_u128().unwrap();
    let owner = (0..20)
        .find(|&i| sim.node(i).unwrap().table().is_responsible(k))
        .unwrap();
    let owner_id = sim.node(owner).unwrap().id();
    let far = (0..20)
        .max_by_key(|&i| {
            let d = reload::sim::ring_distance(sim.node(i).unwrap().id(), owner_id);
            d.min(u128::MAX - d)
        })
        .unwrap();
    // A "replica" of a genuine, newer value from Alice, sent by the far peer.
    let newer = signed(
        &world,
        &alice_ident,
        &res,
        value(alice_id, "sip:alice@10.0.0.7", t0 + 1),
    );
    assert_eq!(
        code(&store(&mut sim, far, &res, vec![newer], 1)),
        Some(error_code::FORBIDDEN)
    );
    let after = fetch_all(&mut sim, far, &res);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].value, v.value);
}

#[test]
fn registrar_role_allows_only_its_own_key() {
    let (mut sim, world) = setup(16);
    world.plans.lock().unwrap().insert(16, Plan::Registrar);
    let reg = sim.join_node();
    assert!(sim.node(reg).unwrap().is_joined());
    let reg_id = sim.node(reg).unwrap().id();
    let reg_ident = world.ids.lock().unwrap()[&reg].clone();
    let plain = 4usize;
    let plain_id = sim.node(plain).unwrap().id();
    let plain_ident = world.ids.lock().unwrap()[&plain].clone();
    let res = aor("phone100@sim.invalid");
    let t0 = sim.now().0;

    // The registrar stores a phone's registration under its own Node-ID: allowed.
    let v = signed(
        &world,
        &reg_ident,
        &res,
        value(reg_id, "sip:phone100@10.1.1.1", t0),
    );
    assert!(stored(&store(&mut sim, reg, &res, vec![v.clone()], 0)));
    // Under another Node-ID (taking over a binding it does not hold): refused.
    let w = signed(
        &world,
        &reg_ident,
        &res,
        value(plain_id, "sip:phone100@10.1.1.2", t0 + 1),
    );
    assert_eq!(
        code(&store(&mut sim, reg, &res, vec![w], 0)),
        Some(error_code::FORBIDDEN)
    );
    // A peer without the role cannot store nor delete the phone's registration.
    let w = signed(
        &world,
        &plain_ident,
        &res,
        value(plain_id, "sip:phone100@10.1.1.3", t0 + 2),
    );
    assert_eq!(
        code(&store(&mut sim, plain, &res, vec![w], 0)),
        Some(error_code::FORBIDDEN)
    );
    let mut del = value(reg_id, "", t0 + 3);
    del.value = DataValue {
        exists: false,
        value: Vec::new(),
    };
    let del = signed(&world, &plain_ident, &res, del);
    assert_eq!(
        code(&store(&mut sim, plain, &res, vec![del], 0)),
        Some(error_code::FORBIDDEN)
    );
    let after = fetch_all(&mut sim, plain, &res);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].value, v.value);
    // The registrar can delete its own binding.
    let mut del = value(reg_id, "", t0 + 4);
    del.value = DataValue {
        exists: false,
        value: Vec::new(),
    };
    let del = signed(&world, &reg_ident, &res, del);
    assert!(stored(&store(&mut sim, reg, &res, vec![del], 0)));
    assert!(fetch_all(&mut sim, plain, &res).is_empty());
}

#[test]
fn peers_with_bad_certificates_cannot_join() {
    let (mut sim, world) = setup(12);
    for (i, plan) in [
        (12, Plan::ForeignCa),
        (13, Plan::Expired),
        (14, Plan::Impersonate),
    ] {
        world.plans.lock().unwrap().insert(i, plan);
        let before_bad: u64 = (0..12)
            .map(|j| {
                let s = sim.node(j).unwrap().stats();
                s.bad_signature + s.impersonation
            })
            .sum();
        let n = sim.join_node();
        assert_eq!(n, i);
        assert!(!sim.node(n).unwrap().is_joined(), "{plan:?} peer joined");
        let after_bad: u64 = (0..12)
            .map(|j| {
                let s = sim.node(j).unwrap().stats();
                s.bad_signature + s.impersonation
            })
            .sum();
        assert!(after_bad > before_bad, "{plan:?}: nothing counted");
        // Nobody took it into their routing table.
        let nid = sim.node(n).unwrap().id();
        for j in 0..12 {
            let t = sim.node(j).unwrap().table();
            assert!(!t.successors().contains(&nid) && !t.predecessors().contains(&nid));
        }
    }
    let imp: u64 = (0..12)
        .map(|j| sim.node(j).unwrap().stats().impersonation)
        .sum();
    assert!(imp > 0);
}

/// Requests leave the signer's certificate out (RFC 6940 6.3.4): receivers fetch it from
/// CERTIFICATE_BY_NODE, verify it against the overlay root, cache it and then process the
/// held message. Every peer published its certificate there after joining (RFC 6940 8).
#[test]
fn certificates_left_out_are_fetched_from_the_overlay() {
    let (mut sim, world) = setup_with(24, |c| c.omit_certificates = true);
    sim.run_for(60_000);
    assert_eq!(sim.ring_errors(), 0, "{}", sim.ring_dump());
    let (alice, reader) = (3usize, 17usize);
    let alice_id = sim.node(alice).unwrap().id();
    let alice_ident = world.ids.lock().unwrap()[&alice].clone();
    let res = aor(&user_of(alice));
    let t0 = sim.now().0;
    let v = signed(
        &world,
        &alice_ident,
        &res,
        value(alice_id, "sip:alice@10.0.0.1", t0),
    );
    assert!(stored(&store(&mut sim, alice, &res, vec![v.clone()], 0)));
    let got = fetch_all(&mut sim, reader, &res);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].value, v.value);
    // Alice's certificate is in the overlay at H(Node-ID) and H(user).
    for (r, kind) in [
        (
            ResourceId::hash(&alice_id.to_array()),
            reload::storage::KIND_CERTIFICATE_BY_NODE,
        ),
        (
            aor(&user_of(alice)),
            reload::storage::KIND_CERTIFICATE_BY_USER,
        ),
    ] {
        let req = sim
            .with_node(reader, move |n: &mut Node, now| {
                n.fetch(now, r, vec![(kind, Selector::Array(vec![(0, 0)]))])
            })
            .unwrap();
        match wait(&mut sim, reader, req) {
            Ok(Outcome::Fetched(k)) => {
                assert_eq!(
                    k[0].values[0].value.value, alice_ident.cert_der,
                    "kind {kind}"
                )
            }
            other => panic!("certificate fetch: {other:?}"),
        }
    }
    let mut fetches = 0;
    let mut cached = 0;
    for i in 0..sim.node_count() {
        let Some(n) = sim.node(i) else { continue };
        let st = n.stats();
        fetches += st.cert_fetches;
        cached += n.certificates_cached();
        assert_eq!(st.cert_fetch_failed, 0, "node {i}: {st:?}");
        assert_eq!(st.cert_hold_timeouts, 0, "node {i}: {st:?}");
        assert_eq!(n.messages_held_for_certificates(), 0, "node {i}");
    }
    assert!(
        fetches > 0 && cached > 0,
        "fetches {fetches} cached {cached}"
    );
}
