//! CHORD-RELOAD stabilization beyond the neighbour Updates (RFC 6940 10.7): finger refresh by
//! random search within each invalid entry's range (10.7.4.2, alternative 1), dropping data we
//! are no longer a replica for (10.7.3), the successor replacement hold-down before new
//! replicas are made (10.7.1), partition detection through a bootstrap peer (10.7.4.4), and a
//! graceful Leave that is reported once its requests are answered (10.9 via 6.4.2.3).

use super::msg::{Body, Dest};
use super::{Event, JoinState, Node, Output, Purpose, Time, Timer};
use crate::topology::in_range;
use crate::wire::{NodeId, ResourceId};
use rand::RngExt;

/// Successor replacement hold-down (RFC 6940 10.7.1): new replicas wait this long after a
/// failed successor is removed, so a triggered Update can bring a better match first.
pub const REPLICA_HOLD_DOWN_MS: u64 = 30_000;
/// Partition detection runs every this many stabilization rounds (RFC 6940 10.7.4.4 leaves
/// the period open).
pub const PARTITION_CHECK_ROUNDS: u32 = 5;

impl Node {
    /// Finger refresh (RFC 6940 10.7.4.2, alternative 1): walk the entries from i = 0 and, for
    /// each invalid (empty) one, search with probability 0.5 for a peer at a Node-ID picked at
    /// random in that entry's range.
    pub(super) fn refresh_fingers(&mut self, now: Time) {
        for i in 0..crate::topology::chord::MAX_FINGERS {
            if !self.table.finger_wanted(i) {
                break;
            }
            if self.table.fingers().get(i).copied().flatten().is_some() {
                continue;
            }
            if !self.rng.random_bool(0.5) {
                continue;
            }
            let (lo, width) = self.table.finger_range(i);
            let off = if width == 0 {
                0
            } else {
                self.rng.random::<u128>() % width
            };
            self.search_finger_at(now, i, lo.wrapping_add(off));
        }
    }

    /// Sends the Attach that looks for finger `i` at ring position `target`.
    pub(super) fn search_finger_at(&mut self, now: Time, i: usize, target: u128) {
        if self.state != JoinState::Joined || !self.table.finger_wanted(i) {
            return;
        }
        let body = Body::AttachReq(self.attach_body(true, false));
        self.send_request(
            now,
            vec![Dest::Resource(ResourceId::from_u128(target))],
            &body,
            Purpose::AttachFinger(i),
        );
    }

    /// Deletes data we are no longer a replica for (RFC 6940 10.7.3: "there are three
    /// predecessors between x and R"): everything outside (p[replicas], me], where p[k] is our
    /// (k+1)-th predecessor. Only with a full predecessor list; the primary handed the data
    /// over when the range changed. Returns how many resources were dropped.
    pub(super) fn drop_foreign_data(&mut self) -> usize {
        if self.state != JoinState::Joined {
            return 0;
        }
        let Some(lo) = self.table.predecessors().get(self.cfg.replicas).copied() else {
            return 0;
        };
        let me = self.me.0;
        let gone = self.storage.resources(|k| !in_range(k, lo.0, me));
        for r in &gone {
            self.storage.remove(r);
        }
        self.stats.replicas_dropped += gone.len() as u64;
        gone.len()
    }

    /// Partition detection (RFC 6940 10.7.4.4): contact a bootstrap peer again; once linked,
    /// a Ping for our own Node-ID is routed through it (see [`Node::partition_probe_link`]).
    pub(super) fn start_partition_check(&mut self, now: Time) {
        if self.state != JoinState::Joined || self.cfg.bootstrap.is_empty() {
            return;
        }
        let i = self.rng.random_range(0..self.cfg.bootstrap.len());
        let Some(addr) = self.cfg.bootstrap.get(i).copied() else {
            return;
        };
        if addr == self.cfg.local_addr {
            return;
        }
        self.partition_probe = Some(now);
        self.out.push_back(Output::Connect { peer: None, addr });
    }

    /// A link came up while a partition check waits for its bootstrap link: Ping our own
    /// Node-ID through it. True when the link was used for that.
    pub(super) fn partition_probe_link(
        &mut self,
        now: Time,
        link: super::LinkId,
        peer: NodeId,
    ) -> bool {
        if self.partition_probe.take().is_none() {
            return false;
        }
        let dest = vec![
            Dest::Node(peer),
            Dest::Resource(ResourceId::from_u128(self.me.0)),
        ];
        self.send_request_via(
            now,
            dest,
            &Body::PingReq,
            Purpose::PartitionCheck(peer),
            Some(link),
        );
        true
    }

    /// The partition Ping was answered by `responder` through bootstrap peer `via`: if that
    /// is neither us nor a peer we know, the overlay is partitioned; Attach to it through the
    /// bootstrap peer (an Update follows once linked, as for any new neighbour).
    pub(super) fn on_partition_answer(&mut self, now: Time, via: NodeId, responder: NodeId) {
        if responder == self.me || responder == NodeId::INVALID || self.table.contains(responder) {
            return;
        }
        self.stats.partitions_detected += 1;
        self.dead.remove(&responder);
        if self.link_to(responder).is_some() {
            // Already linked (the bootstrap peer answered itself): Update it now.
            self.consider_neighbors(now, [responder]);
            let body = Body::UpdateReq(self.full_update(now));
            self.send_request(
                now,
                vec![Dest::Node(responder)],
                &body,
                Purpose::Update(responder),
            );
            return;
        }
        self.want_update_on_link.insert(responder);
        self.attach_to(now, responder, Some(via));
    }

    /// Records a failed successor: new replicas wait for the hold-down (RFC 6940 10.7.1).
    pub(super) fn start_replica_hold_down(&mut self, now: Time) {
        let until = now.plus_ms(REPLICA_HOLD_DOWN_MS);
        if self.replica_hold_down.is_none_or(|t| t < until) {
            self.replica_hold_down = Some(until);
            self.arm(until, Timer::ReplicaHoldDown);
        }
    }

    /// True while new replicas must wait.
    pub(super) fn in_replica_hold_down(&self, now: Time) -> bool {
        self.replica_hold_down.is_some_and(|t| now < t)
    }

    /// The hold-down ended: Store our primary data at the replicas we now have.
    pub(super) fn end_replica_hold_down(&mut self, now: Time) {
        if self.replica_hold_down.is_none_or(|t| now < t) {
            return;
        }
        self.replica_hold_down = None;
        if self.state != JoinState::Joined {
            return;
        }
        let Some(pred) = self.table.predecessor() else {
            return;
        };
        let me = self.me.0;
        let mine = self.storage.resources(|k| in_range(k, pred.0, me));
        let replicas: Vec<NodeId> = self
            .table
            .successors()
            .iter()
            .take(self.cfg.replicas)
            .copied()
            .collect();
        for (i, r) in replicas.iter().enumerate() {
            for res in &mine {
                self.replicate_resource(now, res, *r, (i + 1) as u8);
            }
        }
    }

    /// One of our Leave requests finished: report [`Event::Left`] once none is outstanding.
    pub(super) fn leave_progress(&mut self) {
        if self.left_reported || self.state != JoinState::Left {
            return;
        }
        if !self.pending.values().any(|p| p.purpose == Purpose::Leave) {
            self.left_reported = true;
            self.out.push_back(Output::Event(Event::Left));
        }
    }
}
