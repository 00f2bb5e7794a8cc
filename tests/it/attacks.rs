//! Attacks over real sockets (issue 11 item 7) against a real `p2psip` process: a client
//! with a certificate from a foreign CA, one with an expired certificate, one whose messages
//! claim another Node-ID than its certificate's, a forged Store (a node without the registrar
//! role storing a registration for someone else's AOR), and a tampered overlay.xml at start.
//! The attacker speaks TLS (rustls) and the RELOAD framing and messages itself, with
//! certificates it makes with rcgen (from the victim's CA key where it needs a "valid" one).

use crate::overlay::{OverlayNode, http, start_overlay};
use base64::Engine;
use reload::crypto::CryptoProvider;
use reload::crypto::x509::{X509Crypto, reload_uri};
use reload::node::glue;
use reload::node::msg::{Body, Security};
use reload::storage::{
    DataValue, KIND_SIP_REGISTRATION, KindRegistry, StoreKind, StoredValue, ValueKey,
};
use reload::wire::{Destination, NodeId, ResourceId};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);
const OVERLAY: &str = "lab.p2psip";

fn pem_der(text: &str) -> Vec<u8> {
    let b64: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>();
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .unwrap()
}

/// A certificate authority the attacker can sign with.
struct Ca {
    der: Vec<u8>,
    key: rcgen::KeyPair,
}

impl Ca {
    /// The victim's own CA (the attacker stole nothing but uses it to make test identities).
    fn of(node: &OverlayNode) -> Ca {
        let dir = node.proc.path().join("data/ca");
        let key = std::fs::read_to_string(dir.join("ca.key.pem")).unwrap();
        let cert = std::fs::read_to_string(dir.join("ca.cert.pem")).unwrap();
        Ca {
            der: pem_der(&cert),
            key: rcgen::KeyPair::from_pem(&key).unwrap(),
        }
    }

    /// A CA of the attacker's own.
    fn foreign() -> Ca {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("p2psip overlay CA for {OVERLAY}"),
        );
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let c = p.self_signed(&key).unwrap();
        Ca {
            der: c.der().to_vec(),
            key,
        }
    }

    /// A node certificate (DER) and its PKCS#8 key: `node` as reload URI, `user`, validity
    /// `years` (a range of calendar years), the registrar role if `registrar`.
    fn node_cert(
        &self,
        node: NodeId,
        user: &str,
        years: (i32, i32),
        registrar: bool,
    ) -> (Vec<u8>, Vec<u8>) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.subject_alt_names = vec![
            rcgen::SanType::URI(reload_uri(node, OVERLAY).try_into().unwrap()),
            rcgen::SanType::Rfc822Name(user.to_string().try_into().unwrap()),
        ];
        p.not_before = rcgen::date_time_ymd(years.0, 1, 1);
        p.not_after = rcgen::date_time_ymd(years.1, 1, 1);
        p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        if registrar {
            p.custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(
                    &reload::crypto::x509::OID_REGISTRAR_ARCS,
                    reload::crypto::x509::registrar_extension_value(&[OVERLAY]),
                ));
        }
        let issuer = rcgen::Issuer::from_ca_cert_der(&self.der.clone().into(), &self.key).unwrap();
        let der = p.signed_by(&key, &issuer).unwrap().der().to_vec();
        (der, key.serialized_der().to_vec())
    }
}

/// Accepts any server certificate: the attacker does not care who the victim is.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Opens a TLS link to `node` presenting `cert`; `Err` if the handshake or the first read
/// fails (the victim refused us).
fn link(node: &OverlayNode, cert: &[u8], key: &[u8]) -> Result<Tls, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
        .with_client_auth_cert(
            vec![CertificateDer::from(cert.to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec())),
        )
        .unwrap();
    let conn =
        rustls::ClientConnection::new(Arc::new(cfg), ServerName::try_from("127.0.0.1").unwrap())
            .unwrap();
    let sock = TcpStream::connect(node.overlay).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| e.to_string())?;
    }
    Ok(tls)
}

/// Waits until the server either closes the link or says nothing for the read timeout;
/// `true` if it closed it (a TLS alert or EOF).
fn refused(tls: &mut Tls) -> bool {
    let mut b = [0u8; 64];
    // TLS 1.3: the server checks our certificate after the client's Finished; the refusal
    // arrives as an alert on the first read.
    let _ = tls.write_all(&[]);
    match tls.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => {
            e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::TimedOut
        }
    }
}

/// The attacker's RELOAD side: signs messages with its certificate.
struct Attacker {
    crypto: X509Crypto,
    cert: Vec<u8>,
    overlay: u32,
    seq: u32,
    /// The victim's Node-ID (every request goes to it).
    to: NodeId,
}

