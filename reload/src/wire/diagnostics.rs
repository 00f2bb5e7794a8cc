//! Overlay diagnostics (RFC 7851): the Diagnostic_Ping extension's request and response, and
//! the PathTrack method (codes 39/40).
//!
//! ```text
//! enum { (2^16-1) } DiagnosticKindId;
//! struct { DiagnosticKindId kind; opaque diagnostic_extension_contents<0..2^32-1>; } DiagnosticExtension;
//! struct { uint64 expiration; uint64 timestamp_initiated; uint64 dMFlags;
//!          uint32 ext_length;
//!          DiagnosticExtension diagnostic_extensions<0..2^32-1>; } DiagnosticsRequest;
//! struct { DiagnosticKindId kind; opaque diagnostic_info_contents<0..2^16-1>; } DiagnosticInfo;
//! struct { uint64 expiration; uint64 timestamp_initiated; uint64 timestamp_received;
//!          uint8 hop_counter; DiagnosticInfo diagnostic_info_list<0..2^32-1>; } DiagnosticsResponse;
//! struct { Destination destination; DiagnosticsRequest request; } PathTrackReq;
//! struct { Destination next_hop; DiagnosticsResponse response; } PathTrackAns;
//! ```
//!
//! Sources (RFC 7851 section 5 for the structures, section 9 for the code points; see
//! docs/DEPLOY.md "RFC verification (7851, 7374, 7363)" for what was checked against what):
//!
//! * `ext_length` (RFC 7851 5.1) is a field of its own in front of the extension vector,
//!   which keeps its own 32-bit length prefix: `ext_length` counts the bytes of that whole
//!   vector (prefix included), so a request without extensions ends `00 00 00 04 00 00 00 00`.
//!   This is how Wireshark's RELOAD dissector parses it. On input we also accept
//!   `ext_length = 0` with no vector, and an `ext_length` that directly counts the extensions
//!   (the other reading of the RFC's struct).
//! * dMFlags (RFC 7851 5.1, registry 9.1): the flag of kind `k` (1..=64) is `1 << (k - 1)`,
//!   STATUS_INFO = 0x0000_0000_0000_0001 ... BATTERY_STATUS = 0x0000_0000_0000_4000 (the
//!   dissector reads STATUS_INFO from the least significant bit, ROUTING_TABLE_SIZE from the
//!   next, and so on).
//! * Diagnostic kinds 0x0001..0x000F (RFC 7851 9.2), in the order of [`DiagnosticKindId`].
//! * Value encodings (RFC 7851 5.3): fixed-width integers; SOFTWARE_VERSION is the bare
//!   string filling `diagnostic_info_contents`; INSTANCES_STORED is a run of
//!   `{ KindId kind; uint64 instances; }` and MESSAGES_SENT_RCVD a run of
//!   `{ uint16 message_code; uint64 sent; uint64 received; }` that fill the contents, with no
//!   length prefix of their own (the contents' uint16 length already bounds them). Input
//!   with an inner length prefix (what this crate sent before) is still accepted.
//!
//! Unknown diagnostic kinds keep their raw contents and round-trip.

use crate::code_point;
use crate::codec::{
    Codec, DecodeError, EncodeError, LenWidth, Opaque, Reader, write_list, write_prefixed_with,
};
use crate::wire::{Destination, KindId};
use serde::Serialize;

