//! Service discovery with ReDiR (RFC 7374) over the real overlay: this module drives the
//! sans-IO walks of [`reload::usage::redir`] with the overlay handle's Store and Fetch.
//!
//! * **Register** a namespace (e.g. `pstn-gateway`): run the registration walk, storing this
//!   node's `RedirServiceProvider` (REDIR Kind 104, DICTIONARY, key = our Node-ID, access
//!   NODE-ID-MATCH) at each tree node the walk visits. Registered namespaces are refreshed
//!   every `refresh` seconds (stored with `lifetime` seconds), so a dead provider disappears
//!   from the tree at most `lifetime` seconds after its last refresh.
//! * **Look up** a key in a namespace: the lookup walk fetches tree nodes until it finds the
//!   provider whose Node-ID is the closest successor of the key. Clients look up their own
//!   Node-ID by default, which spreads them over the providers.
//!
//! Reached from the admin endpoint (`POST /redir?op=register&namespace=NS`,
//! `GET /redir?op=lookup&namespace=NS&key=HEX`) and from `p2psip service` (src/service_cmd.rs).

use crate::overlay::OverlayHandle;
use reload::codec::Codec;
use reload::node::Outcome;
use reload::storage::{DataValue, KIND_REDIR, Selector, ValueKey};
use reload::usage::redir::{Lookup, Next, RedirParams, Registration, Step};
use reload::wire::{NodeId, RedirServiceProvider};
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest wait for one Store or Fetch of a walk.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Tree parameters and timers (the `services:` section of config.yaml).
#[derive(Debug, Clone)]
pub struct RedirSettings {
    /// Branching factor b (RFC 7374 default 10).
    pub branching: u32,
    /// Starting level (RFC 7374 default 2).
    pub starting_level: u16,
    /// Deepest level a registration descends to.
    pub max_level: u16,
    /// Lifetime of a stored registration, seconds.
    pub lifetime: u32,
    /// Seconds between refreshes of our registrations.
    pub refresh: u64,
}

impl Default for RedirSettings {
    fn default() -> Self {
        Self {
            branching: 10,
            starting_level: 2,
            max_level: 16,
            lifetime: 300,
            refresh: 120,
        }
    }
}

/// One tree node a walk visited.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// Tree level.
    pub level: u16,
    /// Node index within the level.
    pub node: u64,
    /// Whether we stored our registration there.
    pub stored: bool,
    /// Providers the tree node held (hex Node-IDs).
    pub providers: Vec<String>,
}

/// The result of a registration or lookup walk (the admin endpoint's JSON).
#[derive(Debug, Clone, Serialize)]
pub struct WalkReport {
    /// Namespace.
    pub namespace: String,
    /// The key looked up (our Node-ID for a registration), hex.
    pub key: String,
    /// The provider found (a lookup) or registered (a registration), hex; None if none.
    pub provider: Option<String>,
    /// The tree nodes visited, in order.
    pub steps: Vec<StepReport>,
}

/// The ReDiR service: clone-able, shared by the admin endpoint and the refresh task.
#[derive(Clone)]
pub struct Redir {
    overlay: OverlayHandle,
    settings: RedirSettings,
    registered: Arc<Mutex<BTreeSet<String>>>,
}

fn hex_id(n: NodeId) -> String {
    hex::encode(n.to_array())
}

/// Parses a 32-hex-digit Node-ID/key (an optional `0x` prefix allowed).
pub fn parse_key(s: &str) -> Option<u128> {
    let h = s.strip_prefix("0x").unwrap_or(s);
    if h.len() != 32 {
        return None;
    }
    u128::from_str_radix(h, 16).ok()
}

impl Redir {
    /// A service over `overlay` with these parameters.
    pub fn new(overlay: OverlayHandle, settings: RedirSettings) -> Self {
        Self {
            overlay,
            settings,
            registered: Arc::default(),
        }
    }

    fn params(&self, namespace: &str) -> RedirParams {
        RedirParams {
            branching: self.settings.branching.max(2),
            starting_level: self.settings.starting_level,
            max_level: self.settings.max_level.max(self.settings.starting_level),
            ..RedirParams::new(namespace)
        }
    }

