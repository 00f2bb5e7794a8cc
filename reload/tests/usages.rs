//! Usages on a small in-memory overlay of real engines: RFC 7851 PathTrack and diagnostics.
//! ReDiR and TURN-SERVICE run on the simulator in `usages_sim.rs`; self-tuning in `sim.rs` and
//! the comparison below.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reload::node::{Event, Input, LinkId, Node, NodeConfig, Outcome, Output, RequestId, Time};
use reload::wire::{
    Destination, DiagnosticKindId, DiagnosticValue, DiagnosticsRequest, NodeId, PathTrackAns,
};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

/// Zero-latency network of nodes; every Connect succeeds.
struct Net {
    nodes: Vec<Node>,
    by_addr: HashMap<SocketAddr, usize>,
    links: HashMap<u64, (usize, usize)>,
    next_link: u64,
    now: Time,
    events: Vec<(usize, Event)>,
}

impl Net {
    fn new(n: usize, seed: u64) -> Self {
        let mut nodes = Vec::new();
        let mut by_addr = HashMap::new();
        let a0: SocketAddr = "10.0.0.1:6084".parse().unwrap();
        for i in 0..n {
            let addr: SocketAddr = format!("10.0.{}.{}:6084", i / 200, i % 200 + 1)
                .parse()
                .unwrap();
            let id = NodeId(
                (seed as u128 + 1)
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
                    .wrapping_mul(i as u128 * 2 + 1),
            );
            let cfg = NodeConfig {
                first_node: i == 0,
                local_addr: addr,
                bootstrap: if i == 0 { vec![] } else { vec![a0] },
                ..NodeConfig::default()
            };
            by_addr.insert(addr, i);
            nodes.push(Node::new(cfg, id, seed + i as u64));
        }
        Net {
            nodes,
            by_addr,
            links: HashMap::new(),
            next_link: 1,
            now: Time(1_000),
            events: Vec::new(),
        }
    }

    fn pump(&mut self) {
        let mut q: VecDeque<(usize, Input)> = VecDeque::new();
        loop {
            for i in 0..self.nodes.len() {
                while let Some(o) = self.nodes[i].poll_output() {
                    match o {
                        Output::Send { link, bytes } => {
                            if let Some(&(a, b)) = self.links.get(&link.0) {
                                let to = if a == i { b } else { a };
                                q.push_back((to, Input::Message { link, bytes }));
                            }
                        }
                        Output::Connect { addr, .. } => {
                            if let Some(&j) = self.by_addr.get(&addr) {
                                let l = LinkId(self.next_link);
                                self.next_link += 1;
                                self.links.insert(l.0, (i, j));
                                let (pi, pj) = (self.nodes[i].id(), self.nodes[j].id());
                                q.push_back((i, Input::LinkUp { link: l, peer: pj }));
                                q.push_back((j, Input::LinkUp { link: l, peer: pi }));
                            }
                        }
                        Output::Disconnect { link } => {
                            if let Some((a, b)) = self.links.remove(&link.0) {
                                q.push_back((a, Input::LinkDown { link }));
                                q.push_back((b, Input::LinkDown { link }));
                            }
                        }
                        Output::Event(e) => self.events.push((i, e)),
                    }
                }
            }
            if q.is_empty() {
                return;
            }
            while let Some((i, inp)) = q.pop_front() {
                self.nodes[i].handle_input(self.now, inp);
            }
        }
    }

    /// Runs for `ms` of virtual time in 50 ms steps.
    fn run(&mut self, ms: u64) {
        let end = self.now.plus_ms(ms);
        while self.now < end {
            self.pump();
            self.now = self.now.plus_ms(50);
            for n in &mut self.nodes {
                if n.poll_timeout().is_some_and(|t| t <= self.now) {
                    n.handle_input(self.now, Input::Timeout);
                }
            }
        }
        self.pump();
    }

    fn build(&mut self) {
        self.nodes[0].start(self.now);
        for i in 1..self.nodes.len() {
            self.run(200);
            self.nodes[i].start(self.now);
        }
        self.run(30_000);
    }

    fn completion(&mut self, who: usize, req: RequestId) -> Outcome {
        for _ in 0..200 {
            if let Some(p) = self.events.iter().position(|(i, e)| {
                *i == who && matches!(e, Event::Completed { request, .. } if *request == req)
            }) {
                let (_, e) = self.events.remove(p);
                let Event::Completed { result, .. } = e else {
                    unreachable!()
                };
                return result.expect("request failed");
            }
            self.run(50);
        }
        panic!("no completion for {req:?}");
    }
}

fn all_kinds() -> DiagnosticsRequest {
    DiagnosticsRequest {
        expiration: 0,
        timestamp_initiated: 7,
        dm_flags: (1..=15).map(|k| DiagnosticKindId(k).flag()).sum(),
        extensions: vec![],
    }
}

