//! The admin HTTP/1.1 endpoint (one request per connection, hand-written like the
//! enrollment server, reusing [`crate::pki::http`]):
//!
//! * `GET /status`: JSON with Node-ID, overlay, successors, predecessors, fingers, links
//!   (state, RTT), stored resources, and registrations when a hook provides them;
//! * `GET /metrics`: Prometheus text;
//! * `POST /debug/store` (body = value) and `GET /debug/fetch?user=NAME`: store a test value
//!   under this node's user (SIP-REGISTRATION Kind, key = our Node-ID) and fetch a user's
//!   values; `POST /debug/bench?op=fetch|store&n=N&concurrency=C&users=a,b` runs N
//!   requests from inside the node and reports latency percentiles. Only when `admin.debug`
//!   is true.

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
        ("POST", "/debug/bench") if cfg.debug => {
            let j = bench(overlay, query).await;
            ("200 OK", "application/json", j.to_string().into_bytes())
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

fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        kv.split_once('=')
            .and_then(|(k, v)| (k == name).then_some(v))
    })
}

/// `POST /debug/bench?op=fetch|store&n=N&concurrency=C&users=a,b`: N overlay requests from
/// inside the node (no HTTP per request), C at a time; latency percentiles and throughput.
async fn bench(overlay: &OverlayHandle, query: &str) -> serde_json::Value {
    let op = param(query, "op").unwrap_or("fetch").to_string();
    let n: usize = param(query, "n")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
        .min(1_000_000);
    let conc: usize = param(query, "concurrency")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .clamp(1, 1024);
    let users: Vec<String> = param(query, "users")
        .map(|u| u.split(',').map(String::from).collect())
        .unwrap_or_else(|| vec![overlay.user.clone()]);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (o, op, users, next) = (overlay.clone(), op.clone(), users.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let t = std::time::Instant::now();
                let ok = if op == "store" {
                    o.store(
                        ResourceId::hash(o.user.as_bytes()),
                        KIND_SIP_REGISTRATION,
                        vec![(
                            ValueKey::Key(o.node_id.to_array().to_vec()),
                            DataValue {
                                exists: true,
                                value: format!("bench-{i}").into_bytes(),
                            },
                            3600,
                        )],
                    )
                    .await
                    .is_ok()
                } else {
                    let u = users
                        .get(i % users.len().max(1))
                        .cloned()
                        .unwrap_or_default();
                    o.fetch(
                        ResourceId::hash(u.as_bytes()),
                        vec![(KIND_SIP_REGISTRATION, Selector::Dictionary(Vec::new()))],
                    )
                    .await
                    .is_ok()
                };
                if ok {
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            lat.extend(l);
            errors += e;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat.get(i).copied().unwrap_or(0.0)
    };
    serde_json::json!({
        "op": op, "n": n, "concurrency": conc, "ok": lat.len(), "errors": errors,
        "seconds": secs,
        "per_second": if secs > 0.0 { lat.len() as f64 / secs } else { 0.0 },
        "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99), "max_ms": pct(1.0),
    })
}
