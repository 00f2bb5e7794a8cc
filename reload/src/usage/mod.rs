//! Usages built on the node's Store/Fetch API, as sans-IO state machines.
//!
//! * [`redir`]: ReDiR service discovery (RFC 7374).
//! * [`self_tuning`]: RFC 7363-style maintenance parameters (pure functions).
//! * [`turn`]: TURN-SERVICE advertisement and discovery (RFC 6940 9).

pub mod redir;
pub mod self_tuning;
pub mod turn;
