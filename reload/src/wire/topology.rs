//! Join, Leave, Update and RouteQuery (RFC 6940 6.4.2.1-6.4.2.4) and their CHORD-RELOAD
//! contents (RFC 6940 10.7-10.9).
//!
//! ```text
//! struct { NodeId joining_peer_id; opaque overlay_specific_data<0..2^16-1>; } JoinReq;
//! struct { opaque overlay_specific_data<0..2^16-1>; } JoinAns;
//! struct { NodeId leaving_peer_id; opaque overlay_specific_data<0..2^16-1>; } LeaveReq;
//! struct { Boolean send_update; Destination destination;
//!          opaque overlay_specific_data<0..2^16-1>; } RouteQueryReq;
//! struct { ChordLeaveType type; select (type) { case from_succ: NodeId successors<0..2^16-1>;
//!          case from_pred: NodeId predecessors<0..2^16-1>; }; } ChordLeaveData;
//! struct { uint32 uptime; ChordUpdateType type; select (type) { case peer_ready: ;
//!          case neighbors: NodeId predecessors<0..2^16-1>; NodeId successors<0..2^16-1>;
//!          case full: ...; NodeId fingers<0..2^16-1>; }; } ChordUpdate;
//! struct { NodeId next_peer; } ChordRouteQueryAns;
//! ```
//! LeaveAns, UpdateAns and (for Chord) the RouteQueryReq's overlay data are empty. The Chord
//! structures sit inside a bounded field (the whole body or `overlay_specific_data`), so an
//! unknown Chord type keeps the remaining bytes raw.

use crate::code_point;
use crate::codec::{Codec, DecodeError, EncodeError, LenWidth, Opaque, Reader, write_list};
use crate::wire::{Destination, NodeId};
use serde::Serialize;

/// A Join request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct JoinReq {
    /// The Node-ID the sender takes.
    pub joining_peer_id: NodeId,
    /// Overlay-specific data (empty for Chord).
    pub overlay_specific_data: Opaque,
}

impl Codec for JoinReq {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.joining_peer_id.encode(out)?;
        self.overlay_specific_data.write_prefixed(
            out,
            LenWidth::U16,
            "JoinReq.overlay_specific_data",
        )
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(JoinReq {
            joining_peer_id: NodeId::read(r)?,
            overlay_specific_data: Opaque::read_prefixed(
                r,
                LenWidth::U16,
                0,
                "JoinReq.overlay_specific_data",
            )?,
        })
    }
}

/// A Join answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct JoinAns {
    /// Overlay-specific data (empty for Chord).
    pub overlay_specific_data: Opaque,
}

impl Codec for JoinAns {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.overlay_specific_data.write_prefixed(
            out,
            LenWidth::U16,
            "JoinAns.overlay_specific_data",
        )
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(JoinAns {
            overlay_specific_data: Opaque::read_prefixed(
                r,
                LenWidth::U16,
                0,
                "JoinAns.overlay_specific_data",
            )?,
        })
    }
}

/// A Leave request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct LeaveReq {
    /// The Node-ID of the leaving peer.
    pub leaving_peer_id: NodeId,
    /// For Chord, a [`ChordLeaveData`] (see [`LeaveReq::chord`]).
    pub overlay_specific_data: Opaque,
}

impl LeaveReq {
    /// A Chord Leave carrying `data`.
    pub fn chord(leaving_peer_id: NodeId, data: &ChordLeaveData) -> Result<Self, EncodeError> {
        Ok(LeaveReq {
            leaving_peer_id,
            overlay_specific_data: Opaque(data.to_bytes()?),
        })
    }

    /// The Chord leave data inside.
    pub fn chord_data(&self) -> Result<ChordLeaveData, DecodeError> {
        ChordLeaveData::from_bytes(&self.overlay_specific_data)
    }
}

impl Codec for LeaveReq {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.leaving_peer_id.encode(out)?;
        self.overlay_specific_data.write_prefixed(
            out,
            LenWidth::U16,
            "LeaveReq.overlay_specific_data",
        )
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(LeaveReq {
            leaving_peer_id: NodeId::read(r)?,
            overlay_specific_data: Opaque::read_prefixed(
                r,
                LenWidth::U16,
                0,
                "LeaveReq.overlay_specific_data",
            )?,
        })
    }
}

code_point! {
    /// `ChordLeaveType` (RFC 6940 10.9).
    pub struct ChordLeaveType(u8) {
        /// Invalid.
        INVALID = 0,
        /// Sent to a predecessor: carries our successors.
        FROM_SUCC = 1,
        /// Sent to a successor: carries our predecessors.
        FROM_PRED = 2,
    }
}

/// `ChordLeaveData`: the leaving peer's neighbours for the receiver to adopt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum ChordLeaveData {
    /// `from_succ(1)`: the leaving peer's successors.
    FromSucc(Vec<NodeId>),
    /// `from_pred(2)`: the leaving peer's predecessors.
    FromPred(Vec<NodeId>),
    /// Another type: the rest of the bytes.
    Unknown {
        /// Type byte.
        leave_type: ChordLeaveType,
        /// Remaining bytes.
        data: Opaque,
    },
}

