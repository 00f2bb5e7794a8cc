//! A node's identity at start-up, the way `config.yaml` asks for it, and the enrollment
//! server a CA-holding node runs embedded (issue 11 item 2: "a second node given the first
//! node's address and an enrollment password joins the same overlay").
//!
//! * No identity in the data directory, `overlay.enrollment.password` set and a server known
//!   (`overlay.enrollment.server`, else the first bootstrap host on port 6085): the node enrolls
//!   over HTTPS, gets a certificate with the registrar role and the signed `overlay.xml`, and
//!   fetches the overlay credential key (docs/SECURITY.md).
//! * Otherwise the one-node default of [`super::local::ensure_local_identity`].
//! * A node holding the CA (`<data_dir>/ca/`) serves enrollment on
//!   `overlay.enrollment.listen` with the overlay password (from the configuration, or
//!   generated into `<data_dir>/enrollment-password.txt` and printed once).

use super::PkiError;
use super::enroll::{self, EnrollOptions, Grants, Users};
use super::local::{self, Identity};
use crate::config::Loaded;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default port of the embedded enrollment server.
pub const ENROLLMENT_PORT: u16 = 6085;
/// File holding a generated enrollment password.
pub const PASSWORD_FILE: &str = "enrollment-password.txt";
/// File holding the overlay credential key (32 bytes, mode 0600).
pub const CREDENTIAL_KEY_FILE: &str = "credential.key";

/// The enrollment server URL a joining node uses, if it is to enroll at all.
fn server_url(loaded: &Loaded) -> Option<String> {
    let e = &loaded.config.overlay.enrollment;
    if let Some(s) = e.server.as_ref().filter(|s| !s.is_empty()) {
        return Some(s.clone());
    }
    let b = loaded.bootstrap.first()?;
    let host = match b.ip() {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    };
    Some(format!("https://{host}:{ENROLLMENT_PORT}/enroll"))
}

/// Loads, enrolls or creates this node's identity (see the module doc). Errors are in words
/// for the operator.
pub async fn ensure_identity(loaded: &Loaded, now: i64) -> Result<Identity, String> {
    let data_dir = loaded.data_dir();
    let c = &loaded.config.overlay;
    let password = c.enrollment.password.as_ref().filter(|p| !p.is_empty());
    if !Identity::exists(&data_dir)
        && let (Some(password), Some(server)) = (password, server_url(loaded))
    {
        let fp = c
            .enrollment
            .ca_fingerprint
            .clone()
            .filter(|f| !f.is_empty());
        tracing::info!(
            "no identity in {}: enrolling as user {} at {server}{}",
            data_dir.display(),
            c.node_user,
            if fp.is_some() {
                " (CA fingerprint pinned)"
            } else {
                " (trusting the overlay CA on first contact; set overlay.enrollment.ca_fingerprint to pin it)"
            }
        );
        let opts = EnrollOptions {
            server: server.clone(),
            user: c.node_user.clone(),
            password: password.clone(),
            data_dir: data_dir.clone(),
            ca_cert: None,
            insecure_first_contact: fp.is_none(),
            nodeids: 1,
            ca_fingerprint: fp,
            overlay: Some(c.instance_name.clone()),
        };
        let id = enroll::enroll(&opts, now)
            .await
            .map_err(|e| explain(&e, &server))?;
        tracing::info!(
            "enrolled in overlay {} at {server}: user {}, Node-ID {}, CA fingerprint {}; wrote {}",
            id.overlay,
            id.user,
            hex::encode(id.node_id.to_array()),
            hex::encode(super::sign::sha256(&id.root_der)),
            data_dir.display()
        );
        match enroll::fetch_credential_key(&server, &id.root_der, &c.node_user, password).await {
            Ok(Some(key)) => {
                super::write(&data_dir.join(CREDENTIAL_KEY_FILE), &key, true)
                    .map_err(|e| e.to_string())?;
                tracing::info!("received the overlay credential key (shared SIP users)");
            }
            Ok(None) => tracing::warn!(
                "the enrollment server has no credential key: SIP users stay local to each node"
            ),
            Err(e) => tracing::warn!("could not fetch the overlay credential key: {e}"),
        }
        return Ok(id);
    }
    local::ensure_local_identity(&data_dir, &c.instance_name, &c.node_user, now)
        .map_err(|e| e.to_string())
}

