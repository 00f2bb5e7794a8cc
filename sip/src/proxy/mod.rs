//! A stateful proxy (RFC 3261 section 16), sans-IO, driven through the [`Endpoint`]'s
//! server and client transactions.
//!
//! The application feeds the endpoint's events in ([`Proxy::on_event`]) together with a
//! [`Location`] service (the registrar's bindings, later the overlay's) and an
//! [`Authenticator`] (digest against the user database). The proxy forks to the targets
//! (parallel within equal q, sequential across q groups), forwards provisional and final
//! responses, cancels the other branches on the first 2xx, records itself in the route set
//! and writes one [`CallRecord`] per INVITE call.

#[cfg(test)]
mod tests;

use crate::endpoint::{Destination, Endpoint, Event, Source, Transport};
use crate::message::{
    CSeq, MAGIC_COOKIE, Method, NameAddr, Request, Response, SipUri, Uri, Via, split_commas,
};
use crate::transaction::TransactionKey;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// One place a request may be delivered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The Request-URI to use (the registered Contact).
    pub uri: Uri,
    /// q-value in thousandths.
    pub q: u16,
    /// Where to send it: the flow the phone registered on (RFC 5626) or its received
    /// address, when that differs from the Contact. `None`: resolve `uri`.
    pub dest: Option<Destination>,
    /// Route values to put in front (RFC 3327 Path of the binding).
    pub path: Vec<String>,
}

/// Result of a location lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The targets (possibly none: the user exists but is not registered).
    Targets(Vec<Target>),
    /// No such user in our domain.
    UnknownUser,
    /// The Request-URI is not in a domain served here.
    NotOurs,
    /// The answer will come later through [`Proxy::lookup_complete`] with this token.
    Pending(u64),
    /// The location service could not answer in time (e.g. the overlay timed out): 503
    /// with `Retry-After` seconds.
    Unavailable {
        /// Seconds for the `Retry-After` header.
        retry_after: u32,
    },
}

/// Where a Route naming another node (by its `p2pnode` parameter) leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeRoute {
    /// Over this connection.
    Ready(Destination),
    /// The connection is being set up; [`Proxy::route_complete`] follows with this token.
    Pending(u64),
    /// Not a node we can reach by Node-ID: route by the URI's address.
    NotNode,
}

/// Where the targets of an address-of-record are found.
pub trait Location {
    /// Looks up the Request-URI of an out-of-dialog request.
    fn lookup(&mut self, uri: &Uri, now: Instant) -> Lookup;
    /// Where to send an in-dialog request whose next hop is `uri` (a phone's Contact),
    /// when it is a registered contact reached through a flow or NAT binding.
    fn resolve_contact(&mut self, uri: &Uri, now: Instant) -> Option<Destination>;
    /// Where a Route whose `p2pnode` parameter names another node (`node`, as the node
    /// writes it in its Record-Route) leads: a connection to that node, possibly after
    /// setting one up. The default routes by the URI's address.
    fn route_to_node(&mut self, _node: &str, _now: Instant) -> NodeRoute {
        NodeRoute::NotNode
    }
}

/// Verdict of the digest check of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthVerdict {
    /// Authenticated as this user.
    Authenticated(String),
    /// Not to be challenged (the caller is not one of our users).
    NotRequired,
    /// Answer with this status and headers (407 with Proxy-Authenticate, 403, 400).
    Reject {
        /// Status code.
        status: u16,
        /// Reason phrase.
        reason: String,
        /// Headers (Proxy-Authenticate).
        headers: Vec<(String, String)>,
    },
}

/// Checks the caller of an out-of-dialog request.
pub trait Authenticator {
    /// Authenticates `request` (From our domain: must carry valid Proxy-Authorization).
    fn authenticate(&mut self, request: &Request, now: Instant) -> AuthVerdict;
}

/// Proxy settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Our addresses per transport (Via sent-by, Record-Route); when a transport has none,
    /// the address the request arrived at is used.
    pub local: Vec<(Transport, SocketAddr)>,
    /// Value of the opaque `p2pnode` parameter of our Record-Route URI (this node's
    /// Node-ID later; it also marks Route values as ours).
    pub node_param: String,
    /// How long an INVITE may ring before the branches are cancelled and 480 is answered.
    pub ring_timeout: Duration,
    /// How long a finished context stays to forward 2xx retransmissions (64*T1).
    pub linger: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            local: Vec::new(),
            node_param: "local".to_owned(),
            ring_timeout: Duration::from_secs(60),
            linger: Duration::from_secs(32),
        }
    }
}

/// One call record (issue 10): what happened to an INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// Call-ID.
    pub call_id: String,
    /// From URI.
    pub caller: String,
    /// To URI.
    pub callee: String,
    /// When the INVITE arrived.
    pub start: Instant,
    /// When the 2xx was forwarded.
    pub answer: Option<Instant>,
    /// When the call ended (BYE, or the failure response).
    pub end: Instant,
    /// `answered`, `busy`, `no answer`, `cancelled`, `not found`, `failed`.
    pub result: String,
    /// Final SIP status of the INVITE.
    pub status: u16,
    /// Its reason phrase.
    pub reason: String,
}

