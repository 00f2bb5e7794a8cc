//! Store and StoredData (RFC 6940 7.1, 7.2, 7.4.1).
//!
//! ```text
//! struct { ResourceId resource; uint8 replica_number; StoreKindData kind_data<0..2^32-1>; } StoreReq;
//! struct { KindId kind; uint64 generation_counter; StoredData values<0..2^32-1>; } StoreKindData;
//! struct { uint32 length; uint64 storage_time; uint32 lifetime;
//!          StoredDataValue value; Signature signature; } StoredData;
//! struct { Boolean exists; opaque value<0..2^32-1>; } DataValue;          // SINGLE
//! struct { uint32 index; DataValue value; } ArrayEntry;                   // ARRAY
//! struct { DictionaryKey key; DataValue value; } DictionaryEntry;         // DICTIONARY
//! struct { StoreKindResponse kind_responses<0..2^16-1>; } StoreAns;
//! struct { KindId kind; uint64 generation_counter; NodeId replicas<0..2^16-1>; } StoreKindResponse;
//! ```
//! `StoredDataValue` cannot be split from the signature without the Kind's data model, so
//! the values of a Kind the [`KindModels`] lookup does not know stay one opaque block
//! ([`KindValues::Opaque`]) and encode back unchanged.

use crate::codec::{
    Codec, DecodeError, EncodeError, LenWidth, Opaque, Reader, write_list, write_list_with,
    write_prefixed_with,
};
use crate::wire::{DataModel, KindId, KindModels, NodeId, ResourceId, Signature, SignerIdentity};
use serde::Serialize;

/// `DataValue`: the SINGLE model's value, and the payload of array and dictionary entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct DataValue {
    /// False for a deletion tombstone or a synthesised missing value.
    pub exists: bool,
    /// `value<0..2^32-1>`.
    pub value: Opaque,
}

impl Codec for DataValue {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(self.exists as u8);
        self.value
            .write_prefixed(out, LenWidth::U32, "DataValue.value")
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(DataValue {
            exists: r.boolean("DataValue.exists")?,
            value: Opaque::read_prefixed(r, LenWidth::U32, 0, "DataValue.value")?,
        })
    }
}

/// An ARRAY entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct ArrayEntry {
    /// Zero-based index; [`ArrayEntry::APPEND`] appends.
    pub index: u32,
    /// The value.
    pub value: DataValue,
}

impl ArrayEntry {
    /// Index meaning "append at the end" (RFC 6940 7.4.1.1).
    pub const APPEND: u32 = 0xffff_ffff;
}

impl Codec for ArrayEntry {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.extend_from_slice(&self.index.to_be_bytes());
        self.value.encode(out)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ArrayEntry {
            index: r.u32("ArrayEntry.index")?,
            value: DataValue::read(r)?,
        })
    }
}

/// A DICTIONARY entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct DictionaryEntry {
    /// `DictionaryKey key<0..2^16-1>`.
    pub key: Opaque,
    /// The value.
    pub value: DataValue,
}

impl Codec for DictionaryEntry {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.key
            .write_prefixed(out, LenWidth::U16, "DictionaryEntry.key")?;
        self.value.encode(out)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(DictionaryEntry {
            key: Opaque::read_prefixed(r, LenWidth::U16, 0, "DictionaryEntry.key")?,
            value: DataValue::read(r)?,
        })
    }
}

/// `StoredDataValue`, by data model.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum StoredDataValue {
    /// SINGLE.
    Single(DataValue),
    /// ARRAY.
    Array(ArrayEntry),
    /// DICTIONARY.
    Dictionary(DictionaryEntry),
}

impl StoredDataValue {
    /// The data model of this value.
    pub fn model(&self) -> DataModel {
        match self {
            StoredDataValue::Single(_) => DataModel::Single,
            StoredDataValue::Array(_) => DataModel::Array,
            StoredDataValue::Dictionary(_) => DataModel::Dictionary,
        }
    }

    /// The DataValue inside.
    pub fn data_value(&self) -> &DataValue {
        match self {
            StoredDataValue::Single(v) => v,
            StoredDataValue::Array(e) => &e.value,
            StoredDataValue::Dictionary(e) => &e.value,
        }
    }

