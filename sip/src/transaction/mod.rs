//! RFC 3261 17 transaction state machines, sans-IO, with the RFC 6026 `Accepted` states.
//!
//! Each machine is driven by its owner (the `Endpoint`) with explicit `now` values: it
//! returns the bytes to transmit and tells when it wants to be woken (`poll_timeout`).

mod invite_client;
mod invite_server;
mod non_invite_client;
mod non_invite_server;

pub use invite_client::{InviteClient, InviteClientState, build_ack};
pub use invite_server::{AckOutcome, InviteServer, InviteServerState};
pub use non_invite_client::{NonInviteClient, NonInviteClientState};
pub use non_invite_server::{NonInviteServer, NonInviteServerState};

use crate::message::{MAGIC_COOKIE, Method, Request, Response};
use std::time::{Duration, Instant};

/// The RFC 3261 timer base values (17.1.1.1, table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate, default 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, default 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network, default 5 s.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64*T1, the transaction timeout (Timers B, F, H, J, L, M).
    pub fn t64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

/// Something a transaction asks its owner to do after a timer fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxEvent {
    /// Send these bytes to the transaction's peer (a retransmission).
    Transmit(Vec<u8>),
    /// The transaction timed out (Timer B, F or H) and is now terminated.
    Timeout,
}

/// Misuse of a transaction by its owner.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The transaction no longer accepts this response in its current state.
    #[error("transaction in state {0} cannot send this response")]
    WrongState(&'static str),
}

/// Identifies a transaction (RFC 3261 17.1.3 for clients, 17.2.3 for servers).
///
/// ACK is keyed as INVITE so that it finds its INVITE server transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    /// Top Via branch (or an RFC 2543 compatibility identifier).
    pub branch: String,
    /// Top Via sent-by (empty for client transactions).
    pub sent_by: String,
    /// CSeq method (ACK mapped to INVITE).
    pub method: Method,
}

fn key_method(m: &Method) -> Method {
    if *m == Method::Ack {
        Method::Invite
    } else {
        m.clone()
    }
}

impl TransactionKey {
    /// The server transaction key of a request.
    pub fn server(req: &Request) -> Option<TransactionKey> {
        let via = req.headers.top_via()?;
        let method = key_method(&req.method);
        match via.branch() {
            Some(b) if b.starts_with(MAGIC_COOKIE) => Some(TransactionKey {
                branch: b.to_owned(),
                sent_by: via.sent_by().to_ascii_lowercase(),
                method,
            }),
            _ => {
                // RFC 2543 peers: match on Request-URI, From tag, Call-ID, CSeq number and
                // top Via (17.2.3, second half).
                let from_tag = req.headers.from()?.tag().unwrap_or_default().to_owned();
                let cseq = req.headers.cseq()?.seq;
                let uri = req.uri.to_string();
                Some(TransactionKey {
                    branch: format!(
                        "2543|{uri}|{from_tag}|{}|{cseq}|{via}",
                        req.headers.call_id()?
                    ),
                    sent_by: via.sent_by().to_ascii_lowercase(),
                    method,
                })
            }
        }
    }

    /// The client transaction key of an outgoing request (branch of our top Via).
    pub fn client(req: &Request) -> Option<TransactionKey> {
        Some(TransactionKey {
            branch: req.headers.top_via()?.branch()?.to_owned(),
            sent_by: String::new(),
            method: key_method(&req.method),
        })
    }

    /// The client transaction key a response belongs to.
    pub fn client_for_response(resp: &Response) -> Option<TransactionKey> {
        Some(TransactionKey {
            branch: resp.headers.top_via()?.branch()?.to_owned(),
            sent_by: String::new(),
            method: key_method(&resp.headers.cseq()?.method),
        })
    }
}

/// Earliest of several optional deadlines.
pub(crate) fn earliest(times: &[Option<Instant>]) -> Option<Instant> {
    times.iter().flatten().min().copied()
}

/// Whether an optional deadline has passed.
pub(crate) fn due(t: Option<Instant>, now: Instant) -> bool {
    t.is_some_and(|t| t <= now)
}

/// A base instant for fake-clock tests (only differences from it matter).
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn test_epoch() -> Instant {
    Instant::now()
}