/// A call in progress (see [`Proxy::live_calls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCall {
    /// Call-ID.
    pub call_id: String,
    /// From URI.
    pub caller: String,
    /// To URI.
    pub callee: String,
    /// When the INVITE arrived.
    pub start: Instant,
    /// When it was answered; none while ringing.
    pub answer: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BranchState {
    Calling,
    Proceeding,
    Done,
}

#[derive(Debug)]
struct Branch {
    key: TransactionKey,
    request: Request,
    dest: Destination,
    state: BranchState,
    cancel_wanted: bool,
}

#[derive(Debug)]
struct Context {
    server: TransactionKey,
    request: Request,
    source: Source,
    branches: Vec<Branch>,
    groups: VecDeque<Vec<Target>>,
    best: Option<Response>,
    final_sent: bool,
    cancelled: bool,
    timed_out: bool,
    /// Result words for the call record when the status alone does not say it.
    outcome: Option<&'static str>,
    start: Instant,
    deadline: Option<Instant>,
}

/// The proxy core.
#[derive(Debug)]
pub struct Proxy {
    cfg: ProxyConfig,
    next_id: u64,
    contexts: HashMap<u64, Context>,
    by_server: HashMap<TransactionKey, u64>,
    by_client: HashMap<TransactionKey, (u64, usize)>,
    pending: HashMap<u64, u64>,
    /// Requests waiting for a connection to a node ([`NodeRoute::Pending`]): the context
    /// (none for an ACK) and the request to send.
    pending_route: HashMap<u64, (Option<u64>, Request)>,
    timers: BTreeSet<(Instant, u64)>,
    dialogs: HashMap<String, CallRecord>,
    records: VecDeque<CallRecord>,
}

/// Most answered calls whose BYE is awaited at once (beyond that the oldest is logged).
const MAX_DIALOGS: usize = 100_000;

