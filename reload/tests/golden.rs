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
