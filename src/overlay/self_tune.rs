//! Self-tuning of the Chord stabilization interval (after RFC 7363) in the real driver:
//! watches the neighbour lists, counts neighbours that left, and derives the
//! chord-update-interval from the churn rate with [`reload::usage::self_tuning`].
//!
//! A neighbour counts as *departed* when it vanishes from our successor/predecessor lists
//! while it still lies inside the span those lists cover (a neighbour pushed out by a joining
//! peer lies beyond the span, and is not counted).

use reload::topology::dist;
use reload::usage::self_tuning::{
    estimate_network_size, per_peer_rate, stabilization_interval, successor_list_size,
};
use reload::wire::NodeId;
use std::collections::{BTreeSet, VecDeque};

/// Churn is measured over this window (ms).
const WINDOW_MS: u64 = 600_000;
/// Tolerated probability that a given neighbour leaves within one interval.
const DELTA: f64 = 0.1;
/// Shortest interval the tuner picks (ms).
const MIN_MS: u64 = 5_000;

/// The tuner's state and last estimate.
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

    /// The `/status` view.
    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "enabled": true,
            "estimated_n": self.estimated_n.round(),
            "churn_per_peer_per_s": self.churn_per_peer,
            "update_interval_ms": self.interval_ms,
            "recommended_successors": successor_list_size(self.estimated_n, DELTA),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(t.status()["update_interval_ms"], i);
    }
}
