//! The forwarding header (RFC 6940 6.3.2) and forwarding options (6.3.2.3).
//!
//! ```text
//! struct {
//!   uint32 relo_token;  uint32 overlay;  uint16 configuration_sequence;  uint8 version;
//!   uint8 ttl;  uint32 fragment;  uint32 length;  uint64 transaction_id;
//!   uint32 max_response_length;  uint16 via_list_length;  uint16 destination_list_length;
//!   uint16 options_length;
//!   Destination via_list[via_list_length];  Destination destination_list[destination_list_length];
//!   ForwardingOption options[options_length];
//! } ForwardingHeader;
//! ```
//! The first 38 bytes are fixed. `length` is not a field of [`ForwardingHeader`]: it is the
//! size of the whole message (or fragment), computed when encoding and checked when decoding
//! (see [`crate::wire::message`]).

use crate::code_point;
use crate::codec::{
    Codec, DecodeError, DecodeErrorKind, EncodeError, LenWidth, Opaque, Reader, write_opaque,
};
use crate::wire::Destination;
use serde::Serialize;

/// `relo_token`: "RELO" with the high bit of the first byte set.
pub const RELO_TOKEN: u32 = 0xd245_4c4f;
/// `version` 1.0 (RFC 6940 6.3.2).
pub const VERSION: u8 = 0x0a;
/// Size of the fixed part of the forwarding header.
pub const FIXED_HEADER_LEN: usize = 38;

/// Fragment field: the always-set historical high bit (RFC 6940 6.7).
pub const FRAGMENT_FIXED_BIT: u32 = 0x8000_0000;
/// Fragment field: this is the last (or only) fragment.
pub const FRAGMENT_LAST: u32 = 0x4000_0000;
/// Fragment field: reserved bits, sent as zero.
pub const FRAGMENT_RESERVED_MASK: u32 = 0x3f00_0000;
/// Fragment field: byte offset of this fragment's payload after the forwarding header.
pub const FRAGMENT_OFFSET_MASK: u32 = 0x00ff_ffff;
/// Fragment field of an unfragmented message.
pub const UNFRAGMENTED: u32 = FRAGMENT_FIXED_BIT | FRAGMENT_LAST;

/// The forwarding header, without its `relo_token` (constant) and `length` (derived).
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct ForwardingHeader {
    /// Low 32 bits of SHA-1 of the overlay instance name ([`crate::wire::overlay_hash`]).
    pub overlay: u32,
    /// The sender's configuration sequence number.
    pub configuration_sequence: u16,
    /// Protocol version; [`VERSION`] for RFC 6940. Other values decode and are for the caller
    /// to reject.
    pub version: u8,
    /// Hops left.
    pub ttl: u8,
    /// Fragment bits and offset (see the `FRAGMENT_*` constants).
    pub fragment: u32,
    /// Transaction id, shared by request and answer and by all fragments.
    pub transaction_id: u64,
    /// Largest answer the requester accepts, 0 = no limit.
    pub max_response_length: u32,
    /// Where the message has been.
    pub via_list: Vec<Destination>,
    /// Where the message goes; the head is the next hop's target.
    pub destination_list: Vec<Destination>,
    /// Forwarding options.
    pub options: Vec<ForwardingOption>,
}

impl std::fmt::Debug for ForwardingHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardingHeader")
            .field("overlay", &format_args!("0x{:08x}", self.overlay))
            .field("configuration_sequence", &self.configuration_sequence)
            .field("version", &format_args!("0x{:02x}", self.version))
            .field("ttl", &self.ttl)
            .field("fragment", &format_args!("0x{:08x}", self.fragment))
            .field(
                "transaction_id",
                &format_args!("0x{:016x}", self.transaction_id),
            )
            .field("max_response_length", &self.max_response_length)
            .field("via_list", &self.via_list)
            .field("destination_list", &self.destination_list)
            .field("options", &self.options)
            .finish()
    }
}

