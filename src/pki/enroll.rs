//! Enrollment over HTTPS (RFC 6940 sections 11.2 and 11.3): the server (`p2psip ca serve`)
//! and the client (`p2psip enroll`).
//!
//! Server: `GET /.well-known/reload-config` returns the signed configuration document
//! (`application/p2p-overlay+xml`); `POST` to any other path is an enrollment request:
//! multipart/form-data with `username`, `password`, optional `nodeids`, and `csr`
//! (`application/pkcs10`, DER). Success is `200` with the DER certificate
//! (`application/pkix-cert`); refusals are `403` with a `text/plain` token
//! (`failed_authentication`, `username_not_available`, `Node-IDs_not_available`, `bad_CSR`).
//! The HTTPS server certificate is issued by the overlay CA for the listen host (and the
//! overlay name), so a client that trusts the CA can check it by host name.
//!
//! Passwords come from a users file with `user:password` lines (plaintext, as an operator
//! writes it) or `user:pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>` lines. The server
//! keeps only salted PBKDF2-HMAC-SHA256 hashes in memory and never logs a password.
//!
//! **Trust on first contact (client).** RFC 6940 11.3 wants the HTTPS certificate to match the
//! overlay name under the Web PKI. A lab overlay has no Web PKI certificate, so the client
//! offers two modes:
//! * `--ca-cert PEM`: the operator hands out the overlay CA certificate out of band. The HTTPS
//!   server certificate must chain to it and match the URL's host; the configuration document
//!   must be signed by it.
//! * `--insecure-first-contact`: the first TLS connection accepts any server certificate; the
//!   client then verifies the configuration document's signature with the `root-cert` inside
//!   it, checks that the HTTPS server's certificate was issued by that root, and pins that
//!   root for the enrollment POST and for everything after (it is written as `ca.cert.pem`).
//!   An active attacker on the first contact can substitute their own overlay; a passive one
//!   learns nothing. Compare the printed CA fingerprint out of band when it matters.

use super::ca::Ca;
use super::config_doc;
use super::http::{self, Part, Url};
use super::local::Identity;
use super::{PkiError, Refusal, cert};
use aws_lc_rs::pbkdf2;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// Path of the configuration document (RFC 6940 11.2).
pub const WELL_KNOWN: &str = "/.well-known/reload-config";
/// PBKDF2 iterations for stored password hashes.
const PBKDF2_ITER: u32 = 20_000;
/// Bound on one HTTP exchange.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(15);

/// Builds a PKCS#10 CSR (DER) for `key` with an empty subject and the rfc822Name `user`.
pub fn make_csr(key: &rcgen::KeyPair, user: &str) -> Result<Vec<u8>, PkiError> {
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.subject_alt_names = vec![rcgen::SanType::Rfc822Name(
        user.to_string()
            .try_into()
            .map_err(|e: rcgen::Error| PkiError::Key(format!("user name {user:?}: {e}")))?,
    )];
    let csr = p
        .serialize_request(key)
        .map_err(|e| PkiError::Key(format!("cannot build CSR: {e}")))?;
    Ok(csr.der().to_vec())
}

/// Salted password hashes, by user.
#[derive(Default)]
pub struct Users {
    by_name: HashMap<String, (Vec<u8>, u32, Vec<u8>)>,
    /// One password for every (valid) user name: the embedded server of a node.
    shared: Option<(Vec<u8>, u32, Vec<u8>)>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Users({} entries)", self.by_name.len())
    }
}

