//! ConfigUpdate (RFC 6940 6.5.4).
//!
//! ```text
//! typedef opaque KindDescription<0..2^16-1>;
//! struct { ConfigUpdateType type; uint32 length;
//!          select (type) { case config: opaque config_data<0..2^24-1>;
//!                          case kind: KindDescription kinds<0..2^24-1>; }; } ConfigUpdateReq;
//! ```
//! ConfigUpdateAns is empty. Unknown types are kept raw (the `length` allows it).

use crate::code_point;
use crate::codec::{
    Codec, DecodeError, EncodeError, LenWidth, Opaque, Reader, write_list_with, write_prefixed_with,
};
use serde::Serialize;

code_point! {
    /// `ConfigUpdateType`.
    pub struct ConfigUpdateType(u8) {
        /// Invalid.
        INVALID = 0,
        /// A whole configuration document.
        CONFIG = 1,
        /// Kind definitions.
        KIND = 2,
    }
}

/// A ConfigUpdate request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum ConfigUpdateReq {
    /// `config(1)`: the whole XML configuration document.
    Config(Opaque),
    /// `kind(2)`: `<kind-block>` XML fragments.
    Kinds(Vec<Opaque>),
    /// Another type, raw.
    Unknown {
        /// Type byte.
        update_type: ConfigUpdateType,
        /// Bytes after `length`.
        data: Opaque,
    },
}

impl Codec for ConfigUpdateReq {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let t = match self {
            ConfigUpdateReq::Config(_) => 1,
            ConfigUpdateReq::Kinds(_) => 2,
            ConfigUpdateReq::Unknown { update_type, .. } => update_type.0,
        };
        out.push(t);
        write_prefixed_with(
            out,
            LenWidth::U32,
            "ConfigUpdateReq.length",
            |o| match self {
                ConfigUpdateReq::Config(c) => {
                    c.write_prefixed(o, LenWidth::U24, "ConfigUpdateReq.config_data")
                }
                ConfigUpdateReq::Kinds(k) => {
                    write_list_with(o, LenWidth::U24, "ConfigUpdateReq.kinds", k, |d, o| {
                        d.write_prefixed(o, LenWidth::U16, "KindDescription")
                    })
                }
                ConfigUpdateReq::Unknown { data, .. } => {
                    o.extend_from_slice(data);
                    Ok(())
                }
            },
        )
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let t = ConfigUpdateType::read(r)?;
        let mut d = r.prefixed(LenWidth::U32, "ConfigUpdateReq.length")?;
        let v = match t {
            ConfigUpdateType::CONFIG => ConfigUpdateReq::Config(Opaque::read_prefixed(
                &mut d,
                LenWidth::U24,
                0,
                "ConfigUpdateReq.config_data",
            )?),
            ConfigUpdateType::KIND => ConfigUpdateReq::Kinds(d.list_with(
                LenWidth::U24,
                "ConfigUpdateReq.kinds",
                |r| Opaque::read_prefixed(r, LenWidth::U16, 0, "KindDescription"),
            )?),
            _ => ConfigUpdateReq::Unknown {
                update_type: t,
                data: Opaque(d.take(d.remaining(), "ConfigUpdateReq")?.to_vec()),
            },
        };
        d.finish("ConfigUpdateReq")?;
        Ok(v)
    }
}