    /// Encodes the value.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            StoredDataValue::Single(v) => v.encode(out),
            StoredDataValue::Array(e) => e.encode(out),
            StoredDataValue::Dictionary(e) => e.encode(out),
        }
    }

    /// Reads a value of `model`.
    pub fn read_with(r: &mut Reader<'_>, model: DataModel) -> Result<Self, DecodeError> {
        Ok(match model {
            DataModel::Single => StoredDataValue::Single(DataValue::read(r)?),
            DataModel::Array => StoredDataValue::Array(ArrayEntry::read(r)?),
            DataModel::Dictionary => StoredDataValue::Dictionary(DictionaryEntry::read(r)?),
        })
    }
}

/// One signed stored value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct StoredData {
    /// Milliseconds since the Unix epoch, set by the storing user.
    pub storage_time: u64,
    /// Seconds from receipt of the StoreReq.
    pub lifetime: u32,
    /// The value.
    pub value: StoredDataValue,
    /// Signature over [`stored_data_signature_input`].
    pub signature: Signature,
}

impl StoredData {
    /// Encodes with the leading `length`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_prefixed_with(out, LenWidth::U32, "StoredData.length", |o| {
            o.extend_from_slice(&self.storage_time.to_be_bytes());
            o.extend_from_slice(&self.lifetime.to_be_bytes());
            self.value.encode(o)?;
            self.signature.encode(o)
        })
    }

    /// Reads one StoredData of a Kind with data model `model`.
    pub fn read_with(r: &mut Reader<'_>, model: DataModel) -> Result<Self, DecodeError> {
        let mut d = r.prefixed(LenWidth::U32, "StoredData.length")?;
        let v = StoredData {
            storage_time: d.u64("StoredData.storage_time")?,
            lifetime: d.u32("StoredData.lifetime")?,
            value: StoredDataValue::read_with(&mut d, model)?,
            signature: Signature::read(&mut d)?,
        };
        d.finish("StoredData")?;
        Ok(v)
    }

    /// Encodes into a fresh buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::new();
        self.encode(&mut v)?;
        Ok(v)
    }

    /// Decodes a buffer holding exactly one StoredData of `model`.
    pub fn from_bytes(bytes: &[u8], model: DataModel) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::read_with(&mut r, model)?;
        r.finish("trailing data")?;
        Ok(v)
    }

    /// The bytes this value's signature covers, for storage at `resource` under `kind`.
    pub fn signature_input(
        &self,
        resource: &ResourceId,
        kind: KindId,
    ) -> Result<Vec<u8>, EncodeError> {
        stored_data_signature_input(
            resource,
            kind,
            self.storage_time,
            &self.value,
            &self.signature.identity,
        )
    }
}

/// Signature input for a StoredData (RFC 6940 7.1):
/// `resource_id || kind || storage_time || StoredDataValue || SignerIdentity`.
///
/// `resource_id` is the bare Resource-ID bytes (no length prefix), `kind` a u32 and
/// `storage_time` a u64. For ARRAY values the index is written as zero (RFC 6940 7.4.2.2), so
/// an append still verifies after the storing peer assigns the real index.
pub fn stored_data_signature_input(
    resource: &ResourceId,
    kind: KindId,
    storage_time: u64,
    value: &StoredDataValue,
    signer: &SignerIdentity,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(64 + value.data_value().value.len());
    out.extend_from_slice(&resource.0);
    out.extend_from_slice(&kind.0.to_be_bytes());
    out.extend_from_slice(&storage_time.to_be_bytes());
    match value {
        StoredDataValue::Array(e) => ArrayEntry {
            index: 0,
            value: e.value.clone(),
        }
        .encode(&mut out)?,
        v => v.encode(&mut out)?,
    }
    signer.encode(&mut out)?;
    Ok(out)
}

/// The values of one Kind: decoded when its model is known, else one opaque block (the
/// contents of the `values<0..2^32-1>` vector, without its length).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum KindValues {
    /// Values of a Kind whose model was known.
    Decoded(Vec<StoredData>),
    /// The raw list of a Kind whose model was unknown.
    Opaque(Opaque),
}

impl Default for KindValues {
    fn default() -> Self {
        KindValues::Decoded(Vec::new())
    }
}

impl KindValues {
    /// The decoded values (`None` for an unknown Kind).
    pub fn decoded(&self) -> Option<&[StoredData]> {
        match self {
            KindValues::Decoded(v) => Some(v),
            KindValues::Opaque(_) => None,
        }
    }

