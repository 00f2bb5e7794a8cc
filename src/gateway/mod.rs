//! The gateway between phones and the overlay. REGISTER goes to the sans-IO
//! [`Registrar`]; every other request to the sans-IO [`Proxy`], which finds targets
//! through the registrar's bindings ([`Services`], the [`Location`] of this node) and
//! authenticates callers against the same users. Call records go to `calls.jsonl`.
//! Binding changes are logged and, with a [`publish::Publisher`], stored in the overlay as
//! SIP-REGISTRATION entries (RFC 7904).

pub mod calllog;
pub mod credentials;
pub mod internode;
pub mod metrics;
pub mod publish;
pub mod users;

use crate::sip_transport::SipApp;
use sip::message::Method;
use sip::message::{Request, Uri};
use sip::proxy::{
    AuthVerdict, Authenticator, Location, Lookup, NodeRoute, Proxy, ProxyConfig, Target,
};
use sip::registrar::{
    Binding, Outcome, RegisterContext, Registrar, RegistrarEvent, RemovalReason, User,
};
use sip::{Destination, Endpoint, Event, Source, Transport};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

/// The registrar shared between the SIP driver and the expiry task.
#[derive(Clone)]
pub struct Shared {
    registrar: Arc<Mutex<Registrar>>,
    wake: Arc<Notify>,
    publisher: Option<publish::Publisher>,
    /// This node's own users (config + users file).
    local: Arc<Mutex<Vec<User>>>,
    /// Users shared through the overlay (credentials::Directory), if the node has the key.
    creds: Option<Arc<credentials::Directory>>,
}

impl Shared {
    /// Wraps a registrar.
    pub fn new(registrar: Registrar) -> Self {
        Shared {
            registrar: Arc::new(Mutex::new(registrar)),
            wake: Arc::new(Notify::new()),
            publisher: None,
            local: Arc::new(Mutex::new(Vec::new())),
            creds: None,
        }
    }

    /// Finds users this node does not know in the overlay (shared users).
    pub fn with_credentials(mut self, dir: Arc<credentials::Directory>) -> Self {
        self.creds = Some(dir);
        self
    }

    /// The shared-user directory, if any.
    pub fn credentials(&self) -> Option<&Arc<credentials::Directory>> {
        self.creds.as_ref()
    }

    fn is_local(&self, user: &str) -> bool {
        self.local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|u| u.name == user)
    }

    /// Gives the registrar our users plus the shared users fetched so far (ours win).
    fn apply_users(&self) {
        let mut all = self
            .local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(d) = &self.creds {
            for u in d.known_users() {
                if !all.iter().any(|l| l.name == u.name) {
                    all.push(u);
                }
            }
        }
        self.lock().set_users(all);
    }

    /// Stores every binding change in the overlay through `publisher` (RFC 7904).
    pub fn with_publisher(mut self, publisher: publish::Publisher) -> Self {
        self.publisher = Some(publisher);
        self
    }

    fn lock(&self) -> MutexGuard<'_, Registrar> {
        // A panic while holding the lock leaves consistent data (every update commits at
        // the end), so a poisoned lock is still usable.
        self.registrar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces this node's own users (start, SIGHUP).
    pub fn set_users(&self, users: Vec<User>) {
        *self
            .local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = users;
        self.apply_users();
    }
}

/// The SIP application of the node.
pub struct Gateway {
    shared: Shared,
    proxy: Proxy,
    calls: Option<calllog::CallLog>,
    pstn: Option<crate::pstn::Bridge>,
    live: LiveCalls,
    live_stamp: Option<(Instant, usize, usize)>,
    metrics: metrics::SipMetrics,
    /// Requests held while the credentials of the users they name are fetched.
    parked: Vec<Parked>,
    // calls: overlay routing (None: a node without inter-node SIP)
    router: Option<internode::Router>,
    next_token: u64,
}

/// The calls in progress as JSON for `/status` (refreshed by the gateway as calls change).
#[derive(Clone, Default)]
pub struct LiveCalls(Arc<Mutex<serde_json::Value>>);

