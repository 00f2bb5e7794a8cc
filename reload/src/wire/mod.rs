//! RELOAD wire structures (RFC 6940 section 6.3 onwards), one file per structure family.

pub mod ids;

pub use ids::{NodeId, ResourceId, overlay_hash, sha1_128};