#[test]
fn diagnostics_request_is_answered_with_known_kinds() {
    let mut net = Net::new(12, 3);
    net.build();
    assert!(net.nodes.iter().all(|n| n.is_joined()));
    let target = net.nodes[7].id();
    let now = net.now;
    let req = net.nodes[2].diagnostics(now, Destination::Node(target), all_kinds());
    let Outcome::PathTrack(PathTrackAns { next_hop, response }) = net.completion(2, req) else {
        panic!("not a PathTrack answer")
    };
    assert_eq!(next_hop, Destination::Node(target));
    assert_eq!(response.timestamp_initiated, 7);
    let vals = response.values();
    assert!(vals.contains(&DiagnosticValue::StatusInfo(0)), "{vals:?}");
    let rt = net.nodes[7].table().entries().count() as u32;
    assert!(vals.contains(&DiagnosticValue::RoutingTableSize(rt)));
    assert!(
        vals.iter()
            .any(|v| matches!(v, DiagnosticValue::SoftwareVersion(s) if s.starts_with("p2psip")))
    );
    // Unknown to the engine: omitted, never invented.
    assert!(
        !vals
            .iter()
            .any(|v| v.kind() == DiagnosticKindId::BATTERY_STATUS)
    );
}

#[test]
fn path_track_walks_to_the_responsible_node() {
    let mut net = Net::new(30, 5);
    net.build();
    let key = 0x1234_5678_9abc_def0_0fed_cba9_8765_4321u128;
    let responsible = net
        .nodes
        .iter()
        .find(|n| n.table().is_responsible(key))
        .expect("someone is responsible")
        .id();
    let origin = 4;
    let mut via = net.nodes[origin]
        .table()
        .next_hop(key)
        .unwrap_or(net.nodes[origin].id());
    let mut path = vec![via];
    for _ in 0..20 {
        let now = net.now;
        let req = net.nodes[origin].path_track(
            now,
            vec![Destination::Node(via)],
            Destination::Resource(reload::wire::ResourceId(key.to_be_bytes().to_vec())),
            all_kinds(),
        );
        let Outcome::PathTrack(ans) = net.completion(origin, req) else {
            panic!()
        };
        let Destination::Node(next) = ans.next_hop else {
            panic!()
        };
        if next == via {
            break;
        }
        via = next;
        path.push(via);
    }
    eprintln!("path to {key:x}: {} hops", path.len());
    assert_eq!(*path.last().unwrap(), responsible, "path {path:?}");
    assert!(path.len() <= 8);
}

#[test]
fn expired_diagnostics_request_gets_error_23() {
    let mut net = Net::new(4, 9);
    net.build();
    let target = net.nodes[3].id();
    let now = net.now;
    let mut r = all_kinds();
    r.expiration = 1; // long past
    let req = net.nodes[1].diagnostics(now, Destination::Node(target), r);
    let mut code = None;
    for _ in 0..100 {
        if let Some((_, Event::Completed { result, .. })) = net.events.iter().find(|(i, e)| {
            *i == 1 && matches!(e, Event::Completed { request, .. } if *request == req)
        }) {
            code = Some(result.clone());
            break;
        }
        net.run(50);
    }
    match code {
        Some(Err(reload::node::RequestError::Error { code, .. })) => assert_eq!(code, 23),
        other => panic!("{other:?}"),
    }
}

/// Fixed vs self-tuned chord-update-interval under churn (run with `--ignored --nocapture`;
/// figures in docs/BENCHMARKS.md): every peer runs its own RFC 7363 tuner
/// (`SimConfig::self_tuning`), the fixed runs use the longest and the shortest interval the
/// tuner may pick.
#[test]
#[ignore = "slow comparison; prints figures"]
fn self_tuned_stabilization_vs_fixed() {
    use reload::sim::{Sim, SimConfig};
    let nodes = 500;
    let seed = std::env::var("SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(21);
    for churn in [0.0, 10.0, 50.0] {
        for (label, interval, tuned) in [
            ("fixed 600 s", 600_000u64, false),
            ("fixed 5 s", 5_000, false),
            ("self-tuned (5..600 s)", 600_000, true),
        ] {
            let mut sim = Sim::new(SimConfig {
                nodes,
                seed,
                churn_per_min: churn,
                duration_secs: 600,
                lookups: 2000,
                settle_secs: 60,
                update_interval_ms: interval,
                self_tuning: tuned,
                ..SimConfig::default()
            });
            sim.build();
            sim.register_all();
            sim.workload();
            let r = sim.report();
            eprintln!(
                "| {seed} | {nodes} | {churn}/min | {label} | {:.1} | {:.1} | {:.4} | {} | {} |",
                r.mean_update_interval_s,
                r.messages_per_peer_min,
                r.lookup_success_rate,
                r.registrations_lost,
                r.ring_errors
            );
        }
    }
}
