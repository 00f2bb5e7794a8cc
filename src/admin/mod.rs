//! The admin HTTP/1.1 endpoint (one request per connection, hand-written like the
//! enrollment server, reusing [`crate::pki::http`]):
//!
//! * `GET /status`: JSON with Node-ID, overlay, successors, predecessors, fingers, links
//!   (state, RTT), stored resources, and registrations when a hook provides them;
//! * `GET /metrics`: Prometheus text;
//! * `POST /debug/store` (body = value) and `GET /debug/fetch?user=NAME`: store a test value
//!   under this node's user (SIP-REGISTRATION Kind, key = our Node-ID) and fetch a user's
//!   values. Only when `admin.debug` is true.

use crate::overlay::OverlayHandle;
use crate::pki::http::{read_message, write_message};
use reload::node::Outcome;
use reload::storage::{DataValue, KIND_SIP_REGISTRATION, Selector, ValueKey};
use reload::wire::ResourceId;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Extra JSON for `/status` (e.g. the gateway's registrations).
pub type StatusHook = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// Admin server settings.
#[derive(Clone)]
pub struct AdminConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Enables the `/debug/*` paths.
    pub debug: bool,
    /// Registrations hook for `/status`.
    pub registrations: Option<StatusHook>,
}

/// Binds the admin listener and serves it in a task.
pub async fn start(
    cfg: AdminConfig,
    overlay: OverlayHandle,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let l = TcpListener::bind(cfg.listen).await?;
    let addr = l.local_addr()?;
    tracing::info!("admin listening on http {addr}");
    Ok(tokio::spawn(async move {
        loop {
            let Ok((mut s, peer)) = l.accept().await else {
                continue;
            };
            let cfg = cfg.clone();
            let overlay = overlay.clone();
            tokio::spawn(async move {
                if let Err(e) = serve(&mut s, &cfg, &overlay).await {
                    tracing::debug!("admin request from {peer}: {e}");
                }
            });
        }
    }))
}

async fn serve(
    s: &mut tokio::net::TcpStream,
    cfg: &AdminConfig,
    overlay: &OverlayHandle,
) -> Result<(), crate::pki::PkiError> {
    let m = read_message(s).await?;
    let method = m.start[0].as_str();
    let target = m.start[1].as_str();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (code, ctype, body): (&str, &str, Vec<u8>) = match (method, path) {
        ("GET", "/status") => match overlay.status().await {
            Ok(mut v) => {
                if let (Some(h), Some(o)) = (&cfg.registrations, v.as_object_mut()) {
                    o.insert("registrations".into(), h());
                }
                ("200 OK", "application/json", v.to_string().into_bytes())
            }
            Err(e) => (
                "503 Service Unavailable",
                "text/plain",
                e.to_string().into(),
            ),
        },
        ("GET", "/metrics") => match overlay.metrics().await {
            Ok(t) => ("200 OK", "text/plain; version=0.0.4", t.into_bytes()),
            Err(e) => (
                "503 Service Unavailable",
                "text/plain",
                e.to_string().into(),
            ),
        },
        ("POST", "/debug/store") if cfg.debug => {
            let r = overlay
                .store(
                    ResourceId::hash(overlay.user.as_bytes()),
                    KIND_SIP_REGISTRATION,
                    vec![(
                        ValueKey::Key(overlay.node_id.to_array().to_vec()),
                        DataValue {
                            exists: true,
                            value: m.body.clone(),
                        },
                        3600,
                    )],
                )
                .await;
            match r {
                Ok(Outcome::Stored(k)) => {
                    let replicas: Vec<String> = k
                        .iter()
                        .flat_map(|(_, _, r)| r.iter().map(|n| hex::encode(n.to_array())))
                        .collect();
                    let j = serde_json::json!({"stored": true, "replicas": replicas});
                    ("200 OK", "application/json", j.to_string().into_bytes())
                }
                Ok(o) => (
                    "502 Bad Gateway",
                    "text/plain",
                    format!("{o:?}").into_bytes(),
                ),
                Err(e) => ("502 Bad Gateway", "text/plain", e.to_string().into_bytes()),
            }
        }
        ("GET", "/debug/fetch") if cfg.debug => {
            let user = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("user="))
                .unwrap_or(&overlay.user)
                .to_string();
            let r = overlay
                .fetch(
                    ResourceId::hash(user.as_bytes()),
                    vec![(KIND_SIP_REGISTRATION, Selector::Dictionary(Vec::new()))],
                )
                .await;
            match r {
                Ok(Outcome::Fetched(kinds)) => {
                    let values: Vec<String> = kinds
                        .iter()
                        .flat_map(|k| k.values.iter())
                        .filter(|v| v.value.exists)
                        .map(|v| String::from_utf8_lossy(&v.value.value).into_owned())
                        .collect();
                    let j = serde_json::json!({"user": user, "values": values});
                    ("200 OK", "application/json", j.to_string().into_bytes())
                }
                Ok(o) => (
                    "502 Bad Gateway",
                    "text/plain",
                    format!("{o:?}").into_bytes(),
                ),
                Err(e) => ("502 Bad Gateway", "text/plain", e.to_string().into_bytes()),
            }
        }
        _ => ("404 Not Found", "text/plain", b"not found\n".to_vec()),
    };
    write_message(
        s,
        &format!("HTTP/1.1 {code}"),
        &[("Content-Type", ctype)],
        &body,
    )
    .await
}
