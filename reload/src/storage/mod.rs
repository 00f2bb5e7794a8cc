//! The storing peer's data (RFC 6940 section 7): Kinds and their data models, generation
//! counters, storage-time ordering, lifetimes, deletion by `exists = false`, size limits, and
//! the access-control policies of section 7.3. In-memory and clock-free: callers pass `now`.

use crate::crypto::{SignatureParts, Signer};
use crate::wire::{NodeId, ResourceId, sha1_128};
use std::collections::{BTreeMap, HashMap};

/// A Kind-ID (RFC 6940 6.5.4.1... a `uint32`).
pub type KindId = u32;

/// SIP-REGISTRATION (RFC 7904 section 7).
pub const KIND_SIP_REGISTRATION: KindId = 1;
/// TURN-SERVICE (RFC 6940 section 9).
pub const KIND_TURN_SERVICE: KindId = 2;
/// CERTIFICATE_BY_NODE (RFC 6940 section 8).
pub const KIND_CERTIFICATE_BY_NODE: KindId = 3;
/// CERTIFICATE_BY_USER (RFC 6940 section 8).
pub const KIND_CERTIFICATE_BY_USER: KindId = 16;
/// REDIR (RFC 7374): ReDiR tree nodes, a DICTIONARY keyed by the provider's Node-ID.
pub const KIND_REDIR: KindId = 104;
/// P2PSIP-CREDENTIALS: a p2psip-private Kind (RFC 6940 14.6 private range 0xF0000001 to
/// 0xFFFFFFFE) holding one SIP user's encrypted digest credentials at H(user@domain), written
/// only by registrars (docs/SECURITY.md "Shared SIP users").
pub const KIND_P2PSIP_CREDENTIALS: KindId = 0xF000_5301;

/// Most absent array entries a fetch synthesises for one range.
const MAX_SYNTHESISED: u32 = 1024;

/// Array index meaning "append" (RFC 6940 7.4.1.1).
pub const ARRAY_APPEND: u32 = 0xffff_ffff;

pub use crate::wire::DataModel;

/// Access-control policies (RFC 6940 7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessPolicy {
    /// Resource-ID = H(user name).
    UserMatch,
    /// Resource-ID = H(Node-ID).
    NodeMatch,
    /// Resource-ID = H(user name) and dictionary key = Node-ID.
    UserNodeMatch,
    /// Resource-ID = H(Node-ID || i), 1 <= i <= max; `i` is encoded as a 4-byte big-endian
    /// integer (RFC 6940 7.3.4 leaves the encoding open).
    NodeMultiple(u32),
    /// p2psip's SIP-REGISTRATION rule: USER-NODE-MATCH, or the signer holds the registrar
    /// role (certificate extension) and the dictionary key is the signer's Node-ID
    /// (docs/SECURITY.md "Registrar identity"; announced as a mandatory extension).
    UserNodeMatchOrRegistrar,
    /// NODE-ID-MATCH (RFC 7374, defined for REDIR): any node may write a DICTIONARY entry
    /// whose key is its own Node-ID, at any Resource-ID (RFC 7374 section 5; the IANA
    /// "RELOAD Access Control Policies" registry lists NODE-ID-MATCH under RFC 7374).
    NodeIdMatch,
    /// p2psip-private: the signer holds the registrar role (any registrar may write or delete;
    /// the newest storage_time wins).
    Registrar,
}

/// A Kind definition (RFC 6940 7.4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindDef {
    /// Kind-ID.
    pub id: KindId,
    /// Data model.
    pub model: DataModel,
    /// Access-control policy.
    pub policy: AccessPolicy,
    /// Most values one resource may hold for this Kind.
    pub max_count: u32,
    /// Largest value in bytes.
    pub max_size: u32,
}

/// The Kinds this overlay knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindRegistry {
    kinds: HashMap<KindId, KindDef>,
}

