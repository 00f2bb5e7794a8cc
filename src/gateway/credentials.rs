//! Shared SIP users (issue 6 item 4; docs/SECURITY.md "Shared SIP users"): a user added on
//! one node can register at any node, with no central server at run time.
//!
//! Each node publishes the users of its `<data_dir>/users.yaml` (the ones `p2psip user`
//! manages) as a P2PSIP-CREDENTIALS value (Kind 0xF0005301, SINGLE, writable by registrars
//! only) at Resource-ID H(user@domain): the digest HA1s (MD5 and SHA-256, never the password)
//! sealed with AES-256-GCM under the overlay credential key that the enrollment server hands to
//! registrar nodes. A deleted user is stored as `exists = false`. A node that meets an unknown
//! user of its domain (REGISTER, or a request from or to one) fetches that value, caches the
//! answer (found or not) for `registrar.shared_users_ttl` seconds, and asks again after that.

use crate::overlay::OverlayHandle;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use reload::node::Outcome;
use reload::storage::{DataValue, KIND_P2PSIP_CREDENTIALS, Selector, ValueKey};
use reload::wire::ResourceId;
use serde::{Deserialize, Serialize};
use sip::auth::{Algorithm, ha1};
use sip::registrar::{Secret, User};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lifetime of a published credential value, seconds (republished every [`REPUBLISH`]).
pub const LIFETIME: u32 = 2 * 86_400;
/// How often a node republishes its users.
pub const REPUBLISH: Duration = Duration::from_secs(6 * 3600);
/// Bound on one overlay fetch of a user's credentials.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

/// The sealed record (JSON inside AES-256-GCM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    user: String,
    realm: String,
    ha1_md5: Option<String>,
    ha1_sha256: Option<String>,
    display_name: Option<String>,
}

/// What the cache knows about a user.
#[derive(Debug, Clone)]
struct Cached {
    user: Option<User>,
    at: Instant,
}

/// Whether a request for a user can go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// The cache is fresh (the user is known to exist or not).
    Ready,
    /// A fetch is under way; hold the request until it ends.
    Pending,
}

/// The overlay-wide user directory of one node.
pub struct Directory {
    overlay: OverlayHandle,
    key: LessSafeKey,
    realm: String,
    ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
    inflight: Mutex<HashSet<String>>,
    published: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Directory {
    /// A directory over `overlay` for SIP domain `realm`, sealing with the 32-byte overlay
    /// credential `key`; fetched answers are trusted for `ttl`.
    pub fn new(
        overlay: OverlayHandle,
        key: &[u8],
        realm: &str,
        ttl: Duration,
    ) -> Option<Arc<Self>> {
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
        Some(Arc::new(Directory {
            overlay,
            key,
            realm: realm.to_owned(),
            ttl,
            cache: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashSet::new()),
            published: Mutex::new(HashSet::new()),
        }))
    }

    /// The Resource-ID of a user's credentials: H(user@domain).
    pub fn resource(&self, user: &str) -> ResourceId {
        ResourceId::hash(format!("{user}@{}", self.realm).as_bytes())
    }

    fn aad(resource: &ResourceId) -> Vec<u8> {
        let mut a = resource.0.clone();
        a.extend_from_slice(&KIND_P2PSIP_CREDENTIALS.to_be_bytes());
        a
    }