code_point! {
    /// `DiagnosticKindId` (RFC 7851 9.1).
    pub struct DiagnosticKindId(u16) {
        /// Reserved.
        RESERVED = 0,
        /// uint8 status (0 = healthy).
        STATUS_INFO = 1,
        /// uint32 number of routing-table entries.
        ROUTING_TABLE_SIZE = 2,
        /// uint32 processing power (MIPS).
        PROCESS_POWER = 3,
        /// uint32 bandwidth (kbit/s).
        BANDWIDTH = 4,
        /// UTF-8 software version string.
        SOFTWARE_VERSION = 5,
        /// uint64 seconds the machine has been up.
        MACHINE_UPTIME = 6,
        /// uint64 seconds the RELOAD application has been up.
        APP_UPTIME = 7,
        /// uint32 memory footprint (KB).
        MEMORY_FOOTPRINT = 8,
        /// uint64 bytes of data stored.
        DATASIZE_STORED = 9,
        /// Per Kind: number of instances stored.
        INSTANCES_STORED = 10,
        /// Per message code: messages sent and received.
        MESSAGES_SENT_RCVD = 11,
        /// uint32 EWMA of bytes sent per second.
        EWMA_BYTES_SENT = 12,
        /// uint32 EWMA of bytes received per second.
        EWMA_BYTES_RCVD = 13,
        /// uint8 underlay hops to the requester.
        UNDERLAY_HOP = 14,
        /// uint8 battery status.
        BATTERY_STATUS = 15,
        /// Reserved.
        RESERVED_MAX = 0xffff,
    }
}

impl DiagnosticKindId {
    /// The dMFlags bit asking for this kind (kinds 1..=64), or 0 for kinds without one.
    pub fn flag(self) -> u64 {
        match self.0 {
            k @ 1..=64 => 1u64 << (k - 1),
            _ => 0,
        }
    }

    /// The kinds a dMFlags value asks for, in ascending order.
    pub fn from_flags(flags: u64) -> Vec<DiagnosticKindId> {
        (1u16..=64)
            .filter(|k| flags & (1u64 << (k - 1)) != 0)
            .map(DiagnosticKindId)
            .collect()
    }

    /// Parses an RFC name such as `ROUTING_TABLE_SIZE` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        (1u16..=15)
            .map(DiagnosticKindId)
            .find(|k| k.name().is_some_and(|n| n.eq_ignore_ascii_case(name)))
    }
}

/// An extension of a diagnostics request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiagnosticExtension {
    /// The kind it applies to.
    pub kind: DiagnosticKindId,
    /// Contents.
    pub contents: Opaque,
}

impl Codec for DiagnosticExtension {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.kind.encode(out)?;
        self.contents
            .write_prefixed(out, LenWidth::U32, "DiagnosticExtension.contents")
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(DiagnosticExtension {
            kind: DiagnosticKindId::read(r)?,
            contents: Opaque::read_prefixed(r, LenWidth::U32, 0, "DiagnosticExtension.contents")?,
        })
    }
}

/// `DiagnosticsRequest`, carried in a Diagnostic_Ping extension or a PathTrackReq.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DiagnosticsRequest {
    /// Milliseconds since the Unix epoch after which the request must not be answered.
    pub expiration: u64,
    /// When the requester sent it (ms since the Unix epoch).
    pub timestamp_initiated: u64,
    /// Bit mask of the kinds asked for ([`DiagnosticKindId::flag`]).
    pub dm_flags: u64,
    /// Extensions.
    pub extensions: Vec<DiagnosticExtension>,
}

impl DiagnosticsRequest {
    /// The kinds asked for.
    pub fn kinds(&self) -> Vec<DiagnosticKindId> {
        DiagnosticKindId::from_flags(self.dm_flags)
    }
}

impl Codec for DiagnosticsRequest {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.extend_from_slice(&self.expiration.to_be_bytes());
        out.extend_from_slice(&self.timestamp_initiated.to_be_bytes());
        out.extend_from_slice(&self.dm_flags.to_be_bytes());
        // ext_length, then the vector with its own prefix (RFC 7851 5.1).
        write_prefixed_with(out, LenWidth::U32, "DiagnosticsRequest.ext_length", |o| {
            write_list(
                o,
                LenWidth::U32,
                "DiagnosticsRequest.diagnostic_extensions",
                &self.extensions,
            )
        })
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let expiration = r.u64("DiagnosticsRequest.expiration")?;
        let timestamp_initiated = r.u64("DiagnosticsRequest.timestamp_initiated")?;
        let dm_flags = r.u64("DiagnosticsRequest.dMFlags")?;
        let ext = r.prefixed(LenWidth::U32, "DiagnosticsRequest.ext_length")?;
        Ok(DiagnosticsRequest {
            expiration,
            timestamp_initiated,
            dm_flags,
            extensions: read_extensions(ext)?,
        })
    }
}

