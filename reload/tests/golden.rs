//! Golden vectors: (value, bytes) pairs whose hex was written by hand from the RFC 6940 /
//! RFC 7904 layouts (never produced by running the encoder). Each vector is checked both ways:
//! encode(value) == bytes and decode(bytes) == value.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reload::codec::{Codec, Opaque};
use reload::wire::*;
use std::fmt::Debug;

/// Hex with spaces and `|` separators allowed, for readability.
fn h(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    hex::decode(clean).unwrap()
}

fn check<T: Codec + PartialEq + Debug>(value: &T, hex: &str) {
    let bytes = h(hex);
    assert_eq!(
        hex::encode(value.to_bytes().unwrap()),
        hex::encode(&bytes),
        "encode of {value:?}"
    );
    assert_eq!(&T::from_bytes(&bytes).unwrap(), value, "decode of {hex}");
}

const NODE_A: &str = "00112233445566778899aabbccddeeff";

fn node_a() -> NodeId {
    NodeId::from_hex(NODE_A).unwrap()
}

#[test]
fn aor_hash_vectors() {
    // RELOAD-WIRE.md section 6 (RFC 7904 2: the resource name has no scheme).
    assert_eq!(
        ResourceId::hash(b"alice@example.com").to_string(),
        "fc2398a73dd54d6237c4fdb58fd7d753"
    );
    assert_eq!(
        ResourceId::hash(b"sip:alice@example.com").to_string(),
        "39825720921e2b51f78742820d87ef48"
    );
    assert_eq!(overlay_hash("example.com"), 0x65b0781f);
}

#[test]
fn destinations() {
    check(&Destination::Node(node_a()), &format!("01 10 {NODE_A}"));
    check(
        &Destination::Resource(ResourceId(vec![0xaa, 0xbb, 0xcc])),
        "02 04 03 aabbcc",
    );
    check(&Destination::OpaqueId(Opaque(vec![1, 2])), "03 03 02 0102");
    check(&Destination::Compressed(0x8123), "8123");
    check(
        &Destination::Unknown {
            dest_type: DestinationType(0x10),
            data: Opaque(vec![9]),
        },
        "10 01 09",
    );
    check(
        &Destination::Unknown {
            dest_type: DestinationType(0),
            data: Opaque(vec![]),
        },
        "00 00",
    );
}

#[test]
fn destination_length_must_match_contents() {
    // node with 15 bytes
    assert!(Destination::from_bytes(&h("01 0f 00112233445566778899aabbccddee")).is_err());
    // resource whose inner length disagrees with the outer one
    assert!(Destination::from_bytes(&h("02 04 02 aabbcc")).is_err());
    // truncated compressed form
    assert!(Destination::from_bytes(&h("81")).is_err());
}

#[test]
fn forwarding_option_and_extension() {
    check(
        &ForwardingOption {
            option_type: ForwardingOptionType(1),
            flags: ForwardingOption::FORWARD_CRITICAL | ForwardingOption::RESPONSE_COPY,
            data: Opaque(vec![0xde, 0xad]),
        },
        "01 05 0002 dead",
    );
    check(
        &ForwardingOption {
            option_type: ForwardingOptionType(0x99),
            flags: 0,
            data: Opaque(vec![]),
        },
        "99 00 0000",
    );
    check(
        &MessageExtension {
            ext_type: ExtensionType::DIAGNOSTIC_PING,
            critical: true,
            contents: Opaque(vec![7]),
        },
        "0002 01 00000001 07",
    );
    // Boolean other than 0/1 is invalid
    assert!(MessageExtension::from_bytes(&h("0002 02 00000000")).is_err());
}

#[test]
fn message_contents() {
    check(
        &MessageContents {
            code: MessageCode::PING_REQ,
            body: Opaque(h("0000")),
            extensions: vec![],
        },
        "0017 00000002 0000 00000000",
    );
    check(
        &MessageContents {
            code: MessageCode(0x4242),
            body: Opaque(vec![]),
            extensions: vec![MessageExtension {
                ext_type: ExtensionType(0x1234),
                critical: false,
                contents: Opaque(vec![0xaa]),
            }],
        },
        "4242 00000000 00000008 1234 00 00000001 aa",
    );
}

#[test]
fn message_codes() {
    assert_eq!(MessageCode::PATH_TRACK_REQ.0, 39);
    assert_eq!(MessageCode::PATH_TRACK_ANS.0, 40);
    assert_eq!(MessageCode::PING_REQ.answer(), Some(MessageCode::PING_ANS));
    assert_eq!(
        MessageCode::STORE_ANS.request(),
        Some(MessageCode::STORE_REQ)
    );
    assert!(MessageCode::ERROR.is_error());
    assert!(!MessageCode::ERROR.is_request());
    assert_eq!(format!("{:?}", MessageCode::PING_REQ), "PING_REQ(23)");
    assert_eq!(format!("{:?}", MessageCode(0x77)), "MessageCode(0x0077)");
}

