//! The SIP-REGISTRATION Kind's value (RFC 7904 3.2) and the GRUU `gr` parameter (RFC 7904 6).
//!
//! ```text
//! enum { sip_registration_uri(1), sip_registration_route(2), (255) } SipRegistrationType;
//! struct { SipRegistrationType type; uint16 length;
//!          select (type) {
//!            case sip_registration_uri:   opaque uri<0..2^16-1>;
//!            case sip_registration_route: opaque contact_prefs<0..2^16-1>;
//!                                         Destination destination_list<3..2^16-1>; } data;
//! } SipRegistration;
//! ```
//! The destination list may not be shorter than 3 bytes (RFC 7904 3.2), which both the
//! decoder and the encoder enforce. Unknown types are kept raw (`length` allows it).

use crate::code_point;
use crate::codec::{
    Codec, DecodeError, DecodeErrorKind, EncodeError, LenWidth, Opaque, Reader, write_list,
    write_prefixed_with,
};
use crate::wire::Destination;
use serde::Serialize;

code_point! {
    /// `SipRegistrationType` (RFC 7904 3.2).
    pub struct SipRegistrationType(u8) {
        /// Another AOR to look up.
        SIP_REGISTRATION_URI = 1,
        /// A destination list to reach the UA's node.
        SIP_REGISTRATION_ROUTE = 2,
    }
}

/// The value stored in a SIP-REGISTRATION dictionary entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum SipRegistration {
    /// `sip_registration_uri(1)`: dereference this AOR.
    Uri(Opaque),
    /// `sip_registration_route(2)`.
    Route {
        /// RFC 3840 feature predicate, e.g. `(sip.schemes=SIP)`.
        contact_prefs: Opaque,
        /// How to reach the UA's peer; at least 3 bytes on the wire.
        destination_list: Vec<Destination>,
    },
    /// Another type, raw.
    Unknown {
        /// Type byte.
        reg_type: SipRegistrationType,
        /// Bytes after `length`.
        data: Opaque,
    },
}

/// Smallest encoded destination list of a route registration.
const MIN_DESTINATION_LIST: usize = 3;

impl Codec for SipRegistration {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let t = match self {
            SipRegistration::Uri(_) => 1,
            SipRegistration::Route { .. } => 2,
            SipRegistration::Unknown { reg_type, .. } => reg_type.0,
        };
        out.push(t);
        write_prefixed_with(
            out,
            LenWidth::U16,
            "SipRegistration.length",
            |o| match self {
                SipRegistration::Uri(u) => {
                    u.write_prefixed(o, LenWidth::U16, "SipRegistration.uri")
                }
                SipRegistration::Route {
                    contact_prefs,
                    destination_list,
                } => {
                    contact_prefs.write_prefixed(
                        o,
                        LenWidth::U16,
                        "SipRegistration.contact_prefs",
                    )?;
                    let at = o.len();
                    write_list(
                        o,
                        LenWidth::U16,
                        "SipRegistration.destination_list",
                        destination_list,
                    )?;
                    let len = o.len() - at - 2;
                    if len < MIN_DESTINATION_LIST {
                        return Err(EncodeError {
                            what: "SipRegistration.destination_list (shorter than 3 bytes)",
                            len,
                            max: 0xffff,
                        });
                    }
                    Ok(())
                }
                SipRegistration::Unknown { data, .. } => {
                    o.extend_from_slice(data);
                    Ok(())
                }
            },
        )
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let t = SipRegistrationType::read(r)?;
        let mut d = r.prefixed(LenWidth::U16, "SipRegistration.length")?;
        let v = match t {
            SipRegistrationType::SIP_REGISTRATION_URI => SipRegistration::Uri(
                Opaque::read_prefixed(&mut d, LenWidth::U16, 0, "SipRegistration.uri")?,
            ),
            SipRegistrationType::SIP_REGISTRATION_ROUTE => {
                let contact_prefs = Opaque::read_prefixed(
                    &mut d,
                    LenWidth::U16,
                    0,
                    "SipRegistration.contact_prefs",
                )?;
                let at = d.offset();
                let len = d
                    .clone()
                    .length(LenWidth::U16, "SipRegistration.destination_list")?;
                if len < MIN_DESTINATION_LIST {
                    return Err(DecodeError {
                        kind: DecodeErrorKind::BadLength,
                        what: "SipRegistration.destination_list",
                        offset: at,
                    });
                }
                SipRegistration::Route {
                    contact_prefs,
                    destination_list: d.list(LenWidth::U16, "SipRegistration.destination_list")?,
                }
            }
            _ => SipRegistration::Unknown {
                reg_type: t,
                data: Opaque(d.take(d.remaining(), "SipRegistration.data")?.to_vec()),
            },
        };
        d.finish("SipRegistration")?;
        Ok(v)
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The GRUU `gr` parameter value for a destination list (RFC 7904 6): the encoded list in
/// base64 (RFC 4648 table 1) with `~` in place of `=` padding.
pub fn gruu_gr_param(destination_list: &[Destination]) -> Result<String, EncodeError> {
    let mut bytes = Vec::new();
    for d in destination_list {
        d.encode(&mut bytes)?;
    }
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(B64[((n >> (18 - 6 * i)) & 0x3f) as usize] as char); // ok: index masked to 0..64
            } else {
                s.push('~');
            }
        }
    }
    Ok(s)
}

/// Parses a GRUU `gr` parameter back into a destination list (`=` is accepted for `~`).
pub fn parse_gruu_gr_param(gr: &str) -> Result<Vec<Destination>, DecodeError> {
    let bad = |offset| DecodeError {
        kind: DecodeErrorKind::InvalidValue,
        what: "gr parameter",
        offset,
    };
    let src = gr.as_bytes();
    if !src.len().is_multiple_of(4) {
        return Err(bad(src.len()));
    }
    let mut bytes = Vec::with_capacity(src.len() / 4 * 3);
    for (ci, chunk) in src.chunks(4).enumerate() {
        let mut n = 0u32;
        let mut pad = 0;
        for (i, &c) in chunk.iter().enumerate() {
            let v = match c {
                b'~' | b'=' => {
                    pad += 1;
                    0
                }
                _ if pad > 0 => return Err(bad(ci * 4 + i)),
                _ => B64
                    .iter()
                    .position(|&x| x == c)
                    .ok_or_else(|| bad(ci * 4 + i))? as u32,
            };
            n = (n << 6) | v;
        }
        if pad > 2 || (pad > 0 && (ci + 1) * 4 != src.len()) {
            return Err(bad(ci * 4));
        }
        let out = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        bytes.extend_from_slice(out.get(..3 - pad).unwrap_or_default());
    }
    let mut r = Reader::new(&bytes);
    let mut list = Vec::new();
    while !r.is_empty() {
        list.push(Destination::read(&mut r)?);
    }
    Ok(list)
}
