//! rustls verifiers for overlay links (RFC 6940 sections 6.5.1.13 and 13.6.3): both sides
//! present node certificates; each accepts only certificates that chain to the overlay root.
//!
//! What [`OverlayServerVerifier`] and [`OverlayClientVerifier`] check:
//! * the end-entity certificate is issued and signed by the overlay CA (`root-cert`), is not
//!   a CA itself, and is within its validity at the handshake time;
//! * it carries at least one Node-ID for this overlay (reload URI SAN);
//! * if an expected Node-ID is set (the link layer knows whom it Attached to), it is among
//!   them;
//! * the TLS handshake signature, with the provider's algorithms.
//!
//! The DNS/IP server name is ignored: peers are named by Node-ID, not by host name.
//! Intermediates are ignored: p2psip's CA issues node certificates directly.
//! After the handshake, [`peer_node_ids`] reads the Node-IDs from the peer's certificate.

use super::PkiError;
use super::cert;
use super::local::Identity;
use reload::wire::NodeId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
};
use std::sync::Arc;

/// The aws-lc-rs provider (the one crypto backend we build).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The overlay trust anchor plus an optional expected peer Node-ID.
#[derive(Debug, Clone)]
struct Trust {
    root_der: Vec<u8>,
    overlay: String,
    expected: Option<NodeId>,
    provider: Arc<CryptoProvider>,
}

impl Trust {
    fn new(root_der: &[u8], overlay: &str, expected: Option<NodeId>) -> Self {
        Self {
            root_der: root_der.to_vec(),
            overlay: overlay.to_string(),
            expected,
            provider: provider(),
        }
    }

    fn check(&self, end_entity: &CertificateDer<'_>, now: UnixTime) -> Result<(), rustls::Error> {
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let info = cert::verify_chain(end_entity, &self.root_der, &self.overlay, now)
            .map_err(|e| cert_error(e.into()))?;
        if info.node_ids.is_empty() {
            return Err(other(PkiError::Untrusted(format!(
                "certificate carries no Node-ID for overlay {}",
                self.overlay
            ))));
        }
        if let Some(e) = self.expected
            && !info.node_ids.contains(&e)
        {
            return Err(other(PkiError::Untrusted(format!(
                "certificate is for Node-ID(s) {:?}, expected {e:?}",
                info.node_ids
            ))));
        }
        Ok(())
    }

    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn other(e: PkiError) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
}

fn cert_error(e: PkiError) -> rustls::Error {
    let msg = e.to_string();
    if msg.contains("expired") {
        rustls::Error::InvalidCertificate(CertificateError::Expired)
    } else if msg.contains("not valid yet") {
        rustls::Error::InvalidCertificate(CertificateError::NotValidYet)
    } else if matches!(e, PkiError::Untrusted(_)) {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
    } else {
        other(e)
    }
}

/// The handshake-signature methods both verifier traits share, delegated to [`Trust`].
macro_rules! handshake_signature_methods {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.tls12(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.tls13(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.schemes()
        }
    };
}

/// Client side of a link: verifies the server's (Attach requester's) node certificate.
#[derive(Debug)]
pub struct OverlayServerVerifier(Trust);

impl OverlayServerVerifier {
    /// Trusts `root_der` for `overlay`; `expected` is the Node-ID we mean to reach, if known.
    pub fn new(root_der: &[u8], overlay: &str, expected: Option<NodeId>) -> Self {
        Self(Trust::new(root_der, overlay, expected))
    }
}

impl ServerCertVerifier for OverlayServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0.check(end_entity, now)?;
        Ok(ServerCertVerified::assertion())
    }

    handshake_signature_methods!();
}

/// Server side of a link: requires and verifies the client's node certificate.
#[derive(Debug)]
pub struct OverlayClientVerifier(Trust);

impl OverlayClientVerifier {
    /// Trusts `root_der` for `overlay`; `expected` is the Node-ID we expect to connect, if known.
    pub fn new(root_der: &[u8], overlay: &str, expected: Option<NodeId>) -> Self {
        Self(Trust::new(root_der, overlay, expected))
    }
}

impl ClientCertVerifier for OverlayClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0.check(end_entity, now)?;
        Ok(ClientCertVerified::assertion())
    }

    handshake_signature_methods!();
}

fn tls_err(e: rustls::Error) -> PkiError {
    PkiError::Crypto(format!("TLS configuration: {e}"))
}

fn key_der(id: &Identity) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key_pkcs8.clone()))
}

/// A rustls client configuration presenting `id`'s certificate and trusting only its overlay
/// root; `expected` is the peer's Node-ID when known.
pub fn client_config(
    id: &Identity,
    expected: Option<NodeId>,
) -> Result<rustls::ClientConfig, PkiError> {
    let v = OverlayServerVerifier::new(&id.root_der, &id.overlay, expected);
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(v))
        .with_client_auth_cert(vec![CertificateDer::from(id.cert_der.clone())], key_der(id))
        .map_err(tls_err)
}

