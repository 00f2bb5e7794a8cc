//! The gateway between phones and the overlay. For now: REGISTER goes to the sans-IO
//! [`Registrar`]; every other request keeps the stand-in answer (501) until the proxy
//! exists. Binding changes are logged; storing them in the overlay (RFC 7904) comes later.

pub mod users;

use crate::sip_transport::SipApp;
use sip::message::Method;
use sip::registrar::{Outcome, RegisterContext, Registrar, RegistrarEvent, RemovalReason, User};
use sip::{Endpoint, Event, Source, Transport};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::{Notify, watch};

/// The registrar shared between the SIP driver and the expiry task.
#[derive(Clone)]
pub struct Shared {
    registrar: Arc<Mutex<Registrar>>,
    wake: Arc<Notify>,
}

impl Shared {
    /// Wraps a registrar.
    pub fn new(registrar: Registrar) -> Self {
        Shared {
            registrar: Arc::new(Mutex::new(registrar)),
            wake: Arc::new(Notify::new()),
        }
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
}

impl Gateway {
    /// A gateway over the shared registrar.
    pub fn new(shared: Shared) -> Self {
        Gateway { shared }
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

fn log_events(reg: &mut Registrar) {
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
            log_events(&mut reg);
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
                    tracing::debug!("no proxy yet, answering {} with 501", request.method);
                    if let Err(e) = endpoint.reply(now, &key, 501, "Not Implemented") {
                        tracing::warn!("could not answer {}: {e}", request.method);
                    }
                }
            }
            Event::Dropped { remote, reason } => {
                tracing::debug!("dropped SIP message from {remote}: {reason}");
            }
            other => tracing::debug!(?other, "SIP event ignored"),
        }
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
                log_events(&mut reg);
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
