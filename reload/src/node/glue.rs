//! Conversions between the engine's message model ([`super::msg`]) and the wire codec
//! ([`crate::wire`]). Nothing here decides anything; it only maps fields.

use super::msg::{self, Body, ChordUpdate, Header, LeaveData, Security};
use crate::codec::{Codec, DecodeError, DecodeErrorKind, LenWidth, Opaque, Reader, write_list};
use crate::crypto::SignatureParts;
use crate::storage::{
    self, DataModel, DataValue, FetchKind, KindRegistry, Selector, StoreKind, StoredValue, ValueKey,
};
use crate::wire::{self, ResourceId};

/// Why a received message could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlueError {
    /// The bytes did not decode.
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
    /// Another overlay's message.
    #[error("wrong overlay")]
    WrongOverlay,
    /// A protocol version we do not speak.
    #[error("unsupported version {0}")]
    Version(u8),
    /// A fragment (we do not reassemble) or a cleared fixed fragment bit.
    #[error("fragmented message")]
    Fragment,
}

/// The model table the wire decoders need, from the overlay's Kind registry.
struct Models<'a>(&'a KindRegistry);

impl wire::KindModels for Models<'_> {
    fn model(&self, kind: wire::KindId) -> Option<wire::DataModel> {
        self.0.get(kind.0).map(|d| d.model)
    }
}

/// Decodes the forwarding header and returns it with the rest of the message; fragments
/// are refused.
pub fn decode_header(bytes: &[u8], overlay: u32) -> Result<(Header, &[u8]), GlueError> {
    let (h, rest) = decode_header_or_fragment(bytes, overlay)?;
    if !h.is_unfragmented() {
        return Err(GlueError::Fragment);
    }
    Ok((h, rest))
}

/// Decodes the forwarding header of a whole message or a fragment (RFC 6940 6.7) and returns
/// it with the rest of the bytes; a cleared fixed fragment bit is refused.
pub fn decode_header_or_fragment(bytes: &[u8], overlay: u32) -> Result<(Header, &[u8]), GlueError> {
    let mut r = Reader::new(bytes);
    let (h, length) = Header::read_with_length(&mut r)?;
    if length != bytes.len() {
        return Err(GlueError::Decode(DecodeError {
            kind: DecodeErrorKind::TrailingBytes,
            what: "ForwardingHeader.length",
            offset: length.min(bytes.len()),
        }));
    }
    if h.overlay != overlay {
        return Err(GlueError::WrongOverlay);
    }
    if h.version != wire::header::VERSION {
        return Err(GlueError::Version(h.version));
    }
    if !h.fragment_fixed_bit() {
        return Err(GlueError::Fragment);
    }
    Ok((h, r.rest()))
}

/// Encodes a header followed by `rest` (contents and security block). Lists too long for
/// their 16-bit length lose their via list rather than panicking; such a message cannot be
/// answered, but cannot occur with TTL <= 255 and 18-byte via entries.
#[must_use]
pub fn encode_message(overlay: u32, mut header: Header, rest: &[u8]) -> Vec<u8> {
    header.overlay = overlay;
    let mut out = Vec::with_capacity(64 + rest.len());
    if header
        .encode_with_payload_len(&mut out, rest.len())
        .is_err()
    {
        out.clear();
        header.via_list.clear();
        let _ = header.encode_with_payload_len(&mut out, rest.len());
    }
    out.extend_from_slice(rest);
    out
}

/// The message code at the start of the contents.
#[must_use]
pub fn peek_code(rest: &[u8]) -> Option<u16> {
    let b = rest.get(..2)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

/// A decoded payload: the exact contents bytes (for the signature), the code, the body bytes,
/// whether an unknown critical extension was present, and the security block.
#[derive(Debug)]
pub struct Parsed<'a> {
    /// MessageContents as received.
    pub contents: &'a [u8],
    /// Message code.
    pub code: u16,
    /// message_body.
    pub body: Vec<u8>,
    /// An extension we do not know was marked critical.
    pub critical_unknown_extension: bool,
    /// The contents of a Diagnostic_Ping extension (RFC 7851), if present.
    pub diagnostic_ping: Option<Vec<u8>>,
    /// Security block.
    pub security: Security,
}