#[test]
fn error_response() {
    check(
        &ErrorResponse::new(ErrorCode::NOT_FOUND, "x"),
        "0003 0001 78",
    );
    let e = ErrorResponse::unknown_kinds(&[KindId(1), KindId(0x0102_0304)]).unwrap();
    check(&e, "000c 0009 08 00000001 01020304");
    assert_eq!(
        e.parse_unknown_kinds().unwrap(),
        vec![KindId(1), KindId(0x0102_0304)]
    );
    assert_eq!(ErrorCode::TTL_HOPS_EXCEEDED.0, 26);
    let current = StoreAns {
        kind_responses: vec![StoreKindResponse {
            kind: KindId(1),
            generation_counter: 9,
            replicas: vec![],
        }],
    };
    let e = ErrorResponse::generation_counter_too_low(&current).unwrap();
    check(&e, "0005 0010 000e 00000001 0000000000000009 0000");
    assert_eq!(e.parse_store_ans().unwrap(), current);
    check(
        &ErrorResponse {
            error_code: ErrorCode(0x8001),
            error_info: Opaque(vec![]),
        },
        "8001 0000",
    );
}

#[test]
fn security_structures() {
    check(
        &SignerIdentity::CertHash {
            hash_alg: HashAlgorithm::SHA256,
            certificate_hash: Opaque(vec![0xab, 0xcd]),
        },
        "01 0004 04 02 abcd",
    );
    check(
        &SignerIdentity::CertHashNodeId {
            hash_alg: HashAlgorithm::SHA1,
            certificate_node_id_hash: Opaque(vec![0xef]),
        },
        "02 0003 02 01 ef",
    );
    check(&SignerIdentity::None, "03 0000");
    check(
        &SignerIdentity::Unknown {
            identity_type: SignerIdentityType(9),
            identity: Opaque(vec![1, 2]),
        },
        "09 0002 0102",
    );
    // none with content is malformed
    assert!(SignerIdentity::from_bytes(&h("03 0001 00")).is_err());
    check(&Signature::none(), "0000 03 0000 0000");
    check(
        &Signature {
            algorithm: SignatureAndHashAlgorithm::ECDSA_SHA256,
            identity: SignerIdentity::None,
            value: Opaque(vec![0x30, 0x44]),
        },
        "0403 03 0000 0002 3044",
    );
    check(
        &GenericCertificate {
            cert_type: CertificateType::X509,
            certificate: Opaque(vec![0x30, 0x82, 0x01]),
        },
        "00 0003 308201",
    );
    check(
        &SecurityBlock {
            certificates: vec![GenericCertificate {
                cert_type: CertificateType::X509,
                certificate: Opaque(vec![0x30]),
            }],
            signature: Signature::none(),
        },
        "0004 00 0001 30 | 0000 03 0000 0000",
    );
}

/// The worked example of RELOAD-WIRE.md 1.4: a Ping request to one Node-ID in overlay
/// example.com, signed with RSA-2048/SHA-256 by a cert_hash identity, no certificates.
fn ping_example() -> (Message, Vec<u8>) {
    let cert_hash = vec![0xab; 32];
    let sig = vec![0x5a; 256];
    let msg = Message {
        header: ForwardingHeader {
            overlay: overlay_hash("example.com"),
            configuration_sequence: 1,
            version: 0x0a,
            ttl: 100,
            fragment: 0xc000_0000,
            transaction_id: 0x0102_0304_0506_0708,
            max_response_length: 0,
            via_list: vec![],
            destination_list: vec![Destination::Node(node_a())],
            options: vec![],
        },
        contents: MessageContents {
            code: MessageCode::PING_REQ,
            body: Opaque(h("0000")),
            extensions: vec![],
        },
        security: SecurityBlock {
            certificates: vec![],
            signature: Signature {
                algorithm: SignatureAndHashAlgorithm::RSA_SHA256,
                identity: SignerIdentity::CertHash {
                    hash_alg: HashAlgorithm::SHA256,
                    certificate_hash: Opaque(cert_hash),
                },
                value: Opaque(sig),
            },
        },
    };
    let hex = format!(
        "d2454c4f 65b0781f 0001 0a 64 c0000000 0000016f 0102030405060708 00000000 0000 0012 0000
         01 10 {NODE_A}
         0017 00000002 0000 00000000
         0000 0401 01 0022 04 20 {} 0100 {}",
        "ab".repeat(32),
        "5a".repeat(256)
    );
    (msg, h(&hex))
}

#[test]
fn worked_ping_example() {
    let (msg, bytes) = ping_example();
    assert_eq!(bytes.len(), 0x16f);
    assert_eq!(hex::encode(msg.encode().unwrap()), hex::encode(&bytes));
    let (decoded, contents) = Message::decode_with_contents(&bytes).unwrap();
    assert_eq!(decoded, msg);
    assert_eq!(contents, &h("0017 00000002 0000 00000000")[..]);
    let (typed, body) = Message::decode_typed(&bytes, &BuiltinKinds).unwrap();
    assert_eq!(typed, msg);
    assert_eq!(body, Body::PingReq(PingReq::default()));
    // a PingReq body claiming 3 bytes of padding but holding none: error at the body's offset
    let mut bad = bytes.clone();
    bad[56 + 6 + 1] = 3;
    let e = Message::decode_typed(&bad, &BuiltinKinds).unwrap_err();
    assert_eq!(e.offset, 56 + 6 + 2);
    let raw = RawMessage::decode(&bytes).unwrap();
    assert_eq!(raw.header, msg.header);
    assert_eq!(raw.payload.len(), 12 + 299);
    assert_eq!(raw.encode().unwrap(), bytes);
    let sec_start = 56 + 12;
    assert_eq!(bytes.len() - sec_start, 299);
}

