//! Cross-check against Wireshark's RELOAD dissector: encode a set of messages, frame them,
//! write a pcap with `text2pcap` and require `tshark` to dissect every one without a
//! malformed-packet or error mark. Skipped (passes) when tshark or text2pcap is missing.
//!
//! Wireshark labels version 0x0a "Unknown" (it only knows the pre-RFC 0x01), and its
//! RFC 7851 code points are wrong (RELOAD-WIRE.md 11.6), so those labels are not checked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reload::codec::{Codec, Opaque};
use reload::wire::*;
use std::process::Command;

fn node(b: u8) -> NodeId {
    NodeId(u128::from_be_bytes([b; 16]))
}

fn sig(seed: u8) -> Signature {
    Signature {
        algorithm: SignatureAndHashAlgorithm::ECDSA_SHA256,
        identity: SignerIdentity::CertHash {
            hash_alg: HashAlgorithm::SHA256,
            certificate_hash: Opaque(vec![seed; 32]),
        },
        value: Opaque(vec![seed ^ 0x33; 72]),
    }
}

fn msg(body: Body, txid: u64) -> Vec<u8> {
    Message {
        header: ForwardingHeader {
            overlay: overlay_hash("example.com"),
            configuration_sequence: 1,
            transaction_id: txid,
            via_list: vec![Destination::Node(node(0x77))],
            destination_list: vec![Destination::Node(node(0x11))],
            ..ForwardingHeader::default()
        },
        contents: MessageContents::from_body(&body).unwrap(),
        security: SecurityBlock {
            // Wireshark parses certificates as X.509 DER, so fake ones would be "malformed"
            certificates: vec![],
            signature: sig(0x42),
        },
    }
    .encode()
    .unwrap()
}

fn registration(n: u8) -> StoredData {
    StoredData {
        storage_time: 1_763_884_800_000,
        lifetime: 3600,
        value: StoredDataValue::Dictionary(DictionaryEntry {
            key: Opaque(node(n).to_array().to_vec()),
            value: DataValue {
                exists: true,
                value: Opaque(
                    SipRegistration::Route {
                        contact_prefs: Opaque(b"(sip.schemes=SIP)".to_vec()),
                        destination_list: vec![Destination::Node(node(n))],
                    }
                    .to_bytes()
                    .unwrap(),
                ),
            },
        }),
        signature: sig(n),
    }
}

fn candidate() -> IceCandidate {
    IceCandidate {
        addr_port: IpAddressPort::V4 {
            addr: [192, 0, 2, 1].into(),
            port: 6084,
        },
        overlay_link: OverlayLinkType::DTLS_UDP_SR,
        foundation: Opaque(b"1".to_vec()),
        priority: 100,
        cand_type: CandType::SRFLX,
        rel_addr_port: Some(IpAddressPort::V4 {
            addr: [10, 0, 0, 1].into(),
            port: 6084,
        }),
        extensions: vec![],
    }
}

