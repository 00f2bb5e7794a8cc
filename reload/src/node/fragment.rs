//! Fragmentation and reassembly of RELOAD messages (RFC 6940 6.7).
//!
//! Any node on the path may split a message that does not fit the next link's MTU: every
//! fragment carries a full copy of the forwarding header, the `fragment` field holds the
//! payload's byte offset after the forwarding header and the last-fragment bit. Only the
//! final destination reassembles; incomplete messages are dropped after the maximum request
//! lifetime (15 s) and when the holding buffer is full.

use super::Time;
use super::msg::Header;
use crate::wire::header::{FRAGMENT_FIXED_BIT, FRAGMENT_LAST, FRAGMENT_OFFSET_MASK, UNFRAGMENTED};
use std::collections::{BTreeMap, HashMap};

/// Incomplete messages are dropped after this long (the maximum request lifetime, 6.7).
pub const REASSEMBLY_TIMEOUT_MS: u64 = 15_000;
/// Each fragment carries at least this much of the message body (6.7).
pub const MIN_FRAGMENT_PAYLOAD: usize = 256;
/// Room left in each fragment for the via list to grow on later hops (6.7: PMTU - 32).
pub const VIA_GROWTH_ROOM: usize = 32;
/// Largest message we reassemble (bytes after the forwarding header).
pub const MAX_REASSEMBLED: usize = 1 << 20;
/// Total bytes the holding buffer keeps for all incomplete messages.
pub const MAX_BUFFERED: usize = 4 << 20;

/// Splits a payload that starts at `base_offset` of its message (0 unless it is already a
/// fragment) into fragment payloads for a link with `mtu`, given the encoded forwarding
/// header's size. `last` says whether the payload ends the message. Returns the
/// (fragment field, byte range of `payload_len`) list, or `None` when the message fits or
/// RELOAD fragmentation cannot apply (6.7: header plus 256 bytes must fit; offsets are 24
/// bits).
#[must_use]
pub fn split(
    header_len: usize,
    payload_len: usize,
    base_offset: u32,
    last: bool,
    mtu: usize,
) -> Option<Vec<(u32, std::ops::Range<usize>)>> {
    if mtu == 0 || header_len.saturating_add(payload_len) <= mtu {
        return None;
    }
    let room = mtu.checked_sub(header_len + VIA_GROWTH_ROOM)?;
    if room < MIN_FRAGMENT_PAYLOAD {
        return None;
    }
    let end = (base_offset as usize).checked_add(payload_len)?;
    if end > FRAGMENT_OFFSET_MASK as usize {
        return None;
    }
    // Equal-sized fragments no larger than the room.
    let n = payload_len.div_ceil(room);
    let size = payload_len
        .div_ceil(n)
        .max(MIN_FRAGMENT_PAYLOAD.min(payload_len));
    let mut out = Vec::with_capacity(n);
    let mut start = 0usize;
    while start < payload_len {
        let stop = (start + size).min(payload_len);
        let off = u32::try_from(base_offset as usize + start).ok()?;
        let mut field = FRAGMENT_FIXED_BIT | (off & FRAGMENT_OFFSET_MASK);
        if stop == payload_len && last {
            field |= FRAGMENT_LAST;
        }
        out.push((field, start..stop));
        start = stop;
    }
    Some(out)
}

#[derive(Debug)]
struct Partial {
    header: Header,
    chunks: BTreeMap<usize, Vec<u8>>,
    total: Option<usize>,
    bytes: usize,
    deadline: Time,
}

impl Partial {
    /// The whole payload, when the chunks cover `0..total` without a gap.
    fn assemble(&self) -> Option<Vec<u8>> {
        let total = self.total?;
        let mut out = Vec::with_capacity(total);
        for (off, c) in &self.chunks {
            if *off > out.len() {
                return None; // a gap
            }
            let skip = out.len() - off;
            if let Some(tail) = c.get(skip..) {
                out.extend_from_slice(tail);
            }
        }
        (out.len() >= total).then(|| {
            out.truncate(total);
            out
        })
    }
}

/// Why a fragment was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// The message would exceed [`MAX_REASSEMBLED`].
    TooLarge,
    /// The holding buffer is full.
    BufferFull,
}

/// The holding buffer of incomplete messages, keyed by transaction id.
#[derive(Debug, Default)]
pub struct Reassembler {
    partial: HashMap<u64, Partial>,
    buffered: usize,
    /// Messages dropped incomplete (timeout, buffer full, too large).
    pub dropped: u64,
    /// Messages reassembled.
    pub reassembled: u64,
}

