//! A node's identity (key, Node-ID certificate, overlay root) on disk, and the one-node
//! default: with no enrollment done beforehand, a node creates its own overlay CA and enrolls
//! itself in-process, so `p2psip` runs out of the box.
//!
//! Files in the data directory:
//! * `node.key.pem` (PKCS#8, mode 0600), `node.cert.pem`, `ca.cert.pem`, `overlay.xml`;
//! * `ca/` with the local CA (only for the one-node default; see [`super::ca`]).

use super::ca::Ca;
use super::config_doc;
use super::sign::NodeKey;
use super::{PkiError, cert, read, read_pem, to_pem, write};
use reload::wire::NodeId;
use std::path::Path;

/// Node key file.
pub const NODE_KEY: &str = "node.key.pem";
/// Node certificate file.
pub const NODE_CERT: &str = "node.cert.pem";
/// Overlay root certificate file.
pub const CA_CERT: &str = "ca.cert.pem";
/// Configuration document file.
pub const OVERLAY_XML: &str = "overlay.xml";
/// Subdirectory holding a local CA.
pub const LOCAL_CA_DIR: &str = "ca";

/// A node's loaded identity.
pub struct Identity {
    /// Overlay name.
    pub overlay: String,
    /// User name (rfc822Name SAN).
    pub user: String,
    /// The first Node-ID in the certificate.
    pub node_id: NodeId,
    /// All Node-IDs in the certificate for this overlay.
    pub node_ids: Vec<NodeId>,
    /// The signing key.
    pub key: NodeKey,
    /// The key as PKCS#8 DER (for rustls).
    pub key_pkcs8: Vec<u8>,
    /// The node certificate (DER).
    pub cert_der: Vec<u8>,
    /// The overlay root certificate (DER).
    pub root_der: Vec<u8>,
    /// notAfter of the node certificate, Unix seconds.
    pub not_after: i64,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        f.debug_struct("Identity")
            .field("overlay", &self.overlay)
            .field("user", &self.user)
            .field("node_ids", &self.node_ids)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Builds an identity from its parts, checking the certificate chains to the root at
    /// `now`, carries a Node-ID and a user name, and belongs to the key.
    pub fn from_parts(
        key_pkcs8: Vec<u8>,
        cert_der: Vec<u8>,
        root_der: Vec<u8>,
        overlay: &str,
        now: i64,
    ) -> Result<Identity, PkiError> {
        let info = cert::verify_chain(&cert_der, &root_der, overlay, now)?;
        let node_id = *info.node_ids.first().ok_or_else(|| {
            PkiError::Cert(format!("certificate has no Node-ID for overlay {overlay}"))
        })?;
        let user = info.user.clone().ok_or_else(|| {
            PkiError::Cert("certificate has no single rfc822Name user name".into())
        })?;
        let key = NodeKey::from_pkcs8(&key_pkcs8)?;
        let spki_bits = {
            use x509_parser::prelude::{FromDer, X509Certificate};
            let (_, c) =
                X509Certificate::from_der(&cert_der).map_err(|e| PkiError::Cert(e.to_string()))?;
            c.public_key().subject_public_key.data.to_vec()
        };
        if key.public_key_bits() != spki_bits.as_slice() {
            return Err(PkiError::Key(
                "the private key does not belong to the certificate".into(),
            ));
        }
        Ok(Identity {
            overlay: overlay.to_string(),
            user,
            node_id,
            node_ids: info.node_ids,
            key,
            key_pkcs8,
            cert_der,
            root_der,
            not_after: info.not_after,
        })
    }

    /// True if `data_dir` holds an identity (a node certificate).
    pub fn exists(data_dir: &Path) -> bool {
        data_dir.join(NODE_CERT).exists()
    }

