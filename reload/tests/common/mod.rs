//! Shared helpers for integration tests and benches.

pub mod pki;