#[test]
fn message_signature_input_layout() {
    let (msg, _) = ping_example();
    let input = msg.signature_input().unwrap();
    let expected = format!(
        "65b0781f 0102030405060708 | 0017 00000002 0000 00000000 | 01 0022 04 20 {}",
        "ab".repeat(32)
    );
    assert_eq!(hex::encode(input), hex::encode(h(&expected)));
}

#[test]
fn header_checks() {
    let (_, bytes) = ping_example();
    // wrong token
    let mut b = bytes.clone();
    b[0] = 0x52;
    let e = Message::decode(&b).unwrap_err();
    assert_eq!(e.offset, 0);
    // length larger than the buffer
    let mut b = bytes.clone();
    b[19] = 0x70;
    assert!(Message::decode(&b).is_err());
    // length smaller than the header lists
    let mut b = bytes.clone();
    b[16..20].copy_from_slice(&[0, 0, 0, 40]);
    let e = Message::decode(&b).unwrap_err();
    assert_eq!(e.offset, 16);
    // trailing bytes after `length`
    let mut b = bytes.clone();
    b.push(0);
    assert!(Message::decode(&b).is_err());
    // a stream of two messages splits at `length`
    let mut two = bytes.clone();
    two.extend_from_slice(&bytes);
    let (m, used) = RawMessage::decode_prefix(&two).unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(m.encode().unwrap(), bytes);
}

#[test]
fn header_with_via_and_options() {
    let header = ForwardingHeader {
        overlay: 0x01020304,
        configuration_sequence: 0xffff,
        version: 0x0a,
        ttl: 1,
        fragment: 0x8000_0100,
        transaction_id: 0xffee_ddcc_bbaa_9988,
        max_response_length: 0x1000,
        via_list: vec![Destination::Compressed(0x8001), Destination::Node(node_a())],
        destination_list: vec![Destination::Resource(ResourceId(vec![0x11]))],
        options: vec![ForwardingOption {
            option_type: ForwardingOptionType(0x80),
            flags: ForwardingOption::DESTINATION_CRITICAL,
            data: Opaque(vec![]),
        }],
    };
    let raw = RawMessage {
        header,
        payload: Opaque(vec![0xee; 3]),
    };
    let hex = format!(
        "d2454c4f 01020304 ffff 0a 01 80000100 00000045 ffeeddccbbaa9988 00001000 0014 0004 0004
         8001 0110{NODE_A} | 02 02 01 11 | 80 02 0000 | eeeeee"
    );
    let bytes = h(&hex);
    assert_eq!(bytes.len(), 0x45); // 38 + 20 + 4 + 4 + 3
    assert_eq!(hex::encode(raw.encode().unwrap()), hex::encode(&bytes));
    assert_eq!(RawMessage::decode(&bytes).unwrap(), raw);
    assert!(!raw.header.is_last_fragment());
    assert_eq!(raw.header.fragment_offset(), 0x100);
}

// ---------------------------------------------------------------------------------------
// Method bodies (RFC 6940 6.4-7.4, 10) and Kind values (RFC 6940 9, RFC 7904 3.2).

/// Checks a Body both ways against hand-written hex, with the builtin Kind models.
fn check_body(body: Body, hex: &str) {
    let bytes = h(hex);
    assert_eq!(
        hex::encode(body.to_bytes().unwrap()),
        hex::encode(&bytes),
        "encode of {body:?}"
    );
    assert_eq!(
        Body::decode(body.code(), &bytes, &BuiltinKinds).unwrap(),
        body,
        "decode of {hex}"
    );
}

fn node(b: u8) -> NodeId {
    NodeId(u128::from_be_bytes([b; 16]))
}

fn hx(b: u8) -> String {
    format!("{b:02x}").repeat(16)
}

#[test]
fn probe_bodies() {
    check_body(
        Body::ProbeReq(ProbeReq {
            requested_info: vec![ProbeInformationType::UPTIME, ProbeInformationType(9)],
        }),
        "02 03 09",
    );
    check_body(
        Body::ProbeAns(ProbeAns {
            probe_info: vec![
                ProbeInformation::ResponsibleSet(0x01020304),
                ProbeInformation::Uptime(60),
                ProbeInformation::Unknown {
                    info_type: ProbeInformationType(0x20),
                    value: Opaque(vec![0xff]),
                },
            ],
        }),
        "000f 01 04 01020304 | 03 04 0000003c | 20 01 ff",
    );
    // a known type with a length other than 4 is malformed
    assert!(ProbeInformation::from_bytes(&h("03 02 0000")).is_err());
}

