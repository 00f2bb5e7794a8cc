//! Codec throughput: a Store request carrying one signed SIP-REGISTRATION entry, and a Fetch
//! answer with two such entries, each decoded (header + typed body) and encoded.
//!
//! Run: `cargo bench -p reload --bench codec`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use divan::counter::BytesCount;
use divan::{Bencher, black_box};
use reload::codec::{Codec, Opaque};
use reload::wire::*;

fn main() {
    divan::main();
}

fn node(b: u8) -> NodeId {
    NodeId(u128::from_be_bytes([b; 16]))
}

/// An ECDSA P-256 signature by a single-Node-ID certificate: 72 DER bytes, SHA-256 cert hash.
fn signature(seed: u8) -> Signature {
    Signature {
        algorithm: SignatureAndHashAlgorithm::ECDSA_SHA256,
        identity: SignerIdentity::CertHash {
            hash_alg: HashAlgorithm::SHA256,
            certificate_hash: Opaque(vec![seed; 32]),
        },
        value: Opaque(vec![seed ^ 0x5a; 72]),
    }
}

fn registration(n: u8) -> StoredData {
    let value = SipRegistration::Route {
        contact_prefs: Opaque(b"(sip.schemes=SIP)".to_vec()),
        destination_list: vec![Destination::Node(node(n))],
    }
    .to_bytes()
    .unwrap();
    StoredData {
        storage_time: 1_763_884_800_000 + u64::from(n),
        lifetime: 3600,
        value: StoredDataValue::Dictionary(DictionaryEntry {
            key: Opaque(node(n).to_array().to_vec()),
            value: DataValue {
                exists: true,
                value: Opaque(value),
            },
        }),
        signature: signature(n),
    }
}

fn message(body: &Body, to: Destination) -> Message {
    Message {
        header: ForwardingHeader {
            overlay: overlay_hash("example.com"),
            configuration_sequence: 1,
            transaction_id: 0x0102_0304_0506_0708,
            via_list: vec![Destination::Node(node(0x77))],
            destination_list: vec![to],
            ..ForwardingHeader::default()
        },
        contents: MessageContents::from_body(body).unwrap(),
        security: SecurityBlock {
            // one ~450-byte DER certificate, as a storing peer must include
            certificates: vec![GenericCertificate {
                cert_type: CertificateType::X509,
                certificate: Opaque(vec![0x30; 450]),
            }],
            signature: signature(0x42),
        },
    }
}

fn store_body() -> Body {
    Body::StoreReq(StoreReq {
        resource: ResourceId::hash(b"alice@example.com"),
        replica_number: 0,
        kind_data: vec![StoreKindData {
            kind: KindId::SIP_REGISTRATION,
            generation_counter: 0,
            values: KindValues::Decoded(vec![registration(1)]),
        }],
    })
}

fn fetch_body() -> Body {
    Body::FetchAns(FetchAns {
        kind_responses: vec![FetchKindResponse {
            kind: KindId::SIP_REGISTRATION,
            generation: 7,
            values: KindValues::Decoded(vec![registration(1), registration(2)]),
        }],
    })
}

fn store_msg() -> Message {
    message(
        &store_body(),
        Destination::Resource(ResourceId::hash(b"alice@example.com")),
    )
}

fn fetch_msg() -> Message {
    message(&fetch_body(), Destination::Node(node(0x11)))
}

fn decode(bencher: Bencher, msg: Message) {
    let bytes = msg.encode().unwrap();
    bencher.counter(BytesCount::new(bytes.len())).bench(|| {
        let m = Message::decode(black_box(&bytes)).unwrap();
        let body = m.contents.decode_body(&BuiltinKinds).unwrap();
        black_box((m, body))
    });
}

fn encode(bencher: Bencher, msg: Message, body: Body) {
    let len = msg.encode().unwrap().len();
    bencher.counter(BytesCount::new(len)).bench(|| {
        let mut m = black_box(&msg).clone();
        m.contents = MessageContents::from_body(black_box(&body)).unwrap();
        black_box(m.encode().unwrap())
    });
}

#[divan::bench]
fn store_req_decode(bencher: Bencher) {
    decode(bencher, store_msg());
}

#[divan::bench]
fn store_req_encode(bencher: Bencher) {
    encode(bencher, store_msg(), store_body());
}

#[divan::bench]
fn fetch_ans_decode(bencher: Bencher) {
    decode(bencher, fetch_msg());
}

#[divan::bench]
fn fetch_ans_encode(bencher: Bencher) {
    encode(bencher, fetch_msg(), fetch_body());
}
