//! The Certificate Store Usage (RFC 6940 section 8) in the engine: a joined node stores its
//! certificate at CERTIFICATE_BY_NODE (Resource-ID = H(Node-ID)) and CERTIFICATE_BY_USER
//! (H(user name)) and refreshes it before the lifetime runs out; a message whose signer's
//! certificate is neither in its SecurityBlock nor cached (RFC 6940 6.3.4: certificates may be
//! left out when the receiver can get them) is held while the certificate is fetched from the
//! overlay, verified (the provider checks it against the overlay root), cached, and the message
//! is then processed, or dropped after [`HOLD_MS`].

use super::msg::{Body, Dest, Header};
use super::{Node, Purpose, Time, Timer};
use crate::crypto::{SignatureParts, Signer};
use crate::storage::{
    DataValue, KIND_CERTIFICATE_BY_NODE, KIND_CERTIFICATE_BY_USER, KindId, Selector, StoreKind,
    StoredValue, ValueKey,
};
use crate::wire::{NodeId, ResourceId};
use std::collections::{HashMap, VecDeque};

/// Lifetime of our stored certificates, in seconds.
pub const CERT_LIFETIME_S: u32 = 86_400;
/// We store our certificates again after this long (half the lifetime).
pub const CERT_REFRESH_MS: u64 = CERT_LIFETIME_S as u64 * 1000 / 2;
/// How long a message waits for its signer's certificate.
pub const HOLD_MS: u64 = 15_000;
/// Most messages held at once (more are dropped).
pub const HELD_MAX: usize = 256;
/// Most certificates cached (oldest evicted first).
pub const CACHE_MAX: usize = 1024;
/// A fetch that found nothing is tried again after this long while messages still wait
/// (the certificate may be on its way to a peer that just took over the range).
pub const RETRY_MS: u64 = 2_000;
/// A certificate that could not be fetched is not asked for again for this long.
pub const NEGATIVE_MS: u64 = 30_000;

/// A message waiting for a certificate.
#[derive(Debug)]
struct Held {
    hash: Vec<u8>,
    deadline: Time,
    header: Header,
    rest: Vec<u8>,
    from: Option<NodeId>,
    origin: NodeId,
}

/// Certificate cache, held messages and fetches under way.
#[derive(Debug, Default)]
pub struct CertStore {
    /// identity hash (H(cert) or H(NodeId || cert)) -> DER certificate.
    cache: HashMap<Vec<u8>, Vec<u8>>,
    order: VecDeque<Vec<u8>>,
    held: Vec<Held>,
    fetching: HashMap<Vec<u8>, Time>,
    failed: HashMap<Vec<u8>, Time>,
    refresh_armed: bool,
    /// Certificate Stores sent and not yet answered successfully.
    publishing: usize,
    /// Fetches to send again: (when, hash, Node-ID whose certificate it is).
    retries: Vec<(Time, Vec<u8>, NodeId)>,
}

impl CertStore {
    fn insert(&mut self, hash: Vec<u8>, der: Vec<u8>) {
        if self.cache.insert(hash.clone(), der).is_none() {
            self.order.push_back(hash);
            while self.order.len() > CACHE_MAX {
                if let Some(old) = self.order.pop_front() {
                    self.cache.remove(&old);
                }
            }
        }
    }

    /// Certificates cached.
    #[must_use]
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Messages waiting for a certificate.
    #[must_use]
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

impl Node {
    /// The certificates to verify `sig` with: those carried, plus the cached one it names.
    pub(super) fn certs_with_cached(
        &self,
        sig: &SignatureParts,
        carried: &[Vec<u8>],
    ) -> Vec<Vec<u8>> {
        let mut v = carried.to_vec();
        if let Some(c) = self.cert_store.cache.get(&sig.cert_hash)
            && !v.contains(c)
        {
            v.push(c.clone());
        }
        v
    }

    /// True when `sig` names a certificate we have no copy of: nothing carried, nothing cached,
    /// unknown to the provider (a carried certificate that does not match is a bad signature).
    pub(super) fn cert_missing(&self, sig: &SignatureParts, carried: &[Vec<u8>]) -> bool {
        carried.is_empty()
            && !sig.cert_hash.is_empty()
            && !self.cert_store.cache.contains_key(&sig.cert_hash)
            && !self.crypto.knows_certificate(&sig.cert_hash)
    }

    /// Holds a message whose signer's certificate is missing and fetches it from
    /// CERTIFICATE_BY_NODE at H(`origin`). False when it cannot be held (then it is dropped).
    pub(super) fn hold_for_cert(
        &mut self,
        now: Time,
        sig: &SignatureParts,
        origin: Option<NodeId>,
        header: Header,
        rest: Vec<u8>,
        from: Option<NodeId>,
    ) -> bool {
        let Some(origin) = origin.filter(|o| *o != NodeId::INVALID && *o != self.me) else {
            return false;
        };
        let hash = sig.cert_hash.clone();
        if self.cert_store.held.len() >= HELD_MAX
            || self
                .cert_store
                .failed
                .get(&hash)
                .is_some_and(|t| now.0 < t.0.saturating_add(NEGATIVE_MS))
        {
            return false;
        }
        self.cert_store.held.push(Held {
            hash: hash.clone(),
            deadline: now.plus_ms(HOLD_MS),
            header,
            rest,
            from,
            origin,
        });
        self.stats.cert_held += 1;
        self.arm(now.plus_ms(HOLD_MS), Timer::CertHold);
        if !self.cert_store.fetching.contains_key(&hash) {
            self.send_cert_fetch(now, hash, origin);
        }
        true
    }

