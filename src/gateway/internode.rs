//! Calls across the overlay (RFC 7904 5): finding the nodes that hold a callee's
//! registrations and reaching them over direct SIP/TLS links.
//!
//! A request for an AOR with no local answer becomes a Fetch of its SIP-REGISTRATION
//! entries. `uri` entries are followed as AOR-to-AOR forwarding (loop set, depth limit);
//! route entries name nodes by their destination list. A Request-URI with a `gr` parameter
//! that decodes as a destination list (our public GRUUs, RFC 7904 6) names the node
//! directly, no Fetch. Each node is then reached with AppAttach (application 5060) and a
//! mutually authenticated TLS connection ([`crate::sip_transport::tls::Dialer`]); connections
//! are pooled per Node-ID. Results go back to the SIP driver as [`Done`] wake-ups.

use crate::overlay::OverlayHandle;
use crate::sip_transport::WakeSender;
use crate::sip_transport::dtls::AppSocket;
use crate::sip_transport::tls::Dialer;
use reload::node::{Outcome, RequestError};
use reload::storage::{KIND_SIP_REGISTRATION, Selector};
use reload::wire::sip::SipRegistration;
use reload::wire::{APPLICATION_SIP, Destination as Dest, NodeId};
use sip::message::Uri;
use sip::proxy::Target;
use sip::{Destination, Transport};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

/// Most AOR-to-AOR hops followed (call forwarding chains).
pub const MAX_FORWARD_DEPTH: usize = 5;
/// Bound on one overlay Fetch for a call.
const FETCH_TIMEOUT: Duration = Duration::from_secs(8);
/// Bound on reaching one node (AppAttach, TLS, ICE and DTLS).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(9);
/// How long TLS to the TCP candidates may take before the UDP candidates are tried.
const TLS_FIRST: Duration = Duration::from_millis(1500);
/// How long the other nodes of a fork may take once one node was reached.
const GRACE: Duration = Duration::from_millis(500);
/// Retry-After (seconds) when the overlay did not answer.
const RETRY_AFTER: u32 = 30;

/// A finished overlay task, for the SIP driver.
#[derive(Debug)]
pub enum Done {
    /// A location lookup ([`sip::proxy::Lookup::Pending`] token).
    Lookup {
        /// The proxy's token.
        token: u64,
        /// What was found.
        found: Found,
    },
    /// A connection to a node for an in-dialog request ([`sip::proxy::NodeRoute::Pending`]).
    Route {
        /// The proxy's token.
        token: u64,
        /// The connection, if the node was reached.
        dest: Option<Destination>,
    },
}

/// What the overlay says about a Request-URI.
#[derive(Debug, Default)]
pub struct Found {
    /// Targets on other nodes (over their links).
    pub remote: Vec<Target>,
    /// AORs (e.g. forwarding targets) whose bindings are at this node.
    pub local_aors: Vec<String>,
    /// Some registration entry was found (else: 404/480 by the local user database).
    pub registered: bool,
    /// The overlay did not answer (503 with Retry-After when nothing else is found).
    pub overlay_failed: bool,
    /// The user part of the Request-URI (for the local 404/480 decision).
    pub user: Option<String>,
}

impl Found {
    /// Retry-After seconds for a 503.
    pub fn retry_after(&self) -> u32 {
        RETRY_AFTER
    }
}

/// Overlay routing for the gateway.
#[derive(Clone)]
pub struct Router {
    overlay: OverlayHandle,
    dialer: Dialer,
    wake: WakeSender,
    /// SIP over DTLS (ICE, relayed candidates), unless `sip.internode_dtls` is off.
    app: Option<AppSocket>,
}

impl Router {
    /// A router fetching through `overlay`, connecting with `dialer`, reporting on `wake`.
    pub fn new(overlay: OverlayHandle, dialer: Dialer, wake: WakeSender) -> Self {
        Router {
            overlay,
            dialer,
            wake,
            app: None,
        }
    }

    /// Also reaches nodes over SIP/DTLS through `app` when TLS over TCP does not work.
    pub fn with_app_socket(mut self, app: AppSocket) -> Self {
        self.app = Some(app);
        self
    }

    /// Our Node-ID.
    pub fn me(&self) -> NodeId {
        self.overlay.node_id
    }

    /// The Node-ID of the node at the other end of `conn`, when it is an inter-node link.
    pub fn peer_of(&self, conn: sip::ConnId) -> Option<NodeId> {
        self.dialer.peers().peer_of(conn)
    }

    /// The pooled connection to `node`, if open.
    pub fn pooled(&self, node: NodeId) -> Option<Destination> {
        self.dialer
            .peers()
            .conn_to(node)
            .map(|(conn, remote)| Destination {
                transport: Transport::Tls,
                remote,
                conn: Some(conn),
            })
    }