impl LiveCalls {
    /// The last snapshot: a JSON array of `{call_id, caller, callee, state, since_unix}`
    /// (`since_unix`: when the call started ringing or was answered, Unix seconds).
    pub fn snapshot(&self) -> serde_json::Value {
        match self.0.lock() {
            Ok(v) if !v.is_null() => v.clone(),
            _ => serde_json::Value::Array(Vec::new()),
        }
    }
}

/// A request held for a credential lookup.
struct Parked {
    users: Vec<String>,
    deadline: Instant,
    event: Event,
}

/// Longest a request is held for a credential lookup.
const PARK_MAX: std::time::Duration = std::time::Duration::from_secs(4);
/// How often held requests are looked at.
const PARK_POLL: std::time::Duration = std::time::Duration::from_millis(20);

impl Gateway {
    /// A gateway over the shared registrar, proxying with `proxy` and writing call
    /// records to `calls` (none: not written).
    pub fn new(shared: Shared, proxy: ProxyConfig, calls: Option<calllog::CallLog>) -> Self {
        Gateway {
            shared,
            proxy: Proxy::new(proxy),
            calls,
            live: LiveCalls::default(),
            parked: Vec::new(),
            live_stamp: None,
            metrics: metrics::SipMetrics::default(),
            pstn: None,
            router: None,
            next_token: 1,
        }
    }

    /// Bridges calls to and from telephone numbers through `bridge` (docs/PSTN.md).
    pub fn with_pstn(mut self, bridge: crate::pstn::Bridge) -> Self {
        self.pstn = Some(bridge);
        self
    }

