//! Test PKI: an overlay CA and node certificates made with rcgen, in memory.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType,
};
use reload::crypto::x509::{OID_REGISTRAR_ARCS, registrar_extension_value, reload_uri};
use reload::wire::NodeId;

/// A fixed "now" for tests (2026-01-01T00:00:00Z).
pub const NOW: i64 = 1_767_225_600;

/// A test overlay CA.
pub struct TestCa {
    pub overlay: String,
    pub cert_der: Vec<u8>,
    key: KeyPair,
    params: CertificateParams,
}

/// A node identity: certificate and PKCS#8 key.
#[derive(Clone)]
pub struct TestIdentity {
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

fn t(unix: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

impl TestCa {
    pub fn new(overlay: &str) -> Self {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            format!("p2psip overlay CA for {overlay}"),
        );
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p.not_before = t(NOW - 86_400 * 10);
        p.not_after = t(NOW + 86_400 * 3650);
        let cert = p.self_signed(&key).unwrap();
        Self {
            overlay: overlay.into(),
            cert_der: cert.der().to_vec(),
            key,
            params: p,
        }
    }

    /// Issues a node certificate (ECDSA P-256 unless `rsa`), valid [from, until].
    pub fn issue(
        &self,
        user: &str,
        ids: &[NodeId],
        registrar: &[&str],
        from: i64,
        until: i64,
        rsa: bool,
    ) -> TestIdentity {
        let key = if rsa {
            KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap()
        } else {
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
        };
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        for id in ids {
            p.subject_alt_names.push(SanType::URI(
                reload_uri(*id, &self.overlay).try_into().unwrap(),
            ));
        }
        p.subject_alt_names
            .push(SanType::Rfc822Name(user.to_string().try_into().unwrap()));
        if !registrar.is_empty() {
            p.custom_extensions.push(CustomExtension::from_oid_content(
                &OID_REGISTRAR_ARCS,
                registrar_extension_value(registrar),
            ));
        }
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.not_before = t(from);
        p.not_after = t(until);
        let issuer = Issuer::new(self.params.clone(), &self.key);
        let cert = p.signed_by(&key, &issuer).unwrap();
        TestIdentity {
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }

    /// A valid ECDSA node certificate for one Node-ID.
    pub fn node(&self, user: &str, id: NodeId) -> TestIdentity {
        self.issue(user, &[id], &[], NOW - 3600, NOW + 86_400 * 365, false)
    }
}
