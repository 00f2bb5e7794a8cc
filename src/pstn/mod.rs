//! The PSTN bridge (issue 8): trunks to carriers or PSTN gateways, the dial plan that sends
//! calls out through them, and DIDs that bring calls in.
//!
//! * **Outbound**: an INVITE from one of our users to a telephone number (not a local user)
//!   is authenticated (407 as for any call), classified by the [`dialplan::DialPlan`]
//!   (emergency first and always allowed; national, international, premium per user
//!   permission: 403 otherwise) and bridged by the sans-IO [`sip::b2bua::B2bua`] to the
//!   route's trunks in order. The far leg carries the trunk's credentials, never the
//!   user's; 503, 408 or silence moves on to the next trunk.
//! * **Inbound**: an INVITE from a trunk's allowed source address is routed by its
//!   Request-URI number: the DID table maps it to a user (else the `unknown_did` user, else
//!   404), the Request-URI is rewritten to that user's AOR and the proxy delivers it like
//!   any call. An INVITE for a number from anyone else gets 403 and a log line.
//! * **Carrier registration**: trunks with `register: true` keep a REGISTER alive
//!   ([`sip::b2bua::regclient::RegClient`]).
//! * **Overlay**: [`advertise`] stores every DID as an AOR-to-AOR entry and, on a node with
//!   trunks, a route entry at `pstn-gateway@<domain>`.

pub mod advertise;
pub mod config;
pub mod dialplan;
pub mod dids;
pub mod dns;
pub mod trunk;

use dialplan::{Decision, DialPlan};
use sip::b2bua::regclient::{RegClient, RegClientConfig};
use sip::b2bua::{B2bua, B2buaConfig, DigestCredentials, FarTarget};
use sip::message::{Method, Request, Uri};
use sip::proxy::{AuthVerdict, CallRecord};
use sip::{Destination, Endpoint, Event, Source, Transport};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use trunk::Trunk;

/// The AOR user under which nodes bridging a trunk advertise themselves in the overlay.
pub const GATEWAY_USER: &str = "pstn-gateway";

/// What the bridge needs from the registrar.
pub trait PbxServices {
    /// Whether `user` is one of our users.
    fn has_user(&mut self, user: &str) -> bool;
    /// Whether `host` is our domain.
    fn serves_host(&mut self, host: &str) -> bool;
    /// The digest check of a request claiming one of our users (as for any call).
    fn authenticate(&mut self, request: &Request, now: Instant) -> AuthVerdict;
    /// Whether the request came over an authenticated link from another node of the overlay
    /// (which already authenticated the caller; docs/CALLS.md).
    fn is_overlay_node_link(&mut self, _source: &Source) -> bool {
        false
    }
}

/// The reloadable part: dial plan and DIDs.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The dial plan.
    pub dialplan: DialPlan,
    /// E.164 number -> user.
    pub dids: HashMap<String, String>,
}

impl Plan {
    /// The plan of a configuration (and its DID file).
    pub fn load(loaded: &crate::config::Loaded) -> Result<Plan, String> {
        let names = loaded
            .config
            .trunks
            .iter()
            .map(|t| t.name.clone())
            .collect();
        let file = dids::read_dids(&dids::dids_path(loaded))?;
        Ok(Plan {
            dialplan: DialPlan::new(loaded.config.dialplan.clone(), names),
            dids: file.dids.into_iter().map(|d| (d.number, d.user)).collect(),
        })
    }
}

/// The shared, SIGHUP-replaceable plan.
pub type SharedPlan = Arc<Mutex<Plan>>;

/// The PSTN bridge inside the SIP application.
pub struct Bridge {
    domain: String,
    trunks: Vec<Trunk>,
    plan: SharedPlan,
    b2b: B2bua,
    regs: Vec<(usize, Option<RegClient>)>,
    local: Vec<(Transport, SocketAddr)>,
    reg_check: Option<Instant>,
    /// Records of calls refused before any trunk was tried (permissions, no route).
    refused: std::collections::VecDeque<CallRecord>,
}

fn lock(p: &SharedPlan) -> std::sync::MutexGuard<'_, Plan> {
    p.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The number in a Request-URI: the user part of a SIP URI, or a `tel:` number.
