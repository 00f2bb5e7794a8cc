//! RELOAD wire structures (RFC 6940 section 6.3 onwards), one file per structure family.
//!
//! Every structure implements [`crate::codec::Codec`] (or, where the layout depends on a
//! Kind's data model, has `read_with(r, &dyn KindModels)`). Unknown code points, destination
//! types, options, extensions, signer identities and Kinds decode into values that encode back
//! to the same bytes.

pub mod contents;
pub mod destination;
pub mod error;
pub mod header;
pub mod ids;
pub mod kind;
pub mod message;
pub mod security;

pub use contents::{ExtensionType, MessageCode, MessageContents, MessageExtension};
pub use destination::{Destination, DestinationType};
pub use error::{ErrorCode, ErrorResponse};
pub use header::{ForwardingHeader, ForwardingOption, ForwardingOptionType};
pub use ids::{NodeId, ResourceId, overlay_hash, sha1_128};
pub use kind::{BuiltinKinds, DataModel, KindId, KindModels, NoKinds};
pub use message::{Message, RawMessage, message_signature_input};
pub use security::{
    CertificateType, GenericCertificate, HashAlgorithm, SecurityBlock, Signature,
    SignatureAlgorithm, SignatureAndHashAlgorithm, SignerIdentity, SignerIdentityType,
};