    /// Counts REGISTERs and calls into `metrics`.
    pub fn with_metrics(mut self, metrics: metrics::SipMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Keeps `live` up to date with the calls in progress (for `/status`).
    pub fn with_live_calls(mut self, live: LiveCalls) -> Self {
        self.live = live;
        self
    }

    /// Refreshes the live-calls snapshot when the set of calls changed or every 250 ms.
    fn refresh_live(&mut self, now: Instant, ended: bool) {
        let counts = (self.proxy.context_count(), self.proxy.dialog_count());
        let fresh = self.live_stamp.is_some_and(|(t, c, d)| {
            !ended
                && (c, d) == counts
                && now.saturating_duration_since(t) < Duration::from_millis(250)
        });
        if fresh {
            return;
        }
        self.live_stamp = Some((now, counts.0, counts.1));
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let calls: Vec<serde_json::Value> = self
            .proxy
            .live_calls()
            .into_iter()
            .map(|c| {
                let since = c.answer.unwrap_or(c.start);
                serde_json::json!({
                    "call_id": c.call_id,
                    "caller": bare(&c.caller),
                    "callee": bare(&c.callee),
                    "state": if c.answer.is_some() { "answered" } else { "ringing" },
                    "since_unix": wall - now.saturating_duration_since(since).as_secs_f64(),
                })
            })
            .collect();
        self.metrics.set_live_calls(calls.len());
        if let Ok(mut v) = self.live.0.lock() {
            *v = serde_json::Value::Array(calls);
        }
    }

    /// The users of our domain a request names that this node does not have itself: the AOR
    /// of a REGISTER; the caller and the callee of anything else.
    fn foreign_users(&self, request: &Request) -> Vec<String> {
        if self.shared.creds.is_none() {
            return Vec::new();
        }
        let reg = self.shared.lock();
        let mut uris: Vec<Uri> = Vec::new();
        if request.method == Method::Register {
            uris.extend(request.headers.to().map(|t| t.uri));
        } else {
            uris.extend(request.headers.from().map(|f| f.uri));
            uris.push(request.uri.clone());
        }
        let mut out: Vec<String> = uris
            .iter()
            .filter_map(|u| u.as_sip())
            .filter(|u| reg.serves_host(&u.host))
            .filter_map(|u| u.user().map(str::to_owned))
            .collect();
        drop(reg);
        out.retain(|u| !u.is_empty() && !self.shared.is_local(u));
        out.dedup();
        out
    }

    /// Holds `event` while the credentials of unknown users it names are fetched; `None`
    /// when it can be handled now (the registrar then has every shared user fetched so far).
    fn gate(&mut self, now: Instant, event: Event) -> Option<Event> {
        let Event::Request { request, .. } = &event else {
            return Some(event);
        };
        let users = self.foreign_users(request);
        let Some(dir) = self.shared.creds.clone() else {
            return Some(event);
        };
        if users.is_empty() {
            return Some(event);
        }
        let pending: Vec<String> = users
            .into_iter()
            .filter(|u| dir.readiness(u, now) == credentials::Readiness::Pending)
            .collect();
        if pending.is_empty() {
            self.shared.apply_users();
            return Some(event);
        }
        tracing::debug!(users = ?pending, "holding the request for a credential lookup");
        self.parked.push(Parked {
            users: pending,
            deadline: now + PARK_MAX,
            event,
        });
        None
    }

    /// Routes requests for callees without local bindings through the overlay.
    pub fn with_router(mut self, router: internode::Router) -> Self {
        self.router = Some(router);
        self
    }

    fn write_records(&mut self, now: Instant) {
        let mut ended = false;
        while let Some(rec) = self.proxy.poll_record().or_else(|| {
            self.pstn
                .as_mut()
                .and_then(crate::pstn::Bridge::poll_record)
        }) {
            ended = true;
            self.metrics.call(&rec.result);
            tracing::info!(
                "call {} from {} to {}: {} ({} {})",
                rec.call_id,
                bare(&rec.caller),
                bare(&rec.callee),
                rec.result,
                rec.status,
                rec.reason
            );
            if let Some(log) = &mut self.calls {
                log.write(&rec, now);
            }
        }
        self.refresh_live(now, ended);
    }
}

/// Proxy settings for a node listening on these addresses; the Record-Route URI carries
/// the Node-ID (hex) in its `p2pnode` parameter.
pub fn proxy_config(
    udp: &[std::net::SocketAddr],
    tcp: &[std::net::SocketAddr],
    node_id: u128,
) -> ProxyConfig {
    let mut local = Vec::new();
    if let Some(a) = udp.first() {
        local.push((Transport::Udp, *a));
    }
    if let Some(a) = tcp.first() {
        local.push((Transport::Tcp, *a));
    }
    ProxyConfig {
        local,
        node_param: format!("{node_id:032x}"),
        ..ProxyConfig::default()
    }
}

/// The registrar seen by the proxy: location of local bindings and digest checks.
pub struct Services<'a> {
    reg: &'a mut Registrar,
    /// The request came over an authenticated inter-node link: no challenge, local
    /// bindings only.
    trusted: bool,
    router: Option<&'a internode::Router>,
    next_token: &'a mut u64,
    /// Overlay lookups to start: (token, Request-URI, whether the user is ours).
    lookups: Vec<(u64, Uri)>,
    /// Connections to nodes to set up: (token, Node-ID).
    routes: Vec<(u64, reload::wire::NodeId)>,
}

impl Services<'_> {
    fn token(&mut self) -> u64 {
        let t = *self.next_token;
        *self.next_token += 1;
        t
    }

    fn target_of(b: &Binding) -> Target {
        Target {
            uri: b.contact.uri.clone(),
            q: b.q,
            dest: Self::binding_dest(b),
            path: b.path.clone(),
        }
    }

    /// Local bindings of `aor` (`user@domain`, with or without scheme).
    fn local_targets(reg: &Registrar, aor: &str, now: Instant) -> Vec<Target> {
        let name = publish::resource_name(aor);
        let user = name.split('@').next().unwrap_or(name);
        let user = user.split(';').next().unwrap_or(user);
        reg.lookup(user, now).iter().map(Self::target_of).collect()
    }

    fn binding_dest(b: &Binding) -> Option<Destination> {
        // RFC 5626 / NAT: the flow the phone registered on, when the Contact is not
        // where its messages come from (or a stream connection must be reused).
        let contact = b.contact.uri.as_sip().and_then(sip::proxy::uri_destination);
        let flow = Destination {
            transport: b.source.transport,
            remote: b.source.remote,
            conn: b.source.conn,
        };
        if b.outbound || b.behind_nat || b.source.transport.is_reliable() || contact.is_none() {
            Some(flow)
        } else {
            None
        }
    }
}

