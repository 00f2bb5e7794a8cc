//! The per-hop framing layer (RFC 6940 6.6.2).
//!
//! ```text
//! enum { data(128), ack(129), (255) } FramedMessageType;
//! struct { FramedMessageType type;
//!          select (type) { case data: uint32 sequence; opaque message<0..2^24-1>;
//!                          case ack: uint32 ack_sequence; uint32 received; }; } FramedMessage;
//! ```
//! An unknown type has no length to skip by, so it is a decode error.

use crate::codec::{Codec, DecodeError, DecodeErrorKind, EncodeError, LenWidth, Opaque, Reader};
use serde::Serialize;

/// `FramedMessageType` value of a data frame.
pub const FRAME_DATA: u8 = 128;
/// `FramedMessageType` value of an ACK.
pub const FRAME_ACK: u8 = 129;

/// A framed message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum FramedMessage {
    /// `data(128)`.
    Data {
        /// Per-connection sequence number, from 0.
        sequence: u32,
        /// A RELOAD message (or fragment).
        message: Opaque,
    },
    /// `ack(129)`.
    Ack {
        /// The sequence number being acknowledged.
        ack_sequence: u32,
        /// Bitmap of the 32 most recent sequence numbers received (bit 31 = ack_sequence).
        received: u32,
    },
}

impl Codec for FramedMessage {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            FramedMessage::Data { sequence, message } => {
                out.push(FRAME_DATA);
                out.extend_from_slice(&sequence.to_be_bytes());
                message.write_prefixed(out, LenWidth::U24, "FramedMessage.message")
            }
            FramedMessage::Ack {
                ack_sequence,
                received,
            } => {
                out.push(FRAME_ACK);
                out.extend_from_slice(&ack_sequence.to_be_bytes());
                out.extend_from_slice(&received.to_be_bytes());
                Ok(())
            }
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = r.offset();
        match r.u8("FramedMessage.type")? {
            FRAME_DATA => Ok(FramedMessage::Data {
                sequence: r.u32("FramedMessage.sequence")?,
                message: Opaque::read_prefixed(r, LenWidth::U24, 0, "FramedMessage.message")?,
            }),
            FRAME_ACK => Ok(FramedMessage::Ack {
                ack_sequence: r.u32("FramedMessage.ack_sequence")?,
                received: r.u32("FramedMessage.received")?,
            }),
            _ => Err(DecodeError {
                kind: DecodeErrorKind::InvalidValue,
                what: "FramedMessage.type",
                offset: at,
            }),
        }
    }
}

impl FramedMessage {
    /// Decodes the first frame of a stream buffer, returning it and the bytes used.
    pub fn decode_prefix(buf: &[u8]) -> Result<(Self, usize), DecodeError> {
        let mut r = Reader::new(buf);
        let f = Self::read(&mut r)?;
        Ok((f, buf.len() - r.remaining()))
    }
}
