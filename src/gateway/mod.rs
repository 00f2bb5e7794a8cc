//! The gateway between phones and the overlay. REGISTER goes to the sans-IO
//! [`Registrar`]; every other request to the sans-IO [`Proxy`], which finds targets
//! through the registrar's bindings ([`Services`], the [`Location`] of this node) and
//! authenticates callers against the same users. Call records go to `calls.jsonl`.
//! Binding changes are logged and, with a [`publish::Publisher`], stored in the overlay as
//! SIP-REGISTRATION entries (RFC 7904).

pub mod calllog;
pub mod publish;
pub mod users;

use crate::sip_transport::SipApp;
use sip::message::Method;
use sip::message::{Request, Uri};
use sip::proxy::{AuthVerdict, Authenticator, Location, Lookup, Proxy, ProxyConfig, Target};
use sip::registrar::{
    Binding, Outcome, RegisterContext, Registrar, RegistrarEvent, RemovalReason, User,
};
use sip::{Destination, Endpoint, Event, Source, Transport};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::{Notify, watch};

/// The registrar shared between the SIP driver and the expiry task.
#[derive(Clone)]
pub struct Shared {
    registrar: Arc<Mutex<Registrar>>,
    wake: Arc<Notify>,
    publisher: Option<publish::Publisher>,
}

impl Shared {
    /// Wraps a registrar.
    pub fn new(registrar: Registrar) -> Self {
        Shared {
            registrar: Arc::new(Mutex::new(registrar)),
            wake: Arc::new(Notify::new()),
            publisher: None,
        }
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

    /// Replaces the users (SIGHUP).
    pub fn set_users(&self, users: Vec<User>) {
        self.lock().set_users(users);
    }
}

/// The SIP application of the node.
pub struct Gateway {
    shared: Shared,
    proxy: Proxy,
    calls: Option<calllog::CallLog>,
    pstn: Option<crate::pstn::Bridge>,
}

impl Gateway {
    /// A gateway over the shared registrar, proxying with `proxy` and writing call
    /// records to `calls` (none: not written).
    pub fn new(shared: Shared, proxy: ProxyConfig, calls: Option<calllog::CallLog>) -> Self {
        Gateway {
            shared,
            proxy: Proxy::new(proxy),
            calls,
            pstn: None,
        }
    }

    /// Bridges calls to and from telephone numbers through `bridge` (docs/PSTN.md).
    pub fn with_pstn(mut self, bridge: crate::pstn::Bridge) -> Self {
        self.pstn = Some(bridge);
        self
    }

    fn write_records(&mut self, now: Instant) {
        while let Some(rec) = self.proxy.poll_record().or_else(|| {
            self.pstn
                .as_mut()
                .and_then(crate::pstn::Bridge::poll_record)
        }) {
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
}

impl Services<'_> {
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
        if !self.reg.has_user(user) {
            return Lookup::UnknownUser;
        }
        let targets = self
            .reg
            .lookup(user, now)
            .iter()
            .map(|b| Target {
                uri: b.contact.uri.clone(),
                q: b.q,
                dest: Self::binding_dest(b),
                path: b.path.clone(),
            })
            .collect();
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
}

impl Authenticator for Services<'_> {
    fn authenticate(&mut self, request: &Request, now: Instant) -> AuthVerdict {
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
        let event = match self.pstn.as_mut() {
            Some(bridge) => {
                let left = {
                    let mut reg = self.shared.lock();
                    let mut svc = Services { reg: &mut reg };
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

    fn poll_timeout(&self) -> Option<Instant> {
        let pstn = self
            .pstn
            .as_ref()
            .and_then(crate::pstn::Bridge::poll_timeout);
        match (self.proxy.poll_timeout(), pstn) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_timeout(&mut self, endpoint: &mut Endpoint, now: Instant) {
        self.proxy.handle_timeout(endpoint, now);
        if let Some(bridge) = self.pstn.as_mut() {
            bridge.on_timeout(endpoint, now);
        }
        self.write_records(now);
    }
}

impl Gateway {
    fn proxy_event(&mut self, endpoint: &mut Endpoint, now: Instant, event: Event) {
        let left = {
            let mut reg = self.shared.lock();
            let mut svc = Services { reg: &mut reg };
            self.proxy.on_event(endpoint, now, event, &mut svc)
        };
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