/// Words for an enrollment failure.
fn explain(e: &PkiError, server: &str) -> String {
    match e {
        PkiError::Refused(super::Refusal::FailedAuthentication) => format!(
            "enrollment at {server} refused: wrong password (failed_authentication); \
             overlay.enrollment.password must be the overlay's enrollment password, which the \
             first node printed in its log"
        ),
        PkiError::Refused(r) => format!("enrollment at {server} refused: {r}"),
        PkiError::Enroll(m) => format!(
            "cannot enroll at {server}: {m}; is the first node running, and is this its \
             enrollment server (overlay.enrollment.server, default port {ENROLLMENT_PORT} of the \
             first bootstrap host)?"
        ),
        other => format!("enrollment at {server} failed: {other}"),
    }
}

/// The overlay credential key of this node: the CA's (created on first use) on a CA-holding
/// node, else the one received at enrollment. `None`: SIP users stay local.
pub fn credential_key(data_dir: &Path) -> Option<Vec<u8>> {
    let ca_dir = data_dir.join(local::LOCAL_CA_DIR);
    let path = if ca_dir.join(super::ca::CA_KEY).exists() {
        let p = ca_dir.join(CREDENTIAL_KEY_FILE);
        if !p.exists() {
            let key = super::random::<32>().ok()?;
            if let Err(e) = super::write(&p, &key, true) {
                tracing::warn!("cannot create the overlay credential key: {e}");
                return None;
            }
        }
        p
    } else {
        data_dir.join(CREDENTIAL_KEY_FILE)
    };
    let key = std::fs::read(&path).ok()?;
    (key.len() == 32).then_some(key)
}

/// Where the embedded enrollment server listens.
fn listen_addr(loaded: &Loaded) -> SocketAddr {
    let e = &loaded.config.overlay.enrollment;
    if let Ok(a) = e.listen.parse() {
        return a;
    }
    let ov = loaded.overlay_listen;
    let port = if ov.port() == 0 { 0 } else { ENROLLMENT_PORT };
    SocketAddr::new(ov.ip(), port)
}

/// The enrollment password of a CA-holding node: configured, or generated once into the data
/// directory. The bool says whether it was just generated (then it is printed).
fn server_password(loaded: &Loaded, data_dir: &Path) -> Result<(String, bool, PathBuf), String> {
    let path = data_dir.join(PASSWORD_FILE);
    if let Some(p) = loaded
        .config
        .overlay
        .enrollment
        .password
        .as_ref()
        .filter(|p| !p.is_empty())
    {
        return Ok((p.clone(), false, path));
    }
    if let Ok(t) = std::fs::read_to_string(&path)
        && !t.trim().is_empty()
    {
        return Ok((t.trim().to_string(), false, path));
    }
    let pw = hex::encode(super::random::<12>().map_err(|e| e.to_string())?);
    super::write(&path, format!("{pw}\n").as_bytes(), true).map_err(|e| e.to_string())?;
    Ok((pw, true, path))
}

