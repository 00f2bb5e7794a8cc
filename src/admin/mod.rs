//! The admin HTTP/1.1 endpoint (one request per connection, hand-written like the
//! enrollment server, reusing [`crate::pki::http`]):
//!
//! * `GET /status`: JSON with Node-ID, overlay, successors, predecessors, fingers, links
//!   (state, RTT), stored resources, and registrations when a hook provides them;
//! * `GET /metrics`: Prometheus text;
//! * `POST /users/reload`: rereads the users like SIGHUP (and shares the users file through
//!   the overlay); answers `{"users": N}`;
//! * `POST /debug/store` (body = value) and `GET /debug/fetch?user=NAME`: store a test value
//!   under this node's user (SIP-REGISTRATION Kind, key = our Node-ID) and fetch a user's
//!   values; `POST /debug/bench?op=fetch|store&n=N&concurrency=C&users=a,b` runs N
//!   requests from inside the node and reports latency percentiles. Only when `admin.debug`
//!   is true;
//! * `POST /diag`: RFC 7851 diagnostics for `p2psip diag` (ping, PathTrack walk, node
//!   information); request and reply JSON are described in [`crate::diag_cmd`].
//! * `POST /redir?op=register&namespace=NS` and `GET /redir?op=lookup&namespace=NS&key=HEX`:
//!   ReDiR service discovery (RFC 7374, [`crate::redir`]); the walk as JSON.

use crate::diag_cmd::{DiagReply, DiagRequest, Hop, InfoItem, Target};
use crate::overlay::{HandleError, OverlayHandle};
use crate::pki::http::{read_message, write_message};
use reload::node::Outcome;
use reload::node::RequestError;
use reload::storage::{DataValue, KIND_SIP_REGISTRATION, Selector, ValueKey};
use reload::wire::{
    Destination, DiagnosticKindId, DiagnosticValue, DiagnosticsRequest, NodeId, PathTrackAns,
    ResourceId,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// The status web page: draws the ring from `/status`, refreshed every two seconds.
const STATUS_PAGE: &str = include_str!("status.html");

/// Decodes `%XX` escapes of a query value (invalid escapes stay as they are).
fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(x)) => {
                out.push(x);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

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
    /// Live-calls hook for `/status` (`calls`).
    pub calls: Option<StatusHook>,
    /// Inter-node SIP/DTLS socket hook for `/status` (`sip_dtls`: candidates and links).
    pub sip_dtls: Option<StatusHook>,
    /// More Prometheus text for `/metrics` (the SIP counters).
    pub metrics: Option<Arc<dyn Fn() -> String + Send + Sync>>,
    /// calls: call forwarding hook for `POST /forward?user=U&target=T` (no target: remove).
    pub forward: Option<ForwardHook>,
    /// `POST /users/reload`: rereads the users like SIGHUP (how many may register).
    pub reload_users: Option<ReloadHook>,
    /// ReDiR service discovery for `/redir` (RFC 7374).
    pub redir: Option<crate::redir::Redir>,
}

/// Sets (`Some(target)`) or removes (`None`) the call forwarding of a user; the answer text.
pub type ForwardHook = Arc<dyn Fn(&str, Option<&str>) -> Result<String, String> + Send + Sync>;

