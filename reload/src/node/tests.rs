//! Engine tests on a tiny zero-latency network: join, routing, storage errors, and hostile
//! input (undecodable bytes, loops, TTL, unknown Kinds) that must be answered or dropped,
//! never panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::wire::{Message, MessageCode};
use std::collections::VecDeque;

struct Net {
    nodes: Vec<Node>,
    now: Time,
    links: BTreeMap<u64, (usize, usize)>,
    next_link: u64,
    queue: VecDeque<(usize, Input)>,
    events: Vec<(usize, Event)>,
    sent: Vec<(usize, u64, Vec<u8>)>,
    mtu: usize,
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i as u8], 6084))
}

impl Net {
    fn new() -> Self {
        Self {
            nodes: Vec::new(),
            now: Time(1_000_000),
            links: BTreeMap::new(),
            next_link: 1,
            queue: VecDeque::new(),
            events: Vec::new(),
            sent: Vec::new(),
            mtu: 0,
        }
    }

    fn add(&mut self, id: u128, first: bool) -> usize {
        self.add_with(id, first, if first { vec![] } else { vec![addr(0)] })
    }

    fn add_with(&mut self, id: u128, first: bool, bootstrap: Vec<SocketAddr>) -> usize {
        let i = self.nodes.len();
        let cfg = NodeConfig {
            first_node: first,
            bootstrap,
            local_addr: addr(i),
            user: Some(format!("user{i}@example.com")),
            link_mtu: self.mtu,
            ..NodeConfig::default()
        };
        let mut n = Node::new(cfg, NodeId(id), i as u64);
        n.start(self.now);
        self.nodes.push(n);
        self.pump(i);
        self.run(5_000);
        i
    }

    fn link_between(&self, a: usize, b: usize) -> Option<u64> {
        self.links
            .iter()
            .find(|(_, (x, y))| (*x == a && *y == b) || (*x == b && *y == a))
            .map(|(l, _)| *l)
    }

    fn pump(&mut self, i: usize) {
        while let Some(o) = self.nodes[i].poll_output() {
            match o {
                Output::Send { link, bytes } => {
                    if let Some((a, b)) = self.links.get(&link.0).copied() {
                        let to = if a == i { b } else { a };
                        self.sent.push((i, link.0, bytes.clone()));
                        self.queue.push_back((to, Input::Message { link, bytes }));
                    }
                }
                Output::Connect { addr: ad, .. } => {
                    let j = self
                        .nodes
                        .iter()
                        .position(|n| n.cfg.local_addr == ad)
                        .unwrap();
                    let l = match self.link_between(i, j) {
                        Some(l) => l,
                        None => {
                            let l = self.next_link;
                            self.next_link += 1;
                            self.links.insert(l, (i, j));
                            self.queue.push_back((
                                j,
                                Input::LinkUp {
                                    link: LinkId(l),
                                    peer: self.nodes[i].id(),
                                },
                            ));
                            l
                        }
                    };
                    self.queue.push_back((
                        i,
                        Input::LinkUp {
                            link: LinkId(l),
                            peer: self.nodes[j].id(),
                        },
                    ));
                }
                Output::Disconnect { link } => {
                    if let Some((a, b)) = self.links.remove(&link.0) {
                        let other = if a == i { b } else { a };
                        self.queue.push_back((other, Input::LinkDown { link }));
                    }
                }
                Output::Event(e) => self.events.push((i, e)),
            }
        }
    }

