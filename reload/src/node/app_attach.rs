//! AppAttach (RFC 6940 6.5.2) in the node: applications register the candidates of their
//! listener (e.g. SIP, Application-ID 5060, RFC 7904), the node answers AppAttachReq for
//! registered applications (Error_Not_Found otherwise, as 6.5.2.2 requires) and offers
//! [`Node::app_attach`] to ask a peer for its application candidates.
//!
//! Kept apart from `mod.rs`: `mod.rs` dispatches codes 29 and 30 here before its own body
//! decoding, like the RFC 7851 usages.
//!
//! ICE: every AppAttachReq and AppAttachAns carries fresh random ufrag/password from the
//! engine's RNG (RFC 8445 5.3, as Attach does). The candidates are the host candidates of
//! the application's TLS-over-TCP listener ([`Node::register_application`],
//! `TLS-TCP-FH-NO-ICE`, no checks) followed by the ICE candidates the driver gathered for its
//! application UDP socket ([`Node::set_application_candidates`]: host, server-reflexive,
//! relayed, `DTLS-UDP-SR`). The driver runs the checks: the requester with the answer and
//! the credentials [`Node::app_attach_ice`] returned, the answerer with what
//! [`Node::poll_app_attach_answered`] hands over.

use super::msg::Candidate;
use super::{Dest, IceCredentials, Node, Outcome, Purpose, RequestId, Time, glue};
use crate::codec::{Codec, Opaque};
use crate::wire::attach::{CandType, OverlayLinkType};
use crate::wire::{AppAttachReqAns, ErrorCode, IceCandidate, NodeId};
use rand::RngExt;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

/// AppAttachReq message code (RFC 6940 14.8).
pub(super) const APP_ATTACH_REQ: u16 = 29;
/// AppAttachAns message code (RFC 6940 14.8).
pub(super) const APP_ATTACH_ANS: u16 = 30;

/// Applications this node answers AppAttach for: Application-ID -> listener candidates.
#[derive(Debug, Default)]
pub(super) struct Apps {
    listeners: BTreeMap<u16, Vec<SocketAddr>>,
    /// ICE candidates (DTLS-UDP-SR) of the application's UDP socket, by Application-ID.
    ice: BTreeMap<u16, Vec<IceCandidate>>,
    /// AppAttach requests answered, for the driver (at most [`MAX_ANSWERED`] kept).
    answered: VecDeque<AppAttachAnswered>,
}

/// Answered AppAttach requests kept for the driver.
const MAX_ANSWERED: usize = 64;

/// An AppAttach request this node answered: what the driver needs for its half of ICE
/// (controlled, RFC 6940 6.5.1.9: the answerer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppAttachAnswered {
    /// The requester (the request's signer).
    pub peer: NodeId,
    /// The request: the requester's credentials and candidates.
    pub request: AppAttachReqAns,
    /// Our credentials in the answer.
    pub local: IceCredentials,
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
            .filter(|c| c.overlay_link != OverlayLinkType::DTLS_UDP_SR)
            .filter_map(|c| c.addr_port.socket_addr())
            .collect()
    }

    fn udp_candidates(&self) -> Vec<Candidate> {
        self.candidates
            .iter()
            .filter(|c| c.overlay_link == OverlayLinkType::DTLS_UDP_SR)
            .filter_map(|c| {
                Some(Candidate {
                    addr: c.addr_port.socket_addr()?,
                    link: c.overlay_link,
                    cand_type: c.cand_type,
                    related: c.rel_addr_port.as_ref().and_then(|r| r.socket_addr()),
                    priority: c.priority,
                    foundation: c.foundation.0.clone(),
                })
            })
            .collect()
    }

    fn credentials(&self) -> IceCredentials {
        (self.ufrag.0.clone(), self.password.0.clone())
    }
}

/// Convenience on AppAttach bodies.
pub trait AppAttachReqAnsExt {
    /// The transport addresses of the host candidates of the TLS-over-TCP listener, in order.
    fn host_addrs(&self) -> Vec<SocketAddr>;
    /// The ICE candidates (DTLS-UDP-SR) of the peer's application UDP socket, in engine form.
    fn udp_candidates(&self) -> Vec<Candidate>;
    /// The ICE credentials (ufrag, password) the body carries.
    fn credentials(&self) -> IceCredentials;
}