    /// Fetches the certificate named `hash` from CERTIFICATE_BY_NODE at H(`origin`).
    fn send_cert_fetch(&mut self, now: Time, hash: Vec<u8>, origin: NodeId) {
        {
            self.cert_store.fetching.insert(hash.clone(), now);
            let resource = ResourceId::hash(&origin.to_array());
            let body = Body::FetchReq {
                resource: resource.clone(),
                specifiers: vec![(
                    KIND_CERTIFICATE_BY_NODE,
                    0,
                    Selector::Array(vec![(0, crate::storage::ARRAY_APPEND)]),
                )],
            };
            self.stats.cert_fetches += 1;
            self.send_request(
                now,
                vec![Dest::Resource(resource)],
                &body,
                Purpose::CertFetch(hash),
            );
        }
    }

    /// The answer to a certificate fetch for `hash`: verify each certificate value (its
    /// StoredData signature, by the certificate itself, against the overlay root), cache the
    /// one `hash` names and process the messages that waited for it.
    pub(super) fn on_cert_fetch(
        &mut self,
        now: Time,
        hash: Vec<u8>,
        resource: ResourceId,
        body: Option<Body>,
    ) {
        self.cert_store.fetching.remove(&hash);
        let mut found = false;
        if let Some(Body::FetchAns(kinds)) = body {
            for k in kinds {
                for v in k.values {
                    if !v.value.exists {
                        continue;
                    }
                    let der = v.value.value.clone();
                    let Some(signer) = self.verify_cert_value(&resource, k.kind, &v) else {
                        continue;
                    };
                    for h in self.identity_hashes(&v.signature, &der, &signer) {
                        found |= h == hash;
                        self.cert_store.insert(h, der.clone());
                    }
                }
            }
        }
        let (ready, rest): (Vec<Held>, Vec<Held>) = std::mem::take(&mut self.cert_store.held)
            .into_iter()
            .partition(|h| h.hash == hash);
        self.cert_store.held = rest;
        if !found && let Some(h) = ready.iter().find(|h| h.deadline > now.plus_ms(RETRY_MS)) {
            // Not there (yet): ask again shortly while the messages can still wait.
            let at = now.plus_ms(RETRY_MS);
            self.cert_store.retries.push((at, hash, h.origin));
            self.cert_store.held.extend(ready);
            self.arm(at, Timer::CertHold);
            return;
        }
        tracing::debug!(found, held = ready.len(), "certificate fetch answered");
        if !found {
            tracing::info!(
                "certificate {} not found in the overlay: {} held message(s) dropped",
                hex::encode(hash.get(..8).unwrap_or_default()),
                ready.len()
            );
            self.stats.cert_fetch_failed += 1;
            self.stats.dropped += ready.len() as u64;
            self.cert_store.failed.insert(hash, now);
            return;
        }
        for h in ready {
            self.deliver(now, h.header, h.rest, h.from);
        }
    }

    /// Verifies a certificate value: signed with the certificate it carries (or carried with
    /// it), by the node (NODE-MATCH) or user (USER-MATCH) the Resource-ID names.
    fn verify_cert_value(
        &self,
        resource: &ResourceId,
        kind: KindId,
        v: &StoredValue,
    ) -> Option<Signer> {
        let mut certs = v.certs.clone();
        certs.push(v.value.value.clone());
        let input = super::glue::stored_data_signature_input(resource, kind, v);
        let signer = self.crypto.verify(&input, &v.signature, &certs)?;
        let policy = self.cfg.kinds.get(kind).map(|d| d.policy)?;
        crate::storage::access_allowed(policy, resource, &v.key, &signer).then_some(signer)
    }

    /// The identity hashes under which `der` can be named: H(cert) and H(NodeId || cert) for
    /// each of its Node-IDs, with the signature's identity hash algorithm.
    fn identity_hashes(&self, sig: &SignatureParts, der: &[u8], signer: &Signer) -> Vec<Vec<u8>> {
        let alg = sig.identity_hash_alg;
        let mut out: Vec<Vec<u8>> = self.crypto.hash(alg, der).into_iter().collect();
        for n in &signer.node_ids {
            let mut input = n.to_array().to_vec();
            input.extend_from_slice(der);
            out.extend(self.crypto.hash(alg, &input));
        }
        out
    }

