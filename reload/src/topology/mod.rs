//! Overlay topology plug-ins. Only CHORD-RELOAD (RFC 6940 section 10) exists.

pub mod chord;

pub use chord::{ChordTable, dist, in_range};
