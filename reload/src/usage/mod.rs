//! Usages built on the node's Store/Fetch API, as sans-IO state machines.
//!
//! * [`redir`]: ReDiR service discovery (RFC 7374).

pub mod redir;
