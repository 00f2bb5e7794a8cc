//! The real [`CryptoProvider`]: X.509 node certificates (RFC 6940 11.3, 14.15) and
//! ECDSA P-256/SHA-256 (`04 03`, our default) or RSASSA-PKCS1-v1_5/SHA-256 (`04 01`) signatures
//! (RFC 6940 6.3.4), with aws-lc-rs. Sans-IO: the wall clock comes from the caller through
//! [`CryptoProvider::set_time`]; only ECDSA signing nonces come from the OS generator inside
//! aws-lc-rs (its `SecureRandom` is sealed).
//!
//! Also the certificate helpers the binary's PKI (`src/pki`) uses: reload URIs, parsing a node
//! certificate, checking its chain to the overlay root, keys, and the p2psip registrar-role
//! extension (docs/SECURITY.md).

use super::{CryptoProvider, HASH_SHA256, SignatureParts, Signer};
use crate::wire::NodeId;
use aws_lc_rs::{
    digest,
    rand::SystemRandom,
    signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair, UnparsedPublicKey},
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// RELOAD / TLS 1.2 signature code point for RSA (PKCS#1 v1.5).
pub const SIG_RSA: u8 = 1;
/// RELOAD / TLS 1.2 signature code point for ECDSA.
pub const SIG_ECDSA: u8 = 3;
/// DestinationType `node` (RFC 6940 6.3.2.2).
const DEST_NODE: u8 = 1;
/// OID of the p2psip registrar-role certificate extension (private arc; value
/// `SEQUENCE OF IA5String`, the AOR domains the node may register phones for, `*` = any).
pub const OID_REGISTRAR: &str = "1.3.6.1.4.1.99999.6940.1";
/// Arc components of [`OID_REGISTRAR`] (for certificate generators).
pub const OID_REGISTRAR_ARCS: [u64; 9] = [1, 3, 6, 1, 4, 1, 99999, 6940, 1];
/// The mandatory-extension namespace announced in the overlay configuration (RFC 6940
/// 11.1) by overlays whose SIP-REGISTRATION access control honours the registrar role.
pub const REGISTRAR_EXTENSION_NS: &str = "urn:p2psip:params:reload:registrar-role:1";
/// Most certificates the verification cache holds before it is emptied.
const CACHE_MAX: usize = 4096;

/// Why a certificate or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum X509Error {
    /// The certificate could not be parsed.
    #[error("certificate: {0}")]
    Cert(String),
    /// The certificate does not chain to the overlay root or is not valid now.
    #[error("untrusted certificate: {0}")]
    Untrusted(String),
    /// The signature does not verify or uses an unsupported algorithm.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// A private key could not be loaded or used.
    #[error("key: {0}")]
    Key(String),
}

/// The reload URI naming `node` in `overlay`: `reload://0110<32 hex>@<overlay>/`.
#[must_use]
pub fn reload_uri(node: NodeId, overlay: &str) -> String {
    let mut dest = Vec::with_capacity(2 + NodeId::LEN);
    dest.push(DEST_NODE);
    dest.push(NodeId::LEN as u8); // ok: 16 fits in u8
    dest.extend_from_slice(&node.to_array());
    format!("reload://{}@{}/", hex::encode(dest), overlay)
}

/// Parses a reload URI naming a single node; returns the Node-ID and overlay name.
///
/// The destination list must hold exactly one `node` entry of 16 bytes; a trailing
/// StoredDataSpecifier after the `/` is refused (certificates never carry one).
#[must_use]
pub fn parse_reload_uri(uri: &str) -> Option<(NodeId, String)> {
    let rest = uri.strip_prefix("reload://")?;
    let (dest_hex, rest) = rest.split_once('@')?;
    let overlay = rest.strip_suffix('/')?;
    if overlay.is_empty() || overlay.contains('/') {
        return None;
    }
    let dest = hex::decode(dest_hex).ok()?;
    match dest.as_slice() {
        [DEST_NODE, 16, id @ ..] if id.len() == NodeId::LEN => {
            Some((NodeId::from_slice(id)?, overlay.to_string()))
        }
        _ => None,
    }
}