impl Attacker {
    fn new(root: &[u8], cert: &[u8], key: &[u8], to: NodeId) -> Attacker {
        let crypto = X509Crypto::new(OVERLAY, root, cert, key, 0).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        crypto.set_time(now);
        Attacker {
            crypto,
            cert: cert.to_vec(),
            overlay: reload::wire::overlay_hash(OVERLAY),
            seq: 1,
            to,
        }
    }

    /// Sends `body` to the link peer with `via` as the claimed path; returns the txid.
    fn send(&mut self, tls: &mut Tls, via: Vec<Destination>, body: &Body) -> u64 {
        let txid: u64 = rand::random();
        let (code, b) = glue::encode_body(body);
        let contents = glue::encode_contents(code, &b);
        let (ih, ch) = self.crypto.identity();
        let identity = glue::encode_identity(ih, &ch);
        let mut input = self.overlay.to_be_bytes().to_vec();
        input.extend_from_slice(&txid.to_be_bytes());
        input.extend_from_slice(&contents);
        input.extend_from_slice(&identity);
        let (h, s, value) = self.crypto.sign(&input);
        let sec = Security {
            certs: vec![self.cert.clone()],
            signature: reload::crypto::SignatureParts {
                hash_alg: h,
                sig_alg: s,
                identity_hash_alg: ih,
                cert_hash: ch,
                node_id_hash: false,
                value,
            },
        };
        let mut rest = contents;
        rest.extend_from_slice(&glue::encode_security(&sec));
        let header = reload::wire::ForwardingHeader {
            ttl: 100,
            transaction_id: txid,
            via_list: via,
            destination_list: vec![Destination::Node(self.to)],
            configuration_sequence: 1,
            ..reload::wire::ForwardingHeader::default()
        };
        let msg = glue::encode_message(self.overlay, header, &rest);
        let mut frame = vec![reload::wire::framing::FRAME_DATA];
        frame.extend_from_slice(&self.seq.to_be_bytes());
        self.seq += 1;
        let len = msg.len() as u32;
        frame.extend_from_slice(&len.to_be_bytes()[1..]);
        frame.extend_from_slice(&msg);
        tls.write_all(&frame).unwrap();
        tls.flush().unwrap();
        txid
    }

    /// The answer to `txid`, if one comes before the read timeout.
    fn answer(&self, tls: &mut Tls, txid: u64) -> Option<Body> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let mut t = [0u8; 1];
            tls.read_exact(&mut t).ok()?;
            if t[0] == reload::wire::framing::FRAME_ACK {
                let mut rest = [0u8; 8];
                tls.read_exact(&mut rest).ok()?;
                continue;
            }
            let mut head = [0u8; 7];
            tls.read_exact(&mut head).ok()?;
            let len = u32::from_be_bytes([0, head[4], head[5], head[6]]) as usize;
            let mut msg = vec![0u8; len];
            tls.read_exact(&mut msg).ok()?;
            let Ok((h, rest)) = glue::decode_header(&msg, self.overlay) else {
                eprintln!("attacker: undecodable message from the victim");
                continue;
            };
            if h.transaction_id != txid {
                continue; // the victim's own requests (Update, Ping, ...)
            }
            let p = glue::decode_rest(rest).ok()?;
            let b = glue::decode_body(p.code, &p.body, &KindRegistry::default(), &p.security.certs);
            if let Err(e) = &b {
                eprintln!("attacker: undecodable answer: {e:?}");
            }
            return b.ok();
        }
        None
    }
}

/// A counter of the node's `/status` stats.
fn stat(n: &OverlayNode, name: &str) -> u64 {
    let (_, b) = http(n.admin, "GET", "/status", b"").unwrap();
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    v["stats"][name].as_u64().unwrap()
}

fn registrations(n: &OverlayNode, aor: &str) -> Option<usize> {
    let (c, b) = http(n.admin, "GET", &format!("/debug/fetch?user={aor}"), b"")?;
    if c != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&b).ok()?;
    v["values"].as_array().map(Vec::len)
}