fn host_candidate() -> IceCandidate {
    IceCandidate {
        addr_port: IpAddressPort::V4 {
            addr: [192, 0, 2, 1].into(),
            port: 6084,
        },
        overlay_link: OverlayLinkType::DTLS_UDP_SR,
        foundation: Opaque(b"f1".to_vec()),
        priority: 0x7e00_00ff,
        cand_type: CandType::HOST,
        rel_addr_port: None,
        extensions: vec![],
    }
}
// hand-written bytes of host_candidate()
const HOST_CAND: &str = "01 06 c0000201 17c4 | 01 | 02 6631 | 7e0000ff | 01 | 0000";

#[test]
fn addresses_and_candidates() {
    check(
        &IpAddressPort::V4 {
            addr: [10, 0, 0, 1].into(),
            port: 5060,
        },
        "01 06 0a000001 13c4",
    );
    check(
        &IpAddressPort::V6 {
            addr: "2001:db8::1".parse().unwrap(),
            port: 443,
        },
        "02 12 20010db8000000000000000000000001 01bb",
    );
    check(
        &IpAddressPort::Unknown {
            addr_type: AddressType(7),
            data: Opaque(vec![1, 2, 3]),
        },
        "07 03 010203",
    );
    assert!(IpAddressPort::from_bytes(&h("01 05 0a000001 13")).is_err());
    check(&host_candidate(), HOST_CAND);
    let srflx = IceCandidate {
        addr_port: IpAddressPort::V4 {
            addr: [198, 51, 100, 7].into(),
            port: 40000,
        },
        overlay_link: OverlayLinkType::DTLS_UDP_SR,
        foundation: Opaque(vec![]),
        priority: 1,
        cand_type: CandType::SRFLX,
        rel_addr_port: Some(IpAddressPort::V4 {
            addr: [192, 168, 1, 2].into(),
            port: 6084,
        }),
        extensions: vec![IceExtension {
            name: Opaque(b"a".to_vec()),
            value: Opaque(b"bc".to_vec()),
        }],
    };
    check(
        &srflx,
        "01 06 c6336407 9c40 | 01 | 00 | 00000001 | 02 | 01 06 c0a80102 17c4 | 0007 0001 61 0002 6263",
    );
    // an unknown candidate type cannot be skipped
    assert!(IceCandidate::from_bytes(&h("01 06 c0000201 17c4 01 00 00000001 09 0000")).is_err());
}

#[test]
fn attach_and_app_attach() {
    let a = AttachReqAns {
        ufrag: Opaque(b"uf".to_vec()),
        password: Opaque(b"pw".to_vec()),
        role: Opaque(b"passive".to_vec()),
        candidates: vec![host_candidate()],
        send_update: true,
    };
    check_body(
        Body::AttachReq(a.clone()),
        &format!("02 7566 | 02 7077 | 07 70617373697665 | 0013 {HOST_CAND} | 01"),
    );
    check_body(
        Body::AttachAns(AttachReqAns {
            candidates: vec![],
            send_update: false,
            ..a
        }),
        "02 7566 | 02 7077 | 07 70617373697665 | 0000 | 00",
    );
    check_body(
        Body::AppAttachReq(AppAttachReqAns {
            ufrag: Opaque(b"u".to_vec()),
            password: Opaque(b"p".to_vec()),
            application: APPLICATION_SIP,
            role: Opaque(b"active".to_vec()),
            candidates: vec![host_candidate()],
        }),
        &format!("01 75 | 01 70 | 13c4 | 06 616374697665 | 0013 {HOST_CAND}"),
    );
}

#[test]
fn ping_bodies() {
    check_body(
        Body::PingReq(PingReq {
            padding: Opaque(vec![0; 3]),
        }),
        "0003 000000",
    );
    check_body(
        Body::PingAns(PingAns {
            response_id: 0x1122334455667788,
            time: 1_700_000_000_000,
        }),
        "1122334455667788 0000018bcfe56800",
    );
}

fn sig_none() -> Signature {
    Signature::none()
}
const SIG_NONE: &str = "0000 03 0000 0000";