/// What a node certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Node-IDs from reload URI SANs for the requested overlay.
    pub node_ids: Vec<NodeId>,
    /// The rfc822Name SAN, if exactly one.
    pub user: Option<String>,
    /// notBefore, seconds since the Unix epoch.
    pub not_before: i64,
    /// notAfter, seconds since the Unix epoch.
    pub not_after: i64,
    /// DER SubjectPublicKeyInfo.
    pub spki_der: Vec<u8>,
    /// BasicConstraints CA flag.
    pub is_ca: bool,
    /// AOR domains of the registrar-role extension (empty: no role).
    pub registrar_domains: Vec<String>,
}

fn parse_x509(der: &[u8]) -> Result<X509Certificate<'_>, X509Error> {
    let (rest, cert) = X509Certificate::from_der(der)
        .map_err(|e| X509Error::Cert(format!("cannot parse certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(X509Error::Cert("trailing bytes after certificate".into()));
    }
    Ok(cert)
}

/// DER encoding of the registrar-role extension value: `SEQUENCE OF IA5String`.
#[must_use]
pub fn registrar_extension_value(domains: &[&str]) -> Vec<u8> {
    let mut body = Vec::new();
    for d in domains {
        body.push(0x16);
        der_len(&mut body, d.len());
        body.extend_from_slice(d.as_bytes());
    }
    let mut out = vec![0x30];
    der_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

fn der_len(out: &mut Vec<u8>, n: usize) {
    if n < 0x80 {
        out.push(n as u8); // ok: < 0x80
    } else if n < 0x100 {
        out.extend_from_slice(&[0x81, n as u8]); // ok: < 0x100
    } else {
        out.push(0x82);
        out.extend_from_slice(&(n.min(0xffff) as u16).to_be_bytes()); // ok: clamped
    }
}

/// Reads one DER TLV at the start of `b`: (tag, value, rest).
fn der_tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&l0, rest) = rest.split_first()?;
    let (len, rest) = match l0 {
        0..=0x7f => (usize::from(l0), rest),
        0x81 => (usize::from(*rest.first()?), rest.get(1..)?),
        0x82 => (
            usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?])),
            rest.get(2..)?,
        ),
        _ => return None,
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// Parses the registrar-role extension value; `None` if malformed.
#[must_use]
pub fn parse_registrar_extension(v: &[u8]) -> Option<Vec<String>> {
    let (tag, mut body, rest) = der_tlv(v)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    while !body.is_empty() {
        let (t, s, r) = der_tlv(body)?;
        if t != 0x16 {
            return None;
        }
        out.push(std::str::from_utf8(s).ok()?.to_ascii_lowercase());
        body = r;
    }
    Some(out)
}

/// Reads a DER certificate: Node-IDs for `overlay`, user name, validity, public key, role.
pub fn parse(der: &[u8], overlay: &str) -> Result<CertInfo, X509Error> {
    let cert = parse_x509(der)?;
    let mut node_ids = Vec::new();
    let mut users = Vec::new();
    if let Some(san) = cert
        .subject_alternative_name()
        .map_err(|e| X509Error::Cert(format!("bad subjectAltName: {e}")))?
    {
        for name in &san.value.general_names {
            match name {
                GeneralName::URI(u) => {
                    if let Some((id, ov)) = parse_reload_uri(u)
                        && ov == overlay
                    {
                        node_ids.push(id);
                    }
                }
                GeneralName::RFC822Name(u) => users.push(u.to_string()),
                _ => {}
            }
        }
    }
    let mut registrar_domains = Vec::new();
    for ext in cert.extensions() {
        if ext.oid.to_id_string() == OID_REGISTRAR {
            registrar_domains = parse_registrar_extension(ext.value).ok_or_else(|| {
                X509Error::Cert("malformed p2psip registrar-role extension".into())
            })?;
        }
    }
    let user = if users.len() == 1 { users.pop() } else { None };
    Ok(CertInfo {
        node_ids,
        user,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        spki_der: cert.public_key().raw.to_vec(),
        is_ca: cert.is_ca(),
        registrar_domains,
    })
}