impl Reassembler {
    /// Adds the fragment `payload` with `header` (its `fragment` field tells where it goes).
    /// Returns the whole message (header marked unfragmented, payload) once complete.
    pub fn add(
        &mut self,
        now: Time,
        header: Header,
        payload: &[u8],
    ) -> Result<Option<(Header, Vec<u8>)>, Dropped> {
        self.expire(now);
        let off = header.fragment_offset() as usize;
        let end = off.saturating_add(payload.len());
        let txid = header.transaction_id;
        if end > MAX_REASSEMBLED {
            self.drop_tx(txid);
            return Err(Dropped::TooLarge);
        }
        if self.buffered.saturating_add(payload.len()) > MAX_BUFFERED {
            self.drop_tx(txid);
            return Err(Dropped::BufferFull);
        }
        let last = header.is_last_fragment();
        let p = self.partial.entry(txid).or_insert_with(|| Partial {
            header: header.clone(),
            chunks: BTreeMap::new(),
            total: None,
            bytes: 0,
            deadline: now.plus_ms(REASSEMBLY_TIMEOUT_MS),
        });
        if last {
            p.total = Some(end);
        }
        if off == 0 {
            p.header = header;
        }
        if !p.chunks.contains_key(&off) {
            p.bytes += payload.len();
            self.buffered += payload.len();
            p.chunks.insert(off, payload.to_vec());
        }
        let Some(whole) = p.assemble() else {
            return Ok(None);
        };
        let mut h = p.header.clone();
        h.fragment = UNFRAGMENTED;
        self.remove(txid);
        self.reassembled += 1;
        Ok(Some((h, whole)))
    }

    fn remove(&mut self, txid: u64) -> bool {
        let Some(p) = self.partial.remove(&txid) else {
            return false;
        };
        self.buffered = self.buffered.saturating_sub(p.bytes);
        true
    }

    fn drop_tx(&mut self, txid: u64) {
        if self.remove(txid) {
            self.dropped += 1;
        }
    }

    /// Drops the incomplete messages whose time is up.
    pub fn expire(&mut self, now: Time) {
        let old: Vec<u64> = self
            .partial
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(t, _)| *t)
            .collect();
        for t in old {
            self.drop_tx(t);
        }
    }

    /// Incomplete messages held.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.partial.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn frag_header(field: u32) -> Header {
        Header {
            transaction_id: 7,
            fragment: field,
            ..Header::default()
        }
    }

    #[test]
    fn split_respects_mtu_and_minimum() {
        assert!(split(60, 1000, 0, true, 1500).is_none()); // fits
        assert!(split(60, 1000, 0, true, 0).is_none()); // fragmentation off
        assert!(split(1400, 1000, 0, true, 1500).is_none()); // header too big for 256 bytes
        let f = split(60, 5000, 0, true, 1200).unwrap();
        assert_eq!(f.len(), 5); // room 1108 -> 5 equal fragments of 1000
        for (i, (field, r)) in f.iter().enumerate() {
            assert!(r.len() + 60 + VIA_GROWTH_ROOM <= 1200);
            assert_eq!((*field & FRAGMENT_OFFSET_MASK) as usize, r.start);
            assert_eq!(*field & FRAGMENT_LAST != 0, i == 4);
            assert!(*field & FRAGMENT_FIXED_BIT != 0);
        }
        // Refragmenting a middle fragment keeps its offset base and no last bit.
        let g = split(60, 1000, 3000, false, 700).unwrap();
        assert!(g.iter().all(|(f, _)| f & FRAGMENT_LAST == 0));
        assert_eq!(g[0].0 & FRAGMENT_OFFSET_MASK, 3000);
    }

    #[test]
    fn reassembles_out_of_order_with_duplicates() {
        let msg: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let parts = split(50, msg.len(), 0, true, 1000).unwrap();
        let mut r = Reassembler::default();
        let mut order: Vec<usize> = (0..parts.len()).rev().collect();
        order.insert(1, order[0]); // a duplicate
        let mut done = None;
        for i in order {
            let (field, range) = parts[i].clone();
            if let Some(w) = r.add(Time(0), frag_header(field), &msg[range]).unwrap() {
                done = Some(w);
            }
        }
        let (h, whole) = done.unwrap();
        assert_eq!(whole, msg);
        assert!(h.is_unfragmented());
        assert_eq!(r.pending(), 0);
        assert_eq!(r.dropped, 0);
    }

    #[test]
    fn incomplete_times_out_and_limits_hold() {
        let mut r = Reassembler::default();
        let first = FRAGMENT_FIXED_BIT;
        assert!(
            r.add(Time(0), frag_header(first), &[1; 300])
                .unwrap()
                .is_none()
        );
        assert_eq!(r.pending(), 1);
        r.expire(Time(REASSEMBLY_TIMEOUT_MS));
        assert_eq!(r.pending(), 0);
        assert_eq!(r.dropped, 1);
        // A fragment that claims an offset past the limit is refused.
        let far = FRAGMENT_FIXED_BIT | FRAGMENT_LAST | (MAX_REASSEMBLED as u32);
        assert_eq!(
            r.add(Time(0), frag_header(far), &[0; 10]),
            Err(Dropped::TooLarge)
        );
        // A gap never completes.
        let last = FRAGMENT_FIXED_BIT | FRAGMENT_LAST | 600;
        assert!(
            r.add(Time(0), frag_header(first), &[1; 300])
                .unwrap()
                .is_none()
        );
        assert!(
            r.add(Time(0), frag_header(last), &[1; 300])
                .unwrap()
                .is_none()
        );
    }
}