    /// Starts the lookup of `uri` (an AOR or a GRUU); [`Done::Lookup`] follows.
    pub fn start_lookup(&self, token: u64, uri: Uri) {
        let me = self.clone();
        tokio::spawn(async move {
            let found = me.lookup(&uri).await;
            me.wake.send(Box::new(Done::Lookup { token, found })).await;
        });
    }

    /// Starts connecting to `node` for an in-dialog request; [`Done::Route`] follows.
    pub fn start_route(&self, token: u64, node: NodeId) {
        let me = self.clone();
        tracing::info!(
            "no open SIP link to node {} for an in-dialog request: attaching again",
            short(node)
        );
        tokio::spawn(async move {
            let dest = me.connect(node).await;
            me.wake.send(Box::new(Done::Route { token, dest })).await;
        });
    }

    async fn lookup(&self, uri: &Uri) -> Found {
        let mut found = Found::default();
        let Some(sip_uri) = uri.as_sip() else {
            return found;
        };
        found.user = sip_uri.user().map(str::to_owned);
        // A GRUU whose gr names a destination list: that node, no Fetch.
        if let Some(list) = sip_uri
            .param("gr")
            .and_then(|p| p.value.as_deref())
            .and_then(|gr| reload::wire::sip::parse_gruu_gr_param(gr).ok())
            && let Some(Dest::Node(node)) = list.last()
        {
            found.registered = true;
            if *node == self.me() {
                found.local_aors.push(uri.to_string());
            } else if let Some(d) = self.connect(*node).await {
                found.remote.push(target(uri.clone(), d));
            }
            return found;
        }
        let Some(user) = sip_uri.user() else {
            return found;
        };
        let first = format!("{user}@{}", sip_uri.host);
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut queue = vec![(first, 0usize)];
        let mut nodes: Vec<(NodeId, String)> = Vec::new();
        while let Some((aor, depth)) = queue.pop() {
            if !seen.insert(aor.to_ascii_lowercase()) {
                tracing::info!("forwarding loop: {aor} was already visited, not following again");
                continue;
            }
            let entries = match self.fetch(&aor).await {
                Ok(e) => e,
                Err(why) => {
                    tracing::info!("cannot look up {aor} in the overlay: {why}");
                    found.overlay_failed = true;
                    continue;
                }
            };
            for e in entries {
                match e {
                    SipRegistration::Uri(u) => {
                        let to = String::from_utf8_lossy(&u.0).into_owned();
                        let to = crate::gateway::publish::resource_name(&to).to_owned();
                        found.registered = true;
                        if depth + 1 > MAX_FORWARD_DEPTH {
                            tracing::info!(
                                "{aor} forwards to {to}, but the chain is longer than {MAX_FORWARD_DEPTH}: not followed"
                            );
                        } else {
                            tracing::info!("{aor} is forwarded to {to}");
                            queue.push((to, depth + 1));
                        }
                    }
                    SipRegistration::Route {
                        destination_list, ..
                    } => {
                        found.registered = true;
                        if let Some(Dest::Node(n)) = destination_list.last() {
                            // Our own entries: the local registrar has the bindings.
                            if *n == self.me() {
                                if !found.local_aors.contains(&aor) {
                                    found.local_aors.push(aor.clone());
                                }
                            } else if !nodes.iter().any(|(m, a)| m == n && *a == aor) {
                                nodes.push((*n, aor.clone()));
                            }
                        }
                    }
                    SipRegistration::Unknown { .. } => {}
                }
            }
        }
        // Every node in parallel (all our entries carry the same contact_prefs, so they
        // form one parallel group; RFC 7904 leaves the choice to the caller's node).
        let mut tasks = tokio::task::JoinSet::new();
        for (node, aor) in nodes {
            let me = self.clone();
            tasks.spawn(async move { (node, aor.clone(), me.connect(node).await) });
        }
        // Once one node is reached, the others get a short grace: a dead node's entry (its
        // AppAttach times out) must not hold up the call to a live one.
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let next = match deadline {
                None => tasks.join_next().await,
                Some(d) => match tokio::time::timeout_at(d, tasks.join_next()).await {
                    Ok(n) => n,
                    Err(_) => {
                        tracing::info!(
                            "{} node(s) did not answer within {} ms of the first; calling the ones reached",
                            tasks.len(),
                            GRACE.as_millis()
                        );
                        tasks.abort_all();
                        break;
                    }
                },
            };
            let Some(r) = next else { break };
            if let Ok((_, _, Some(_))) = &r
                && deadline.is_none()
            {
                deadline = Some(tokio::time::Instant::now() + GRACE);
            }
            if let Ok((node, aor, d)) = r {
                match (d, Uri::parse(&format!("sip:{aor}"))) {
                    (Some(d), Some(u)) => found.remote.push(target(u, d)),
                    (None, _) => tracing::info!(
                        "{aor} is registered at node {} but that node cannot be reached",
                        short(node)
                    ),
                    _ => {}
                }
            }
        }
        found
    }

    /// The SIP-REGISTRATION entries of `aor` (all dictionary keys).
    async fn fetch(&self, aor: &str) -> Result<Vec<SipRegistration>, String> {
        let resource = crate::gateway::publish::resource_of(aor);
        let f = self.overlay.fetch(
            resource,
            vec![(KIND_SIP_REGISTRATION, Selector::Dictionary(Vec::new()))],
        );
        let out = match tokio::time::timeout(FETCH_TIMEOUT, f).await {
            Err(_) => return Err("the overlay did not answer in time".into()),
            Ok(Err(crate::overlay::HandleError::Request(RequestError::Error {
                code: 3, ..
            }))) => {
                return Ok(Vec::new()); // Error_Not_Found: nothing stored
            }
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(o)) => o,
        };
        let Outcome::Fetched(kinds) = out else {
            return Err("unexpected answer".into());
        };
        Ok(kinds
            .iter()
            .flat_map(|k| k.values.iter())
            .filter(|v| v.value.exists)
            .filter_map(|v| {
                use reload::codec::Codec;
                SipRegistration::from_bytes(&v.value.value).ok()
            })
            .collect())
    }

    /// A connection to `node`'s SIP listener: the pooled one, or AppAttach and a new TLS
    /// connection (the peer must prove Node-ID `node`).
    pub async fn connect(&self, node: NodeId) -> Option<Destination> {
        if let Some(d) = self.pooled(node) {
            return Some(d);
        }
        let attempt = async {
            let (mine, out) = self
                .overlay
                .app_attach_ice(node, APPLICATION_SIP)
                .await
                .map_err(|e| format!("AppAttach failed: {e}"))?;
            let Outcome::AppAttached(ans) = out else {
                return Err("unexpected AppAttach answer".to_string());
            };
            use reload::node::app_attach::AppAttachReqAnsExt;
            let addrs: Vec<SocketAddr> = ans.host_addrs();
            let udp = self
                .app
                .as_ref()
                .filter(|_| !ans.udp_candidates().is_empty());
            let mut why = Vec::new();
            // TLS to the TCP host candidates first (the fast path on a LAN), in order; with
            // UDP candidates to fall back on, only for a short while.
            if !addrs.is_empty() {
                let tls = self.dialer.dial(node, &addrs);
                let r = match udp {
                    Some(_) => tokio::time::timeout(TLS_FIRST, tls)
                        .await
                        .unwrap_or_else(|_| Err(std::io::Error::other("no answer in time"))),
                    None => tls.await,
                };
                match r {
                    Ok(c) => {
                        tracing::info!("reached node {} over SIP/TLS at {}", short(node), c.1);
                        return Ok(c);
                    }
                    Err(e) => why.push(format!("TLS to {addrs:?} failed: {e}")),
                }
            }
            // Then ICE over the UDP candidates and SIP over DTLS.
            match udp {
                Some(app) => match app.dial(node, &ans, mine).await {
                    Ok(c) => return Ok(c),
                    Err(e) => why.push(format!("SIP/DTLS failed: {e}")),
                },
                None if addrs.is_empty() => {
                    why.push("AppAttach answer has no candidate we can use".to_string());
                }
                None => {}
            }
            Err(why.join("; "))
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
            Ok(Ok((conn, remote))) => Some(Destination {
                transport: Transport::Tls,
                remote,
                conn: Some(conn),
            }),
            Ok(Err(why)) => {
                tracing::info!("cannot reach node {}: {why}", short(node));
                None
            }
            Err(_) => {
                tracing::info!(
                    "cannot reach node {}: no answer within {} s",
                    short(node),
                    CONNECT_TIMEOUT.as_secs()
                );
                None
            }
        }
    }
}

fn target(uri: Uri, dest: Destination) -> Target {
    Target {
        uri,
        q: 1000,
        dest: Some(dest),
        path: Vec::new(),
    }
}

/// The first 8 hex digits of a Node-ID (for logs).
pub fn short(n: NodeId) -> String {
    hex::encode(n.to_array()).chars().take(8).collect()
}

/// Parses the `p2pnode` value of a Record-Route (32 hex digits) as a Node-ID.
pub fn parse_node(param: &str) -> Option<NodeId> {
    u128::from_str_radix(param, 16).ok().map(NodeId)
}