/// A rustls server configuration presenting `id`'s certificate and requiring a client node
/// certificate from the same overlay; `expected` is the peer's Node-ID when known.
pub fn server_config(
    id: &Identity,
    expected: Option<NodeId>,
) -> Result<rustls::ServerConfig, PkiError> {
    let v = OverlayClientVerifier::new(&id.root_der, &id.overlay, expected);
    rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_client_cert_verifier(Arc::new(v))
        .with_single_cert(vec![CertificateDer::from(id.cert_der.clone())], key_der(id))
        .map_err(tls_err)
}

/// The Node-IDs in the peer's end-entity certificate after a handshake (empty if none).
pub fn peer_node_ids(peer_certs: Option<&[CertificateDer<'_>]>, overlay: &str) -> Vec<NodeId> {
    peer_certs
        .and_then(|c| c.first())
        .and_then(|c| cert::parse(c, overlay).ok())
        .map(|i| i.node_ids)
        .unwrap_or_default()
}

/// A server-name placeholder for overlay links (the verifiers ignore it).
pub fn link_server_name() -> ServerName<'static> {
    ServerName::IpAddress(rustls::pki_types::IpAddr::from(
        std::net::Ipv4Addr::UNSPECIFIED,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ca::Ca;
    use crate::pki::now_unix;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    fn node(ca: &Ca, user: &str, now: i64, days: i64) -> Identity {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let ids = ca.node_ids_for(user, 1).unwrap();
        let der = ca.sign_node_cert(&kp, user, &ids, now, days).unwrap();
        Identity::from_parts(
            kp.serialized_der().to_vec(),
            der,
            ca.cert_der().to_vec(),
            ca.overlay(),
            now,
        )
        .unwrap()
    }

    /// Runs a handshake and a one-byte exchange; returns what each side saw of the other.
    async fn handshake(
        server: &Identity,
        client: &Identity,
        expect_server: Option<NodeId>,
    ) -> (Result<Vec<NodeId>, String>, Result<Vec<NodeId>, String>) {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let acceptor = TlsAcceptor::from(Arc::new(server_config(server, None).unwrap()));
        let connector = TlsConnector::from(Arc::new(client_config(client, expect_server).unwrap()));
        let overlay = server.overlay.clone();
        let ov2 = overlay.clone();
        let srv = async move {
            let mut s = acceptor.accept(a).await.map_err(|e| e.to_string())?;
            let mut x = [0u8; 1];
            s.read_exact(&mut x).await.map_err(|e| e.to_string())?;
            s.write_all(&x).await.map_err(|e| e.to_string())?;
            s.flush().await.map_err(|e| e.to_string())?;
            Ok(peer_node_ids(s.get_ref().1.peer_certificates(), &overlay))
        };
        let cli = async move {
            let mut s = connector
                .connect(link_server_name(), b)
                .await
                .map_err(|e| e.to_string())?;
            s.write_all(b"x").await.map_err(|e| e.to_string())?;
            s.flush().await.map_err(|e| e.to_string())?;
            let mut x = [0u8; 1];
            s.read_exact(&mut x).await.map_err(|e| e.to_string())?;
            Ok(peer_node_ids(s.get_ref().1.peer_certificates(), &ov2))
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            tokio::join!(srv, cli)
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn enrolled_nodes_connect_foreign_and_expired_do_not() {
        let now = now_unix();
        let d = tempfile::tempdir().unwrap();
        // Created three years ago so that an expired node certificate can be issued.
        let ca = Ca::init(d.path(), "tls.test", None, &[], now - 3 * 365 * 86_400).unwrap();
        let a = node(&ca, "a", now, 365);
        let b = node(&ca, "b", now, 365);
        let (s, c) = handshake(&a, &b, Some(a.node_id)).await;
        assert_eq!(s.unwrap(), vec![b.node_id]);
        assert_eq!(c.unwrap(), vec![a.node_id]);

        // Expected Node-ID mismatch: the client refuses.
        let (_, c) = handshake(&a, &b, Some(b.node_id)).await;
        assert!(c.is_err());

        // A node from a foreign CA (same overlay name) is refused by both roles.
        let d2 = tempfile::tempdir().unwrap();
        let other = Ca::init(d2.path(), "tls.test", None, &[], now).unwrap();
        let f = node(&other, "f", now, 365);
        let (s, c) = handshake(&a, &f, None).await;
        assert!(s.is_err() && c.is_err(), "{s:?} {c:?}");
        let (s, c) = handshake(&f, &a, None).await;
        assert!(s.is_err() && c.is_err(), "{s:?} {c:?}");
        assert!(c.unwrap_err().contains("UnknownIssuer"));

        // An expired certificate (issued two years ago for one year).
        let old = node(&ca, "old", now - 2 * 365 * 86_400, 365);
        let (s, c) = handshake(&a, &old, None).await;
        assert!(s.is_err() && c.is_err(), "{s:?} {c:?}");
        let (_, c) = handshake(&old, &a, None).await;
        let c = c.unwrap_err();
        assert!(c.contains("Expired"), "{c}");
    }
}