/// Checks that `leaf_der` is issued and signed by the overlay root `root_der`, that both are
/// valid at `now_unix`, that the root has BasicConstraints CA=true and the leaf does not.
/// Returns the leaf's parsed contents for `overlay`. No intermediates.
pub fn verify_chain(
    leaf_der: &[u8],
    root_der: &[u8],
    overlay: &str,
    now_unix: i64,
) -> Result<CertInfo, X509Error> {
    let leaf = parse_x509(leaf_der)?;
    let root = parse_x509(root_der)?;
    let bc = root
        .basic_constraints()
        .map_err(|e| X509Error::Untrusted(format!("root BasicConstraints unreadable: {e}")))?;
    if !bc.is_some_and(|b| b.value.ca) {
        return Err(X509Error::Untrusted(
            "the overlay root certificate is not a CA (BasicConstraints CA=false)".into(),
        ));
    }
    if leaf_der == root_der {
        return Err(X509Error::Untrusted(
            "the root certificate itself is not a node certificate".into(),
        ));
    }
    if leaf.is_ca() {
        return Err(X509Error::Untrusted(
            "a CA certificate cannot be a node certificate".into(),
        ));
    }
    if leaf.issuer().as_raw() != root.subject().as_raw() {
        return Err(X509Error::Untrusted(
            "certificate was not issued by this overlay's CA (issuer name differs)".into(),
        ));
    }
    leaf.verify_signature(Some(root.public_key()))
        .map_err(|_| {
            X509Error::Untrusted(
                "certificate signature does not verify with the overlay CA key".into(),
            )
        })?;
    for (what, c) in [("certificate", &leaf), ("overlay CA certificate", &root)] {
        let v = c.validity();
        if now_unix < v.not_before.timestamp() {
            return Err(X509Error::Untrusted(format!(
                "{what} is not valid yet (from {})",
                v.not_before
            )));
        }
        if now_unix > v.not_after.timestamp() {
            return Err(X509Error::Untrusted(format!(
                "{what} expired on {}",
                v.not_after
            )));
        }
    }
    parse(leaf_der, overlay)
}

/// A SignatureAndHashAlgorithm pair as it goes on the wire (hash, signature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigAlg {
    /// Hash code point.
    pub hash: u8,
    /// Signature code point.
    pub sig: u8,
}

impl SigAlg {
    /// `04 03`: ECDSA with SHA-256 (our default).
    pub const ECDSA_SHA256: SigAlg = SigAlg {
        hash: HASH_SHA256,
        sig: SIG_ECDSA,
    };
    /// `04 01`: RSASSA-PKCS1-v1_5 with SHA-256 (mandatory to implement, RFC 6940 6.3.4).
    pub const RSA_SHA256: SigAlg = SigAlg {
        hash: HASH_SHA256,
        sig: SIG_RSA,
    };
}

/// A private key that can produce RELOAD signatures.
pub enum NodeKey {
    /// ECDSA P-256.
    Ecdsa(EcdsaKeyPair),
    /// RSA (2048 bits or more).
    Rsa(RsaKeyPair),
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeKey::Ecdsa(_) => f.write_str("NodeKey::Ecdsa(..)"),
            NodeKey::Rsa(_) => f.write_str("NodeKey::Rsa(..)"),
        }
    }
}