impl Location for Services<'_> {
    fn lookup(&mut self, uri: &Uri, now: Instant) -> Lookup {
        let Some(sip_uri) = uri.as_sip() else {
            return Lookup::NotOurs;
        };
        if !self.reg.serves_host(&sip_uri.host) {
            return Lookup::NotOurs;
        }
        if let Some((_, b)) = sip_uri
            .param("gr")
            .and_then(|_| self.reg.resolve_temp_gruu(&uri.to_string(), now))
        {
            return Lookup::Targets(vec![Target {
                uri: b.contact.uri.clone(),
                q: b.q,
                dest: Self::binding_dest(&b),
                path: b.path.clone(),
            }]);
        }
        let Some(user) = sip_uri.user() else {
            return Lookup::UnknownUser;
        };
        // calls: a public GRUU naming another node goes there without a Fetch.
        let gr_node = sip_uri
            .param("gr")
            .and_then(|p| p.value.as_deref())
            .and_then(|gr| reload::wire::sip::parse_gruu_gr_param(gr).ok())
            .and_then(|l| match l.last() {
                Some(reload::wire::Destination::Node(n)) => Some(*n),
                _ => None,
            });
        if let Some(router) = self.router
            && !self.trusted
            && gr_node.is_some_and(|n| n != router.me())
        {
            let t = self.token();
            self.lookups.push((t, uri.clone()));
            return Lookup::Pending(t);
        }
        let known = self.reg.has_user(user);
        let targets: Vec<Target> = if known {
            self.reg
                .lookup(user, now)
                .iter()
                .map(Self::target_of)
                .collect()
        } else {
            Vec::new()
        };
        if targets.is_empty() && !self.trusted && self.router.is_some() {
            // calls: nobody here; the overlay may know where the AOR is registered.
            let t = self.token();
            self.lookups.push((t, uri.clone()));
            return Lookup::Pending(t);
        }
        if !known {
            return Lookup::UnknownUser;
        }
        Lookup::Targets(targets)
    }

    fn resolve_contact(&mut self, uri: &Uri, now: Instant) -> Option<Destination> {
        let sip_uri = uri.as_sip()?;
        let user = sip_uri.user()?;
        self.reg
            .lookup(user, now)
            .into_iter()
            .find(|b| {
                b.contact.uri.as_sip().is_some_and(|c| {
                    c.host.eq_ignore_ascii_case(&sip_uri.host)
                        && c.port == sip_uri.port
                        && c.user() == Some(user)
                })
            })
            .and_then(|b| Self::binding_dest(&b))
    }

    fn route_to_node(&mut self, node: &str, _now: Instant) -> NodeRoute {
        let Some(router) = self.router else {
            return NodeRoute::NotNode;
        };
        let Some(id) = internode::parse_node(node) else {
            return NodeRoute::NotNode;
        };
        if id == router.me() {
            return NodeRoute::NotNode;
        }
        if let Some(d) = router.pooled(id) {
            return NodeRoute::Ready(d);
        }
        let t = self.token();
        self.routes.push((t, id));
        NodeRoute::Pending(t)
    }
}

impl crate::pstn::PbxServices for Services<'_> {
    fn has_user(&mut self, user: &str) -> bool {
        self.reg.has_user(user)
    }
    fn serves_host(&mut self, host: &str) -> bool {
        self.reg.serves_host(host)
    }
    fn authenticate(&mut self, request: &Request, now: Instant) -> AuthVerdict {
        Authenticator::authenticate(self, request, now)
    }
    fn is_overlay_node_link(&mut self, _source: &Source) -> bool {
        self.trusted
    }
}

