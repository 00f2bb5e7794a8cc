//! REGISTER -> Store (RFC 7904 3.3): every binding change of an AOR becomes a Store of a
//! SIP-REGISTRATION (Kind 1, DICTIONARY) entry at Resource-ID = H(AOR without scheme),
//! dictionary key = this node's Node-ID (raw 16 bytes), value = a `sip_registration_route`
//! whose destination list names this node. Only the Node-ID and the AOR enter the overlay;
//! the phone's Contact stays in the local registrar. The last binding gone stores
//! `exists = false` (a delete, RFC 6940 6.2). A failed Store is retried with backoff while
//! it is still the newest state of that AOR.

use crate::overlay::OverlayHandle;
use reload::codec::{Codec, Opaque};
use reload::node::Outcome;
use reload::storage::{DataValue, KIND_SIP_REGISTRATION, ValueKey};
use reload::wire::sip::SipRegistration;
use reload::wire::{Destination, NodeId, ResourceId};
use sip::registrar::Binding;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lifetime of a delete (`exists = false`) entry, seconds.
const DELETE_LIFETIME: u32 = 300;
/// First retry delay after a failed Store.
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// Longest retry delay.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// What is known about one AOR's registration (for `/status`).
#[derive(Debug, Clone)]
struct Entry {
    contacts: Vec<String>,
    expires_at: Option<Instant>,
    resource: ResourceId,
    generation: u64,
    stored: bool,
    replicas: Vec<NodeId>,
    last_error: Option<String>,
}

/// Publishes the registrar's bindings into the overlay.
#[derive(Clone)]
pub struct Publisher {
    overlay: OverlayHandle,
    state: Arc<Mutex<HashMap<String, Entry>>>,
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    // calls: call forwarding (AOR -> AOR) set at this node; stored as `uri` entries.
    forwards: Arc<Mutex<HashMap<String, String>>>,
}

/// Lifetime of a forwarding (`sip_registration_uri`) entry, seconds; refreshed at half.
pub const FORWARD_LIFETIME: u32 = 3600;

/// The encoded `uri` value forwarding to `target` (an AOR, `sip:` URI).
pub fn uri_value(target: &str) -> Vec<u8> {
    SipRegistration::Uri(Opaque::from(target.as_bytes().to_vec()))
        .to_bytes()
        .unwrap_or_default()
}

/// The AOR without its scheme (`sip:1001@p2psip.local` -> `1001@p2psip.local`): the name
/// whose hash is the Resource-ID (RFC 7904 3.3).
pub fn resource_name(aor: &str) -> &str {
    aor.strip_prefix("sips:")
        .or_else(|| aor.strip_prefix("sip:"))
        .unwrap_or(aor)
}

/// The Resource-ID of an AOR.
pub fn resource_of(aor: &str) -> ResourceId {
    ResourceId::hash(resource_name(aor).as_bytes())
}

/// The `contact_prefs` (RFC 3840 feature predicate) our route entries carry.
pub const CONTACT_PREFS: &str = "(sip.schemes=SIP)";

/// The encoded route value naming `node`.
pub fn route_value(node: NodeId) -> Vec<u8> {
    let reg = SipRegistration::Route {
        contact_prefs: Opaque::from(CONTACT_PREFS.as_bytes().to_vec()),
        destination_list: vec![Destination::Node(node)],
    };
    // ok: a 16-byte Node-ID and a short predicate always fit their u16 prefixes.
    reg.to_bytes().unwrap_or_default()
}