/// Rereads the users; the number that may register, or why not.
pub type ReloadHook = Arc<dyn Fn() -> Result<usize, String> + Send + Sync>;

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
                if let (Some(h), Some(o)) = (&cfg.calls, v.as_object_mut()) {
                    o.insert("calls".into(), h());
                }
                if let (Some(h), Some(o)) = (&cfg.sip_dtls, v.as_object_mut()) {
                    o.insert("sip_dtls".into(), h());
                }
                if let (Some(r), Some(o)) = (&cfg.redir, v.as_object_mut()) {
                    o.insert("services".into(), serde_json::json!(r.registered()));
                }
                ("200 OK", "application/json", v.to_string().into_bytes())
            }
            Err(e) => (
                "503 Service Unavailable",
                "text/plain",
                e.to_string().into(),
            ),
        },
        ("GET", "/") | ("GET", "/index.html") => (
            "200 OK",
            "text/html; charset=utf-8",
            STATUS_PAGE.as_bytes().to_vec(),
        ),
        ("POST", "/forward") => {
            let arg = |k: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                    .filter(|v| !v.is_empty())
                    .map(percent_decode)
            };
            match (&cfg.forward, arg("user")) {
                (Some(h), Some(user)) => match h(&user, arg("target").as_deref()) {
                    Ok(t) => ("200 OK", "text/plain", t.into_bytes()),
                    Err(e) => ("400 Bad Request", "text/plain", e.into_bytes()),
                },
                (None, _) => ("404 Not Found", "text/plain", b"no SIP gateway".to_vec()),
                (_, None) => (
                    "400 Bad Request",
                    "text/plain",
                    b"user= is missing".to_vec(),
                ),
            }
        }
        ("POST", "/users/reload") => match cfg.reload_users.as_ref().map(|h| h()) {
            Some(Ok(n)) => (
                "200 OK",
                "application/json",
                serde_json::json!({ "users": n }).to_string().into_bytes(),
            ),
            Some(Err(e)) => ("500 Internal Server Error", "text/plain", e.into_bytes()),
            None => (
                "404 Not Found",
                "text/plain",
                b"no users to reload".to_vec(),
            ),
        },
        ("GET", "/metrics") => match overlay.metrics().await {
            Ok(mut t) => {
                if let Some(h) = &cfg.metrics {
                    t.push_str(&h());
                }
                ("200 OK", "text/plain; version=0.0.4", t.into_bytes())
            }
            Err(e) => (
                "503 Service Unavailable",
                "text/plain",
                e.to_string().into(),
            ),
        },
        ("POST", "/debug/forget-certificates") if cfg.debug => {
            match overlay.forget_certificates().await {
                Ok(()) => ("200 OK", "text/plain", b"forgotten\n".to_vec()),
                Err(e) => (
                    "503 Service Unavailable",
                    "text/plain",
                    e.to_string().into_bytes(),
                ),
            }
        }
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
        ("POST", "/redir") | ("GET", "/redir") => redir(cfg, method, query).await,
        ("POST", "/diag") => match serde_json::from_slice::<DiagRequest>(&m.body) {
            Ok(req) => {
                let j = diag(overlay, &req).await;
                (
                    "200 OK",
                    "application/json",
                    serde_json::to_vec(&j).unwrap_or_default(),
                )
            }
            Err(e) => (
                "400 Bad Request",
                "text/plain",
                format!("bad diag request: {e}\n").into_bytes(),
            ),
        },
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