/// Reads the `ext_length` region: empty, the prefixed vector filling it exactly, or (the
/// other reading of RFC 7851 5.1) the extensions themselves.
fn read_extensions(ext: Reader<'_>) -> Result<Vec<DiagnosticExtension>, DecodeError> {
    if ext.is_empty() {
        return Ok(Vec::new());
    }
    let mut vector = ext.clone();
    if let Ok(v) = vector.list(LenWidth::U32, "DiagnosticsRequest.diagnostic_extensions")
        && vector.finish("DiagnosticsRequest.ext_length").is_ok()
    {
        return Ok(v);
    }
    read_run(
        ext,
        "DiagnosticsRequest.diagnostic_extensions",
        DiagnosticExtension::read,
    )
}

/// Reads elements until `r` is used up (a run without a length prefix of its own).
fn read_run<'a, T>(
    mut r: Reader<'a>,
    what: &'static str,
    mut f: impl FnMut(&mut Reader<'a>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut out = Vec::new();
    while !r.is_empty() {
        let before = r.remaining();
        out.push(f(&mut r)?);
        if r.remaining() == before {
            return Err(r.error(crate::codec::DecodeErrorKind::InvalidValue, what));
        }
    }
    Ok(out)
}

/// True when `bytes` starts with a big-endian length of `width` bytes that counts exactly the
/// rest (the inner prefix this crate used to write).
fn has_inner_prefix(bytes: &[u8], width: usize) -> bool {
    bytes.get(..width).is_some_and(|p| {
        let n = p.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b));
        n == bytes.len() - width
    })
}

/// One piece of diagnostic information, with its raw contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiagnosticInfo {
    /// Its kind.
    pub kind: DiagnosticKindId,
    /// The kind's value encoding ([`DiagnosticValue`]).
    pub contents: Opaque,
}

impl DiagnosticInfo {
    /// Encodes a typed value.
    pub fn new(value: &DiagnosticValue) -> Result<Self, EncodeError> {
        Ok(DiagnosticInfo {
            kind: value.kind(),
            contents: Opaque(value.to_bytes()?),
        })
    }

    /// The typed value (`Other` for unknown kinds).
    pub fn value(&self) -> Result<DiagnosticValue, DecodeError> {
        DiagnosticValue::decode(self.kind, &self.contents)
    }
}

impl Codec for DiagnosticInfo {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.kind.encode(out)?;
        self.contents
            .write_prefixed(out, LenWidth::U16, "DiagnosticInfo.contents")
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(DiagnosticInfo {
            kind: DiagnosticKindId::read(r)?,
            contents: Opaque::read_prefixed(r, LenWidth::U16, 0, "DiagnosticInfo.contents")?,
        })
    }
}

/// Per-message-code traffic counters (MESSAGES_SENT_RCVD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MessageCounters {
    /// Message code.
    pub message_code: u16,
    /// Sent.
    pub sent: u64,
    /// Received.
    pub received: u64,
}

/// The typed value of a [`DiagnosticInfo`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs)] // each variant is named after its DiagnosticKindId
pub enum DiagnosticValue {
    StatusInfo(u8),
    RoutingTableSize(u32),
    ProcessPower(u32),
    Bandwidth(u32),
    /// UTF-8 text (`opaque<0..2^16-1>` inside the contents).
    SoftwareVersion(String),
    MachineUptime(u64),
    AppUptime(u64),
    MemoryFootprint(u32),
    DatasizeStored(u64),
    /// `struct { KindId kind; uint64 instances; } list<0..2^32-1>`.
    InstancesStored(Vec<(KindId, u64)>),
    /// `struct { uint16 message_code; uint64 sent; uint64 received; } list<0..2^32-1>`.
    MessagesSentRcvd(Vec<MessageCounters>),
    EwmaBytesSent(u32),
    EwmaBytesRcvd(u32),
    UnderlayHop(u8),
    BatteryStatus(u8),
    /// A kind this crate does not type.
    Other(DiagnosticKindId, Opaque),
}

