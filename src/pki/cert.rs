//! The Node-ID certificate format (RFC 6940 sections 11.3 and 14.15).
//!
//! A node certificate has an empty subject, exactly one rfc822Name SAN (the user name) and one
//! URI SAN per Node-ID, each a reload URI `reload://<destination list>@<overlay>/` whose
//! destination list is the hex of a single `node` Destination: `01 10 <16-byte Node-ID>`.

use super::PkiError;
use reload::wire::NodeId;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// DestinationType `node` (RFC 6940 6.3.2.2).
const DEST_NODE: u8 = 1;

/// The reload URI naming `node` in `overlay`: `reload://0110<32 hex>@<overlay>/`.
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
}

fn parse_x509(der: &[u8]) -> Result<X509Certificate<'_>, PkiError> {
    let (rest, cert) = X509Certificate::from_der(der)
        .map_err(|e| PkiError::Cert(format!("cannot parse certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(PkiError::Cert("trailing bytes after certificate".into()));
    }
    Ok(cert)
}

/// Reads a DER certificate: Node-IDs for `overlay`, user name, validity, public key.
pub fn parse(der: &[u8], overlay: &str) -> Result<CertInfo, PkiError> {
    let cert = parse_x509(der)?;
    let mut node_ids = Vec::new();
    let mut users = Vec::new();
    if let Some(san) = cert
        .subject_alternative_name()
        .map_err(|e| PkiError::Cert(format!("bad subjectAltName: {e}")))?
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
    let user = if users.len() == 1 { users.pop() } else { None };
    Ok(CertInfo {
        node_ids,
        user,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        spki_der: cert.public_key().raw.to_vec(),
        is_ca: cert.is_ca(),
    })
}

/// Checks that `leaf_der` is issued and signed by the overlay root `root_der`, that both are
/// valid at `now_unix`, that the root has BasicConstraints CA=true and the leaf does not.
/// Returns the leaf's parsed contents for `overlay`.
///
/// p2psip issues node certificates directly from the root: no intermediates.
pub fn verify_chain(
    leaf_der: &[u8],
    root_der: &[u8],
    overlay: &str,
    now_unix: i64,
) -> Result<CertInfo, PkiError> {
    let leaf = parse_x509(leaf_der)?;
    let root = parse_x509(root_der)?;
    let bc = root
        .basic_constraints()
        .map_err(|e| PkiError::Untrusted(format!("root BasicConstraints unreadable: {e}")))?;
    if !bc.is_some_and(|b| b.value.ca) {
        return Err(PkiError::Untrusted(
            "the overlay root certificate is not a CA (BasicConstraints CA=false)".into(),
        ));
    }
    if leaf_der == root_der {
        return Err(PkiError::Untrusted(
            "the root certificate itself is not a node certificate".into(),
        ));
    }
    if leaf.is_ca() {
        return Err(PkiError::Untrusted(
            "a CA certificate cannot be a node certificate".into(),
        ));
    }
    if leaf.issuer().as_raw() != root.subject().as_raw() {
        return Err(PkiError::Untrusted(
            "certificate was not issued by this overlay's CA (issuer name differs)".into(),
        ));
    }
    leaf.verify_signature(Some(root.public_key()))
        .map_err(|_| {
            PkiError::Untrusted(
                "certificate signature does not verify with the overlay CA key".into(),
            )
        })?;
    for (what, c) in [("certificate", &leaf), ("overlay CA certificate", &root)] {
        let v = c.validity();
        if now_unix < v.not_before.timestamp() {
            return Err(PkiError::Untrusted(format!(
                "{what} is not valid yet (from {})",
                v.not_before
            )));
        }
        if now_unix > v.not_after.timestamp() {
            return Err(PkiError::Untrusted(format!(
                "{what} expired on {}",
                v.not_after
            )));
        }
    }
    parse(leaf_der, overlay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ca::Ca;
    use crate::pki::testutil;

    #[test]
    fn reload_uri_is_destination_list_hex() {
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

    #[test]
    fn issued_cert_parses_and_chains() {
        let now = testutil::NOW;
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(dir.path(), "test.overlay", None, &[], now).unwrap();
        let (csr, _key) = testutil::csr("alice@test.overlay");
        let der = ca.issue(&csr, "alice@test.overlay", 1, now).unwrap();
        let info = verify_chain(&der, ca.cert_der(), "test.overlay", now).unwrap();
        assert_eq!(info.node_ids.len(), 1);
        assert_eq!(info.user.as_deref(), Some("alice@test.overlay"));
        assert!(!info.is_ca);
        // No registrar role unless granted; with the role, the domains come back.
        let x = reload::crypto::x509::parse(&der, "test.overlay").unwrap();
        assert!(x.registrar_domains.is_empty());
        let (csr2, _key2) = testutil::csr("reg@test.overlay");
        let der2 = ca
            .issue_with_role(&csr2, "reg@test.overlay", 1, &["test.overlay"], now)
            .unwrap();
        let x2 = reload::crypto::x509::parse(&der2, "test.overlay").unwrap();
        assert_eq!(x2.registrar_domains, vec!["test.overlay".to_string()]);
        assert!(verify_chain(&der2, ca.cert_der(), "test.overlay", now).is_ok());
        // Another overlay's name: no Node-IDs.
        assert!(parse(&der, "other").unwrap().node_ids.is_empty());
        // Outside the validity window.
        assert!(verify_chain(&der, ca.cert_der(), "test.overlay", info.not_after + 1).is_err());
        assert!(verify_chain(&der, ca.cert_der(), "test.overlay", info.not_before - 1).is_err());
        // A foreign CA.
        let dir2 = tempfile::tempdir().unwrap();
        let other = Ca::init(dir2.path(), "test.overlay", None, &[], now).unwrap();
        let e = verify_chain(&der, other.cert_der(), "test.overlay", now).unwrap_err();
        assert!(e.to_string().contains("CA"), "{e}");
        // The root as a leaf, and a non-CA as root.
        assert!(verify_chain(ca.cert_der(), ca.cert_der(), "test.overlay", now).is_err());
        assert!(verify_chain(&der, &der, "test.overlay", now).is_err());
        // A flipped bit in the signature.
        let mut bad = der.clone();
        let n = bad.len() - 3;
        bad[n] ^= 1;
        assert!(verify_chain(&bad, ca.cert_der(), "test.overlay", now).is_err());
    }
}