impl Authenticator for Services<'_> {
    fn authenticate(&mut self, request: &Request, now: Instant) -> AuthVerdict {
        if self.trusted {
            // Another node authenticated its caller (RFC 7904: the link is mutual TLS
            // with overlay certificates).
            return AuthVerdict::NotRequired;
        }
        // Callers claiming one of our users prove it (RFC 3261 22.3); callers from other
        // domains reach our users unchallenged.
        let Some(from) = request.headers.from() else {
            return AuthVerdict::Reject {
                status: 400,
                reason: "Bad From".into(),
                headers: Vec::new(),
            };
        };
        let Some(from_sip) = from.uri.as_sip() else {
            return AuthVerdict::NotRequired;
        };
        if !self.reg.serves_host(&from_sip.host) {
            return AuthVerdict::NotRequired;
        }
        let claimed = from_sip.user().unwrap_or_default().to_owned();
        let source = Source {
            transport: Transport::Udp,
            local: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
            remote: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
            conn: None,
        };
        let ctx = RegisterContext {
            request,
            source,
            now,
            unix_secs: unix_now(),
            random: rand::random(),
        };
        match self.reg.authenticate_proxy(&ctx, &claimed) {
            Ok(user) if user == claimed => AuthVerdict::Authenticated(user),
            Ok(user) => {
                tracing::info!("user {user} may not call as {claimed}: 403");
                AuthVerdict::Reject {
                    status: 403,
                    reason: "Forbidden".into(),
                    headers: vec![],
                }
            }
            Err(reply) => {
                if reply.status != 407 {
                    tracing::info!("caller {claimed} refused: {:?}", reply.outcome);
                }
                AuthVerdict::Reject {
                    status: reply.status,
                    reason: reply.reason,
                    headers: reply.headers,
                }
            }
        }
    }
}

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
        Transport::Tls => "tls",
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn bare(aor: &str) -> &str {
    aor.strip_prefix("sip:").unwrap_or(aor)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn log_events(reg: &mut Registrar, publisher: Option<&publish::Publisher>, now: Instant) {
    while let Some(ev) = reg.poll_event() {
        match ev {
            RegistrarEvent::BindingRemoved {
                aor,
                binding,
                reason,
            } => {
                let why = match reason {
                    RemovalReason::Expired => "expired",
                    RemovalReason::Unregistered => "removed by the phone",
                    RemovalReason::Evicted => "dropped to make room (max_contacts)",
                };
                tracing::info!("binding {} of {} {why}", binding.contact.uri, bare(&aor));
            }
            RegistrarEvent::BindingChanged { aor, bindings } => {
                tracing::debug!(
                    "{} now has {} binding{}",
                    bare(&aor),
                    bindings.len(),
                    plural(bindings.len())
                );
                if let Some(p) = publisher {
                    p.binding_changed(&aor, &bindings, now);
                }
            }
        }
    }
}

impl Gateway {
    fn on_register(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: &sip::transaction::TransactionKey,
        request: &sip::message::Request,
        source: Source,
    ) {
        let ctx = RegisterContext {
            request,
            source,
            now,
            unix_secs: unix_now(),
            random: rand::random(),
        };
        let reply = {
            let mut reg = self.shared.lock();
            let reply = reg.handle_register(&ctx);
            log_events(&mut reg, self.shared.publisher.as_ref(), now);
            reply
        };
        self.shared.wake.notify_one();
        let from = format!("{} {}", transport_name(source.transport), source.remote);
        let result = match &reply.outcome {
            Outcome::Registered { .. } => "registered",
            Outcome::Unregistered { .. } => "unregistered",
            Outcome::Queried { .. } => "queried",
            Outcome::Challenged { .. } => "challenged",
            Outcome::Rejected(_) => "rejected",
        };
        self.metrics.register(result, reply.status);
        match &reply.outcome {
            Outcome::Registered {
                aor,
                bindings,
                expires,
            } => tracing::info!(
                "registered {} from {from}, {bindings} binding{}, expires in {expires} s",
                bare(aor),
                plural(*bindings)
            ),
            Outcome::Unregistered { aor, bindings } => tracing::info!(
                "unregistered {} from {from}, {bindings} binding{} left",
                bare(aor),
                plural(*bindings)
            ),
            Outcome::Queried { aor, bindings } => {
                tracing::info!("bindings of {} queried from {from}: {bindings}", bare(aor))
            }
            Outcome::Challenged { stale } => {
                tracing::debug!(stale, "REGISTER from {from} challenged");
            }
            Outcome::Rejected(why) => {
                let to = request
                    .headers
                    .to()
                    .map(|t| bare(&t.uri.to_string()).to_owned())
                    .unwrap_or_default();
                tracing::info!(
                    "REGISTER for {to} from {from} refused with {} {}: {why}",
                    reply.status,
                    reply.reason
                );
            }
        }
        let Some(mut resp) = endpoint.make_response(key, reply.status, &reply.reason) else {
            tracing::warn!("REGISTER transaction vanished before the answer");
            return;
        };
        for (name, value) in reply.headers {
            resp.headers.push(&name, value);
        }
        if let Err(e) = endpoint.respond(now, key, resp) {
            tracing::warn!("could not answer REGISTER: {e}");
        }
    }
}

impl SipApp for Gateway {
    fn on_event(&mut self, endpoint: &mut Endpoint, now: Instant, event: Event) {
        if let Some(event) = self.gate(now, event) {
            self.dispatch(endpoint, now, event);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let parked = (!self.parked.is_empty()).then(|| Instant::now() + PARK_POLL);
        let pstn = self
            .pstn
            .as_ref()
            .and_then(crate::pstn::Bridge::poll_timeout);
        [self.proxy.poll_timeout(), parked, pstn]
            .into_iter()
            .flatten()
            .min()
    }

    fn on_timeout(&mut self, endpoint: &mut Endpoint, now: Instant) {
        if !self.parked.is_empty() {
            let dir = self.shared.creds.clone();
            let (ready, held): (Vec<Parked>, Vec<Parked>) =
                std::mem::take(&mut self.parked).into_iter().partition(|p| {
                    now >= p.deadline
                        || dir
                            .as_ref()
                            .is_none_or(|d| p.users.iter().all(|u| !d.is_pending(u)))
                });
            self.parked = held;
            if !ready.is_empty() {
                self.shared.apply_users();
            }
            for p in ready {
                self.dispatch(endpoint, now, p.event);
            }
        }
        self.proxy.handle_timeout(endpoint, now);
        if let Some(bridge) = self.pstn.as_mut() {
            bridge.on_timeout(endpoint, now);
        }
        self.write_records(now);
    }

    fn on_wake(&mut self, endpoint: &mut Endpoint, now: Instant, msg: crate::sip_transport::Wake) {
        let Ok(done) = msg.downcast::<internode::Done>() else {
            return;
        };
        match *done {
            internode::Done::Lookup { token, found } => {
                let lookup = {
                    let reg = self.shared.lock();
                    let mut targets = found.remote.clone();
                    for aor in &found.local_aors {
                        targets.extend(Services::local_targets(&reg, aor, now));
                    }
                    if !targets.is_empty() {
                        Lookup::Targets(targets)
                    } else if found.registered {
                        // Registered at some node, but no node could be reached: 480.
                        Lookup::Targets(Vec::new())
                    } else if found.overlay_failed {
                        tracing::info!("the overlay did not answer: answering 503, retry later");
                        Lookup::Unavailable {
                            retry_after: found.retry_after(),
                        }
                    } else if found.user.as_deref().is_some_and(|u| reg.has_user(u)) {
                        // One of our users, registered nowhere: 480.
                        Lookup::Targets(Vec::new())
                    } else {
                        Lookup::UnknownUser
                    }
                };
                self.proxy.lookup_complete(endpoint, now, token, lookup);
            }
            internode::Done::Route { token, dest } => {
                self.proxy.route_complete(endpoint, now, token, dest);
            }
        }
        self.write_records(now);
    }
}

impl Gateway {
    fn dispatch(&mut self, endpoint: &mut Endpoint, now: Instant, event: Event) {
        let event = match self.pstn.as_mut() {
            Some(bridge) => {
                let trusted = match (&event, &self.router) {
                    (Event::Request { source, .. }, Some(r)) => {
                        source.conn.and_then(|c| r.peer_of(c)).is_some()
                    }
                    _ => false,
                };
                let left = {
                    let mut reg = self.shared.lock();
                    let mut svc = Services {
                        reg: &mut reg,
                        trusted,
                        router: self.router.as_ref(),
                        next_token: &mut self.next_token,
                        lookups: Vec::new(),
                        routes: Vec::new(),
                    };
                    bridge.on_event(endpoint, now, event, &mut svc)
                };
                self.write_records(now);
                match left {
                    Some(ev) => ev,
                    None => return,
                }
            }
            None => event,
        };
        match event {
            Event::Request {
                key,
                request,
                source,
            } => {
                let call_id = request.headers.call_id().unwrap_or_default().to_owned();
                let span = tracing::info_span!("sip", method = %request.method, call_id = %call_id);
                let _entered = span.enter();
                if request.method == Method::Register {
                    self.on_register(endpoint, now, &key, &request, source);
                } else {
                    self.proxy_event(
                        endpoint,
                        now,
                        Event::Request {
                            key,
                            request,
                            source,
                        },
                    );
                }
            }
            Event::Dropped { remote, reason } => {
                tracing::debug!("dropped SIP message from {remote}: {reason}");
            }
            other => self.proxy_event(endpoint, now, other),
        }
    }
}

impl Gateway {
    fn proxy_event(&mut self, endpoint: &mut Endpoint, now: Instant, event: Event) {
        let trusted = match (&event, &self.router) {
            (Event::Request { source, .. }, Some(r)) => {
                source.conn.and_then(|c| r.peer_of(c)).is_some()
            }
            _ => false,
        };
        let (left, lookups, routes) = {
            let mut reg = self.shared.lock();
            let mut svc = Services {
                reg: &mut reg,
                trusted,
                router: self.router.as_ref(),
                next_token: &mut self.next_token,
                lookups: Vec::new(),
                routes: Vec::new(),
            };
            let left = self.proxy.on_event(endpoint, now, event, &mut svc);
            (left, svc.lookups, svc.routes)
        };
        if let Some(r) = &self.router {
            for (t, uri) in lookups {
                r.start_lookup(t, uri);
            }
            for (t, n) in routes {
                r.start_route(t, n);
            }
        }
        if let Some(ev) = left {
            tracing::debug!(?ev, "SIP event ignored");
        }
        self.write_records(now);
    }
}

/// Expires bindings on time until `shutdown` becomes true.
pub async fn run_expiry(shared: Shared, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let deadline = shared.lock().poll_timeout();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {
                let now = tokio::time::Instant::now().into_std();
                let mut reg = shared.lock();
                reg.handle_timeout(now);
                log_events(&mut reg, shared.publisher.as_ref(), now);
            }
            () = shared.wake.notified() => {}
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// The `gr` value of this node's public GRUUs (RFC 7904 section 6): a destination list
/// holding this node's Node-ID.
pub fn gr_for_node(node_id: u128) -> String {
    let list = [reload::wire::Destination::Node(reload::wire::NodeId(
        node_id,
    ))];
    reload::wire::sip::gruu_gr_param(&list).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gr_names_this_node() {
        let gr = gr_for_node(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff);
        assert!(!gr.contains('='), "{gr}");
        let list = reload::wire::sip::parse_gruu_gr_param(&gr).unwrap();
        assert_eq!(
            list,
            vec![reload::wire::Destination::Node(reload::wire::NodeId(
                0x0011_2233_4455_6677_8899_aabb_ccdd_eeff
            ))]
        );
    }
}