#[test]
fn stored_data_each_model() {
    let single = StoredData {
        storage_time: 0x0102030405060708,
        lifetime: 3600,
        value: StoredDataValue::Single(DataValue {
            exists: true,
            value: Opaque(vec![0xaa, 0xbb]),
        }),
        signature: sig_none(),
    };
    // length = 8 + 4 + (1 + 4 + 2) + 7 = 26
    let single_hex = format!("0000001a 0102030405060708 00000e10 01 00000002 aabb {SIG_NONE}");
    assert_eq!(
        hex::encode(single.to_bytes().unwrap()),
        hex::encode(h(&single_hex))
    );
    assert_eq!(
        StoredData::from_bytes(&h(&single_hex), DataModel::Single).unwrap(),
        single
    );
    let array = StoredData {
        storage_time: 1,
        lifetime: 2,
        value: StoredDataValue::Array(ArrayEntry {
            index: ArrayEntry::APPEND,
            value: DataValue {
                exists: false,
                value: Opaque(vec![]),
            },
        }),
        signature: sig_none(),
    };
    let array_hex = format!("0000001c 0000000000000001 00000002 ffffffff 00 00000000 {SIG_NONE}");
    assert_eq!(
        hex::encode(array.to_bytes().unwrap()),
        hex::encode(h(&array_hex))
    );
    assert_eq!(
        StoredData::from_bytes(&h(&array_hex), DataModel::Array).unwrap(),
        array
    );
    let dict = StoredData {
        storage_time: 1,
        lifetime: 2,
        value: StoredDataValue::Dictionary(DictionaryEntry {
            key: Opaque(vec![0x10, 0x20]),
            value: DataValue {
                exists: true,
                value: Opaque(vec![0x01]),
            },
        }),
        signature: sig_none(),
    };
    let dict_hex =
        format!("0000001d 0000000000000001 00000002 0002 1020 01 00000001 01 {SIG_NONE}");
    assert_eq!(
        hex::encode(dict.to_bytes().unwrap()),
        hex::encode(h(&dict_hex))
    );
    assert_eq!(
        StoredData::from_bytes(&h(&dict_hex), DataModel::Dictionary).unwrap(),
        dict
    );
    // decoding with the wrong model fails cleanly
    assert!(StoredData::from_bytes(&h(&single_hex), DataModel::Dictionary).is_err());
}

#[test]
fn store_bodies() {
    let req = StoreReq {
        resource: ResourceId(vec![0xfc, 0x23]),
        replica_number: 0,
        kind_data: vec![
            StoreKindData {
                kind: KindId::TURN_SERVICE,
                generation_counter: 5,
                values: KindValues::Decoded(vec![StoredData {
                    storage_time: 1,
                    lifetime: 2,
                    value: StoredDataValue::Single(DataValue {
                        exists: true,
                        value: Opaque(vec![0x77]),
                    }),
                    signature: sig_none(),
                }]),
            },
            // a Kind the lookup does not know: kept as one opaque block
            StoreKindData {
                kind: KindId(0xf000_0001),
                generation_counter: 0,
                values: KindValues::Opaque(Opaque(vec![0xde, 0xad, 0xbe, 0xef])),
            },
        ],
    };
    // StoredData: length 0x19 = 8 + 4 + 6 + 7; kind_data 0x41 = (16 + 4 + 0x19) + (16 + 4)
    check_body(
        Body::StoreReq(req),
        &format!(
            "02 fc23 | 00 | 00000041
             00000002 0000000000000005 0000001d | 00000019 0000000000000001 00000002 01 00000001 77 {SIG_NONE}
             f0000001 0000000000000000 00000004 deadbeef"
        ),
    );
    check_body(
        Body::StoreAns(StoreAns {
            kind_responses: vec![StoreKindResponse {
                kind: KindId::SIP_REGISTRATION,
                generation_counter: 7,
                replicas: vec![node(0x11)],
            }],
        }),
        &format!("001e | 00000001 0000000000000007 0010 {}", hx(0x11)),
    );
}

#[test]
fn stored_data_signature_input_vector() {
    let resource = ResourceId(vec![0xfc, 0x23]);
    let signer = SignerIdentity::CertHash {
        hash_alg: HashAlgorithm::SHA256,
        certificate_hash: Opaque(vec![0xab]),
    };
    let value = StoredDataValue::Array(ArrayEntry {
        index: 7,
        value: DataValue {
            exists: true,
            value: Opaque(vec![0x30]),
        },
    });
    let input =
        stored_data_signature_input(&resource, KindId::CERTIFICATE_BY_NODE, 9, &value, &signer)
            .unwrap();
    // resource bare || kind u32 || storage_time u64 || ArrayEntry with index 0 || SignerIdentity
    let expected =
        "fc23 | 00000003 | 0000000000000009 | 00000000 01 00000001 30 | 01 0003 04 01 ab";
    assert_eq!(hex::encode(input), hex::encode(h(expected)));
}