fn dialled(uri: &Uri) -> Option<String> {
    match uri {
        Uri::Sip(u) => u.user().map(str::to_owned),
        Uri::Other { scheme, opaque } if scheme.eq_ignore_ascii_case("tel") => {
            opaque.split(';').next().map(str::to_owned)
        }
        Uri::Other { .. } => None,
    }
}

impl Bridge {
    /// A bridge over `trunks` for SIP domain `domain`; `local` are our SIP addresses and
    /// `node_param` the `p2pnode` value of our Record-Route (this node's Node-ID).
    pub fn new(
        domain: String,
        trunks: Vec<Trunk>,
        plan: SharedPlan,
        local: Vec<(Transport, SocketAddr)>,
        node_param: String,
        failover: Duration,
    ) -> Bridge {
        let regs = trunks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.cfg.register)
            .map(|(i, _)| (i, None))
            .collect::<Vec<_>>();
        let reg_check = (!regs.is_empty()).then(Instant::now);
        Bridge {
            domain,
            trunks,
            plan,
            b2b: B2bua::new(B2buaConfig {
                local: local.clone(),
                attempt_timeout: failover,
                node_param: Some(node_param),
                ..B2buaConfig::default()
            }),
            regs,
            local,
            reg_check,
            refused: Default::default(),
        }
    }

    /// The next finished call record of a bridged call.
    pub fn poll_record(&mut self) -> Option<CallRecord> {
        self.b2b.poll_record().or_else(|| self.refused.pop_front())
    }

    /// Answers a refused outbound call and keeps a call record of it (toll fraud attempts
    /// belong in the call log).
    fn refuse(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        key: &sip::transaction::TransactionKey,
        request: &Request,
        status: u16,
        reason: &str,
    ) {
        let _ = ep.reply(now, key, status, reason);
        let uri =
            |n: Option<sip::message::NameAddr>| n.map(|n| n.uri.to_string()).unwrap_or_default();
        self.refused.push_back(CallRecord {
            call_id: request.headers.call_id().unwrap_or_default().to_owned(),
            caller: uri(request.headers.from()),
            callee: uri(request.headers.to()),
            start: now,
            answer: None,
            end: now,
            result: if status == 403 {
                "refused"
            } else {
                "not found"
            }
            .to_owned(),
            status,
            reason: reason.to_owned(),
        });
    }

    /// When [`Bridge::on_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.b2b.poll_timeout(), self.reg_check]
            .into_iter()
            .chain(
                self.regs
                    .iter()
                    .map(|(_, r)| r.as_ref().and_then(RegClient::poll_timeout)),
            )
            .flatten()
            .min()
    }

    /// Runs due timers.
    pub fn on_timeout(&mut self, ep: &mut Endpoint, now: Instant) {
        self.b2b.handle_timeout(ep, now);
        if self.reg_check.is_some_and(|t| t <= now) {
            self.reg_check = None;
            self.start_registrations(ep, now);
        }
        for (_, r) in &mut self.regs {
            if let Some(r) = r {
                r.handle_timeout(ep, now);
            }
        }
    }

    /// Creates the registration clients of trunks whose address is known by now.
    fn start_registrations(&mut self, ep: &mut Endpoint, now: Instant) {
        let mut waiting = false;
        for (i, slot) in &mut self.regs {
            if slot.is_some() {
                continue;
            }
            let Some(t) = self.trunks.get(*i) else {
                continue;
            };
            let Some(remote) = t.addresses().first().copied() else {
                waiting = true;
                continue;
            };
            let local = self
                .local
                .iter()
                .find(|(tp, _)| *tp == t.transport)
                .map(|(_, a)| *a);
            let Some(local) = local else {
                tracing::warn!(
                    "trunk {}: no local {} address to register from",
                    t.cfg.name,
                    t.cfg.transport
                );
                continue;
            };
            let domain = t.domain();
            let user = t.cfg.username.clone().unwrap_or_default();
            let (Some(registrar), Some(aor)) = (
                Uri::parse(&format!("sip:{domain}")),
                Uri::parse(&format!("sip:{user}@{domain}")),
            ) else {
                continue;
            };
            *slot = Some(RegClient::new(
                RegClientConfig {
                    name: t.cfg.name.clone(),
                    registrar,
                    aor,
                    dest: Destination {
                        transport: t.transport,
                        remote,
                        conn: None,
                    },
                    local,
                    expires: t.cfg.register_expires,
                    credentials: credentials(t),
                    retry: Duration::from_secs(30),
                },
                format!("{}-reg-{}", ep.new_tag(), t.cfg.name),
                ep.new_tag(),
                now,
            ));
        }
        if waiting {
            self.reg_check = Some(now + Duration::from_secs(1));
        }
    }

    /// Offers an endpoint event; returns it when the proxy should have it (possibly with
    /// a rewritten Request-URI: an inbound DID call).
    pub fn on_event(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        event: Event,
        svc: &mut dyn PbxServices,
    ) -> Option<Event> {
        if self.b2b.owns(&event) {
            return self.b2b.on_event(ep, now, event);
        }
        let mut event = Some(event);
        for (_, r) in &mut self.regs {
            if let (Some(r), Some(ev)) = (r.as_mut(), event.take()) {
                event = r.on_event(ep, now, ev);
            }
        }
        let event = event?;
        let Event::Request {
            key,
            request,
            source,
        } = event
        else {
            return Some(event);
        };
        let initial_invite = request.method == Method::Invite
            && request.headers.to().is_some_and(|t| t.tag().is_none())
            && self.routes_only_to_us(&request);
        let number = dialled(&request.uri);
        if !initial_invite || number.is_none() {
            return Some(Event::Request {
                key,
                request,
                source,
            });
        }
        let number = number.unwrap_or_default();
        let from_node = svc.is_overlay_node_link(&source);
        if number == GATEWAY_USER && !self.trunks.is_empty() && from_node {
            // Another node sends one of its users' calls out through our trunks: the number
            // is the To user; our own dial plan and permissions apply again.
            let to = request
                .headers
                .to()
                .and_then(|t| t.uri.as_sip().and_then(|u| u.user().map(str::to_owned)));
            let from = request
                .headers
                .from()
                .and_then(|f| f.uri.as_sip().and_then(|u| u.user().map(str::to_owned)));
            if let (Some(to), Some(from)) = (to, from) {
                return self.outbound(ep, now, key, request, source, &to, svc, Some(from));
            }
        }
        if from_node {
            // Another node routed this call to one of our registrations: the proxy's.
            return Some(Event::Request {
                key,
                request,
                source,
            });
        }
        if let Some(t) = self
            .trunks
            .iter()
            .find(|t| t.allows_source(source.remote.ip()))
        {
            let name = t.cfg.name.clone();
            return self.inbound(ep, now, key, request, source, &name, &number);
        }
        let local_user = request
            .uri
            .as_sip()
            .is_some_and(|u| svc.serves_host(&u.host))
            && svc.has_user(&number);
        if local_user || !dialplan::is_number(&number) {
            return Some(Event::Request {
                key,
                request,
                source,
            });
        }
        let from_us = request
            .headers
            .from()
            .and_then(|f| f.uri.as_sip().map(|u| u.host.clone()))
            .is_some_and(|h| svc.serves_host(&h));
        if let Some(user) = self.did_user(&number).filter(|_| from_us) {
            // A colleague's DID dialled by one of our users: an internal call (the proxy
            // authenticates the caller), not a trip through the carrier.
            let call_id = request.headers.call_id().unwrap_or_default().to_owned();
            if let Some(uri) = Uri::parse(&format!("sip:{user}@{}", self.domain)) {
                tracing::info!(%call_id, "{number} is the DID of {user}: calling {uri} directly");
                let mut request = request;
                request.uri = uri;
                return Some(Event::Request {
                    key,
                    request,
                    source,
                });
            }
        }
        self.outbound(ep, now, key, request, source, &number, svc, None)
    }

    /// Whether every Route value of the request names this node (a phone configured with
    /// the node as outbound proxy): such a request is ours to bridge.
    fn routes_only_to_us(&self, request: &Request) -> bool {
        request
            .headers
            .get_all("Route")
            .flat_map(|v| sip::message::split_commas(v).unwrap_or_default())
            .all(|r| {
                sip::message::NameAddr::parse(r)
                    .and_then(|n| n.uri.as_sip().and_then(sip::proxy::uri_destination))
                    .is_some_and(|d| {
                        self.local
                            .iter()
                            .any(|(_, a)| a.ip() == d.remote.ip() && a.port() == d.remote.port())
                    })
            })
    }

    /// The user a number (as dialled inside the office) is the DID of.
    fn did_user(&self, number: &str) -> Option<String> {
        let plan = lock(&self.plan);
        let e164 = plan.dialplan.normalize(number)?;
        plan.dids.get(&e164).cloned()
    }

    #[allow(clippy::too_many_arguments)]
    fn inbound(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        key: sip::transaction::TransactionKey,
        mut request: Request,
        source: Source,
        trunk: &str,
        number: &str,
    ) -> Option<Event> {
        let plan = lock(&self.plan).clone();
        // The DID is the Request-URI user; carriers that send calls to a registered Contact
        // put it in To instead, so the To user is tried next.
        let to_user = request
            .headers
            .to()
            .and_then(|t| t.uri.as_sip().and_then(|u| u.user().map(str::to_owned)));
        let mut candidates = Vec::new();
        for n in std::iter::once(number.to_owned()).chain(to_user) {
            if !dialplan::is_number(&n) {
                continue;
            }
            let raw = dialplan::strip_visual(&n);
            if let Some(e) = plan.dialplan.normalize(&raw) {
                candidates.push(e);
            }
            if !raw.starts_with('+') {
                candidates.push(format!("+{raw}"));
            }
            candidates.push(raw);
        }
        let user = candidates
            .iter()
            .find_map(|c| plan.dids.get(c).cloned())
            .or_else(|| {
                let d = &plan.dialplan.config().unknown_did;
                (!d.is_empty()).then(|| d.clone())
            });
        let call_id = request.headers.call_id().unwrap_or_default().to_owned();
        let Some(user) = user else {
            tracing::info!(%call_id, "inbound call through trunk {trunk} to {number}: no such DID and no `unknown_did`, answering 404");
            let _ = ep.reply(now, &key, 404, "Not Found");
            return None;
        };
        let Some(uri) = Uri::parse(&format!("sip:{user}@{}", self.domain)) else {
            let _ = ep.reply(now, &key, 404, "Not Found");
            return None;
        };
        tracing::info!(%call_id, "inbound call through trunk {trunk} from {} to {number}: ringing {user}@{}", source.remote, self.domain);
        request.uri = uri;
        Some(Event::Request {
            key,
            request,
            source,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn outbound(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        key: sip::transaction::TransactionKey,
        request: Request,
        source: Source,
        number: &str,
        svc: &mut dyn PbxServices,
        trusted_user: Option<String>,
    ) -> Option<Event> {
        let call_id = request.headers.call_id().unwrap_or_default().to_owned();
        let from = request.headers.from();
        let ours = from
            .as_ref()
            .and_then(|f| f.uri.as_sip().map(|u| u.host.clone()))
            .is_some_and(|h| svc.serves_host(&h));
        if !ours {
            tracing::warn!(%call_id,
                "refused a call to {number} from {} ({}): not one of our users and not an allowed source of any trunk, answering 403",
                source.remote,
                from.map(|f| f.uri.to_string()).unwrap_or_default()
            );
            self.refuse(ep, now, &key, &request, 403, "Forbidden");
            return None;
        }
        {
            let plan = lock(&self.plan);
            let emergency = plan
                .dialplan
                .config()
                .emergency
                .contains(&dialplan::strip_visual(number));
            if !emergency && plan.dialplan.normalize(number).is_none() {
                // Not a number the dial plan can place (an extension-like string): the
                // proxy answers it like any unknown user.
                drop(plan);
                return Some(Event::Request {
                    key,
                    request,
                    source,
                });
            }
        }
        if self.trunks.is_empty() {
            if !request.headers.contains("Proxy-Authorization")
                && let AuthVerdict::Reject {
                    status,
                    reason,
                    headers,
                } = svc.authenticate(&request, now)
            {
                // Challenge first; the proxy checks the answer once the call goes on.
                if let Some(mut r) = ep.make_response(&key, status, &reason) {
                    for (n, v) in headers {
                        r.headers.push(&n, v);
                    }
                    let _ = ep.respond(now, &key, r);
                }
                return None;
            }
            return self.route_to_overlay_gateway(ep, now, key, request, source, number);
        }
        let verdict = match trusted_user {
            Some(u) => AuthVerdict::Authenticated(u),
            None => svc.authenticate(&request, now),
        };
        let user = match verdict {
            AuthVerdict::Authenticated(u) => u,
            AuthVerdict::NotRequired => {
                let _ = ep.reply(now, &key, 403, "Forbidden");
                return None;
            }
            AuthVerdict::Reject {
                status,
                reason,
                headers,
            } => {
                if status != 407 {
                    tracing::info!(%call_id, "call to {number} from {} refused with {status} {reason}", source.remote);
                }
                if let Some(mut r) = ep.make_response(&key, status, &reason) {
                    for (n, v) in headers {
                        r.headers.push(&n, v);
                    }
                    let _ = ep.respond(now, &key, r);
                }
                return None;
            }
        };
        let plan = lock(&self.plan).clone();
        let (number, class, trunks) = match plan.dialplan.decide(&user, number) {
            Decision::Route {
                number,
                class,
                trunks,
            } => (number, class, trunks),
            Decision::Forbidden { number, class } => {
                tracing::warn!(%call_id, "user {user} may not call {} number {number} (dial plan permissions): answering 403", class.as_str());
                self.refuse(ep, now, &key, &request, 403, "Forbidden");
                return None;
            }
            Decision::NoRoute { number } => {
                tracing::info!(%call_id, "no dial plan route for {number} (from {user}): answering 404");
                self.refuse(ep, now, &key, &request, 404, "Not Found");
                return None;
            }
        };
        // The caller's own DID is its caller ID at the carrier when it has one.
        let own_did = plan
            .dids
            .iter()
            .filter(|(_, u)| **u == user)
            .map(|(n, _)| n.clone())
            .min();
        let display = request.headers.from().and_then(|f| f.display.clone());
        let mut targets = Vec::new();
        for name in &trunks {
            let Some(t) = self.trunks.iter().find(|t| &t.cfg.name == name) else {
                continue;
            };
            let addrs = t.addresses();
            if addrs.is_empty() {
                tracing::warn!(%call_id, "trunk {name} has no address yet (DNS): skipped");
            }
            let domain = t.domain();
            let caller = own_did
                .clone()
                .or_else(|| t.cfg.caller_id.clone())
                .or_else(|| t.cfg.username.clone())
                .unwrap_or_else(|| user.clone());
            for a in addrs {
                let (Some(uri), Some(from), Some(to)) = (
                    Uri::parse(&format!("sip:{number}@{domain}")),
                    Uri::parse(&format!("sip:{caller}@{domain}")),
                    Uri::parse(&format!("sip:{number}@{domain}")),
                ) else {
                    continue;
                };
                targets.push(FarTarget {
                    name: name.clone(),
                    uri,
                    from,
                    from_display: display.clone(),
                    to,
                    dest: Destination {
                        transport: t.transport,
                        remote: a,
                        conn: None,
                    },
                    credentials: credentials(t),
                });
            }
        }
        tracing::info!(%call_id, "{user} calls {} number {number}: trunks {}", class.as_str(), trunks.join(", "));
        if let Err(e) = self
            .b2b
            .start(ep, now, key.clone(), request, source, targets)
        {
            tracing::warn!(%call_id, "cannot bridge the call: {e}");
            let _ = ep.reply(now, &key, 500, "Server Internal Error");
        }
        None
    }

    /// A node without trunks: after the digest challenge, the caller's permission for the
    /// number is checked here (for the user its From claims; the proxy then verifies the
    /// credentials of exactly that user, once), and the
    /// call goes to `pstn-gateway@<domain>`, which the overlay resolves to the nodes that
    /// bridge trunks (docs/PSTN.md). The To header keeps the dialled number.
    fn route_to_overlay_gateway(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        key: sip::transaction::TransactionKey,
        mut request: Request,
        source: Source,
        number: &str,
    ) -> Option<Event> {
        let call_id = request.headers.call_id().unwrap_or_default().to_owned();
        let claimed = request
            .headers
            .from()
            .and_then(|f| f.uri.as_sip().and_then(|u| u.user().map(str::to_owned)))
            .unwrap_or_default();
        let plan = lock(&self.plan).clone();
        let dp = &plan.dialplan;
        let raw = dialplan::strip_visual(number);
        let (shown, class) = if dp.config().emergency.contains(&raw) {
            (raw, dialplan::Class::Emergency)
        } else {
            match dp.normalize(number) {
                Some(n) => {
                    let c = dp.classify(&n);
                    (n, c)
                }
                // Not a number the dial plan knows: the proxy answers it (404).
                None => {
                    return Some(Event::Request {
                        key,
                        request,
                        source,
                    });
                }
            }
        };
        if !dp.allowed(&claimed, class) {
            tracing::warn!(%call_id, "user {claimed} may not call {} number {shown} (dial plan permissions): answering 403", class.as_str());
            self.refuse(ep, now, &key, &request, 403, "Forbidden");
            return None;
        }
        let Some(uri) = Uri::parse(&format!("sip:{GATEWAY_USER}@{}", self.domain)) else {
            return Some(Event::Request {
                key,
                request,
                source,
            });
        };
        tracing::info!(%call_id, "{claimed} calls {} number {shown}: no trunk on this node, routing to {uri}", class.as_str());
        request.uri = uri;
        Some(Event::Request {
            key,
            request,
            source,
        })
    }
}

fn credentials(t: &Trunk) -> Option<DigestCredentials> {
    Some(DigestCredentials {
        username: t.cfg.username.clone()?,
        password: t.cfg.password.clone()?,
    })
}

/// Sets the bridge up for a node: trunks (resolved in the background), the plan, carrier
/// registrations, and the overlay entries. A node without trunks still classifies calls to
/// numbers and sends the permitted ones to the overlay's gateways.
pub fn start(
    loaded: &crate::config::Loaded,
    proxy: &sip::proxy::ProxyConfig,
    overlay: &crate::overlay::OverlayHandle,
) -> Result<Option<(Bridge, SharedPlan)>, String> {
    let c = &loaded.config;
    let plan = Plan::load(loaded)?;
    let trunks: Vec<Trunk> = c.trunks.iter().cloned().map(Trunk::new).collect();
    trunk::spawn_resolver(trunks.clone(), Duration::from_secs(300));
    for t in &trunks {
        tracing::info!(
            "trunk {}: {} over {}{}{}",
            t.cfg.name,
            t.cfg.address,
            t.cfg.transport,
            if t.cfg.username.is_some() {
                ", with credentials"
            } else {
                ""
            },
            if t.cfg.register {
                ", registering with the carrier"
            } else {
                ""
            }
        );
    }
    tracing::info!(
        "PSTN bridge: {} trunk(s), {} DID(s)",
        trunks.len(),
        plan.dids.len()
    );
    let shared: SharedPlan = Arc::new(Mutex::new(plan));
    advertise::spawn_refresh(
        overlay.clone(),
        c.sip.domain.clone(),
        shared.clone(),
        !trunks.is_empty(),
    );
    let bridge = Bridge::new(
        c.sip.domain.clone(),
        trunks,
        shared.clone(),
        proxy.local.clone(),
        proxy.node_param.clone(),
        Duration::from_millis(c.dialplan.failover_timeout_ms),
    );
    Ok(Some((bridge, shared)))
}

/// SIGHUP: rereads the dial plan from the configuration file and the DID file; keeps the
/// old plan when either has a problem. Trunk changes need a restart.
pub fn reload(
    loaded: &crate::config::Loaded,
    plan: &SharedPlan,
    overlay: &crate::overlay::OverlayHandle,
) {
    let fresh = match &loaded.source {
        crate::config::Source::File(p) => crate::config::load(Some(p)).map_err(|e| e.to_string()),
        crate::config::Source::Embedded => Ok(loaded.clone()),
    };
    let new_plan = fresh.and_then(|l| {
        if l.config.trunks != loaded.config.trunks {
            tracing::warn!("SIGHUP: trunk changes take effect at the next start");
        }
        Plan::load(&l)
    });
    match new_plan {
        Ok(p) => {
            tracing::info!("SIGHUP: reloaded the dial plan and {} DID(s)", p.dids.len());
            let dids = p.dids.iter().map(|(a, b)| (a.clone(), b.clone())).collect();
            *lock(plan) = p;
            advertise::store_all(
                overlay.clone(),
                loaded.config.sip.domain.clone(),
                dids,
                !loaded.config.trunks.is_empty(),
            );
        }
        Err(e) => tracing::warn!("SIGHUP: dial plan not reloaded, keeping the old one: {e}"),
    }
}