impl Default for KindRegistry {
    /// The IANA Kinds p2psip uses, with conservative limits.
    fn default() -> Self {
        let mut r = Self {
            kinds: HashMap::new(),
        };
        r.insert(KindDef {
            id: KIND_SIP_REGISTRATION,
            model: DataModel::Dictionary,
            policy: AccessPolicy::UserNodeMatchOrRegistrar,
            max_count: 16,
            max_size: 1000,
        });
        r.insert(KindDef {
            id: KIND_TURN_SERVICE,
            model: DataModel::Single,
            policy: AccessPolicy::NodeMultiple(20),
            max_count: 1,
            max_size: 100,
        });
        r.insert(KindDef {
            id: KIND_CERTIFICATE_BY_NODE,
            model: DataModel::Array,
            policy: AccessPolicy::NodeMatch,
            max_count: 4,
            max_size: 4000,
        });
        r.insert(KindDef {
            id: KIND_CERTIFICATE_BY_USER,
            model: DataModel::Array,
            policy: AccessPolicy::UserMatch,
            max_count: 4,
            max_size: 4000,
        });
        r.insert(KindDef {
            id: KIND_REDIR,
            model: DataModel::Dictionary,
            policy: AccessPolicy::NodeIdMatch,
            max_count: 256,
            max_size: 1024,
        });
        r.insert(KindDef {
            id: KIND_P2PSIP_CREDENTIALS,
            model: DataModel::Single,
            policy: AccessPolicy::Registrar,
            max_count: 1,
            max_size: 1000,
        });
        r
    }
}

impl KindRegistry {
    /// An empty registry.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            kinds: HashMap::new(),
        }
    }
    /// Adds or replaces a Kind.
    pub fn insert(&mut self, k: KindDef) {
        self.kinds.insert(k.id, k);
    }
    /// Looks a Kind up.
    #[must_use]
    pub fn get(&self, id: KindId) -> Option<&KindDef> {
        self.kinds.get(&id)
    }
}

/// `DataValue` (RFC 6940 7.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DataValue {
    /// False for a deletion tombstone or synthesised absence.
    pub exists: bool,
    /// The value bytes.
    pub value: Vec<u8>,
}

/// Where a value sits in its Kind's data model.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ValueKey {
    /// The only value of a SINGLE Kind.
    Single,
    /// An ARRAY index ([`ARRAY_APPEND`] in a store means append).
    Index(u32),
    /// A DICTIONARY key.
    Key(Vec<u8>),
}

/// One stored value with its metadata (the engine's form of `StoredData`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredValue {
    /// Position in the data model.
    pub key: ValueKey,
    /// Milliseconds since the Unix epoch, set by the writer.
    pub storage_time: u64,
    /// Seconds from receipt.
    pub lifetime: u32,
    /// The value.
    pub value: DataValue,
    /// The writer's signature (empty/identity `none` for synthesised values).
    pub signature: SignatureParts,
    /// Certificates needed to verify `signature`, kept with the data (RFC 6940 6.3.4).
    pub certs: Vec<Vec<u8>>,
}

impl StoredValue {
    /// A synthesised "no such value" (RFC 6940 7.4.2.2).
    #[must_use]
    pub fn absent(key: ValueKey) -> Self {
        Self {
            key,
            storage_time: 0,
            lifetime: 0,
            value: DataValue::default(),
            signature: SignatureParts::default(),
            certs: Vec::new(),
        }
    }
}

/// One Kind's part of a store (the engine's `StoreKindData`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreKind {
    /// Kind.
    pub kind: KindId,
    /// Expected generation (0 = do not check), or for replicas the counter to copy.
    pub generation: u64,
    /// Values to store.
    pub values: Vec<StoredValue>,
}

/// What a fetch asks for in one Kind (the engine's `StoredDataSpecifier` selector).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The single value.
    Single,
    /// Inclusive index ranges (`last` 0xffffffff = to the end).
    Array(Vec<(u32, u32)>),
    /// Keys; empty means every key.
    Dictionary(Vec<Vec<u8>>),
}

/// One Kind of a fetch answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchKind {
    /// Kind.
    pub kind: KindId,
    /// The stored generation counter.
    pub generation: u64,
    /// Values (with lifetimes lowered to what remains).
    pub values: Vec<StoredValue>,
}