#[test]
fn fetch_and_stat_bodies() {
    let req = FetchReq {
        resource: ResourceId(vec![0x01]),
        specifiers: vec![
            StoredDataSpecifier {
                kind: KindId::SIP_REGISTRATION,
                generation: 0,
                model_specifier: ModelSpecifier::Dictionary(vec![]),
            },
            StoredDataSpecifier {
                kind: KindId::CERTIFICATE_BY_USER,
                generation: 3,
                model_specifier: ModelSpecifier::Array(vec![ArrayRange {
                    first: 0,
                    last: ArrayRange::TO_END,
                }]),
            },
            StoredDataSpecifier {
                kind: KindId::TURN_SERVICE,
                generation: 0,
                model_specifier: ModelSpecifier::Single,
            },
            StoredDataSpecifier {
                kind: KindId(0x999),
                generation: 0,
                model_specifier: ModelSpecifier::Opaque(Opaque(vec![0x42])),
            },
        ],
    };
    let req_hex = "01 01 | 0045
         00000001 0000000000000000 0002 0000
         00000010 0000000000000003 000a 0008 00000000 ffffffff
         00000002 0000000000000000 0000
         00000999 0000000000000000 0001 42";
    check_body(Body::FetchReq(req.clone()), req_hex);
    check_body(Body::StatReq(req), req_hex);
    let dict_keyed = StoredDataSpecifier {
        kind: KindId::SIP_REGISTRATION,
        generation: 0,
        model_specifier: ModelSpecifier::Dictionary(vec![Opaque(vec![0xaa]), Opaque(vec![])]),
    };
    check_body(
        Body::FetchReq(FetchReq {
            resource: ResourceId(vec![]),
            specifiers: vec![dict_keyed],
        }),
        "00 | 0015 | 00000001 0000000000000000 0007 0005 0001 aa 0000",
    );
    check_body(
        Body::FetchAns(FetchAns {
            kind_responses: vec![FetchKindResponse {
                kind: KindId::TURN_SERVICE,
                generation: 1,
                values: KindValues::Decoded(vec![StoredData {
                    storage_time: 1,
                    lifetime: 0,
                    value: StoredDataValue::Single(DataValue {
                        exists: false,
                        value: Opaque(vec![]),
                    }),
                    signature: sig_none(),
                }]),
            }],
        }),
        &format!(
            "0000002c | 00000002 0000000000000001 0000001c | 00000018 0000000000000001 00000000 00 00000000 {SIG_NONE}"
        ),
    );
    let meta = MetaData {
        exists: true,
        value_length: 2,
        hash_algorithm: HashAlgorithm::SHA1,
        hash_value: Opaque(vec![0xee]),
    };
    check_body(
        Body::StatAns(StatAns {
            kind_responses: vec![StatKindResponse {
                kind: KindId::CERTIFICATE_BY_NODE,
                generation: 2,
                values: KindMetaValues::Decoded(vec![StoredMetaData {
                    storage_time: 3,
                    lifetime: 4,
                    metadata: MetaDataValue::Array {
                        index: 5,
                        value: meta,
                    },
                }]),
            }],
        }),
        "0000002c | 00000003 0000000000000002 0000001c | 00000018 0000000000000003 00000004 00000005 01 00000002 02 01 ee",
    );
}

#[test]
fn find_bodies() {
    check_body(
        Body::FindReq(FindReq {
            resource: ResourceId(vec![0xab]),
            kinds: vec![KindId::SIP_REGISTRATION, KindId::REDIR],
        }),
        "01 ab | 08 00000001 00000068",
    );
    check_body(
        Body::FindAns(FindAns {
            results: vec![FindKindData {
                kind: KindId::REDIR,
                closest: ResourceId(vec![0x01, 0x02]),
            }],
        }),
        "0007 00000068 02 0102",
    );
}

#[test]
fn topology_bodies() {
    check_body(
        Body::JoinReq(JoinReq {
            joining_peer_id: node(0x22),
            overlay_specific_data: Opaque(vec![]),
        }),
        &format!("{} 0000", hx(0x22)),
    );
    check_body(
        Body::JoinAns(JoinAns {
            overlay_specific_data: Opaque(vec![1]),
        }),
        "0001 01",
    );
    let leave = LeaveReq::chord(node(0x33), &ChordLeaveData::FromSucc(vec![node(0x44)])).unwrap();
    check_body(
        Body::LeaveReq(leave.clone()),
        &format!("{} 0013 | 01 0010 {}", hx(0x33), hx(0x44)),
    );
    assert_eq!(
        leave.chord_data().unwrap(),
        ChordLeaveData::FromSucc(vec![node(0x44)])
    );
    check(&ChordLeaveData::FromPred(vec![]), "02 0000");
    check_body(Body::LeaveAns(Opaque(vec![])), "");
    check_body(
        Body::UpdateReq(ChordUpdate {
            uptime: 10,
            data: ChordUpdateData::PeerReady,
        }),
        "0000000a 01",
    );
    check_body(
        Body::UpdateReq(ChordUpdate {
            uptime: 1,
            data: ChordUpdateData::Neighbors {
                predecessors: vec![node(0x01)],
                successors: vec![node(0x02), node(0x03)],
            },
        }),
        &format!("00000001 02 0010 {} 0020 {} {}", hx(1), hx(2), hx(3)),
    );
    check_body(
        Body::UpdateReq(ChordUpdate {
            uptime: 0,
            data: ChordUpdateData::Full {
                predecessors: vec![],
                successors: vec![node(0x02)],
                fingers: vec![node(0x05)],
            },
        }),
        &format!("00000000 03 0000 0010 {} 0010 {}", hx(2), hx(5)),
    );
    check_body(
        Body::UpdateReq(ChordUpdate {
            uptime: 0,
            data: ChordUpdateData::Unknown {
                update_type: ChordUpdateType(9),
                data: Opaque(vec![1, 2]),
            },
        }),
        "00000000 09 0102",
    );
    check_body(Body::UpdateAns(Opaque(vec![])), "");
    check_body(
        Body::RouteQueryReq(RouteQueryReq {
            send_update: true,
            destination: Destination::Resource(ResourceId(vec![0x99])),
            overlay_specific_data: Opaque(vec![]),
        }),
        "01 | 02 02 01 99 | 0000",
    );
    check_body(
        Body::RouteQueryAns(ChordRouteQueryAns {
            next_peer: node(0x66),
        }),
        &hx(0x66),
    );
}

