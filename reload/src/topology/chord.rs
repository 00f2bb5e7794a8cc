//! CHORD-RELOAD routing state (RFC 6940 section 10): ring arithmetic, neighbour table
//! (successors and predecessors) and finger table. Pure data, no clock and no I/O: the node
//! engine feeds it what it learns and asks it where to route.

use crate::wire::NodeId;

/// Clockwise distance from `a` to `b` on the 2^128 ring.
#[must_use]
pub fn dist(a: u128, b: u128) -> u128 {
    b.wrapping_sub(a)
}

/// True when `x` is in the half-open ring interval `(a, b]`; `a == b` means the whole ring.
#[must_use]
pub fn in_range(x: u128, a: u128, b: u128) -> bool {
    if a == b {
        return true;
    }
    let d = dist(a, x);
    d != 0 && d <= dist(a, b)
}

/// Number of finger slots a CHORD-RELOAD table can hold (one per bit of the ring).
pub const MAX_FINGERS: usize = 128;

/// The Chord routing table of one peer.
#[derive(Debug, Clone)]
pub struct ChordTable {
    me: NodeId,
    succs: Vec<NodeId>,
    preds: Vec<NodeId>,
    fingers: Vec<Option<NodeId>>,
    max_succ: usize,
    max_pred: usize,
}

impl ChordTable {
    /// An empty table for peer `me` keeping `max_succ` successors and `max_pred` predecessors.
    #[must_use]
    pub fn new(me: NodeId, max_succ: usize, max_pred: usize) -> Self {
        Self {
            me,
            succs: Vec::new(),
            preds: Vec::new(),
            fingers: vec![None; MAX_FINGERS],
            max_succ: max_succ.max(1),
            max_pred: max_pred.max(1),
        }
    }

    /// Our own Node-ID.
    #[must_use]
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// Successors, nearest first.
    #[must_use]
    pub fn successors(&self) -> &[NodeId] {
        &self.succs
    }

    /// Predecessors, nearest first.
    #[must_use]
    pub fn predecessors(&self) -> &[NodeId] {
        &self.preds
    }

    /// The finger slots (index i targets `me + 2^(127-i)`).
    #[must_use]
    pub fn fingers(&self) -> &[Option<NodeId>] {
        &self.fingers
    }

    /// Distinct fingers in ascending ring order from us (as the `full` Update lists them).
    #[must_use]
    pub fn finger_list(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self.fingers.iter().flatten().copied().collect();
        v.sort_by_key(|n| dist(self.me.0, n.0));
        v.dedup();
        v
    }

    /// Ring position finger `i` aims at: `me + 2^(127-i)` (RFC 6940 10.1, counted from 0).
    #[must_use]
    pub fn finger_target(&self, i: usize) -> u128 {
        let shift = 127usize.saturating_sub(i.min(127));
        self.me.0.wrapping_add(1u128 << shift)
    }

    /// The Node-IDs valid for finger `i` (RFC 6940 10.7.4.2: [x + 2^(128-i), x + 2^(129-i) - 1]
    /// counted from 1) as (first, count): `me + 2^(127-i)` and `2^(127-i)` from 0.
    #[must_use]
    pub fn finger_range(&self, i: usize) -> (u128, u128) {
        let shift = 127usize.saturating_sub(i.min(127));
        (self.finger_target(i), 1u128 << shift)
    }

    /// True when the finger slot `i` is worth filling: its target lies beyond our last
    /// successor (closer targets are covered by the neighbour table).
    #[must_use]
    pub fn finger_wanted(&self, i: usize) -> bool {
        if i >= MAX_FINGERS {
            return false;
        }
        match self.succs.last() {
            None => false,
            Some(last) => !in_range(self.finger_target(i), self.me.0, last.0),
        }
    }

    /// Records `node` as finger `i`.
    pub fn set_finger(&mut self, i: usize, node: NodeId) {
        if node != self.me
            && let Some(slot) = self.fingers.get_mut(i)
        {
            *slot = Some(node);
        }
    }

    /// Our nearest predecessor, if known.
    #[must_use]
    pub fn predecessor(&self) -> Option<NodeId> {
        self.preds.first().copied()
    }

    /// Our nearest successor, if known.
    #[must_use]
    pub fn successor(&self) -> Option<NodeId> {
        self.succs.first().copied()
    }

    /// True when `node` is one of our successors or predecessors.
    #[must_use]
    pub fn is_neighbor(&self, node: NodeId) -> bool {
        self.succs.contains(&node) || self.preds.contains(&node)
    }

    /// True when `node` is anywhere in the routing table.
    #[must_use]
    pub fn contains(&self, node: NodeId) -> bool {
        self.is_neighbor(node) || self.fingers.contains(&Some(node))
    }

    /// True when we are responsible for key `k`: `k` in `(predecessor, me]`. A peer that knows
    /// no predecessor is alone and owns the whole ring.
    #[must_use]
    pub fn is_responsible(&self, k: u128) -> bool {
        match self.preds.first() {
            None => true,
            Some(p) => in_range(k, p.0, self.me.0),
        }
    }

    /// Every peer in the routing table (neighbours and fingers), possibly with repeats.
    pub fn entries(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.succs
            .iter()
            .chain(self.preds.iter())
            .copied()
            .chain(self.fingers.iter().flatten().copied())
    }

