//! Wireshark's RELOAD dissector (4.0) parses our RFC 7851 `DiagnosticsRequest` (section 5.1:
//! expiration, timestamp_initiated, dMFlags, ext_length, diagnostic_extensions) field by
//! field, in a PathTrackReq and in a Ping's diagnostic extension, and our RFC 7374 REDIR
//! value (`RedirServiceProvider` in a Kind-104 dictionary Store), with no malformed packet and
//! no expert warning.
//!
//! Wireshark still uses the draft code points (path_track 101/102, Diagnostic_Ping extension
//! 3) where RFC 7851 9.3/9.5 assign 39/40 and 2, so the messages here carry Wireshark's codes
//! around bodies made by our encoder: the test pins the structure layout, not the code points
//! (those are pinned by the `reload` unit tests). Wireshark's DiagnosticsResponse parser skips
//! `timestamp_initiated`, so answers are not checked here.

use reload::codec::{Codec, Opaque};
use reload::wire::{
    DataValue, Destination, DiagnosticExtension, DiagnosticKindId, DiagnosticsRequest,
    DictionaryEntry, HashAlgorithm, KindId, KindValues, NodeId, PathTrackReq, RedirServiceProvider,
    ResourceId, Signature, SignatureAndHashAlgorithm, SignerIdentity, StoreKindData, StoreReq,
    StoredData, StoredDataValue,
};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// A data frame carrying a RELOAD message whose MessageContents are `code`, `body` and
/// `extensions` (already encoded, without the vector's length), with a dummy security block
/// (as in RELOAD-WIRE.md 1.4).
fn framed(code: u16, body: &[u8], extensions: &[u8]) -> Vec<u8> {
    let mut rest = Vec::new();
    rest.extend_from_slice(&[0x01, 0x10]);
    rest.extend_from_slice(&0x0011_2233_4455_6677_8899_aabb_ccdd_eeffu128.to_be_bytes());
    rest.extend_from_slice(&code.to_be_bytes());
    rest.extend_from_slice(&(body.len() as u32).to_be_bytes());
    rest.extend_from_slice(body);
    rest.extend_from_slice(&(extensions.len() as u32).to_be_bytes());
    rest.extend_from_slice(extensions);
    // SecurityBlock: no certificates; sha256/rsa, cert_hash identity, 256-byte signature.
    rest.extend_from_slice(&[0, 0, 4, 1, 1, 0, 0x22, 4, 0x20]);
    rest.extend_from_slice(&[0xaa; 32]);
    rest.extend_from_slice(&[1, 0]);
    rest.extend_from_slice(&[0x55; 256]);
    // The 38-byte fixed forwarding header (RFC 6940 6.3.2), then the 18-byte destination.
    let mut msg = Vec::new();
    msg.extend_from_slice(&[
        0xd2, 0x45, 0x4c, 0x4f, 0x65, 0xb0, 0x78, 0x1f, 0, 1, 10, 100,
    ]);
    msg.extend_from_slice(&[0xc0, 0, 0, 0]);
    let total = (38 + rest.len()) as u32;
    msg.extend_from_slice(&total.to_be_bytes());
    msg.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0]);
    msg.extend_from_slice(&[0, 0, 0, 0x12, 0, 0]); // via 0, destinations 18, options 0
    msg.extend_from_slice(&rest);
    assert_eq!(msg.len() as u32, total);
    let mut frame = vec![0x80, 0, 0, 0, 7];
    frame.extend_from_slice(&total.to_be_bytes()[1..]);
    frame.extend_from_slice(&msg);
    frame
}

fn request() -> DiagnosticsRequest {
    DiagnosticsRequest {
        expiration: 1_700_000_060_000,
        timestamp_initiated: 1_700_000_000_000,
        dm_flags: DiagnosticKindId::STATUS_INFO.flag()
            | DiagnosticKindId::ROUTING_TABLE_SIZE.flag()
            | DiagnosticKindId::BATTERY_STATUS.flag(),
        extensions: vec![DiagnosticExtension {
            kind: DiagnosticKindId(0xf000),
            contents: Opaque(vec![0xaa, 0xbb]),
        }],
    }
}