impl DiagnosticValue {
    /// Its kind.
    pub fn kind(&self) -> DiagnosticKindId {
        use DiagnosticKindId as K;
        match self {
            Self::StatusInfo(_) => K::STATUS_INFO,
            Self::RoutingTableSize(_) => K::ROUTING_TABLE_SIZE,
            Self::ProcessPower(_) => K::PROCESS_POWER,
            Self::Bandwidth(_) => K::BANDWIDTH,
            Self::SoftwareVersion(_) => K::SOFTWARE_VERSION,
            Self::MachineUptime(_) => K::MACHINE_UPTIME,
            Self::AppUptime(_) => K::APP_UPTIME,
            Self::MemoryFootprint(_) => K::MEMORY_FOOTPRINT,
            Self::DatasizeStored(_) => K::DATASIZE_STORED,
            Self::InstancesStored(_) => K::INSTANCES_STORED,
            Self::MessagesSentRcvd(_) => K::MESSAGES_SENT_RCVD,
            Self::EwmaBytesSent(_) => K::EWMA_BYTES_SENT,
            Self::EwmaBytesRcvd(_) => K::EWMA_BYTES_RCVD,
            Self::UnderlayHop(_) => K::UNDERLAY_HOP,
            Self::BatteryStatus(_) => K::BATTERY_STATUS,
            Self::Other(k, _) => *k,
        }
    }

    /// The contents bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut o = Vec::new();
        match self {
            Self::StatusInfo(v) | Self::UnderlayHop(v) | Self::BatteryStatus(v) => o.push(*v),
            Self::RoutingTableSize(v)
            | Self::ProcessPower(v)
            | Self::Bandwidth(v)
            | Self::MemoryFootprint(v)
            | Self::EwmaBytesSent(v)
            | Self::EwmaBytesRcvd(v) => o.extend_from_slice(&v.to_be_bytes()),
            Self::MachineUptime(v) | Self::AppUptime(v) | Self::DatasizeStored(v) => {
                o.extend_from_slice(&v.to_be_bytes())
            }
            Self::SoftwareVersion(s) => o.extend_from_slice(s.as_bytes()),
            Self::InstancesStored(l) => {
                for (k, n) in l {
                    k.encode(&mut o)?;
                    o.extend_from_slice(&n.to_be_bytes());
                }
            }
            Self::MessagesSentRcvd(l) => {
                for c in l {
                    o.extend_from_slice(&c.message_code.to_be_bytes());
                    o.extend_from_slice(&c.sent.to_be_bytes());
                    o.extend_from_slice(&c.received.to_be_bytes());
                }
            }
            Self::Other(_, b) => o.extend_from_slice(b),
        }
        Ok(o)
    }

    /// Decodes `bytes` (which must be used exactly) as a value of `kind`.
    pub fn decode(kind: DiagnosticKindId, bytes: &[u8]) -> Result<Self, DecodeError> {
        use DiagnosticKindId as K;
        let mut r = Reader::new(bytes);
        let v = match kind {
            K::STATUS_INFO => Self::StatusInfo(r.u8("STATUS_INFO")?),
            K::ROUTING_TABLE_SIZE => Self::RoutingTableSize(r.u32("ROUTING_TABLE_SIZE")?),
            K::PROCESS_POWER => Self::ProcessPower(r.u32("PROCESS_POWER")?),
            K::BANDWIDTH => Self::Bandwidth(r.u32("BANDWIDTH")?),
            K::SOFTWARE_VERSION => {
                // A leading uint16 counting exactly the rest is the old inner prefix.
                if has_inner_prefix(bytes, 2) {
                    r.take(2, "SOFTWARE_VERSION.length")?;
                }
                let b = r.take(r.remaining(), "SOFTWARE_VERSION")?;
                Self::SoftwareVersion(String::from_utf8_lossy(b).into_owned())
            }
            K::MACHINE_UPTIME => Self::MachineUptime(r.u64("MACHINE_UPTIME")?),
            K::APP_UPTIME => Self::AppUptime(r.u64("APP_UPTIME")?),
            K::MEMORY_FOOTPRINT => Self::MemoryFootprint(r.u32("MEMORY_FOOTPRINT")?),
            K::DATASIZE_STORED => Self::DatasizeStored(r.u64("DATASIZE_STORED")?),
            K::INSTANCES_STORED => {
                // Entries are 12 bytes; 4 more with a matching uint32 is the old inner prefix.
                if bytes.len() % 12 == 4 && has_inner_prefix(bytes, 4) {
                    r.take(4, "INSTANCES_STORED.length")?;
                }
                let rest = r.sub(r.remaining(), "INSTANCES_STORED")?;
                Self::InstancesStored(read_run(rest, "INSTANCES_STORED", |r| {
                    Ok((KindId::read(r)?, r.u64("INSTANCES_STORED.instances")?))
                })?)
            }
            K::MESSAGES_SENT_RCVD => {
                // Entries are 18 bytes; 4 more with a matching uint32 is the old inner prefix.
                if bytes.len() % 18 == 4 && has_inner_prefix(bytes, 4) {
                    r.take(4, "MESSAGES_SENT_RCVD.length")?;
                }
                let rest = r.sub(r.remaining(), "MESSAGES_SENT_RCVD")?;
                Self::MessagesSentRcvd(read_run(rest, "MESSAGES_SENT_RCVD", |r| {
                    Ok(MessageCounters {
                        message_code: r.u16("MESSAGES_SENT_RCVD.message_code")?,
                        sent: r.u64("MESSAGES_SENT_RCVD.sent")?,
                        received: r.u64("MESSAGES_SENT_RCVD.received")?,
                    })
                })?)
            }
            K::EWMA_BYTES_SENT => Self::EwmaBytesSent(r.u32("EWMA_BYTES_SENT")?),
            K::EWMA_BYTES_RCVD => Self::EwmaBytesRcvd(r.u32("EWMA_BYTES_RCVD")?),
            K::UNDERLAY_HOP => Self::UnderlayHop(r.u8("UNDERLAY_HOP")?),
            K::BATTERY_STATUS => Self::BatteryStatus(r.u8("BATTERY_STATUS")?),
            other => Self::Other(
                other,
                Opaque(r.take(r.remaining(), "DiagnosticInfo")?.to_vec()),
            ),
        };
        r.finish("DiagnosticInfo.contents")?;
        Ok(v)
    }
}