    /// Next hop towards key `k` (RFC 6940 10.3): the entry with the largest id in `(me, k)`;
    /// with none, the entry with the smallest id at or after `k`. `None` if the table is
    /// empty.
    #[must_use]
    pub fn next_hop(&self, k: u128) -> Option<NodeId> {
        let me = self.me.0;
        // Shortcut: our neighbour lists are contiguous ring segments, so when k falls inside
        // one we know its responsible peer exactly and can go there in one hop.
        let mut prev = me;
        for s in &self.succs {
            if in_range(k, prev, s.0) {
                return Some(*s);
            }
            prev = s.0;
        }
        let mut prev = me;
        for p in &self.preds {
            // k in (p, prev] is owned by prev (a predecessor, unless prev is us).
            if prev != me && in_range(k, p.0, prev) {
                return Some(NodeId(prev));
            }
            prev = p.0;
        }
        let dk = dist(me, k);
        let mut best_before: Option<(u128, NodeId)> = None;
        let mut best_after: Option<(u128, NodeId)> = None;
        for e in self.entries() {
            let de = dist(me, e.0);
            if de != 0 && de < dk {
                if best_before.is_none_or(|(d, _)| de > d) {
                    best_before = Some((de, e));
                }
            } else {
                let da = dist(k, e.0);
                if best_after.is_none_or(|(d, _)| da < d) {
                    best_after = Some((da, e));
                }
            }
        }
        best_before.or(best_after).map(|(_, n)| n)
    }

    /// Merges `candidates` (peers we are connected to) into the neighbour table, keeping the
    /// nearest successors and predecessors. Returns true when the neighbour table changed.
    pub fn merge_neighbors(&mut self, candidates: impl IntoIterator<Item = NodeId>) -> bool {
        let me = self.me;
        let mut all: Vec<NodeId> = self
            .succs
            .iter()
            .chain(self.preds.iter())
            .copied()
            .chain(candidates)
            .filter(|n| *n != me && *n != NodeId::INVALID)
            .collect();
        all.sort_unstable();
        all.dedup();
        let mut succs = all.clone();
        succs.sort_by_key(|n| dist(me.0, n.0));
        succs.truncate(self.max_succ);
        let mut preds = all;
        preds.sort_by_key(|n| dist(n.0, me.0));
        preds.truncate(self.max_pred);
        let changed = succs != self.succs || preds != self.preds;
        self.succs = succs;
        self.preds = preds;
        changed
    }

    /// Would `node` enter the neighbour table if we were connected to it?
    #[must_use]
    pub fn would_be_neighbor(&self, node: NodeId) -> bool {
        if node == self.me || node == NodeId::INVALID || self.is_neighbor(node) {
            return false;
        }
        let me = self.me.0;
        let succ_ok = self.succs.len() < self.max_succ
            || self
                .succs
                .last()
                .is_some_and(|l| dist(me, node.0) < dist(me, l.0));
        let pred_ok = self.preds.len() < self.max_pred
            || self
                .preds
                .last()
                .is_some_and(|l| dist(node.0, me) < dist(l.0, me));
        succ_ok || pred_ok
    }

    /// Removes `node` everywhere. Returns (neighbour table changed, finger slots it held).
    pub fn remove(&mut self, node: NodeId) -> (bool, Vec<usize>) {
        let before = self.succs.len() + self.preds.len();
        self.succs.retain(|n| *n != node);
        self.preds.retain(|n| *n != node);
        let changed = before != self.succs.len() + self.preds.len();
        let mut slots = Vec::new();
        for (i, f) in self.fingers.iter_mut().enumerate() {
            if *f == Some(node) {
                *f = None;
                slots.push(i);
            }
        }
        (changed, slots)
    }

    /// Clears the whole table (used before a rejoin).
    pub fn clear(&mut self) {
        self.succs.clear();
        self.preds.clear();
        self.fingers.iter_mut().for_each(|f| *f = None);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn interval_wraps() {
        assert!(in_range(5, 1, 10));
        assert!(in_range(10, 1, 10));
        assert!(!in_range(1, 1, 10));
        assert!(in_range(2, u128::MAX - 3, 5));
        assert!(in_range(u128::MAX, u128::MAX - 3, 5));
        assert!(!in_range(7, u128::MAX - 3, 5));
        assert!(in_range(7, 3, 3));
    }

    #[test]
    fn neighbours_sorted_and_bounded() {
        let mut t = ChordTable::new(NodeId(100), 3, 3);
        assert!(t.merge_neighbors([110, 90, 120, 130, 80, 70, 60, 140].map(NodeId)));
        assert_eq!(t.successors(), &[110, 120, 130].map(NodeId));
        assert_eq!(t.predecessors(), &[90, 80, 70].map(NodeId));
        assert!(!t.merge_neighbors([NodeId(140)]));
        assert!(t.is_responsible(95));
        assert!(!t.is_responsible(105));
        assert!(t.would_be_neighbor(NodeId(105)));
        assert!(!t.would_be_neighbor(NodeId(150)));
        let (ch, _) = t.remove(NodeId(110));
        assert!(ch);
        assert_eq!(t.successor(), Some(NodeId(120)));
    }

    #[test]
    fn next_hop_prefers_closest_preceding() {
        let mut t = ChordTable::new(NodeId(0), 3, 3);
        t.merge_neighbors([10, 20, 30].map(NodeId));
        t.set_finger(0, NodeId(1 << 127));
        assert_eq!(t.next_hop(15), Some(NodeId(20)));
        assert_eq!(t.next_hop(25), Some(NodeId(30)));
        assert_eq!(t.next_hop(5), Some(NodeId(10)));
        assert_eq!(t.next_hop(10), Some(NodeId(10)));
        assert_eq!(t.next_hop((1 << 127) + 5), Some(NodeId(1 << 127)));
        assert_eq!(t.finger_target(0), 1 << 127);
        assert!(t.finger_wanted(0));
        assert!(!t.finger_wanted(127));
    }
}