    /// Namespaces this node keeps registered.
    pub fn registered(&self) -> Vec<String> {
        self.registered
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Performs one step: Store (if asked), then Fetch the tree node; the providers there.
    async fn step(&self, namespace: &str, s: &Step) -> Result<Vec<NodeId>, String> {
        if let Some(v) = &s.store {
            let value = v.to_bytes().map_err(|e| e.to_string())?;
            let r = tokio::time::timeout(
                STEP_TIMEOUT,
                self.overlay.store(
                    s.resource.clone(),
                    KIND_REDIR,
                    vec![(
                        ValueKey::Key(v.service_provider.to_array().to_vec()),
                        DataValue {
                            exists: true,
                            value,
                        },
                        self.settings.lifetime,
                    )],
                ),
            )
            .await
            .map_err(|_| format!("store at level {} timed out", s.level))?;
            match r {
                Ok(Outcome::Stored(_)) => {}
                Ok(o) => return Err(format!("store at level {}: {o:?}", s.level)),
                Err(e) => return Err(format!("store at level {}: {e}", s.level)),
            }
        }
        let r = tokio::time::timeout(
            STEP_TIMEOUT,
            self.overlay.fetch(
                s.resource.clone(),
                vec![(KIND_REDIR, Selector::Dictionary(Vec::new()))],
            ),
        )
        .await
        .map_err(|_| format!("fetch at level {} timed out", s.level))?;
        let kinds = match r {
            Ok(Outcome::Fetched(k)) => k,
            Ok(o) => return Err(format!("fetch at level {}: {o:?}", s.level)),
            Err(e) => return Err(format!("fetch at level {}: {e}", s.level)),
        };
        let mut ids = BTreeSet::new();
        for v in kinds
            .iter()
            .filter(|k| k.kind == KIND_REDIR)
            .flat_map(|k| k.values.iter())
            .filter(|v| v.value.exists)
        {
            // The entry must be a well-formed registration for this namespace whose
            // dictionary key is the provider it names (NODE-ID-MATCH checked the writer).
            let Ok(p) = RedirServiceProvider::from_bytes(&v.value.value) else {
                continue;
            };
            let key_ok =
                matches!(&v.key, ValueKey::Key(k) if k[..] == p.service_provider.to_array());
            if key_ok && p.namespace.0 == namespace.as_bytes() {
                ids.insert(p.service_provider);
            }
        }
        Ok(ids.into_iter().collect())
    }

    async fn walk(
        &self,
        namespace: &str,
        key: u128,
        first: Step,
        mut next: impl FnMut(&[NodeId]) -> Next,
    ) -> Result<WalkReport, String> {
        let mut steps = Vec::new();
        let mut step = first;
        // The walks end by themselves; this bound only guards against a bug.
        for _ in 0..(4 * u32::from(self.settings.max_level) + 8) {
            let ids = self.step(namespace, &step).await?;
            steps.push(StepReport {
                level: step.level,
                node: step.node,
                stored: step.store.is_some(),
                providers: ids.iter().map(|i| hex_id(*i)).collect(),
            });
            match next(&ids) {
                Next::Step(s) => step = s,
                Next::Done(found) => {
                    return Ok(WalkReport {
                        namespace: namespace.to_string(),
                        key: hex_id(NodeId(key)),
                        provider: found.map(hex_id),
                        steps,
                    });
                }
            }
        }
        Err("the ReDiR walk did not finish".into())
    }

    /// Runs the registration walk for `namespace` once (RFC 7374 registration).
    pub async fn register_once(&self, namespace: &str) -> Result<WalkReport, String> {
        let me = self.overlay.node_id;
        let (mut reg, first) = Registration::start(self.params(namespace), me);
        self.walk(namespace, me.0, first, |ids| reg.fetched(ids))
            .await
    }

    /// Registers `namespace` now and keeps it refreshed.
    pub async fn register(&self, namespace: &str) -> Result<WalkReport, String> {
        check_namespace(namespace)?;
        if let Ok(mut s) = self.registered.lock() {
            s.insert(namespace.to_string());
        }
        self.register_once(namespace).await
    }

    /// Finds the provider of `namespace` closest after `key` (default: our Node-ID).
    pub async fn lookup(&self, namespace: &str, key: Option<u128>) -> Result<WalkReport, String> {
        check_namespace(namespace)?;
        let key = key.unwrap_or(self.overlay.node_id.0);
        let (mut l, first) = Lookup::start(self.params(namespace), key);
        self.walk(namespace, key, first, |ids| l.fetched(ids)).await
    }

    /// Registers `namespaces` and refreshes every registered namespace forever (retrying
    /// failures after a few seconds, e.g. while the node is still joining).
    pub fn spawn_refresh(&self, namespaces: &[String]) {
        if let Ok(mut s) = self.registered.lock() {
            s.extend(namespaces.iter().cloned());
        }
        let me = self.clone();
        tokio::spawn(async move {
            let refresh = Duration::from_secs(me.settings.refresh.max(1));
            loop {
                let mut failed = false;
                for ns in me.registered() {
                    match me.register_once(&ns).await {
                        Ok(r) => tracing::debug!(
                            "ReDiR: registered in {ns} ({} tree nodes)",
                            r.steps.len()
                        ),
                        Err(e) => {
                            failed = true;
                            tracing::info!("ReDiR: registration in {ns} failed, retrying: {e}");
                        }
                    }
                }
                let wait = if failed {
                    refresh.min(Duration::from_secs(2))
                } else {
                    refresh
                };
                tokio::time::sleep(wait).await;
            }
        });
    }
}

/// Decodes `%XX` escapes (and `+` as a space) of a query value; bad escapes stay as they are.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn check_namespace(ns: &str) -> Result<(), String> {
    if ns.is_empty() || ns.len() > 255 {
        return Err("namespace must be 1 to 255 bytes".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse() {
        assert_eq!(parse_key(&"0".repeat(31)), None);
        assert_eq!(parse_key(&format!("{:032x}", 42u128)), Some(42));
        assert_eq!(parse_key(&format!("0x{:032x}", u128::MAX)), Some(u128::MAX));
        assert_eq!(parse_key("zz"), None);
        assert!(check_namespace("").is_err());
        assert!(check_namespace("pstn-gateway").is_ok());
        assert_eq!(percent_decode("pstn%20gw+x%zz"), "pstn gw x%zz");
    }

    #[tokio::test]
    async fn a_stopped_overlay_is_an_error_not_a_hang() {
        let r = Redir::new(OverlayHandle::for_tests(), RedirSettings::default());
        assert!(r.lookup("pstn-gateway", None).await.is_err());
        assert!(r.register("pstn-gateway").await.is_err());
        assert_eq!(r.registered(), vec!["pstn-gateway".to_string()]);
    }
}