/// An ICE candidate of the wire from an engine candidate (related address exactly for
/// non-host types, RFC 6940 6.5.1.1).
pub fn ice_candidate(c: &Candidate) -> IceCandidate {
    let rel = match c.cand_type.has_related_address() {
        Some(true) => Some(c.related.unwrap_or(c.addr).into()),
        _ => None,
    };
    IceCandidate {
        addr_port: c.addr.into(),
        overlay_link: c.link,
        foundation: Opaque(c.foundation.clone()),
        priority: c.priority,
        cand_type: if rel.is_none() {
            CandType::HOST
        } else {
            c.cand_type
        },
        rel_addr_port: rel,
        extensions: Vec::new(),
    }
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

    /// Sets the ICE candidates (DTLS-UDP-SR: host, server-reflexive, relayed) of
    /// `application`'s UDP socket, offered after the listener's host candidates. An
    /// application with ICE candidates is answered even without a listener; an empty list
    /// removes them.
    pub fn set_application_candidates(&mut self, application: u16, candidates: &[Candidate]) {
        if candidates.is_empty() {
            self.apps.ice.remove(&application);
        } else {
            self.apps
                .ice
                .insert(application, candidates.iter().map(ice_candidate).collect());
        }
    }

    /// The candidates registered for `application`, if any.
    #[must_use]
    pub fn application_candidates(&self, application: u16) -> Option<&[SocketAddr]> {
        self.apps.listeners.get(&application).map(Vec::as_slice)
    }

    fn application_known(&self, application: u16) -> bool {
        self.apps.listeners.contains_key(&application) || self.apps.ice.contains_key(&application)
    }

    /// The next AppAttach request we answered, with our credentials in the answer: the
    /// driver runs the controlled half of ICE towards the requester's candidates.
    pub fn poll_app_attach_answered(&mut self) -> Option<AppAttachAnswered> {
        self.apps.answered.pop_front()
    }

    /// Fresh ICE credentials: 8 ice-chars of ufrag, 24 of password (RFC 8445 5.3), or the
    /// configured fixed ones (tests).
    fn fresh_ice_credentials(&mut self) -> IceCredentials {
        if let Some(c) = self.cfg.ice_credentials.clone() {
            return c;
        }
        const ICE_CHARS: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut pick = |n: usize| -> Vec<u8> {
            (0..n)
                .filter_map(|_| ICE_CHARS.get(self.rng.random_range(0..ICE_CHARS.len())))
                .copied()
                .collect()
        };
        (pick(8), pick(24))
    }

    /// Sends an AppAttachReq for `application` to the peer with Node-ID `peer`, offering the
    /// candidates registered for that application (none if it is not registered: we only
    /// dial). Completion: [`super::Event::Completed`] with [`Outcome::AppAttached`] carrying
    /// the peer's answer; the answer is accepted only when signed by `peer` itself.
    #[must_use = "the RequestId identifies the completion event"]
    pub fn app_attach(&mut self, now: Time, peer: NodeId, application: u16) -> RequestId {
        self.app_attach_ice(now, peer, application).0
    }

    /// As [`Node::app_attach`], also returning our ICE credentials in the request (the
    /// driver verifies the peer's checks with them and sends its own with the answer's).
    #[must_use = "the RequestId identifies the completion event"]
    pub fn app_attach_ice(
        &mut self,
        now: Time,
        peer: NodeId,
        application: u16,
    ) -> (RequestId, IceCredentials) {
        let req = self.new_request();
        // We dial (RFC 4145 "active"); the answerer's listener is "passive".
        let body = self.app_attach_body(application, b"active");
        let creds = body.credentials();
        let bytes = body.to_bytes().unwrap_or_default();
        self.send_raw_request(
            now,
            vec![Dest::Node(peer)],
            APP_ATTACH_REQ,
            &bytes,
            Purpose::App(req),
        );
        (req, creds)
    }

    fn app_attach_body(&mut self, application: u16, role: &[u8]) -> AppAttachReqAns {
        let (ufrag, password) = self.fresh_ice_credentials();
        let mut candidates: Vec<IceCandidate> = self
            .apps
            .listeners
            .get(&application)
            .map(|v| v.iter().copied().map(host_candidate).collect())
            .unwrap_or_default();
        if let Some(ice) = self.apps.ice.get(&application) {
            candidates.extend(ice.iter().cloned());
        }
        AppAttachReqAns {
            ufrag: Opaque(ufrag),
            password: Opaque(password),
            application,
            role: Opaque(role.to_vec()),
            candidates,
        }
    }

    /// Answers an AppAttachReq body: `(code, body)` of an AppAttachAns or an Error.
    #[cfg(test)]
    pub(super) fn usage_app_attach(&mut self, body: &[u8]) -> (u16, Vec<u8>) {
        self.usage_app_attach_from(NodeId::INVALID, body)
    }

    /// As [`Node::usage_app_attach`] for a request signed by `sender`: an answered request
    /// is kept for [`Node::poll_app_attach_answered`].
    pub(super) fn usage_app_attach_from(&mut self, sender: NodeId, body: &[u8]) -> (u16, Vec<u8>) {
        let Ok(req) = AppAttachReqAns::from_bytes(body) else {
            return error(ErrorCode::INVALID_MESSAGE.0, "bad AppAttachReq");
        };
        if !self.application_known(req.application) {
            // RFC 6940 6.5.2.2: an unsupported Application-ID gets Error_Not_Found.
            return error(ErrorCode::NOT_FOUND.0, "application not supported");
        }
        let ans = self.app_attach_body(req.application, b"passive");
        match ans.to_bytes() {
            Ok(b) => {
                if self.apps.answered.len() >= MAX_ANSWERED {
                    self.apps.answered.pop_front();
                }
                self.apps.answered.push_back(AppAttachAnswered {
                    peer: sender,
                    local: ans.credentials(),
                    request: req,
                });
                (APP_ATTACH_ANS, b)
            }
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