#[test]
fn wireshark_parses_our_diagnostics_request() {
    if Command::new("tshark").arg("-v").output().is_err()
        || Command::new("text2pcap").arg("-v").output().is_err()
    {
        eprintln!("SKIP wireshark diagnostics test: tshark/text2pcap is not installed");
        return;
    }
    let path_track = PathTrackReq {
        destination: Destination::Node(NodeId(0xffee_ddcc_bbaa_9988_7766_5544_3322_1100)),
        request: request(),
    }
    .to_bytes()
    .unwrap();
    // Ping (23) with a non-critical extension of Wireshark's Diagnostic_Ping type (3).
    let req = request().to_bytes().unwrap();
    let mut ext = vec![0, 3, 0];
    ext.extend_from_slice(&(req.len() as u32).to_be_bytes());
    ext.extend_from_slice(&req);
    let frames = [framed(101, &path_track, &[]), framed(23, &[0, 0], &ext)];
    let work = tempfile::tempdir().unwrap();
    let text = tshark_fields(
        work.path(),
        &frames,
        &[
            "reload.message.code",
            "reload.dmflags",
            "reload.diagnosticextension.type",
            "_ws.malformed",
            "_ws.expert",
        ],
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for (line, code) in lines.iter().zip(["101", "23"]) {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f[0], code, "{line}");
        assert_eq!(f[1], "0x0000000000004003", "dMFlags in {line}");
        assert_eq!(f[2], "61440", "extension kind in {line}");
        assert_eq!(f[3], "", "malformed: {line}");
        assert_eq!(f[4], "", "expert info: {line}");
    }
}

#[test]
fn wireshark_parses_our_redir_store() {
    if Command::new("tshark").arg("-v").output().is_err()
        || Command::new("text2pcap").arg("-v").output().is_err()
    {
        eprintln!("SKIP wireshark REDIR test: tshark/text2pcap is not installed");
        return;
    }
    let provider = NodeId(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
    let record = RedirServiceProvider {
        service_provider: provider,
        namespace: Opaque(b"pstn-gateway".to_vec()),
        level: 2,
        node: 37,
    };
    let store = StoreReq {
        resource: ResourceId(vec![0x42; 16]),
        replica_number: 0,
        kind_data: vec![StoreKindData {
            kind: KindId::REDIR,
            generation_counter: 1,
            values: KindValues::Decoded(vec![StoredData {
                storage_time: 1_700_000_000_000,
                lifetime: 300,
                value: StoredDataValue::Dictionary(DictionaryEntry {
                    key: Opaque(provider.to_array().to_vec()),
                    value: DataValue {
                        exists: true,
                        value: Opaque(record.to_bytes().unwrap()),
                    },
                }),
                signature: Signature {
                    algorithm: SignatureAndHashAlgorithm::RSA_SHA256,
                    identity: SignerIdentity::CertHash {
                        hash_alg: HashAlgorithm::SHA256,
                        certificate_hash: Opaque(vec![0xaa; 32]),
                    },
                    value: Opaque(vec![0x55; 256]),
                },
            }]),
        }],
    };
    let mut body = Vec::new();
    store.encode(&mut body).unwrap();
    let work = tempfile::tempdir().unwrap();
    let text = tshark_fields(
        work.path(),
        &[framed(7, &body, &[])],
        &[
            "reload.kinddata.kind",
            "reload.redirserviceprovider.data.serviceprovider",
            "reload.redirserviceprovider.data.level",
            "reload.redirserviceprovider.data.node",
            "_ws.malformed",
            "_ws.expert",
        ],
    );
    let f: Vec<&str> = text.trim_end().split('|').collect();
    assert_eq!(f.len(), 6, "{text}");
    assert_eq!(f[0], "104", "{text}");
    assert_eq!(f[1], "0102030405060708090a0b0c0d0e0f10", "{text}");
    assert_eq!(f[2], "2", "{text}");
    assert_eq!(f[3], "37", "{text}");
    assert_eq!(f[4], "", "malformed: {text}");
    assert_eq!(f[5], "", "expert info: {text}");
}

/// Writes `frames` as UDP packets to port 6084 of a pcap under `dir` and returns tshark's
/// `fields` (one line per packet, `|`-separated), decoding the port as RELOAD framing.
fn tshark_fields(dir: &Path, frames: &[Vec<u8>], fields: &[&str]) -> String {
    let mut hex = String::new();
    for f in frames {
        hex.push_str("0000");
        for b in f {
            write!(hex, " {b:02x}").unwrap();
        }
        hex.push('\n');
    }
    let hex_path = dir.join("frames.hex");
    let pcap = dir.join("frames.pcap");
    std::fs::write(&hex_path, hex).unwrap();
    let st = Command::new("text2pcap")
        .args(["-q", "-u", "6084,6084"])
        .arg(&hex_path)
        .arg(&pcap)
        .status()
        .unwrap();
    assert!(st.success(), "text2pcap failed");
    let mut c = Command::new("tshark");
    c.arg("-r").arg(&pcap).args([
        "-d",
        "udp.port==6084,reload-framing",
        "-T",
        "fields",
        "-E",
        "separator=|",
    ]);
    for f in fields {
        c.args(["-e", f]);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