/// Starts the embedded enrollment server when this node holds the overlay CA; stops when
/// `shutdown` flips. A busy port is a warning, not a failure of the node.
pub async fn start_server(
    loaded: &Loaded,
    identity: &Identity,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let data_dir = loaded.data_dir();
    let ca_dir = data_dir.join(local::LOCAL_CA_DIR);
    if !ca_dir.join(super::ca::CA_KEY).exists() {
        return;
    }
    let (password, generated, path) = match server_password(loaded, &data_dir) {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!("enrollment server off: {e}");
            return;
        }
    };
    let users = match Users::shared_password(&password) {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!("enrollment server off: {e}");
            return;
        }
    };
    let listen = listen_addr(loaded);
    let listener = match enroll::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(
                "enrollment server off: cannot listen on {listen} (overlay.enrollment.listen): {e}"
            );
            return;
        }
    };
    let bound = listener.local_addr().unwrap_or(listen);
    // Enrolled nodes get the registrar role for the domains of ours.
    let registrar = reload::crypto::x509::parse(&identity.cert_der, &identity.overlay)
        .map(|i| i.registrar_domains)
        .unwrap_or_default();
    let grants = Grants {
        registrar,
        fresh_node_ids: true,
        credential_key: credential_key(&data_dir),
    };
    let how = format!(
        "other nodes join with overlay.bootstrap: [\"<this node's overlay address>\"] and \
         overlay.enrollment.password (server https://{bound}/enroll, CA fingerprint {})",
        hex::encode(super::sign::sha256(&identity.root_der))
    );
    if generated {
        tracing::warn!(
            "generated the overlay enrollment password {password} (kept in {}); {how}",
            path.display()
        );
    } else {
        tracing::info!(
            "enrollment password from {}; {how}",
            if loaded
                .config
                .overlay
                .enrollment
                .password
                .as_ref()
                .is_some_and(|p| !p.is_empty())
            {
                "overlay.enrollment.password".to_string()
            } else {
                path.display().to_string()
            }
        );
    }
    let now = super::now_unix();
    tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        if let Err(e) = enroll::serve_with(
            &ca_dir,
            listener,
            users,
            "any node user with the overlay enrollment password",
            grants,
            None,
            stop,
            now,
        )
        .await
        {
            tracing::warn!("enrollment server stopped: {e}");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(text: &str) -> Loaded {
        crate::config::parse(
            text,
            crate::config::Source::File("t.yaml".into()),
            PathBuf::from("/x"),
        )
        .unwrap()
    }

    #[test]
    fn default_server_is_first_bootstrap_host_port_6085() {
        let l = loaded("overlay:\n  bootstrap: [\"192.0.2.7:6084\", \"192.0.2.8:6084\"]\n");
        assert_eq!(
            server_url(&l).as_deref(),
            Some("https://192.0.2.7:6085/enroll")
        );
        let l = loaded("overlay:\n  bootstrap: [\"[2001:db8::1]:6084\"]\n");
        assert_eq!(
            server_url(&l).as_deref(),
            Some("https://[2001:db8::1]:6085/enroll")
        );
        let l = loaded(
            "overlay:\n  bootstrap: [\"192.0.2.7:6084\"]\n  enrollment: {server: \"https://h:1/e\"}\n",
        );
        assert_eq!(server_url(&l).as_deref(), Some("https://h:1/e"));
        assert_eq!(server_url(&loaded("overlay:\n  first_node: true\n")), None);
    }

    #[test]
    fn listen_defaults_to_overlay_ip_port_6085() {
        let l = loaded("overlay:\n  listen: \"192.0.2.7:6084\"\n");
        assert_eq!(listen_addr(&l), "192.0.2.7:6085".parse().unwrap());
        let l = loaded("overlay:\n  listen: \"127.0.0.1:0\"\n");
        assert_eq!(listen_addr(&l), "127.0.0.1:0".parse().unwrap());
        let l = loaded("overlay:\n  enrollment: {listen: \"127.0.0.1:9999\"}\n");
        assert_eq!(listen_addr(&l), "127.0.0.1:9999".parse().unwrap());
        assert!(
            crate::config::parse(
                "overlay:\n  enrollment: {server: \"http://x/\", ca_fingerprint: \"zz\"}\n",
                crate::config::Source::File("t.yaml".into()),
                PathBuf::from("/x"),
            )
            .is_err()
        );
    }
}