fn bodies() -> Vec<Body> {
    vec![
        Body::PingReq(PingReq::default()),
        Body::PingAns(PingAns {
            response_id: 7,
            time: 1_763_884_800_000,
        }),
        Body::StoreReq(StoreReq {
            resource: ResourceId::hash(b"alice@example.com"),
            replica_number: 0,
            kind_data: vec![StoreKindData {
                kind: KindId::SIP_REGISTRATION,
                generation_counter: 0,
                values: KindValues::Decoded(vec![registration(1)]),
            }],
        }),
        Body::StoreAns(StoreAns {
            kind_responses: vec![StoreKindResponse {
                kind: KindId::SIP_REGISTRATION,
                generation_counter: 1,
                replicas: vec![node(2), node(3)],
            }],
        }),
        Body::FetchReq(FetchReq {
            resource: ResourceId::hash(b"alice@example.com"),
            specifiers: vec![StoredDataSpecifier {
                kind: KindId::SIP_REGISTRATION,
                generation: 0,
                model_specifier: ModelSpecifier::Dictionary(vec![]),
            }],
        }),
        Body::FetchAns(FetchAns {
            kind_responses: vec![FetchKindResponse {
                kind: KindId::SIP_REGISTRATION,
                generation: 1,
                values: KindValues::Decoded(vec![registration(1), registration(2)]),
            }],
        }),
        Body::AttachReq(AttachReqAns {
            ufrag: Opaque(b"ufrag".to_vec()),
            password: Opaque(b"password".to_vec()),
            role: Opaque(b"passive".to_vec()),
            candidates: vec![candidate()],
            send_update: true,
        }),
        Body::AppAttachReq(AppAttachReqAns {
            ufrag: Opaque(b"ufrag".to_vec()),
            password: Opaque(b"password".to_vec()),
            application: APPLICATION_SIP,
            role: Opaque(b"passive".to_vec()),
            candidates: vec![candidate()],
        }),
        Body::JoinReq(JoinReq {
            joining_peer_id: node(5),
            overlay_specific_data: Opaque(vec![]),
        }),
        Body::LeaveReq(LeaveReq::chord(node(5), &ChordLeaveData::FromSucc(vec![node(6)])).unwrap()),
        Body::UpdateReq(ChordUpdate {
            uptime: 60,
            data: ChordUpdateData::Full {
                predecessors: vec![node(1)],
                successors: vec![node(2), node(3)],
                fingers: vec![node(4)],
            },
        }),
        Body::RouteQueryReq(RouteQueryReq {
            send_update: false,
            destination: Destination::Resource(ResourceId::hash(b"x")),
            overlay_specific_data: Opaque(vec![]),
        }),
        Body::ProbeReq(ProbeReq {
            requested_info: vec![ProbeInformationType::UPTIME],
        }),
        Body::ProbeAns(ProbeAns {
            probe_info: vec![ProbeInformation::Uptime(60)],
        }),
        Body::FindReq(FindReq {
            resource: ResourceId::hash(b"x"),
            kinds: vec![KindId::SIP_REGISTRATION],
        }),
        Body::StatReq(FetchReq {
            resource: ResourceId::hash(b"x"),
            specifiers: vec![StoredDataSpecifier {
                kind: KindId::CERTIFICATE_BY_NODE,
                generation: 0,
                model_specifier: ModelSpecifier::Array(vec![ArrayRange {
                    first: 0,
                    last: ArrayRange::TO_END,
                }]),
            }],
        }),
        Body::StatAns(StatAns {
            kind_responses: vec![StatKindResponse {
                kind: KindId::CERTIFICATE_BY_NODE,
                generation: 2,
                values: KindMetaValues::Decoded(vec![StoredMetaData {
                    storage_time: 1_763_884_800_000,
                    lifetime: 60,
                    metadata: MetaDataValue::Array {
                        index: 0,
                        value: MetaData {
                            exists: true,
                            value_length: 300,
                            hash_algorithm: HashAlgorithm::SHA1,
                            hash_value: Opaque(vec![0xee; 20]),
                        },
                    },
                }]),
            }],
        }),
        Body::FindAns(FindAns {
            results: vec![FindKindData {
                kind: KindId::SIP_REGISTRATION,
                closest: ResourceId::hash(b"y"),
            }],
        }),
        Body::JoinAns(JoinAns::default()),
        Body::RouteQueryAns(ChordRouteQueryAns { next_peer: node(9) }),
        Body::ConfigUpdateReq(ConfigUpdateReq::Config(Opaque(b"<overlay/>".to_vec()))),
        Body::ConfigUpdateReq(ConfigUpdateReq::Kinds(vec![Opaque(b"<kind/>".to_vec())])),
        Body::Error(ErrorResponse::new(ErrorCode::NOT_FOUND, "not here")),
    ]
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("-v").output().is_ok()
}

#[test]
fn wireshark_dissects_our_messages() {
    if !have("tshark") || !have("text2pcap") {
        eprintln!("tshark/text2pcap not installed: skipping");
        return;
    }
    let bodies = bodies();
    let mut text = String::new();
    for (i, b) in bodies.iter().enumerate() {
        let frame = FramedMessage::Data {
            sequence: i as u32,
            message: Opaque(msg(b.clone(), 0x1000 + i as u64)),
        }
        .to_bytes()
        .unwrap();
        for (off, chunk) in frame.chunks(16).enumerate() {
            text.push_str(&format!("{:06x}", off * 16));
            for byte in chunk {
                text.push_str(&format!(" {byte:02x}"));
            }
            text.push('\n');
        }
    }
    let ack = FramedMessage::Ack {
        ack_sequence: 3,
        received: 0xf000_0000,
    }
    .to_bytes()
    .unwrap();
    text.push_str("000000");
    for byte in &ack {
        text.push_str(&format!(" {byte:02x}"));
    }
    text.push('\n');
    let dir = std::env::temp_dir().join(format!("reload-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let txt = dir.join("in.txt");
    let pcap = dir.join("out.pcap");
    std::fs::write(&txt, text).unwrap();
    let st = Command::new("text2pcap")
        .args(["-q", "-u", "6084,6084"])
        .arg(&txt)
        .arg(&pcap)
        .status()
        .unwrap();
    assert!(st.success());
    let out = Command::new("tshark")
        .args(["-r"])
        .arg(&pcap)
        .args(["-d", "udp.port==6084,reload-framing", "-V"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let s = String::from_utf8_lossy(&out.stdout);
    if std::env::var_os("RELOAD_TSHARK_DUMP").is_some() {
        println!("{s}");
    }
    for bad in [
        "Malformed",
        "Expert Info (Error",
        "Exception",
        "[Unknown message code",
    ] {
        assert!(!s.contains(bad), "tshark reports {bad:?}:\n{s}");
    }
    let messages = s.matches("\nREsource LOcation And Discovery\n").count();
    assert_eq!(messages, bodies.len(), "{s}");
    assert!(s.contains("sip_registration_route"), "{s}");
    assert!(s.contains("ACK"), "{s}");
}