impl Publisher {
    /// A publisher storing through `overlay`, signing as this node: the registrar role of its
    /// certificate lets it store its phones' registrations (docs/SECURITY.md).
    pub fn new(overlay: OverlayHandle) -> Self {
        Publisher {
            overlay,
            state: Arc::new(Mutex::new(HashMap::new())),
            locks: Arc::new(Mutex::new(HashMap::new())),
            forwards: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A binding change of `aor` (every current binding; empty: none left). Must be called
    /// inside the tokio runtime; the Store runs in its own task.
    pub fn binding_changed(&self, aor: &str, bindings: &[Binding], now: Instant) {
        let resource = resource_of(aor);
        let expires_at = bindings.iter().map(|b| b.expires_at).max();
        let contacts = bindings.iter().map(|b| b.contact.uri.to_string()).collect();
        let generation = {
            let mut st = self.state();
            let e = st.entry(aor.to_owned()).or_insert_with(|| Entry {
                contacts: Vec::new(),
                expires_at: None,
                resource: resource.clone(),
                generation: 0,
                stored: false,
                replicas: Vec::new(),
                last_error: None,
            });
            e.generation += 1;
            e.contacts = contacts;
            e.expires_at = expires_at;
            e.stored = false;
            e.generation
        };
        let lifetime = expires_at
            .map(|t| t.saturating_duration_since(now).as_secs().max(1) as u32)
            .unwrap_or(DELETE_LIFETIME);
        // calls: a forward set here replaces this node's route entry for the AOR.
        if let Some(t) = self.forward_of(aor) {
            let me = self.clone();
            let aor = aor.to_owned();
            tokio::spawn(async move {
                me.store_until_done(
                    aor,
                    resource,
                    generation,
                    DataValue {
                        exists: true,
                        value: uri_value(&t),
                    },
                    FORWARD_LIFETIME,
                )
                .await;
            });
            return;
        }
        let value = match expires_at {
            Some(_) => DataValue {
                exists: true,
                value: route_value(self.overlay.node_id),
            },
            None => DataValue {
                exists: false,
                value: Vec::new(),
            },
        };
        let me = self.clone();
        let aor = aor.to_owned();
        tokio::spawn(async move {
            me.store_until_done(aor, resource, generation, value, lifetime)
                .await;
        });
    }

    fn forward_of(&self, aor: &str) -> Option<String> {
        self.forwards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(aor)
            .cloned()
    }

    /// calls: forwards `aor` (`sip:user@domain`) to `target` (an AOR), or removes the
    /// forward (`None`): stores this node's SIP-REGISTRATION entry for the AOR as a
    /// `sip_registration_uri` (RFC 7904 3.2), refreshed while it is set. Removing it
    /// stores the route entry again when the AOR has bindings here, else a delete.
    pub fn set_forward(&self, aor: &str, target: Option<&str>, now: Instant) {
        {
            let mut f = self
                .forwards
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match target {
                Some(t) => f.insert(aor.to_owned(), t.to_owned()),
                None => f.remove(aor),
            };
        }
        match target {
            Some(t) => {
                tracing::info!(
                    "{} is forwarded to {}",
                    resource_name(aor),
                    resource_name(t)
                );
                self.binding_changed_keep(aor, now);
                // Refresh before the lifetime ends, while the same forward is set.
                let me = self.clone();
                let (aor, t) = (aor.to_owned(), t.to_owned());
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_secs(u64::from(FORWARD_LIFETIME / 2)))
                            .await;
                        if me.forward_of(&aor).as_deref() != Some(t.as_str()) {
                            return;
                        }
                        me.binding_changed_keep(&aor, Instant::now());
                    }
                });
            }
            None => {
                tracing::info!("forwarding of {} removed", resource_name(aor));
                self.binding_changed_keep(aor, now);
            }
        }
    }

    /// Re-stores `aor`'s entry from what is known (forward, or current bindings' expiry).
    fn binding_changed_keep(&self, aor: &str, now: Instant) {
        let resource = resource_of(aor);
        let (generation, expires_at) = {
            let mut st = self.state();
            let e = st.entry(aor.to_owned()).or_insert_with(|| Entry {
                contacts: Vec::new(),
                expires_at: None,
                resource: resource.clone(),
                generation: 0,
                stored: false,
                replicas: Vec::new(),
                last_error: None,
            });
            e.generation += 1;
            e.stored = false;
            (e.generation, e.expires_at.filter(|t| *t > now))
        };
        let (value, lifetime) = match (self.forward_of(aor), expires_at) {
            (Some(t), _) => (
                DataValue {
                    exists: true,
                    value: uri_value(&t),
                },
                FORWARD_LIFETIME,
            ),
            (None, Some(t)) => (
                DataValue {
                    exists: true,
                    value: route_value(self.overlay.node_id),
                },
                t.saturating_duration_since(now).as_secs().max(1) as u32,
            ),
            (None, None) => (
                DataValue {
                    exists: false,
                    value: Vec::new(),
                },
                DELETE_LIFETIME,
            ),
        };
        let me = self.clone();
        let aor = aor.to_owned();
        tokio::spawn(async move {
            me.store_until_done(aor, resource, generation, value, lifetime)
                .await;
        });
    }

    fn is_current(&self, aor: &str, generation: u64) -> bool {
        self.state()
            .get(aor)
            .is_some_and(|e| e.generation == generation)
    }

    async fn store_until_done(
        &self,
        aor: String,
        resource: ResourceId,
        generation: u64,
        value: DataValue,
        lifetime: u32,
    ) {
        let lock = {
            let mut l = self
                .locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            l.entry(aor.clone()).or_default().clone()
        };
        // One Store per AOR at a time, so an older state never lands after a newer one.
        let _serial = lock.lock().await;
        let name = resource_name(&aor).to_owned();
        let what = if value.exists && value.value.first() == Some(&1) {
            "forwarding"
        } else if value.exists {
            "registration"
        } else {
            "removal of the registration"
        };
        let mut delay = RETRY_FIRST;
        loop {
            if !self.is_current(&aor, generation) {
                return; // a newer binding state superseded this one
            }
            let r = self
                .overlay
                .store(
                    resource.clone(),
                    KIND_SIP_REGISTRATION,
                    vec![(
                        ValueKey::Key(self.overlay.node_id.to_array().to_vec()),
                        value.clone(),
                        lifetime,
                    )],
                )
                .await;
            let err = match r {
                Ok(Outcome::Stored(k)) => {
                    let replicas: Vec<NodeId> =
                        k.iter().flat_map(|(_, _, r)| r.iter().copied()).collect();
                    tracing::info!(
                        "stored {what} of {name} in the overlay at resource {}, lifetime {lifetime} s, replicas {}",
                        hex::encode(&resource.0),
                        if replicas.is_empty() {
                            "none".to_owned()
                        } else {
                            replicas
                                .iter()
                                .map(|n| hex::encode(n.to_array()))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    );
                    let mut st = self.state();
                    if !value.exists {
                        if st.get(&aor).is_some_and(|e| e.generation == generation) {
                            st.remove(&aor);
                        }
                    } else if let Some(e) = st.get_mut(&aor).filter(|e| e.generation == generation)
                    {
                        e.stored = true;
                        e.replicas = replicas;
                        e.last_error = None;
                    }
                    return;
                }
                Ok(other) => format!("unexpected answer {other:?}"),
                Err(crate::overlay::HandleError::Request(reload::node::RequestError::Error {
                    code: 2,
                    ..
                })) => {
                    // Error_Forbidden (RFC 6940 6.3.3.1): a registration for another user
                    // needs the registrar role in our certificate; retrying cannot help.
                    let err = format!(
                        "Error_Forbidden: the overlay only accepts a SIP-REGISTRATION for {name} \
                         from a node whose certificate carries the registrar role (or is for user \
                         {name}); this node's certificate is for user {} — enroll it again with \
                         the overlay's enrollment server",
                        self.overlay.user
                    );
                    tracing::warn!("could not store {what} of {name} in the overlay: {err}");
                    if let Some(e) = self
                        .state()
                        .get_mut(&aor)
                        .filter(|e| e.generation == generation)
                    {
                        e.last_error = Some(err);
                    }
                    return;
                }
                Err(e) => e.to_string(),
            };
            tracing::warn!(
                "could not store {what} of {name} in the overlay ({err}); trying again in {} s",
                delay.as_secs()
            );
            if let Some(e) = self
                .state()
                .get_mut(&aor)
                .filter(|e| e.generation == generation)
            {
                e.last_error = Some(err);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(RETRY_MAX);
        }
    }

    /// The registrations as JSON for `/status`: AOR, contacts, seconds to expiry,
    /// Resource-ID, whether the overlay holds them, replicas.
    pub fn status(&self) -> serde_json::Value {
        let now = Instant::now();
        let st = self.state();
        let mut aors: Vec<&String> = st.keys().collect();
        aors.sort();
        serde_json::Value::Array(
            aors.into_iter()
                .filter_map(|a| st.get(a).map(|e| (a, e)))
                .map(|(aor, e)| {
                    serde_json::json!({
                        "aor": aor,
                        "contacts": e.contacts,
                        "expires_in": e.expires_at.map(|t| t.saturating_duration_since(now).as_secs()),
                        "resource_id": hex::encode(&e.resource.0),
                        "stored": e.stored,
                        "replicas": e.replicas.iter().map(|n| hex::encode(n.to_array())).collect::<Vec<_>>(),
                        "last_error": e.last_error,
                    })
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_is_hash_of_aor_without_scheme() {
        assert_eq!(
            resource_of("sip:1001@p2psip.local"),
            ResourceId::hash(b"1001@p2psip.local")
        );
        assert_eq!(resource_name("1001@x"), "1001@x");
    }

    #[test]
    fn route_value_names_node() {
        let v = route_value(NodeId(7));
        let r = SipRegistration::from_bytes(&v).unwrap();
        assert_eq!(
            r,
            SipRegistration::Route {
                contact_prefs: Opaque::from(CONTACT_PREFS.as_bytes().to_vec()),
                destination_list: vec![Destination::Node(NodeId(7))],
            }
        );
    }
}
