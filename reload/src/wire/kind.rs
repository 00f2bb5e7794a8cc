//! Kind-IDs and data models (RFC 6940 7.2, 7.4.5, 14.6; RFC 7904; RFC 7374).
//!
//! The wire never names a data model: it comes from the Kind's definition in the overlay
//! configuration. Decoders of model-dependent structures therefore take a [`KindModels`]
//! lookup; a Kind it does not know is kept as opaque bytes.

use crate::code_point;
use serde::Serialize;

code_point! {
    /// `KindId` (uint32).
    pub struct KindId(u32) {
        /// Invalid.
        INVALID = 0,
        /// SIP-REGISTRATION (RFC 7904), DICTIONARY.
        SIP_REGISTRATION = 1,
        /// TURN-SERVICE (RFC 6940 9), SINGLE.
        TURN_SERVICE = 2,
        /// CERTIFICATE_BY_NODE (RFC 6940 8), ARRAY.
        CERTIFICATE_BY_NODE = 3,
        /// CERTIFICATE_BY_USER (RFC 6940 8), ARRAY.
        CERTIFICATE_BY_USER = 16,
        /// REDIR (RFC 7374), DICTIONARY.
        REDIR = 104,
    }
}

/// A Kind's data model (RFC 6940 7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum DataModel {
    /// One value per Resource-ID and Kind.
    Single,
    /// Values addressed by a 32-bit index.
    Array,
    /// Values addressed by an opaque key.
    Dictionary,
}

impl DataModel {
    /// The configuration document's name (`SINGLE`, `ARRAY`, `DICTIONARY`).
    pub fn config_name(self) -> &'static str {
        match self {
            DataModel::Single => "SINGLE",
            DataModel::Array => "ARRAY",
            DataModel::Dictionary => "DICTIONARY",
        }
    }

    /// Parses a configuration document's name.
    pub fn from_config_name(s: &str) -> Option<Self> {
        match s {
            "SINGLE" => Some(DataModel::Single),
            "ARRAY" => Some(DataModel::Array),
            "DICTIONARY" => Some(DataModel::Dictionary),
            _ => None,
        }
    }
}

/// Looks up the data model of a Kind (from the active configuration).
pub trait KindModels {
    /// The model of `kind`, or `None` when the Kind is unknown.
    fn model(&self, kind: KindId) -> Option<DataModel>;
}

impl<F: Fn(KindId) -> Option<DataModel>> KindModels for F {
    fn model(&self, kind: KindId) -> Option<DataModel> {
        self(kind)
    }
}

/// The IANA-registered Kinds p2psip knows: 1, 2, 3, 16 and 104.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltinKinds;

impl BuiltinKinds {
    /// The model of a registered Kind.
    pub fn model_of(kind: KindId) -> Option<DataModel> {
        match kind {
            KindId::SIP_REGISTRATION | KindId::REDIR => Some(DataModel::Dictionary),
            KindId::TURN_SERVICE => Some(DataModel::Single),
            KindId::CERTIFICATE_BY_NODE | KindId::CERTIFICATE_BY_USER => Some(DataModel::Array),
            _ => None,
        }
    }
}

impl KindModels for BuiltinKinds {
    fn model(&self, kind: KindId) -> Option<DataModel> {
        Self::model_of(kind)
    }
}

/// A lookup that knows no Kind: everything model-dependent stays opaque.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoKinds;

impl KindModels for NoKinds {
    fn model(&self, _kind: KindId) -> Option<DataModel> {
        None
    }
}
