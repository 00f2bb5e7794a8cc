//! RELOAD (RFC 6940) peer as a sans-IO engine.
//!
//! `codec` is the presentation-language codec, `wire` the structures of the RFC. Nothing in
//! this crate reads a clock, opens a socket or starts a thread: the caller passes time and
//! randomness in, and takes bytes to send out.

pub mod codec;
pub mod crypto;
pub mod node;
pub mod sim;
pub mod storage;
pub mod topology;
pub mod usage;
pub mod wire;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use node::Instant;