fn hash_hex(parts: &[&str]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for p in parts {
        p.hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

fn ip_literal(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Where a SIP URI points, without DNS: IP-literal hosts only.
pub fn uri_destination(uri: &SipUri) -> Option<Destination> {
    let ip = ip_literal(&uri.host)?;
    let transport = match uri.param("transport").and_then(|p| p.value.as_deref()) {
        Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
        Some(t) if t.eq_ignore_ascii_case("tls") => Transport::Tls,
        _ if uri.secure => Transport::Tls,
        _ => Transport::Udp,
    };
    let default = if transport == Transport::Tls {
        5061
    } else {
        5060
    };
    Some(Destination {
        transport,
        remote: SocketAddr::new(ip, uri.port.unwrap_or(default)),
        conn: None,
    })
}

fn result_words(status: u16) -> &'static str {
    match status {
        200..=299 => "answered",
        486 | 600 => "busy",
        480 | 408 => "no answer",
        487 => "cancelled",
        404 | 604 => "not found",
        _ => "failed",
    }
}

/// Class rank for choosing the best response (RFC 3261 16.7 step 6): 6xx first, then the
/// lowest class; 503 counts as 500-class but is passed on as 500.
fn rank(status: u16) -> u16 {
    if status >= 600 { 0 } else { status / 100 }
}

impl Proxy {
    /// A proxy.
    pub fn new(cfg: ProxyConfig) -> Self {
        Proxy {
            cfg,
            next_id: 1,
            contexts: HashMap::new(),
            by_server: HashMap::new(),
            by_client: HashMap::new(),
            pending: HashMap::new(),
            pending_route: HashMap::new(),
            timers: BTreeSet::new(),
            dialogs: HashMap::new(),
            records: VecDeque::new(),
        }
    }

    /// The next finished call record.
    pub fn poll_record(&mut self) -> Option<CallRecord> {
        self.records.pop_front()
    }

    /// Calls in progress: INVITEs still ringing (no final response yet) and answered calls
    /// whose BYE is awaited, for the status page.
    pub fn live_calls(&self) -> Vec<LiveCall> {
        let ringing = self.contexts.values().filter(|c| {
            c.request.method == Method::Invite
                && !c.final_sent
                && c.request.headers.to().is_none_or(|t| t.tag().is_none())
        });
        let mut out: Vec<LiveCall> = ringing
            .map(|c| LiveCall {
                call_id: c.request.headers.call_id().unwrap_or_default().to_owned(),
                caller: uri_of(c.request.headers.from()),
                callee: uri_of(c.request.headers.to()),
                start: c.start,
                answer: None,
            })
            .collect();
        out.extend(self.dialogs.values().map(|r| LiveCall {
            call_id: r.call_id.clone(),
            caller: r.caller.clone(),
            callee: r.callee.clone(),
            start: r.start,
            answer: r.answer,
        }));
        out.sort_by_key(|c| c.start);
        out
    }

    /// How many answered calls await their BYE.
    pub fn dialog_count(&self) -> usize {
        self.dialogs.len()
    }

    /// How many requests are being proxied.
    pub fn context_count(&self) -> usize {
        self.contexts.len()
    }

    /// When [`Proxy::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// Fires due ring timeouts and removes finished contexts.
    pub fn handle_timeout(&mut self, ep: &mut Endpoint, now: Instant) {
        while let Some(&(t, id)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.remove(&(t, id));
            let Some(ctx) = self.contexts.get_mut(&id) else {
                continue;
            };
            ctx.deadline = None;
            if ctx.final_sent {
                self.remove_context(id);
                continue;
            }
            tracing::info!(
                call_id = ctx.request.headers.call_id().unwrap_or_default(),
                "nobody answered within {} s: cancelling the branches",
                self.cfg.ring_timeout.as_secs()
            );
            ctx.timed_out = true;
            self.cancel_branches(ep, now, id, None);
            self.check_complete(ep, now, id);
        }
    }

    fn set_deadline(&mut self, id: u64, at: Instant) {
        if let Some(ctx) = self.contexts.get_mut(&id) {
            if let Some(old) = ctx.deadline.take() {
                self.timers.remove(&(old, id));
            }
            ctx.deadline = Some(at);
            self.timers.insert((at, id));
        }
    }

    fn remove_context(&mut self, id: u64) {
        if let Some(ctx) = self.contexts.remove(&id) {
            if let Some(d) = ctx.deadline {
                self.timers.remove(&(d, id));
            }
            self.by_server.remove(&ctx.server);
            for b in &ctx.branches {
                self.by_client.remove(&b.key);
            }
        }
    }

    fn local_addr(&self, transport: Transport, fallback: SocketAddr) -> SocketAddr {
        self.cfg
            .local
            .iter()
            .find(|(t, _)| *t == transport)
            .map_or(fallback, |(_, a)| *a)
    }

    /// Our Record-Route value for one side.
    fn rr_value(&self, transport: Transport, addr: SocketAddr) -> String {
        let tp = match transport {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
        };
        format!("<sip:{addr}{tp};lr;p2pnode={}>", self.cfg.node_param)
    }

    fn is_us(&self, uri: &Uri) -> bool {
        let Some(u) = uri.as_sip() else {
            return false;
        };
        if u.param("p2pnode")
            .and_then(|p| p.value.as_deref())
            .is_some_and(|v| v == self.cfg.node_param)
        {
            return true;
        }
        let Some(ip) = ip_literal(&u.host) else {
            return false;
        };
        let port = u.port.unwrap_or(5060);
        self.cfg
            .local
            .iter()
            .any(|(_, a)| a.ip() == ip && a.port() == port)
    }

    /// The loop-detection part of our branch (RFC 3261 16.6 step 8 / 16.3 step 4): a hash
    /// of the request as received, without its top Via (so that a request coming round
    /// again produces the same value).
    fn branch_hash(req: &Request) -> String {
        let h = &req.headers;
        let to_tag = h.to().and_then(|t| t.tag().map(str::to_owned));
        let from_tag = h.from().and_then(|t| t.tag().map(str::to_owned));
        let cseq = h.cseq().map(|c| c.seq.to_string()).unwrap_or_default();
        let uri = req.uri.to_string();
        let pr: Vec<&str> = h.get_all("Proxy-Require").collect();
        hash_hex(&[
            to_tag.as_deref().unwrap_or(""),
            from_tag.as_deref().unwrap_or(""),
            h.call_id().unwrap_or(""),
            &cseq,
            &uri,
            &pr.join(","),
        ])
    }

    fn is_loop(&self, req: &Request) -> bool {
        let prefix = format!("{MAGIC_COOKIE}p2p{}", Self::branch_hash(req));
        let Some(vias) = req
            .headers
            .get_all("Via")
            .map(Via::parse_list)
            .collect::<Option<Vec<_>>>()
        else {
            return false;
        };
        vias.iter().flatten().any(|v| {
            v.branch().is_some_and(|b| b.starts_with(&prefix))
                && self.cfg.local.iter().any(|(_, a)| {
                    ip_literal(&v.host) == Some(a.ip()) && v.port.unwrap_or(5060) == a.port()
                })
        })
    }

    /// Feeds one endpoint event in. Returns it back when it is not the proxy's business
    /// (REGISTER requests, responses to other client transactions).
    pub fn on_event<S: Location + Authenticator>(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        event: Event,
        svc: &mut S,
    ) -> Option<Event> {
        match event {
            Event::Request {
                key,
                request,
                source,
            } if request.method != Method::Register => {
                self.on_request(ep, now, key, request, source, svc);
                None
            }
            Event::Ack { request, source } => {
                self.forward_ack(ep, now, request, source, svc);
                None
            }
            Event::Cancelled { invite } => {
                match self.by_server.get(&invite).copied() {
                    Some(id) => {
                        if let Some(ctx) = self.contexts.get_mut(&id) {
                            ctx.cancelled = true;
                        }
                        self.cancel_branches(ep, now, id, None);
                        self.check_complete(ep, now, id);
                    }
                    None => {
                        let _ = ep.reply(now, &invite, 487, "Request Terminated");
                    }
                }
                None
            }
            Event::Response { key, response } => match self.by_client.get(&key).copied() {
                Some((id, idx)) => {
                    self.on_response(ep, now, id, idx, response);
                    None
                }
                None => Some(Event::Response { key, response }),
            },
            Event::Timeout { key } => match self.by_client.get(&key).copied() {
                Some((id, idx)) => {
                    let mut r = Response::new(408, "Request Timeout");
                    r.headers
                        .push("Via", "SIP/2.0/UDP invalid;branch=z9hG4bKlocal");
                    self.on_branch_final(ep, now, id, idx, r, false);
                    None
                }
                None => {
                    if let Some(id) = self.by_server.get(&key).copied() {
                        self.remove_context(id);
                    }
                    Some(Event::Timeout { key })
                }
            },
            other => Some(other),
        }
    }

    fn on_request<S: Location + Authenticator>(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        key: TransactionKey,
        request: Request,
        source: Source,
        svc: &mut S,
    ) {
        let method = request.method.clone();
        let call_id = request.headers.call_id().unwrap_or_default().to_owned();
        self.note_request(now, &request);
        // 16.3 step 4: loop detection.
        if self.is_loop(&request) {
            tracing::info!(%call_id, "{method} came back to us unchanged: loop, answering 482");
            let _ = ep.reply(now, &key, 482, "Loop Detected");
            return;
        }
        let in_dialog = request.headers.to().is_some_and(|t| t.tag().is_some());
        let id = self.next_id;
        self.next_id += 1;
        let ctx = Context {
            server: key.clone(),
            request: request.clone(),
            source,
            branches: Vec::new(),
            groups: VecDeque::new(),
            best: None,
            final_sent: false,
            cancelled: false,
            timed_out: false,
            outcome: None,
            start: now,
            deadline: None,
        };
        self.contexts.insert(id, ctx);
        self.by_server.insert(key.clone(), id);
        // 16.4: a Route naming us is taken off.
        let mut request = request;
        if first_route(&request).is_some_and(|r| self.is_us(&r.uri)) {
            while first_route(&request).is_some_and(|r| self.is_us(&r.uri)) {
                pop_first_route(&mut request);
            }
            if let Some(c) = self.contexts.get_mut(&id) {
                c.request = request.clone();
            }
            if in_dialog {
                // A request in a dialog we record-routed: no lookup, no challenge.
                self.route_onward(ep, now, id, request, svc);
                return;
            }
        }
        let mut authenticated = false;
        if method != Method::Ack && method != Method::Cancel {
            match svc.authenticate(&request, now) {
                AuthVerdict::Authenticated(_) => authenticated = true,
                AuthVerdict::NotRequired => {}
                AuthVerdict::Reject {
                    status,
                    reason,
                    headers,
                } => {
                    if status != 407 {
                        tracing::info!(%call_id, "{method} from {} refused with {status} {reason}", source.remote);
                    }
                    if let Some(mut r) = ep.make_response(&key, status, &reason) {
                        for (n, v) in headers {
                            r.headers.push(&n, v);
                        }
                        let _ = ep.respond(now, &key, r);
                    }
                    self.remove_context(id);
                    return;
                }
            }
        }
        if authenticated {
            // Our credentials are of no use further on (RFC 3261 22.3 lets the proxy
            // consume its own; we are the only realm of our users).
            request.headers.remove("Proxy-Authorization");
            if let Some(c) = self.contexts.get_mut(&id) {
                c.request = request.clone();
            }
        }
        if first_route(&request).is_some() || in_dialog {
            // Somewhere else next (a pre-loaded Route, or a dialog we are not in): only
            // for our own authenticated users, never as an open relay.
            if authenticated {
                self.route_onward(ep, now, id, request, svc);
            } else {
                tracing::info!(%call_id, "{method} from {} routed elsewhere without our Record-Route: refused with 403", source.remote);
                self.final_local(ep, now, id, 403, "Forbidden");
            }
            return;
        }
        match svc.lookup(&request.uri, now) {
            Lookup::Targets(t) => self.start_targets(ep, now, id, t),
            Lookup::UnknownUser => {
                tracing::info!(%call_id, "{method} for {}: no such user, answering 404", request.uri);
                self.final_local(ep, now, id, 404, "Not Found");
            }
            Lookup::NotOurs => {
                tracing::info!(%call_id, "{method} for {}: domain not served here, answering 404", request.uri);
                self.final_local(ep, now, id, 404, "Not Found");
            }
            Lookup::Pending(token) => {
                self.pending.insert(token, id);
            }
            Lookup::Unavailable { retry_after } => {
                tracing::info!(%call_id, "{method} for {}: location not available, answering 503", request.uri);
                self.unavailable(ep, now, id, retry_after);
            }
        }
    }

    /// 16.4-16.5 for a request that needs no lookup: the next hop is the next Route, or
    /// the Request-URI (a registered contact through its flow, or an IP address).
    fn route_onward<S: Location>(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        id: u64,
        fwd: Request,
        svc: &mut S,
    ) {
        if let Some(node) = first_route(&fwd).and_then(|r| node_param(&r.uri)) {
            match svc.route_to_node(&node, now) {
                NodeRoute::Ready(d) => return self.fork(ep, now, id, vec![(fwd, d)]),
                NodeRoute::Pending(t) => {
                    self.pending_route.insert(t, (Some(id), fwd));
                    return;
                }
                NodeRoute::NotNode => {}
            }
        }
        let dest = match first_route(&fwd) {
            Some(r) => r.uri.as_sip().and_then(uri_destination),
            None => svc
                .resolve_contact(&fwd.uri, now)
                .or_else(|| fwd.uri.as_sip().and_then(uri_destination)),
        };
        match dest {
            Some(d) => self.fork(ep, now, id, vec![(fwd, d)]),
            None => {
                tracing::info!(
                    call_id = fwd.headers.call_id().unwrap_or_default(),
                    "cannot route {} to {}: not an IP address and not a registered contact",
                    fwd.method,
                    fwd.uri
                );
                self.final_local(ep, now, id, 404, "Not Found");
            }
        }
    }

    /// The answer to a route that returned [`NodeRoute::Pending`]: the connection to the
    /// node, or `None` when it could not be reached (480).
    pub fn route_complete(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        token: u64,
        dest: Option<Destination>,
    ) {
        let Some((id, req)) = self.pending_route.remove(&token) else {
            return;
        };
        match (id, dest) {
            (Some(id), Some(d)) => self.fork(ep, now, id, vec![(req, d)]),
            (Some(id), None) => {
                tracing::info!(
                    call_id = req.headers.call_id().unwrap_or_default(),
                    "{} to {}: the next node of the dialog cannot be reached, answering 480",
                    req.method,
                    req.uri
                );
                self.final_local(ep, now, id, 480, "Temporarily Unavailable");
            }
            (None, Some(d)) => self.send_ack(ep, now, req, d, None),
            (None, None) => tracing::info!("ACK dropped: the next node cannot be reached"),
        }
    }

    /// The answer to a lookup that returned [`Lookup::Pending`].
    pub fn lookup_complete(&mut self, ep: &mut Endpoint, now: Instant, token: u64, result: Lookup) {
        let Some(id) = self.pending.remove(&token) else {
            return;
        };
        match result {
            Lookup::Targets(t) => self.start_targets(ep, now, id, t),
            Lookup::Pending(t) => {
                self.pending.insert(t, id);
            }
            Lookup::UnknownUser | Lookup::NotOurs => {
                self.final_local(ep, now, id, 404, "Not Found");
            }
            Lookup::Unavailable { retry_after } => self.unavailable(ep, now, id, retry_after),
        }
    }

    /// 503 with Retry-After: the location service did not answer.
    fn unavailable(&mut self, ep: &mut Endpoint, now: Instant, id: u64, retry_after: u32) {
        let Some(ctx) = self.contexts.remove(&id) else {
            return;
        };
        self.record_failure(now, &ctx, 503, "Service Unavailable");
        if let Some(mut r) = ep.make_response(&ctx.server, 503, "Service Unavailable") {
            r.headers.push("Retry-After", retry_after.to_string());
            let _ = ep.respond(now, &ctx.server, r);
        }
        self.contexts.insert(id, ctx);
        self.remove_context(id);
    }

    fn start_targets(&mut self, ep: &mut Endpoint, now: Instant, id: u64, mut t: Vec<Target>) {
        let Some(ctx) = self.contexts.get_mut(&id) else {
            return;
        };
        if ctx.cancelled {
            self.final_local(ep, now, id, 487, "Request Terminated");
            return;
        }
        if t.is_empty() {
            tracing::info!(
                call_id = ctx.request.headers.call_id().unwrap_or_default(),
                "{} for {}: the user is not registered, answering 480",
                ctx.request.method,
                ctx.request.uri
            );
            ctx.outcome = Some("not registered");
            self.final_local(ep, now, id, 480, "Temporarily Unavailable");
            return;
        }
        // 16.6 / RFC 3261 16.6: highest q first; equal q in parallel.
        t.sort_by_key(|x| std::cmp::Reverse(x.q));
        let mut groups: VecDeque<Vec<Target>> = VecDeque::new();
        for target in t {
            match groups.back_mut() {
                Some(g) if g.first().is_some_and(|f| f.q == target.q) => g.push(target),
                _ => groups.push_back(vec![target]),
            }
        }
        ctx.groups = groups;
        if ctx.request.method == Method::Invite {
            let at = now + self.cfg.ring_timeout;
            self.set_deadline(id, at);
        }
        self.next_group(ep, now, id);
    }

    fn next_group(&mut self, ep: &mut Endpoint, now: Instant, id: u64) {
        let Some(ctx) = self.contexts.get_mut(&id) else {
            return;
        };
        let Some(group) = ctx.groups.pop_front() else {
            return;
        };
        let mut sends = Vec::new();
        for target in group {
            let mut fwd = ctx.request.clone();
            fwd.uri = target.uri.clone();
            for p in target.path.iter().rev() {
                fwd.headers.push_front("Route", p.clone());
            }
            let dest = match target.dest {
                Some(d) => Some(d),
                None => match first_route(&fwd) {
                    Some(r) => r.uri.as_sip().and_then(uri_destination),
                    None => target.uri.as_sip().and_then(uri_destination),
                },
            };
            match dest {
                Some(d) => sends.push((fwd, d)),
                None => tracing::info!("target {} has no usable address, skipped", target.uri),
            }
        }
        if sends.is_empty() {
            self.check_complete(ep, now, id);
            return;
        }
        self.fork(ep, now, id, sends);
    }

    /// Sends one branch per (request, destination): 16.6 steps 3 to 10.
    fn fork(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        id: u64,
        sends: Vec<(Request, Destination)>,
    ) {
        let Some(ctx) = self.contexts.get(&id) else {
            return;
        };
        let hash = Self::branch_hash(&ctx.request);
        let source = ctx.source;
        let base = ctx.branches.len();
        let mut started = Vec::new();
        for (i, (mut fwd, dest)) in sends.into_iter().enumerate() {
            // Step 3: Max-Forwards.
            let mf = fwd
                .headers
                .max_forwards()
                .map_or(70, |m| m.saturating_sub(1));
            fwd.headers.set("Max-Forwards", mf.to_string());
            // Step 4: Record-Route for dialog-creating requests; two entries when the
            // request changes transport or interface (RFC 5658 double Record-Route), the
            // one facing the callee on top.
            let local = self.local_addr(dest.transport, source.local);
            if matches!(
                fwd.method,
                Method::Invite | Method::Subscribe | Method::Refer
            ) && fwd.headers.to().is_none_or(|t| t.tag().is_none())
            {
                // A TLS connection's own local address (phone-facing and inter-node TLS
                // listeners differ); the configured address for the others.
                let inbound =
                    if source.transport == Transport::Tls && !source.local.ip().is_unspecified() {
                        source.local
                    } else {
                        self.local_addr(source.transport, source.local)
                    };
                if (source.transport, inbound) != (dest.transport, local) {
                    fwd.headers
                        .push_front("Record-Route", self.rr_value(source.transport, inbound));
                }
                fwd.headers
                    .push_front("Record-Route", self.rr_value(dest.transport, local));
            }
            // Step 8: our Via.
            let branch = format!("{MAGIC_COOKIE}p2p{hash}.{}{}", base + i, id);
            let mut via = Via::new(
                dest.transport.via_token(),
                &local.ip().to_string(),
                Some(local.port()),
                &branch,
            );
            via.set_param("rport", None);
            fwd.headers.push_front("Via", via.to_string());
            match ep.send_request(now, fwd.clone(), dest) {
                Ok(k) => started.push(Branch {
                    key: k,
                    request: fwd,
                    dest,
                    state: BranchState::Calling,
                    cancel_wanted: false,
                }),
                Err(e) => tracing::warn!("could not forward {}: {e}", fwd.method),
            }
        }
        let Some(ctx) = self.contexts.get_mut(&id) else {
            return;
        };
        for b in started {
            self.by_client
                .insert(b.key.clone(), (id, ctx.branches.len()));
            ctx.branches.push(b);
        }
        self.check_complete(ep, now, id);
    }

    fn on_response(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        id: u64,
        idx: usize,
        resp: Response,
    ) {
        if resp.status >= 200 {
            self.on_branch_final(ep, now, id, idx, resp, true);
            return;
        }
        let Some(ctx) = self.contexts.get_mut(&id) else {
            return;
        };
        let mut cancel_now = false;
        if let Some(b) = ctx.branches.get_mut(idx)
            && b.state == BranchState::Calling
        {
            b.state = BranchState::Proceeding;
            cancel_now = b.cancel_wanted;
        }
        if cancel_now {
            self.send_cancel(ep, now, id, idx);
        }
        let Some(ctx) = self.contexts.get(&id) else {
            return;
        };
        if resp.status == 100 || ctx.final_sent {
            return;
        }
        let server = ctx.server.clone();
        let mut up = resp;
        up.headers.pop_top_via();
        if let Err(e) = ep.respond(now, &server, up) {
            tracing::debug!("provisional response not forwarded: {e}");
        }
    }

    fn on_branch_final(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        id: u64,
        idx: usize,
        resp: Response,
        received: bool,
    ) {
        let Some(ctx) = self.contexts.get_mut(&id) else {
            return;
        };
        let was_done = ctx
            .branches
            .get(idx)
            .is_some_and(|b| b.state == BranchState::Done);
        if let Some(b) = ctx.branches.get_mut(idx) {
            b.state = BranchState::Done;
        }
        let server = ctx.server.clone();
        if (200..300).contains(&resp.status) {
            // 16.7 step 5: every 2xx goes upstream at once (also retransmissions).
            let first = !ctx.final_sent;
            ctx.final_sent = true;
            let mut up = resp;
            up.headers.pop_top_via();
            if first
                && ctx.request.method == Method::Invite
                && ctx.request.headers.to().is_none_or(|t| t.tag().is_none())
            {
                let rec = CallRecord {
                    call_id: ctx.request.headers.call_id().unwrap_or_default().to_owned(),
                    caller: uri_of(ctx.request.headers.from()),
                    callee: uri_of(ctx.request.headers.to()),
                    start: ctx.start,
                    answer: Some(now),
                    end: now,
                    result: "answered".to_owned(),
                    status: up.status,
                    reason: up.reason.clone(),
                };
                if self.dialogs.len() >= MAX_DIALOGS
                    && let Some(k) = self.dialogs.keys().next().cloned()
                    && let Some(r) = self.dialogs.remove(&k)
                {
                    self.records.push_back(r);
                }
                tracing::info!(
                    call_id = %rec.call_id,
                    "call from {} to {} answered",
                    rec.caller,
                    rec.callee
                );
                self.dialogs.insert(rec.call_id.clone(), rec);
            }
            if let Err(e) = ep.respond(now, &server, up) {
                tracing::debug!("2xx not forwarded: {e}");
            }
            if first {
                self.cancel_branches(ep, now, id, Some(idx));
                let at = now + self.cfg.linger;
                self.set_deadline(id, at);
            }
            return;
        }
        if was_done && received {
            return;
        }
        if resp.status >= 600 {
            self.cancel_branches(ep, now, id, Some(idx));
        }
        let Some(ctx) = self.contexts.get_mut(&id) else {
            return;
        };
        let better = match &ctx.best {
            None => true,
            Some(b) => rank(resp.status) < rank(b.status),
        };
        if better {
            ctx.best = Some(resp);
        }
        self.check_complete(ep, now, id);
    }

    /// When no branch is pending: try the next q group, or send the best response.
    fn check_complete(&mut self, ep: &mut Endpoint, now: Instant, id: u64) {
        let Some(ctx) = self.contexts.get_mut(&id) else {
            return;
        };
        if ctx.branches.iter().any(|b| b.state != BranchState::Done) {
            return;
        }
        if ctx.final_sent {
            if ctx.deadline.is_none() {
                self.remove_context(id);
            }
            return;
        }
        let stop =
            ctx.cancelled || ctx.timed_out || ctx.best.as_ref().is_some_and(|b| b.status >= 600);
        if !stop && !ctx.groups.is_empty() {
            self.next_group(ep, now, id);
            return;
        }
        let best = ctx.best.take();
        let method = ctx.request.method.clone();
        let call_id = ctx.request.headers.call_id().unwrap_or_default().to_owned();
        let target = ctx.request.uri.to_string();
        let (timed_out, cancelled) = (ctx.timed_out, ctx.cancelled);
        match best {
            _ if timed_out && !cancelled => {
                if let Some(c) = self.contexts.get_mut(&id) {
                    c.outcome = Some("no answer");
                }
                tracing::info!(%call_id, "{method} to {target}: no answer, answering 480");
                self.final_local(ep, now, id, 480, "Temporarily Unavailable");
            }
            Some(r) if r.status == 408 && !cancelled => {
                tracing::info!(%call_id, "{method} to {target}: no response from the phone, answering 480");
                self.final_local(ep, now, id, 480, "Temporarily Unavailable");
            }
            Some(mut r) => {
                if !cancelled {
                    tracing::info!(%call_id, "{method} to {target} failed: {} {}", r.status, r.reason);
                }
                if r.status == 503 {
                    // 16.7 step 6: a 503 becomes 500 upstream.
                    r.status = 500;
                    r.reason = "Server Internal Error".to_owned();
                }
                r.headers.pop_top_via();
                self.final_forward(ep, now, id, r);
            }
            None if cancelled => self.final_local(ep, now, id, 487, "Request Terminated"),
            None => {
                tracing::info!(%call_id, "{method} to {target}: no target could be reached, answering 480");
                self.final_local(ep, now, id, 480, "Temporarily Unavailable");
            }
        }
    }

    fn record_failure(&mut self, now: Instant, ctx: &Context, status: u16, reason: &str) {
        if ctx.request.method != Method::Invite
            || ctx.request.headers.to().is_some_and(|t| t.tag().is_some())
        {
            return;
        }
        self.records.push_back(CallRecord {
            call_id: ctx.request.headers.call_id().unwrap_or_default().to_owned(),
            caller: uri_of(ctx.request.headers.from()),
            callee: uri_of(ctx.request.headers.to()),
            start: ctx.start,
            answer: None,
            end: now,
            result: ctx.outcome.unwrap_or(result_words(status)).to_owned(),
            status,
            reason: reason.to_owned(),
        });
    }

    fn final_local(&mut self, ep: &mut Endpoint, now: Instant, id: u64, status: u16, reason: &str) {
        let Some(ctx) = self.contexts.remove(&id) else {
            return;
        };
        self.record_failure(now, &ctx, status, reason);
        let _ = ep.reply(now, &ctx.server, status, reason);
        self.contexts.insert(id, ctx);
        self.remove_context(id);
    }

    fn final_forward(&mut self, ep: &mut Endpoint, now: Instant, id: u64, r: Response) {
        let Some(ctx) = self.contexts.remove(&id) else {
            return;
        };
        self.record_failure(now, &ctx, r.status, &r.reason);
        let _ = ep.respond(now, &ctx.server, r);
        self.contexts.insert(id, ctx);
        self.remove_context(id);
    }

    /// Cancels every pending branch but `except` (16.10; 9.1: only after a provisional).
    fn cancel_branches(&mut self, ep: &mut Endpoint, now: Instant, id: u64, except: Option<usize>) {
        let Some(ctx) = self.contexts.get_mut(&id) else {
            return;
        };
        if ctx.request.method != Method::Invite {
            return;
        }
        let mut now_list = Vec::new();
        for (i, b) in ctx.branches.iter_mut().enumerate() {
            if Some(i) == except || b.state == BranchState::Done || b.cancel_wanted {
                continue;
            }
            b.cancel_wanted = true;
            if b.state == BranchState::Proceeding {
                now_list.push(i);
            }
        }
        for i in now_list {
            self.send_cancel(ep, now, id, i);
        }
    }

    fn send_cancel(&mut self, ep: &mut Endpoint, now: Instant, id: u64, idx: usize) {
        let Some(b) = self.contexts.get(&id).and_then(|c| c.branches.get(idx)) else {
            return;
        };
        let mut h = crate::message::Headers::new();
        if let Some(v) = b.request.headers.top_via() {
            h.push("Via", v.to_string());
        }
        for r in b.request.headers.get_all("Route") {
            h.push("Route", r);
        }
        h.push("Max-Forwards", "70");
        for n in ["From", "To", "Call-ID"] {
            if let Some(v) = b.request.headers.get(n) {
                h.push(n, v);
            }
        }
        let seq = b.request.headers.cseq().map_or(1, |c| c.seq);
        h.push(
            "CSeq",
            CSeq {
                seq,
                method: Method::Cancel,
            }
            .to_string(),
        );
        h.push("Content-Length", "0");
        let cancel = Request {
            method: Method::Cancel,
            uri: b.request.uri.clone(),
            headers: h,
            body: Vec::new(),
        };
        if let Err(e) = ep.send_request(now, cancel, b.dest) {
            tracing::debug!("CANCEL not sent: {e}");
        }
    }

    /// An ACK for a 2xx (or any ACK matching no server transaction): routed end to end.
    fn forward_ack(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        mut ack: Request,
        source: Source,
        loc: &mut dyn Location,
    ) {
        if self.is_loop(&ack) {
            return;
        }
        while first_route(&ack).is_some_and(|r| self.is_us(&r.uri)) {
            pop_first_route(&mut ack);
        }
        if let Some(node) = first_route(&ack).and_then(|r| node_param(&r.uri)) {
            match loc.route_to_node(&node, now) {
                NodeRoute::Ready(d) => return self.send_ack(ep, now, ack, d, Some(source)),
                NodeRoute::Pending(t) => {
                    self.pending_route.insert(t, (None, ack));
                    return;
                }
                NodeRoute::NotNode => {}
            }
        }
        let dest = match first_route(&ack) {
            Some(r) => r.uri.as_sip().and_then(uri_destination),
            None => loc
                .resolve_contact(&ack.uri, now)
                .or_else(|| ack.uri.as_sip().and_then(uri_destination)),
        };
        let Some(dest) = dest else {
            tracing::debug!("ACK to {} dropped: no route", ack.uri);
            return;
        };
        self.send_ack(ep, now, ack, dest, Some(source));
    }

    /// Sends an ACK on (stateless, our Via on top).
    fn send_ack(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        mut ack: Request,
        dest: Destination,
        source: Option<Source>,
    ) {
        let _ = now;
        let mf = ack
            .headers
            .max_forwards()
            .map_or(70, |m| m.saturating_sub(1));
        if mf == 0 {
            return;
        }
        ack.headers.set("Max-Forwards", mf.to_string());
        let fallback = source.map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |s| s.local);
        let local = self.local_addr(dest.transport, fallback);
        let branch = format!("{MAGIC_COOKIE}p2p{}.ack", Self::branch_hash(&ack));
        let via = Via::new(
            dest.transport.via_token(),
            &local.ip().to_string(),
            Some(local.port()),
            &branch,
        );
        ack.headers.push_front("Via", via.to_string());
        ep.send_stateless(dest, ack.to_bytes());
    }

    /// Notes a BYE passing through: the call record of its dialog is finished.
    pub fn note_request(&mut self, now: Instant, request: &Request) {
        if request.method != Method::Bye {
            return;
        }
        if let Some(mut rec) = request
            .headers
            .call_id()
            .and_then(|c| self.dialogs.remove(c))
        {
            rec.end = now;
            self.records.push_back(rec);
        }
    }
}

/// The `p2pnode` parameter of a Route URI (the Node-ID a node writes in its Record-Route).
fn node_param(uri: &Uri) -> Option<String> {
    uri.as_sip()?.param("p2pnode")?.value.clone()
}

fn uri_of(n: Option<NameAddr>) -> String {
    n.map(|n| n.uri.to_string()).unwrap_or_default()
}

/// The first Route value of a request.
fn first_route(req: &Request) -> Option<NameAddr> {
    let v = req.headers.get("Route")?;
    NameAddr::parse(split_commas(v)?.first()?)
}

/// Removes the first Route value (16.4).
fn pop_first_route(req: &mut Request) {
    let mut values: Vec<String> = req
        .headers
        .get_all("Route")
        .flat_map(|v| split_commas(v).unwrap_or_default())
        .map(str::to_owned)
        .collect();
    if values.is_empty() {
        return;
    }
    values.remove(0);
    req.headers.remove("Route");
    // Route headers go before Max-Forwards-like headers; order among other names is free.
    for v in values.into_iter().rev() {
        req.headers.push_front("Route", v);
    }
}