    /// Runs until quiet or `ms` of virtual time have passed.
    fn run(&mut self, ms: u64) {
        let end = self.now.plus_ms(ms);
        loop {
            while let Some((to, input)) = self.queue.pop_front() {
                self.nodes[to].handle_input(self.now, input);
                self.pump(to);
            }
            let next = self
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| n.poll_timeout().map(|t| (t, i)))
                .min();
            match next {
                Some((t, i)) if t <= end => {
                    self.now = self.now.max(t);
                    self.nodes[i].handle_input(self.now, Input::Timeout);
                    self.pump(i);
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn take_events(&mut self) -> Vec<(usize, Event)> {
        std::mem::take(&mut self.events)
    }

    fn completion(&mut self, node: usize, req: RequestId) -> Option<Result<Outcome, RequestError>> {
        self.take_events().into_iter().find_map(|(i, e)| match e {
            Event::Completed {
                request, result, ..
            } if i == node && request == req => Some(result),
            _ => None,
        })
    }
}

const Q: u128 = 1 << 126; // a quarter of the ring

fn three() -> Net {
    let mut net = Net::new();
    net.add(Q, true);
    net.add(2 * Q, false);
    net.add(3 * Q, false);
    net.run(60_000);
    net
}

fn sip_value(net: &Net, i: usize) -> (ResourceId, Vec<(ValueKey, DataValue, u32)>) {
    let r = ResourceId::hash(format!("user{i}@example.com").as_bytes());
    let key = ValueKey::Key(net.nodes[i].id().to_array().to_vec());
    (
        r,
        vec![(
            key,
            DataValue {
                exists: true,
                value: b"sip:x".to_vec(),
            },
            3600,
        )],
    )
}

#[test]
fn three_nodes_join_and_converge() {
    let net = three();
    for (i, n) in net.nodes.iter().enumerate() {
        assert!(n.is_joined(), "node {i}: {}", n.debug_state());
        let ids: Vec<u128> = n.table().successors().iter().map(|x| x.0).collect();
        let me = n.id().0;
        let mut want: Vec<u128> = [Q, 2 * Q, 3 * Q].into_iter().filter(|x| *x != me).collect();
        want.sort_by_key(|x| x.wrapping_sub(me));
        assert_eq!(ids, want, "node {i} successors");
    }
}

#[test]
fn store_fetch_and_replicate() {
    let mut net = three();
    let (r, values) = sip_value(&net, 1);
    let now = net.now;
    let req = net.nodes[1].store(now, r.clone(), 1, values);
    net.pump(1);
    net.run(10_000);
    let res = net.completion(1, req).expect("store completed");
    let Ok(Outcome::Stored(k)) = res else {
        panic!("store failed: {res:?}")
    };
    assert_eq!(k[0].0, 1);
    assert_eq!(k[0].1, 1);
    // Primary plus two replicas: every one of the three nodes holds it.
    for n in &net.nodes {
        let kinds = n.storage().export(0, &r);
        assert_eq!(
            kinds.iter().filter(|k| k.kind == 1).count(),
            1,
            "{}",
            n.id()
        );
    }
    let now = net.now;
    let req = net.nodes[0].fetch(now, r, vec![(1, Selector::Dictionary(vec![]))]);
    net.pump(0);
    net.run(10_000);
    let Some(Ok(Outcome::Fetched(f))) = net.completion(0, req) else {
        panic!("fetch failed")
    };
    assert_eq!(f[0].values.len(), 1);
    assert!(f[0].values[0].value.exists);
}

#[test]
fn unknown_kind_gets_error_unknown_kind() {
    let mut net = three();
    let (r, mut values) = sip_value(&net, 1);
    values[0].0 = ValueKey::Single;
    let now = net.now;
    let req = net.nodes[1].store(now, r.clone(), 0xf000_0001, values);
    net.pump(1);
    net.run(10_000);
    match net.completion(1, req) {
        Some(Err(RequestError::Error { code, info })) => {
            assert_eq!(code, error_code::UNKNOWN_KIND);
            assert_eq!(info, glue::encode_kind_list(&[0xf000_0001]));
        }
        other => panic!("unexpected {other:?}"),
    }
    let now = net.now;
    let req = net.nodes[0].fetch(now, r, vec![(77, Selector::Single)]);
    net.pump(0);
    net.run(10_000);
    assert!(matches!(
        net.completion(0, req),
        Some(Err(RequestError::Error {
            code: error_code::UNKNOWN_KIND,
            ..
        }))
    ));
}

#[test]
fn forbidden_store_is_refused() {
    let mut net = three();
    // Node 2 tries to write user1's registration: USER-NODE-MATCH fails.
    let (r, values) = sip_value(&net, 1);
    let now = net.now;
    let req = net.nodes[2].store(now, r, 1, values);
    net.pump(2);
    net.run(10_000);
    assert!(matches!(
        net.completion(2, req),
        Some(Err(RequestError::Error {
            code: error_code::FORBIDDEN,
            ..
        }))
    ));
}

/// Makes node `from` issue a fetch for a key owned by `owner`, and returns the bytes it would
/// send (not delivered) with the link they were meant for.
fn captured_fetch(net: &mut Net, from: usize, key: u128) -> (RequestId, u64, Vec<u8>) {
    let now = net.now;
    let req = net.nodes[from].fetch(
        now,
        ResourceId::from_u128(key),
        vec![(1, Selector::Dictionary(vec![]))],
    );
    let Some(Output::Send { link, bytes }) = net.nodes[from].poll_output() else {
        panic!("no send")
    };
    (req, link.0, bytes)
}

#[test]
fn ttl_zero_in_transit_gets_error_ttl_exceeded() {
    let mut net = three();
    // Node 0 (at Q) asks for a key node 2 (at 3Q) owns, but we hand it to node 1 with TTL 0.
    let (req, _, bytes) = captured_fetch(&mut net, 0, 3 * Q - 5);
    let (mut h, rest) = glue::decode_header(&bytes, net.nodes[0].overlay).unwrap();
    h.ttl = 0;
    let bytes = glue::encode_message(net.nodes[0].overlay, h, rest);
    let l01 = net.link_between(0, 1).unwrap();
    // Node 1 is not responsible for 3Q-5 and must not forward.
    net.nodes[1].handle_input(
        net.now,
        Input::Message {
            link: LinkId(l01),
            bytes,
        },
    );
    net.pump(1);
    let errors = net.nodes[1].stats().errors_sent;
    assert_eq!(errors, 1);
    net.run(1_000);
    match net.completion(0, req) {
        Some(Err(RequestError::Error { code, .. })) => assert_eq!(code, error_code::TTL_EXCEEDED),
        other => panic!("unexpected {other:?}"),
    }
    // A TTL above initial-ttl is also refused.
    let (_, _, bytes) = captured_fetch(&mut net, 0, 3 * Q - 5);
    let (mut h, rest) = glue::decode_header(&bytes, net.nodes[0].overlay).unwrap();
    h.ttl = 200;
    let bytes = glue::encode_message(net.nodes[0].overlay, h, rest);
    net.nodes[1].handle_input(
        net.now,
        Input::Message {
            link: LinkId(l01),
            bytes,
        },
    );
    net.pump(1);
    assert_eq!(net.nodes[1].stats().errors_sent, 2);
}

#[test]
fn routing_loop_is_refused() {
    let mut net = three();
    // Duplicate destination entries (RFC 6940 13.6.5): Error_Invalid_Message.
    let (_, _, bytes) = captured_fetch(&mut net, 0, 3 * Q - 5);
    let (mut h, rest) = glue::decode_header(&bytes, net.nodes[0].overlay).unwrap();
    let n2 = Dest::Node(net.nodes[2].id());
    h.destination_list = vec![
        n2.clone(),
        n2,
        Dest::Resource(ResourceId::from_u128(3 * Q - 5)),
    ];
    let bytes = glue::encode_message(net.nodes[0].overlay, h, rest);
    let l01 = net.link_between(0, 1).unwrap();
    net.nodes[1].handle_input(
        net.now,
        Input::Message {
            link: LinkId(l01),
            bytes,
        },
    );
    let mut saw_error = false;
    while let Some(o) = net.nodes[1].poll_output() {
        if let Output::Send { bytes, .. } = o {
            let m = Message::decode(&bytes).unwrap();
            assert_eq!(m.contents.code, MessageCode::ERROR);
            saw_error = true;
        }
    }
    assert!(saw_error);
    // A request whose via list already names us came round a loop: dropped, not forwarded.
    let (_, _, bytes) = captured_fetch(&mut net, 0, 3 * Q - 5);
    let (mut h, rest) = glue::decode_header(&bytes, net.nodes[0].overlay).unwrap();
    h.via_list = vec![Dest::Node(net.nodes[1].id())];
    let bytes = glue::encode_message(net.nodes[0].overlay, h, rest);
    let dropped = net.nodes[1].stats().dropped;
    net.nodes[1].handle_input(
        net.now,
        Input::Message {
            link: LinkId(l01),
            bytes,
        },
    );
    assert!(net.nodes[1].poll_output().is_none());
    assert_eq!(net.nodes[1].stats().dropped, dropped + 1);
}

#[test]
fn undecodable_and_mutated_input_never_panics() {
    let mut net = three();
    let l01 = net.link_between(0, 1).unwrap();
    for junk in [
        vec![],
        vec![0u8; 3],
        vec![0xd2, 0x45, 0x4c, 0x4f],
        vec![0xff; 200],
    ] {
        net.nodes[1].handle_input(
            net.now,
            Input::Message {
                link: LinkId(l01),
                bytes: junk,
            },
        );
    }
    assert_eq!(net.nodes[1].stats().decode_errors, 4);
    assert!(net.nodes[1].poll_output().is_none());
    // Mutations of a real request addressed to node 1 itself.
    let (_, _, bytes) = captured_fetch(&mut net, 0, 2 * Q - 5);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for _ in 0..3000 {
        let mut b = bytes.clone();
        match rng.random_range(0..3u8) {
            0 => {
                let i = rng.random_range(0..b.len());
                b[i] ^= 1 << rng.random_range(0..8u8);
            }
            1 => b.truncate(rng.random_range(0..b.len())),
            _ => {
                let i = rng.random_range(0..b.len());
                b.insert(i, rng.random());
            }
        }
        net.nodes[1].handle_input(
            net.now,
            Input::Message {
                link: LinkId(l01),
                bytes: b,
            },
        );
        while net.nodes[1].poll_output().is_some() {}
    }
    // Unknown link: ignored.
    net.nodes[1].handle_input(
        net.now,
        Input::Message {
            link: LinkId(999),
            bytes,
        },
    );
}

#[test]
fn duplicate_request_is_answered_from_cache() {
    let mut net = three();
    let (r, values) = sip_value(&net, 1);
    let now = net.now;
    let _ = net.nodes[1].store(now, r, 1, values);
    let Some(Output::Send { link, bytes }) = net.nodes[1].poll_output() else {
        panic!("no send")
    };
    let (a, b) = net.links[&link.0];
    let to = if a == 1 { b } else { a };
    for _ in 0..2 {
        net.nodes[to].handle_input(
            net.now,
            Input::Message {
                link,
                bytes: bytes.clone(),
            },
        );
        net.pump(to);
    }
    assert_eq!(net.nodes[to].stats().duplicates, 1);
}

#[test]
fn request_times_out_after_five_sends() {
    let mut net = Net::new();
    net.add(Q, true);
    net.add(3 * Q, false);
    net.run(30_000);
    // Cut node 1 off without telling node 0, then fetch something node 1 owns.
    let l = net.link_between(0, 1).unwrap();
    net.links.remove(&l);
    let now = net.now;
    let req = net.nodes[0].fetch(
        now,
        ResourceId::from_u128(3 * Q - 1),
        vec![(1, Selector::Single)],
    );
    net.pump(0);
    net.run(14_000);
    assert!(net.completion(0, req).is_none(), "too early");
    net.run(2_000);
    assert_eq!(net.completion(0, req), Some(Err(RequestError::Timeout)));
}

fn store_one(net: &mut Net, i: usize, exists: bool) -> Result<Outcome, RequestError> {
    let (r, mut values) = sip_value(net, i);
    values[0].1.exists = exists;
    if !exists {
        values[0].1.value.clear();
    }
    let now = net.now;
    let req = net.nodes[i].store(now, r, 1, values);
    net.pump(i);
    net.run(10_000);
    net.completion(i, req).expect("completed")
}

#[test]
fn stat_find_and_delete() {
    let mut net = three();
    assert!(matches!(
        store_one(&mut net, 1, true),
        Ok(Outcome::Stored(_))
    ));
    let (r, _) = sip_value(&net, 1);
    let now = net.now;
    let req = net.nodes[0].stat(now, r.clone(), vec![(1, Selector::Dictionary(vec![]))]);
    net.pump(0);
    net.run(10_000);
    match net.completion(0, req) {
        Some(Ok(Outcome::Stat(k))) => {
            assert_eq!(k[0].values.len(), 1);
            assert_eq!(k[0].values[0].value_length, 5);
            assert!(k[0].values[0].exists);
            assert!(!k[0].values[0].hash.is_empty());
        }
        other => panic!("stat: {other:?}"),
    }
    let now = net.now;
    let req = net.nodes[2].find(now, r.clone(), vec![1, 2]);
    net.pump(2);
    net.run(10_000);
    match net.completion(2, req) {
        Some(Ok(Outcome::Found(f))) => {
            assert_eq!(f, vec![(1, r.clone()), (2, ResourceId::from_u128(0))]);
        }
        other => panic!("find: {other:?}"),
    }
    // Delete: exists = false replaces the value (RFC 6940 7.4.1.3).
    assert!(matches!(
        store_one(&mut net, 1, false),
        Ok(Outcome::Stored(_))
    ));
    let now = net.now;
    let req = net.nodes[0].fetch(now, r, vec![(1, Selector::Dictionary(vec![]))]);
    net.pump(0);
    net.run(10_000);
    match net.completion(0, req) {
        Some(Ok(Outcome::Fetched(k))) => {
            assert_eq!(k[0].values.len(), 1);
            assert!(!k[0].values[0].value.exists);
            assert_eq!(k[0].generation, 2);
        }
        other => panic!("fetch: {other:?}"),
    }
}

#[test]
fn wrong_generation_gets_error_generation_counter_too_low() {
    let mut net = three();
    assert!(matches!(
        store_one(&mut net, 1, true),
        Ok(Outcome::Stored(_))
    ));
    let (r, values) = sip_value(&net, 1);
    let now = net.now.plus_ms(5);
    let n = &mut net.nodes[1];
    let mut vals = Vec::new();
    for (key, value, lifetime) in values {
        let mut v = StoredValue {
            key,
            storage_time: now.0,
            lifetime,
            value,
            signature: SignatureParts::default(),
            certs: Vec::new(),
        };
        n.sign_value(&r, 1, &mut v);
        vals.push(v);
    }
    let body = Body::StoreReq {
        resource: r.clone(),
        replica_number: 0,
        kinds: vec![StoreKind {
            kind: 1,
            generation: 7,
            values: vals,
        }],
    };
    let req = RequestId(999);
    n.send_request(now, vec![Dest::Resource(r)], &body, Purpose::App(req));
    net.pump(1);
    net.run(10_000);
    match net.completion(1, req) {
        Some(Err(RequestError::Error { code, info })) => {
            assert_eq!(code, error_code::GENERATION_COUNTER_TOO_LOW);
            let ans = glue::decode_body(8, &info, &KindRegistry::default(), &[]).unwrap();
            assert_eq!(ans, Body::StoreAns(vec![(1, 1, vec![])]));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn graceful_leave_hands_data_over() {
    let mut net = Net::new();
    for k in 1..=4u128 {
        net.add(k * (Q / 2) + 12345, k == 1);
    }
    net.run(60_000);
    assert!(matches!(
        store_one(&mut net, 2, true),
        Ok(Outcome::Stored(_))
    ));
    let (r, _) = sip_value(&net, 2);
    let k = r.as_u128().unwrap();
    let owner = (0..4)
        .find(|i| net.nodes[*i].is_joined() && net.nodes[*i].table().is_responsible(k))
        .unwrap();
    let now = net.now;
    net.nodes[owner].leave(now);
    net.pump(owner);
    net.run(5_000);
    // Drop the leaver's links.
    let gone: Vec<u64> = net
        .links
        .iter()
        .filter(|(_, (a, b))| *a == owner || *b == owner)
        .map(|(l, _)| *l)
        .collect();
    for l in gone {
        let (a, b) = net.links.remove(&l).unwrap();
        let other = if a == owner { b } else { a };
        net.queue
            .push_back((other, Input::LinkDown { link: LinkId(l) }));
    }
    net.run(30_000);
    let new_owner = (0..4)
        .filter(|i| *i != owner)
        .find(|i| net.nodes[*i].table().is_responsible(k))
        .unwrap();
    let key = ValueKey::Key(net.nodes[2].id().to_array().to_vec());
    assert!(
        net.nodes[new_owner]
            .storage()
            .has_value(net.now.0, &r, 1, &key)
    );
    for i in (0..4).filter(|i| *i != owner) {
        assert!(!net.nodes[i].table().contains(net.nodes[owner].id()));
    }
}

/// Update requests node `from` has sent so far.
fn updates_sent_by(net: &Net, from: usize) -> usize {
    net.sent
        .iter()
        .filter(|(i, _, b)| {
            *i == from
                && Message::decode(b).is_ok_and(|m| m.contents.code == MessageCode::UPDATE_REQ)
        })
        .count()
}

#[test]
fn route_query_answers_next_hop_and_sends_update() {
    let mut net = three();
    let at1 = vec![Dest::Node(net.nodes[1].id())];
    let route = |net: &mut Net, key: Dest, send_update: bool| {
        let now = net.now;
        let req = net.nodes[0].route_query(now, at1.clone(), key, send_update);
        net.pump(0);
        net.run(10_000);
        net.completion(0, req)
    };
    // Node 1 (2Q) is not responsible for 3Q-5: it would route to node 2 (3Q).
    match route(
        &mut net,
        Dest::Resource(ResourceId::from_u128(3 * Q - 5)),
        false,
    ) {
        Some(Ok(Outcome::RouteQuery(n))) => assert_eq!(n, NodeId(3 * Q)),
        other => panic!("route query: {other:?}"),
    }
    // It is responsible for 2Q-5: it names itself.
    match route(
        &mut net,
        Dest::Resource(ResourceId::from_u128(2 * Q - 5)),
        false,
    ) {
        Some(Ok(Outcome::RouteQuery(n))) => assert_eq!(n, NodeId(2 * Q)),
        other => panic!("route query: {other:?}"),
    }
    // A Node-ID destination: itself, or the peer directly when connected.
    match route(&mut net, Dest::Node(NodeId(2 * Q)), false) {
        Some(Ok(Outcome::RouteQuery(n))) => assert_eq!(n, NodeId(2 * Q)),
        other => panic!("route query: {other:?}"),
    }
    match route(&mut net, Dest::Node(NodeId(3 * Q)), false) {
        Some(Ok(Outcome::RouteQuery(n))) => assert_eq!(n, NodeId(3 * Q)),
        other => panic!("route query: {other:?}"),
    }
    // send_update: node 1 follows its answer with an Update to node 0.
    let before = updates_sent_by(&net, 1);
    match route(
        &mut net,
        Dest::Resource(ResourceId::from_u128(3 * Q - 5)),
        true,
    ) {
        Some(Ok(Outcome::RouteQuery(n))) => assert_eq!(n, NodeId(3 * Q)),
        other => panic!("route query: {other:?}"),
    }
    assert!(
        updates_sent_by(&net, 1) > before,
        "no Update after send_update"
    );
}

#[test]
fn probe_answers_known_info_in_order() {
    use crate::wire::{ProbeInformation as I, ProbeInformationType as T};
    let mut net = three();
    assert!(matches!(
        store_one(&mut net, 1, true),
        Ok(Outcome::Stored(_))
    ));
    let target = net.nodes[1].id();
    let stored = net.nodes[1].storage().resource_count() as u32;
    let uptime = net.nodes[1].uptime(net.now);
    let now = net.now;
    let req = net.nodes[0].probe(
        now,
        vec![Dest::Node(target)],
        vec![
            T::UPTIME,
            T::EXP_PROBE,
            T::RESPONSIBLE_SET,
            T::NUM_RESOURCES,
        ],
    );
    net.pump(0);
    net.run(10_000);
    match net.completion(0, req) {
        Some(Ok(Outcome::Probe(info))) => {
            assert_eq!(info.len(), 3, "{info:?}");
            let I::Uptime(u) = info[0] else {
                panic!("{info:?}")
            };
            assert!(u >= uptime && u <= net.nodes[1].uptime(net.now), "{u}");
            // Node 1 (2Q) has predecessor Q: a quarter of the ring.
            assert_eq!(info[1], I::ResponsibleSet(250_000_000));
            assert_eq!(info[2], I::NumResources(stored));
            assert!(stored >= 1);
        }
        other => panic!("probe: {other:?}"),
    }
    // Node 0 (Q) has predecessor 3Q: half the ring; an empty request gets an empty answer.
    let now = net.now;
    let req = net.nodes[1].probe(now, vec![Dest::Node(NodeId(Q))], vec![T::RESPONSIBLE_SET]);
    net.pump(1);
    net.run(10_000);
    assert_eq!(
        net.completion(1, req),
        Some(Ok(Outcome::Probe(vec![I::ResponsibleSet(500_000_000)])))
    );
    let now = net.now;
    let req = net.nodes[1].probe(now, vec![Dest::Node(NodeId(Q))], vec![]);
    net.pump(1);
    net.run(10_000);
    assert_eq!(net.completion(1, req), Some(Ok(Outcome::Probe(vec![]))));
}

#[test]
fn node_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Node>();
}

#[test]
fn large_store_is_fragmented_and_reassembled() {
    let mut net = Net::new();
    net.mtu = 400;
    net.add(Q, true);
    net.add(2 * Q, false);
    net.add(3 * Q, false);
    net.run(60_000);
    assert!(net.nodes.iter().all(Node::is_joined));
    // A 900-byte value (SIP-REGISTRATION's max-size is 1000), stored from node 0 at a resource node 1 or 2 is responsible for.
    let (r, mut vals) = sip_value(&net, 0);
    vals[0].1.value = vec![0x5a; 900];
    let req = net.nodes[0].store(net.now, r.clone(), 1, vals);
    net.pump(0);
    net.run(10_000);
    assert!(matches!(
        net.completion(0, req),
        Some(Ok(Outcome::Stored(_)))
    ));
    let sent: u64 = net.nodes.iter().map(|n| n.stats().fragments_sent).sum();
    let reassembled: u64 = net.nodes.iter().map(|n| n.stats().reassembled).sum();
    assert!(sent >= 3, "fragments sent {sent}");
    assert!(reassembled >= 2, "reassembled {reassembled}");
    // No whole message on the wire exceeds the MTU.
    assert!(net.sent.iter().all(|(_, _, b)| b.len() <= 400));
    let f = net.nodes[1].fetch(net.now, r, vec![(1, Selector::Dictionary(vec![]))]);
    net.pump(1);
    net.run(10_000);
    match net.completion(1, f) {
        Some(Ok(Outcome::Fetched(k))) => assert_eq!(k[0].values[0].value.value.len(), 900),
        other => panic!("{other:?}"),
    }
}

// calls: AppAttach (RFC 6940 6.5.2)

#[test]
fn app_attach_answers_registered_application_with_its_candidates() {
    use crate::node::app_attach::AppAttachReqAnsExt;
    let mut net = three();
    let sip: SocketAddr = "10.0.0.3:5070".parse().unwrap();
    net.nodes[2].register_application(crate::wire::APPLICATION_SIP, vec![sip]);
    let target = net.nodes[2].id();
    let now = net.now;
    let req = net.nodes[0].app_attach(now, target, crate::wire::APPLICATION_SIP);
    net.pump(0);
    net.run(10_000);
    match net.completion(0, req) {
        Some(Ok(Outcome::AppAttached(a))) => {
            assert_eq!(a.application, crate::wire::APPLICATION_SIP);
            assert_eq!(a.host_addrs(), vec![sip]);
            assert_eq!(a.role.0, b"passive".to_vec());
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn app_attach_carries_fresh_ice_credentials_and_udp_candidates_both_ways() {
    use crate::node::app_attach::AppAttachReqAnsExt;
    use crate::wire::{CandType, OverlayLinkType};
    let mut net = three();
    let udp = |a: &str, t: CandType, p: u32| msg::Candidate {
        addr: a.parse().unwrap(),
        link: OverlayLinkType::DTLS_UDP_SR,
        cand_type: t,
        related: (t != CandType::HOST).then(|| "10.0.0.3:40000".parse().unwrap()),
        priority: p,
        foundation: b"1".to_vec(),
    };
    // The callee offers only UDP candidates (no TCP listener): it is still answered.
    let cands = vec![
        udp("10.0.0.3:40000", CandType::HOST, 100),
        udp("203.0.113.3:41000", CandType::SRFLX, 90),
        udp("198.51.100.1:50000", CandType::RELAY, 1),
    ];
    net.nodes[2].set_application_candidates(crate::wire::APPLICATION_SIP, &cands);
    net.nodes[0].set_application_candidates(
        crate::wire::APPLICATION_SIP,
        &[udp("10.0.0.1:40001", CandType::HOST, 100)],
    );
    let target = net.nodes[2].id();
    let now = net.now;
    let (req, mine) = net.nodes[0].app_attach_ice(now, target, crate::wire::APPLICATION_SIP);
    assert!(
        mine.0.len() >= 4 && mine.1.len() >= 22,
        "RFC 8445 5.3 lengths"
    );
    net.pump(0);
    net.run(10_000);
    let ans = match net.completion(0, req) {
        Some(Ok(Outcome::AppAttached(a))) => a,
        other => panic!("unexpected {other:?}"),
    };
    assert!(ans.host_addrs().is_empty());
    assert_eq!(ans.udp_candidates(), cands);
    // The answerer hands the request and its own credentials to the driver.
    let got = net.nodes[2].poll_app_attach_answered().unwrap();
    assert_eq!(got.peer, net.nodes[0].id());
    assert_eq!(got.request.credentials(), mine);
    assert_eq!(got.local, ans.credentials());
    assert_eq!(got.request.udp_candidates().len(), 1);
    assert_ne!(got.local, mine, "each side draws its own credentials");
    assert!(net.nodes[2].poll_app_attach_answered().is_none());
    // A second AppAttach gets new credentials (one ICE session per AppAttach).
    let (_, again) = net.nodes[0].app_attach_ice(now, target, crate::wire::APPLICATION_SIP);
    assert_ne!(again, mine);
    // Removing the UDP candidates (no listener either) makes the application unknown.
    net.nodes[2].set_application_candidates(crate::wire::APPLICATION_SIP, &[]);
    let (req, _) = net.nodes[0].app_attach_ice(net.now, target, crate::wire::APPLICATION_SIP);
    net.pump(0);
    net.run(10_000);
    match net.completion(0, req) {
        Some(Err(RequestError::Error { code, .. })) => assert_eq!(code, error_code::NOT_FOUND),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn app_attach_for_unknown_application_gets_error_not_found() {
    let mut net = three();
    let target = net.nodes[1].id();
    let now = net.now;
    let req = net.nodes[0].app_attach(now, target, 4242);
    net.pump(0);
    net.run(10_000);
    match net.completion(0, req) {
        Some(Err(RequestError::Error { code, .. })) => assert_eq!(code, error_code::NOT_FOUND),
        other => panic!("unexpected {other:?}"),
    }
    // Unregistering makes a registered application unknown again.
    net.nodes[1].register_application(crate::wire::APPLICATION_SIP, vec![addr(9)]);
    assert!(
        net.nodes[1]
            .application_candidates(crate::wire::APPLICATION_SIP)
            .is_some()
    );
    net.nodes[1].register_application(crate::wire::APPLICATION_SIP, vec![]);
    assert!(
        net.nodes[1]
            .application_candidates(crate::wire::APPLICATION_SIP)
            .is_none()
    );
}

#[test]
fn app_attach_to_a_missing_node_times_out() {
    let mut net = three();
    let now = net.now;
    // A Node-ID nobody has: the responsible node drops it, the request times out.
    let req = net.nodes[0].app_attach(now, NodeId(Q + 12345), crate::wire::APPLICATION_SIP);
    net.pump(0);
    net.run(60_000);
    assert_eq!(net.completion(0, req), Some(Err(RequestError::Timeout)));
}

#[test]
fn undecodable_app_attach_request_gets_error() {
    let mut net = three();
    net.nodes[1].register_application(crate::wire::APPLICATION_SIP, vec![addr(9)]);
    let (code, _) = net.nodes[1].usage_app_attach(&[1, 2, 3]);
    assert_eq!(code, msg::code::ERROR);
}

#[test]
fn attach_candidates_keep_type_priority_and_link_through_the_wire() {
    use crate::wire::{CandType, OverlayLinkType};
    let host: SocketAddr = "10.0.0.2:6084".parse().unwrap();
    let a = msg::Attach {
        ufrag: b"abcd".to_vec(),
        password: b"0123456789abcdef012345".to_vec(),
        role: b"passive".to_vec(),
        candidates: vec![
            msg::Candidate {
                addr: host,
                link: OverlayLinkType::DTLS_UDP_SR,
                cand_type: CandType::HOST,
                related: None,
                priority: 2_130_706_431,
                foundation: b"1".to_vec(),
            },
            msg::Candidate {
                addr: "203.0.113.9:40000".parse().unwrap(),
                link: OverlayLinkType::DTLS_UDP_SR,
                cand_type: CandType::SRFLX,
                related: Some(host),
                priority: 1_694_498_815,
                foundation: b"2".to_vec(),
            },
            msg::Candidate::tls_host(host),
        ],
        send_update: true,
    };
    let (code, bytes) = glue::encode_body(&Body::AttachReq(a.clone()));
    let back = glue::decode_body(code, &bytes, &KindRegistry::default(), &[]).unwrap();
    assert_eq!(back, Body::AttachReq(a));
}

/// RFC 6940 10.7.4.4: two separate rings; a peer of the second pings its own Node-ID through
/// a bootstrap peer of the first, finds a peer that is not its successor, links to it, and
/// stabilization merges the rings.
#[test]
fn partition_is_detected_and_healed() {
    let mut net = Net::new();
    net.add(Q, true); // ring A
    net.add(2 * Q, false);
    net.add_with(3 * Q, true, vec![addr(0)]); // ring B, knows A's bootstrap peer
    net.add_with(3 * Q + Q / 2, false, vec![addr(2)]);
    net.run(60_000);
    assert!(net.nodes.iter().all(Node::is_joined));
    assert_eq!(
        net.nodes[2].table().successor(),
        Some(NodeId(3 * Q + Q / 2))
    );
    let now = net.now;
    net.nodes[2].start_partition_check(now);
    net.pump(2);
    net.run(3 * 600_000);
    assert!(net.nodes[2].stats().partitions_detected >= 1);
    let mut ids: Vec<NodeId> = net.nodes.iter().map(Node::id).collect();
    ids.sort_unstable();
    for n in &net.nodes {
        let pos = ids.iter().position(|x| *x == n.id()).unwrap();
        let succ = ids[(pos + 1) % ids.len()];
        assert_eq!(
            n.table().successor(),
            Some(succ),
            "{}: {}",
            n.id(),
            n.debug_state()
        );
    }
}

/// Event::Left comes once the Leave requests are answered, not when they are queued.
#[test]
fn left_is_reported_after_leave_answers() {
    let mut net = three();
    net.take_events();
    let now = net.now;
    net.nodes[1].leave(now);
    net.pump(1);
    assert!(!net.events.iter().any(|(i, e)| *i == 1 && *e == Event::Left));
    // In a ring of three both neighbours get two Leaves; the second finds the link closed
    // and is given up on after the retransmissions (at most 5 x 3 s).
    net.run(20_000);
    assert!(net.events.iter().any(|(i, e)| *i == 1 && *e == Event::Left));
}

/// RFC 6940 10.7.3: a peer that is no longer among the replicas of a resource (three
/// predecessors between it and the resource) deletes it; the replica set keeps it.
#[test]
fn data_is_dropped_when_leaving_the_replica_set() {
    let mut net = Net::new();
    let r = ResourceId::hash(b"user0@example.com");
    let k = r.as_u128().unwrap();
    for (j, off) in [10u128, 20, 30, 1 << 120].into_iter().enumerate() {
        net.add(k.wrapping_add(off), j == 0);
    }
    net.run(60_000);
    let (_, values) = sip_value(&net, 0);
    let now = net.now;
    let req = net.nodes[0].store(now, r.clone(), 1, values);
    net.pump(0);
    net.run(10_000);
    assert!(matches!(
        net.completion(0, req),
        Some(Ok(Outcome::Stored(_)))
    ));
    let holds = |net: &Net, i: usize| {
        net.nodes[i]
            .storage()
            .export(0, &r)
            .iter()
            .any(|kd| kd.kind == 1)
    };
    assert!((0..3).all(|i| holds(&net, i)));
    // A new primary just after the resource pushes the old third holder out.
    let n = net.add(k.wrapping_add(5), false);
    net.run(3 * 600_000);
    assert!(holds(&net, n), "new primary got the data");
    assert!(holds(&net, 0) && holds(&net, 1));
    assert!(!holds(&net, 2), "{}", net.nodes[2].debug_state());
    assert!(net.nodes[2].stats().replicas_dropped >= 1);
}

#[test]
fn finger_range_matches_rfc() {
    let t = crate::topology::ChordTable::new(NodeId(5), 3, 3);
    assert_eq!(t.finger_range(0), (5u128.wrapping_add(1 << 127), 1 << 127));
    assert_eq!(t.finger_range(127), (6, 1));
}

/// RFC 7851 Diagnostic_Ping: a Ping with a DiagnosticsRequest extension is answered with the
/// responder's DiagnosticsResponse; an expired one gets Error_Message_Expired.
#[test]
fn diagnostic_ping_answers_diagnostics() {
    use crate::wire::{DiagnosticKindId, DiagnosticValue, DiagnosticsRequest};
    let mut net = three();
    net.take_events();
    let now = net.now;
    let req = DiagnosticsRequest {
        expiration: now.0 + 60_000,
        timestamp_initiated: now.0,
        dm_flags: DiagnosticKindId::ROUTING_TABLE_SIZE.flag() | DiagnosticKindId::APP_UPTIME.flag(),
        extensions: Vec::new(),
    };
    let target = net.nodes[2].id();
    let r = net.nodes[0].diagnostic_ping(now, vec![Dest::Node(target)], &req);
    net.pump(0);
    net.run(5_000);
    match net.completion(0, r) {
        Some(Ok(Outcome::DiagnosticPing(resp))) => {
            let vals = resp.values();
            assert!(
                vals.iter()
                    .any(|v| matches!(v, DiagnosticValue::RoutingTableSize(n) if *n >= 1))
            );
            assert!(
                vals.iter()
                    .any(|v| matches!(v, DiagnosticValue::AppUptime(_)))
            );
            assert_eq!(resp.timestamp_initiated, now.0);
        }
        other => panic!("{other:?}"),
    }
    let expired = DiagnosticsRequest {
        expiration: 1,
        ..req
    };
    let now = net.now;
    let r = net.nodes[0].diagnostic_ping(now, vec![Dest::Node(target)], &expired);
    net.pump(0);
    net.run(5_000);
    match net.completion(0, r) {
        Some(Err(RequestError::Error { code, .. })) => {
            assert_eq!(code, crate::wire::ErrorCode::MESSAGE_EXPIRED.0)
        }
        other => panic!("{other:?}"),
    }
}

/// RFC 6940 6.3.2.1 / 6.5.4: a request with an older configuration sequence gets
/// Error_Config_Too_Old and a ConfigUpdate (sequence 65535) carrying our document, which the
/// older peer accepts and hands to its driver.
#[test]
fn older_configuration_gets_config_update() {
    let mut net = three();
    net.take_events();
    net.nodes[0].cfg.config_sequence = 2;
    net.nodes[0].cfg.config_document = Some(b"<overlay>v2</overlay>".to_vec());
    let now = net.now;
    let target = net.nodes[0].id();
    let r = net.nodes[1].ping(now, vec![Dest::Node(target)]);
    net.pump(1);
    net.run(5_000);
    match net.completion(1, r) {
        Some(Err(RequestError::Error { code, .. })) => {
            assert_eq!(code, error_code::CONFIG_TOO_OLD)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(net.nodes[0].stats().config_updates_sent, 1);
    assert_eq!(
        net.nodes[1].take_config_update(),
        Some(b"<overlay>v2</overlay>".to_vec())
    );
    // Sequences compare modulo 2^16: 0 is older than 1.
    net.nodes[2].cfg.config_sequence = 0; // 0 is newer than 65535 but older than 1
    let now = net.now;
    let one = net.nodes[1].id();
    let r = net.nodes[2].ping(now, vec![Dest::Node(one)]);
    net.pump(2);
    net.run(5_000);
    assert!(matches!(
        net.completion(2, r),
        Some(Err(RequestError::Error {
            code: error_code::CONFIG_TOO_OLD,
            ..
        }))
    ));
}

// ICE credentials (RFC 8445 5.3, RFC 6940 6.5.1)

#[test]
fn every_attach_carries_fresh_random_ice_credentials() {
    let mut net = three();
    let mut seen = BTreeSet::new();
    for n in net.nodes.iter_mut() {
        while let Some((u, p)) = n.poll_ice_credentials() {
            assert_eq!((u.len(), p.len()), (8, 24));
            assert!(
                u.iter()
                    .chain(&p)
                    .all(|c| c.is_ascii_alphanumeric() || b"+/".contains(c))
            );
            assert!(seen.insert(u), "ufrag reused");
        }
    }
    assert!(seen.len() >= 4, "{} Attaches", seen.len());
    // Each side keeps the credentials of the exchange behind its links.
    let mut kept = 0;
    for i in 0..3 {
        for j in 0..3 {
            let b = net.nodes[j].id();
            if let Some((u, _)) = net.nodes[i].local_ice(b) {
                assert!(seen.contains(u), "kept credentials were issued");
                kept += 1;
            }
        }
    }
    assert!(kept >= 2, "{kept}");
}

/// A join that stalls after the bootstrap link came up (the admitting peer never answers)
/// is retried through the bootstrap link that is still up, not by dialling the bootstrap
/// address again (a transport may refuse a second association to the same address).
#[test]
fn join_retry_reuses_the_live_bootstrap_link() {
    let cfg = NodeConfig {
        bootstrap: vec![addr(0)],
        local_addr: addr(1),
        user: Some("user1@example.com".into()),
        ..NodeConfig::default()
    };
    let mut n = Node::new(cfg, NodeId(77), 1);
    let mut now = Time(1_000_000);
    n.start(now);
    let drain = |n: &mut Node| std::iter::from_fn(|| n.poll_output()).collect::<Vec<_>>();
    let first = drain(&mut n);
    assert!(
        first
            .iter()
            .any(|o| matches!(o, Output::Connect { peer: None, addr: a } if *a == addr(0))),
        "{first:?}"
    );
    let link = LinkId(1);
    n.handle_input(
        now,
        Input::LinkUp {
            link,
            peer: NodeId(5),
        },
    );
    let attach = drain(&mut n);
    assert!(
        attach
            .iter()
            .any(|o| matches!(o, Output::Send { link: l, .. } if *l == link))
    );
    // Nobody answers; run past the join retry (20 reliability timers) with the link still up.
    let mut later = Vec::new();
    while now.0 < 1_000_000 + 70_000 {
        now = n
            .poll_timeout()
            .unwrap_or(now.plus_ms(1000))
            .max(now.plus_ms(1));
        n.handle_input(now, Input::Timeout);
        later.extend(drain(&mut n));
    }
    assert!(
        !later
            .iter()
            .any(|o| matches!(o, Output::Connect { peer: None, .. })),
        "dialled the bootstrap again although its link is up: {later:?}"
    );
    assert!(
        later
            .iter()
            .filter(|o| matches!(o, Output::Send { link: l, .. } if *l == link))
            .count()
            >= 2,
        "no new join attempt through the bootstrap link"
    );
}