impl Default for ForwardingHeader {
    fn default() -> Self {
        Self {
            overlay: 0,
            configuration_sequence: 0,
            version: VERSION,
            ttl: 100,
            fragment: UNFRAGMENTED,
            transaction_id: 0,
            max_response_length: 0,
            via_list: Vec::new(),
            destination_list: Vec::new(),
            options: Vec::new(),
        }
    }
}

impl ForwardingHeader {
    /// True when the historical high bit is set (messages without it are discarded).
    pub fn fragment_fixed_bit(&self) -> bool {
        self.fragment & FRAGMENT_FIXED_BIT != 0
    }

    /// True when this is the last fragment (also set on unfragmented messages).
    pub fn is_last_fragment(&self) -> bool {
        self.fragment & FRAGMENT_LAST != 0
    }

    /// The fragment's payload offset.
    pub fn fragment_offset(&self) -> u32 {
        self.fragment & FRAGMENT_OFFSET_MASK
    }

    /// True for a whole message: last fragment at offset 0.
    pub fn is_unfragmented(&self) -> bool {
        self.is_last_fragment() && self.fragment_offset() == 0
    }

    /// Encodes the header with `length` = header size + `payload_len`, returning the bytes.
    ///
    /// The three list lengths and `length` are computed here.
    pub fn encode_with_payload_len(
        &self,
        out: &mut Vec<u8>,
        payload_len: usize,
    ) -> Result<(), EncodeError> {
        let mut via = Vec::new();
        for d in &self.via_list {
            d.encode(&mut via)?;
        }
        let mut dst = Vec::new();
        for d in &self.destination_list {
            d.encode(&mut dst)?;
        }
        let mut opt = Vec::new();
        for o in &self.options {
            o.encode(&mut opt)?;
        }
        let list_len = |what: &'static str, v: &Vec<u8>| -> Result<u16, EncodeError> {
            u16::try_from(v.len()).map_err(|_| EncodeError {
                what,
                len: v.len(),
                max: 0xffff,
            })
        };
        let via_len = list_len("ForwardingHeader.via_list", &via)?;
        let dst_len = list_len("ForwardingHeader.destination_list", &dst)?;
        let opt_len = list_len("ForwardingHeader.options", &opt)?;
        let total = FIXED_HEADER_LEN + via.len() + dst.len() + opt.len() + payload_len;
        let length = u32::try_from(total).map_err(|_| EncodeError {
            what: "ForwardingHeader.length",
            len: total,
            max: u32::MAX as usize,
        })?;
        out.extend_from_slice(&RELO_TOKEN.to_be_bytes());
        out.extend_from_slice(&self.overlay.to_be_bytes());
        out.extend_from_slice(&self.configuration_sequence.to_be_bytes());
        out.push(self.version);
        out.push(self.ttl);
        out.extend_from_slice(&self.fragment.to_be_bytes());
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&self.transaction_id.to_be_bytes());
        out.extend_from_slice(&self.max_response_length.to_be_bytes());
        out.extend_from_slice(&via_len.to_be_bytes());
        out.extend_from_slice(&dst_len.to_be_bytes());
        out.extend_from_slice(&opt_len.to_be_bytes());
        out.extend_from_slice(&via);
        out.extend_from_slice(&dst);
        out.extend_from_slice(&opt);
        Ok(())
    }

    /// Reads a forwarding header from the start of `r`, returning it with the message's
    /// declared `length`.
    ///
    /// The fixed 38 bytes are read first; `length` must cover the header and its three lists
    /// and must not exceed the bytes available, all checked before any list is parsed.
    pub fn read_with_length(r: &mut Reader<'_>) -> Result<(Self, usize), DecodeError> {
        let start = r.offset();
        let available = r.remaining();
        if available < FIXED_HEADER_LEN {
            return Err(r.error(DecodeErrorKind::Truncated, "ForwardingHeader"));
        }
        let at = r.offset();
        if r.u32("ForwardingHeader.relo_token")? != RELO_TOKEN {
            return Err(DecodeError {
                kind: DecodeErrorKind::InvalidValue,
                what: "ForwardingHeader.relo_token",
                offset: at,
            });
        }
        let overlay = r.u32("ForwardingHeader.overlay")?;
        let configuration_sequence = r.u16("ForwardingHeader.configuration_sequence")?;
        let version = r.u8("ForwardingHeader.version")?;
        let ttl = r.u8("ForwardingHeader.ttl")?;
        let fragment = r.u32("ForwardingHeader.fragment")?;
        let length_at = r.offset();
        let length = r.u32("ForwardingHeader.length")? as usize;
        let transaction_id = r.u64("ForwardingHeader.transaction_id")?;
        let max_response_length = r.u32("ForwardingHeader.max_response_length")?;
        let via_len = r.u16("ForwardingHeader.via_list_length")? as usize;
        let dst_len = r.u16("ForwardingHeader.destination_list_length")? as usize;
        let opt_len = r.u16("ForwardingHeader.options_length")? as usize;
        let header_len = FIXED_HEADER_LEN + via_len + dst_len + opt_len;
        if length < header_len {
            return Err(DecodeError {
                kind: DecodeErrorKind::BadLength,
                what: "ForwardingHeader.length",
                offset: length_at,
            });
        }
        if length > available {
            return Err(DecodeError {
                kind: DecodeErrorKind::Truncated,
                what: "ForwardingHeader.length",
                offset: start + available,
            });
        }
        let mut via = r.sub(via_len, "ForwardingHeader.via_list")?;
        let via_list = read_all(&mut via, Destination::read)?;
        let mut dst = r.sub(dst_len, "ForwardingHeader.destination_list")?;
        let destination_list = read_all(&mut dst, Destination::read)?;
        let mut opt = r.sub(opt_len, "ForwardingHeader.options")?;
        let options = read_all(&mut opt, ForwardingOption::read)?;
        Ok((
            ForwardingHeader {
                overlay,
                configuration_sequence,
                version,
                ttl,
                fragment,
                transaction_id,
                max_response_length,
                via_list,
                destination_list,
                options,
            },
            length,
        ))
    }
}

