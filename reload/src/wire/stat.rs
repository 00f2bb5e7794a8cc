//! Stat (RFC 6940 7.4.3): metadata about stored values instead of the values.
//!
//! ```text
//! struct { Boolean exists; uint32 value_length; HashAlgorithm hash_algorithm;
//!          opaque hash_value<0..255>; } MetaData;
//! struct { uint32 index; MetaData value; } ArrayEntryMeta;
//! struct { DictionaryKey key; MetaData value; } DictionaryEntryMeta;
//! struct { uint32 value_length; uint64 storage_time; uint32 lifetime;
//!          MetaDataValue metadata; } StoredMetaData;
//! struct { KindId kind; uint64 generation; StoredMetaData values<0..2^32-1>; } StatKindResponse;
//! struct { StatKindResponse kind_responses<0..2^32-1>; } StatAns;
//! ```
//! The RFC says StoredMetaData's fields "are the same as the corresponding fields in
//! StoredData", so its leading `value_length` is read as StoredData's `length`: the byte count
//! of the rest of the structure, computed on encode. (The per-value length is MetaData's own
//! `value_length`.) Wireshark's dissector reads it the same way (checked by `tests/tshark.rs`).
//! A StatReq is a [`crate::wire::FetchReq`].

use crate::codec::{
    Codec, DecodeError, EncodeError, LenWidth, Opaque, Reader, write_list_with, write_prefixed_with,
};
use crate::wire::{DataModel, HashAlgorithm, KindId, KindModels};
use serde::Serialize;

/// Metadata of one value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct MetaData {
    /// Whether the value exists.
    pub exists: bool,
    /// Length of the stored value.
    pub value_length: u32,
    /// Digest algorithm.
    pub hash_algorithm: HashAlgorithm,
    /// Digest of the DataValue's `value` including its 4-byte length prefix.
    pub hash_value: Opaque,
}

impl Codec for MetaData {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(self.exists as u8);
        out.extend_from_slice(&self.value_length.to_be_bytes());
        self.hash_algorithm.encode(out)?;
        self.hash_value
            .write_prefixed(out, LenWidth::U8, "MetaData.hash_value")
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(MetaData {
            exists: r.boolean("MetaData.exists")?,
            value_length: r.u32("MetaData.value_length")?,
            hash_algorithm: HashAlgorithm::read(r)?,
            hash_value: Opaque::read_prefixed(r, LenWidth::U8, 0, "MetaData.hash_value")?,
        })
    }
}

/// `MetaDataValue`, by data model.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum MetaDataValue {
    /// SINGLE.
    Single(MetaData),
    /// ARRAY: index and metadata.
    Array {
        /// Index.
        index: u32,
        /// Metadata.
        value: MetaData,
    },
    /// DICTIONARY: key and metadata.
    Dictionary {
        /// Key.
        key: Opaque,
        /// Metadata.
        value: MetaData,
    },
}

impl MetaDataValue {
    /// Encodes.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            MetaDataValue::Single(m) => m.encode(out),
            MetaDataValue::Array { index, value } => {
                out.extend_from_slice(&index.to_be_bytes());
                value.encode(out)
            }
            MetaDataValue::Dictionary { key, value } => {
                key.write_prefixed(out, LenWidth::U16, "DictionaryEntryMeta.key")?;
                value.encode(out)
            }
        }
    }

    /// Reads a value of `model`.
    pub fn read_with(r: &mut Reader<'_>, model: DataModel) -> Result<Self, DecodeError> {
        Ok(match model {
            DataModel::Single => MetaDataValue::Single(MetaData::read(r)?),
            DataModel::Array => MetaDataValue::Array {
                index: r.u32("ArrayEntryMeta.index")?,
                value: MetaData::read(r)?,
            },
            DataModel::Dictionary => MetaDataValue::Dictionary {
                key: Opaque::read_prefixed(r, LenWidth::U16, 0, "DictionaryEntryMeta.key")?,
                value: MetaData::read(r)?,
            },
        })
    }
}

