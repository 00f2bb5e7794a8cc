//! Self-tuning of CHORD-RELOAD maintenance (after RFC 7363), as pure functions.
//!
//! These follow RFC 7363's approach (section 6: estimate the overlay size from the density
//! of Node-IDs in the neighbour lists and the failure rate from observed departures, then
//! derive the stabilization interval and the routing-table sizes). Only the size estimate
//! could be checked to match the RFC's idea (average spacing `d` of the neighbours,
//! `N = 2^128 / d`); the other formulas are this crate's own, stated here, and the RFC's
//! estimate sharing in Update requests (its SelfTuningData extension) is not implemented:
//! docs/DEPLOY.md "RFC verification (7851, 7374, 7363)" lists what was and was not checked.
//!
//! * size: `N = 2^128 * (p + s) / span`, where `span` is the ring distance from the farthest
//!   predecessor to the farthest successor known (p predecessors, s successors);
//! * per-peer rate: `mu = events / (window * watched)`; the network-wide rate is `mu * N`;
//! * stabilization interval: the longest `T` with `P(a given neighbour leaves within T) =
//!   1 - exp(-mu T) <= delta`, i.e. `T = -ln(1 - delta) / mu`, clamped;
//! * successor-list size: the smallest `s` with `delta^s <= 1/N` (all successors lost within
//!   one interval is rarer than one peer in the network), i.e. `ceil(ln N / ln(1/delta))`,
//!   at least 2.

use crate::topology::dist;
use crate::wire::NodeId;
use std::collections::{BTreeSet, VecDeque};

/// Estimated number of peers, from our predecessor and successor lists (nearest first).
pub fn estimate_network_size(me: NodeId, preds: &[NodeId], succs: &[NodeId]) -> f64 {
    let n = preds.len() + succs.len();
    if n == 0 {
        return 1.0;
    }
    let far_pred = preds.last().map_or(0, |p| dist(p.0, me.0));
    let far_succ = succs.last().map_or(0, |s| dist(me.0, s.0));
    let span = far_pred.saturating_add(far_succ);
    if span == 0 {
        return 1.0;
    }
    // 2^128 * n / span, in floating point.
    (n as f64) * 2f64.powi(128) / (span as f64)
}

/// Per-peer event rate (events per peer per second) from `events` seen among `watched`
/// neighbours during `window_secs`.
pub fn per_peer_rate(events: u32, window_secs: f64, watched: usize) -> f64 {
    if window_secs <= 0.0 || watched == 0 {
        return 0.0;
    }
    f64::from(events) / (window_secs * watched as f64)
}

/// Stabilization interval (seconds) for per-peer leave rate `mu`, tolerance `delta`,
/// clamped to `[min_s, max_s]` (no churn observed: `max_s`).
pub fn stabilization_interval(mu: f64, delta: f64, min_s: f64, max_s: f64) -> f64 {
    if mu <= 0.0 || !(0.0..1.0).contains(&delta) {
        return max_s;
    }
    (-(1.0 - delta).ln() / mu).clamp(min_s, max_s)
}

/// Successor-list size for `n` peers and tolerance `delta`.
pub fn successor_list_size(n: f64, delta: f64) -> usize {
    if n <= 2.0 || !(0.0..1.0).contains(&delta) || delta <= 0.0 {
        return 2;
    }
    ((n.ln() / (1.0 / delta).ln()).ceil() as usize).max(2)
}

/// Churn is measured over this window (ms).
pub const WINDOW_MS: u64 = 600_000;
/// Tolerated probability that a given neighbour leaves within one interval.
pub const DELTA: f64 = 0.1;
/// Shortest interval the tuner picks (ms).
pub const MIN_MS: u64 = 5_000;

/// Self-tuning state of one peer (RFC 7363): watches its neighbour lists, counts neighbours
/// that left, and derives the chord-update-interval from the churn rate.
///
/// A neighbour counts as *departed* when it vanishes from the successor/predecessor lists
/// while it still lies inside the span those lists cover (a neighbour pushed out by a joining
/// peer lies beyond the span, and is not counted).
#[derive(Debug, Clone)]
pub struct SelfTuner {
    started_ms: u64,
    max_ms: u64,
    known: BTreeSet<NodeId>,
    departures: VecDeque<u64>,
    /// Estimated number of peers.
    pub estimated_n: f64,
    /// Per-peer departure rate (1/s).
    pub churn_per_peer: f64,
    /// The interval chosen (ms).
    pub interval_ms: u64,
}

impl SelfTuner {
    /// A tuner that never chooses more than `max_ms` (the configured interval).
    pub fn new(now_ms: u64, max_ms: u64) -> Self {
        Self {
            started_ms: now_ms,
            max_ms: max_ms.max(MIN_MS),
            known: BTreeSet::new(),
            departures: VecDeque::new(),
            estimated_n: 1.0,
            churn_per_peer: 0.0,
            interval_ms: max_ms.max(MIN_MS),
        }
    }

