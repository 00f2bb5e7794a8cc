//! The security block, signatures and signer identities (RFC 6940 6.3.4).
//!
//! ```text
//! struct { CertificateType type; opaque certificate<0..2^16-1>; } GenericCertificate;
//! struct { GenericCertificate certificates<0..2^16-1>; Signature signature; } SecurityBlock;
//! struct { SignatureAndHashAlgorithm algorithm; SignerIdentity identity;
//!          opaque signature_value<0..2^16-1>; } Signature;
//! struct { SignerIdentityType identity_type; uint16 length;
//!          SignerIdentityValue identity[SignerIdentity.length]; } SignerIdentity;
//! ```

use crate::code_point;
use crate::codec::{
    Codec, DecodeError, EncodeError, LenWidth, Opaque, Reader, write_list, write_prefixed_with,
};
use serde::Serialize;

code_point! {
    /// `CertificateType` (RFC 6091).
    pub struct CertificateType(u8) {
        /// DER X.509.
        X509 = 0,
        /// OpenPGP (not defined for RELOAD).
        OPENPGP = 1,
    }
}

code_point! {
    /// TLS `HashAlgorithm` (RFC 5246 7.4.1.4.1).
    pub struct HashAlgorithm(u8) {
        /// none.
        NONE = 0,
        /// MD5.
        MD5 = 1,
        /// SHA-1.
        SHA1 = 2,
        /// SHA-224.
        SHA224 = 3,
        /// SHA-256.
        SHA256 = 4,
        /// SHA-384.
        SHA384 = 5,
        /// SHA-512.
        SHA512 = 6,
    }
}

code_point! {
    /// TLS `SignatureAlgorithm` (RFC 5246 7.4.1.4.1).
    pub struct SignatureAlgorithm(u8) {
        /// anonymous (used with identity `none` for synthesised values).
        ANONYMOUS = 0,
        /// RSASSA-PKCS1-v1_5.
        RSA = 1,
        /// DSA.
        DSA = 2,
        /// ECDSA.
        ECDSA = 3,
    }
}

/// `SignatureAndHashAlgorithm`: hash byte then signature byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct SignatureAndHashAlgorithm {
    /// The hash.
    pub hash: HashAlgorithm,
    /// The signature algorithm.
    pub signature: SignatureAlgorithm,
}

impl SignatureAndHashAlgorithm {
    /// `04 01`: RSASSA-PKCS1-v1_5 with SHA-256, mandatory to implement.
    pub const RSA_SHA256: Self = Self {
        hash: HashAlgorithm::SHA256,
        signature: SignatureAlgorithm::RSA,
    };
    /// `04 03`: ECDSA with SHA-256.
    pub const ECDSA_SHA256: Self = Self {
        hash: HashAlgorithm::SHA256,
        signature: SignatureAlgorithm::ECDSA,
    };
    /// `00 00`: for values a storing peer synthesises (RFC 6940 7.4.2.2).
    pub const NONE: Self = Self {
        hash: HashAlgorithm::NONE,
        signature: SignatureAlgorithm::ANONYMOUS,
    };
}

impl Codec for SignatureAndHashAlgorithm {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(self.hash.0);
        out.push(self.signature.0);
        Ok(())
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            hash: HashAlgorithm::read(r)?,
            signature: SignatureAlgorithm::read(r)?,
        })
    }
}

code_point! {
    /// `SignerIdentityType` (RFC 6940 6.3.4).
    pub struct SignerIdentityType(u8) {
        /// Invalid.
        INVALID = 0,
        /// Hash of the signer's certificate.
        CERT_HASH = 1,
        /// Hash of Node-ID || certificate, for multi-Node-ID certificates.
        CERT_HASH_NODE_ID = 2,
        /// No identity (synthesised values only).
        NONE = 3,
    }
}

/// Who signed: a certificate hash, a (Node-ID, certificate) hash, none, or an unknown type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum SignerIdentity {
    /// `cert_hash(1)`: H(DER certificate).
    CertHash {
        /// Hash algorithm.
        hash_alg: HashAlgorithm,
        /// `certificate_hash<0..2^8-1>`.
        certificate_hash: Opaque,
    },
    /// `cert_hash_node_id(2)`: H(NodeId || DER certificate).
    CertHashNodeId {
        /// Hash algorithm.
        hash_alg: HashAlgorithm,
        /// `certificate_node_id_hash<0..2^8-1>`.
        certificate_node_id_hash: Opaque,
    },
    /// `none(3)`: empty.
    None,
    /// Any other type, with its raw identity bytes.
    Unknown {
        /// The type byte.
        identity_type: SignerIdentityType,
        /// The identity bytes.
        identity: Opaque,
    },
}