/// Why a store was refused, mapped to RFC 6940 error codes by the engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Error_Unknown_Kind (12) with the unknown Kinds.
    #[error("unknown kinds {0:?}")]
    UnknownKind(Vec<KindId>),
    /// Error_Generation_Counter_Too_Low (5) with the current counters.
    #[error("generation counter too low")]
    GenerationTooLow(Vec<(KindId, u64)>),
    /// Error_Data_Too_Old (9).
    #[error("data too old")]
    DataTooOld,
    /// Error_Data_Too_Large (8).
    #[error("data too large")]
    DataTooLarge,
    /// Error_Forbidden (2).
    #[error("forbidden")]
    Forbidden,
    /// Error_Invalid_Message (20), e.g. a Kind twice or a key of the wrong model.
    #[error("invalid store request")]
    Invalid,
}

/// One resource's stored values of one Kind.
#[derive(Debug, Clone, Default)]
struct KindEntry {
    generation: u64,
    values: BTreeMap<ValueKey, (StoredValue, u64)>, // value, expiry (ms)
}

/// All data this peer holds, by Resource-ID.
#[derive(Debug, Clone, Default)]
pub struct Storage {
    map: BTreeMap<ResourceId, BTreeMap<KindId, KindEntry>>,
}

fn expiry(now_ms: u64, lifetime: u32) -> u64 {
    now_ms.saturating_add(u64::from(lifetime) * 1000)
}

fn model_matches(model: DataModel, key: &ValueKey) -> bool {
    matches!(
        (model, key),
        (DataModel::Single, ValueKey::Single)
            | (DataModel::Array, ValueKey::Index(_))
            | (DataModel::Dictionary, ValueKey::Key(_))
    )
}

/// Checks `signer` may write `key` of a Kind with `policy` at `resource` (RFC 6940 7.3).
#[must_use]
pub fn access_allowed(
    policy: AccessPolicy,
    resource: &ResourceId,
    key: &ValueKey,
    signer: &Signer,
) -> bool {
    let user_ok = || {
        signer
            .user
            .as_ref()
            .is_some_and(|u| sha1_128(u.as_bytes()).as_slice() == resource.0.as_slice())
    };
    let key_is_signer = || match key {
        ValueKey::Key(k) => signer.node_ids.iter().any(|n| n.to_array() == k[..]),
        _ => false,
    };
    match policy {
        AccessPolicy::UserNodeMatchOrRegistrar => {
            key_is_signer() && (user_ok() || !signer.registrar_domains.is_empty())
        }
        AccessPolicy::Registrar => !signer.registrar_domains.is_empty(),
        AccessPolicy::NodeIdMatch => key_is_signer(),
        AccessPolicy::UserMatch => user_ok(),
        AccessPolicy::NodeMatch => signer
            .node_ids
            .iter()
            .any(|n| sha1_128(&n.to_array()).as_slice() == resource.0.as_slice()),
        AccessPolicy::UserNodeMatch => {
            user_ok()
                && match key {
                    ValueKey::Key(k) => signer.node_ids.iter().any(|n| n.to_array() == k[..]),
                    _ => false,
                }
        }
        AccessPolicy::NodeMultiple(max) => signer.node_ids.iter().any(|n| {
            (1..=max).any(|i| {
                let mut b = n.to_array().to_vec();
                b.extend_from_slice(&i.to_be_bytes());
                sha1_128(&b).as_slice() == resource.0.as_slice()
            })
        }),
    }
}

impl Storage {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of resources held.
    #[must_use]
    pub fn resource_count(&self) -> usize {
        self.map.len()
    }