    /// Observes the current neighbour lists (nearest first; the driver calls it after every
    /// event, it is a few set operations); returns the interval to use.
    pub fn observe(&mut self, now_ms: u64, me: NodeId, preds: &[NodeId], succs: &[NodeId]) -> u64 {
        let far_pred = preds.last().map_or(0, |p| dist(p.0, me.0));
        let far_succ = succs.last().map_or(0, |s| dist(me.0, s.0));
        let inside = |n: &NodeId| dist(me.0, n.0) < far_succ || dist(n.0, me.0) < far_pred;
        let now_set: BTreeSet<NodeId> = preds.iter().chain(succs).copied().collect();
        for gone in self.known.difference(&now_set) {
            if inside(gone) {
                self.departures.push_back(now_ms);
            }
        }
        self.known = now_set;
        while self
            .departures
            .front()
            .is_some_and(|t| now_ms.saturating_sub(*t) > WINDOW_MS)
        {
            self.departures.pop_front();
        }
        let window_s =
            (now_ms.saturating_sub(self.started_ms).min(WINDOW_MS) as f64 / 1000.0).max(1.0);
        // Lists that overlap (a peer both successor and predecessor) cover the whole ring:
        // the size is known exactly.
        self.estimated_n = if self.known.len() < preds.len() + succs.len() {
            (self.known.len() + 1) as f64
        } else {
            estimate_network_size(me, preds, succs)
        };
        self.churn_per_peer = per_peer_rate(
            self.departures.len() as u32,
            window_s,
            self.known.len().max(1),
        );
        let t = stabilization_interval(
            self.churn_per_peer,
            DELTA,
            MIN_MS as f64 / 1000.0,
            self.max_ms as f64 / 1000.0,
        );
        self.interval_ms = (t * 1000.0) as u64;
        self.interval_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_estimate_of_an_even_ring() {
        // 1024 evenly spaced peers; we know 4 on each side.
        let step = u128::MAX / 1024 + 1;
        let me = NodeId(step * 100);
        let preds: Vec<NodeId> = (1..=4).map(|i| NodeId(step * (100 - i))).collect();
        let succs: Vec<NodeId> = (1..=4).map(|i| NodeId(step * (100 + i))).collect();
        let n = estimate_network_size(me, &preds, &succs);
        assert!((n - 1024.0).abs() < 1.0, "{n}");
        assert_eq!(estimate_network_size(me, &[], &[]), 1.0);
    }

    #[test]
    fn rates_interval_and_list_size() {
        // 6 leaves among 8 watched neighbours in 10 minutes.
        let mu = per_peer_rate(6, 600.0, 8);
        assert!((mu - 0.00125).abs() < 1e-9);
        let t = stabilization_interval(mu, 0.1, 1.0, 600.0);
        assert!((t - 84.28).abs() < 0.1, "{t}");
        assert_eq!(stabilization_interval(0.0, 0.1, 1.0, 600.0), 600.0);
        assert_eq!(stabilization_interval(10.0, 0.1, 1.0, 600.0), 1.0);
        assert_eq!(successor_list_size(1000.0, 0.1), 3);
        assert_eq!(successor_list_size(1e6, 0.1), 6);
        assert_eq!(successor_list_size(1.0, 0.1), 2);
        // More churn, shorter interval.
        assert!(stabilization_interval(0.01, 0.1, 1.0, 600.0) < t);
    }

    #[test]
    fn departures_shorten_the_interval_and_joins_do_not() {
        let step = u128::MAX / 64;
        let me = NodeId(step * 10);
        let ids = |r: std::ops::RangeInclusive<u128>| -> Vec<NodeId> {
            r.map(|i| NodeId(step * i)).collect()
        };
        let mut t = SelfTuner::new(0, 60_000);
        let preds: Vec<NodeId> = ids(7..=9).into_iter().rev().collect();
        assert_eq!(t.observe(1_000, me, &preds, &ids(11..=13)), 60_000);
        assert!((t.estimated_n - 64.0).abs() < 1.0, "{}", t.estimated_n);
        // A peer joins between 13 and 14 (pushing 13 out): not a departure.
        let joined = vec![NodeId(step * 11), NodeId(step * 12), NodeId(step * 12 + 5)];
        assert_eq!(t.observe(2_000, me, &preds, &joined), 60_000);
        // Successor 11 dies: a departure inside the span; the interval shrinks.
        let after = vec![NodeId(step * 12), NodeId(step * 12 + 5), NodeId(step * 13)];
        let i = t.observe(3_000, me, &preds, &after);
        assert!((MIN_MS..60_000).contains(&i), "{i}");
        assert_eq!(t.interval_ms, i);
    }
}