fn iter(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl Users {
    /// Parses a users file (see the module doc); `name` is used in error messages.
    pub fn parse(text: &str, name: &str) -> Result<Users, PkiError> {
        let mut u = Users::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let bad = |m: &str| PkiError::Config(format!("{name}:{}: {m}", n + 1));
            let (user, secret) = line
                .split_once(':')
                .ok_or_else(|| bad("expected `user:password`"))?;
            let user = user.trim();
            if !super::ca::valid_user(user) {
                return Err(bad("user names may hold letters, digits and . _ + - @"));
            }
            if let Some(rest) = secret.strip_prefix("pbkdf2-sha256$") {
                let f: Vec<&str> = rest.split('$').collect();
                let [it, salt, hash] = f.as_slice() else {
                    return Err(bad(
                        "expected pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>",
                    ));
                };
                let it: u32 = it.parse().map_err(|_| bad("bad iteration count"))?;
                let salt = hex::decode(salt).map_err(|_| bad("bad salt hex"))?;
                let hash = hex::decode(hash).map_err(|_| bad("bad hash hex"))?;
                u.by_name.insert(user.to_string(), (salt, it, hash));
            } else {
                u.add(user, secret)?;
            }
        }
        Ok(u)
    }

    /// Adds a user with a plaintext password (hashed here).
    pub fn add(&mut self, user: &str, password: &str) -> Result<(), PkiError> {
        let h = hash_password(password)?;
        self.by_name.insert(user.to_string(), h);
        Ok(())
    }

    /// Users where any acceptable name enrolls with the overlay password `password` (the
    /// embedded enrollment server of a CA-holding node).
    pub fn shared_password(password: &str) -> Result<Users, PkiError> {
        Ok(Users {
            by_name: HashMap::new(),
            shared: Some(hash_password(password)?),
        })
    }

    /// The stored line for `user` in the hashed format.
    pub fn hashed_line(&self, user: &str) -> Option<String> {
        self.by_name.get(user).map(|(s, i, h)| {
            format!(
                "{user}:pbkdf2-sha256${i}${}${}",
                hex::encode(s),
                hex::encode(h)
            )
        })
    }

    /// True if the password is right (compared in constant time).
    pub fn check(&self, user: &str, password: &[u8]) -> bool {
        match self.by_name.get(user).or(self.shared.as_ref()) {
            Some((salt, it, hash)) => {
                pbkdf2::verify(pbkdf2::PBKDF2_HMAC_SHA256, iter(*it), salt, password, hash).is_ok()
            }
            None => {
                // Spend the same time for unknown users.
                let mut out = [0u8; 32];
                pbkdf2::derive(
                    pbkdf2::PBKDF2_HMAC_SHA256,
                    iter(PBKDF2_ITER),
                    b"x",
                    password,
                    &mut out,
                );
                false
            }
        }
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True if there are no users.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty() && self.shared.is_none()
    }
}

/// A salted PBKDF2-HMAC-SHA256 hash of `password`: (salt, iterations, hash).
fn hash_password(password: &str) -> Result<(Vec<u8>, u32, Vec<u8>), PkiError> {
    let salt = super::random::<16>()?.to_vec();
    let mut hash = vec![0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iter(PBKDF2_ITER),
        &salt,
        password.as_bytes(),
        &mut hash,
    );
    Ok((salt, PBKDF2_ITER, hash))
}

/// What an enrollment server grants beyond the RFC's certificate.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// AOR domains of the registrar role put into every certificate (empty: no role).
    pub registrar: Vec<String>,
    /// Each enrollment gets new Node-IDs, even for a user name seen before (shared-password
    /// servers, where many nodes may use the same name).
    pub fresh_node_ids: bool,
    /// The overlay credential key handed to authenticated registrar nodes (docs/SECURITY.md).
    pub credential_key: Option<Vec<u8>>,
}

struct ServerState {
    ca: Mutex<Ca>,
    users: Users,
    config_xml: String,
    grants: Grants,
}

/// Binds `listen` (port 0 picks a free port).
pub async fn bind(listen: SocketAddr) -> Result<TcpListener, PkiError> {
    TcpListener::bind(listen)
        .await
        .map_err(|source| PkiError::Io {
            path: PathBuf::from(listen.to_string()),
            source,
        })
}

/// Runs the enrollment server on `listener` until `shutdown` resolves; logs the bound address.
pub async fn serve(
    ca_dir: &Path,
    listener: TcpListener,
    users_file: Option<PathBuf>,
    host: Option<String>,
    shutdown: impl std::future::Future<Output = ()>,
    now: i64,
) -> Result<(), PkiError> {
    let users_path = users_file.unwrap_or_else(|| ca_dir.join("users.txt"));
    let text = std::fs::read_to_string(&users_path).map_err(|source| PkiError::Io {
        path: users_path.clone(),
        source,
    })?;
    let users = Users::parse(&text, &users_path.display().to_string())?;
    let users_from = format!("{} users from {}", users.len(), users_path.display());
    serve_with(
        ca_dir,
        listener,
        users,
        &users_from,
        Grants::default(),
        host,
        shutdown,
        now,
    )
    .await
}

