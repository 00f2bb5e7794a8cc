//! The overlay CA: `p2psip ca init` and certificate issuing (RFC 6940 sections 11.1, 11.3).
//!
//! A CA directory holds:
//! * `ca.key.pem`: the CA's ECDSA P-256 private key (PKCS#8, mode 0600);
//! * `ca.cert.pem`: the self-signed CA certificate (BasicConstraints CA=true, 10 years);
//! * `overlay.xml`: the signed overlay configuration document;
//! * `nodeids.txt`: `user hexid[,hexid...]` lines, so a returning user gets the same Node-IDs.

use super::config_doc::{self, ConfigParams};
use super::sign::NodeKey;
use super::{PkiError, Refusal, cert, read, read_pem, to_pem, write};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use reload::wire::NodeId;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// CA key file name.
pub const CA_KEY: &str = "ca.key.pem";
/// CA certificate file name.
pub const CA_CERT: &str = "ca.cert.pem";
/// Configuration document file name.
pub const OVERLAY_XML: &str = "overlay.xml";
/// User to Node-ID map file name.
pub const NODEIDS: &str = "nodeids.txt";

/// Lifetime of node certificates.
pub const NODE_CERT_DAYS: i64 = 365;
/// Lifetime of the CA certificate.
pub const CA_CERT_DAYS: i64 = 3650;
/// Most Node-IDs one user may hold.
pub const MAX_NODE_IDS: usize = 4;
/// Back-dating of notBefore, for clocks slightly behind.
const SKEW: i64 = 3600;

/// A loaded overlay CA.
pub struct Ca {
    dir: PathBuf,
    overlay: String,
    key: KeyPair,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("dir", &self.dir)
            .field("overlay", &self.overlay)
            .finish_non_exhaustive()
    }
}

fn rc(e: rcgen::Error) -> PkiError {
    PkiError::Crypto(e.to_string())
}

fn time(unix: i64) -> Result<time::OffsetDateTime, PkiError> {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map_err(|e| PkiError::Crypto(format!("time {unix}: {e}")))
}

fn serial() -> Result<SerialNumber, PkiError> {
    let mut s = super::random::<16>()?;
    s[0] &= 0x7f; // positive INTEGER
    s[0] |= 0x01; // no leading zero byte to strip
    Ok(SerialNumber::from_slice(&s))
}

/// Checks a user name is a plausible rfc822Name: 1..=128 printable ASCII characters from a
/// conservative set, no NULs, spaces, colons or quotes (RFC 6940 11.3 asks servers to allow
/// only legal characters).
pub fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 128
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-@".contains(&b))
}

/// Parses `host:port` or `[v6]:port` into (address literal, port).
pub fn parse_bootstrap(s: &str) -> Result<(String, u16), PkiError> {
    let sa: std::net::SocketAddr = s.parse().map_err(|_| {
        PkiError::Config(format!(
            "bootstrap {s:?}: expected an IP address and port, e.g. 192.0.2.1:6084 or [2001:db8::1]:6084"
        ))
    })?;
    Ok((sa.ip().to_string(), sa.port()))
}

impl Ca {
    /// Creates a new CA in `dir` (refuses if one exists) with its signed configuration document.
    pub fn init(
        dir: &Path,
        overlay: &str,
        enrollment_url: Option<&str>,
        bootstrap: &[String],
        now: i64,
    ) -> Result<Ca, PkiError> {
        if overlay.is_empty()
            || !overlay
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
        {
            return Err(PkiError::Config(format!(
                "overlay name {overlay:?}: use a DNS-style name (letters, digits, '-', '.')"
            )));
        }
        if dir.join(CA_KEY).exists() {
            return Err(PkiError::Config(format!(
                "{} already holds a CA ({CA_KEY} exists); refusing to overwrite it",
                dir.display()
            )));
        }
        let boot = bootstrap
            .iter()
            .map(|b| parse_bootstrap(b))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(u) = enrollment_url
            && !u.starts_with("https://")
        {
            return Err(PkiError::Config(format!(
                "enrollment URL {u:?} must be https:// (RFC 6940 11.1)"
            )));
        }
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(rc)?;
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
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p.not_before = time(now - SKEW)?;
        p.not_after = time(now + CA_CERT_DAYS * 86_400)?;
        p.serial_number = Some(serial()?);
        let cert = p.self_signed(&key).map_err(rc)?;
        let ca = Ca {
            dir: dir.to_path_buf(),
            overlay: overlay.to_string(),
            cert_der: cert.der().to_vec(),
            key,
        };
        let xml = ca.make_config(enrollment_url, &boot, 1, now)?;
        write(&dir.join(CA_KEY), ca.key.serialize_pem().as_bytes(), true)?;
        write(
            &dir.join(CA_CERT),
            to_pem("CERTIFICATE", &ca.cert_der).as_bytes(),
            false,
        )?;
        write(&dir.join(OVERLAY_XML), xml.as_bytes(), false)?;
        Ok(ca)
    }