    /// Loads the identity in `data_dir`; the overlay name comes from its verified `overlay.xml`
    /// (signed by the stored root).
    pub fn load(data_dir: &Path, now: i64) -> Result<Identity, PkiError> {
        let root = read_pem(&data_dir.join(CA_CERT), "CERTIFICATE")?;
        let xml = String::from_utf8_lossy(&read(&data_dir.join(OVERLAY_XML))?).into_owned();
        let conf = config_doc::verify(&xml, Some(&root), None, now).map_err(|e| match e {
            PkiError::Config(m) => {
                PkiError::Config(format!("{}: {m}", data_dir.join(OVERLAY_XML).display()))
            }
            other => other,
        })?;
        config_doc::require_extensions(&conf).map_err(|e| {
            PkiError::Config(format!("{}: {e}", data_dir.join(OVERLAY_XML).display()))
        })?;
        let key = read_pem(&data_dir.join(NODE_KEY), "PRIVATE KEY")?;
        let cert = read_pem(&data_dir.join(NODE_CERT), "CERTIFICATE")?;
        Identity::from_parts(key, cert, root, &conf.overlay, now)
            .map_err(|e| PkiError::Cert(format!("{}: {e}", data_dir.join(NODE_CERT).display())))
    }

    /// Writes key, certificate, root and configuration document into `data_dir`.
    pub fn save(&self, data_dir: &Path, overlay_xml: &str) -> Result<(), PkiError> {
        write(
            &data_dir.join(NODE_KEY),
            to_pem("PRIVATE KEY", &self.key_pkcs8).as_bytes(),
            true,
        )?;
        write(
            &data_dir.join(NODE_CERT),
            to_pem("CERTIFICATE", &self.cert_der).as_bytes(),
            false,
        )?;
        write(
            &data_dir.join(CA_CERT),
            to_pem("CERTIFICATE", &self.root_der).as_bytes(),
            false,
        )?;
        write(&data_dir.join(OVERLAY_XML), overlay_xml.as_bytes(), false)
    }
}

/// Enrolls `user` with `ca` in-process: new ECDSA P-256 key, CSR, certificate.
pub fn enroll_in_process(ca: &Ca, user: &str, now: i64) -> Result<Identity, PkiError> {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| PkiError::Key(e.to_string()))?;
    let csr = super::enroll::make_csr(&kp, user)?;
    // The local one-node overlay's node is the registrar for its own domain.
    let der = ca.issue_with_role(&csr, user, 1, &[ca.overlay()], now)?;
    Identity::from_parts(
        kp.serialized_der().to_vec(),
        der,
        ca.cert_der().to_vec(),
        ca.overlay(),
        now,
    )
}

/// Makes sure `data_dir` holds a usable identity and returns it.
///
/// * First start (no `node.cert.pem`): creates a local overlay CA for `overlay` in
///   `data_dir/ca`, its signed configuration document, and enrolls `user` in-process.
/// * Later starts: loads the identity. If the certificate has expired (or expires within a
///   day) and the local CA is present, re-issues it with the same Node-ID.
/// * An identity for another overlay is an error naming both.
pub fn ensure_local_identity(
    data_dir: &Path,
    overlay: &str,
    user: &str,
    now: i64,
) -> Result<Identity, PkiError> {
    let ca_dir = data_dir.join(LOCAL_CA_DIR);
    if Identity::exists(data_dir) {
        let id = match Identity::load(data_dir, now) {
            Ok(id) => id,
            Err(e)
                if ca_dir.join(super::ca::CA_KEY).exists() && e.to_string().contains("expired") =>
            {
                tracing::warn!(
                    "node certificate in {} has expired; re-issuing it from the local CA",
                    data_dir.display()
                );
                return renew(data_dir, &ca_dir, now);
            }
            Err(e) => return Err(e),
        };
        if id.overlay != overlay {
            return Err(PkiError::Config(format!(
                "data directory {} belongs to overlay {:?}, but the configuration names overlay {overlay:?}",
                data_dir.display(),
                id.overlay
            )));
        }
        if id.not_after - now < 86_400 && ca_dir.join(super::ca::CA_KEY).exists() {
            tracing::info!(
                "node certificate expires within a day; re-issuing it from the local CA"
            );
            return renew(data_dir, &ca_dir, now);
        }
        tracing::info!(
            "loaded node identity from {}: overlay {}, user {}, Node-ID {}",
            data_dir.display(),
            id.overlay,
            id.user,
            hex::encode(id.node_id.to_array())
        );
        return Ok(id);
    }
    let ca = if ca_dir.join(super::ca::CA_KEY).exists() {
        Ca::load(&ca_dir, now)?
    } else {
        Ca::init(&ca_dir, overlay, None, &[], now)?
    };
    let id = enroll_in_process(&ca, user, now)?;
    id.save(data_dir, &ca.config_xml()?)?;
    tracing::info!(
        "created a new overlay CA for overlay {overlay} in {}; this node is user {user}, Node-ID {} \
         (certificate valid until {}). Other nodes join this overlay by enrolling with this CA \
         (`p2psip ca serve --dir {}`).",
        ca_dir.display(),
        hex::encode(id.node_id.to_array()),
        super::rfc3339(id.not_after),
        ca_dir.display()
    );
    Ok(id)
}