/// `DiagnosticsResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DiagnosticsResponse {
    /// Copied from the request.
    pub expiration: u64,
    /// Copied from the request.
    pub timestamp_initiated: u64,
    /// When the responder received the request (ms since the Unix epoch).
    pub timestamp_received: u64,
    /// Overlay hops the request took (RFC 6940 TTL spent).
    pub hop_counter: u8,
    /// The information asked for that the responder has.
    pub info: Vec<DiagnosticInfo>,
}

impl DiagnosticsResponse {
    /// The typed values, skipping any that fail to decode.
    pub fn values(&self) -> Vec<DiagnosticValue> {
        self.info.iter().filter_map(|i| i.value().ok()).collect()
    }
}

impl Codec for DiagnosticsResponse {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.extend_from_slice(&self.expiration.to_be_bytes());
        out.extend_from_slice(&self.timestamp_initiated.to_be_bytes());
        out.extend_from_slice(&self.timestamp_received.to_be_bytes());
        out.push(self.hop_counter);
        write_list(
            out,
            LenWidth::U32,
            "DiagnosticsResponse.diagnostic_info_list",
            &self.info,
        )
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(DiagnosticsResponse {
            expiration: r.u64("DiagnosticsResponse.expiration")?,
            timestamp_initiated: r.u64("DiagnosticsResponse.timestamp_initiated")?,
            timestamp_received: r.u64("DiagnosticsResponse.timestamp_received")?,
            hop_counter: r.u8("DiagnosticsResponse.hop_counter")?,
            info: r.list(LenWidth::U32, "DiagnosticsResponse.diagnostic_info_list")?,
        })
    }
}

/// `PathTrackReq` (code 39).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathTrackReq {
    /// Where the path is traced to.
    pub destination: Destination,
    /// What each responder should report.
    pub request: DiagnosticsRequest,
}