    fn seal(&self, resource: &ResourceId, rec: &Record) -> Option<Vec<u8>> {
        let nonce_bytes = crate::pki::random::<12>().ok()?;
        let mut buf = serde_json::to_vec(rec).ok()?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(Self::aad(resource)),
                &mut buf,
            )
            .ok()?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        Some(out)
    }

    fn open(&self, resource: &ResourceId, sealed: &[u8]) -> Option<Record> {
        let (n, ct) = sealed.split_at_checked(12)?;
        let nonce = Nonce::try_assume_unique_for_key(n).ok()?;
        let mut buf = ct.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(Self::aad(resource)), &mut buf)
            .ok()?;
        serde_json::from_slice(plain).ok()
    }

    fn record(&self, u: &User) -> Record {
        let (md5, sha256) = match &u.secret {
            Secret::Password(p) => (
                Some(ha1(Algorithm::Md5, &u.name, &self.realm, p)),
                Some(ha1(Algorithm::Sha256, &u.name, &self.realm, p)),
            ),
            Secret::Ha1 { md5, sha256 } => (md5.clone(), sha256.clone()),
        };
        Record {
            user: u.name.clone(),
            realm: self.realm.clone(),
            ha1_md5: md5,
            ha1_sha256: sha256,
            display_name: u.display_name.clone(),
        }
    }

    /// Publishes `users` (this node's users file) and deletes the users this node published
    /// before that are gone from it. Runs the stores in a task.
    pub fn sync(self: &Arc<Self>, users: &[User]) {
        let names: HashSet<String> = users.iter().map(|u| u.name.clone()).collect();
        let gone: Vec<String> = {
            let mut p = lock(&self.published);
            let gone = p.difference(&names).cloned().collect();
            *p = names;
            gone
        };
        let me = self.clone();
        let users = users.to_vec();
        tokio::spawn(async move {
            for u in &users {
                me.store(&u.name, Some(u)).await;
            }
            for name in &gone {
                me.store(name, None).await;
            }
        });
    }

    /// Republishes this node's users every [`REPUBLISH`] (values live [`LIFETIME`]).
    pub fn refresh_forever(self: Arc<Self>, users: impl Fn() -> Vec<User> + Send + 'static) {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REPUBLISH).await;
                self.sync(&users());
            }
        });
    }

    async fn store(&self, name: &str, user: Option<&User>) {
        let resource = self.resource(name);
        let value = match user {
            Some(u) => match self.seal(&resource, &self.record(u)) {
                Some(v) => DataValue {
                    exists: true,
                    value: v,
                },
                None => {
                    tracing::warn!("cannot seal the credentials of {name}");
                    return;
                }
            },
            None => DataValue {
                exists: false,
                value: Vec::new(),
            },
        };
        let what = if user.is_some() {
            "published"
        } else {
            "deleted"
        };
        // The node may still be joining at start-up: a few tries with backoff.
        let mut delay = Duration::from_secs(1);
        for attempt in 1..=6 {
            let err = match self
                .overlay
                .store(
                    resource.clone(),
                    KIND_P2PSIP_CREDENTIALS,
                    vec![(ValueKey::Single, value.clone(), LIFETIME)],
                )
                .await
            {
                Ok(Outcome::Stored(_)) => {
                    tracing::info!(
                        "{what} the credentials of {name}@{} in the overlay",
                        self.realm
                    );
                    // Our own cache must not keep an older answer.
                    lock(&self.cache).remove(name);
                    return;
                }
                Ok(other) => format!("{other:?}"),
                Err(e) => e.to_string(),
            };
            if attempt == 6 {
                tracing::warn!("credentials of {name} not {what}: {err}");
                return;
            }
            tracing::debug!("credentials of {name} not {what} yet ({err}); trying again");
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }

    /// Whether requests for `user` may go on now; if not, a fetch is started and the caller
    /// holds the request until this says [`Readiness::Ready`].
    pub fn readiness(self: &Arc<Self>, user: &str, now: Instant) -> Readiness {
        if lock(&self.cache)
            .get(user)
            .is_some_and(|c| now.saturating_duration_since(c.at) < self.ttl)
        {
            return Readiness::Ready;
        }
        if !lock(&self.inflight).insert(user.to_owned()) {
            return Readiness::Pending;
        }
        let me = self.clone();
        let user = user.to_owned();
        tokio::spawn(async move {
            let found = me.fetch(&user).await;
            let mut cache = lock(&me.cache);
            let entry = match found {
                Ok(u) => u,
                // On failure keep what we had (availability), and ask again after the TTL.
                Err(e) => {
                    tracing::info!("could not fetch the credentials of {user}: {e}");
                    cache.get(&user).and_then(|c| c.user.clone())
                }
            };
            cache.insert(
                user.clone(),
                Cached {
                    user: entry,
                    at: Instant::now(),
                },
            );
            drop(cache);
            lock(&me.inflight).remove(&user);
        });
        Readiness::Pending
    }

    /// Whether a fetch for `user` is under way.
    pub fn is_pending(&self, user: &str) -> bool {
        lock(&self.inflight).contains(user)
    }

    /// The users known from the overlay (fresh or not).
    pub fn known_users(&self) -> Vec<User> {
        lock(&self.cache)
            .values()
            .filter_map(|c| c.user.clone())
            .collect()
    }

    async fn fetch(&self, name: &str) -> Result<Option<User>, String> {
        let resource = self.resource(name);
        let r = tokio::time::timeout(
            FETCH_TIMEOUT,
            self.overlay.fetch(
                resource.clone(),
                vec![(KIND_P2PSIP_CREDENTIALS, Selector::Single)],
            ),
        )
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
        let Outcome::Fetched(kinds) = r else {
            return Err(format!("unexpected answer {r:?}"));
        };
        let Some(v) = kinds
            .iter()
            .flat_map(|k| k.values.iter())
            .find(|v| v.value.exists)
        else {
            tracing::info!("no shared user {name}@{} in the overlay", self.realm);
            return Ok(None);
        };
        let rec = self
            .open(&resource, &v.value.value)
            .ok_or("the credential value does not open with the overlay credential key")?;
        if rec.user != name || rec.realm != self.realm {
            return Err(format!(
                "the credential value names {}@{}, not {name}@{}",
                rec.user, rec.realm, self.realm
            ));
        }
        tracing::info!(
            "fetched the credentials of {name}@{} from the overlay",
            self.realm
        );
        Ok(Some(User {
            name: rec.user,
            secret: Secret::Ha1 {
                md5: rec.ha1_md5,
                sha256: rec.ha1_sha256,
            },
            display_name: rec.display_name,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> Arc<Directory> {
        Directory::new(
            OverlayHandle::for_tests(),
            &[7u8; 32],
            "p2psip.local",
            Duration::from_secs(1),
        )
        .unwrap()
    }

    #[test]
    fn sealed_record_opens_only_at_its_resource_and_key() {
        let d = dir();
        let u = User {
            name: "1005".into(),
            secret: Secret::Password("pw".into()),
            display_name: None,
        };
        let rec = d.record(&u);
        assert_eq!(
            rec.ha1_md5.as_deref(),
            Some(ha1(Algorithm::Md5, "1005", "p2psip.local", "pw").as_str())
        );
        let r = d.resource("1005");
        let sealed = d.seal(&r, &rec).unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("1005"));
        assert_eq!(d.open(&r, &sealed), Some(rec.clone()));
        assert_eq!(d.open(&d.resource("1006"), &sealed), None);
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(d.open(&r, &bad), None);
        let other = Directory::new(
            OverlayHandle::for_tests(),
            &[8u8; 32],
            "p2psip.local",
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(other.open(&r, &sealed), None);
        assert_eq!(d.open(&r, &sealed[..5]), None);
    }
}