    /// Drops held messages whose time is up (their certificate never came).
    pub(super) fn expire_held(&mut self, now: Time) {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.cert_store.retries)
            .into_iter()
            .partition(|(t, _, _)| *t <= now);
        self.cert_store.retries = later;
        for (_, hash, origin) in due {
            if !self.cert_store.fetching.contains_key(&hash)
                && self.cert_store.held.iter().any(|h| h.hash == hash)
            {
                self.send_cert_fetch(now, hash, origin);
            }
        }
        let before = self.cert_store.held.len();
        self.cert_store.held.retain(|h| h.deadline > now);
        let gone = (before - self.cert_store.held.len()) as u64;
        self.stats.cert_hold_timeouts += gone;
        self.stats.dropped += gone;
        self.cert_store
            .failed
            .retain(|_, t| now.0 < t.0.saturating_add(NEGATIVE_MS));
    }

    /// Stores our certificate at CERTIFICATE_BY_NODE (H(Node-ID)) and, with a user name,
    /// CERTIFICATE_BY_USER (H(user)) (RFC 6940 8); called after joining and every
    /// [`CERT_REFRESH_MS`].
    pub(super) fn publish_certificates(&mut self, now: Time) {
        let Some(cert) = self.crypto.certificates().into_iter().next() else {
            return;
        };
        let mut targets = vec![(
            ResourceId::hash(&self.me.to_array()),
            KIND_CERTIFICATE_BY_NODE,
        )];
        if let Some(u) = self.crypto.user() {
            targets.push((ResourceId::hash(u.as_bytes()), KIND_CERTIFICATE_BY_USER));
        }
        let st = now.0.max(self.last_storage_time + 1);
        self.last_storage_time = st;
        self.cert_store.publishing = 0;
        for (resource, kind) in targets {
            if self.cfg.kinds.get(kind).is_none() {
                continue;
            }
            let mut v = StoredValue {
                key: ValueKey::Index(0),
                storage_time: st,
                lifetime: CERT_LIFETIME_S,
                value: DataValue {
                    exists: true,
                    value: cert.clone(),
                },
                signature: SignatureParts::default(),
                certs: Vec::new(),
            };
            self.sign_value(&resource, kind, &mut v);
            let body = Body::StoreReq {
                resource: resource.clone(),
                replica_number: 0,
                kinds: vec![StoreKind {
                    kind,
                    generation: 0,
                    values: vec![v],
                }],
            };
            self.cert_store.publishing += 1;
            self.send_request(
                now,
                vec![Dest::Resource(resource)],
                &body,
                Purpose::CertPublish,
            );
        }
        if !self.cert_store.refresh_armed {
            self.cert_store.refresh_armed = true;
            self.arm(now.plus_ms(CERT_REFRESH_MS), Timer::CertRefresh);
        }
    }

    /// A certificate Store was answered: once all are stored, requests may omit our
    /// certificate.
    pub(super) fn on_cert_published(&mut self, ok: bool) {
        if ok {
            self.cert_store.publishing = self.cert_store.publishing.saturating_sub(1);
            if self.cert_store.publishing == 0 {
                self.certs_published = true;
            }
        }
    }

    /// The refresh timer fired: store our certificates again.
    pub(super) fn refresh_certificates(&mut self, now: Time) {
        self.cert_store.refresh_armed = false;
        self.publish_certificates(now);
    }

    /// Certificates in the engine's cache (fetched from the overlay).
    #[must_use]
    pub fn certificates_cached(&self) -> usize {
        self.cert_store.cached()
    }

    /// Whether our certificates are stored in the overlay (then requests may leave them out
    /// under [`super::NodeConfig::omit_certificates`]).
    #[must_use]
    pub fn certificates_published(&self) -> bool {
        self.certs_published
    }

    /// Forgets every peer certificate verified or fetched so far (the engine's cache and the
    /// provider's): later messages whose signer's certificate is left out fetch it again.
    pub fn forget_certificates(&mut self) {
        self.cert_store.cache.clear();
        self.cert_store.order.clear();
        self.cert_store.failed.clear();
        self.crypto.forget_certificates();
    }

    /// Messages waiting for their signer's certificate.
    #[must_use]
    pub fn messages_held_for_certificates(&self) -> usize {
        self.cert_store.held()
    }

    /// Whether our requests may leave our certificate out: asked for by the configuration,
    /// joined, and our certificate already stored in the overlay.
    ///
    /// A certificate Fetch always carries ours: its receiver may lack our certificate too,
    /// and if it had to fetch ours first, two nodes missing each other's certificates would
    /// wait on each other until both gave up (seen with four real nodes, one of which had
    /// forgotten its certificates).
    pub(super) fn may_omit_certificates(&self, body: &Body) -> bool {
        let cert_fetch = matches!(body, Body::FetchReq { specifiers, .. }
        if specifiers.iter().any(|(k, _, _)| {
            *k == KIND_CERTIFICATE_BY_NODE || *k == KIND_CERTIFICATE_BY_USER
        }));
        self.cfg.omit_certificates
            && self.certs_published
            && !cert_fetch
            && !matches!(body, Body::StoreReq { .. } | Body::JoinReq(_))
    }
}
