//! Attach (RFC 6940 6.5.1): ICE candidates and addresses; request and answer share a layout.
//!
//! ```text
//! struct { AddressType type; uint8 length; select (type) {
//!            case ipv4_address: uint32 addr; uint16 port;
//!            case ipv6_address: uint128 addr; uint16 port; }; } IpAddressPort;
//! struct { IpAddressPort addr_port; OverlayLinkType overlay_link; opaque foundation<0..255>;
//!          uint32 priority; CandType type;
//!          select (type) { case host: ; case srflx: case relay: IpAddressPort rel_addr_port; };
//!          IceExtension extensions<0..2^16-1>; } IceCandidate;
//! struct { opaque name<0..2^16-1>; opaque value<0..2^16-1>; } IceExtension;
//! struct { opaque ufrag<0..2^8-1>; opaque password<0..2^8-1>; opaque role<0..2^8-1>;
//!          IceCandidate candidates<0..2^16-1>; Boolean send_update; } AttachReqAns;
//! ```
//! An unknown address type is kept raw (its `length` allows skipping it). An unknown CandType
//! cannot be skipped (the RFC gives it no length), so it is a decode error; the reserved value
//! 3 (pre-RFC prflx) is decoded like srflx, with a related address.

use crate::code_point;
use crate::codec::{
    Codec, DecodeError, DecodeErrorKind, EncodeError, LenWidth, Opaque, Reader, write_list,
    write_opaque,
};
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

code_point! {
    /// `AddressType` (RFC 6940 6.3.1.1).
    pub struct AddressType(u8) {
        /// Reserved.
        RESERVED = 0,
        /// IPv4 address and port.
        IPV4_ADDRESS = 1,
        /// IPv6 address and port.
        IPV6_ADDRESS = 2,
    }
}

/// `IpAddressPort`: an IPv4 or IPv6 address with a port, or an unknown type kept raw.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum IpAddressPort {
    /// `ipv4_address(1)`, length 6.
    V4 {
        /// Address.
        addr: Ipv4Addr,
        /// Port.
        port: u16,
    },
    /// `ipv6_address(2)`, length 18.
    V6 {
        /// Address.
        addr: Ipv6Addr,
        /// Port.
        port: u16,
    },
    /// Another address type, with its raw data.
    Unknown {
        /// Type byte.
        addr_type: AddressType,
        /// Data bytes.
        data: Opaque,
    },
}

impl IpAddressPort {
    /// The socket address, for the known types.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            IpAddressPort::V4 { addr, port } => Some(SocketAddr::new(IpAddr::V4(*addr), *port)),
            IpAddressPort::V6 { addr, port } => Some(SocketAddr::new(IpAddr::V6(*addr), *port)),
            IpAddressPort::Unknown { .. } => None,
        }
    }
}

impl From<SocketAddr> for IpAddressPort {
    fn from(a: SocketAddr) -> Self {
        match a {
            SocketAddr::V4(v) => IpAddressPort::V4 {
                addr: *v.ip(),
                port: v.port(),
            },
            SocketAddr::V6(v) => IpAddressPort::V6 {
                addr: *v.ip(),
                port: v.port(),
            },
        }
    }
}

impl Codec for IpAddressPort {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            IpAddressPort::V4 { addr, port } => {
                out.extend_from_slice(&[1, 6]);
                out.extend_from_slice(&addr.octets());
                out.extend_from_slice(&port.to_be_bytes());
                Ok(())
            }
            IpAddressPort::V6 { addr, port } => {
                out.extend_from_slice(&[2, 18]);
                out.extend_from_slice(&addr.octets());
                out.extend_from_slice(&port.to_be_bytes());
                Ok(())
            }
            IpAddressPort::Unknown { addr_type, data } => {
                out.push(addr_type.0);
                write_opaque(out, LenWidth::U8, "IpAddressPort.length", data)
            }
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let t = AddressType::read(r)?;
        let mut d = r.prefixed(LenWidth::U8, "IpAddressPort.length")?;
        let bad = |d: &Reader<'_>| d.error(DecodeErrorKind::BadLength, "IpAddressPort.length");
        let v = match t {
            AddressType::IPV4_ADDRESS => {
                if d.remaining() != 6 {
                    return Err(bad(&d));
                }
                IpAddressPort::V4 {
                    addr: Ipv4Addr::from(d.array::<4>("IpAddressPort.addr")?),
                    port: d.u16("IpAddressPort.port")?,
                }
            }
            AddressType::IPV6_ADDRESS => {
                if d.remaining() != 18 {
                    return Err(bad(&d));
                }
                IpAddressPort::V6 {
                    addr: Ipv6Addr::from(d.array::<16>("IpAddressPort.addr")?),
                    port: d.u16("IpAddressPort.port")?,
                }
            }
            _ => IpAddressPort::Unknown {
                addr_type: t,
                data: Opaque(d.take(d.remaining(), "IpAddressPort.data")?.to_vec()),
            },
        };
        d.finish("IpAddressPort")?;
        Ok(v)
    }
}

code_point! {
    /// `CandType` (RFC 6940 6.5.1.1); 3 is reserved (there is no prflx).
    pub struct CandType(u8) {
        /// Reserved.
        RESERVED = 0,
        /// Host candidate.
        HOST = 1,
        /// Server-reflexive candidate.
        SRFLX = 2,
        /// Reserved (prflx in pre-RFC drafts); decoded with a related address.
        RESERVED_PRFLX = 3,
        /// Relayed candidate.
        RELAY = 4,
    }
}