#[test]
fn config_update_bodies() {
    check_body(
        Body::ConfigUpdateReq(ConfigUpdateReq::Config(Opaque(b"<x/>".to_vec()))),
        "01 00000007 000004 3c782f3e",
    );
    check_body(
        Body::ConfigUpdateReq(ConfigUpdateReq::Kinds(vec![Opaque(b"<k/>".to_vec())])),
        "02 00000009 000006 0004 3c6b2f3e",
    );
    check_body(
        Body::ConfigUpdateReq(ConfigUpdateReq::Unknown {
            update_type: ConfigUpdateType(7),
            data: Opaque(vec![0xab]),
        }),
        "07 00000001 ab",
    );
    check_body(Body::ConfigUpdateAns(Opaque(vec![])), "");
}

#[test]
fn error_and_unknown_bodies() {
    check_body(
        Body::Error(ErrorResponse::new(ErrorCode::FORBIDDEN, "no")),
        "0002 0002 6e6f",
    );
    check_body(
        Body::Unknown {
            code: MessageCode::EXP_A_REQ,
            body: Opaque(vec![1, 2, 3]),
        },
        "010203",
    );
    // trailing bytes after a typed body are refused
    assert!(Body::decode(MessageCode::PING_ANS, &[0; 17], &BuiltinKinds).is_err());
}

#[test]
fn sip_registration_values() {
    check(
        &SipRegistration::Uri(Opaque(b"bob@example.com".to_vec())),
        "01 0011 000f 626f62406578616d706c652e636f6d",
    );
    check(
        &SipRegistration::Route {
            contact_prefs: Opaque(b"(sip.schemes=SIP)".to_vec()),
            destination_list: vec![Destination::Node(node_a())],
        },
        &format!("02 0027 | 0011 287369702e736368656d65733d53495029 | 0012 01 10 {NODE_A}"),
    );
    check(
        &SipRegistration::Unknown {
            reg_type: SipRegistrationType(3),
            data: Opaque(vec![0xcc]),
        },
        "03 0001 cc",
    );
    // destination_list<3..2^16-1>: a 2-byte list is too short, both ways
    let short = SipRegistration::Route {
        contact_prefs: Opaque(vec![]),
        destination_list: vec![Destination::Compressed(0x8001)],
    };
    assert!(short.to_bytes().is_err());
    assert!(SipRegistration::from_bytes(&h("02 0006 0000 0002 8001")).is_err());
}

#[test]
fn gruu_gr_parameter() {
    // 18 bytes "0110" + NODE_A -> 24 base64 chars, no padding
    let list = vec![Destination::Node(node_a())];
    let gr = gruu_gr_param(&list).unwrap();
    assert_eq!(gr, "ARAAESIzRFVmd4iZqrvM3e7/");
    assert_eq!(parse_gruu_gr_param(&gr).unwrap(), list);
    // padding shows as '~': compressed destination 0x8001 -> "gAE~"
    let c = vec![Destination::Compressed(0x8001)];
    assert_eq!(gruu_gr_param(&c).unwrap(), "gAE~");
    assert_eq!(parse_gruu_gr_param("gAE~").unwrap(), c);
    assert!(parse_gruu_gr_param("gA~E").is_err());
    assert!(parse_gruu_gr_param("gAE").is_err());
}

#[test]
fn turn_server_value() {
    check(
        &TurnServer {
            iteration: 3,
            server_address: IpAddressPort::V4 {
                addr: [203, 0, 113, 5].into(),
                port: 3478,
            },
        },
        "03 01 06 cb007105 0d96",
    );
}

#[test]
fn framed_messages() {
    check(
        &FramedMessage::Data {
            sequence: 1,
            message: Opaque(vec![0xd2, 0x45]),
        },
        "80 00000001 000002 d245",
    );
    check(
        &FramedMessage::Ack {
            ack_sequence: 0x10,
            received: 0x8000_0001,
        },
        "81 00000010 80000001",
    );
    assert!(FramedMessage::from_bytes(&h("82 00000000")).is_err());
}