impl NodeKey {
    /// Loads a PKCS#8 DER private key (ECDSA P-256 or RSA).
    pub fn from_pkcs8(der: &[u8]) -> Result<NodeKey, X509Error> {
        if let Ok(k) = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der) {
            return Ok(NodeKey::Ecdsa(k));
        }
        RsaKeyPair::from_pkcs8(der)
            .map(NodeKey::Rsa)
            .map_err(|_| X509Error::Key("not a PKCS#8 ECDSA P-256 or RSA private key".into()))
    }

    /// The algorithm this key signs with.
    #[must_use]
    pub fn alg(&self) -> SigAlg {
        match self {
            NodeKey::Ecdsa(_) => SigAlg::ECDSA_SHA256,
            NodeKey::Rsa(_) => SigAlg::RSA_SHA256,
        }
    }

    /// The public key bits as they appear in the certificate's subjectPublicKey.
    #[must_use]
    pub fn public_key_bits(&self) -> &[u8] {
        match self {
            NodeKey::Ecdsa(k) => k.public_key().as_ref(),
            NodeKey::Rsa(k) => k.public_key().as_ref(),
        }
    }

    /// Signs `data`; returns the algorithm and the signature value.
    pub fn sign(&self, data: &[u8]) -> Result<(SigAlg, Vec<u8>), X509Error> {
        let rng = SystemRandom::new();
        match self {
            NodeKey::Ecdsa(k) => {
                let s = k
                    .sign(&rng, data)
                    .map_err(|_| X509Error::Key("ECDSA signing failed".into()))?;
                Ok((SigAlg::ECDSA_SHA256, s.as_ref().to_vec()))
            }
            NodeKey::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, data, &mut sig)
                    .map_err(|_| X509Error::Key("RSA signing failed".into()))?;
                Ok((SigAlg::RSA_SHA256, sig))
            }
        }
    }
}

/// The verification-relevant part of a certificate's key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyKind {
    EcdsaP256(Vec<u8>),
    Rsa(Vec<u8>),
    Other,
}

fn key_kind(cert: &X509Certificate<'_>) -> KeyKind {
    let spki = cert.public_key();
    let key_oid = spki.algorithm.algorithm.to_id_string();
    let bits = spki.subject_public_key.data.to_vec();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    if key_oid == "1.2.840.10045.2.1" && curve.as_deref() == Some("1.2.840.10045.3.1.7") {
        KeyKind::EcdsaP256(bits)
    } else if key_oid == "1.2.840.113549.1.1.1" {
        KeyKind::Rsa(bits)
    } else {
        KeyKind::Other
    }
}

fn verify_with(key: &KeyKind, alg: SigAlg, data: &[u8], sig: &[u8]) -> Result<(), X509Error> {
    let (algorithm, bits): (&dyn signature::VerificationAlgorithm, &[u8]) =
        match (alg.hash, alg.sig, key) {
            (HASH_SHA256, SIG_ECDSA, KeyKind::EcdsaP256(b)) => {
                (&signature::ECDSA_P256_SHA256_ASN1, b)
            }
            (HASH_SHA256, SIG_RSA, KeyKind::Rsa(b)) => (&signature::RSA_PKCS1_2048_8192_SHA256, b),
            (h, s, _) => {
                return Err(X509Error::BadSignature(format!(
                    "algorithm {h:02x} {s:02x} unsupported or does not match the certificate key"
                )));
            }
        };
    UnparsedPublicKey::new(algorithm, bits)
        .verify(data, sig)
        .map_err(|_| X509Error::BadSignature("signature does not verify".into()))
}

/// Verifies `sig` over `data` with the public key in `signer_cert_der`.
///
/// `04 03` needs a P-256 key, `04 01` an RSA key of at least 2048 bits. This checks only the
/// signature; trust and validity are [`verify_chain`]'s job.
pub fn verify(
    signer_cert_der: &[u8],
    alg: SigAlg,
    data: &[u8],
    sig: &[u8],
) -> Result<(), X509Error> {
    let cert = parse_x509(signer_cert_der)?;
    verify_with(&key_kind(&cert), alg, data, sig)
}

