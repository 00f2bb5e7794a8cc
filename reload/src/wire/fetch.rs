//! Fetch (RFC 6940 7.4.2); Stat requests use the same layout (7.4.3.1).
//!
//! ```text
//! struct { int32 first; int32 last; } ArrayRange;
//! struct { KindId kind; uint64 generation; uint16 length;
//!          select (model) { case single_value: ;
//!                           case array: ArrayRange indices<0..2^16-1>;
//!                           case dictionary: DictionaryKey keys<0..2^16-1>; }; } StoredDataSpecifier;
//! struct { ResourceId resource; StoredDataSpecifier specifiers<0..2^16-1>; } FetchReq;
//! struct { KindId kind; uint64 generation; StoredData values<0..2^32-1>; } FetchKindResponse;
//! struct { FetchKindResponse kind_responses<0..2^32-1>; } FetchAns;
//! ```
//! ArrayRange is declared `int32` but uses 0xffffffff for "to the end", so it is a u32 here.
//! A specifier's `length` lets the model part of an unknown Kind stay opaque.

use crate::codec::{
    Codec, DecodeError, EncodeError, LenWidth, Opaque, Reader, write_list, write_list_with,
    write_prefixed_with,
};
use crate::wire::{DataModel, KindId, KindModels, KindValues, ResourceId};
use serde::Serialize;

/// A range of array indices, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct ArrayRange {
    /// First index.
    pub first: u32,
    /// Last index; [`ArrayRange::TO_END`] = the last element.
    pub last: u32,
}

impl ArrayRange {
    /// `last` meaning "up to the last element".
    pub const TO_END: u32 = 0xffff_ffff;
}

impl Codec for ArrayRange {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.extend_from_slice(&self.first.to_be_bytes());
        out.extend_from_slice(&self.last.to_be_bytes());
        Ok(())
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ArrayRange {
            first: r.u32("ArrayRange.first")?,
            last: r.u32("ArrayRange.last")?,
        })
    }
}

/// The model-dependent part of a [`StoredDataSpecifier`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum ModelSpecifier {
    /// SINGLE: nothing.
    Single,
    /// ARRAY: index ranges.
    Array(Vec<ArrayRange>),
    /// DICTIONARY: keys; empty = every key.
    Dictionary(Vec<Opaque>),
    /// A Kind whose model is unknown: the raw bytes.
    Opaque(Opaque),
}

/// Which values of one Kind to fetch (or stat).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct StoredDataSpecifier {
    /// The Kind.
    pub kind: KindId,
    /// Generation the requester has (0 = always return the values).
    pub generation: u64,
    /// Model-dependent selection.
    pub model_specifier: ModelSpecifier,
}

impl StoredDataSpecifier {
    /// Encodes.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.kind.encode(out)?;
        out.extend_from_slice(&self.generation.to_be_bytes());
        write_prefixed_with(
            out,
            LenWidth::U16,
            "StoredDataSpecifier.length",
            |o| match &self.model_specifier {
                ModelSpecifier::Single => Ok(()),
                ModelSpecifier::Array(v) => {
                    write_list(o, LenWidth::U16, "StoredDataSpecifier.indices", v)
                }
                ModelSpecifier::Dictionary(keys) => write_list_with(
                    o,
                    LenWidth::U16,
                    "StoredDataSpecifier.keys",
                    keys,
                    |k, o| k.write_prefixed(o, LenWidth::U16, "DictionaryKey"),
                ),
                ModelSpecifier::Opaque(b) => {
                    o.extend_from_slice(b);
                    Ok(())
                }
            },
        )
    }

    /// Reads, using `kinds` to find the data model.
    pub fn read_with(r: &mut Reader<'_>, kinds: &dyn KindModels) -> Result<Self, DecodeError> {
        let kind = KindId::read(r)?;
        let generation = r.u64("StoredDataSpecifier.generation")?;
        let mut d = r.prefixed(LenWidth::U16, "StoredDataSpecifier.length")?;
        let model_specifier = match kinds.model(kind) {
            Some(DataModel::Single) => ModelSpecifier::Single,
            Some(DataModel::Array) => {
                ModelSpecifier::Array(d.list(LenWidth::U16, "StoredDataSpecifier.indices")?)
            }
            Some(DataModel::Dictionary) => ModelSpecifier::Dictionary(d.list_with(
                LenWidth::U16,
                "StoredDataSpecifier.keys",
                |r| Opaque::read_prefixed(r, LenWidth::U16, 0, "DictionaryKey"),
            )?),
            None => ModelSpecifier::Opaque(Opaque(
                d.take(d.remaining(), "StoredDataSpecifier")?.to_vec(),
            )),
        };
        d.finish("StoredDataSpecifier")?;
        Ok(StoredDataSpecifier {
            kind,
            generation,
            model_specifier,
        })
    }
}

/// A Fetch request (and, with the same layout, a Stat request).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct FetchReq {
    /// The resource.
    pub resource: ResourceId,
    /// One specifier per Kind.
    pub specifiers: Vec<StoredDataSpecifier>,
}

/// A Stat request has the Fetch request's layout (RFC 6940 7.4.3.1).
pub type StatReq = FetchReq;

impl FetchReq {
    /// Encodes.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.resource.encode(out)?;
        write_list_with(
            out,
            LenWidth::U16,
            "FetchReq.specifiers",
            &self.specifiers,
            |s, o| s.encode(o),
        )
    }

    /// Reads, using `kinds` to find each Kind's data model.
    pub fn read_with(r: &mut Reader<'_>, kinds: &dyn KindModels) -> Result<Self, DecodeError> {
        Ok(FetchReq {
            resource: ResourceId::read(r)?,
            specifiers: r.list_with(LenWidth::U16, "FetchReq.specifiers", |r| {
                StoredDataSpecifier::read_with(r, kinds)
            })?,
        })
    }
}

/// The values of one Kind in a FetchAns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct FetchKindResponse {
    /// The Kind.
    pub kind: KindId,
    /// The current generation counter.
    pub generation: u64,
    /// The values (empty when the requester's generation is current).
    pub values: KindValues,
}

impl FetchKindResponse {
    /// Encodes.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.kind.encode(out)?;
        out.extend_from_slice(&self.generation.to_be_bytes());
        self.values.encode(out, "FetchKindResponse.values")
    }

    /// Reads, using `kinds` to find the data model.
    pub fn read_with(r: &mut Reader<'_>, kinds: &dyn KindModels) -> Result<Self, DecodeError> {
        let kind = KindId::read(r)?;
        Ok(FetchKindResponse {
            kind,
            generation: r.u64("FetchKindResponse.generation")?,
            values: KindValues::read_with(r, kind, kinds, "FetchKindResponse.values")?,
        })
    }
}

/// A Fetch answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct FetchAns {
    /// One entry per requested Kind.
    pub kind_responses: Vec<FetchKindResponse>,
}

impl FetchAns {
    /// Encodes.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_list_with(
            out,
            LenWidth::U32,
            "FetchAns.kind_responses",
            &self.kind_responses,
            |k, o| k.encode(o),
        )
    }

    /// Reads, using `kinds` to find each Kind's data model.
    pub fn read_with(r: &mut Reader<'_>, kinds: &dyn KindModels) -> Result<Self, DecodeError> {
        Ok(FetchAns {
            kind_responses: r.list_with(LenWidth::U32, "FetchAns.kind_responses", |r| {
                FetchKindResponse::read_with(r, kinds)
            })?,
        })
    }
}