impl Codec for ChordLeaveData {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            ChordLeaveData::FromSucc(v) => {
                out.push(1);
                write_list(out, LenWidth::U16, "ChordLeaveData.successors", v)
            }
            ChordLeaveData::FromPred(v) => {
                out.push(2);
                write_list(out, LenWidth::U16, "ChordLeaveData.predecessors", v)
            }
            ChordLeaveData::Unknown { leave_type, data } => {
                out.push(leave_type.0);
                out.extend_from_slice(data);
                Ok(())
            }
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let t = ChordLeaveType::read(r)?;
        Ok(match t {
            ChordLeaveType::FROM_SUCC => {
                ChordLeaveData::FromSucc(r.list(LenWidth::U16, "ChordLeaveData.successors")?)
            }
            ChordLeaveType::FROM_PRED => {
                ChordLeaveData::FromPred(r.list(LenWidth::U16, "ChordLeaveData.predecessors")?)
            }
            _ => ChordLeaveData::Unknown {
                leave_type: t,
                data: Opaque(r.take(r.remaining(), "ChordLeaveData")?.to_vec()),
            },
        })
    }
}

code_point! {
    /// `ChordUpdateType` (RFC 6940 10.7).
    pub struct ChordUpdateType(u8) {
        /// Invalid.
        INVALID = 0,
        /// The sender is ready to receive messages.
        PEER_READY = 1,
        /// The sender's predecessors and successors.
        NEIGHBORS = 2,
        /// Neighbours and fingers.
        FULL = 3,
    }
}

/// What a [`ChordUpdate`] carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum ChordUpdateData {
    /// `peer_ready(1)`.
    PeerReady,
    /// `neighbors(2)`.
    Neighbors {
        /// Predecessors, nearest first.
        predecessors: Vec<NodeId>,
        /// Successors, nearest first.
        successors: Vec<NodeId>,
    },
    /// `full(3)`.
    Full {
        /// Predecessors.
        predecessors: Vec<NodeId>,
        /// Successors.
        successors: Vec<NodeId>,
        /// Finger table entries.
        fingers: Vec<NodeId>,
    },
    /// Another type: the rest of the body.
    Unknown {
        /// Type byte.
        update_type: ChordUpdateType,
        /// Remaining bytes.
        data: Opaque,
    },
}

/// The body of a CHORD-RELOAD Update request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ChordUpdate {
    /// Seconds the sender has been up.
    pub uptime: u32,
    /// The routing state.
    pub data: ChordUpdateData,
}

impl Codec for ChordUpdate {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.extend_from_slice(&self.uptime.to_be_bytes());
        match &self.data {
            ChordUpdateData::PeerReady => {
                out.push(1);
                Ok(())
            }
            ChordUpdateData::Neighbors {
                predecessors,
                successors,
            } => {
                out.push(2);
                write_list(out, LenWidth::U16, "ChordUpdate.predecessors", predecessors)?;
                write_list(out, LenWidth::U16, "ChordUpdate.successors", successors)
            }
            ChordUpdateData::Full {
                predecessors,
                successors,
                fingers,
            } => {
                out.push(3);
                write_list(out, LenWidth::U16, "ChordUpdate.predecessors", predecessors)?;
                write_list(out, LenWidth::U16, "ChordUpdate.successors", successors)?;
                write_list(out, LenWidth::U16, "ChordUpdate.fingers", fingers)
            }
            ChordUpdateData::Unknown { update_type, data } => {
                out.push(update_type.0);
                out.extend_from_slice(data);
                Ok(())
            }
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let uptime = r.u32("ChordUpdate.uptime")?;
        let t = ChordUpdateType::read(r)?;
        let data = match t {
            ChordUpdateType::PEER_READY => ChordUpdateData::PeerReady,
            ChordUpdateType::NEIGHBORS => ChordUpdateData::Neighbors {
                predecessors: r.list(LenWidth::U16, "ChordUpdate.predecessors")?,
                successors: r.list(LenWidth::U16, "ChordUpdate.successors")?,
            },
            ChordUpdateType::FULL => ChordUpdateData::Full {
                predecessors: r.list(LenWidth::U16, "ChordUpdate.predecessors")?,
                successors: r.list(LenWidth::U16, "ChordUpdate.successors")?,
                fingers: r.list(LenWidth::U16, "ChordUpdate.fingers")?,
            },
            _ => ChordUpdateData::Unknown {
                update_type: t,
                data: Opaque(r.take(r.remaining(), "ChordUpdate")?.to_vec()),
            },
        };
        Ok(ChordUpdate { uptime, data })
    }
}

/// A RouteQuery request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RouteQueryReq {
    /// Ask the responder to send an Update afterwards.
    pub send_update: bool,
    /// The destination the requester asks about.
    pub destination: Destination,
    /// Overlay-specific data (empty for Chord).
    pub overlay_specific_data: Opaque,
}

impl Codec for RouteQueryReq {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(self.send_update as u8);
        self.destination.encode(out)?;
        self.overlay_specific_data.write_prefixed(
            out,
            LenWidth::U16,
            "RouteQueryReq.overlay_specific_data",
        )
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(RouteQueryReq {
            send_update: r.boolean("RouteQueryReq.send_update")?,
            destination: Destination::read(r)?,
            overlay_specific_data: Opaque::read_prefixed(
                r,
                LenWidth::U16,
                0,
                "RouteQueryReq.overlay_specific_data",
            )?,
        })
    }
}

/// The CHORD-RELOAD RouteQuery answer body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ChordRouteQueryAns {
    /// Where the responder would route the message.
    pub next_peer: NodeId,
}

impl Codec for ChordRouteQueryAns {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.next_peer.encode(out)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ChordRouteQueryAns {
            next_peer: NodeId::read(r)?,
        })
    }
}