/// SHA-256 of `data`.
#[must_use]
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// A certificate that chained to the root, parsed once.
#[derive(Debug)]
struct Trusted {
    info: CertInfo,
    key: KeyKind,
}

/// The X.509 provider for one local identity: our key and certificate, the overlay root,
/// and a cache of verified peer certificates keyed by SHA-256 of their DER.
#[derive(Debug)]
pub struct X509Crypto {
    overlay: String,
    root_der: Vec<u8>,
    key: NodeKey,
    cert_der: Vec<u8>,
    cert_hash: Vec<u8>,
    user: Option<String>,
    /// Unix seconds at node time 0.
    epoch_unix: i64,
    /// Current wall clock, Unix seconds (updated by `set_time`).
    now_unix: AtomicI64,
    /// cert hash -> verified certificate (None: known bad, not retried until the cache empties).
    cache: Mutex<HashMap<Vec<u8>, Option<Arc<Trusted>>>>,
}

impl X509Crypto {
    /// A provider for `overlay` trusting `root_der`, signing with `key` (PKCS#8 DER) as the
    /// holder of `cert_der`. `epoch_unix` is the Unix time at node time 0 (the node reports
    /// its time in ms through [`CryptoProvider::set_time`]; 0 when node time is Unix ms, as in
    /// the simulator). Our own certificate is not chain-checked here (the caller's PKI does).
    pub fn new(
        overlay: &str,
        root_der: &[u8],
        cert_der: &[u8],
        key_pkcs8: &[u8],
        epoch_unix: i64,
    ) -> Result<Self, X509Error> {
        let key = NodeKey::from_pkcs8(key_pkcs8)?;
        let info = parse(cert_der, overlay)?;
        let cert = parse_x509(cert_der)?;
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key_bits() {
            return Err(X509Error::Key(
                "the private key does not belong to the certificate".into(),
            ));
        }
        Ok(Self {
            overlay: overlay.to_string(),
            root_der: root_der.to_vec(),
            key,
            cert_der: cert_der.to_vec(),
            cert_hash: sha256(cert_der).to_vec(),
            user: info.user,
            epoch_unix,
            now_unix: AtomicI64::new(epoch_unix),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Our certificate's parsed contents.
    pub fn info(&self) -> Result<CertInfo, X509Error> {
        parse(&self.cert_der, &self.overlay)
    }

    /// The current wall clock the provider checks validity against (Unix seconds).
    #[must_use]
    pub fn now_unix(&self) -> i64 {
        self.now_unix.load(Ordering::Relaxed)
    }

    /// Finds (verifying and caching) the trusted certificate with SHA-256 `hash`: H(cert),
    /// or with `node_id_hash` H(NodeId || cert) for one of the certificate's Node-IDs
    /// (`cert_hash_node_id`, RFC 6940 6.3.4).
    fn trusted(&self, hash: &[u8], node_id_hash: bool, certs: &[Vec<u8>]) -> Option<Arc<Trusted>> {
        let now = self.now_unix();
        let Ok(mut cache) = self.cache.lock() else {
            return None;
        };
        let t = match cache.get(hash) {
            Some(Some(t)) => t.clone(),
            Some(None) => return None,
            None => {
                let der = certs.iter().find(|c| {
                    if node_id_hash {
                        parse(c, &self.overlay).is_ok_and(|info| {
                            info.node_ids.iter().any(|n| {
                                let mut input = n.to_array().to_vec();
                                input.extend_from_slice(c);
                                sha256(&input)[..] == *hash
                            })
                        })
                    } else {
                        sha256(c)[..] == *hash
                    }
                })?;
                let t = verify_chain(der, &self.root_der, &self.overlay, now)
                    .ok()
                    .and_then(|info| {
                        let key = parse_x509(der).ok().map(|c| key_kind(&c))?;
                        Some(Arc::new(Trusted { info, key }))
                    });
                if cache.len() >= CACHE_MAX {
                    cache.clear();
                }
                cache.insert(hash.to_vec(), t.clone());
                t?
            }
        };
        // Validity is checked at every use: a cached certificate may have expired since.
        (now >= t.info.not_before && now <= t.info.not_after).then_some(t)
    }
}

impl CryptoProvider for X509Crypto {
    fn certificates(&self) -> Vec<Vec<u8>> {
        vec![self.cert_der.clone()]
    }

    fn identity(&self) -> (u8, Vec<u8>) {
        (HASH_SHA256, self.cert_hash.clone())
    }

    fn sign(&self, data: &[u8]) -> (u8, u8, Vec<u8>) {
        match self.key.sign(data) {
            Ok((alg, v)) => (alg.hash, alg.sig, v),
            Err(_) => (HASH_SHA256, self.key.alg().sig, Vec::new()),
        }
    }

    fn verify(&self, data: &[u8], sig: &SignatureParts, certs: &[Vec<u8>]) -> Option<Signer> {
        if sig.identity_hash_alg != HASH_SHA256 {
            return None;
        }
        let t = self.trusted(&sig.cert_hash, sig.node_id_hash, certs)?;
        let alg = SigAlg {
            hash: sig.hash_alg,
            sig: sig.sig_alg,
        };
        verify_with(&t.key, alg, data, &sig.value).ok()?;
        Some(Signer {
            node_ids: t.info.node_ids.clone(),
            user: t.info.user.clone(),
            registrar_domains: t.info.registrar_domains.clone(),
        })
    }

    fn hash(&self, alg: u8, data: &[u8]) -> Option<Vec<u8>> {
        match alg {
            HASH_SHA256 => Some(sha256(data).to_vec()),
            super::HASH_SHA1 => {
                use sha1::{Digest, Sha1};
                Some(Sha1::digest(data).to_vec())
            }
            _ => None,
        }
    }

    fn user(&self) -> Option<String> {
        self.user.clone()
    }

    fn set_time(&self, now_ms: u64) {
        let secs = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
        self.now_unix
            .store(self.epoch_unix.saturating_add(secs), Ordering::Relaxed);
    }

    fn forget_certificates(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
    }

    fn knows_certificate(&self, hash: &[u8]) -> bool {
        self.cache
            .lock()
            .map(|c| c.get(hash).is_some_and(Option::is_some))
            .unwrap_or(false)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn registrar_extension_roundtrip_and_malformed() {
        let long = "d".repeat(200);
        for doms in [
            vec![],
            vec!["example.org"],
            vec!["*", "a.example", long.as_str()],
        ] {
            let v = registrar_extension_value(&doms);
            let back = parse_registrar_extension(&v).unwrap();
            assert_eq!(back, doms.iter().map(|d| d.to_string()).collect::<Vec<_>>());
        }
        assert!(parse_registrar_extension(&[0x30, 0x05, 0x16, 0x01]).is_none());
        assert!(parse_registrar_extension(&[0x30, 0x02, 0x04, 0x00]).is_none());
        assert!(parse_registrar_extension(&[]).is_none());
    }

    #[test]
    fn reload_uri_roundtrip() {
        let id = NodeId(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        let u = reload_uri(id, "example.org");
        assert_eq!(
            u,
            "reload://01100123456789abcdef0011223344556677@example.org/"
        );
        assert_eq!(parse_reload_uri(&u), Some((id, "example.org".into())));
        assert_eq!(parse_reload_uri("reload://0123@example.org/"), None);
        assert_eq!(
            parse_reload_uri(&u.replace("@example.org/", "@example.org")),
            None
        );
        assert_eq!(parse_reload_uri(&u.replacen("0110", "0210", 1)), None);
        assert_eq!(parse_reload_uri(&format!("{u}0102")), None);
    }
}
