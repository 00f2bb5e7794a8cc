//! Self-tuning of CHORD-RELOAD maintenance (after RFC 7363), as pure functions.
//!
//! The RFC 7363 text was not at hand; these follow its approach (estimate the network size
//! from neighbour spacing and the churn rate from observed joins/leaves, then derive the
//! stabilization interval and successor-list size), with the formulas stated here:
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
}