/// [`serve`] with the users given and what the server grants (the embedded server of a node).
#[allow(clippy::too_many_arguments)]
pub async fn serve_with(
    ca_dir: &Path,
    listener: TcpListener,
    users: Users,
    users_from: &str,
    grants: Grants,
    host: Option<String>,
    shutdown: impl std::future::Future<Output = ()>,
    now: i64,
) -> Result<(), PkiError> {
    let ca = Ca::load(ca_dir, now)?;
    let bound = listener.local_addr().map_err(|source| PkiError::Io {
        path: PathBuf::from("listening socket"),
        source,
    })?;
    let host = host.unwrap_or_else(|| {
        if bound.ip().is_unspecified() {
            "localhost".to_string()
        } else {
            bound.ip().to_string()
        }
    });
    let (cert, key) = ca.issue_server_cert(&host, now)?;
    let tls = rustls::ServerConfig::builder_with_provider(super::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| PkiError::Crypto(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .map_err(|e| PkiError::Crypto(e.to_string()))?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let state = Arc::new(ServerState {
        config_xml: ca.config_xml()?,
        ca: Mutex::new(ca),
        users,
        grants,
    });
    let overlay = state
        .ca
        .lock()
        .map(|c| c.overlay().to_string())
        .unwrap_or_default();
    let url_host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    tracing::info!(
        "enrollment server for overlay {overlay} listening on {bound} (https://{url_host}:{}/), {}; CA certificate SHA-256 fingerprint {}",
        bound.port(),
        users_from,
        hex::encode(super::sign::sha256(
            state
                .ca
                .lock()
                .map(|c| c.cert_der().to_vec())
                .unwrap_or_default()
                .as_slice()
        ))
    );
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => {
                tracing::info!("enrollment server stopped");
                return Ok(());
            }
            acc = listener.accept() => {
                let (tcp, peer) = match acc {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let state = state.clone();
                tokio::spawn(async move {
                    let r = tokio::time::timeout(EXCHANGE_TIMEOUT, async {
                        let mut s = acceptor.accept(tcp).await.map_err(|e| PkiError::Enroll(format!("TLS: {e}")))?;
                        handle(&mut s, &state, peer).await
                    })
                    .await;
                    match r {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::info!("enrollment connection from {peer}: {e}"),
                        Err(_) => tracing::info!("enrollment connection from {peer}: timed out"),
                    }
                });
            }
        }
    }
}

async fn handle<S>(s: &mut S, st: &ServerState, peer: SocketAddr) -> Result<(), PkiError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let req = match http::read_message(s).await {
        Ok(r) => r,
        Err(e) => {
            let _ = http::write_message(
                s,
                "HTTP/1.1 400 Bad Request",
                &[("Content-Type", "text/plain")],
                e.to_string().as_bytes(),
            )
            .await;
            return Err(e);
        }
    };
    let method = req.start[0].as_str();
    let path = req.start[1].as_str();
    if method == "GET" && path == WELL_KNOWN {
        return http::write_message(
            s,
            "HTTP/1.1 200 OK",
            &[("Content-Type", config_doc::MEDIA_TYPE)],
            st.config_xml.as_bytes(),
        )
        .await;
    }
    if method != "POST" {
        return http::write_message(
            s,
            "HTTP/1.1 404 Not Found",
            &[("Content-Type", "text/plain")],
            b"not found",
        )
        .await;
    }
    if path == CREDENTIAL_KEY_PATH {
        return credential_key_request(s, &req, st, peer).await;
    }
    let result = enroll_request(&req, st);
    match result {
        Ok((user, der, ids)) => {
            tracing::info!(
                "issued a certificate to user {user} from {peer}: Node-ID(s) {}",
                ids.iter()
                    .map(|i| hex::encode(i.to_array()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            http::write_message(
                s,
                "HTTP/1.1 200 OK",
                &[("Content-Type", "application/pkix-cert")],
                &der,
            )
            .await
        }
        Err(PkiError::Refused(r)) => {
            tracing::info!("refused enrollment from {peer}: {}", r.token());
            http::write_message(
                s,
                "HTTP/1.1 403 Forbidden",
                &[("Content-Type", "text/plain")],
                r.token().as_bytes(),
            )
            .await
        }
        Err(e) => {
            tracing::warn!("enrollment from {peer} failed: {e}");
            http::write_message(
                s,
                "HTTP/1.1 500 Internal Server Error",
                &[("Content-Type", "text/plain")],
                b"internal error",
            )
            .await
        }
    }
}

/// Path where an enrolled registrar node fetches the overlay credential key (p2psip, not
/// RFC 6940): multipart/form-data `username` and `password`, as for enrollment.
pub const CREDENTIAL_KEY_PATH: &str = "/p2psip/credential-key";

async fn credential_key_request<S>(
    s: &mut S,
    req: &http::Message,
    st: &ServerState,
    peer: SocketAddr,
) -> Result<(), PkiError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let ct = req.header("content-type").unwrap_or_default();
    let parts = http::parse_multipart(ct, &req.body).unwrap_or_default();
    let get = |n: &str| parts.iter().find(|p| p.name == n);
    let user = get("username")
        .and_then(|p| std::str::from_utf8(&p.data).ok())
        .unwrap_or_default();
    let password = get("password")
        .map(|p| p.data.as_slice())
        .unwrap_or_default();
    let ok = st.users.check(user, password);
    match (
        &st.grants.credential_key,
        ok && !st.grants.registrar.is_empty(),
    ) {
        (Some(key), true) => {
            tracing::info!("handed the overlay credential key to registrar user {user} at {peer}");
            http::write_message(
                s,
                "HTTP/1.1 200 OK",
                &[("Content-Type", "application/octet-stream")],
                key,
            )
            .await
        }
        (None, _) => {
            http::write_message(
                s,
                "HTTP/1.1 404 Not Found",
                &[("Content-Type", "text/plain")],
                b"no credential key",
            )
            .await
        }
        (Some(_), false) => {
            tracing::info!("refused the credential key to {peer}: failed_authentication");
            http::write_message(
                s,
                "HTTP/1.1 403 Forbidden",
                &[("Content-Type", "text/plain")],
                Refusal::FailedAuthentication.token().as_bytes(),
            )
            .await
        }
    }
}

type Issued = (String, Vec<u8>, Vec<reload::wire::NodeId>);

fn enroll_request(req: &http::Message, st: &ServerState) -> Result<Issued, PkiError> {
    let ct = req.header("content-type").unwrap_or_default();
    let parts =
        http::parse_multipart(ct, &req.body).map_err(|_| PkiError::Refused(Refusal::BadCsr))?;
    let get = |n: &str| parts.iter().find(|p| p.name == n);
    let user = get("username")
        .and_then(|p| std::str::from_utf8(&p.data).ok())
        .unwrap_or_default()
        .to_string();
    let password = get("password").map(|p| p.data.clone()).unwrap_or_default();
    if !st.users.check(&user, &password) {
        return Err(PkiError::Refused(Refusal::FailedAuthentication));
    }
    let count = match get("nodeids") {
        None => 1,
        Some(p) => std::str::from_utf8(&p.data)
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .ok_or(PkiError::Refused(Refusal::NodeIdsNotAvailable))?,
    };
    let csr = get("csr").ok_or(PkiError::Refused(Refusal::BadCsr))?;
    let now = super::now_unix();
    let ca = st
        .ca
        .lock()
        .map_err(|_| PkiError::Enroll("CA state poisoned".into()))?;
    let roles: Vec<&str> = st.grants.registrar.iter().map(String::as_str).collect();
    let der = ca.issue_ext(
        &csr.data,
        &user,
        count,
        &roles,
        st.grants.fresh_node_ids,
        now,
    )?;
    let ids = cert::parse(&der, ca.overlay())?.node_ids;
    Ok((user, der, ids))
}

/// Options of `p2psip enroll`.
#[derive(Debug, Clone)]
pub struct EnrollOptions {
    /// Enrollment server URL (https).
    pub server: String,
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
    /// Where to write the identity.
    pub data_dir: PathBuf,
    /// Overlay CA certificate (PEM) trusted beforehand.
    pub ca_cert: Option<PathBuf>,
    /// Accept the server's certificate on first contact (see the module doc).
    pub insecure_first_contact: bool,
    /// Number of Node-IDs wanted.
    pub nodeids: usize,
    /// SHA-256 (hex) of the overlay CA certificate to accept on first contact.
    pub ca_fingerprint: Option<String>,
    /// The overlay the configuration must name, when known.
    pub overlay: Option<String>,
}

/// The handshake-signature methods of a server verifier, checked with the rustls crypto
/// provider in field `$p` (the certificate itself is what each verifier decides).
macro_rules! provider_signature_methods {
    ($p:tt) => {
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                m,
                c,
                d,
                &self.$p.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.$p.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.$p
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
}

/// A server certificate verifier that accepts any certificate (handshake signatures are still
/// checked); used only for `--insecure-first-contact`, followed by a check against the root
/// found in the signed configuration document.
#[derive(Debug)]
struct FirstContact(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for FirstContact {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    provider_signature_methods!(0);
}

fn client_tls(root: Option<&[u8]>) -> Result<rustls::ClientConfig, PkiError> {
    let b = rustls::ClientConfig::builder_with_provider(super::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| PkiError::Crypto(e.to_string()))?;
    Ok(match root {
        Some(r) => {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from(r.to_vec()))
                .map_err(|e| PkiError::Cert(format!("CA certificate: {e}")))?;
            b.with_root_certificates(roots).with_no_client_auth()
        }
        None => b
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(FirstContact(super::tls::provider())))
            .with_no_client_auth(),
    })
}

/// One HTTPS exchange; returns the response and the server's certificate (DER).
async fn exchange(
    url: &Url,
    root: Option<&[u8]>,
    start: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(http::Message, Vec<u8>), PkiError> {
    exchange_with(url, client_tls(root)?, start, headers, body).await
}

/// A server certificate verifier for a node joining with a password: the server must hold a
/// certificate from the pinned overlay root that is not a node certificate (no reload URI),
/// whatever its host name (a lab enrollment server listening on 0.0.0.0 cannot know the
/// address a node dials).
#[derive(Debug)]
struct PinnedRootAnyName(Vec<u8>, Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for PinnedRootAnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        cert::verify_chain(end_entity, &self.0, "", now)
            .map_err(|e| rustls::Error::General(format!("enrollment server certificate: {e}")))?;
        let node_cert = {
            use x509_parser::prelude::{FromDer, X509Certificate};
            let (_, c) = X509Certificate::from_der(end_entity)
                .map_err(|e| rustls::Error::General(e.to_string()))?;
            c.subject_alternative_name().ok().flatten().is_some_and(|san| {
                san.value.general_names.iter().any(|g| {
                    matches!(g, x509_parser::extensions::GeneralName::URI(u) if u.starts_with("reload:"))
                })
            })
        };
        if node_cert {
            return Err(rustls::Error::General(
                "the enrollment server presented a node certificate".into(),
            ));
        }
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    provider_signature_methods!(1);
}

fn client_tls_any_name(root: &[u8]) -> Result<rustls::ClientConfig, PkiError> {
    Ok(
        rustls::ClientConfig::builder_with_provider(super::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| PkiError::Crypto(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedRootAnyName(
                root.to_vec(),
                super::tls::provider(),
            )))
            .with_no_client_auth(),
    )
}

/// One HTTPS exchange with a given TLS client configuration.
async fn exchange_with(
    url: &Url,
    cfg: rustls::ClientConfig,
    start: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(http::Message, Vec<u8>), PkiError> {
    let name = ServerName::try_from(url.host.clone())
        .map_err(|_| PkiError::Enroll(format!("bad host name {:?}", url.host)))?;
    tokio::time::timeout(EXCHANGE_TIMEOUT, async {
        let tcp = TcpStream::connect(url.authority())
            .await
            .map_err(|e| PkiError::Enroll(format!("cannot connect to {}: {e}", url.authority())))?;
        let mut s = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(name, tcp)
            .await
            .map_err(|e| PkiError::Enroll(format!("TLS with {}: {e}", url.authority())))?;
        let server_cert = s
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .unwrap_or_default();
        let host = url.authority();
        let mut h: Vec<(&str, &str)> = vec![("Host", &host)];
        h.extend_from_slice(headers);
        http::write_message(&mut s, start, &h, body).await?;
        let resp = http::read_message(&mut s).await?;
        Ok((resp, server_cert))
    })
    .await
    .map_err(|_| PkiError::Enroll(format!("{} did not answer in time", url.authority())))?
}

/// Enrolls with a server: fetches and verifies the configuration, sends a CSR, checks the
/// certificate, and writes the identity into `opts.data_dir`.
pub async fn enroll(opts: &EnrollOptions, now: i64) -> Result<Identity, PkiError> {
    let url = Url::parse(&opts.server)?;
    let mut pinned = match &opts.ca_cert {
        Some(p) => Some(super::read_pem(p, "CERTIFICATE")?),
        None if opts.insecure_first_contact || opts.ca_fingerprint.is_some() => None,
        None => {
            return Err(PkiError::Enroll(
                "give the overlay CA certificate with --ca-cert FILE, or accept the server on \
                 first contact with --insecure-first-contact"
                    .into(),
            ));
        }
    };
    let conf_url = Url {
        path: WELL_KNOWN.to_string(),
        ..url.clone()
    };
    let (resp, server_cert) = exchange(
        &conf_url,
        pinned.as_deref(),
        &format!("GET {WELL_KNOWN} HTTP/1.1"),
        &[("Accept", config_doc::MEDIA_TYPE)],
        b"",
    )
    .await?;
    if resp.start[1] != "200" {
        return Err(PkiError::Enroll(format!(
            "GET {WELL_KNOWN}: {} {}",
            resp.start[1], resp.start[2]
        )));
    }
    let xml = String::from_utf8(resp.body)
        .map_err(|_| PkiError::Config("configuration document is not UTF-8".into()))?;
    let conf = config_doc::verify(&xml, pinned.as_deref(), opts.overlay.as_deref(), now)?;
    config_doc::require_extensions(&conf)?;
    if pinned.is_none() {
        let fp = hex::encode(super::sign::sha256(&conf.signer));
        if let Some(want) = &opts.ca_fingerprint
            && !want.eq_ignore_ascii_case(&fp)
        {
            return Err(PkiError::Enroll(format!(
                "the overlay CA has SHA-256 fingerprint {fp}, not the expected {want}"
            )));
        }
        // First contact: the HTTPS server must hold a certificate from the overlay's own CA.
        cert::verify_chain(&server_cert, &conf.signer, &conf.overlay, now).map_err(|e| {
            PkiError::Enroll(format!(
                "the HTTPS server's certificate is not from the overlay CA in its own configuration: {e}"
            ))
        })?;
        tracing::info!(
            "first contact: trusting overlay CA with SHA-256 fingerprint {} for overlay {}",
            hex::encode(super::sign::sha256(&conf.signer)),
            conf.overlay
        );
        pinned = Some(conf.signer.clone());
    }
    let root = pinned.unwrap_or_default();

    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| PkiError::Key(e.to_string()))?;
    let csr = make_csr(&kp, &opts.user)?;
    let mut parts = vec![
        Part {
            name: "username".into(),
            content_type: None,
            data: opts.user.as_bytes().to_vec(),
        },
        Part {
            name: "password".into(),
            content_type: None,
            data: opts.password.as_bytes().to_vec(),
        },
    ];
    if opts.nodeids > 1 {
        parts.push(Part {
            name: "nodeids".into(),
            content_type: None,
            data: opts.nodeids.to_string().into_bytes(),
        });
    }
    parts.push(Part {
        name: "csr".into(),
        content_type: Some("application/pkcs10".into()),
        data: csr,
    });
    let (ct, body) = http::multipart(&parts)?;
    // With the CA handed out beforehand the server's name is checked too; after first contact
    // (or a fingerprint pin) only that the server holds a server certificate from the root.
    let post_tls = if opts.ca_cert.is_some() {
        client_tls(Some(&root))?
    } else {
        client_tls_any_name(&root)?
    };
    let (resp, _) = exchange_with(
        &url,
        post_tls,
        &format!("POST {} HTTP/1.1", url.path),
        &[("Accept", "application/pkix-cert"), ("Content-Type", &ct)],
        &body,
    )
    .await?;
    match resp.start[1].as_str() {
        "200" => {}
        "403" => {
            return Err(PkiError::Refused(Refusal::from_token(
                &String::from_utf8_lossy(&resp.body),
            )));
        }
        other => {
            return Err(PkiError::Enroll(format!(
                "POST {}: {other} {}",
                url.path, resp.start[2]
            )));
        }
    }
    let id = Identity::from_parts(
        kp.serialized_der().to_vec(),
        resp.body,
        root,
        &conf.overlay,
        now,
    )?;
    if id.user != opts.user {
        return Err(PkiError::Enroll(format!(
            "the server issued a certificate for user {:?}, not {:?}",
            id.user, opts.user
        )));
    }
    if id.node_ids.len() != opts.nodeids.max(1) {
        return Err(PkiError::Enroll(format!(
            "asked for {} Node-IDs, the certificate has {}",
            opts.nodeids.max(1),
            id.node_ids.len()
        )));
    }
    id.save(&opts.data_dir, &xml)?;
    Ok(id)
}

/// Fetches the overlay credential key from the enrollment server at `server` (trusting only
/// `root`), authenticating with the enrollment user name and password. `None`: the server has
/// none to give.
pub async fn fetch_credential_key(
    server: &str,
    root: &[u8],
    user: &str,
    password: &str,
) -> Result<Option<Vec<u8>>, PkiError> {
    let url = Url {
        path: CREDENTIAL_KEY_PATH.to_string(),
        ..Url::parse(server)?
    };
    let (ct, body) = http::multipart(&[
        Part {
            name: "username".into(),
            content_type: None,
            data: user.as_bytes().to_vec(),
        },
        Part {
            name: "password".into(),
            content_type: None,
            data: password.as_bytes().to_vec(),
        },
    ])?;
    let (resp, _) = exchange_with(
        &url,
        client_tls_any_name(root)?,
        &format!("POST {CREDENTIAL_KEY_PATH} HTTP/1.1"),
        &[("Content-Type", &ct)],
        &body,
    )
    .await?;
    match resp.start[1].as_str() {
        "200" => Ok(Some(resp.body)),
        "404" => Ok(None),
        "403" => Err(PkiError::Refused(Refusal::from_token(
            &String::from_utf8_lossy(&resp.body),
        ))),
        other => Err(PkiError::Enroll(format!(
            "POST {CREDENTIAL_KEY_PATH}: {other} {}",
            resp.start[2]
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_file_plain_and_hashed() {
        let u = Users::parse("# c\nalice:secret\nbob:pa:ss\n", "users").unwrap();
        assert!(u.check("alice", b"secret"));
        assert!(!u.check("alice", b"Secret"));
        assert!(u.check("bob", b"pa:ss"));
        assert!(!u.check("carol", b"secret"));
        let line = u.hashed_line("alice").unwrap();
        assert!(!line.contains("secret"));
        let u2 = Users::parse(&line, "users").unwrap();
        assert!(u2.check("alice", b"secret"));
        assert!(Users::parse("no colon\n", "f").is_err());
        assert!(Users::parse("a b:x\n", "f").is_err());
    }

    async fn start_server(
        now: i64,
    ) -> (
        tempfile::TempDir,
        String,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), PkiError>>,
    ) {
        let d = tempfile::tempdir().unwrap();
        let ca_dir = d.path().join("ca");
        Ca::init(&ca_dir, "enroll.test", None, &[], now).unwrap();
        std::fs::write(ca_dir.join("users.txt"), "alice:pw\nbob:pw2\n").unwrap();
        let l = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let url = format!("https://{}/enroll", l.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let h = tokio::spawn(async move {
            serve(
                &ca_dir,
                l,
                None,
                None,
                async {
                    let _ = rx.await;
                },
                now,
            )
            .await
        });
        (d, url, tx, h)
    }

    fn opts(d: &Path, url: &str, user: &str, pw: &str, n: usize, sub: &str) -> EnrollOptions {
        EnrollOptions {
            server: url.to_string(),
            user: user.into(),
            password: pw.into(),
            data_dir: d.join(sub),
            ca_cert: Some(d.join("ca").join(super::super::ca::CA_CERT)),
            insecure_first_contact: false,
            nodeids: n,
            ca_fingerprint: None,
            overlay: None,
        }
    }

    #[tokio::test]
    async fn in_process_server_and_client() {
        let now = crate::pki::now_unix();
        let (d, url, stop, h) = start_server(now).await;
        let p = d.path();
        let a = enroll(&opts(p, &url, "alice", "pw", 2, "a"), now)
            .await
            .unwrap();
        assert_eq!(a.node_ids.len(), 2);
        let loaded = Identity::load(&p.join("a"), now).unwrap();
        assert_eq!(loaded.node_ids, a.node_ids);
        let e = enroll(&opts(p, &url, "alice", "nope", 1, "x"), now)
            .await
            .unwrap_err();
        assert!(
            matches!(e, PkiError::Refused(Refusal::FailedAuthentication)),
            "{e}"
        );
        let e = enroll(&opts(p, &url, "bob", "pw2", 9, "x"), now)
            .await
            .unwrap_err();
        assert!(
            matches!(e, PkiError::Refused(Refusal::NodeIdsNotAvailable)),
            "{e}"
        );
        // Insecure first contact pins the CA from the signed configuration.
        let mut o = opts(p, &url, "bob", "pw2", 1, "b");
        o.ca_cert = None;
        assert!(enroll(&o, now).await.is_err(), "needs a trust choice");
        o.insecure_first_contact = true;
        let b = enroll(&o, now).await.unwrap();
        assert_eq!(b.root_der, a.root_der);
        assert_ne!(b.node_id, a.node_id);
        // A raw bad CSR and a GET elsewhere.
        let u = Url::parse(&url).unwrap();
        let (ct, body) = http::multipart(&[
            Part {
                name: "username".into(),
                content_type: None,
                data: b"bob".to_vec(),
            },
            Part {
                name: "password".into(),
                content_type: None,
                data: b"pw2".to_vec(),
            },
            Part {
                name: "csr".into(),
                content_type: Some("application/pkcs10".into()),
                data: b"junk".to_vec(),
            },
        ])
        .unwrap();
        let (r, _) = exchange(
            &u,
            Some(&a.root_der),
            "POST /enroll HTTP/1.1",
            &[("Content-Type", &ct)],
            &body,
        )
        .await
        .unwrap();
        assert_eq!(
            (r.start[1].as_str(), r.body.as_slice()),
            ("403", b"bad_CSR".as_slice())
        );
        assert_eq!(r.header("content-type"), Some("text/plain"));
        let (r, _) = exchange(&u, Some(&a.root_der), "GET /nothing HTTP/1.1", &[], b"")
            .await
            .unwrap();
        assert_eq!(r.start[1], "404");
        let (r, _) = exchange(
            &u,
            Some(&a.root_der),
            &format!("GET {WELL_KNOWN} HTTP/1.1"),
            &[],
            b"",
        )
        .await
        .unwrap();
        assert_eq!(r.header("content-type"), Some(config_doc::MEDIA_TYPE));
        stop.send(()).unwrap();
        h.await.unwrap().unwrap();
    }

    #[test]
    fn csr_names_user_and_has_empty_subject() {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let der = make_csr(&kp, "alice@x").unwrap();
        let p = rcgen::CertificateSigningRequestParams::from_der(&der.clone().into()).unwrap();
        assert_eq!(p.params.distinguished_name.iter().count(), 0);
        assert_eq!(p.params.subject_alt_names.len(), 1);
    }
}