    /// Applies a StoreReq atomically (RFC 6940 7.4.1.1). `replica` is true for
    /// `replica_number > 0`. Returns the new generation counter of each Kind.
    /// Signatures and access control are checked by the caller.
    pub fn store(
        &mut self,
        now_ms: u64,
        registry: &KindRegistry,
        resource: &ResourceId,
        replica: bool,
        kinds: &[StoreKind],
    ) -> Result<Vec<(KindId, u64)>, StoreError> {
        let unknown: Vec<KindId> = kinds
            .iter()
            .filter(|k| registry.get(k.kind).is_none())
            .map(|k| k.kind)
            .collect();
        if !unknown.is_empty() {
            return Err(StoreError::UnknownKind(unknown));
        }
        for (i, k) in kinds.iter().enumerate() {
            if kinds.iter().skip(i + 1).any(|o| o.kind == k.kind) {
                return Err(StoreError::Invalid);
            }
        }
        let empty = BTreeMap::new();
        let current = self.map.get(resource).unwrap_or(&empty);
        // Generation counters (original stores only).
        if !replica {
            let bad = kinds.iter().any(|k| {
                let stored = current.get(&k.kind).map_or(0, |e| e.generation);
                k.generation != 0 && k.generation != stored
            });
            if bad {
                return Err(StoreError::GenerationTooLow(
                    kinds
                        .iter()
                        .map(|k| (k.kind, current.get(&k.kind).map_or(0, |e| e.generation)))
                        .collect(),
                ));
            }
        } else if kinds.iter().any(|k| k.generation == 0) {
            return Err(StoreError::Invalid);
        }
        // Validate everything before changing anything.
        let mut staged: Vec<(KindId, KindEntry, bool)> = Vec::new();
        for k in kinds {
            let Some(def) = registry.get(k.kind) else {
                return Err(StoreError::UnknownKind(vec![k.kind]));
            };
            let mut entry = current.get(&k.kind).cloned().unwrap_or_default();
            let mut changed = false;
            for v in &k.values {
                if !model_matches(def.model, &v.key) {
                    return Err(StoreError::Invalid);
                }
                if v.value.value.len() > def.max_size as usize {
                    return Err(StoreError::DataTooLarge);
                }
                let key = match &v.key {
                    ValueKey::Index(ARRAY_APPEND) => {
                        let next = entry
                            .values
                            .keys()
                            .filter_map(|k| match k {
                                ValueKey::Index(i) => Some(i.saturating_add(1)),
                                _ => None,
                            })
                            .max()
                            .unwrap_or(0);
                        ValueKey::Index(next)
                    }
                    k => k.clone(),
                };
                if let Some((old, old_exp)) = entry.values.get(&key)
                    && *old_exp > now_ms
                {
                    if v.storage_time < old.storage_time {
                        return Err(StoreError::DataTooOld);
                    }
                    if v.storage_time == old.storage_time {
                        if replica && old.value == v.value {
                            continue; // the same value again: nothing to do
                        }
                        return Err(StoreError::DataTooOld);
                    }
                }
                let mut nv = v.clone();
                nv.key = key.clone();
                entry.values.insert(key, (nv, expiry(now_ms, v.lifetime)));
                changed = true;
            }
            entry.values.retain(|_, (_, exp)| *exp > now_ms);
            let live = entry
                .values
                .values()
                .filter(|(v, _)| v.value.exists)
                .count();
            if live > def.max_count as usize {
                return Err(StoreError::DataTooLarge);
            }
            if replica {
                entry.generation = k.generation;
            } else if changed || entry.generation == 0 {
                entry.generation = entry.generation.saturating_add(1);
            }
            staged.push((k.kind, entry, changed));
        }
        let slot = self.map.entry(resource.clone()).or_default();
        let mut out = Vec::new();
        for (kind, entry, _) in staged {
            out.push((kind, entry.generation));
            slot.insert(kind, entry);
        }
        Ok(out)
    }

    /// Current generation counter of a Kind at a resource (0 if nothing is stored).
    #[must_use]
    pub fn generation(&self, resource: &ResourceId, kind: KindId) -> u64 {
        self.map
            .get(resource)
            .and_then(|m| m.get(&kind))
            .map_or(0, |e| e.generation)
    }

