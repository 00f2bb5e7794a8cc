//! Node-IDs and Resource-IDs (RFC 6940 sections 6.3.1.1 and 10.2).

use crate::codec::{Codec, DecodeError, EncodeError, LenWidth, Reader, write_opaque};
use sha1::{Digest, Sha1};
use std::fmt;

/// A 128-bit Node-ID, as CHORD-RELOAD uses (`node-id-length` 16).
///
/// p2psip supports only 16-byte Node-IDs: the CHORD-RELOAD ring is 128 bits and a
/// configuration with another `node-id-length` is refused at load time.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId(pub u128);

impl NodeId {
    /// Wire length in bytes.
    pub const LEN: usize = 16;
    /// The all-zero id, which the RFC reserves as invalid.
    pub const INVALID: NodeId = NodeId(0);
    /// The all-ones wildcard id: delivered to whichever node receives it (RFC 6940 6.1.1).
    pub const WILDCARD: NodeId = NodeId(u128::MAX);

    /// Big-endian bytes.
    pub fn to_array(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// From big-endian bytes.
    pub fn from_array(b: [u8; 16]) -> Self {
        NodeId(u128::from_be_bytes(b))
    }

    /// From a slice that must be exactly 16 bytes.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        <[u8; 16]>::try_from(b).ok().map(Self::from_array)
    }

    /// Parses 32 hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        let v = hex::decode(s).ok()?;
        Self::from_slice(&v)
    }

    /// The Resource-ID a node with this id is responsible for under its own name (H(Node-ID) is
    /// not this: this is the identity mapping used when routing to a Node-ID as a key).
    pub fn as_resource(self) -> ResourceId {
        ResourceId(self.to_array().to_vec())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({:032x})", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl Codec for NodeId {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.extend_from_slice(&self.to_array());
        Ok(())
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(NodeId(r.u128("NodeId")?))
    }
}

/// A Resource-ID: `opaque ResourceId<0..2^8-1>` (RFC 6940 6.3.1.1).
///
/// For CHORD-RELOAD it is the most significant 128 bits of SHA-1 of the resource name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ResourceId(pub Vec<u8>);

impl ResourceId {
    /// CHORD-RELOAD hash of a resource name: SHA-1 truncated to 128 bits (RFC 6940 10.2).
    pub fn hash(name: &[u8]) -> Self {
        ResourceId(sha1_128(name).to_vec())
    }

    /// The 128-bit ring position, if this id is 16 bytes long.
    pub fn as_u128(&self) -> Option<u128> {
        <[u8; 16]>::try_from(self.0.as_slice())
            .ok()
            .map(u128::from_be_bytes)
    }

    /// A 16-byte Resource-ID at ring position `v`.
    pub fn from_u128(v: u128) -> Self {
        ResourceId(v.to_be_bytes().to_vec())
    }
}

impl fmt::Debug for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourceId({})", hex::encode(&self.0))
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl Codec for ResourceId {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_opaque(out, LenWidth::U8, "ResourceId", &self.0)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ResourceId(
            r.opaque(LenWidth::U8, 0, "ResourceId")?.to_vec(),
        ))
    }
}

/// SHA-1 of `data` truncated to its most significant 128 bits.
pub fn sha1_128(data: &[u8]) -> [u8; 16] {
    let d = Sha1::digest(data);
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// The forwarding header's `overlay` field: the low 32 bits of SHA-1(instance name)
/// (RFC 6940 6.3.2).
pub fn overlay_hash(instance_name: &str) -> u32 {
    let d = Sha1::digest(instance_name.as_bytes());
    u32::from_be_bytes([d[16], d[17], d[18], d[19]])
}

impl serde::Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl serde::Serialize for ResourceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aor_hash_matches_reference_vector() {
        // RELOAD-WIRE.md section 6: alice@example.com -> fc2398a7...
        assert_eq!(
            ResourceId::hash(b"alice@example.com").to_string(),
            "fc2398a73dd54d6237c4fdb58fd7d753"
        );
    }

    #[test]
    fn overlay_hash_of_example_com() {
        assert_eq!(overlay_hash("example.com"), 0x65b0781f);
    }

    #[test]
    fn resource_id_roundtrip_and_truncation() {
        let id = ResourceId::hash(b"x");
        let b = id.to_bytes().unwrap_or_default();
        assert_eq!(b[0], 16);
        assert_eq!(ResourceId::from_bytes(&b), Ok(id));
        assert!(ResourceId::from_bytes(&[5, 1, 2]).is_err());
    }
}
