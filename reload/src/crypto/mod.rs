//! The `CryptoProvider` seam: message and StoredData signatures (RFC 6940 sections 6.3.4,
//! 7.1) go through this trait so the engine never names an algorithm. [`x509::X509Crypto`]
//! (feature `x509`, default on) is the real X.509/ECDSA/RSA provider; [`TestCrypto`] is a
//! keyed-hash stand-in for the simulator's large runs and unit tests.

#[cfg(feature = "x509")]
pub mod x509;

use crate::wire::NodeId;
use sha1::{Digest, Sha1};

/// TLS 1.2 HashAlgorithm code point for SHA-256 (RFC 5246 7.4.1.4.1).
pub const HASH_SHA256: u8 = 4;
/// TLS 1.2 HashAlgorithm code point for SHA-1.
pub const HASH_SHA1: u8 = 2;
/// SignatureAlgorithm code point the test provider claims (anonymous is not allowed in
/// stores, so it uses a private value in the experimental sense).
pub const SIG_TEST: u8 = 224;

/// What a verified signature tells about its signer (from the signer's certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// Node-IDs the certificate carries.
    pub node_ids: Vec<NodeId>,
    /// The certificate's user name (rfc822Name), if any.
    pub user: Option<String>,
    /// AOR domains of the p2psip registrar role (empty: no role; see docs/SECURITY.md).
    pub registrar_domains: Vec<String>,
}

/// A signature as the engine carries it: algorithm code points, the signer's certificate hash
/// (the `cert_hash` SignerIdentity) and the signature value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignatureParts {
    /// TLS HashAlgorithm.
    pub hash_alg: u8,
    /// TLS SignatureAlgorithm.
    pub sig_alg: u8,
    /// HashAlgorithm of the identity's certificate hash.
    pub identity_hash_alg: u8,
    /// `certificate_hash`: H(DER certificate) of the signer; with `node_id_hash` the
    /// `certificate_node_id_hash` H(NodeId || DER certificate) (RFC 6940 6.3.4).
    pub cert_hash: Vec<u8>,
    /// The SignerIdentity is `cert_hash_node_id` (a certificate with several Node-IDs,
    /// RFC 6940 6.3.4) rather than `cert_hash`.
    pub node_id_hash: bool,
    /// The signature bytes.
    pub value: Vec<u8>,
}

/// Signing, verification and hashing for one local identity.
/// `Send + Sync` so a [`crate::node::Node`] can move between threads (a multi-threaded
/// driver); providers keep mutable caches behind a `Mutex` or atomics.
pub trait CryptoProvider: std::fmt::Debug + Send + Sync {
    /// Our certificates, to put in each SecurityBlock.
    fn certificates(&self) -> Vec<Vec<u8>>;
    /// Our SignerIdentity as (identity hash algorithm, certificate hash).
    fn identity(&self) -> (u8, Vec<u8>);
    /// Signs `data` (the RFC's signature input, which already contains the identity).
    /// Returns (hash algorithm, signature algorithm, signature value).
    fn sign(&self, data: &[u8]) -> (u8, u8, Vec<u8>);
    /// Verifies `sig` over `data`, finding the signer's certificate in `certs` by the hash in
    /// `sig`. Returns who signed, or `None` if the signature does not check.
    fn verify(&self, data: &[u8], sig: &SignatureParts, certs: &[Vec<u8>]) -> Option<Signer>;
    /// Hashes `data` with TLS HashAlgorithm `alg` (for Stat's MetaData); `None` if unknown.
    fn hash(&self, alg: u8, data: &[u8]) -> Option<Vec<u8>>;
    /// Our user name (for data we sign).
    fn user(&self) -> Option<String>;
    /// Tells the provider the node's current time in ms (certificate validity checks). The
    /// default ignores it.
    fn set_time(&self, now_ms: u64) {
        let _ = now_ms;
    }
    /// Whether a certificate with this hash is already verified and cached (so a signature
    /// naming it can be checked without the certificate being carried).
    fn knows_certificate(&self, hash: &[u8]) -> bool {
        let _ = hash;
        false
    }
    /// Forgets the certificates verified so far (operators' and tests' tool: the next
    /// message of each signer must carry its certificate or have it fetched). The default
    /// keeps none.
    fn forget_certificates(&self) {}
}

/// A simulator provider: the "certificate" is `NodeId || user name`, the signature is
/// SHA-1(overlay secret || certificate || data). Anyone who knows the overlay secret can
/// forge, but any change to the signed bytes or a mismatched signer is detected.
#[derive(Debug, Clone)]
pub struct TestCrypto {
    secret: Vec<u8>,
    cert: Vec<u8>,
    user: Option<String>,
}