    /// Answers one Kind of a Fetch (RFC 6940 7.4.2). Unknown Kinds are an error.
    pub fn fetch(
        &self,
        now_ms: u64,
        registry: &KindRegistry,
        resource: &ResourceId,
        kind: KindId,
        generation: u64,
        selector: &Selector,
    ) -> Result<FetchKind, StoreError> {
        let def = registry
            .get(kind)
            .ok_or(StoreError::UnknownKind(vec![kind]))?;
        let entry = self.map.get(resource).and_then(|m| m.get(&kind));
        let stored_gen = entry.map_or(0, |e| e.generation);
        let mut out = FetchKind {
            kind,
            generation: stored_gen,
            values: Vec::new(),
        };
        if generation != 0 && generation == stored_gen {
            return Ok(out);
        }
        let live = |k: &ValueKey| -> Option<StoredValue> {
            let (v, exp) = entry?.values.get(k)?;
            (*exp > now_ms).then(|| {
                let mut v = v.clone();
                v.lifetime = ((exp - now_ms) / 1000) as u32;
                v
            })
        };
        match (def.model, selector) {
            (DataModel::Single, Selector::Single) => {
                out.values
                    .push(live(&ValueKey::Single).unwrap_or(StoredValue::absent(ValueKey::Single)));
            }
            (DataModel::Array, Selector::Array(ranges)) => {
                for &(first, last) in ranges {
                    if first > last {
                        return Err(StoreError::Invalid);
                    }
                    let max_idx = entry
                        .and_then(|e| {
                            e.values.keys().rev().find_map(|k| match k {
                                ValueKey::Index(i) => Some(*i),
                                _ => None,
                            })
                        })
                        .unwrap_or(0);
                    let end = last.min(max_idx);
                    if first > end {
                        continue;
                    }
                    // Gaps read back as exists=false (RFC 6940 7.2.2), but only over a bounded
                    // span: a sparse array must not make us synthesise billions of values.
                    if last != ARRAY_APPEND && end - first < MAX_SYNTHESISED {
                        for i in first..=end {
                            let k = ValueKey::Index(i);
                            out.values
                                .push(live(&k).unwrap_or_else(|| StoredValue::absent(k)));
                        }
                    } else if let Some(e) = entry {
                        for k in e
                            .values
                            .range(ValueKey::Index(first)..=ValueKey::Index(end))
                            .map(|(k, _)| k)
                        {
                            out.values
                                .push(live(k).unwrap_or_else(|| StoredValue::absent(k.clone())));
                        }
                    }
                }
            }
            (DataModel::Dictionary, Selector::Dictionary(keys)) => {
                if keys.is_empty() {
                    if let Some(e) = entry {
                        out.values.extend(e.values.keys().filter_map(&live));
                    }
                } else {
                    for key in keys {
                        let k = ValueKey::Key(key.clone());
                        out.values.push(live(&k).unwrap_or(StoredValue::absent(k)));
                    }
                }
            }
            _ => return Err(StoreError::Invalid),
        }
        Ok(out)
    }

    /// Find (RFC 6940 7.4.4): the stored Resource-ID holding `kind` closest at or after
    /// `resource` on the ring, among those `in_scope` accepts.
    #[must_use]
    pub fn find(
        &self,
        resource: &ResourceId,
        kind: KindId,
        in_scope: impl Fn(&ResourceId) -> bool,
    ) -> Option<ResourceId> {
        let base = resource.as_u128().unwrap_or(0);
        self.map
            .iter()
            .filter(|(r, m)| m.contains_key(&kind) && in_scope(r))
            .min_by_key(|(r, _)| crate::topology::dist(base, r.as_u128().unwrap_or(0)))
            .map(|(r, _)| r.clone())
    }

    /// Drops expired values and empty resources (RFC 6940 7: lifetimes).
    pub fn expire(&mut self, now_ms: u64) {
        self.map.retain(|_, kinds| {
            kinds.retain(|_, e| {
                e.values.retain(|_, (_, exp)| *exp > now_ms);
                !e.values.is_empty()
            });
            !kinds.is_empty()
        });
    }

    /// Resource-IDs held whose ring position `in_scope` accepts.
    #[must_use]
    pub fn resources(&self, in_scope: impl Fn(u128) -> bool) -> Vec<ResourceId> {
        self.map
            .keys()
            .filter(|r| r.as_u128().is_some_and(&in_scope))
            .cloned()
            .collect()
    }

    /// Everything held at `resource`, lifetimes lowered to what remains, ready to re-store
    /// on another peer (replication and hand-over, RFC 6940 7.4.1.1).
    #[must_use]
    pub fn export(&self, now_ms: u64, resource: &ResourceId) -> Vec<StoreKind> {
        let Some(m) = self.map.get(resource) else {
            return Vec::new();
        };
        m.iter()
            .map(|(kind, e)| StoreKind {
                kind: *kind,
                generation: e.generation.max(1),
                values: e
                    .values
                    .values()
                    .filter(|(_, exp)| *exp > now_ms)
                    .map(|(v, exp)| {
                        let mut v = v.clone();
                        v.lifetime = (exp.saturating_sub(now_ms) / 1000) as u32;
                        v
                    })
                    .filter(|v| v.lifetime > 0)
                    .collect(),
            })
            .filter(|k| !k.values.is_empty())
            .collect()
    }