    /// Loads the CA in `dir`; the overlay name comes from its configuration document.
    pub fn load(dir: &Path, now: i64) -> Result<Ca, PkiError> {
        let key_pem = String::from_utf8_lossy(&read(&dir.join(CA_KEY))?).into_owned();
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| PkiError::Key(format!("{}: {e}", dir.join(CA_KEY).display())))?;
        let cert_der = read_pem(&dir.join(CA_CERT), "CERTIFICATE")?;
        let xml = String::from_utf8_lossy(&read(&dir.join(OVERLAY_XML))?).into_owned();
        let conf = config_doc::verify(&xml, Some(&cert_der), None, now)?;
        if key.public_key_raw() != cert_pubkey(&cert_der)?.as_slice() {
            return Err(PkiError::Key(format!(
                "{CA_KEY} does not belong to {CA_CERT} in {}",
                dir.display()
            )));
        }
        Ok(Ca {
            dir: dir.to_path_buf(),
            overlay: conf.overlay,
            key,
            cert_der,
        })
    }

    /// The CA certificate (DER).
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The overlay name.
    pub fn overlay(&self) -> &str {
        &self.overlay
    }

    /// The CA directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The signed configuration document as stored.
    pub fn config_xml(&self) -> Result<String, PkiError> {
        Ok(String::from_utf8_lossy(&read(&self.dir.join(OVERLAY_XML))?).into_owned())
    }

    /// The CA key for RELOAD-style signatures (the configuration document).
    fn node_key(&self) -> Result<NodeKey, PkiError> {
        Ok(NodeKey::from_pkcs8(self.key.serialized_der())?)
    }

    /// Writes a new signed configuration document.
    fn make_config(
        &self,
        enrollment_url: Option<&str>,
        bootstrap: &[(String, u16)],
        sequence: u16,
        now: i64,
    ) -> Result<String, PkiError> {
        let params = ConfigParams {
            overlay: self.overlay.clone(),
            sequence,
            expiration: now + 365 * 86_400,
            root_certs: vec![self.cert_der.clone()],
            enrollment_servers: enrollment_url.map(str::to_string).into_iter().collect(),
            bootstrap: bootstrap.to_vec(),
        };
        config_doc::build(&params, &self.node_key()?, &self.cert_der)
    }

    /// The Node-IDs for `user`, creating random new ones as needed so that there are at least
    /// `count`; the map is saved before returning.
    pub fn node_ids_for(&self, user: &str, count: usize) -> Result<Vec<NodeId>, PkiError> {
        let path = self.dir.join(NODEIDS);
        let mut map = load_map(&path)?;
        let ids = map.entry(user.to_string()).or_default();
        let before = ids.len();
        while ids.len() < count {
            let id = NodeId(u128::from_be_bytes(super::random::<16>()?));
            if id != NodeId::INVALID && id != NodeId::WILDCARD {
                ids.push(id);
            }
        }
        let out = ids[..count].to_vec(); // ok: ids.len() >= count by the loop above
        if ids.len() != before {
            save_map(&path, &map)?;
        }
        Ok(out)
    }

    /// `count` new random Node-IDs recorded for `user` (after any it had); the map is saved.
    pub fn new_node_ids_for(&self, user: &str, count: usize) -> Result<Vec<NodeId>, PkiError> {
        let path = self.dir.join(NODEIDS);
        let mut map = load_map(&path)?;
        let ids = map.entry(user.to_string()).or_default();
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let id = NodeId(u128::from_be_bytes(super::random::<16>()?));
            if id != NodeId::INVALID && id != NodeId::WILDCARD && !ids.contains(&id) {
                out.push(id);
            }
        }
        ids.extend_from_slice(&out);
        save_map(&path, &map)?;
        Ok(out)
    }

    /// Issues a node certificate for a CSR (DER): SANs = one reload URI per Node-ID plus the
    /// rfc822Name `user`; empty subject; valid from `now` (minus an hour) for a year.
    ///
    /// Refusals carry the RFC 6940 11.3 tokens: `bad_CSR` for an unparsable CSR, a bad CSR
    /// signature or an unsupported key (ECDSA P-256 or RSA only); `username_not_available` when
    /// the CSR names another user or the name is not acceptable; `Node-IDs_not_available` for a
    /// count outside 1..=4.
    pub fn issue(
        &self,
        csr_der: &[u8],
        user: &str,
        count: usize,
        now: i64,
    ) -> Result<Vec<u8>, PkiError> {
        self.issue_with_role(csr_der, user, count, &[], now)
    }

    /// [`Ca::issue`], granting the registrar role for the AOR domains in `registrar` (the
    /// p2psip registrar-role extension, docs/SECURITY.md; empty = no role).
    pub fn issue_with_role(
        &self,
        csr_der: &[u8],
        user: &str,
        count: usize,
        registrar: &[&str],
        now: i64,
    ) -> Result<Vec<u8>, PkiError> {
        self.issue_ext(csr_der, user, count, registrar, false, now)
    }

    /// [`Ca::issue_with_role`]; with `fresh`, new Node-IDs even for a user seen before.
    pub fn issue_ext(
        &self,
        csr_der: &[u8],
        user: &str,
        count: usize,
        registrar: &[&str],
        fresh: bool,
        now: i64,
    ) -> Result<Vec<u8>, PkiError> {
        let csr = CertificateSigningRequestParams::from_der(
            &rustls::pki_types::CertificateSigningRequestDer::from(csr_der.to_vec()),
        )
        .map_err(|_| PkiError::Refused(Refusal::BadCsr))?;
        let alg = csr.public_key.algorithm();
        if alg != &rcgen::PKCS_ECDSA_P256_SHA256 && alg != &rcgen::PKCS_RSA_SHA256 {
            return Err(PkiError::Refused(Refusal::BadCsr));
        }
        if !valid_user(user) {
            return Err(PkiError::Refused(Refusal::UsernameNotAvailable));
        }
        for san in &csr.params.subject_alt_names {
            if let SanType::Rfc822Name(n) = san
                && n.as_str() != user
            {
                return Err(PkiError::Refused(Refusal::UsernameNotAvailable));
            }
        }
        if count == 0 || count > MAX_NODE_IDS {
            return Err(PkiError::Refused(Refusal::NodeIdsNotAvailable));
        }
        let ids = if fresh {
            self.new_node_ids_for(user, count)?
        } else {
            self.node_ids_for(user, count)?
        };
        self.sign_node_cert_with_role(&csr.public_key, user, &ids, registrar, now, NODE_CERT_DAYS)
    }

    /// Signs a node certificate for `public_key` with the given identities and lifetime.
    pub fn sign_node_cert(
        &self,
        public_key: &impl rcgen::PublicKeyData,
        user: &str,
        ids: &[NodeId],
        now: i64,
        days: i64,
    ) -> Result<Vec<u8>, PkiError> {
        self.sign_node_cert_with_role(public_key, user, ids, &[], now, days)
    }

    /// [`Ca::sign_node_cert`] with the registrar-role extension for `registrar` domains.
    pub fn sign_node_cert_with_role(
        &self,
        public_key: &impl rcgen::PublicKeyData,
        user: &str,
        ids: &[NodeId],
        registrar: &[&str],
        now: i64,
        days: i64,
    ) -> Result<Vec<u8>, PkiError> {
        let mut p = CertificateParams::default();
        if !registrar.is_empty() {
            p.custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(
                    &reload::crypto::x509::OID_REGISTRAR_ARCS,
                    reload::crypto::x509::registrar_extension_value(registrar),
                ));
        }
        p.distinguished_name = DistinguishedName::new();
        for id in ids {
            let uri = cert::reload_uri(*id, &self.overlay);
            p.subject_alt_names
                .push(SanType::URI(uri.try_into().map_err(rc)?));
        }
        p.subject_alt_names.push(SanType::Rfc822Name(
            user.to_string().try_into().map_err(rc)?,
        ));
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.use_authority_key_identifier_extension = true;
        p.not_before = time(now - SKEW)?;
        p.not_after = time(now + days * 86_400)?;
        p.serial_number = Some(serial()?);
        let issuer = self.issuer()?;
        Ok(p.signed_by(public_key, &issuer).map_err(rc)?.der().to_vec())
    }

    fn issuer(&self) -> Result<Issuer<'static, &KeyPair>, PkiError> {
        Issuer::from_ca_cert_der(&self.cert_der.clone().into(), &self.key).map_err(rc)
    }

    /// Issues an HTTPS server certificate for `host` (IP literal or DNS name), for the
    /// enrollment server; returns (certificate DER, PKCS#8 key DER).
    pub fn issue_server_cert(&self, host: &str, now: i64) -> Result<(Vec<u8>, Vec<u8>), PkiError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(rc)?;
        let mut p = CertificateParams::new(vec![host.to_string()]).map_err(rc)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, host);
        p.distinguished_name = dn;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.use_authority_key_identifier_extension = true;
        p.not_before = time(now - SKEW)?;
        p.not_after = time(now + NODE_CERT_DAYS * 86_400)?;
        p.serial_number = Some(serial()?);
        let cert = p.signed_by(&key, &self.issuer()?).map_err(rc)?;
        Ok((cert.der().to_vec(), key.serialized_der().to_vec()))
    }
}