/// Metadata of one stored value (no signature).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct StoredMetaData {
    /// As in StoredData.
    pub storage_time: u64,
    /// As in StoredData.
    pub lifetime: u32,
    /// The metadata.
    pub metadata: MetaDataValue,
}

impl StoredMetaData {
    /// Encodes, with the leading length computed.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_prefixed_with(out, LenWidth::U32, "StoredMetaData.value_length", |o| {
            o.extend_from_slice(&self.storage_time.to_be_bytes());
            o.extend_from_slice(&self.lifetime.to_be_bytes());
            self.metadata.encode(o)
        })
    }

    /// Reads one entry of `model`.
    pub fn read_with(r: &mut Reader<'_>, model: DataModel) -> Result<Self, DecodeError> {
        let mut d = r.prefixed(LenWidth::U32, "StoredMetaData.value_length")?;
        let v = StoredMetaData {
            storage_time: d.u64("StoredMetaData.storage_time")?,
            lifetime: d.u32("StoredMetaData.lifetime")?,
            metadata: MetaDataValue::read_with(&mut d, model)?,
        };
        d.finish("StoredMetaData")?;
        Ok(v)
    }
}

/// The metadata of one Kind: decoded, or opaque when the Kind's model is unknown.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum KindMetaValues {
    /// Entries of a known Kind.
    Decoded(Vec<StoredMetaData>),
    /// The raw list of an unknown Kind.
    Opaque(Opaque),
}

impl Default for KindMetaValues {
    fn default() -> Self {
        KindMetaValues::Decoded(Vec::new())
    }
}

/// The metadata for one Kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct StatKindResponse {
    /// The Kind.
    pub kind: KindId,
    /// Current generation counter.
    pub generation: u64,
    /// Entries.
    pub values: KindMetaValues,
}

impl StatKindResponse {
    /// Encodes.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.kind.encode(out)?;
        out.extend_from_slice(&self.generation.to_be_bytes());
        match &self.values {
            KindMetaValues::Decoded(v) => {
                write_list_with(out, LenWidth::U32, "StatKindResponse.values", v, |m, o| {
                    m.encode(o)
                })
            }
            KindMetaValues::Opaque(b) => {
                b.write_prefixed(out, LenWidth::U32, "StatKindResponse.values")
            }
        }
    }

    /// Reads, using `kinds` to find the data model.
    pub fn read_with(r: &mut Reader<'_>, kinds: &dyn KindModels) -> Result<Self, DecodeError> {
        let kind = KindId::read(r)?;
        let generation = r.u64("StatKindResponse.generation")?;
        let values = match kinds.model(kind) {
            Some(model) => KindMetaValues::Decoded(r.list_with(
                LenWidth::U32,
                "StatKindResponse.values",
                |r| StoredMetaData::read_with(r, model),
            )?),
            None => KindMetaValues::Opaque(Opaque::read_prefixed(
                r,
                LenWidth::U32,
                0,
                "StatKindResponse.values",
            )?),
        };
        Ok(StatKindResponse {
            kind,
            generation,
            values,
        })
    }
}

/// A Stat answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct StatAns {
    /// One entry per requested Kind.
    pub kind_responses: Vec<StatKindResponse>,
}

impl StatAns {
    /// Encodes.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_list_with(
            out,
            LenWidth::U32,
            "StatAns.kind_responses",
            &self.kind_responses,
            |k, o| k.encode(o),
        )
    }

    /// Reads, using `kinds` to find each Kind's data model.
    pub fn read_with(r: &mut Reader<'_>, kinds: &dyn KindModels) -> Result<Self, DecodeError> {
        Ok(StatAns {
            kind_responses: r.list_with(LenWidth::U32, "StatAns.kind_responses", |r| {
                StatKindResponse::read_with(r, kinds)
            })?,
        })
    }
}
