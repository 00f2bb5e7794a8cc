//! One-line entry points for the fuzz targets in `reload/fuzz` (feature `fuzzing`).
//!
//! Each function runs one top-level decoder on arbitrary bytes. Decoding must never panic;
//! when it succeeds, encoding must succeed and give back exactly the input (the codec is
//! canonical), and decoding that again must give the same value. A violated invariant panics
//! on purpose: that is what the fuzzer looks for. Not for use on the production path.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use crate::codec::Codec;
use crate::wire::{
    Body, BuiltinKinds, DataModel, FramedMessage, Message, MessageCode, NoKinds, RawMessage,
    SipRegistration, StoredData, TurnServer, gruu_gr_param, parse_gruu_gr_param,
};
use std::fmt::Debug;

fn canonical<T: Codec + PartialEq + Debug>(data: &[u8]) {
    if let Ok(v) = T::from_bytes(data) {
        let b = v.to_bytes().expect("decoded value must encode"); // ok: fuzz checks report a failure by panicking
        assert_eq!(b, data, "re-encoding differs");
        assert_eq!(T::from_bytes(&b).expect("re-decode"), v); // ok: fuzz checks report a failure by panicking
    }
}

/// Whole message: decode, re-encode, type the body with and without Kind models.
pub fn message(data: &[u8]) {
    if let Ok((m, contents)) = Message::decode_with_contents(data) {
        let b = m.encode().expect("decoded message must encode"); // ok: fuzz checks report a failure by panicking
        assert_eq!(b, data, "re-encoding differs");
        assert_eq!(Message::decode(&b).expect("re-decode"), m); // ok: fuzz checks report a failure by panicking
        assert_eq!(m.contents.to_bytes().expect("contents"), contents); // ok: fuzz checks report a failure by panicking
        for kinds in [&BuiltinKinds as &dyn crate::wire::KindModels, &NoKinds] {
            if let Ok(body) = m.contents.decode_body(kinds) {
                assert_eq!(body.to_bytes().expect("body encodes"), &m.contents.body[..]); // ok: fuzz checks report a failure by panicking
            }
        }
        let _ = m.describe(&BuiltinKinds);
    }
}

/// Header-only decode as a forwarding peer does it.
pub fn raw_message(data: &[u8]) {
    if let Ok(m) = RawMessage::decode(data) {
        let b = m.encode().expect("decoded message must encode"); // ok: fuzz checks report a failure by panicking
        assert_eq!(b, data, "re-encoding differs");
    }
    if let Ok((m, used)) = RawMessage::decode_prefix(data) {
        assert_eq!(m.encode().expect("encode"), &data[..used]); // ok: fuzz checks report a failure by panicking
    }
}

/// A framing-layer frame.
pub fn framed_message(data: &[u8]) {
    canonical::<FramedMessage>(data);
}

/// A message body: the first two bytes pick the message code.
pub fn body(data: &[u8]) {
    let Some((code, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let code = MessageCode(u16::from_be_bytes(*code));
    if let Ok(b) = Body::decode(code, rest, &BuiltinKinds) {
        assert_eq!(b.code(), code);
        let bytes = b.to_bytes().expect("body encodes"); // ok: fuzz checks report a failure by panicking
        assert_eq!(bytes, rest, "re-encoding differs");
        assert_eq!(
            Body::decode(code, &bytes, &BuiltinKinds).expect("re-decode"), // ok: fuzz checks report a failure by panicking
            b
        );
    }
}

fn stored_data(data: &[u8], model: DataModel) {
    if let Ok(v) = StoredData::from_bytes(data, model) {
        let b = v.to_bytes().expect("encodes"); // ok: fuzz checks report a failure by panicking
        assert_eq!(b, data, "re-encoding differs");
        assert_eq!(StoredData::from_bytes(&b, model).expect("re-decode"), v); // ok: fuzz checks report a failure by panicking
        let _ = v.signature_input(&crate::wire::ResourceId(vec![1]), crate::wire::KindId(1));
    }
}

/// A StoredData of a SINGLE Kind.
pub fn stored_data_single(data: &[u8]) {
    stored_data(data, DataModel::Single);
}

/// A StoredData of an ARRAY Kind.
pub fn stored_data_array(data: &[u8]) {
    stored_data(data, DataModel::Array);
}

/// A StoredData of a DICTIONARY Kind.
pub fn stored_data_dictionary(data: &[u8]) {
    stored_data(data, DataModel::Dictionary);
}

/// A SIP-REGISTRATION value.
pub fn sip_registration(data: &[u8]) {
    canonical::<SipRegistration>(data);
}

/// A TURN-SERVICE value.
pub fn turn_server(data: &[u8]) {
    canonical::<TurnServer>(data);
}

/// A GRUU `gr` parameter.
pub fn gruu(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(list) = parse_gruu_gr_param(s)
    {
        let again = gruu_gr_param(&list).expect("encodes"); // ok: fuzz checks report a failure by panicking
        assert_eq!(parse_gruu_gr_param(&again).expect("re-parse"), list); // ok: fuzz checks report a failure by panicking
    }
}

/// Decodes, encodes and decodes again; the second decode must give the same value (for
/// decoders that accept more than one spelling of a value, so re-encoding may differ).
fn stable<T: Codec + PartialEq + Debug>(data: &[u8]) {
    if let Ok(v) = T::from_bytes(data) {
        let b = v.to_bytes().expect("decoded value must encode"); // ok: fuzz checks report a failure by panicking
        assert_eq!(T::from_bytes(&b).expect("re-decode"), v); // ok: fuzz checks report a failure by panicking
    }
}

/// RFC 7851 diagnostics and the RFC 7374 ReDiR record: the first byte picks the structure
/// (DiagnosticsRequest, DiagnosticsResponse with every DiagnosticInfo typed, PathTrackReq,
/// PathTrackAns, RedirServiceProvider).
pub fn diagnostics(data: &[u8]) {
    use crate::wire::{
        DiagnosticsRequest, DiagnosticsResponse, PathTrackAns, PathTrackReq, RedirServiceProvider,
    };
    let Some((which, rest)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => stable::<DiagnosticsRequest>(rest),
        1 => {
            stable::<DiagnosticsResponse>(rest);
            if let Ok(r) = DiagnosticsResponse::from_bytes(rest) {
                let _ = r.values();
            }
        }
        2 => stable::<PathTrackReq>(rest),
        3 => stable::<PathTrackAns>(rest),
        _ => canonical::<RedirServiceProvider>(rest),
    }
}
