//! RELOAD wire structures (RFC 6940 section 6.3 onwards), one file per structure family.
//!
//! Every structure implements [`crate::codec::Codec`] or, where the layout depends on a
//! Kind's data model, has `read_with(r, &dyn KindModels)` and `encode`. Unknown code points,
//! destination types, options, extensions, signer identities, address types and Kinds decode
//! into values that encode back to the same bytes.
//!
//! * Message framing: [`header`], [`destination`], [`contents`], [`error`], [`security`],
//!   [`message`], and the per-hop [`framing`] layer.
//! * Method bodies: [`probe`], [`attach`], [`app_attach`], [`ping`], [`store`], [`fetch`],
//!   [`stat`], [`find`], [`topology`] (Join/Leave/Update/RouteQuery + CHORD-RELOAD),
//!   [`config_update`], [`diagnostics`] (RFC 7851 PathTrack and Diagnostic_Ping), typed
//!   together by [`body`].
//! * Kind values: [`sip`] (SIP-REGISTRATION), [`turn`] (TURN-SERVICE); [`kind`] has Kind-IDs
//!   and data models.

pub mod app_attach;
pub mod attach;
pub mod body;
pub mod config_update;
pub mod contents;
pub mod destination;
pub mod diagnostics;
pub mod error;
pub mod fetch;
pub mod find;
pub mod framing;
pub mod header;
pub mod ids;
pub mod kind;
pub mod message;
pub mod ping;
pub mod probe;
pub mod redir;
pub mod security;
pub mod sip;
pub mod stat;
pub mod store;
pub mod topology;
pub mod turn;

pub use app_attach::{APPLICATION_SIP, APPLICATION_SIPS, AppAttachReqAns};
pub use attach::{
    AddressType, AttachReqAns, CandType, IceCandidate, IceExtension, IpAddressPort, OverlayLinkType,
};
pub use body::Body;
pub use config_update::{ConfigUpdateReq, ConfigUpdateType};
pub use contents::{ExtensionType, MessageCode, MessageContents, MessageExtension};
pub use destination::{Destination, DestinationType};
pub use diagnostics::{
    DiagnosticExtension, DiagnosticInfo, DiagnosticKindId, DiagnosticValue, DiagnosticsRequest,
    DiagnosticsResponse, MessageCounters, PathTrackAns, PathTrackReq,
};
pub use error::{ErrorCode, ErrorResponse};
pub use fetch::{
    ArrayRange, FetchAns, FetchKindResponse, FetchReq, ModelSpecifier, StatReq, StoredDataSpecifier,
};
pub use find::{FindAns, FindKindData, FindReq};
pub use framing::FramedMessage;
pub use header::{ForwardingHeader, ForwardingOption, ForwardingOptionType};
pub use ids::{NodeId, ResourceId, overlay_hash, sha1_128};
pub use kind::{BuiltinKinds, DataModel, KindId, KindModels, NoKinds};
pub use message::{DescribedMessage, Message, RawMessage, message_signature_input};
pub use ping::{PingAns, PingReq};
pub use probe::{ProbeAns, ProbeInformation, ProbeInformationType, ProbeReq};
pub use redir::RedirServiceProvider;
pub use security::{
    CertificateType, GenericCertificate, HashAlgorithm, SecurityBlock, Signature,
    SignatureAlgorithm, SignatureAndHashAlgorithm, SignerIdentity, SignerIdentityType,
};
pub use sip::{SipRegistration, SipRegistrationType, gruu_gr_param, parse_gruu_gr_param};
pub use stat::{
    KindMetaValues, MetaData, MetaDataValue, StatAns, StatKindResponse, StoredMetaData,
};
pub use store::{
    ArrayEntry, DataValue, DictionaryEntry, KindValues, StoreAns, StoreKindData, StoreKindResponse,
    StoreReq, StoredData, StoredDataValue, stored_data_signature_input,
};
pub use topology::{
    ChordLeaveData, ChordLeaveType, ChordRouteQueryAns, ChordUpdate, ChordUpdateData,
    ChordUpdateType, JoinAns, JoinReq, LeaveReq, RouteQueryReq,
};
pub use turn::TurnServer;