/// Reads elements until `r` is exhausted (lists whose byte length is given elsewhere).
fn read_all<'a, T>(
    r: &mut Reader<'a>,
    mut f: impl FnMut(&mut Reader<'a>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(f(r)?);
    }
    Ok(out)
}

code_point! {
    /// `ForwardingOptionType` (RFC 6940 6.3.2.3, 14.12).
    pub struct ForwardingOptionType(u8) {
        /// Reserved.
        INVALID = 0,
        /// Experimental (`exp-forward`), never in deployments.
        EXP_FORWARD = 1,
        /// RFC 7263 extensive routing mode.
        EXTENSIVE_ROUTING_MODE = 2,
        /// Reserved.
        RESERVED = 255,
    }
}

/// A forwarding option: `struct { type; uint8 flags; uint16 length; opaque data[length]; }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForwardingOption {
    /// The option type (unknown types are kept).
    pub option_type: ForwardingOptionType,
    /// Flags (see the associated constants).
    pub flags: u8,
    /// The option value.
    pub data: Opaque,
}

impl ForwardingOption {
    /// A peer that would forward but does not understand the option must reject the request.
    pub const FORWARD_CRITICAL: u8 = 0x01;
    /// A node that answers but does not understand the option must reject the request.
    pub const DESTINATION_CRITICAL: u8 = 0x02;
    /// The answering node copies the option into the response with the three flags cleared.
    pub const RESPONSE_COPY: u8 = 0x04;
    /// RFC 7263 flag as Wireshark labels it (not in RFC 6940).
    pub const IGNORE_STATE_KEEPING: u8 = 0x08;
}

impl Codec for ForwardingOption {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(self.option_type.0);
        out.push(self.flags);
        write_opaque(out, LenWidth::U16, "ForwardingOption.length", &self.data)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ForwardingOption {
            option_type: ForwardingOptionType::read(r)?,
            flags: r.u8("ForwardingOption.flags")?,
            data: Opaque::read_prefixed(r, LenWidth::U16, 0, "ForwardingOption.length")?,
        })
    }
}