/// The subjectPublicKey bits of a certificate.
fn cert_pubkey(der: &[u8]) -> Result<Vec<u8>, PkiError> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, c) = X509Certificate::from_der(der)
        .map_err(|e| PkiError::Cert(format!("cannot parse certificate: {e}")))?;
    Ok(c.public_key().subject_public_key.data.to_vec())
}

fn load_map(path: &Path) -> Result<BTreeMap<String, Vec<NodeId>>, PkiError> {
    let mut map = BTreeMap::new();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(map),
        Err(source) => {
            return Err(PkiError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || {
            PkiError::Config(format!(
                "{}:{}: expected `user hexid[,hexid]`",
                path.display(),
                n + 1
            ))
        };
        let (user, ids) = line.split_once(' ').ok_or_else(bad)?;
        let ids = ids
            .trim()
            .split(',')
            .map(|h| NodeId::from_hex(h.trim()).ok_or_else(bad))
            .collect::<Result<Vec<_>, _>>()?;
        map.insert(user.to_string(), ids);
    }
    Ok(map)
}

fn save_map(path: &Path, map: &BTreeMap<String, Vec<NodeId>>) -> Result<(), PkiError> {
    let mut s =
        String::from("# user -> Node-IDs issued by this CA (RFC 6940 11.3: same ones again)\n");
    for (u, ids) in map {
        let hex: Vec<String> = ids.iter().map(|i| hex::encode(i.to_array())).collect();
        s.push_str(&format!("{u} {}\n", hex.join(",")));
    }
    write(path, s.as_bytes(), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testutil::{self, NOW};

    #[test]
    fn init_load_issue_and_returning_user() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(dir.path(), "ov.test", None, &["10.0.0.1:6084".into()], NOW).unwrap();
        assert!(
            Ca::init(dir.path(), "ov.test", None, &[], NOW).is_err(),
            "no overwrite"
        );
        let mode = std::fs::metadata(dir.path().join(CA_KEY)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.permissions().mode() & 0o777, 0o600);
        let ca2 = Ca::load(dir.path(), NOW).unwrap();
        assert_eq!(ca2.cert_der(), ca.cert_der());
        assert_eq!(ca2.overlay(), "ov.test");

        let (csr, _) = testutil::csr("bob");
        let c1 = ca.issue(&csr, "bob", 1, NOW).unwrap();
        let (csr2, _) = testutil::csr("bob");
        let c2 = ca2.issue(&csr2, "bob", 2, NOW).unwrap();
        let (csr3, _) = testutil::csr("carol");
        let c3 = ca2.issue(&csr3, "carol", 1, NOW).unwrap();
        let i1 = cert::verify_chain(&c1, ca.cert_der(), "ov.test", NOW).unwrap();
        let i2 = cert::verify_chain(&c2, ca.cert_der(), "ov.test", NOW).unwrap();
        let i3 = cert::verify_chain(&c3, ca.cert_der(), "ov.test", NOW).unwrap();
        assert_eq!(i2.node_ids.len(), 2);
        assert_eq!(
            i2.node_ids[0], i1.node_ids[0],
            "returning user keeps the Node-ID"
        );
        assert_ne!(i3.node_ids[0], i1.node_ids[0]);
        assert_eq!(i3.user.as_deref(), Some("carol"));
        // Empty subject.
        use x509_parser::prelude::{FromDer, X509Certificate};
        let (_, x) = X509Certificate::from_der(&c1).unwrap();
        assert_eq!(x.subject().iter().count(), 0);
    }

    #[test]
    fn refusals() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(dir.path(), "ov.test", None, &[], NOW).unwrap();
        let (csr, _) = testutil::csr("bob");
        let tok = |r: Result<Vec<u8>, PkiError>| match r {
            Err(PkiError::Refused(t)) => t,
            other => panic!("{:?}", other.map(|_| ())),
        };
        assert_eq!(tok(ca.issue(b"junk", "bob", 1, NOW)), Refusal::BadCsr);
        let mut bad = csr.clone();
        let n = bad.len() - 2;
        bad[n] ^= 1;
        assert_eq!(tok(ca.issue(&bad, "bob", 1, NOW)), Refusal::BadCsr);
        assert_eq!(
            tok(ca.issue(&csr, "alice", 1, NOW)),
            Refusal::UsernameNotAvailable
        );
        assert_eq!(
            tok(ca.issue(&csr, "b ob", 1, NOW)),
            Refusal::UsernameNotAvailable
        );
        assert_eq!(
            tok(ca.issue(&csr, "bob", 0, NOW)),
            Refusal::NodeIdsNotAvailable
        );
        assert_eq!(
            tok(ca.issue(&csr, "bob", 5, NOW)),
            Refusal::NodeIdsNotAvailable
        );
        assert!(Ca::init(dir.path(), "bad name/x", None, &[], NOW).is_err());
        assert!(parse_bootstrap("host:1").is_err());
    }
}