fn renew(data_dir: &Path, ca_dir: &Path, now: i64) -> Result<Identity, PkiError> {
    let ca = Ca::load(ca_dir, now)?;
    let old = read_pem(&data_dir.join(NODE_CERT), "CERTIFICATE")?;
    let user = cert::parse(&old, ca.overlay())?
        .user
        .ok_or_else(|| PkiError::Cert("old certificate has no user name".into()))?;
    let id = enroll_in_process(&ca, &user, now)?;
    id.save(data_dir, &ca.config_xml()?)?;
    tracing::info!(
        "re-issued the node certificate: user {user}, Node-ID {} (unchanged)",
        hex::encode(id.node_id.to_array())
    );
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testutil::NOW;

    #[test]
    fn first_start_creates_later_start_loads() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("data");
        let a = ensure_local_identity(&data, "home.p2psip", "node1", NOW).unwrap();
        assert!(data.join(NODE_KEY).exists() && data.join("ca").join("ca.key.pem").exists());
        let b = ensure_local_identity(&data, "home.p2psip", "node1", NOW + 10).unwrap();
        assert_eq!(a.node_id, b.node_id);
        assert_eq!(a.cert_der, b.cert_der);
        assert_eq!(b.user, "node1");
        // Wrong overlay.
        let e = ensure_local_identity(&data, "other", "node1", NOW).unwrap_err();
        assert!(e.to_string().contains("other"), "{e}");
        // Expired: re-issued with the same Node-ID.
        let later = NOW + 400 * 86_400;
        let c = ensure_local_identity(&data, "home.p2psip", "node1", later).unwrap();
        assert_eq!(c.node_id, a.node_id);
        assert_ne!(c.cert_der, a.cert_der);
        // The signature key works against the certificate.
        let (alg, sig) = c.key.sign(b"m").unwrap();
        crate::pki::sign::verify(&c.cert_der, alg, b"m", &sig).unwrap();
    }

    #[test]
    fn tampered_files_are_refused() {
        let d = tempfile::tempdir().unwrap();
        ensure_local_identity(d.path(), "x.test", "u", NOW).unwrap();
        let p = d.path().join(OVERLAY_XML);
        let xml = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, xml.replace("<max-count>4<", "<max-count>5<")).unwrap();
        assert!(Identity::load(d.path(), NOW).is_err());
        std::fs::write(&p, xml).unwrap();
        Identity::load(d.path(), NOW).unwrap();
        // A key that is not the certificate's.
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        std::fs::write(d.path().join(NODE_KEY), kp.serialize_pem()).unwrap();
        assert!(Identity::load(d.path(), NOW).is_err());
    }
}
