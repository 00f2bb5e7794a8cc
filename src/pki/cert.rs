//! The Node-ID certificate format (RFC 6940 sections 11.3 and 14.15).
//!
//! A node certificate has an empty subject, exactly one rfc822Name SAN (the user name) and one
//! URI SAN per Node-ID, each a reload URI `reload://<destination list>@<overlay>/` whose
//! destination list is the hex of a single `node` Destination: `01 10 <16-byte Node-ID>`.
//!
//! The implementation is `reload::crypto::x509`; this module re-exports it for the PKI.
//! p2psip issues node certificates directly from the root: no intermediates.

pub use reload::crypto::x509::{parse, reload_uri, verify_chain};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ca::Ca;
    use crate::pki::testutil;

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
