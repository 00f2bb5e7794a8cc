//! The REDIR Kind's value (RFC 7374, Kind-ID 104, DICTIONARY keyed by the provider's Node-ID).
//!
//! ```text
//! struct { uint16 length; NodeId serviceProvider; opaque namespace<0..2^16-1>;
//!          uint16 level; uint16 node; } RedirServiceProvider;
//! ```
//! `length` counts the bytes after it. The layout is the one Wireshark's RELOAD dissector
//! parses for Kind 104 (RFC 7374 section 4.1 defines the structure, section 6 the Kind:
//! Kind-ID 104, DICTIONARY, access policy NODE-ID-MATCH, which the IANA RELOAD registry lists
//! under RFC 7374). See docs/DEPLOY.md "RFC verification (7851, 7374, 7363)" for what was
//! read.

use crate::codec::{
    Codec, DecodeError, EncodeError, LenWidth, Opaque, Reader, write_prefixed_with,
};
use crate::wire::NodeId;
use serde::Serialize;

/// A ReDiR registration stored at tree node (namespace, level, node).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RedirServiceProvider {
    /// The registering provider.
    pub service_provider: NodeId,
    /// The service namespace, e.g. `pstn-gateway`.
    pub namespace: Opaque,
    /// Tree level (0 = root).
    pub level: u16,
    /// Index of the tree node within its level.
    pub node: u16,
}

impl Codec for RedirServiceProvider {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_prefixed_with(out, LenWidth::U16, "RedirServiceProvider.length", |o| {
            o.extend_from_slice(&self.service_provider.to_array());
            self.namespace
                .write_prefixed(o, LenWidth::U16, "RedirServiceProvider.namespace")?;
            o.extend_from_slice(&self.level.to_be_bytes());
            o.extend_from_slice(&self.node.to_be_bytes());
            Ok(())
        })
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut s = r.prefixed(LenWidth::U16, "RedirServiceProvider.length")?;
        let v = RedirServiceProvider {
            service_provider: NodeId(s.u128("RedirServiceProvider.serviceProvider")?),
            namespace: Opaque::read_prefixed(
                &mut s,
                LenWidth::U16,
                0,
                "RedirServiceProvider.namespace",
            )?,
            level: s.u16("RedirServiceProvider.level")?,
            node: s.u16("RedirServiceProvider.node")?,
        };
        s.finish("RedirServiceProvider")?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden() {
        let v = RedirServiceProvider {
            service_provider: NodeId(0x0102),
            namespace: Opaque(b"gw".to_vec()),
            level: 3,
            node: 5,
        };
        let mut want = vec![0, 24];
        want.extend_from_slice(&0x0102u128.to_be_bytes());
        want.extend_from_slice(&[0, 2, b'g', b'w', 0, 3, 0, 5]);
        assert_eq!(v.to_bytes().unwrap(), want);
        assert_eq!(RedirServiceProvider::from_bytes(&want).unwrap(), v);
        assert!(RedirServiceProvider::from_bytes(&want[..want.len() - 1]).is_err());
    }
}