    /// Writes the `values<0..2^32-1>` vector.
    pub fn encode(&self, out: &mut Vec<u8>, what: &'static str) -> Result<(), EncodeError> {
        match self {
            KindValues::Decoded(v) => {
                write_list_with(out, LenWidth::U32, what, v, |d, o| d.encode(o))
            }
            KindValues::Opaque(b) => b.write_prefixed(out, LenWidth::U32, what),
        }
    }

    /// Reads the `values<0..2^32-1>` vector of `kind`.
    pub fn read_with(
        r: &mut Reader<'_>,
        kind: KindId,
        kinds: &dyn KindModels,
        what: &'static str,
    ) -> Result<Self, DecodeError> {
        match kinds.model(kind) {
            Some(model) => Ok(KindValues::Decoded(r.list_with(
                LenWidth::U32,
                what,
                |r| StoredData::read_with(r, model),
            )?)),
            None => Ok(KindValues::Opaque(Opaque::read_prefixed(
                r,
                LenWidth::U32,
                0,
                what,
            )?)),
        }
    }
}

/// The values of one Kind in a StoreReq.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct StoreKindData {
    /// The Kind.
    pub kind: KindId,
    /// Expected generation counter (0 = do not check).
    pub generation_counter: u64,
    /// The values.
    pub values: KindValues,
}

impl StoreKindData {
    /// Encodes.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.kind.encode(out)?;
        out.extend_from_slice(&self.generation_counter.to_be_bytes());
        self.values.encode(out, "StoreKindData.values")
    }

    /// Reads, using `kinds` to find the data model.
    pub fn read_with(r: &mut Reader<'_>, kinds: &dyn KindModels) -> Result<Self, DecodeError> {
        let kind = KindId::read(r)?;
        Ok(StoreKindData {
            kind,
            generation_counter: r.u64("StoreKindData.generation_counter")?,
            values: KindValues::read_with(r, kind, kinds, "StoreKindData.values")?,
        })
    }
}

/// A Store request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct StoreReq {
    /// Where to store.
    pub resource: ResourceId,
    /// 0 for an original store, 1.. for replicas.
    pub replica_number: u8,
    /// One entry per Kind.
    pub kind_data: Vec<StoreKindData>,
}

impl StoreReq {
    /// Encodes.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.resource.encode(out)?;
        out.push(self.replica_number);
        write_list_with(
            out,
            LenWidth::U32,
            "StoreReq.kind_data",
            &self.kind_data,
            |k, o| k.encode(o),
        )
    }

    /// Reads, using `kinds` to find each Kind's data model.
    pub fn read_with(r: &mut Reader<'_>, kinds: &dyn KindModels) -> Result<Self, DecodeError> {
        Ok(StoreReq {
            resource: ResourceId::read(r)?,
            replica_number: r.u8("StoreReq.replica_number")?,
            kind_data: r.list_with(LenWidth::U32, "StoreReq.kind_data", |r| {
                StoreKindData::read_with(r, kinds)
            })?,
        })
    }
}

/// The result for one Kind in a StoreAns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct StoreKindResponse {
    /// The Kind.
    pub kind: KindId,
    /// The generation counter after the store.
    pub generation_counter: u64,
    /// Peers that hold or will hold replicas.
    pub replicas: Vec<NodeId>,
}

impl Codec for StoreKindResponse {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.kind.encode(out)?;
        out.extend_from_slice(&self.generation_counter.to_be_bytes());
        write_list(
            out,
            LenWidth::U16,
            "StoreKindResponse.replicas",
            &self.replicas,
        )
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(StoreKindResponse {
            kind: KindId::read(r)?,
            generation_counter: r.u64("StoreKindResponse.generation_counter")?,
            replicas: r.list(LenWidth::U16, "StoreKindResponse.replicas")?,
        })
    }
}

/// A Store answer (also the `error_info` of Error_Generation_Counter_Too_Low).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct StoreAns {
    /// One entry per Kind.
    pub kind_responses: Vec<StoreKindResponse>,
}

impl Codec for StoreAns {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_list(
            out,
            LenWidth::U16,
            "StoreAns.kind_responses",
            &self.kind_responses,
        )
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(StoreAns {
            kind_responses: r.list(LenWidth::U16, "StoreAns.kind_responses")?,
        })
    }
}
