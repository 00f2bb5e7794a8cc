//! Typed message bodies: [`Body`] decodes `MessageContents.message_body` by message code.
//!
//! Request and answer codes pick the method structure; 0xffff is an [`ErrorResponse`]; any
//! other code (unknown methods, the experimental codes) keeps the raw bytes. The
//! Update and RouteQuery bodies are decoded as CHORD-RELOAD's (the only topology p2psip runs).
//! Answers the RFC defines as empty (Leave, Update, ConfigUpdate) keep whatever bytes came.

use crate::codec::{Codec, DecodeError, EncodeError, Opaque, Reader};
use crate::wire::{
    AppAttachReqAns, AttachReqAns, ChordRouteQueryAns, ChordUpdate, ConfigUpdateReq, ErrorResponse,
    FetchAns, FetchReq, FindAns, FindReq, JoinAns, JoinReq, KindModels, LeaveReq, MessageCode,
    MessageContents, PathTrackAns, PathTrackReq, PingAns, PingReq, ProbeAns, ProbeReq,
    RouteQueryReq, StatAns, StatReq, StoreAns, StoreReq,
};
use serde::Serialize;

/// A method body, typed by message code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs)] // each variant is named after its message code and structure
pub enum Body {
    ProbeReq(ProbeReq),
    ProbeAns(ProbeAns),
    AttachReq(AttachReqAns),
    AttachAns(AttachReqAns),
    StoreReq(StoreReq),
    StoreAns(StoreAns),
    FetchReq(FetchReq),
    FetchAns(FetchAns),
    FindReq(FindReq),
    FindAns(FindAns),
    JoinReq(JoinReq),
    JoinAns(JoinAns),
    LeaveReq(LeaveReq),
    /// Empty for RFC 6940; any bytes are kept.
    LeaveAns(Opaque),
    /// CHORD-RELOAD's Update.
    UpdateReq(ChordUpdate),
    /// Empty for CHORD-RELOAD; any bytes are kept.
    UpdateAns(Opaque),
    RouteQueryReq(RouteQueryReq),
    /// CHORD-RELOAD's RouteQuery answer.
    RouteQueryAns(ChordRouteQueryAns),
    PingReq(PingReq),
    PingAns(PingAns),
    StatReq(StatReq),
    StatAns(StatAns),
    AppAttachReq(AppAttachReqAns),
    AppAttachAns(AppAttachReqAns),
    ConfigUpdateReq(ConfigUpdateReq),
    /// Empty for RFC 6940; any bytes are kept.
    ConfigUpdateAns(Opaque),
    /// RFC 7851 PathTrack request (39).
    PathTrackReq(PathTrackReq),
    /// RFC 7851 PathTrack answer (40).
    PathTrackAns(PathTrackAns),
    Error(ErrorResponse),
    /// A code without a typed body here, with its raw bytes.
    Unknown {
        code: MessageCode,
        body: Opaque,
    },
}

impl Body {
    /// The message code this body goes with.
    pub fn code(&self) -> MessageCode {
        use MessageCode as C;
        match self {
            Body::ProbeReq(_) => C::PROBE_REQ,
            Body::ProbeAns(_) => C::PROBE_ANS,
            Body::AttachReq(_) => C::ATTACH_REQ,
            Body::AttachAns(_) => C::ATTACH_ANS,
            Body::StoreReq(_) => C::STORE_REQ,
            Body::StoreAns(_) => C::STORE_ANS,
            Body::FetchReq(_) => C::FETCH_REQ,
            Body::FetchAns(_) => C::FETCH_ANS,
            Body::FindReq(_) => C::FIND_REQ,
            Body::FindAns(_) => C::FIND_ANS,
            Body::JoinReq(_) => C::JOIN_REQ,
            Body::JoinAns(_) => C::JOIN_ANS,
            Body::LeaveReq(_) => C::LEAVE_REQ,
            Body::LeaveAns(_) => C::LEAVE_ANS,
            Body::UpdateReq(_) => C::UPDATE_REQ,
            Body::UpdateAns(_) => C::UPDATE_ANS,
            Body::RouteQueryReq(_) => C::ROUTE_QUERY_REQ,
            Body::RouteQueryAns(_) => C::ROUTE_QUERY_ANS,
            Body::PingReq(_) => C::PING_REQ,
            Body::PingAns(_) => C::PING_ANS,
            Body::StatReq(_) => C::STAT_REQ,
            Body::StatAns(_) => C::STAT_ANS,
            Body::AppAttachReq(_) => C::APP_ATTACH_REQ,
            Body::AppAttachAns(_) => C::APP_ATTACH_ANS,
            Body::ConfigUpdateReq(_) => C::CONFIG_UPDATE_REQ,
            Body::ConfigUpdateAns(_) => C::CONFIG_UPDATE_ANS,
            Body::PathTrackReq(_) => C::PATH_TRACK_REQ,
            Body::PathTrackAns(_) => C::PATH_TRACK_ANS,
            Body::Error(_) => C::ERROR,
            Body::Unknown { code, .. } => *code,
        }
    }

