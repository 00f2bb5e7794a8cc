//! Ping (RFC 6940 6.5.3).
//!
//! ```text
//! struct { opaque padding<0..2^16-1>; } PingReq;
//! struct { uint64 response_id; uint64 time; } PingAns;
//! ```

use crate::codec::{Codec, DecodeError, EncodeError, LenWidth, Opaque, Reader};
use serde::Serialize;

/// A Ping request; padding may be used for PMTU discovery.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct PingReq {
    /// Padding bytes.
    pub padding: Opaque,
}

impl Codec for PingReq {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.padding
            .write_prefixed(out, LenWidth::U16, "PingReq.padding")
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PingReq {
            padding: Opaque::read_prefixed(r, LenWidth::U16, 0, "PingReq.padding")?,
        })
    }
}

/// A Ping answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct PingAns {
    /// Random id of this answer.
    pub response_id: u64,
    /// Milliseconds since the Unix epoch (storage_time units).
    pub time: u64,
}

impl Codec for PingAns {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.extend_from_slice(&self.response_id.to_be_bytes());
        out.extend_from_slice(&self.time.to_be_bytes());
        Ok(())
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PingAns {
            response_id: r.u64("PingAns.response_id")?,
            time: r.u64("PingAns.time")?,
        })
    }
}
