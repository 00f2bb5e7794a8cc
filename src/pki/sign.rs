//! Signing and verification over raw bytes (RFC 6940 section 6.3.4), and the SecurityBlock
//! bytes that carry a signature.
//!
//! p2psip signs with ECDSA P-256 + SHA-256 (RELOAD algorithm `04 03`; the signature value is the
//! ASN.1 DER `ECDSA-Sig-Value`, as in TLS) and, when the node key is RSA, with
//! RSASSA-PKCS1-v1_5 + SHA-256 (`04 01`, the algorithm RFC 6940 makes mandatory). Both are
//! verified. The verifier is always given the signer's certificate (DER).

use super::PkiError;
pub use reload::crypto::HASH_SHA256;
pub use reload::crypto::x509::{NodeKey, SigAlg, sha256, verify};

/// A RELOAD SecurityBlock with X.509 certificates and a `cert_hash` signer identity
/// (RFC 6940 section 6.3.4; RELOAD-WIRE.md section 3). Only what the PKI needs: the overlay
/// configuration signature. The message codec in `reload/` has its own full version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityBlock {
    /// DER certificates (GenericCertificate type 0 = X.509).
    pub certificates: Vec<Vec<u8>>,
    /// Signature algorithm.
    pub alg: SigAlg,
    /// Hash algorithm of the cert_hash identity (always SHA-256 when we write).
    pub identity_hash_alg: u8,
    /// certificate_hash = H(signer DER certificate).
    pub cert_hash: Vec<u8>,
    /// The signature value.
    pub signature: Vec<u8>,
}

/// SignerIdentityType cert_hash.
const IDENTITY_CERT_HASH: u8 = 1;
/// CertificateType X.509.
const CERT_X509: u8 = 0;

impl SecurityBlock {
    /// Signs `data` with `key`, naming `cert_der` as the signer and carrying it.
    pub fn sign(key: &NodeKey, cert_der: &[u8], data: &[u8]) -> Result<SecurityBlock, PkiError> {
        let (alg, signature) = key.sign(data)?;
        Ok(SecurityBlock {
            certificates: vec![cert_der.to_vec()],
            alg,
            identity_hash_alg: HASH_SHA256,
            cert_hash: sha256(cert_der).to_vec(),
            signature,
        })
    }

    /// The certificate the signer identity designates, if carried in the block.
    pub fn signer_cert(&self) -> Option<&[u8]> {
        if self.identity_hash_alg != HASH_SHA256 {
            return None;
        }
        self.certificates
            .iter()
            .find(|c| sha256(c).as_slice() == self.cert_hash.as_slice())
            .map(|c| c.as_slice())
    }

    /// Verifies the signature over `data` with the designated signer certificate; returns it.
    pub fn verify(&self, data: &[u8]) -> Result<&[u8], PkiError> {
        let cert = self.signer_cert().ok_or_else(|| {
            PkiError::BadSignature("the signer certificate is not in the security block".into())
        })?;
        verify(cert, self.alg, data, &self.signature)?;
        Ok(cert)
    }

    /// Wire bytes.
    pub fn encode(&self) -> Result<Vec<u8>, PkiError> {
        let too_long = || PkiError::Encode("security block field too long".into());
        let mut certs = Vec::new();
        for c in &self.certificates {
            certs.push(CERT_X509);
            certs.extend_from_slice(
                &u16::try_from(c.len())
                    .map_err(|_| too_long())?
                    .to_be_bytes(),
            );
            certs.extend_from_slice(c);
        }
        let mut out = Vec::new();
        out.extend_from_slice(
            &u16::try_from(certs.len())
                .map_err(|_| too_long())?
                .to_be_bytes(),
        );
        out.extend_from_slice(&certs);
        out.push(self.alg.hash);
        out.push(self.alg.sig);
        // SignerIdentity: type, uint16 length, then HashAlgorithm + opaque<0..2^8-1>.
        let hash_len = u8::try_from(self.cert_hash.len()).map_err(|_| too_long())?;
        out.push(IDENTITY_CERT_HASH);
        out.extend_from_slice(&(2u16 + u16::from(hash_len)).to_be_bytes());
        out.push(self.identity_hash_alg);
        out.push(hash_len);
        out.extend_from_slice(&self.cert_hash);
        out.extend_from_slice(
            &u16::try_from(self.signature.len())
                .map_err(|_| too_long())?
                .to_be_bytes(),
        );
        out.extend_from_slice(&self.signature);
        Ok(out)
    }

