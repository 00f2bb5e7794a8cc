//! The engine's signatures with real certificates (RFC 6940 6.3.4, 7.1): ECDSA P-256 or RSA
//! with SHA-256 from the node key, a `cert_hash` SignerIdentity (SHA-256 of the DER
//! certificate), and verification of the signer's certificate against the overlay root.

use crate::pki::local::Identity;
use crate::pki::now_unix;
use reload::crypto::x509::{self, SigAlg, sha256};
use reload::crypto::{CryptoProvider, HASH_SHA1, HASH_SHA256, SignatureParts, Signer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Per-user certificates (DER) the node signs with, by Resource-ID (= H(user)): a gateway
/// stores SIP-REGISTRATION entries on behalf of its users (RFC 7904 3.3, USER-NODE-MATCH).
pub type UserCerts = Arc<Mutex<HashMap<Vec<u8>, Vec<u8>>>>;

/// X.509 provider for one local identity.
pub struct X509Crypto {
    id: Arc<Identity>,
    user_certs: UserCerts,
    /// Certificates already verified against the root: DER -> (signer, notAfter).
    verified: Mutex<HashMap<Vec<u8>, (Signer, i64)>>,
}

impl std::fmt::Debug for X509Crypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X509Crypto").field("id", &self.id).finish()
    }
}

impl X509Crypto {
    /// A provider signing as `id`, trusting `id`'s overlay root, and that also signs data at a user's Resource-ID with that user's certificate.
    pub fn with_user_certs(id: Arc<Identity>, user_certs: UserCerts) -> Self {
        Self {
            id,
            user_certs,
            verified: Mutex::new(HashMap::new()),
        }
    }

    fn check_cert(&self, der: &[u8]) -> Option<Signer> {
        let now = now_unix();
        if let Ok(m) = self.verified.lock()
            && let Some((s, until)) = m.get(der)
            && now <= *until
        {
            return Some(s.clone());
        }
        // The registrar role (docs/SECURITY.md) travels in a private certificate extension.
        let info = x509::verify_chain(der, &self.id.root_der, &self.id.overlay, now).ok()?;
        let s = Signer {
            node_ids: info.node_ids,
            user: info.user,
            registrar_domains: info.registrar_domains,
        };
        if let Ok(mut m) = self.verified.lock() {
            if m.len() > 4096 {
                m.clear();
            }
            m.insert(der.to_vec(), (s.clone(), info.not_after));
        }
        Some(s)
    }
}

fn digest(alg: u8, data: &[u8]) -> Option<Vec<u8>> {
    use aws_lc_rs::digest;
    match alg {
        HASH_SHA256 => Some(sha256(data).to_vec()),
        HASH_SHA1 => Some(
            digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data)
                .as_ref()
                .to_vec(),
        ),
        _ => None,
    }
}

impl CryptoProvider for X509Crypto {
    fn certificates(&self) -> Vec<Vec<u8>> {
        vec![self.id.cert_der.clone()]
    }

    fn identity(&self) -> (u8, Vec<u8>) {
        (HASH_SHA256, sha256(&self.id.cert_der).to_vec())
    }

    fn sign(&self, data: &[u8]) -> (u8, u8, Vec<u8>) {
        match self.id.key.sign(data) {
            Ok((alg, s)) => (alg.hash, alg.sig, s),
            Err(e) => {
                tracing::error!("cannot sign: {e}");
                let a = self.id.key.alg();
                (a.hash, a.sig, Vec::new())
            }
        }
    }

    fn verify(&self, data: &[u8], sig: &SignatureParts, certs: &[Vec<u8>]) -> Option<Signer> {
        let c = certs
            .iter()
            .find(|c| digest(sig.identity_hash_alg, c).as_deref() == Some(&sig.cert_hash[..]))?;
        let signer = self.check_cert(c)?;
        let alg = SigAlg {
            hash: sig.hash_alg,
            sig: sig.sig_alg,
        };
        x509::verify(c, alg, data, &sig.value).ok()?;
        Some(signer)
    }

    fn hash(&self, alg: u8, data: &[u8]) -> Option<Vec<u8>> {
        digest(alg, data)
    }

    fn user(&self) -> Option<String> {
        Some(self.id.user.clone())
    }

    fn signer_for(&self, resource: &[u8]) -> Option<(u8, Vec<u8>, Vec<Vec<u8>>)> {
        let der = self.user_certs.lock().ok()?.get(resource)?.clone();
        Some((HASH_SHA256, sha256(&der).to_vec(), vec![der]))
    }
}
