//! RFC 7851 diagnostics in the node: answering PathTrack (39/40) and the application API to
//! send one. Kept apart from `mod.rs` so the usages can evolve without touching the core
//! engine; `mod.rs` dispatches codes 39 and 40 here before its own body decoding.

use super::{Dest, Node, Outcome, Pending, Purpose, RequestId, Time, Timer, glue};
use crate::codec::Codec;
use crate::wire::{
    DiagnosticInfo, DiagnosticKindId, DiagnosticValue, DiagnosticsRequest, DiagnosticsResponse,
    ErrorCode, NodeId, PathTrackAns, PathTrackReq,
};
use rand::RngExt;

/// PathTrackReq message code (RFC 7851 9.3).
pub(super) const PATH_TRACK_REQ: u16 = 39;
/// PathTrackAns message code (RFC 7851 9.3).
pub(super) const PATH_TRACK_ANS: u16 = 40;

impl Node {
    /// Sends a PathTrack (RFC 7851 6.2) for `target` to `via` (the node that should answer:
    /// the first hop, then each `next_hop` in turn). Completion: [`super::Event::Completed`]
    /// with [`Outcome::PathTrack`].
    #[must_use = "the RequestId identifies the completion event"]
    pub fn path_track(
        &mut self,
        now: Time,
        via: Vec<Dest>,
        target: Dest,
        request: DiagnosticsRequest,
    ) -> RequestId {
        let req = self.new_request();
        let body = PathTrackReq {
            destination: target,
            request,
        };
        let bytes = body.to_bytes().unwrap_or_default();
        self.send_raw_request(now, via, PATH_TRACK_REQ, &bytes, Purpose::App(req));
        req
    }

    /// Asks the node at `dest` for diagnostics: a PathTrack whose target is that node, so
    /// the answer carries its [`DiagnosticsResponse`].
    #[must_use = "the RequestId identifies the completion event"]
    pub fn diagnostics(&mut self, now: Time, dest: Dest, request: DiagnosticsRequest) -> RequestId {
        self.path_track(now, vec![dest.clone()], dest, request)
    }

    pub(super) fn send_raw_request(
        &mut self,
        now: Time,
        dest: Vec<Dest>,
        code: u16,
        body: &[u8],
        purpose: Purpose,
    ) {
        let txid: u64 = self.rng.random();
        let contents = glue::encode_contents(code, body);
        let rest = self.sign_contents(txid, contents, &[]);
        let target = match dest.last() {
            Some(Dest::Node(n)) if *n != NodeId::WILDCARD => Some(*n),
            _ => None,
        };
        let header = super::Header {
            overlay: self.overlay,
            configuration_sequence: self.cfg.config_sequence,
            ttl: self.cfg.initial_ttl,
            transaction_id: txid,
            destination_list: dest,
            ..super::Header::default()
        };
        let next = now.plus_ms(self.cfg.reliability_timer_ms);
        self.pending.insert(
            txid,
            Pending {
                purpose,
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
    }

    /// Answers a PathTrackReq body: `(code, body)` of a PathTrackAns or an Error.
    pub(super) fn usage_path_track(
        &mut self,
        now: Time,
        header: &super::Header,
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let Ok(req) = PathTrackReq::from_bytes(body) else {
            return error(ErrorCode::INVALID_MESSAGE.0, "bad PathTrackReq");
        };
        if req.request.expiration != 0 && req.request.expiration < now.0 {
            return error(ErrorCode::MESSAGE_EXPIRED.0, "Error_Message_Expired");
        }
        let next_hop = match &req.destination {
            Dest::Node(n) if *n == self.me => Dest::Node(self.me),
            Dest::Node(n) => self.next_hop_towards(n.0),
            Dest::Resource(r) => match r.as_u128() {
                Some(k) => self.next_hop_towards(k),
                None => return error(ErrorCode::INVALID_MESSAGE.0, "bad destination"),
            },
            _ => return error(ErrorCode::INVALID_MESSAGE.0, "bad destination"),
        };
        let hops = self.cfg.initial_ttl.saturating_sub(header.ttl);
        let response = self.diagnostics_response(now, &req.request, hops);
        let ans = PathTrackAns { next_hop, response };
        match ans.to_bytes() {
            Ok(b) => (PATH_TRACK_ANS, b),
            Err(_) => error(ErrorCode::RESPONSE_TOO_LARGE.0, "diagnostics too large"),
        }
    }

    fn instance_counts(&self, now: Time) -> Vec<(crate::wire::KindId, u64)> {
        let mut counts: std::collections::BTreeMap<u32, u64> = Default::default();
        for r in self.storage.resources(|_| true) {
            for k in self.storage.export(now.0, &r) {
                *counts.entry(k.kind).or_default() += k.values.len() as u64;
            }
        }
        counts
            .into_iter()
            .map(|(k, n)| (crate::wire::KindId(k), n))
            .collect()
    }

    fn next_hop_towards(&self, k: u128) -> Dest {
        if self.table.is_responsible(k) {
            return Dest::Node(self.me);
        }
        Dest::Node(self.table.next_hop(k).unwrap_or(self.me))
    }

    /// This node's answer to `req`: the kinds asked for that it knows; the others (processing
    /// power, bandwidth, machine uptime, memory, EWMA rates, underlay hops, battery) are omitted
    /// since the engine cannot measure them (RFC 7851 5.3 lets a node leave out what it lacks).
    pub fn diagnostics_response(
        &self,
        now: Time,
        req: &DiagnosticsRequest,
        hop_counter: u8,
    ) -> DiagnosticsResponse {
        let mut info = Vec::new();
        for k in req.kinds() {
            let v = match k {
                DiagnosticKindId::STATUS_INFO => DiagnosticValue::StatusInfo(0),
                DiagnosticKindId::ROUTING_TABLE_SIZE => {
                    DiagnosticValue::RoutingTableSize(self.table.entries().count() as u32)
                }
                DiagnosticKindId::SOFTWARE_VERSION => DiagnosticValue::SoftwareVersion(format!(
                    "p2psip-reload/{}",
                    env!("CARGO_PKG_VERSION")
                )),
                DiagnosticKindId::APP_UPTIME => {
                    DiagnosticValue::AppUptime(now.0.saturating_sub(self.started.0) / 1000)
                }
                DiagnosticKindId::INSTANCES_STORED => {
                    DiagnosticValue::InstancesStored(self.instance_counts(now))
                }
                _ => continue,
            };
            if let Ok(i) = DiagnosticInfo::new(&v) {
                info.push(i);
            }
        }
        DiagnosticsResponse {
            expiration: req.expiration,
            timestamp_initiated: req.timestamp_initiated,
            timestamp_received: now.0,
            hop_counter,
            info,
        }
    }

    /// Turns a PathTrackAns body into the application outcome.
    pub(super) fn usage_path_track_answer(body: &[u8]) -> Option<Outcome> {
        PathTrackAns::from_bytes(body).ok().map(Outcome::PathTrack)
    }
}

fn error(code: u16, info: &str) -> (u16, Vec<u8>) {
    let e = crate::wire::ErrorResponse {
        error_code: ErrorCode(code),
        error_info: crate::codec::Opaque(info.as_bytes().to_vec()),
    };
    (0xffff, e.to_bytes().unwrap_or_default())
}