    /// Parses wire bytes; the whole input must be consumed.
    pub fn decode(b: &[u8]) -> Result<SecurityBlock, PkiError> {
        let mut r = Rd { b, pos: 0 };
        let certs_len = r.u16()? as usize;
        let certs_bytes = r.take(certs_len)?;
        let mut cr = Rd {
            b: certs_bytes,
            pos: 0,
        };
        let mut certificates = Vec::new();
        while cr.pos < certs_bytes.len() {
            let ty = cr.u8()?;
            let len = cr.u16()? as usize;
            let c = cr.take(len)?;
            if ty == CERT_X509 {
                certificates.push(c.to_vec());
            }
        }
        let alg = SigAlg {
            hash: r.u8()?,
            sig: r.u8()?,
        };
        let id_type = r.u8()?;
        let id_len = r.u16()? as usize;
        let id = r.take(id_len)?;
        if id_type != IDENTITY_CERT_HASH {
            return Err(PkiError::Decode(format!(
                "signer identity type {id_type} is not cert_hash (1)"
            )));
        }
        let mut ir = Rd { b: id, pos: 0 };
        let identity_hash_alg = ir.u8()?;
        let hl = ir.u8()? as usize;
        let cert_hash = ir.take(hl)?.to_vec();
        if ir.pos != id.len() {
            return Err(PkiError::Decode("trailing bytes in signer identity".into()));
        }
        let sl = r.u16()? as usize;
        let signature = r.take(sl)?.to_vec();
        if r.pos != b.len() {
            return Err(PkiError::Decode(format!(
                "{} trailing bytes after the security block",
                b.len() - r.pos
            )));
        }
        Ok(SecurityBlock {
            certificates,
            alg,
            identity_hash_alg,
            cert_hash,
            signature,
        })
    }
}

/// A tiny bounds-checked reader.
struct Rd<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PkiError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| PkiError::Decode(format!("truncated at byte {}", self.pos)))?;
        let s = &self.b[self.pos..end]; // ok: end <= len checked above
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, PkiError> {
        Ok(self.take(1)?[0]) // ok: take(1) returns exactly one byte
    }
    fn u16(&mut self) -> Result<u16, PkiError> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]])) // ok: take(2) returns exactly two bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testutil;

    #[test]
    fn ecdsa_sign_verify_and_tamper() {
        let (key, cert) = testutil::self_signed_ecdsa();
        let (alg, sig) = key.sign(b"hello").unwrap();
        assert_eq!(alg, SigAlg::ECDSA_SHA256);
        verify(&cert, alg, b"hello", &sig).unwrap();
        assert!(verify(&cert, alg, b"hellO", &sig).is_err());
        assert!(verify(&cert, SigAlg::RSA_SHA256, b"hello", &sig).is_err());
    }

    #[test]
    fn rsa_sign_verify_and_tamper() {
        let (key, cert) = testutil::self_signed_rsa();
        let (alg, sig) = key.sign(b"hello").unwrap();
        assert_eq!(alg, SigAlg::RSA_SHA256);
        verify(&cert, alg, b"hello", &sig).unwrap();
        assert!(verify(&cert, alg, b"hell0", &sig).is_err());
        assert!(verify(&cert, SigAlg::ECDSA_SHA256, b"hello", &sig).is_err());
    }

    #[test]
    fn security_block_round_trip_and_layout() {
        let (key, cert) = testutil::self_signed_ecdsa();
        let sb = SecurityBlock::sign(&key, &cert, b"data").unwrap();
        let bytes = sb.encode().unwrap();
        // certificates<0..2^16-1>: one X.509 entry.
        let certs_len = u16::from_be_bytes([bytes[0], bytes[1]]) as usize;
        assert_eq!(certs_len, 3 + cert.len());
        assert_eq!(bytes[2], 0);
        let p = 2 + certs_len;
        assert_eq!(&bytes[p..p + 2], &[4, 3]);
        assert_eq!(bytes[p + 2], 1); // cert_hash
        assert_eq!(&bytes[p + 3..p + 5], &[0, 34]);
        assert_eq!(&bytes[p + 5..p + 7], &[4, 32]);
        let back = SecurityBlock::decode(&bytes).unwrap();
        assert_eq!(back, sb);
        assert_eq!(back.verify(b"data").unwrap(), cert.as_slice());
        assert!(back.verify(b"date").is_err());
        for cut in 0..bytes.len() {
            assert!(SecurityBlock::decode(&bytes[..cut]).is_err());
        }
    }

    /// Throughput of sign/verify; run with
    /// `cargo test --release --bin p2psip pki::sign::tests::throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn throughput() {
        for (name, (key, cert)) in [
            ("ECDSA P-256", testutil::self_signed_ecdsa()),
            ("RSA-2048", testutil::self_signed_rsa()),
        ] {
            let data = [7u8; 200];
            let n = 2000;
            let t = std::time::Instant::now();
            let mut sig = Vec::new();
            for _ in 0..n {
                sig = key.sign(&data).unwrap().1;
            }
            let s = n as f64 / t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            for _ in 0..n {
                verify(&cert, key.alg(), &data, &sig).unwrap();
            }
            let v = n as f64 / t.elapsed().as_secs_f64();
            println!("{name}: {s:.0} sign/s, {v:.0} verify/s (verify includes certificate parse)");
        }
    }
}
