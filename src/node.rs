//! The running node: creates its data directory, starts the transports, and stops cleanly on
//! SIGINT or SIGTERM.

use crate::config::Loaded;
use crate::gateway::{self, Gateway, users};
use crate::sip_transport::{self, SipTransportConfig};
use sip::registrar::{Registrar, RegistrarConfig};
use tokio::sync::watch;

/// Why the node could not run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Listening sockets could not be bound.
    #[error("cannot bind {what}: {source}")]
    Bind {
        /// Which listeners.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// A part of the node stopped on its own.
    #[error("{what} stopped unexpectedly: {why}")]
    Stopped {
        /// Which part.
        what: &'static str,
        /// What it returned.
        why: String,
    },
    /// The node's certificate and keys could not be created or loaded.
    #[error("node identity: {0}")]
    Identity(String),
    /// The users could not be loaded.
    #[error("cannot load users: {0}")]
    Users(String),
    /// Signal handling failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs the node until SIGINT/SIGTERM.
pub async fn run(loaded: Loaded) -> Result<(), NodeError> {
    // Install the handlers first, so that a signal during start-up still stops us cleanly.
    let signals = Signals::new()?;
    let data_dir = loaded.data_dir();
    std::fs::create_dir_all(&data_dir).map_err(|source| NodeError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    tracing::info!(
        "p2psip {} starting: configuration {}, data directory {}",
        env!("CARGO_PKG_VERSION"),
        loaded.source,
        data_dir.display()
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // The overlay links authenticate with these certificates (mutual TLS).
    let identity = crate::pki::join::ensure_identity(&loaded, now)
        .await
        .map_err(NodeError::Identity)?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    crate::pki::join::start_server(&loaded, &identity, shutdown_rx.clone()).await;
    let mut sip = sip_transport::bind(SipTransportConfig {
        udp: loaded.sip_udp.clone(),
        tcp: loaded.sip_tcp.clone(),
        server_name: loaded.config.sip.server_name.clone(),
    })
    .await
    .map_err(|e| NodeError::Bind {
        what: "SIP listeners",
        source: e,
    })?;
    let identity = std::sync::Arc::new(identity);
    let c = &loaded.config;
    let (overlay, mut overlay_task) = crate::overlay::start(
        crate::overlay::OverlayConfig {
            overlay: c.overlay.instance_name.clone(),
            listen: loaded.overlay_listen,
            bootstrap: loaded.bootstrap.clone(),
            first_node: c.overlay.first_node,
            discovery: loaded.discovery.map(|(group, interface)| {
                crate::overlay::discovery::DiscoveryConfig {
                    group,
                    interface,
                    wait_ms: c.overlay.discovery.wait_ms,
                    interval_ms: c.overlay.discovery.interval_ms,
                }
            }),
            max_message_size: c.overlay.max_message_size,
            peer_cache: Some(data_dir.join("peers.txt")),
            user: identity.user.clone(),
            link: loaded.link,
            turn_server: loaded.turn_server,
            turn_service: loaded.turn_service.clone(),
            self_tuning: c.overlay.self_tuning,
            omit_certificates: c.overlay.omit_certificates,
        },
        identity.clone(),
    )
    .await
    .map_err(|e| NodeError::Bind {
        what: "overlay listener",
        source: e,
    })?;
    // Service discovery (ReDiR, RFC 7374): register the configured namespaces and refresh.
    let sv = &c.services;
    let redir = crate::redir::Redir::new(
        overlay.clone(),
        crate::redir::RedirSettings {
            branching: sv.branching_factor,
            starting_level: sv.starting_level,
            max_level: sv.max_level,
            lifetime: sv.lifetime,
            refresh: sv.refresh,
        },
    );
    // A node that bridges trunks is a provider of `pstn-gateway` (found with ReDiR).
    let mut namespaces = sv.register.clone();
    if !c.trunks.is_empty() && !namespaces.iter().any(|n| n == "pstn-gateway") {
        namespaces.push("pstn-gateway".to_owned());
    }
    redir.spawn_refresh(&namespaces);
    let publisher = gateway::publish::Publisher::new(overlay.clone());
    let live_calls = gateway::LiveCalls::default();
    let sip_metrics = gateway::metrics::SipMetrics::default();
    // The registrar exists only after the admin listener; POST /users/reload finds it here.
    let shared_cell: std::sync::Arc<std::sync::OnceLock<gateway::Shared>> = Default::default();
    // The SIP/DTLS socket starts after the admin listener too (`/status` `sip_dtls`).
    let app_cell: AppCell = Default::default();
    if let Some(listen) = loaded.admin_listen {
        let p = publisher.clone();
        let lc = live_calls.clone();
        let sm = sip_metrics.clone();
        let (cell, l) = (shared_cell.clone(), loaded.clone());
        crate::admin::start(
            crate::admin::AdminConfig {
                listen,
                debug: c.admin.debug,
                registrations: Some(std::sync::Arc::new(move || p.status())),
                calls: Some(std::sync::Arc::new(move || lc.snapshot())),
                sip_dtls: Some({
                    let a = app_cell.clone();
                    std::sync::Arc::new(move || {
                        a.get().map_or(serde_json::Value::Null, |s| s.status())
                    })
                }),
                metrics: Some(std::sync::Arc::new(move || sm.prometheus())),
                forward: Some(forward_hook(publisher.clone(), c.sip.domain.clone())),
                reload_users: Some(std::sync::Arc::new(move || match cell.get() {
                    Some(r) => reload_users(&l, r, "POST /users/reload"),
                    None => Err("the registrar is not up yet".into()),
                })),
                redir: Some(redir.clone()),
            },
            overlay.clone(),
        )
        .await
        .map_err(|e| NodeError::Bind {
            what: "admin listener",
            source: e,
        })?;
    }
    // calls: inter-node and phone-facing SIP over TLS (see crate::gateway::internode).
    let (router, internode_addr, phone_tls) =
        start_tls(&loaded, &identity, &mut sip, &overlay, &app_cell).await?;
    let mut registrar = start_registrar(&loaded, identity.node_id.0)?.with_publisher(publisher);
    // Shared SIP users (docs/SECURITY.md): with the overlay credential key, this node
    // publishes its users file and finds other nodes' users in the overlay.
    let creds = crate::pki::join::credential_key(&data_dir).and_then(|k| {
        gateway::credentials::Directory::new(
            overlay.clone(),
            &k,
            &c.sip.domain,
            std::time::Duration::from_secs(c.registrar.shared_users_ttl),
        )
    });
    match &creds {
        Some(d) => {
            registrar = registrar.with_credentials(d.clone());
            match users::file_users(&loaded) {
                Ok(u) => d.sync(&u),
                Err(e) => tracing::warn!("users file not shared: {e}"),
            }
            let l = loaded.clone();
            d.clone()
                .refresh_forever(move || users::file_users(&l).unwrap_or_default());
            tracing::info!(
                "shared SIP users on: users added with `p2psip user` here can register at every node, and theirs here"
            );
        }
        None => tracing::info!(
            "no overlay credential key in {}: SIP users stay local to this node",
            data_dir.display()
        ),
    }
    let _ = shared_cell.set(registrar.clone());
    tokio::spawn(gateway::run_expiry(registrar.clone(), shutdown_rx.clone()));
    let mut proxy = gateway::proxy_config(sip.udp_addrs(), sip.tcp_addrs(), identity.node_id.0);
    // The inter-node address first (Via and Record-Route towards other nodes); the
    // phone-facing TLS listeners after it, so that Routes naming them are ours too.
    if let Some(a) = internode_addr {
        proxy.local.push((sip::Transport::Tls, a));
    }
    for a in phone_tls {
        proxy.local.push((sip::Transport::Tls, a));
    }
    let calls = gateway::calllog::CallLog::new(
        data_dir.join("calls.jsonl"),
        gateway::calllog::DEFAULT_MAX_BYTES,
    );
    let mut app = Gateway::new(registrar.clone(), proxy.clone(), Some(calls))
        .with_live_calls(live_calls)
        .with_metrics(sip_metrics);
    if let Some(r) = router {
        app = app.with_router(r);
    }
    let (app, pstn_plan) =
        match crate::pstn::start(&loaded, &proxy, &overlay).map_err(NodeError::Users)? {
            Some((bridge, plan)) => (app.with_pstn(bridge), Some(plan)),
            None => (app, None),
        };
    let mut sip_task = tokio::spawn(sip.serve_with(app, shutdown_rx));
    tracing::info!("node is up");
    let mut signals = signals;
    let outcome = loop {
        tokio::select! {
            signal = signals.wait() => {
                if signal == "SIGHUP" {
                    let _ = reload_users(&loaded, &registrar, "SIGHUP");
                    if let Some(plan) = &pstn_plan {
                        crate::pstn::reload(&loaded, plan, &overlay);
                    }
                    continue;
                }
                tracing::info!("received {signal}, shutting down");
                break Ok(());
            }
            res = &mut sip_task => break Err(NodeError::Stopped { what: "SIP transport", why: format!("{res:?}") }),
            res = &mut overlay_task => break Err(NodeError::Stopped { what: "overlay", why: format!("{res:?}") }),
        }
    };
    // Graceful Leave (RFC 6940 10.9): bounded, so a wedged overlay never blocks shutdown.
    if outcome.is_ok()
        && tokio::time::timeout(std::time::Duration::from_secs(3), overlay.leave())
            .await
            .is_err()
    {
        tracing::warn!("Leave did not complete within 3 s; stopping anyway");
    }
    let _ = shutdown_tx.send(true);
    if outcome.is_ok() {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), sip_task).await;
    }
    tracing::info!("stopped");
    outcome
}

/// calls: `POST /forward` on the admin port: `user` (and `target`) are user names of our
/// domain or full AORs.
fn forward_hook(
    publisher: gateway::publish::Publisher,
    domain: String,
) -> crate::admin::ForwardHook {
    std::sync::Arc::new(move |user: &str, target: Option<&str>| {
        let aor = |u: &str| {
            let u = u.strip_prefix("sip:").unwrap_or(u);
            if u.contains('@') {
                format!("sip:{u}")
            } else {
                format!("sip:{u}@{domain}")
            }
        };
        let valid = |u: &str| !u.is_empty() && u.chars().all(|c| c.is_ascii_graphic());
        if !valid(user) || target.is_some_and(|t| !valid(t)) {
            return Err("user and target must be user names or AORs".into());
        }
        let from = aor(user);
        let to = target.map(aor);
        if to.as_deref() == Some(from.as_str()) {
            return Err("a user cannot be forwarded to itself".into());
        }
        publisher.set_forward(&from, to.as_deref(), std::time::Instant::now());
        Ok(match to {
            Some(t) => format!("{from} is forwarded to {t}\n"),
            None => format!("forwarding of {from} removed\n"),
        })
    })
}

/// Where the SIP/DTLS socket is kept once started (for `/status`).
type AppCell = std::sync::Arc<std::sync::OnceLock<crate::sip_transport::dtls::AppSocket>>;

/// calls: binds the inter-node SIP/TLS listener (registered with the overlay for AppAttach,
/// application 5060) and the phone-facing `sip.tls` listeners; the overlay router and the
/// inter-node address the Record-Route names.
async fn start_tls(
    loaded: &Loaded,
    identity: &std::sync::Arc<crate::pki::local::Identity>,
    sip: &mut sip_transport::Bound,
    overlay: &crate::overlay::OverlayHandle,
    app_cell: &AppCell,
) -> Result<TlsStarted, NodeError> {
    use crate::sip_transport::tls;
    let c = &loaded.config.sip;
    let bind_err =
        |what: &'static str| move |e: std::io::Error| NodeError::Bind { what, source: e };
    let parse = |s: &str, key: &str| -> Result<std::net::SocketAddr, NodeError> {
        s.parse().map_err(|e| NodeError::Bind {
            what: "SIP TLS listeners",
            source: std::io::Error::other(format!("{key}: {s:?} is not ip:port ({e})")),
        })
    };
    let internode = if c.internode.eq_ignore_ascii_case("off") {
        None
    } else {
        let addr = if c.internode.is_empty() {
            std::net::SocketAddr::new(loaded.overlay_listen.ip(), 0)
        } else {
            parse(&c.internode, "sip.internode")?
        };
        Some(
            tls::InterNodeListener::bind(addr, identity.clone())
                .await
                .map_err(bind_err("inter-node SIP listener"))?,
        )
    };
    let mut phones = Vec::new();
    let mut phone_addrs = Vec::new();
    if !c.tls.is_empty() {
        let cert_key = (!c.tls_cert.is_empty()).then(|| {
            (
                loaded.base_dir.join(&c.tls_cert),
                loaded.base_dir.join(&c.tls_key),
            )
        });
        let cfg = tls::phone_server_config(
            identity,
            cert_key.as_ref().map(|(a, b)| (a.as_path(), b.as_path())),
        )
        .map_err(|e| NodeError::Identity(format!("sip.tls certificate: {e}")))?;
        let cfg = std::sync::Arc::new(cfg);
        for a in &c.tls {
            let addr = parse(a, "sip.tls")?;
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(bind_err("SIP TLS listener"))?;
            let local = l.local_addr()?;
            tracing::info!("SIP listening on tls {local}");
            phone_addrs.push(local);
            phones.push((l, cfg.clone()));
        }
    }
    let mut advertised = None;
    if let Some(l) = &internode {
        let local = l.local_addr()?;
        let adv = crate::overlay::advertised(local, &loaded.bootstrap);
        advertised = Some(adv);
        if !c.internode_tcp {
            tracing::info!(
                "inter-node SIP/TLS listener on {local}, not offered in AppAttach (sip.internode_tcp: false)"
            );
        } else {
            tracing::info!(
                "inter-node SIP/TLS listener on {local} (offered as {adv} in AppAttach)"
            );
        }
        if c.internode_tcp
            && overlay
                .register_application(reload::wire::APPLICATION_SIP, vec![adv])
                .await
                .is_err()
        {
            tracing::warn!("the overlay stopped before AppAttach could be enabled");
        }
    }
    let dialer = sip.add_tls(tls::TlsSetup {
        internode,
        phones,
        idle: std::time::Duration::from_secs(c.internode_idle_s.max(1)),
    });
    // calls: SIP over DTLS on its own UDP socket (ICE, TURN relayed candidate).
    let mut app = None;
    if let (Some(d), Some(local)) = (&dialer, advertised)
        && !c.internode_dtls.eq_ignore_ascii_case("off")
    {
        let bind = if c.internode_dtls.is_empty() {
            std::net::SocketAddr::new(loaded.overlay_listen.ip(), 0)
        } else {
            parse(&c.internode_dtls, "sip.internode_dtls")?
        };
        app = Some(
            crate::sip_transport::dtls::AppSocket::start(
                bind,
                &loaded.bootstrap,
                d.clone(),
                local,
                overlay,
            )
            .await
            .map_err(bind_err("inter-node SIP/DTLS socket"))?,
        );
    } else if !c.internode_tcp {
        tracing::warn!(
            "sip.internode_tcp is false and SIP/DTLS is off: other nodes cannot call this one"
        );
    }
    if let Some(a) = &app {
        let _ = app_cell.set(a.clone());
    }
    let router = dialer.map(|d| {
        let wake = sip.wake_channel();
        let r = gateway::internode::Router::new(overlay.clone(), d, wake);
        match app {
            Some(a) => r.with_app_socket(a),
            None => r,
        }
    });
    Ok((router, advertised, phone_addrs))
}

/// Rereads the users (config and users file) into the registrar and shares the users file
/// through the overlay (SIGHUP, `POST /users/reload`); how many users may register.
fn reload_users(loaded: &Loaded, registrar: &gateway::Shared, why: &str) -> Result<usize, String> {
    match users::load_users(loaded) {
        Ok(u) => {
            let n = u.len();
            tracing::info!("{why}: reloaded users, {n} may register");
            registrar.set_users(u);
            if let (Some(d), Ok(f)) = (registrar.credentials(), users::file_users(loaded)) {
                d.sync(&f);
            }
            Ok(n)
        }
        Err(e) => {
            tracing::warn!("{why}: users not reloaded, keeping the old list: {e}");
            Err(e)
        }
    }
}

/// What [`start_tls`] set up: the overlay router, the advertised inter-node address, the
/// phone-facing TLS listener addresses.
type TlsStarted = (
    Option<gateway::internode::Router>,
    Option<std::net::SocketAddr>,
    Vec<std::net::SocketAddr>,
);

/// The registrar with the configured users, and a warning about demo passwords.
fn start_registrar(loaded: &Loaded, node_id: u128) -> Result<gateway::Shared, NodeError> {
    let c = &loaded.config;
    let cfg = RegistrarConfig {
        domain: c.sip.domain.clone(),
        default_expires: c.registrar.default_expires,
        min_expires: c.registrar.min_expires,
        max_expires: c.registrar.max_expires,
        max_contacts: c.registrar.max_contacts,
        algorithms: c
            .registrar
            .digest_algorithms
            .iter()
            .filter_map(|a| sip::auth::Algorithm::parse(a))
            .collect(),
        ..RegistrarConfig::default()
    };
    let user_list = users::load_users(loaded).map_err(NodeError::Users)?;
    // Public GRUUs name this node's Node-ID (RFC 7904 6).
    let gr = gateway::gr_for_node(node_id);
    let registrar = Registrar::new(cfg, rand::random(), gr);
    let demo = users::demo_users(&user_list);
    tracing::info!(
        "registrar for domain {}: {} user{} may register",
        c.sip.domain,
        user_list.len(),
        if user_list.len() == 1 { "" } else { "s" }
    );
    if !demo.is_empty() {
        tracing::warn!(
            "{} demo user{} ({}) use the password {}<user> (e.g. {}{}); change them before connecting real phones",
            demo.len(),
            if demo.len() == 1 { "" } else { "s" },
            demo.join(", "),
            users::DEMO_PASSWORD_PREFIX,
            users::DEMO_PASSWORD_PREFIX,
            demo.first().map(String::as_str).unwrap_or_default()
        );
    }
    let shared = gateway::Shared::new(registrar);
    shared.set_users(user_list);
    Ok(shared)
}

/// SIGTERM, SIGINT and SIGHUP, installed once.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn wait(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}
