//! Destinations, the entries of via and destination lists (RFC 6940 6.3.2.2).
//!
//! ```text
//! struct { DestinationType type; uint8 length; DestinationData destination_data; } Destination;
//! struct { uint16 opaque_id; /* top bit 1 */ } Destination;      // compressed form
//! ```
//! A first byte with the high bit set means the compressed 2-byte form, which the RFC treats as
//! an `opaque_id_type` destination whose id is those two bytes. Unknown types are kept with their
//! data, since the `length` byte lets them be skipped.

use crate::code_point;
use crate::codec::{Codec, DecodeError, DecodeErrorKind, EncodeError, LenWidth, Opaque, Reader};
use crate::wire::{NodeId, ResourceId};
use serde::Serialize;

code_point! {
    /// `DestinationType` (RFC 6940 6.3.2.2); values 128-255 are not allowed (compressed form).
    pub struct DestinationType(u8) {
        /// Reserved.
        INVALID = 0,
        /// A Node-ID.
        NODE = 1,
        /// A Resource-ID.
        RESOURCE = 2,
        /// An opaque id issued by a peer for list compression.
        OPAQUE_ID = 3,
    }
}

/// One entry of a via or destination list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Destination {
    /// `node(1)`: a Node-ID.
    Node(NodeId),
    /// `resource(2)`: a Resource-ID (with its own 1-byte length inside).
    Resource(ResourceId),
    /// `opaque_id_type(3)` in the full TLV form: `opaque opaque_id<0..2^8-1>`.
    OpaqueId(Opaque),
    /// The compressed 16-bit form. The value includes the high bit, which `encode` forces on.
    Compressed(u16),
    /// Any other type below 128, kept with its raw data.
    Unknown {
        /// The type byte (must be below 128 to be encodable).
        dest_type: DestinationType,
        /// The `destination_data` bytes.
        data: Opaque,
    },
}

impl Destination {
    /// High bit of the first byte: the compressed form.
    pub const COMPRESSED_FLAG: u16 = 0x8000;

    /// The Node-ID, if this is a node destination.
    pub fn node_id(&self) -> Option<NodeId> {
        match self {
            Destination::Node(n) => Some(*n),
            _ => None,
        }
    }
}

impl Codec for Destination {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let (t, data): (u8, Vec<u8>) = match self {
            Destination::Compressed(v) => {
                out.extend_from_slice(&(v | Self::COMPRESSED_FLAG).to_be_bytes());
                return Ok(());
            }
            Destination::Node(n) => (1, n.to_array().to_vec()),
            Destination::Resource(r) => (2, r.to_bytes()?),
            Destination::OpaqueId(o) => {
                let mut d = Vec::new();
                o.write_prefixed(&mut d, LenWidth::U8, "Destination.opaque_id")?;
                (3, d)
            }
            Destination::Unknown { dest_type, data } => {
                if dest_type.0 & 0x80 != 0 {
                    return Err(EncodeError {
                        what: "Destination.type (high bit set)",
                        len: dest_type.0 as usize,
                        max: 0x7f,
                    });
                }
                (dest_type.0, data.0.clone())
            }
        };
        out.push(t);
        crate::codec::write_opaque(out, LenWidth::U8, "Destination.length", &data)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if r.peek_u8("Destination")? & 0x80 != 0 {
            return Ok(Destination::Compressed(r.u16("Destination.compressed")?));
        }
        let t = DestinationType(r.u8("Destination.type")?);
        let mut d = r.prefixed(LenWidth::U8, "Destination.length")?;
        let v = match t {
            DestinationType::NODE => {
                if d.remaining() != NodeId::LEN {
                    return Err(d.error(DecodeErrorKind::BadLength, "Destination.node_id"));
                }
                Destination::Node(NodeId::read(&mut d)?)
            }
            DestinationType::RESOURCE => Destination::Resource(ResourceId::read(&mut d)?),
            DestinationType::OPAQUE_ID => Destination::OpaqueId(Opaque::read_prefixed(
                &mut d,
                LenWidth::U8,
                0,
                "Destination.opaque_id",
            )?),
            _ => Destination::Unknown {
                dest_type: t,
                data: Opaque(d.take(d.remaining(), "Destination.data")?.to_vec()),
            },
        };
        d.finish("Destination")?;
        Ok(v)
    }
}