/// Writes the fuzz seed corpus (`reload/fuzz/corpus/<target>/seed-*`) from golden vectors.
/// Run with `cargo test -p reload --test golden -- --ignored write_fuzz_seed_corpus`.
#[test]
#[ignore]
fn write_fuzz_seed_corpus() {
    let (_, ping) = ping_example();
    let framed = {
        let mut f = h("80 00000000");
        f.extend_from_slice(&(ping.len() as u32).to_be_bytes()[1..]);
        f.extend_from_slice(&ping);
        f
    };
    let sig = SIG_NONE;
    let seeds: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("message", vec![ping.clone()]),
        ("raw_message", vec![ping.clone()]),
        (
            "framed_message",
            vec![
                framed,
                h("81 00000010 80000001"),
                h("80 00000001 000002 d245"),
            ],
        ),
        (
            "body",
            vec![
                h("0017 0003 000000"),
                h(&format!(
                    "0007 02 fc23 00 00000041 00000002 0000000000000005 0000001d 00000019 0000000000000001 00000002 01 00000001 77 {sig} f0000001 0000000000000000 00000004 deadbeef"
                )),
                h("0009 00 0015 00000001 0000000000000000 0007 0005 0001 aa 0000"),
                h(&format!(
                    "0013 00000001 02 0010 {} 0020 {} {}",
                    hx(1),
                    hx(2),
                    hx(3)
                )),
                h(&format!(
                    "0003 02 7566 02 7077 07 70617373697665 0013 {HOST_CAND} 01"
                )),
                h("ffff 0002 0002 6e6f"),
                h("0022 01 00000007 000004 3c782f3e"),
            ],
        ),
        (
            "stored_data_single",
            vec![h(&format!(
                "0000001a 0102030405060708 00000e10 01 00000002 aabb {sig}"
            ))],
        ),
        (
            "stored_data_array",
            vec![h(&format!(
                "0000001c 0000000000000001 00000002 ffffffff 00 00000000 {sig}"
            ))],
        ),
        (
            "stored_data_dictionary",
            vec![h(&format!(
                "0000001d 0000000000000001 00000002 0002 1020 01 00000001 01 {sig}"
            ))],
        ),
        (
            "sip_registration",
            vec![
                h("01 0011 000f 626f62406578616d706c652e636f6d"),
                h(&format!(
                    "02 0027 0011 287369702e736368656d65733d53495029 0012 01 10 {NODE_A}"
                )),
            ],
        ),
        ("turn_server", vec![h("03 01 06 cb007105 0d96")]),
        (
            "gruu",
            vec![b"ARAAESIzRFVmd4iZqrvM3e7/".to_vec(), b"gAE~".to_vec()],
        ),
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (target, files) in seeds {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, f) in files.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), f).unwrap();
        }
    }
}

#[test]
fn describe_is_readable() {
    let body = Body::PingReq(PingReq {
        padding: Opaque(vec![]),
    });
    let (mut msg, _) = ping_example();
    msg.contents = MessageContents::from_body(&body).unwrap();
    let text = msg.describe(&BuiltinKinds);
    assert!(text.contains("PING_REQ(23)"), "{text}");
    assert!(
        text.contains("NodeId(00112233445566778899aabbccddeeff)"),
        "{text}"
    );
    assert!(text.contains("PingReq"), "{text}");
    let store = Body::StoreReq(StoreReq {
        resource: ResourceId::hash(b"alice@example.com"),
        replica_number: 0,
        kind_data: vec![StoreKindData {
            kind: KindId::SIP_REGISTRATION,
            generation_counter: 0,
            values: KindValues::Decoded(vec![]),
        }],
    });
    msg.contents = MessageContents::from_body(&store).unwrap();
    let text = msg.describe(&BuiltinKinds);
    assert!(text.contains("SIP_REGISTRATION(1)"), "{text}");
    println!("{text}");
}

#[test]
fn stat_single_and_dictionary_metadata() {
    let meta = MetaData {
        exists: false,
        value_length: 0,
        hash_algorithm: HashAlgorithm::NONE,
        hash_value: Opaque(vec![]),
    };
    // StoredMetaData: length (4) | storage_time (8) | lifetime (4) | model part
    check_body(
        Body::StatAns(StatAns {
            kind_responses: vec![
                StatKindResponse {
                    kind: KindId::TURN_SERVICE,
                    generation: 1,
                    values: KindMetaValues::Decoded(vec![StoredMetaData {
                        storage_time: 2,
                        lifetime: 3,
                        metadata: MetaDataValue::Single(meta.clone()),
                    }]),
                },
                StatKindResponse {
                    kind: KindId::SIP_REGISTRATION,
                    generation: 1,
                    values: KindMetaValues::Decoded(vec![StoredMetaData {
                        storage_time: 2,
                        lifetime: 3,
                        metadata: MetaDataValue::Dictionary {
                            key: Opaque(vec![0xab]),
                            value: meta,
                        },
                    }]),
                },
                StatKindResponse {
                    kind: KindId(0x7777),
                    generation: 0,
                    values: KindMetaValues::Opaque(Opaque(vec![0x01])),
                },
            ],
        }), // kind_responses: 39 + 42 + 17 bytes
        "00000062
         00000002 0000000000000001 00000017 | 00000013 0000000000000002 00000003 00 00000000 00 00
         00000001 0000000000000001 0000001a | 00000016 0000000000000002 00000003 0001 ab 00 00000000 00 00
         00007777 0000000000000000 00000001 01",
    );
}
