//! Probe (RFC 6940 6.4.2.5).
//!
//! ```text
//! struct { ProbeInformationType requested_info<0..2^8-1>; } ProbeReq;
//! struct { ProbeInformationType type; uint8 length; ProbeInformationData value; } ProbeInformation;
//! struct { ProbeInformation probe_info<0..2^16-1>; } ProbeAns;
//! ```
//! The three defined types carry a uint32; unknown types are kept raw.

use crate::code_point;
use crate::codec::{
    Codec, DecodeError, DecodeErrorKind, EncodeError, LenWidth, Opaque, Reader, write_list,
    write_opaque,
};
use serde::Serialize;

code_point! {
    /// `ProbeInformationType` (RFC 6940 6.4.2.5, 14.13).
    pub struct ProbeInformationType(u8) {
        /// Reserved.
        RESERVED = 0,
        /// Share of the ID space the peer is responsible for, in parts per billion.
        RESPONSIBLE_SET = 1,
        /// Number of resources stored.
        NUM_RESOURCES = 2,
        /// Uptime in seconds.
        UPTIME = 3,
        /// Experimental.
        EXP_PROBE = 4,
    }
}

/// A Probe request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct ProbeReq {
    /// The information asked for, in order.
    pub requested_info: Vec<ProbeInformationType>,
}

impl Codec for ProbeReq {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_list(
            out,
            LenWidth::U8,
            "ProbeReq.requested_info",
            &self.requested_info,
        )
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ProbeReq {
            requested_info: r.list(LenWidth::U8, "ProbeReq.requested_info")?,
        })
    }
}

/// One piece of probe information.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum ProbeInformation {
    /// `responsible_set(1)`: responsible_ppb.
    ResponsibleSet(u32),
    /// `num_resources(2)`.
    NumResources(u32),
    /// `uptime(3)`, seconds.
    Uptime(u32),
    /// Another type, kept raw.
    Unknown {
        /// Type byte.
        info_type: ProbeInformationType,
        /// Value bytes.
        value: Opaque,
    },
}

impl Codec for ProbeInformation {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let (t, v) = match self {
            ProbeInformation::ResponsibleSet(v) => (1, *v),
            ProbeInformation::NumResources(v) => (2, *v),
            ProbeInformation::Uptime(v) => (3, *v),
            ProbeInformation::Unknown { info_type, value } => {
                out.push(info_type.0);
                return write_opaque(out, LenWidth::U8, "ProbeInformation.length", value);
            }
        };
        out.extend_from_slice(&[t, 4]);
        out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let t = ProbeInformationType::read(r)?;
        let mut d = r.prefixed(LenWidth::U8, "ProbeInformation.length")?;
        let known = matches!(t.0, 1..=3);
        if known && d.remaining() != 4 {
            return Err(d.error(DecodeErrorKind::BadLength, "ProbeInformation.length"));
        }
        let v = match t {
            ProbeInformationType::RESPONSIBLE_SET => {
                ProbeInformation::ResponsibleSet(d.u32("responsible_ppb")?)
            }
            ProbeInformationType::NUM_RESOURCES => {
                ProbeInformation::NumResources(d.u32("num_resources")?)
            }
            ProbeInformationType::UPTIME => ProbeInformation::Uptime(d.u32("uptime")?),
            _ => ProbeInformation::Unknown {
                info_type: t,
                value: Opaque(d.take(d.remaining(), "ProbeInformation.value")?.to_vec()),
            },
        };
        d.finish("ProbeInformation")?;
        Ok(v)
    }
}

/// A Probe answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct ProbeAns {
    /// The information, in the requested order.
    pub probe_info: Vec<ProbeInformation>,
}

impl Codec for ProbeAns {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_list(out, LenWidth::U16, "ProbeAns.probe_info", &self.probe_info)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ProbeAns {
            probe_info: r.list(LenWidth::U16, "ProbeAns.probe_info")?,
        })
    }
}