    /// Forgets a resource.
    pub fn remove(&mut self, resource: &ResourceId) {
        self.map.remove(resource);
    }

    /// True if a live value with `key` and `exists = true` is held.
    #[must_use]
    pub fn has_value(
        &self,
        now_ms: u64,
        resource: &ResourceId,
        kind: KindId,
        key: &ValueKey,
    ) -> bool {
        self.map
            .get(resource)
            .and_then(|m| m.get(&kind))
            .and_then(|e| e.values.get(key))
            .is_some_and(|(v, exp)| *exp > now_ms && v.value.exists)
    }
}

/// Convenience: a signer for tests.
#[must_use]
pub fn test_signer(node: NodeId, user: Option<&str>) -> Signer {
    Signer {
        node_ids: vec![node],
        user: user.map(str::to_owned),
        registrar_domains: Vec::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn val(key: ValueKey, t: u64, life: u32, data: &[u8]) -> StoredValue {
        StoredValue {
            key,
            storage_time: t,
            lifetime: life,
            value: DataValue {
                exists: true,
                value: data.to_vec(),
            },
            signature: SignatureParts::default(),
            certs: vec![],
        }
    }

    fn sk(kind: KindId, generation: u64, values: Vec<StoredValue>) -> StoreKind {
        StoreKind {
            kind,
            generation,
            values,
        }
    }

    #[test]
    fn dictionary_store_fetch_generation_and_age() {
        let reg = KindRegistry::default();
        let mut s = Storage::new();
        let r = ResourceId::hash(b"alice@example.com");
        let k = ValueKey::Key(NodeId(5).to_array().to_vec());
        let g = s
            .store(
                0,
                &reg,
                &r,
                false,
                &[sk(1, 0, vec![val(k.clone(), 10, 60, b"a")])],
            )
            .unwrap();
        assert_eq!(g, vec![(1, 1)]);
        // Older storage time refused.
        assert_eq!(
            s.store(
                0,
                &reg,
                &r,
                false,
                &[sk(1, 0, vec![val(k.clone(), 9, 60, b"b")])]
            ),
            Err(StoreError::DataTooOld)
        );
        // Wrong generation refused with the current counters.
        assert_eq!(
            s.store(
                0,
                &reg,
                &r,
                false,
                &[sk(1, 7, vec![val(k.clone(), 11, 60, b"b")])]
            ),
            Err(StoreError::GenerationTooLow(vec![(1, 1)]))
        );
        assert_eq!(
            s.store(0, &reg, &r, false, &[sk(99, 0, vec![])]),
            Err(StoreError::UnknownKind(vec![99]))
        );
        let f = s
            .fetch(1000, &reg, &r, 1, 0, &Selector::Dictionary(vec![]))
            .unwrap();
        assert_eq!(f.values.len(), 1);
        assert_eq!(f.values[0].lifetime, 59);
        // Same generation -> no values.
        let f = s
            .fetch(1000, &reg, &r, 1, 1, &Selector::Dictionary(vec![]))
            .unwrap();
        assert!(f.values.is_empty());
        // Expiry.
        s.expire(61_000);
        let f = s
            .fetch(
                61_000,
                &reg,
                &r,
                1,
                0,
                &Selector::Dictionary(vec![b"zz".to_vec()]),
            )
            .unwrap();
        assert!(!f.values[0].value.exists);
    }

    #[test]
    fn array_append_single_and_limits() {
        let reg = KindRegistry::default();
        let mut s = Storage::new();
        let r = ResourceId::hash(b"x");
        for t in 1..=4 {
            s.store(
                0,
                &reg,
                &r,
                false,
                &[sk(
                    3,
                    0,
                    vec![val(ValueKey::Index(ARRAY_APPEND), t, 60, b"c")],
                )],
            )
            .unwrap();
        }
        assert_eq!(
            s.store(
                0,
                &reg,
                &r,
                false,
                &[sk(
                    3,
                    0,
                    vec![val(ValueKey::Index(ARRAY_APPEND), 9, 60, b"c")]
                )]
            ),
            Err(StoreError::DataTooLarge)
        );
        let f = s
            .fetch(0, &reg, &r, 3, 0, &Selector::Array(vec![(0, ARRAY_APPEND)]))
            .unwrap();
        assert_eq!(f.values.len(), 4);
        let big = vec![0u8; 200];
        assert_eq!(
            s.store(
                0,
                &reg,
                &r,
                false,
                &[sk(2, 0, vec![val(ValueKey::Single, 1, 60, &big)])]
            ),
            Err(StoreError::DataTooLarge)
        );
        // Replica store copies the generation and accepts the same value twice.
        let rk = [sk(2, 42, vec![val(ValueKey::Single, 1, 60, b"t")])];
        assert_eq!(s.store(0, &reg, &r, true, &rk), Ok(vec![(2, 42)]));
        assert_eq!(s.store(0, &reg, &r, true, &rk), Ok(vec![(2, 42)]));
    }

    #[test]
    fn sparse_array_fetch_is_bounded() {
        let reg = KindRegistry::default();
        let mut s = Storage::new();
        let r = ResourceId::hash(b"sparse");
        for i in [0u32, 2, 0xffff_fff0] {
            s.store(
                0,
                &reg,
                &r,
                false,
                &[sk(
                    3,
                    0,
                    vec![val(ValueKey::Index(i), u64::from(i) + 1, 60, b"c")],
                )],
            )
            .unwrap();
        }
        let f = s
            .fetch(0, &reg, &r, 3, 0, &Selector::Array(vec![(0, 3)]))
            .unwrap();
        assert_eq!(f.values.len(), 4); // 0, gap 1, 2, gap 3
        assert!(!f.values[1].value.exists);
        let f = s
            .fetch(0, &reg, &r, 3, 0, &Selector::Array(vec![(0, 0xffff_fffe)]))
            .unwrap();
        assert_eq!(f.values.len(), 3);
    }

    #[test]
    fn user_node_match() {
        let r = ResourceId::hash(b"alice@example.com");
        let k = ValueKey::Key(NodeId(5).to_array().to_vec());
        let ok = test_signer(NodeId(5), Some("alice@example.com"));
        let bad = test_signer(NodeId(6), Some("alice@example.com"));
        assert!(access_allowed(AccessPolicy::UserNodeMatch, &r, &k, &ok));
        assert!(!access_allowed(AccessPolicy::UserNodeMatch, &r, &k, &bad));
    }

    #[test]
    fn redir_is_node_id_match() {
        let d = KindRegistry::default();
        let d = d.get(KIND_REDIR).unwrap();
        assert_eq!(
            (d.model, d.policy),
            (DataModel::Dictionary, AccessPolicy::NodeIdMatch)
        );
        // Any tree node's Resource-ID; the key must be the signer's own Node-ID.
        let r = ResourceId::hash(b"pstn-gateway\0\x02\0\x07");
        let me = test_signer(NodeId(5), None);
        let mine = ValueKey::Key(NodeId(5).to_array().to_vec());
        let other = ValueKey::Key(NodeId(6).to_array().to_vec());
        assert!(access_allowed(AccessPolicy::NodeIdMatch, &r, &mine, &me));
        assert!(!access_allowed(AccessPolicy::NodeIdMatch, &r, &other, &me));
        assert!(!access_allowed(
            AccessPolicy::NodeIdMatch,
            &r,
            &ValueKey::Single,
            &me
        ));
    }

    #[test]
    fn registrar_policy_needs_the_role() {
        let r = ResourceId::hash(b"1005@p2psip.local");
        let mut reg = test_signer(NodeId(5), Some("node"));
        let plain = reg.clone();
        reg.registrar_domains = vec!["p2psip.local".into()];
        assert!(access_allowed(
            AccessPolicy::Registrar,
            &r,
            &ValueKey::Single,
            &reg
        ));
        assert!(!access_allowed(
            AccessPolicy::Registrar,
            &r,
            &ValueKey::Single,
            &plain
        ));
        let k = KindRegistry::default();
        let d = k.get(KIND_P2PSIP_CREDENTIALS).unwrap();
        assert_eq!(
            (d.model, d.policy),
            (DataModel::Single, AccessPolicy::Registrar)
        );
    }
}