impl CandType {
    /// True when the candidate carries `rel_addr_port`; `None` for types whose layout is
    /// unknown.
    pub fn has_related_address(self) -> Option<bool> {
        match self {
            CandType::HOST => Some(false),
            CandType::SRFLX | CandType::RESERVED_PRFLX | CandType::RELAY => Some(true),
            _ => None,
        }
    }
}

code_point! {
    /// `OverlayLinkType` (RFC 6940 6.5.1.1, 14.10).
    pub struct OverlayLinkType(u8) {
        /// Reserved.
        RESERVED = 0,
        /// DTLS over UDP with simple reliability, ICE.
        DTLS_UDP_SR = 1,
        /// DTLS over UDP with simple reliability, no ICE.
        DTLS_UDP_SR_NO_ICE = 3,
        /// TLS over TCP with framing header, no ICE.
        TLS_TCP_FH_NO_ICE = 4,
        /// Experimental.
        EXP_LINK = 5,
    }
}

/// An ICE extension attribute: name and value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct IceExtension {
    /// `name<0..2^16-1>`.
    pub name: Opaque,
    /// `value<0..2^16-1>`.
    pub value: Opaque,
}

impl Codec for IceExtension {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.name
            .write_prefixed(out, LenWidth::U16, "IceExtension.name")?;
        self.value
            .write_prefixed(out, LenWidth::U16, "IceExtension.value")
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(IceExtension {
            name: Opaque::read_prefixed(r, LenWidth::U16, 0, "IceExtension.name")?,
            value: Opaque::read_prefixed(r, LenWidth::U16, 0, "IceExtension.value")?,
        })
    }
}

/// One ICE candidate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct IceCandidate {
    /// Transport address.
    pub addr_port: IpAddressPort,
    /// Link protocol.
    pub overlay_link: OverlayLinkType,
    /// ICE foundation, `<0..255>`.
    pub foundation: Opaque,
    /// ICE priority.
    pub priority: u32,
    /// Candidate type.
    pub cand_type: CandType,
    /// Related address: present exactly when `cand_type` is not host.
    pub rel_addr_port: Option<IpAddressPort>,
    /// Extensions.
    pub extensions: Vec<IceExtension>,
}

impl Codec for IceCandidate {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.addr_port.encode(out)?;
        self.overlay_link.encode(out)?;
        self.foundation
            .write_prefixed(out, LenWidth::U8, "IceCandidate.foundation")?;
        out.extend_from_slice(&self.priority.to_be_bytes());
        self.cand_type.encode(out)?;
        match (self.cand_type.has_related_address(), &self.rel_addr_port) {
            (Some(false), None) => {}
            (Some(true), Some(a)) => a.encode(out)?,
            _ => {
                return Err(EncodeError {
                    what: "IceCandidate.rel_addr_port (does not match cand_type)",
                    len: 0,
                    max: 0,
                });
            }
        }
        write_list(
            out,
            LenWidth::U16,
            "IceCandidate.extensions",
            &self.extensions,
        )
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let addr_port = IpAddressPort::read(r)?;
        let overlay_link = OverlayLinkType::read(r)?;
        let foundation = Opaque::read_prefixed(r, LenWidth::U8, 0, "IceCandidate.foundation")?;
        let priority = r.u32("IceCandidate.priority")?;
        let at = r.offset();
        let cand_type = CandType::read(r)?;
        let rel_addr_port = match cand_type.has_related_address() {
            Some(true) => Some(IpAddressPort::read(r)?),
            Some(false) => None,
            None => {
                return Err(DecodeError {
                    kind: DecodeErrorKind::InvalidValue,
                    what: "IceCandidate.type",
                    offset: at,
                });
            }
        };
        Ok(IceCandidate {
            addr_port,
            overlay_link,
            foundation,
            priority,
            cand_type,
            rel_addr_port,
            extensions: r.list(LenWidth::U16, "IceCandidate.extensions")?,
        })
    }
}

/// `AttachReqAns`: the body of both Attach requests and answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct AttachReqAns {
    /// ICE username fragment.
    pub ufrag: Opaque,
    /// ICE password.
    pub password: Opaque,
    /// "passive" in requests, "active" in answers.
    pub role: Opaque,
    /// Candidates.
    pub candidates: Vec<IceCandidate>,
    /// Ask the answerer to send an Update once connected.
    pub send_update: bool,
}

impl Codec for AttachReqAns {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.ufrag
            .write_prefixed(out, LenWidth::U8, "Attach.ufrag")?;
        self.password
            .write_prefixed(out, LenWidth::U8, "Attach.password")?;
        self.role.write_prefixed(out, LenWidth::U8, "Attach.role")?;
        write_list(out, LenWidth::U16, "Attach.candidates", &self.candidates)?;
        out.push(self.send_update as u8);
        Ok(())
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AttachReqAns {
            ufrag: Opaque::read_prefixed(r, LenWidth::U8, 0, "Attach.ufrag")?,
            password: Opaque::read_prefixed(r, LenWidth::U8, 0, "Attach.password")?,
            role: Opaque::read_prefixed(r, LenWidth::U8, 0, "Attach.role")?,
            candidates: r.list(LenWidth::U16, "Attach.candidates")?,
            send_update: r.boolean("Attach.send_update")?,
        })
    }
}