fn signature_parts(s: &wire::Signature) -> SignatureParts {
    let (ih, ch, node_id_hash) = match &s.identity {
        wire::SignerIdentity::CertHash {
            hash_alg,
            certificate_hash,
        } => (hash_alg.0, certificate_hash.0.clone(), false),
        wire::SignerIdentity::CertHashNodeId {
            hash_alg,
            certificate_node_id_hash,
        } => (hash_alg.0, certificate_node_id_hash.0.clone(), true),
        _ => (0, Vec::new(), false),
    };
    SignatureParts {
        hash_alg: s.algorithm.hash.0,
        sig_alg: s.algorithm.signature.0,
        identity_hash_alg: ih,
        cert_hash: ch,
        value: s.value.0.clone(),
        node_id_hash,
    }
}

fn identity(ih: u8, ch: &[u8]) -> wire::SignerIdentity {
    identity_of(ih, ch, false)
}

/// The SignerIdentity for (hash algorithm, hash): `cert_hash`, or `cert_hash_node_id` when
/// `node_id_hash` (RFC 6940 6.3.4).
fn identity_of(ih: u8, ch: &[u8], node_id_hash: bool) -> wire::SignerIdentity {
    if ih == 0 && ch.is_empty() {
        wire::SignerIdentity::None
    } else if node_id_hash {
        wire::SignerIdentity::CertHashNodeId {
            hash_alg: wire::HashAlgorithm(ih),
            certificate_node_id_hash: Opaque(ch.to_vec()),
        }
    } else {
        wire::SignerIdentity::CertHash {
            hash_alg: wire::HashAlgorithm(ih),
            certificate_hash: Opaque(ch.to_vec()),
        }
    }
}

fn wire_signature(p: &SignatureParts) -> wire::Signature {
    wire::Signature {
        algorithm: wire::SignatureAndHashAlgorithm {
            hash: wire::HashAlgorithm(p.hash_alg),
            signature: wire::SignatureAlgorithm(p.sig_alg),
        },
        identity: identity_of(p.identity_hash_alg, &p.cert_hash, p.node_id_hash),
        value: Opaque(p.value.clone()),
    }
}

/// Decodes MessageContents and SecurityBlock.
pub fn decode_rest(rest: &[u8]) -> Result<Parsed<'_>, GlueError> {
    let mut r = Reader::new(rest);
    let contents = wire::MessageContents::read(&mut r)?;
    let used = rest.len() - r.remaining();
    let sec = wire::SecurityBlock::read(&mut r)?;
    r.finish("Message")?;
    let critical_unknown_extension = contents
        .extensions
        .iter()
        .any(|e| e.critical && !e.ext_type.is_known());
    let diagnostic_ping = contents
        .extensions
        .iter()
        .find(|e| e.ext_type == wire::ExtensionType::DIAGNOSTIC_PING)
        .map(|e| e.contents.0.clone());
    Ok(Parsed {
        contents: rest.get(..used).unwrap_or_default(),
        code: contents.code.0,
        body: contents.body.0,
        critical_unknown_extension,
        diagnostic_ping,
        security: Security {
            certs: sec
                .certificates
                .into_iter()
                .map(|c| c.certificate.0)
                .collect(),
            signature: signature_parts(&sec.signature),
        },
    })
}

/// Encodes MessageContents with no extensions.
#[must_use]
pub fn encode_contents(code: u16, body: &[u8]) -> Vec<u8> {
    let c = wire::MessageContents {
        code: wire::MessageCode(code),
        body: Opaque(body.to_vec()),
        extensions: Vec::new(),
    };
    c.to_bytes().unwrap_or_default()
}