/// A Store of a SIP-REGISTRATION for `aor` keyed by the attacker's Node-ID `me`.
fn registration_store(a: &Attacker, aor: &str, me: NodeId) -> Body {
    let resource = ResourceId::hash(aor.as_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut v = StoredValue {
        key: ValueKey::Key(me.to_array().to_vec()),
        storage_time: now,
        lifetime: 600,
        value: DataValue {
            exists: true,
            value: b"forged".to_vec(),
        },
        signature: Default::default(),
        certs: Vec::new(),
    };
    reload::node::sign_stored_value(&a.crypto, &resource, KIND_SIP_REGISTRATION, &mut v);
    Body::StoreReq {
        resource,
        replica_number: 0,
        kinds: vec![StoreKind {
            kind: KIND_SIP_REGISTRATION,
            generation: 0,
            values: vec![v],
        }],
    }
}

#[test]
fn attacks_over_real_sockets_are_refused() {
    let mut nodes = start_overlay(1, &[]);
    let mut victim = nodes.remove(0);
    victim.proc.wait_line("node is up", T);
    let ca = Ca::of(&victim);
    let year = 2026;

    // 1. A certificate from a foreign CA: the link is refused.
    let (c, k) = Ca::foreign().node_cert(NodeId(0x1111), "mallory", (year - 1, year + 5), false);
    let r = link(&victim, &c, &k);
    assert!(
        r.map(|mut t| refused(&mut t)).unwrap_or(true),
        "foreign CA accepted"
    );
    victim
        .proc
        .wait_line("refused an overlay connection from 127.0.0.1", T);

    // 2. An expired certificate from the right CA: refused.
    let (c, k) = ca.node_cert(NodeId(0x2222), "mallory", (2020, 2021), false);
    let r = link(&victim, &c, &k);
    assert!(
        r.map(|mut t| refused(&mut t)).unwrap_or(true),
        "expired accepted"
    );
    let line = victim.proc.wait_line("xpired", T);
    assert!(line.contains("refused an overlay connection"), "{line}");

    // 3. A valid certificate without the registrar role (Node-ID me).
    let me = NodeId(0x3333_0000_0000_0000_0000_0000_0000_0001);
    let (c, k) = ca.node_cert(me, "mallory", (year - 1, year + 1), false);
    let mut tls = link(&victim, &c, &k).expect("a valid certificate is accepted");
    let (_, st) = http(victim.admin, "GET", "/status", b"").unwrap();
    let st: serde_json::Value = serde_json::from_str(&st).unwrap();
    let victim_id = NodeId(u128::from_str_radix(st["node_id"].as_str().unwrap(), 16).unwrap());
    let mut att = Attacker::new(&ca.der, &c, &k, victim_id);
    // Control: an honest Ping is answered.
    let tx = att.send(&mut tls, vec![], &Body::PingReq);
    let ans = att.answer(&mut tls, tx);
    assert!(
        matches!(ans, Some(Body::PingAns { .. })),
        "honest ping not answered: {ans:?}"
    );
    // Impersonation: the message claims to come from another Node-ID: dropped, no answer.
    let other = NodeId(0x4444_0000_0000_0000_0000_0000_0000_0001);
    let tx = att.send(&mut tls, vec![Destination::Node(other)], &Body::PingReq);
    assert_eq!(
        att.answer(&mut tls, tx),
        None,
        "impersonating ping answered"
    );
    assert_eq!(stat(&victim, "impersonation"), 1);

    // 4. Forged Store: a registration for someone else's AOR without the registrar role.
    let aor = "1000@p2psip.local";
    assert_eq!(registrations(&victim, aor), Some(0));
    let store = registration_store(&att, aor, me);
    let tx = att.send(&mut tls, vec![], &store);
    match att.answer(&mut tls, tx) {
        Some(Body::Error { code: 2, .. }) => {}
        other => panic!("forged store answered {other:?}, expected Error_Forbidden"),
    }
    assert_eq!(
        registrations(&victim, aor),
        Some(0),
        "the forged store changed data"
    );
    assert_eq!(stat(&victim, "store_forbidden"), 1);
    // Control: the same store from a registrar-role certificate is accepted.
    let reg_id = NodeId(0x5555_0000_0000_0000_0000_0000_0000_0001);
    let (c, k) = ca.node_cert(reg_id, "registrar", (year - 1, year + 1), true);
    let mut tls2 = link(&victim, &c, &k).unwrap();
    let mut reg = Attacker::new(&ca.der, &c, &k, victim_id);
    let store = registration_store(&reg, aor, reg_id);
    let tx = reg.send(&mut tls2, vec![], &store);
    assert!(
        matches!(reg.answer(&mut tls2, tx), Some(Body::StoreAns(_))),
        "registrar store refused"
    );
    assert_eq!(registrations(&victim, aor), Some(1));

    // 5. Tampered overlay.xml: the node refuses to start.
    assert_eq!(victim.proc.signal_and_wait("TERM", T), Some(0));
    let xml_path = victim.proc.path().join("data/overlay.xml");
    let xml = std::fs::read_to_string(&xml_path).unwrap();
    std::fs::write(&xml_path, xml.replace("<max-count>16<", "<max-count>99<")).unwrap();
    let dir = std::mem::replace(&mut victim.proc.dir, tempfile::tempdir().unwrap());
    let mut again = crate::harness::NodeProc::start_in_env(dir, &[], &[]);
    assert_eq!(again.wait_exit(T), Some(1));
    assert!(
        again
            .seen
            .iter()
            .any(|l| l.contains("overlay.xml") && l.contains("signature")),
        "{}",
        again.seen.join("\n")
    );
}
