//! Find (RFC 6940 7.4.4).
//!
//! ```text
//! struct { ResourceId resource; KindId kinds<0..2^8-1>; } FindReq;
//! struct { KindId kind; ResourceId closest; } FindKindData;
//! struct { FindKindData results<0..2^16-1>; } FindAns;
//! ```

use crate::codec::{Codec, DecodeError, EncodeError, LenWidth, Reader, write_list};
use crate::wire::{KindId, ResourceId};
use serde::Serialize;

/// A Find request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct FindReq {
    /// The Resource-ID to search around.
    pub resource: ResourceId,
    /// Kinds to look for (each at most once).
    pub kinds: Vec<KindId>,
}

impl Codec for FindReq {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.resource.encode(out)?;
        write_list(out, LenWidth::U8, "FindReq.kinds", &self.kinds)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(FindReq {
            resource: ResourceId::read(r)?,
            kinds: r.list(LenWidth::U8, "FindReq.kinds")?,
        })
    }
}

/// The closest Resource-ID for one Kind (empty/zero when none is known).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct FindKindData {
    /// The Kind.
    pub kind: KindId,
    /// Closest Resource-ID holding that Kind.
    pub closest: ResourceId,
}

impl Codec for FindKindData {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.kind.encode(out)?;
        self.closest.encode(out)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(FindKindData {
            kind: KindId::read(r)?,
            closest: ResourceId::read(r)?,
        })
    }
}

/// A Find answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct FindAns {
    /// One entry per requested Kind allowed with Find.
    pub results: Vec<FindKindData>,
}

impl Codec for FindAns {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_list(out, LenWidth::U16, "FindAns.results", &self.results)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(FindAns {
            results: r.list(LenWidth::U16, "FindAns.results")?,
        })
    }
}