impl SignerIdentity {
    /// The wire type byte.
    pub fn identity_type(&self) -> SignerIdentityType {
        match self {
            SignerIdentity::CertHash { .. } => SignerIdentityType::CERT_HASH,
            SignerIdentity::CertHashNodeId { .. } => SignerIdentityType::CERT_HASH_NODE_ID,
            SignerIdentity::None => SignerIdentityType::NONE,
            SignerIdentity::Unknown { identity_type, .. } => *identity_type,
        }
    }
}

impl Codec for SignerIdentity {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(self.identity_type().0);
        write_prefixed_with(
            out,
            LenWidth::U16,
            "SignerIdentity.length",
            |o| match self {
                SignerIdentity::CertHash {
                    hash_alg,
                    certificate_hash: h,
                }
                | SignerIdentity::CertHashNodeId {
                    hash_alg,
                    certificate_node_id_hash: h,
                } => {
                    o.push(hash_alg.0);
                    h.write_prefixed(o, LenWidth::U8, "SignerIdentity.certificate_hash")
                }
                SignerIdentity::None => Ok(()),
                SignerIdentity::Unknown { identity, .. } => {
                    o.extend_from_slice(identity);
                    Ok(())
                }
            },
        )
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let t = SignerIdentityType::read(r)?;
        let mut v = r.prefixed(LenWidth::U16, "SignerIdentity.length")?;
        let id = match t {
            SignerIdentityType::CERT_HASH => SignerIdentity::CertHash {
                hash_alg: HashAlgorithm::read(&mut v)?,
                certificate_hash: Opaque::read_prefixed(
                    &mut v,
                    LenWidth::U8,
                    0,
                    "SignerIdentity.certificate_hash",
                )?,
            },
            SignerIdentityType::CERT_HASH_NODE_ID => SignerIdentity::CertHashNodeId {
                hash_alg: HashAlgorithm::read(&mut v)?,
                certificate_node_id_hash: Opaque::read_prefixed(
                    &mut v,
                    LenWidth::U8,
                    0,
                    "SignerIdentity.certificate_node_id_hash",
                )?,
            },
            SignerIdentityType::NONE => SignerIdentity::None,
            _ => SignerIdentity::Unknown {
                identity_type: t,
                identity: Opaque(v.take(v.remaining(), "SignerIdentity.identity")?.to_vec()),
            },
        };
        v.finish("SignerIdentity")?;
        Ok(id)
    }
}

/// A signature with its algorithm and signer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Signature {
    /// Algorithm pair.
    pub algorithm: SignatureAndHashAlgorithm,
    /// The signer.
    pub identity: SignerIdentity,
    /// `signature_value<0..2^16-1>`.
    pub value: Opaque,
}

impl Signature {
    /// The empty signature a storing peer puts on synthesised "does not exist" values:
    /// algorithm `00 00`, identity `none`, no bytes (RFC 6940 7.4.2.2).
    pub fn none() -> Self {
        Signature {
            algorithm: SignatureAndHashAlgorithm::NONE,
            identity: SignerIdentity::None,
            value: Opaque::default(),
        }
    }
}

impl Codec for Signature {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.algorithm.encode(out)?;
        self.identity.encode(out)?;
        self.value
            .write_prefixed(out, LenWidth::U16, "Signature.signature_value")
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Signature {
            algorithm: SignatureAndHashAlgorithm::read(r)?,
            identity: SignerIdentity::read(r)?,
            value: Opaque::read_prefixed(r, LenWidth::U16, 0, "Signature.signature_value")?,
        })
    }
}

/// A certificate in the security block's bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct GenericCertificate {
    /// Certificate type (X.509 = 0).
    pub cert_type: CertificateType,
    /// The certificate (DER for X.509).
    pub certificate: Opaque,
}

impl Codec for GenericCertificate {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.cert_type.encode(out)?;
        self.certificate
            .write_prefixed(out, LenWidth::U16, "GenericCertificate.certificate")
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(GenericCertificate {
            cert_type: CertificateType::read(r)?,
            certificate: Opaque::read_prefixed(
                r,
                LenWidth::U16,
                0,
                "GenericCertificate.certificate",
            )?,
        })
    }
}

/// The third part of a message: certificates and the message signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct SecurityBlock {
    /// Certificates needed to verify the signatures in the message.
    pub certificates: Vec<GenericCertificate>,
    /// The originator's signature over the message.
    pub signature: Signature,
}

impl Codec for SecurityBlock {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_list(
            out,
            LenWidth::U16,
            "SecurityBlock.certificates",
            &self.certificates,
        )?;
        self.signature.encode(out)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SecurityBlock {
            certificates: r.list(LenWidth::U16, "SecurityBlock.certificates")?,
            signature: Signature::read(r)?,
        })
    }
}
