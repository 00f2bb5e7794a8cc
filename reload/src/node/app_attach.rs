//! AppAttach (RFC 6940 6.5.2) in the node: applications register the candidates of their
//! listener (e.g. SIP, Application-ID 5060, RFC 7904), the node answers AppAttachReq for
//! registered applications (Error_Not_Found otherwise, as 6.5.2.2 requires) and offers
//! [`Node::app_attach`] to ask a peer for its application candidates.
//!
//! Kept apart from `mod.rs`: `mod.rs` dispatches codes 29 and 30 here before its own body
//! decoding, like the RFC 7851 usages.
//!
//! ICE seam: today the candidates are host candidates of a listener that accepts TLS over
//! TCP (no ICE checks, `TLS-TCP-FH-NO-ICE`, although the link carries the application's own
//! protocol, not framed RELOAD). When ICE lands, [`Node::register_application`] takes full
//! [`IceCandidate`]s (server-reflexive, relayed) and the driver runs the checks with the
//! ufrag/password of [`AppAttachReqAns`]; the wire bodies already carry all of it.

use super::{Dest, Node, Outcome, Purpose, RequestId, Time, glue};
use crate::codec::{Codec, Opaque};
use crate::wire::attach::{CandType, OverlayLinkType};
use crate::wire::{AppAttachReqAns, ErrorCode, IceCandidate, NodeId};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// AppAttachReq message code (RFC 6940 14.8).
pub(super) const APP_ATTACH_REQ: u16 = 29;
/// AppAttachAns message code (RFC 6940 14.8).
pub(super) const APP_ATTACH_ANS: u16 = 30;

/// Applications this node answers AppAttach for: Application-ID -> listener candidates.
#[derive(Debug, Default)]
pub(super) struct Apps {
    listeners: BTreeMap<u16, Vec<SocketAddr>>,
}

/// A host candidate for `addr` (RFC 8445 5.1.2.1 priority for a host candidate).
fn host_candidate(addr: SocketAddr) -> IceCandidate {
    IceCandidate {
        addr_port: addr.into(),
        overlay_link: OverlayLinkType::TLS_TCP_FH_NO_ICE,
        foundation: Opaque(b"1".to_vec()),
        priority: (126 << 24) | (65535 << 8) | 255,
        cand_type: CandType::HOST,
        rel_addr_port: None,
        extensions: Vec::new(),
    }
}

impl AppAttachReqAnsExt for AppAttachReqAns {
    fn host_addrs(&self) -> Vec<SocketAddr> {
        self.candidates
            .iter()
            .filter(|c| c.cand_type == CandType::HOST)
            .filter_map(|c| c.addr_port.socket_addr())
            .collect()
    }
}

/// Convenience on AppAttach bodies.
pub trait AppAttachReqAnsExt {
    /// The transport addresses of the host candidates, in order.
    fn host_addrs(&self) -> Vec<SocketAddr>;
}

impl Node {
    /// Registers `application` (e.g. [`crate::wire::APPLICATION_SIP`]) with the addresses of
    /// its listener: AppAttach requests for it are answered with these as host candidates.
    /// An empty list unregisters the application.
    pub fn register_application(&mut self, application: u16, candidates: Vec<SocketAddr>) {
        if candidates.is_empty() {
            self.apps.listeners.remove(&application);
        } else {
            self.apps.listeners.insert(application, candidates);
        }
    }

    /// The candidates registered for `application`, if any.
    #[must_use]
    pub fn application_candidates(&self, application: u16) -> Option<&[SocketAddr]> {
        self.apps.listeners.get(&application).map(Vec::as_slice)
    }

    /// Sends an AppAttachReq for `application` to the peer with Node-ID `peer`, offering the
    /// candidates registered for that application (none if it is not registered: we only
    /// dial). Completion: [`super::Event::Completed`] with [`Outcome::AppAttached`] carrying
    /// the peer's answer; the answer is accepted only when signed by `peer` itself.
    #[must_use = "the RequestId identifies the completion event"]
    pub fn app_attach(&mut self, now: Time, peer: NodeId, application: u16) -> RequestId {
        let req = self.new_request();
        // We dial (RFC 4145 "active"); the answerer's listener is "passive".
        let body = self.app_attach_body(application, b"active");
        let bytes = body.to_bytes().unwrap_or_default();
        self.send_raw_request(
            now,
            vec![Dest::Node(peer)],
            APP_ATTACH_REQ,
            &bytes,
            Purpose::App(req),
        );
        req
    }

    fn app_attach_body(&self, application: u16, role: &[u8]) -> AppAttachReqAns {
        let me = self.me.to_array();
        AppAttachReqAns {
            ufrag: Opaque(me.get(..4).unwrap_or_default().to_vec()),
            password: Opaque(me.get(4..12).unwrap_or_default().to_vec()),
            application,
            role: Opaque(role.to_vec()),
            candidates: self
                .apps
                .listeners
                .get(&application)
                .map(|v| v.iter().copied().map(host_candidate).collect())
                .unwrap_or_default(),
        }
    }

    /// Answers an AppAttachReq body: `(code, body)` of an AppAttachAns or an Error.
    pub(super) fn usage_app_attach(&mut self, body: &[u8]) -> (u16, Vec<u8>) {
        let Ok(req) = AppAttachReqAns::from_bytes(body) else {
            return error(ErrorCode::INVALID_MESSAGE.0, "bad AppAttachReq");
        };
        if !self.apps.listeners.contains_key(&req.application) {
            // RFC 6940 6.5.2.2: an unsupported Application-ID gets Error_Not_Found.
            return error(ErrorCode::NOT_FOUND.0, "application not supported");
        }
        let ans = self.app_attach_body(req.application, b"passive");
        match ans.to_bytes() {
            Ok(b) => (APP_ATTACH_ANS, b),
            Err(_) => error(ErrorCode::INVALID_MESSAGE.0, "AppAttachAns too large"),
        }
    }

    /// Turns an AppAttachAns body into the application outcome.
    pub(super) fn usage_app_attach_answer(body: &[u8]) -> Option<Outcome> {
        AppAttachReqAns::from_bytes(body)
            .ok()
            .map(Outcome::AppAttached)
    }
}

fn error(code: u16, info: &str) -> (u16, Vec<u8>) {
    let (c, b) = glue::encode_body(&super::Body::Error {
        code,
        info: info.as_bytes().to_vec(),
    });
    (c, b)
}