/// `/redir`: register (POST) or look up (GET) in a ReDiR namespace.
async fn redir(
    cfg: &AdminConfig,
    method: &str,
    query: &str,
) -> (&'static str, &'static str, Vec<u8>) {
    let Some(r) = &cfg.redir else {
        return ("404 Not Found", "text/plain", b"no ReDiR service".to_vec());
    };
    let ns = param(query, "namespace").map(crate::redir::percent_decode);
    let Some(ns) = ns.filter(|n| !n.is_empty()) else {
        return (
            "400 Bad Request",
            "text/plain",
            b"namespace= is missing".to_vec(),
        );
    };
    let res = match (method, param(query, "op").unwrap_or("lookup")) {
        ("POST", "register") => r.register(&ns).await,
        (_, "lookup") => match param(query, "key").filter(|k| !k.is_empty()) {
            Some(k) => match crate::redir::parse_key(k) {
                Some(k) => r.lookup(&ns, Some(k)).await,
                None => {
                    return (
                        "400 Bad Request",
                        "text/plain",
                        b"key= must be 32 hex digits".to_vec(),
                    );
                }
            },
            None => r.lookup(&ns, None).await,
        },
        _ => {
            return (
                "400 Bad Request",
                "text/plain",
                b"op=register (POST) or op=lookup".to_vec(),
            );
        }
    };
    match res {
        Ok(rep) => (
            "200 OK",
            "application/json",
            serde_json::to_vec(&rep).unwrap_or_default(),
        ),
        Err(e) => ("502 Bad Gateway", "text/plain", e.into_bytes()),
    }
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

/// Most PathTrack hops followed by `POST /diag` with `op: path`.
const MAX_PATH_HOPS: usize = 32;

/// The RFC 6940 / RFC 7851 name of a failed request.
fn error_name(e: &HandleError) -> String {
    match e {
        HandleError::Stopped => "overlay driver stopped".into(),
        HandleError::Request(RequestError::Timeout) => "timeout".into(),
        HandleError::Request(RequestError::Error { code, info }) => {
            let name = reload::wire::ErrorCode(*code)
                .name()
                .map(String::from)
                .unwrap_or_else(|| format!("error {code}"));
            if info.is_empty() {
                name
            } else {
                format!("{name}: {}", String::from_utf8_lossy(info))
            }
        }
        HandleError::Request(r) => format!("{r:?}"),
    }
}

fn hex_id(n: &NodeId) -> String {
    hex::encode(n.to_array())
}

/// JSON form of one diagnostic value.
fn info_item(v: &DiagnosticValue) -> InfoItem {
    use serde_json::json;
    let value = match v {
        DiagnosticValue::StatusInfo(x)
        | DiagnosticValue::UnderlayHop(x)
        | DiagnosticValue::BatteryStatus(x) => json!(x),
        DiagnosticValue::RoutingTableSize(x)
        | DiagnosticValue::ProcessPower(x)
        | DiagnosticValue::Bandwidth(x)
        | DiagnosticValue::MemoryFootprint(x)
        | DiagnosticValue::EwmaBytesSent(x)
        | DiagnosticValue::EwmaBytesRcvd(x) => json!(x),
        DiagnosticValue::MachineUptime(x)
        | DiagnosticValue::AppUptime(x)
        | DiagnosticValue::DatasizeStored(x) => json!(x),
        DiagnosticValue::SoftwareVersion(s) => json!(s),
        DiagnosticValue::InstancesStored(l) => json!(
            l.iter()
                .map(|(k, n)| json!({"kind": k.0, "instances": n}))
                .collect::<Vec<_>>()
        ),
        DiagnosticValue::MessagesSentRcvd(l) => json!(
            l.iter()
                .map(|c| json!({"message_code": c.message_code, "sent": c.sent, "received": c.received}))
                .collect::<Vec<_>>()
        ),
        DiagnosticValue::Other(_, b) => json!(hex::encode(&b.0)),
    };
    let k = v.kind();
    InfoItem {
        kind: k
            .name()
            .map(String::from)
            .unwrap_or_else(|| k.0.to_string()),
        value,
    }
}

/// Runs one `POST /diag` request against the overlay.
async fn diag(overlay: &OverlayHandle, req: &DiagRequest) -> DiagReply {
    let timeout = Duration::from_millis(req.timeout_ms.clamp(1, 120_000));
    let deadline = Instant::now() + timeout;
    let fail = |hops: Vec<Hop>, e: String| DiagReply {
        hops,
        complete: false,
        error: Some(e),
    };
    let (target, key) = match &req.target {
        Target::Node(h) => match u128::from_str_radix(h, 16) {
            Ok(v) if h.len() == 32 => (Destination::Node(NodeId(v)), v),
            _ => return fail(vec![], format!("bad Node-ID {h:?}")),
        },
        Target::Resource(name) => {
            let r = ResourceId::hash(name.as_bytes());
            let Some(k) = r.as_u128() else {
                return fail(vec![], "bad resource".into());
            };
            (Destination::Resource(r), k)
        }
    };
    let mut flags = 0u64;
    for k in &req.kinds {
        match DiagnosticKindId::from_name(k) {
            Some(id) => flags |= id.flag(),
            None => return fail(vec![], format!("unknown diagnostic kind {k:?}")),
        }
    }
    if req.kinds.is_empty() {
        flags = (1u16..=15).map(|k| DiagnosticKindId(k).flag()).sum();
    }
    let now = crate::overlay::now().0;
    let dreq = |flags: u64| DiagnosticsRequest {
        expiration: now + timeout.as_millis() as u64,
        timestamp_initiated: now,
        dm_flags: flags,
        extensions: Vec::new(),
    };
    // One overlay call bounded by what is left of the timeout.
    async fn bounded<F: std::future::Future<Output = Result<(Outcome, u32), HandleError>>>(
        deadline: Instant,
        f: F,
    ) -> Result<(Outcome, u32, u64), String> {
        let started = Instant::now();
        let left = deadline.saturating_duration_since(started);
        match tokio::time::timeout(left, f).await {
            Ok(Ok((o, hops))) => Ok((o, hops, started.elapsed().as_millis() as u64)),
            Ok(Err(e)) => Err(error_name(&e)),
            Err(_) => Err("timeout".into()),
        }
    }
    let node_of = |d: &Destination| match d {
        Destination::Node(n) => Some(*n),
        _ => None,
    };
    match req.op.as_str() {
        "ping" => {
            // A resource's responder is learned from a PathTrack to it (Pong names nobody).
            let r = match &target {
                Destination::Node(_) => bounded(deadline, overlay.ping(vec![target.clone()])).await,
                _ => bounded(deadline, overlay.diagnostics(target.clone(), dreq(0))).await,
            };
            match r {
                Ok((o, hops, rtt)) => {
                    let node = match (&o, node_of(&target)) {
                        (_, Some(n)) => hex_id(&n),
                        (Outcome::PathTrack(a), None) => {
                            node_of(&a.next_hop).map(|n| hex_id(&n)).unwrap_or_default()
                        }
                        _ => String::new(),
                    };
                    DiagReply {
                        hops: vec![Hop {
                            node,
                            rtt_ms: Some(rtt),
                            overlay_hops: Some(hops),
                            info: vec![],
                        }],
                        complete: true,
                        error: None,
                    }
                }
                Err(e) => fail(vec![], e),
            }
        }
        "info" => match bounded(deadline, overlay.diagnostics(target.clone(), dreq(flags))).await {
            Ok((Outcome::PathTrack(a), hops, rtt)) => {
                let node = node_of(&target)
                    .or_else(|| node_of(&a.next_hop))
                    .map(|n| hex_id(&n))
                    .unwrap_or_default();
                DiagReply {
                    hops: vec![Hop {
                        node,
                        rtt_ms: Some(rtt),
                        overlay_hops: Some(hops),
                        info: a.response.values().iter().map(info_item).collect(),
                    }],
                    complete: true,
                    error: None,
                }
            }
            Ok((o, _, _)) => fail(vec![], format!("unexpected answer {o:?}")),
            Err(e) => fail(vec![], e),
        },
        "path" => {
            let mut hops = Vec::new();
            let mut seen: Vec<NodeId> = Vec::new();
            let mut via = match overlay.next_hop(key).await {
                Ok(n) => n,
                Err(e) => return fail(hops, error_name(&e)),
            };
            for _ in 0..MAX_PATH_HOPS {
                seen.push(via);
                let call = overlay.path_track(
                    vec![Destination::Node(via)],
                    target.clone(),
                    dreq(DiagnosticKindId::ROUTING_TABLE_SIZE.flag()),
                );
                let (ans, n, rtt): (PathTrackAns, u32, u64) = match bounded(deadline, call).await {
                    Ok((Outcome::PathTrack(a), n, rtt)) => (a, n, rtt),
                    Ok((o, _, _)) => return fail(hops, format!("unexpected answer {o:?}")),
                    Err(e) => return fail(hops, e),
                };
                hops.push(Hop {
                    node: hex_id(&via),
                    rtt_ms: Some(rtt),
                    overlay_hops: Some(n),
                    info: ans.response.values().iter().map(info_item).collect(),
                });
                let Some(next) = node_of(&ans.next_hop) else {
                    return fail(hops, "next hop is not a Node-ID".into());
                };
                if next == via || Some(via) == node_of(&target) {
                    return DiagReply {
                        hops,
                        complete: true,
                        error: None,
                    };
                }
                if seen.contains(&next) {
                    return fail(hops, "routing loop: next hop repeats".into());
                }
                via = next;
            }
            DiagReply {
                hops,
                complete: false,
                error: None,
            }
        }
        op => fail(vec![], format!("unknown op {op:?}")),
    }
}
