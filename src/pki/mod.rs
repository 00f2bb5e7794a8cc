//! The overlay's public-key infrastructure (RFC 6940 sections 6.3.4, 11.1, 11.3, 13):
//! an overlay CA, Node-ID certificates, the signed overlay configuration document, HTTPS
//! enrollment, RELOAD signatures, and rustls verifiers for overlay links.
//!
//! See docs/SECURITY.md for the trust model.

// Parts of this module (TLS verifiers, signatures, the local identity) are used by the link
// layer and the node once they are wired in; until then the binary does not call everything.
#![allow(dead_code)]

pub mod ca;
pub mod cert;
pub mod cmd;
pub mod config_doc;
pub mod enroll;
pub mod http;
pub mod join;
pub mod local;
pub mod sign;
pub mod tls;

use std::path::Path;

/// Why a PKI operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A certificate could not be parsed or lacks what we need.
    #[error("certificate: {0}")]
    Cert(String),
    /// A certificate does not chain to the overlay root or is outside its validity.
    #[error("untrusted certificate: {0}")]
    Untrusted(String),
    /// A private key could not be loaded or generated.
    #[error("key: {0}")]
    Key(String),
    /// A cryptographic primitive failed.
    #[error("crypto: {0}")]
    Crypto(String),
    /// A signature is missing, malformed, or does not verify.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// Bytes could not be decoded.
    #[error("decode: {0}")]
    Decode(String),
    /// Bytes could not be encoded.
    #[error("encode: {0}")]
    Encode(String),
    /// The overlay configuration document is unusable.
    #[error("overlay configuration: {0}")]
    Config(String),
    /// The enrollment server refused (RFC 6940 11.3 token).
    #[error("enrollment refused: {0}")]
    Refused(Refusal),
    /// Talking to the enrollment server failed.
    #[error("enrollment: {0}")]
    Enroll(String),
}

impl From<reload::crypto::x509::X509Error> for PkiError {
    fn from(e: reload::crypto::x509::X509Error) -> Self {
        use reload::crypto::x509::X509Error;
        match e {
            X509Error::Cert(m) => PkiError::Cert(m),
            X509Error::Untrusted(m) => PkiError::Untrusted(m),
            X509Error::BadSignature(m) => PkiError::BadSignature(m),
            // A key that loaded but could not sign is a failed primitive, as before.
            X509Error::Key(m) if m.ends_with("signing failed") => PkiError::Crypto(m),
            X509Error::Key(m) => PkiError::Key(m),
        }
    }
}

/// The RFC 6940 section 11.3 failure tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `failed_authentication`.
    FailedAuthentication,
    /// `username_not_available`.
    UsernameNotAvailable,
    /// `Node-IDs_not_available`.
    NodeIdsNotAvailable,
    /// `bad_CSR`.
    BadCsr,
    /// Anything else the server said.
    Unknown(String),
}

impl Refusal {
    /// The token as sent in the 403 body.
    pub fn token(&self) -> &str {
        match self {
            Refusal::FailedAuthentication => "failed_authentication",
            Refusal::UsernameNotAvailable => "username_not_available",
            Refusal::NodeIdsNotAvailable => "Node-IDs_not_available",
            Refusal::BadCsr => "bad_CSR",
            Refusal::Unknown(s) => s,
        }
    }

    /// Parses a 403 body.
    pub fn from_token(s: &str) -> Refusal {
        match s.trim() {
            "failed_authentication" => Refusal::FailedAuthentication,
            "username_not_available" => Refusal::UsernameNotAvailable,
            "Node-IDs_not_available" => Refusal::NodeIdsNotAvailable,
            "bad_CSR" => Refusal::BadCsr,
            other => Refusal::Unknown(other.chars().take(200).collect()),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.token())
    }
}

/// Reads a file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    std::fs::read(path).map_err(|source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a file, naming it in the error; `secret` files are made readable by the owner only.
pub fn write(path: &Path, data: &[u8], secret: bool) -> Result<(), PkiError> {
    let io = |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    // Write to a temporary name and rename, so a crash never leaves half a key.
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        if secret {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(io)?;
        f.write_all(data).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

/// PEM-encodes DER with the given label.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Decodes the first PEM block with the given label.
pub fn from_pem(label: &str, pem: &str) -> Result<Vec<u8>, PkiError> {
    use base64::Engine;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem
        .find(&begin)
        .ok_or_else(|| PkiError::Decode(format!("no {label} PEM block")))?
        + begin.len();
    let stop = pem[start..]
        .find(&end)
        .ok_or_else(|| PkiError::Decode(format!("unterminated {label} PEM block")))?
        + start;
    let b64: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| PkiError::Decode(format!("{label} PEM: {e}")))
}

/// Reads a PEM file's first block with `label`.
pub fn read_pem(path: &Path, label: &str) -> Result<Vec<u8>, PkiError> {
    let text = read(path)?;
    from_pem(label, &String::from_utf8_lossy(&text)).map_err(|e| match e {
        PkiError::Decode(m) => PkiError::Decode(format!("{}: {m}", path.display())),
        other => other,
    })
}

/// Seconds since the Unix epoch now (the binary's clock; the PKI functions take `now`).
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Cryptographically random bytes.
pub fn random<const N: usize>() -> Result<[u8; N], PkiError> {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b)
        .map_err(|_| PkiError::Crypto("random generator failed".into()))?;
    Ok(b)
}

/// Formats Unix seconds as RFC 3339 UTC (`2027-01-01T00:00:00Z`).
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Keys and certificates for unit tests.

    use super::sign::NodeKey;

    /// A fixed "now" (2026-11-01T00:00:00Z).
    pub const NOW: i64 = 1_793_491_200;

    /// An ECDSA key and a self-signed certificate for it.
    pub fn self_signed_ecdsa() -> (NodeKey, Vec<u8>) {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.test".to_string()])
            .unwrap()
            .self_signed(&kp)
            .unwrap();
        (
            NodeKey::from_pkcs8(kp.serialized_der()).unwrap(),
            cert.der().to_vec(),
        )
    }

    /// An RSA-2048 key and a self-signed certificate for it.
    pub fn self_signed_rsa() -> (NodeKey, Vec<u8>) {
        let kp =
            rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                .unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.test".to_string()])
            .unwrap()
            .self_signed(&kp)
            .unwrap();
        (
            NodeKey::from_pkcs8(kp.serialized_der()).unwrap(),
            cert.der().to_vec(),
        )
    }

    /// A CSR (DER) for a fresh ECDSA key naming `user`, and the key.
    pub fn csr(user: &str) -> (Vec<u8>, rcgen::KeyPair) {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let der = super::enroll::make_csr(&kp, user).unwrap();
        (der, kp)
    }

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(NOW), "2026-11-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400 + 3661), "2000-02-29T01:01:01Z");
    }

    #[test]
    fn pem_round_trip() {
        let der: Vec<u8> = (0..200u8).collect();
        let pem = super::to_pem("CERTIFICATE", &der);
        assert_eq!(super::from_pem("CERTIFICATE", &pem).unwrap(), der);
        assert!(super::from_pem("PRIVATE KEY", &pem).is_err());
    }
}