    /// Appends the body bytes (without the `message_body` length prefix).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Body::ProbeReq(b) => b.encode(out),
            Body::ProbeAns(b) => b.encode(out),
            Body::AttachReq(b) | Body::AttachAns(b) => b.encode(out),
            Body::StoreReq(b) => b.encode(out),
            Body::StoreAns(b) => b.encode(out),
            Body::FetchReq(b) | Body::StatReq(b) => b.encode(out),
            Body::FetchAns(b) => b.encode(out),
            Body::FindReq(b) => b.encode(out),
            Body::FindAns(b) => b.encode(out),
            Body::JoinReq(b) => b.encode(out),
            Body::JoinAns(b) => b.encode(out),
            Body::LeaveReq(b) => b.encode(out),
            Body::UpdateReq(b) => b.encode(out),
            Body::RouteQueryReq(b) => b.encode(out),
            Body::RouteQueryAns(b) => b.encode(out),
            Body::PingReq(b) => b.encode(out),
            Body::PingAns(b) => b.encode(out),
            Body::StatAns(b) => b.encode(out),
            Body::AppAttachReq(b) | Body::AppAttachAns(b) => b.encode(out),
            Body::ConfigUpdateReq(b) => b.encode(out),
            Body::PathTrackReq(b) => b.encode(out),
            Body::PathTrackAns(b) => b.encode(out),
            Body::Error(b) => b.encode(out),
            Body::LeaveAns(b)
            | Body::UpdateAns(b)
            | Body::ConfigUpdateAns(b)
            | Body::Unknown { body: b, .. } => {
                out.extend_from_slice(b);
                Ok(())
            }
        }
    }

    /// The body bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::new();
        self.encode(&mut v)?;
        Ok(v)
    }

    /// Decodes `body` as the body of a message with `code`; the body must be used exactly.
    pub fn decode(
        code: MessageCode,
        body: &[u8],
        kinds: &dyn KindModels,
    ) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let b = Self::read_with(code, &mut r, kinds)?;
        r.finish("message_body")?;
        Ok(b)
    }

    /// Reads the body of a message with `code` from `r` (which should span the body).
    pub fn read_with(
        code: MessageCode,
        r: &mut Reader<'_>,
        kinds: &dyn KindModels,
    ) -> Result<Self, DecodeError> {
        use MessageCode as C;
        let raw = |r: &mut Reader<'_>| -> Result<Opaque, DecodeError> {
            Ok(Opaque(r.take(r.remaining(), "message_body")?.to_vec()))
        };
        Ok(match code {
            C::PROBE_REQ => Body::ProbeReq(ProbeReq::read(r)?),
            C::PROBE_ANS => Body::ProbeAns(ProbeAns::read(r)?),
            C::ATTACH_REQ => Body::AttachReq(AttachReqAns::read(r)?),
            C::ATTACH_ANS => Body::AttachAns(AttachReqAns::read(r)?),
            C::STORE_REQ => Body::StoreReq(StoreReq::read_with(r, kinds)?),
            C::STORE_ANS => Body::StoreAns(StoreAns::read(r)?),
            C::FETCH_REQ => Body::FetchReq(FetchReq::read_with(r, kinds)?),
            C::FETCH_ANS => Body::FetchAns(FetchAns::read_with(r, kinds)?),
            C::FIND_REQ => Body::FindReq(FindReq::read(r)?),
            C::FIND_ANS => Body::FindAns(FindAns::read(r)?),
            C::JOIN_REQ => Body::JoinReq(JoinReq::read(r)?),
            C::JOIN_ANS => Body::JoinAns(JoinAns::read(r)?),
            C::LEAVE_REQ => Body::LeaveReq(LeaveReq::read(r)?),
            C::LEAVE_ANS => Body::LeaveAns(raw(r)?),
            C::UPDATE_REQ => Body::UpdateReq(ChordUpdate::read(r)?),
            C::UPDATE_ANS => Body::UpdateAns(raw(r)?),
            C::ROUTE_QUERY_REQ => Body::RouteQueryReq(RouteQueryReq::read(r)?),
            C::ROUTE_QUERY_ANS => Body::RouteQueryAns(ChordRouteQueryAns::read(r)?),
            C::PING_REQ => Body::PingReq(PingReq::read(r)?),
            C::PING_ANS => Body::PingAns(PingAns::read(r)?),
            C::STAT_REQ => Body::StatReq(StatReq::read_with(r, kinds)?),
            C::STAT_ANS => Body::StatAns(StatAns::read_with(r, kinds)?),
            C::APP_ATTACH_REQ => Body::AppAttachReq(AppAttachReqAns::read(r)?),
            C::APP_ATTACH_ANS => Body::AppAttachAns(AppAttachReqAns::read(r)?),
            C::CONFIG_UPDATE_REQ => Body::ConfigUpdateReq(ConfigUpdateReq::read(r)?),
            C::CONFIG_UPDATE_ANS => Body::ConfigUpdateAns(raw(r)?),
            C::PATH_TRACK_REQ => Body::PathTrackReq(PathTrackReq::read(r)?),
            C::PATH_TRACK_ANS => Body::PathTrackAns(PathTrackAns::read(r)?),
            C::ERROR => Body::Error(ErrorResponse::read(r)?),
            _ => Body::Unknown {
                code,
                body: raw(r)?,
            },
        })
    }
}

impl MessageContents {
    /// Contents carrying `body`, with no extensions.
    pub fn from_body(body: &Body) -> Result<Self, EncodeError> {
        Ok(MessageContents {
            code: body.code(),
            body: Opaque(body.to_bytes()?),
            extensions: Vec::new(),
        })
    }

    /// The typed body, using `kinds` for model-dependent structures.
    pub fn decode_body(&self, kinds: &dyn KindModels) -> Result<Body, DecodeError> {
        Body::decode(self.code, &self.body, kinds)
    }
}