impl Codec for PathTrackReq {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.destination.encode(out)?;
        self.request.encode(out)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PathTrackReq {
            destination: Destination::read(r)?,
            request: DiagnosticsRequest::read(r)?,
        })
    }
}

/// `PathTrackAns` (code 40).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathTrackAns {
    /// The responder's next hop towards the destination.
    pub next_hop: Destination,
    /// The responder's diagnostics.
    pub response: DiagnosticsResponse,
}

impl Codec for PathTrackAns {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.next_hop.encode(out)?;
        self.response.encode(out)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PathTrackAns {
            next_hop: Destination::read(r)?,
            response: DiagnosticsResponse::read(r)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::NodeId;
    use proptest::prelude::*;

    #[test]
    fn golden_request() {
        // Hand-written from RFC 7851 5.1: expiration, timestamp_initiated, dMFlags (STATUS_INFO |
        // ROUTING_TABLE_SIZE = 0x3), ext_length, extensions<0..2^32-1> empty.
        let req = DiagnosticsRequest {
            expiration: 0x0102030405060708,
            timestamp_initiated: 0x1112131415161718,
            dm_flags: DiagnosticKindId::STATUS_INFO.flag()
                | DiagnosticKindId::ROUTING_TABLE_SIZE.flag(),
            extensions: vec![],
        };
        let want: Vec<u8> = [
            &[1, 2, 3, 4, 5, 6, 7, 8][..],
            &[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18],
            &[0, 0, 0, 0, 0, 0, 0, 3],
            &[0, 0, 0, 4], // ext_length: the vector below, prefix included
            &[0, 0, 0, 0], // diagnostic_extensions<0..2^32-1>: empty
        ]
        .concat();
        assert_eq!(req.to_bytes().unwrap(), want);
        assert_eq!(DiagnosticsRequest::from_bytes(&want).unwrap(), req);
        assert_eq!(
            req.kinds(),
            vec![
                DiagnosticKindId::STATUS_INFO,
                DiagnosticKindId::ROUTING_TABLE_SIZE
            ]
        );
    }

    #[test]
    fn golden_response_and_path_track() {
        let resp = DiagnosticsResponse {
            expiration: 9,
            timestamp_initiated: 10,
            timestamp_received: 11,
            hop_counter: 3,
            info: vec![
                DiagnosticInfo::new(&DiagnosticValue::StatusInfo(0)).unwrap(),
                DiagnosticInfo::new(&DiagnosticValue::RoutingTableSize(0x20)).unwrap(),
            ],
        };
        let body: Vec<u8> = [
            &[0, 0, 0, 0, 0, 0, 0, 9][..],
            &[0, 0, 0, 0, 0, 0, 0, 10],
            &[0, 0, 0, 0, 0, 0, 0, 11],
            &[3],
            &[0, 0, 0, 13],               // list length: 5 + 8 bytes
            &[0, 1, 0, 1, 0],             // STATUS_INFO, len 1, 0
            &[0, 2, 0, 4, 0, 0, 0, 0x20], // ROUTING_TABLE_SIZE, len 4, 32
        ]
        .concat();
        assert_eq!(resp.to_bytes().unwrap(), body);
        assert_eq!(DiagnosticsResponse::from_bytes(&body).unwrap(), resp);
        let ans = PathTrackAns {
            next_hop: Destination::Node(NodeId(0xabcd)),
            response: resp,
        };
        let mut want = vec![1, 16];
        want.extend_from_slice(&0xabcdu128.to_be_bytes());
        want.extend_from_slice(&body);
        assert_eq!(ans.to_bytes().unwrap(), want);
        assert_eq!(PathTrackAns::from_bytes(&want).unwrap(), ans);
    }

    #[test]
    fn golden_request_with_extension_and_other_ext_length_readings() {
        let req = DiagnosticsRequest {
            expiration: 1,
            timestamp_initiated: 2,
            dm_flags: DiagnosticKindId::BATTERY_STATUS.flag(),
            extensions: vec![DiagnosticExtension {
                kind: DiagnosticKindId(0xf000),
                contents: Opaque(vec![0xaa]),
            }],
        };
        let head: Vec<u8> = [
            &[0, 0, 0, 0, 0, 0, 0, 1][..],
            &[0, 0, 0, 0, 0, 0, 0, 2],
            &[0, 0, 0, 0, 0, 0, 0x40, 0], // BATTERY_STATUS (15) = 0x4000
        ]
        .concat();
        let ext = [0xf0, 0, 0, 0, 0, 1, 0xaa]; // kind, contents<0..2^32-1>
        let want: Vec<u8> = [&head[..], &[0, 0, 0, 11], &[0, 0, 0, 7], &ext].concat();
        assert_eq!(req.to_bytes().unwrap(), want);
        assert_eq!(DiagnosticsRequest::from_bytes(&want).unwrap(), req);
        // ext_length counting the extensions directly (no inner prefix).
        let bare: Vec<u8> = [&head[..], &[0, 0, 0, 7], &ext].concat();
        assert_eq!(DiagnosticsRequest::from_bytes(&bare).unwrap(), req);
        // ext_length 0 and nothing after it.
        let none: Vec<u8> = [&head[..], &[0, 0, 0, 0]].concat();
        let got = DiagnosticsRequest::from_bytes(&none).unwrap();
        assert!(got.extensions.is_empty());
        // A truncated region is an error, not a panic.
        assert!(DiagnosticsRequest::from_bytes(&want[..want.len() - 1]).is_err());
    }

    #[test]
    fn dm_flags_match_the_registry() {
        // RFC 7851 9.1: one bit per kind, STATUS_INFO in the least significant bit.
        let want: [(DiagnosticKindId, u64); 15] = [
            (DiagnosticKindId::STATUS_INFO, 0x0001),
            (DiagnosticKindId::ROUTING_TABLE_SIZE, 0x0002),
            (DiagnosticKindId::PROCESS_POWER, 0x0004),
            (DiagnosticKindId::BANDWIDTH, 0x0008),
            (DiagnosticKindId::SOFTWARE_VERSION, 0x0010),
            (DiagnosticKindId::MACHINE_UPTIME, 0x0020),
            (DiagnosticKindId::APP_UPTIME, 0x0040),
            (DiagnosticKindId::MEMORY_FOOTPRINT, 0x0080),
            (DiagnosticKindId::DATASIZE_STORED, 0x0100),
            (DiagnosticKindId::INSTANCES_STORED, 0x0200),
            (DiagnosticKindId::MESSAGES_SENT_RCVD, 0x0400),
            (DiagnosticKindId::EWMA_BYTES_SENT, 0x0800),
            (DiagnosticKindId::EWMA_BYTES_RCVD, 0x1000),
            (DiagnosticKindId::UNDERLAY_HOP, 0x2000),
            (DiagnosticKindId::BATTERY_STATUS, 0x4000),
        ];
        for (i, (k, f)) in want.iter().enumerate() {
            assert_eq!(k.0 as usize, i + 1, "kind code point of {k:?}");
            assert_eq!(k.flag(), *f, "flag of {k:?}");
        }
        assert_eq!(DiagnosticKindId::from_flags(0x4001).len(), 2);
    }

    #[test]
    fn golden_values() {
        // The contents' uint16 length bounds the value: no inner prefix.
        let v = DiagnosticValue::SoftwareVersion("p2psip".into());
        assert_eq!(v.to_bytes().unwrap(), b"p2psip");
        let info = DiagnosticInfo::new(&v).unwrap().to_bytes().unwrap();
        assert_eq!(info, b"\x00\x05\x00\x06p2psip");
        let v = DiagnosticValue::InstancesStored(vec![(KindId::SIP_REGISTRATION, 5)]);
        assert_eq!(v.to_bytes().unwrap(), [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5]);
        // The old encoding with an inner prefix still decodes.
        let old = [0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5];
        assert_eq!(
            DiagnosticValue::decode(DiagnosticKindId::INSTANCES_STORED, &old).unwrap(),
            v
        );
        assert_eq!(
            DiagnosticValue::decode(DiagnosticKindId::SOFTWARE_VERSION, b"\x00\x06p2psip").unwrap(),
            DiagnosticValue::SoftwareVersion("p2psip".into())
        );
        assert!(DiagnosticValue::decode(DiagnosticKindId::INSTANCES_STORED, &old[..15]).is_err());
        let v = DiagnosticValue::MessagesSentRcvd(vec![MessageCounters {
            message_code: 23,
            sent: 1,
            received: 2,
        }]);
        let b = v.to_bytes().unwrap();
        assert_eq!(b.len(), 18);
        assert_eq!(&b[..4], &[0, 23, 0, 0]);
        assert_eq!(
            DiagnosticValue::decode(DiagnosticKindId::MESSAGES_SENT_RCVD, &b).unwrap(),
            v
        );
        assert!(DiagnosticValue::decode(DiagnosticKindId::STATUS_INFO, &[0, 0]).is_err());
        assert_eq!(
            DiagnosticKindId::from_name("battery_status"),
            Some(DiagnosticKindId::BATTERY_STATUS)
        );
    }

    fn arb_value() -> impl Strategy<Value = DiagnosticValue> {
        prop_oneof![
            any::<u8>().prop_map(DiagnosticValue::StatusInfo),
            any::<u32>().prop_map(DiagnosticValue::RoutingTableSize),
            any::<u32>().prop_map(DiagnosticValue::Bandwidth),
            "[a-z0-9.]{0,20}".prop_map(DiagnosticValue::SoftwareVersion),
            any::<u64>().prop_map(DiagnosticValue::AppUptime),
            proptest::collection::vec((any::<u32>(), any::<u64>()), 0..4).prop_map(|v| {
                DiagnosticValue::InstancesStored(
                    v.into_iter().map(|(k, n)| (KindId(k), n)).collect(),
                )
            }),
            proptest::collection::vec((any::<u16>(), any::<u64>(), any::<u64>()), 0..4).prop_map(
                |v| DiagnosticValue::MessagesSentRcvd(
                    v.into_iter()
                        .map(|(c, s, r)| MessageCounters {
                            message_code: c,
                            sent: s,
                            received: r
                        })
                        .collect()
                )
            ),
            any::<u8>().prop_map(DiagnosticValue::BatteryStatus),
            (
                0x1000u16..0xfff0,
                proptest::collection::vec(any::<u8>(), 0..8)
            )
                .prop_map(|(k, b)| DiagnosticValue::Other(DiagnosticKindId(k), Opaque(b))),
        ]
    }

    proptest! {
        #[test]
        fn value_round_trip(v in arb_value()) {
            let info = DiagnosticInfo::new(&v).unwrap();
            let bytes = info.to_bytes().unwrap();
            let back = DiagnosticInfo::from_bytes(&bytes).unwrap();
            prop_assert_eq!(back.value().unwrap(), v);
        }

        #[test]
        fn path_track_round_trip(
            node in any::<u128>(), e in any::<u64>(), t in any::<u64>(), f in any::<u64>(),
            hop in any::<u8>(), vals in proptest::collection::vec(arb_value(), 0..5),
            ext in proptest::collection::vec((any::<u16>(), proptest::collection::vec(any::<u8>(), 0..6)), 0..3),
        ) {
            let req = PathTrackReq {
                destination: Destination::Node(NodeId(node)),
                request: DiagnosticsRequest {
                    expiration: e, timestamp_initiated: t, dm_flags: f,
                    extensions: ext.into_iter().map(|(k, b)| DiagnosticExtension { kind: DiagnosticKindId(k), contents: Opaque(b) }).collect(),
                },
            };
            prop_assert_eq!(PathTrackReq::from_bytes(&req.to_bytes().unwrap()).unwrap(), req);
            let ans = PathTrackAns {
                next_hop: Destination::Node(NodeId(node ^ 1)),
                response: DiagnosticsResponse {
                    expiration: e, timestamp_initiated: t, timestamp_received: f, hop_counter: hop,
                    info: vals.iter().map(|v| DiagnosticInfo::new(v).unwrap()).collect(),
                },
            };
            prop_assert_eq!(PathTrackAns::from_bytes(&ans.to_bytes().unwrap()).unwrap(), ans);
        }
    }
}