/// Encodes MessageContents with one extension of type `ext_type`.
#[must_use]
pub fn encode_contents_with_extension(
    code: u16,
    body: &[u8],
    ext_type: wire::ExtensionType,
    critical: bool,
    ext: &[u8],
) -> Vec<u8> {
    let c = wire::MessageContents {
        code: wire::MessageCode(code),
        body: Opaque(body.to_vec()),
        extensions: vec![wire::MessageExtension {
            ext_type,
            critical,
            contents: Opaque(ext.to_vec()),
        }],
    };
    c.to_bytes().unwrap_or_default()
}

/// Encodes a SecurityBlock.
#[must_use]
pub fn encode_security(s: &Security) -> Vec<u8> {
    let b = wire::SecurityBlock {
        certificates: s
            .certs
            .iter()
            .map(|c| wire::GenericCertificate {
                cert_type: wire::CertificateType(0),
                certificate: Opaque(c.clone()),
            })
            .collect(),
        signature: wire_signature(&s.signature),
    };
    b.to_bytes().unwrap_or_default()
}

/// Encodes a `cert_hash` SignerIdentity (the tail of every signature input).
#[must_use]
pub fn encode_identity(ih: u8, ch: &[u8]) -> Vec<u8> {
    identity(ih, ch).to_bytes().unwrap_or_default()
}

/// Encodes the SignerIdentity of a received signature (`cert_hash` or `cert_hash_node_id`).
#[must_use]
pub fn encode_signer_identity(p: &SignatureParts) -> Vec<u8> {
    identity_of(p.identity_hash_alg, &p.cert_hash, p.node_id_hash)
        .to_bytes()
        .unwrap_or_default()
}

/// `KindId unknown_kinds<0..2^8-1>`, the error_info of Error_Unknown_Kind.
#[must_use]
pub fn encode_kind_list(kinds: &[u32]) -> Vec<u8> {
    let k: Vec<wire::KindId> = kinds.iter().map(|k| wire::KindId(*k)).collect();
    let mut out = Vec::new();
    let _ = write_list(&mut out, LenWidth::U8, "unknown_kinds", &k);
    out
}