impl TestCrypto {
    /// A test identity for `node` with an optional user name, under overlay `secret`.
    #[must_use]
    pub fn new(secret: &[u8], node: NodeId, user: Option<String>) -> Self {
        let mut cert = node.to_array().to_vec();
        if let Some(u) = &user {
            cert.extend_from_slice(u.as_bytes());
        }
        Self {
            secret: secret.to_vec(),
            cert,
            user,
        }
    }

    fn mac(&self, cert: &[u8], data: &[u8]) -> Vec<u8> {
        let mut h = Sha1::new();
        h.update(&self.secret);
        h.update((cert.len() as u32).to_be_bytes());
        h.update(cert);
        h.update(data);
        h.finalize().to_vec()
    }
}

fn sha1(data: &[u8]) -> Vec<u8> {
    Sha1::digest(data).to_vec()
}

/// H(cert), or with `cert_hash_node_id` H(NodeId || cert) for the test certificate's Node-ID.
fn test_cert_matches(cert: &[u8], sig: &SignatureParts) -> bool {
    if sig.node_id_hash {
        cert.get(..16).is_some_and(|n| {
            let mut input = n.to_vec();
            input.extend_from_slice(cert);
            sha1(&input) == sig.cert_hash
        })
    } else {
        sha1(cert) == sig.cert_hash
    }
}

impl CryptoProvider for TestCrypto {
    fn certificates(&self) -> Vec<Vec<u8>> {
        vec![self.cert.clone()]
    }

    fn identity(&self) -> (u8, Vec<u8>) {
        (HASH_SHA1, sha1(&self.cert))
    }

    fn sign(&self, data: &[u8]) -> (u8, u8, Vec<u8>) {
        (HASH_SHA1, SIG_TEST, self.mac(&self.cert, data))
    }

    fn verify(&self, data: &[u8], sig: &SignatureParts, certs: &[Vec<u8>]) -> Option<Signer> {
        if sig.sig_alg != SIG_TEST || sig.identity_hash_alg != HASH_SHA1 {
            return None;
        }
        let cert = certs.iter().find(|c| test_cert_matches(c, sig))?;
        if self.mac(cert, data) != sig.value {
            return None;
        }
        let node = NodeId::from_slice(cert.get(..16)?)?;
        let user = cert
            .get(16..)
            .filter(|u| !u.is_empty())
            .and_then(|u| String::from_utf8(u.to_vec()).ok());
        // "registrar:" users carry the test registrar role for every domain.
        let registrar_domains = if user.as_deref().is_some_and(|u| u.starts_with("registrar")) {
            vec!["*".to_string()]
        } else {
            Vec::new()
        };
        Some(Signer {
            node_ids: vec![node],
            user,
            registrar_domains,
        })
    }

    fn hash(&self, alg: u8, data: &[u8]) -> Option<Vec<u8>> {
        (alg == HASH_SHA1).then(|| sha1(data))
    }

    fn user(&self) -> Option<String> {
        self.user.clone()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn test_crypto_detects_tampering_and_signer() {
        let a = TestCrypto::new(b"s", NodeId(7), Some("alice@example.com".into()));
        let (h, s, v) = a.sign(b"hello");
        let (ih, ch) = a.identity();
        let sig = SignatureParts {
            hash_alg: h,
            sig_alg: s,
            identity_hash_alg: ih,
            cert_hash: ch,
            value: v,
            node_id_hash: false,
        };
        let certs = a.certificates();
        let who = a.verify(b"hello", &sig, &certs);
        assert_eq!(
            who,
            Some(Signer {
                node_ids: vec![NodeId(7)],
                user: Some("alice@example.com".into()),
                registrar_domains: vec![],
            })
        );
        assert!(a.verify(b"hellO", &sig, &certs).is_none());
        let b = TestCrypto::new(b"s", NodeId(8), None);
        assert!(a.verify(b"hello", &sig, &b.certificates()).is_none());
        // cert_hash_node_id: H(NodeId || certificate) names the same signer.
        let mut nid = NodeId(7).to_array().to_vec();
        nid.extend_from_slice(&certs[0]);
        let by_node = SignatureParts {
            cert_hash: sha1(&nid),
            node_id_hash: true,
            ..sig.clone()
        };
        assert!(a.verify(b"hello", &by_node, &certs).is_some());
        let wrong = SignatureParts {
            node_id_hash: false,
            ..by_node
        };
        assert!(a.verify(b"hello", &wrong, &certs).is_none());
    }
}
