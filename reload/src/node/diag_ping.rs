//! The Diagnostic_Ping extension (RFC 7851 section 5): a Ping whose MessageContents carry a
//! `DiagnosticsRequest` in a message extension of type Diagnostic_Ping (2); the destination
//! answers a PingAns carrying its `DiagnosticsResponse` in the same extension type.
//!
//! The extension type is 2 (RFC 7851 9.5). We send it non-critical (RFC 6940 6.3.3: a peer
//! that does not know a non-critical extension processes the message without it), so a peer
//! without RFC 7851 support still answers a plain Ping ([`Outcome::Pong`]) instead of
//! Error_Unknown_Extension; the requester tells the two answers apart. Whether RFC 7851
//! 4.2.1 asks for the critical bit could not be checked against the RFC text (see
//! docs/DEPLOY.md "RFC verification (7851, 7374, 7363)"); a receiver handles the extension
//! either way.

use super::msg::{Body, Dest, Header};
use super::{Node, Outcome, Pending, Purpose, RequestId, Time, Timer, glue, msg};
use crate::codec::Codec;
use crate::wire::{DiagnosticsRequest, DiagnosticsResponse, ErrorCode, ExtensionType, NodeId};
use rand::RngExt;

impl Node {
    /// Pings the node responsible for `dest` with the Diagnostic_Ping extension asking for
    /// `request`'s diagnostic kinds. Completion: [`super::Event::Completed`] with
    /// [`Outcome::DiagnosticPing`] (or [`Outcome::Pong`] from a peer that ignores it).
    #[must_use = "the RequestId identifies the completion event"]
    pub fn diagnostic_ping(
        &mut self,
        now: Time,
        dest: Vec<Dest>,
        request: &DiagnosticsRequest,
    ) -> RequestId {
        let req = self.new_request();
        let (code, body) = glue::encode_body(&Body::PingReq);
        let ext = request.to_bytes().unwrap_or_default();
        let contents = glue::encode_contents_with_extension(
            code,
            &body,
            ExtensionType::DIAGNOSTIC_PING,
            false,
            &ext,
        );
        let txid: u64 = self.rng.random();
        let rest = self.sign_contents(txid, contents, &[]);
        let target = match dest.last() {
            Some(Dest::Node(n)) if *n != NodeId::WILDCARD => Some(*n),
            _ => None,
        };
        let header = Header {
            overlay: self.overlay,
            configuration_sequence: self.cfg.config_sequence,
            ttl: self.cfg.initial_ttl,
            transaction_id: txid,
            destination_list: dest,
            ..Header::default()
        };
        let next = now.plus_ms(self.cfg.reliability_timer_ms);
        self.pending.insert(
            txid,
            Pending {
                purpose: Purpose::App(req),
                header: header.clone(),
                rest: rest.clone(),
                sends: 1,
                next,
                target,
                via_link: None,
            },
        );
        self.arm(next, Timer::Retransmit(txid));
        self.route(now, header, rest, None, None);
        req
    }

    /// Answers a Ping carrying a Diagnostic_Ping extension with `ext` (a DiagnosticsRequest):
    /// a PingAns with our DiagnosticsResponse, Error_Invalid_Message when it does not decode,
    /// Error_Message_Expired after its expiration time (RFC 7851 5.3, 9.4).
    pub(super) fn answer_diagnostic_ping(
        &mut self,
        now: Time,
        header: &Header,
        from: Option<NodeId>,
        ext: &[u8],
    ) {
        let Ok(req) = DiagnosticsRequest::from_bytes(ext) else {
            self.reply_error(
                now,
                header,
                from,
                msg::error_code::INVALID_MESSAGE,
                b"bad DiagnosticsRequest",
            );
            return;
        };
        if req.expiration != 0 && req.expiration < now.0 {
            self.reply_error(
                now,
                header,
                from,
                ErrorCode::MESSAGE_EXPIRED.0,
                b"Error_Message_Expired",
            );
            return;
        }
        let hops = self.cfg.initial_ttl.saturating_sub(header.ttl);
        let response = self.diagnostics_response(now, &req, hops);
        let (code, body) = glue::encode_body(&Body::PingAns {
            response_id: self.rng.random(),
            time: now.0,
        });
        let contents = glue::encode_contents_with_extension(
            code,
            &body,
            ExtensionType::DIAGNOSTIC_PING,
            false,
            &response.to_bytes().unwrap_or_default(),
        );
        self.send_answer_contents(now, header, from, contents, &[]);
    }

    /// The outcome of a PingAns carrying a Diagnostic_Ping extension.
    pub(super) fn diagnostic_ping_outcome(ext: &[u8]) -> Option<Outcome> {
        DiagnosticsResponse::from_bytes(ext)
            .ok()
            .map(Outcome::DiagnosticPing)
    }
}