/// `opaque value<0..2^32-1>` with its length (what Stat hashes).
#[must_use]
pub fn opaque32(v: &[u8]) -> Vec<u8> {
    let mut out = (v.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(v);
    out
}

fn wire_data_value(v: &DataValue) -> wire::store::DataValue {
    wire::store::DataValue {
        exists: v.exists,
        value: Opaque(v.value.clone()),
    }
}

fn stored_data_value(v: &StoredValue) -> wire::store::StoredDataValue {
    use wire::store::{ArrayEntry, DictionaryEntry, StoredDataValue as S};
    let dv = wire_data_value(&v.value);
    match &v.key {
        ValueKey::Single => S::Single(dv),
        ValueKey::Index(i) => S::Array(ArrayEntry {
            index: *i,
            value: dv,
        }),
        ValueKey::Key(k) => S::Dictionary(DictionaryEntry {
            key: Opaque(k.clone()),
            value: dv,
        }),
    }
}

fn wire_stored_data(v: &StoredValue) -> wire::store::StoredData {
    wire::store::StoredData {
        storage_time: v.storage_time,
        lifetime: v.lifetime,
        value: stored_data_value(v),
        signature: wire_signature(&v.signature),
    }
}

fn engine_value(d: &wire::store::StoredData, certs: &[Vec<u8>]) -> StoredValue {
    use wire::store::StoredDataValue as S;
    let (key, dv) = match &d.value {
        S::Single(v) => (ValueKey::Single, v),
        S::Array(e) => (ValueKey::Index(e.index), &e.value),
        S::Dictionary(e) => (ValueKey::Key(e.key.0.clone()), &e.value),
    };
    StoredValue {
        key,
        storage_time: d.storage_time,
        lifetime: d.lifetime,
        value: DataValue {
            exists: dv.exists,
            value: dv.value.0.clone(),
        },
        signature: signature_parts(&d.signature),
        certs: certs.to_vec(),
    }
}

/// StoredData signature input (RFC 6940 7.1), computed by the codec.
#[must_use]
pub fn stored_data_signature_input(resource: &ResourceId, kind: u32, v: &StoredValue) -> Vec<u8> {
    wire::store::stored_data_signature_input(
        resource,
        wire::KindId(kind),
        v.storage_time,
        &stored_data_value(v),
        &identity_of(
            v.signature.identity_hash_alg,
            &v.signature.cert_hash,
            v.signature.node_id_hash,
        ),
    )
    .unwrap_or_default()
}

fn wire_selector(s: &Selector) -> wire::fetch::ModelSpecifier {
    use wire::fetch::{ArrayRange, ModelSpecifier as M};
    match s {
        Selector::Single => M::Single,
        Selector::Array(r) => M::Array(
            r.iter()
                .map(|(first, last)| ArrayRange {
                    first: *first,
                    last: *last,
                })
                .collect(),
        ),
        Selector::Dictionary(k) => M::Dictionary(k.iter().map(|k| Opaque(k.clone())).collect()),
    }
}

fn engine_selector(m: &wire::fetch::ModelSpecifier) -> Option<Selector> {
    use wire::fetch::ModelSpecifier as M;
    Some(match m {
        M::Single => Selector::Single,
        M::Array(r) => Selector::Array(r.iter().map(|a| (a.first, a.last)).collect()),
        M::Dictionary(k) => Selector::Dictionary(k.iter().map(|k| k.0.clone()).collect()),
        M::Opaque(_) => return None,
    })
}

fn specifiers(v: &[(u32, u64, Selector)]) -> Vec<wire::fetch::StoredDataSpecifier> {
    v.iter()
        .map(|(k, g, s)| wire::fetch::StoredDataSpecifier {
            kind: wire::KindId(*k),
            generation: *g,
            model_specifier: wire_selector(s),
        })
        .collect()
}

fn chord_update(u: &ChordUpdate) -> wire::ChordUpdate {
    use wire::topology::ChordUpdateData as D;
    match u {
        ChordUpdate::PeerReady { uptime } => wire::ChordUpdate {
            uptime: *uptime,
            data: D::PeerReady,
        },
        ChordUpdate::Neighbors {
            uptime,
            predecessors,
            successors,
        } => wire::ChordUpdate {
            uptime: *uptime,
            data: D::Neighbors {
                predecessors: predecessors.clone(),
                successors: successors.clone(),
            },
        },
        ChordUpdate::Full {
            uptime,
            predecessors,
            successors,
            fingers,
        } => wire::ChordUpdate {
            uptime: *uptime,
            data: D::Full {
                predecessors: predecessors.clone(),
                successors: successors.clone(),
                fingers: fingers.clone(),
            },
        },
    }
}

fn attach(a: &msg::Attach) -> wire::AttachReqAns {
    wire::AttachReqAns {
        ufrag: Opaque(a.ufrag.clone()),
        password: Opaque(a.password.clone()),
        role: Opaque(a.role.clone()),
        candidates: a
            .candidates
            .iter()
            .map(super::app_attach::ice_candidate)
            .collect(),
        send_update: a.send_update,
    }
}

/// Encodes an engine body as (message code, body bytes).
#[must_use]
pub fn encode_body(b: &Body) -> (u16, Vec<u8>) {
    use wire::Body as W;
    let w = match b {
        Body::AttachReq(a) => W::AttachReq(attach(a)),
        Body::AttachAns(a) => W::AttachAns(attach(a)),
        Body::JoinReq(n) => W::JoinReq(wire::JoinReq {
            joining_peer_id: *n,
            overlay_specific_data: Opaque::default(),
        }),
        Body::JoinAns => W::JoinAns(wire::JoinAns {
            overlay_specific_data: Opaque::default(),
        }),
        Body::LeaveReq(n, d) => {
            let data = match d {
                LeaveData::FromSucc(v) => wire::topology::ChordLeaveData::FromSucc(v.clone()),
                LeaveData::FromPred(v) => wire::topology::ChordLeaveData::FromPred(v.clone()),
            };
            match wire::LeaveReq::chord(*n, &data) {
                Ok(l) => W::LeaveReq(l),
                Err(_) => W::LeaveReq(wire::LeaveReq {
                    leaving_peer_id: *n,
                    overlay_specific_data: Opaque::default(),
                }),
            }
        }
        Body::LeaveAns => W::LeaveAns(Opaque::default()),
        Body::UpdateReq(u) => W::UpdateReq(chord_update(u)),
        Body::UpdateAns => W::UpdateAns(Opaque::default()),
        Body::RouteQueryReq {
            send_update,
            destination,
        } => W::RouteQueryReq(wire::RouteQueryReq {
            send_update: *send_update,
            destination: destination.clone(),
            overlay_specific_data: Opaque::default(),
        }),
        Body::RouteQueryAns(n) => W::RouteQueryAns(wire::ChordRouteQueryAns { next_peer: *n }),
        Body::ProbeReq(t) => W::ProbeReq(wire::ProbeReq {
            requested_info: t.clone(),
        }),
        Body::ProbeAns(i) => W::ProbeAns(wire::ProbeAns {
            probe_info: i.clone(),
        }),
        Body::PingReq => W::PingReq(wire::PingReq {
            padding: Opaque::default(),
        }),
        Body::PingAns { response_id, time } => W::PingAns(wire::PingAns {
            response_id: *response_id,
            time: *time,
        }),
        Body::StoreReq {
            resource,
            replica_number,
            kinds,
        } => W::StoreReq(wire::StoreReq {
            resource: resource.clone(),
            replica_number: *replica_number,
            kind_data: kinds
                .iter()
                .map(|k| wire::store::StoreKindData {
                    kind: wire::KindId(k.kind),
                    generation_counter: k.generation,
                    values: wire::store::KindValues::Decoded(
                        k.values.iter().map(wire_stored_data).collect(),
                    ),
                })
                .collect(),
        }),
        Body::StoreAns(v) => W::StoreAns(wire::StoreAns {
            kind_responses: v
                .iter()
                .map(|(k, g, r)| wire::store::StoreKindResponse {
                    kind: wire::KindId(*k),
                    generation_counter: *g,
                    replicas: r.clone(),
                })
                .collect(),
        }),
        Body::FetchReq {
            resource,
            specifiers: s,
        } => W::FetchReq(wire::FetchReq {
            resource: resource.clone(),
            specifiers: specifiers(s),
        }),
        Body::StatReq {
            resource,
            specifiers: s,
        } => W::StatReq(wire::FetchReq {
            resource: resource.clone(),
            specifiers: specifiers(s),
        }),
        Body::FetchAns(kinds) => W::FetchAns(wire::FetchAns {
            kind_responses: kinds
                .iter()
                .map(|k| wire::fetch::FetchKindResponse {
                    kind: wire::KindId(k.kind),
                    generation: k.generation,
                    values: wire::store::KindValues::Decoded(
                        k.values.iter().map(wire_stored_data).collect(),
                    ),
                })
                .collect(),
        }),
        Body::StatAns(kinds) => W::StatAns(wire::StatAns {
            kind_responses: kinds
                .iter()
                .map(|k| wire::stat::StatKindResponse {
                    kind: wire::KindId(k.kind),
                    generation: k.generation,
                    values: wire::stat::KindMetaValues::Decoded(
                        k.values
                            .iter()
                            .map(|v| {
                                let md = wire::stat::MetaData {
                                    exists: v.exists,
                                    value_length: v.value_length,
                                    hash_algorithm: wire::HashAlgorithm(v.hash_alg),
                                    hash_value: Opaque(v.hash.clone()),
                                };
                                wire::stat::StoredMetaData {
                                    storage_time: v.storage_time,
                                    lifetime: v.lifetime,
                                    metadata: match &v.key {
                                        ValueKey::Single => wire::stat::MetaDataValue::Single(md),
                                        ValueKey::Index(i) => wire::stat::MetaDataValue::Array {
                                            index: *i,
                                            value: md,
                                        },
                                        ValueKey::Key(k) => wire::stat::MetaDataValue::Dictionary {
                                            key: Opaque(k.clone()),
                                            value: md,
                                        },
                                    },
                                }
                            })
                            .collect(),
                    ),
                })
                .collect(),
        }),
        Body::FindReq { resource, kinds } => W::FindReq(wire::FindReq {
            resource: resource.clone(),
            kinds: kinds.iter().map(|k| wire::KindId(*k)).collect(),
        }),
        Body::FindAns(v) => W::FindAns(wire::FindAns {
            results: v
                .iter()
                .map(|(k, r)| wire::find::FindKindData {
                    kind: wire::KindId(*k),
                    closest: r.clone(),
                })
                .collect(),
        }),
        Body::Error { code, info } => W::Error(wire::ErrorResponse {
            error_code: wire::ErrorCode(*code),
            error_info: Opaque(info.clone()),
        }),
    };
    (w.code().0, w.to_bytes().unwrap_or_default())
}

fn invalid(what: &'static str) -> GlueError {
    GlueError::Decode(DecodeError {
        kind: DecodeErrorKind::InvalidValue,
        what,
        offset: 0,
    })
}

fn engine_values(v: &wire::store::KindValues, certs: &[Vec<u8>]) -> Vec<StoredValue> {
    v.decoded()
        .map(|d| d.iter().map(|x| engine_value(x, certs)).collect())
        .unwrap_or_default()
}

fn engine_specs(
    s: &[wire::fetch::StoredDataSpecifier],
) -> Result<Vec<(u32, u64, Selector)>, GlueError> {
    s.iter()
        .map(|x| {
            engine_selector(&x.model_specifier)
                .map(|sel| (x.kind.0, x.generation, sel))
                // A Kind whose model we do not know: keep it so the engine answers
                // Error_Unknown_Kind.
                .or(Some((x.kind.0, x.generation, Selector::Single)))
                .ok_or_else(|| invalid("StoredDataSpecifier"))
        })
        .collect()
}

/// Decodes a body of `code`. `certs` (from the message's SecurityBlock) are attached to each
/// StoredData so its signature can be checked.
pub fn decode_body(
    code: u16,
    body: &[u8],
    registry: &KindRegistry,
    certs: &[Vec<u8>],
) -> Result<Body, GlueError> {
    use wire::Body as W;
    let w = W::decode(wire::MessageCode(code), body, &Models(registry))?;
    Ok(match w {
        W::AttachReq(a) | W::AttachAns(a) => {
            let e = msg::Attach {
                ufrag: a.ufrag.0,
                password: a.password.0,
                role: a.role.0,
                candidates: a
                    .candidates
                    .iter()
                    .filter_map(|c| {
                        Some(msg::Candidate {
                            addr: c.addr_port.socket_addr()?,
                            link: c.overlay_link,
                            cand_type: c.cand_type,
                            related: c.rel_addr_port.as_ref().and_then(|r| r.socket_addr()),
                            priority: c.priority,
                            foundation: c.foundation.0.clone(),
                        })
                    })
                    .collect(),
                send_update: a.send_update,
            };
            if code == msg::code::ATTACH_REQ {
                Body::AttachReq(e)
            } else {
                Body::AttachAns(e)
            }
        }
        W::JoinReq(j) => Body::JoinReq(j.joining_peer_id),
        W::JoinAns(_) => Body::JoinAns,
        W::LeaveReq(l) => {
            let d = match l.chord_data()? {
                wire::topology::ChordLeaveData::FromSucc(v) => LeaveData::FromSucc(v),
                wire::topology::ChordLeaveData::FromPred(v) => LeaveData::FromPred(v),
                _ => LeaveData::FromPred(Vec::new()),
            };
            Body::LeaveReq(l.leaving_peer_id, d)
        }
        W::LeaveAns(_) => Body::LeaveAns,
        W::UpdateReq(u) => {
            use wire::topology::ChordUpdateData as D;
            Body::UpdateReq(match u.data {
                D::PeerReady => ChordUpdate::PeerReady { uptime: u.uptime },
                D::Neighbors {
                    predecessors,
                    successors,
                } => ChordUpdate::Neighbors {
                    uptime: u.uptime,
                    predecessors,
                    successors,
                },
                D::Full {
                    predecessors,
                    successors,
                    fingers,
                } => ChordUpdate::Full {
                    uptime: u.uptime,
                    predecessors,
                    successors,
                    fingers,
                },
                D::Unknown { .. } => return Err(invalid("ChordUpdate.type")),
            })
        }
        W::UpdateAns(_) => Body::UpdateAns,
        W::RouteQueryReq(q) => Body::RouteQueryReq {
            send_update: q.send_update,
            destination: q.destination,
        },
        W::RouteQueryAns(a) => Body::RouteQueryAns(a.next_peer),
        W::ProbeReq(p) => Body::ProbeReq(p.requested_info),
        W::ProbeAns(p) => Body::ProbeAns(p.probe_info),
        W::PingReq(_) => Body::PingReq,
        W::PingAns(p) => Body::PingAns {
            response_id: p.response_id,
            time: p.time,
        },
        W::StoreReq(s) => Body::StoreReq {
            resource: s.resource,
            replica_number: s.replica_number,
            kinds: s
                .kind_data
                .iter()
                .map(|k| StoreKind {
                    kind: k.kind.0,
                    generation: k.generation_counter,
                    values: engine_values(&k.values, certs),
                })
                .collect(),
        },
        W::StoreAns(s) => Body::StoreAns(
            s.kind_responses
                .into_iter()
                .map(|k| (k.kind.0, k.generation_counter, k.replicas))
                .collect(),
        ),
        W::FetchReq(f) => Body::FetchReq {
            specifiers: engine_specs(&f.specifiers)?,
            resource: f.resource,
        },
        W::StatReq(f) => Body::StatReq {
            specifiers: engine_specs(&f.specifiers)?,
            resource: f.resource,
        },
        W::FetchAns(f) => Body::FetchAns(
            f.kind_responses
                .iter()
                .map(|k| FetchKind {
                    kind: k.kind.0,
                    generation: k.generation,
                    values: engine_values(&k.values, certs),
                })
                .collect(),
        ),
        W::StatAns(s) => Body::StatAns(
            s.kind_responses
                .into_iter()
                .map(|k| msg::StatKind {
                    kind: k.kind.0,
                    generation: k.generation,
                    values: match k.values {
                        wire::stat::KindMetaValues::Decoded(v) => v
                            .into_iter()
                            .map(|m| {
                                use wire::stat::MetaDataValue as M;
                                let (key, md) = match m.metadata {
                                    M::Single(md) => (ValueKey::Single, md),
                                    M::Array { index, value } => (ValueKey::Index(index), value),
                                    M::Dictionary { key, value } => (ValueKey::Key(key.0), value),
                                };
                                msg::StatValue {
                                    key,
                                    value_length: md.value_length,
                                    storage_time: m.storage_time,
                                    lifetime: m.lifetime,
                                    exists: md.exists,
                                    hash_alg: md.hash_algorithm.0,
                                    hash: md.hash_value.0,
                                }
                            })
                            .collect(),
                        wire::stat::KindMetaValues::Opaque(_) => Vec::new(),
                    },
                })
                .collect(),
        ),
        W::FindReq(f) => Body::FindReq {
            resource: f.resource,
            kinds: f.kinds.iter().map(|k| k.0).collect(),
        },
        W::FindAns(f) => Body::FindAns(
            f.results
                .into_iter()
                .map(|r| (r.kind.0, r.closest))
                .collect(),
        ),
        W::Error(e) => Body::Error {
            code: e.error_code.0,
            info: e.error_info.0,
        },
        _ => return Err(invalid("message_code")),
    })
}

/// The data model of a Kind, re-exported for callers that build values.
#[must_use]
pub fn model_of(registry: &KindRegistry, kind: u32) -> Option<DataModel> {
    registry.get(kind).map(|d| d.model)
}

#[allow(unused_imports)]
use storage as _;
