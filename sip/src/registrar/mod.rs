//! A SIP registrar (RFC 3261 section 10), sans-IO: digest authentication (RFC 8760
//! SHA-256 and MD5), bindings with expiry, SIP outbound (RFC 5626), GRUU (RFC 5627, with the
//! RFC 7904 section 6 `gr` value supplied by the caller) and Path (RFC 3327).
//!
//! The caller passes in the time (a monotonic [`Instant`] for expiry and Unix seconds for
//! nonces and the Date header) and fresh random bytes for every request. Binding changes
//! come out as [`RegistrarEvent`]s; expiry runs from [`Registrar::poll_timeout`] /
//! [`Registrar::handle_timeout`].
//!
//! Choices where the RFCs leave room:
//! * A wrong password (or a user that does not exist) gets 403 after the challenge was
//!   answered; an unknown user goes through the same digest computation against a
//!   per-registrar dummy secret, so the answers and the work done do not reveal which users
//!   exist.
//! * A REGISTER whose CSeq is not above that of a binding with the same Call-ID aborts the
//!   whole update (RFC 3261 10.3 step 7) and is answered 500 with Retry-After.
//! * When `max_contacts` would be exceeded, the least recently refreshed bindings are
//!   dropped to make room; the new registration is never refused for it.

mod util;

pub use util::{format_q, parse_q, sip_date, uri_equivalent};

use crate::Source;
use crate::auth::{Algorithm, AuthError, Challenge, Credentials, NonceManager};
use crate::message::{Contacts, NameAddr, Request, Uri, split_commas};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Registrar settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// The SIP domain of the addresses-of-record, also the digest realm.
    pub domain: String,
    /// Other host names accepted in To (they mean `domain`).
    pub aliases: Vec<String>,
    /// Whether an IP address literal in To means `domain` (phones set up with the node's
    /// address as their domain).
    pub accept_ip_hosts: bool,
    /// Expiry when the request gives none.
    pub default_expires: u32,
    /// Shortest accepted expiry (RFC 3261 10.3 step 7: shorter ones get 423).
    pub min_expires: u32,
    /// Longest granted expiry (longer requests are shortened).
    pub max_expires: u32,
    /// Bindings kept per address-of-record.
    pub max_contacts: usize,
    /// Seconds a nonce stays valid.
    pub nonce_lifetime: u64,
    /// Digest algorithms offered, one WWW-Authenticate each, in this order (RFC 8760 2.4:
    /// preferred first). Some clients (SIPp 3.6) only read the first challenge.
    pub algorithms: Vec<Algorithm>,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            domain: "p2psip.local".to_owned(),
            aliases: Vec::new(),
            accept_ip_hosts: true,
            default_expires: 3600,
            min_expires: 60,
            max_expires: 7200,
            max_contacts: 10,
            nonce_lifetime: 300,
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        }
    }
}

/// How a user's secret is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// The password itself.
    Password(String),
    /// Precomputed `H(user:realm:password)` per algorithm (lower-case hex).
    Ha1 {
        /// MD5 HA1.
        md5: Option<String>,
        /// SHA-256 HA1.
        sha256: Option<String>,
    },
}

/// A user allowed to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User name: the user part of the address-of-record and the digest username.
    pub name: String,
    /// Its secret.
    pub secret: Secret,
    /// Display name, if any.
    pub display_name: Option<String>,
}

impl User {
    fn ha1(&self, alg: Algorithm, realm: &str) -> Option<String> {
        match (&self.secret, alg) {
            (Secret::Password(p), _) => Some(crate::auth::ha1(alg, &self.name, realm, p)),
            (Secret::Ha1 { md5, .. }, Algorithm::Md5 | Algorithm::Md5Sess) => md5.clone(),
            (Secret::Ha1 { sha256, .. }, Algorithm::Sha256 | Algorithm::Sha256Sess) => {
                sha256.clone()
            }
            (Secret::Ha1 { .. }, _) => None,
        }
    }

    fn algorithms(&self) -> Vec<Algorithm> {
        match &self.secret {
            Secret::Password(_) => vec![Algorithm::Sha256, Algorithm::Md5],
            Secret::Ha1 { md5, sha256 } => {
                let mut v = Vec::new();
                if sha256.is_some() {
                    v.push(Algorithm::Sha256);
                }
                if md5.is_some() {
                    v.push(Algorithm::Md5);
                }
                v
            }
        }
    }
}

/// One registered contact of an address-of-record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The Contact as registered, without its `expires` parameter.
    pub contact: NameAddr,
    /// q-value in thousandths (1000 when absent).
    pub q: u16,
    /// When it expires.
    pub expires_at: Instant,
    /// Seconds granted at the last registration.
    pub expires: u32,
    /// Unix time of the last registration.
    pub registered_unix: u64,
    /// Call-ID of the last registration.
    pub call_id: String,
    /// CSeq of the last registration.
    pub cseq: u32,
    /// `+sip.instance` value (RFC 5626 / 5627), as written (`"<urn:...>"`).
    pub instance: Option<String>,
    /// `reg-id` (RFC 5626), only kept together with an instance.
    pub reg_id: Option<u32>,
    /// Whether SIP outbound applies: requests go over the flow the binding came on.
    pub outbound: bool,
    /// Path header values (RFC 3327), in order.
    pub path: Vec<String>,
    /// Transport, addresses and connection the REGISTER arrived on (the flow).
    pub source: Source,
    /// Whether the source address differs from the Contact's host:port (a NATed phone):
    /// requests must go to `source`, not to the Contact.
    pub behind_nat: bool,
    /// Public GRUU (RFC 5627), when the phone asked for GRUUs.
    pub pub_gruu: Option<String>,
    /// Temporary GRUUs issued during this registration (same Call-ID), newest last.
    pub temp_gruus: Vec<String>,
    /// User-Agent of the phone.
    pub user_agent: Option<String>,
    /// Refresh order, for evicting the least recently refreshed binding.
    refreshed: u64,
}

impl Binding {
    /// Seconds left at `now`.
    pub fn expires_in(&self, now: Instant) -> u32 {
        let left = self.expires_at.saturating_duration_since(now);
        u32::try_from(left.as_secs() + u64::from(left.subsec_nanos() > 0)).unwrap_or(u32::MAX)
    }
}

/// Why a binding went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalReason {
    /// Its expiry time passed.
    Expired,
    /// The phone removed it (expires 0 or `Contact: *`).
    Unregistered,
    /// `max_contacts` was reached; it was the least recently refreshed.
    Evicted,
}

/// Changes for the overlay (the gateway Stores them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrarEvent {
    /// The bindings of `aor` changed; `bindings` is the full current set (maybe empty).
    BindingChanged {
        /// Address-of-record (`sip:user@domain`).
        aor: String,
        /// Every current binding.
        bindings: Vec<Binding>,
    },
    /// A binding was removed.
    BindingRemoved {
        /// Address-of-record.
        aor: String,
        /// The removed binding.
        binding: Box<Binding>,
        /// Why.
        reason: RemovalReason,
    },
}

/// What happened to a REGISTER, for logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A challenge was sent.
    Challenged {
        /// Whether the nonce was stale.
        stale: bool,
    },
    /// Bindings were added or refreshed (and maybe some removed).
    Registered {
        /// Address-of-record.
        aor: String,
        /// Current binding count.
        bindings: usize,
        /// Longest expiry granted in this request, seconds.
        expires: u32,
    },
    /// Bindings were removed; `bindings` remain.
    Unregistered {
        /// Address-of-record.
        aor: String,
        /// Remaining binding count.
        bindings: usize,
    },
    /// No Contact: the current bindings were listed.
    Queried {
        /// Address-of-record.
        aor: String,
        /// Binding count.
        bindings: usize,
    },
    /// Refused; the reason in plain words.
    Rejected(String),
}

/// The registrar's answer: status, reason and headers to add to the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers to add, in order.
    pub headers: Vec<(String, String)>,
    /// What happened.
    pub outcome: Outcome,
}

impl Reply {
    fn new(status: u16, reason: &str, outcome: Outcome) -> Reply {
        Reply {
            status,
            reason: reason.to_owned(),
            headers: Vec::new(),
            outcome,
        }
    }

    fn reject(status: u16, reason: &str, why: impl Into<String>) -> Reply {
        Reply::new(status, reason, Outcome::Rejected(why.into()))
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// Everything about one REGISTER that the caller knows.
#[derive(Debug, Clone)]
pub struct RegisterContext<'a> {
    /// The request.
    pub request: &'a Request,
    /// Where it came from.
    pub source: Source,
    /// Monotonic time.
    pub now: Instant,
    /// Wall clock, seconds since the Unix epoch.
    pub unix_secs: u64,
    /// Fresh random bytes for this request.
    pub random: [u8; 32],
}

/// Where a new or refreshed binding comes from in one request.
struct Incoming {
    contact: NameAddr,
    expires: u32,
    q: u16,
    instance: Option<String>,
    reg_id: Option<u32>,
}

/// The registrar.
#[derive(Debug)]
pub struct Registrar {
    cfg: RegistrarConfig,
    users: HashMap<String, User>,
    nonces: NonceManager,
    dummy_secret: String,
    gr: String,
    aors: HashMap<String, Vec<Binding>>,
    /// Earliest expiry of each AOR with bindings, ordered.
    expiry: BTreeSet<(Instant, String)>,
    events: VecDeque<RegistrarEvent>,
    refresh_counter: u64,
}

fn has_option_tag(req: &Request, header: &str, tag: &str) -> bool {
    req.headers
        .get_all(header)
        .flat_map(|v| split_commas(v).unwrap_or_default())
        .any(|t| t.eq_ignore_ascii_case(tag))
}

fn is_ip_literal(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.parse::<std::net::IpAddr>().is_ok()
}

impl Registrar {
    /// A registrar; `secret` (from the caller's randomness) keys nonces and the dummy
    /// credentials; `gr` is the `gr` parameter value of this node's public GRUUs (RFC 7904
    /// section 6: the base64 of a destination list naming this node, `~` for `=`).
    pub fn new(cfg: RegistrarConfig, secret: [u8; 32], gr: String) -> Self {
        let nonces = NonceManager::new(secret, cfg.nonce_lifetime);
        let dummy_secret = Algorithm::Sha256.hash(&[&secret[..], b"dummy"].concat());
        Registrar {
            cfg,
            users: HashMap::new(),
            nonces,
            dummy_secret,
            gr,
            aors: HashMap::new(),
            expiry: BTreeSet::new(),
            events: VecDeque::new(),
            refresh_counter: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RegistrarConfig {
        &self.cfg
    }

    /// Replaces the set of users (bindings of removed users stay until they expire).
    pub fn set_users(&mut self, users: impl IntoIterator<Item = User>) {
        self.users = users.into_iter().map(|u| (u.name.clone(), u)).collect();
    }

    /// How many users may register.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Whether `user` may register (and place calls).
    pub fn has_user(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// Whether `host` names the domain served here (domain, alias or, if allowed, an IP).
    pub fn serves_host(&self, host: &str) -> bool {
        self.host_is_ours(host)
    }

    /// The canonical address-of-record of a user: `sip:user@domain`.
    pub fn aor_of(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.cfg.domain)
    }

    /// The current bindings of `aor` (`sip:user@host`, `user@host` or a bare user name),
    /// best q-value first, most recently refreshed first among equals.
    pub fn lookup(&self, aor: &str, now: Instant) -> Vec<Binding> {
        let Some(key) = self.aor_key_of(aor) else {
            return Vec::new();
        };
        let mut v: Vec<Binding> = self
            .aors
            .get(&key)
            .map(|b| {
                b.iter()
                    .filter(|b| b.expires_at > now)
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        v.sort_by(|a, b| b.q.cmp(&a.q).then(b.refreshed.cmp(&a.refreshed)));
        v
    }

    /// The binding a temporary GRUU (`sip:tgruu.x@domain;gr`) stands for.
    pub fn resolve_temp_gruu(&self, uri: &str, now: Instant) -> Option<(String, Binding)> {
        let user = Uri::parse(uri)?.as_sip()?.user()?.to_owned();
        self.aors.iter().find_map(|(aor, list)| {
            list.iter()
                .find(|b| {
                    b.expires_at > now
                        && b.temp_gruus.iter().any(|g| {
                            Uri::parse(g)
                                .and_then(|u| u.as_sip().and_then(|s| s.user().map(str::to_owned)))
                                .is_some_and(|u| u == user)
                        })
                })
                .map(|b| {
                    (
                        self.aor_of(aor.split('@').next().unwrap_or_default()),
                        b.clone(),
                    )
                })
        })
    }

    /// Every address-of-record with bindings, and their count.
    pub fn registered(&self) -> Vec<(String, usize)> {
        self.aors
            .iter()
            .map(|(k, v)| {
                (
                    self.aor_of(k.split('@').next().unwrap_or_default()),
                    v.len(),
                )
            })
            .collect()
    }

    /// The next binding change event.
    pub fn poll_event(&mut self) -> Option<RegistrarEvent> {
        self.events.pop_front()
    }

    /// The earliest binding expiry.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.expiry.first().map(|(t, _)| *t)
    }

    /// Removes the bindings that expired by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((t, key)) = self.expiry.first().cloned() {
            if t > now {
                break;
            }
            // Removed first, so that a stale entry can never be seen twice.
            self.expiry.remove(&(t, key.clone()));
            let list = self.aors.get(&key).cloned().unwrap_or_default();
            let (gone, kept): (Vec<Binding>, Vec<Binding>) =
                list.into_iter().partition(|b| b.expires_at <= now);
            self.store(&key, kept.clone());
            let aor = self.aor_of(key.split('@').next().unwrap_or_default());
            if gone.is_empty() {
                continue;
            }
            for b in gone {
                self.events.push_back(RegistrarEvent::BindingRemoved {
                    aor: aor.clone(),
                    binding: Box::new(b),
                    reason: RemovalReason::Expired,
                });
            }
            self.events.push_back(RegistrarEvent::BindingChanged {
                aor,
                bindings: kept,
            });
        }
    }

    /// Sets the bindings of `key` and keeps the expiry index in step.
    fn store(&mut self, key: &str, bindings: Vec<Binding>) {
        if let Some(old) = self
            .aors
            .get(key)
            .and_then(|l| l.iter().map(|b| b.expires_at).min())
        {
            self.expiry.remove(&(old, key.to_owned()));
        }
        match bindings.iter().map(|b| b.expires_at).min() {
            Some(next) => {
                self.expiry.insert((next, key.to_owned()));
                self.aors.insert(key.to_owned(), bindings);
            }
            None => {
                self.aors.remove(key);
            }
        }
    }

    /// Map key `user@domain-lowercase` of an AOR string.
    fn aor_key_of(&self, aor: &str) -> Option<String> {
        let user = if aor.contains(':') {
            let uri = Uri::parse(aor)?;
            let sip = uri.as_sip()?;
            if !self.host_is_ours(&sip.host) {
                return None;
            }
            sip.user()?.to_owned()
        } else {
            match aor.split_once('@') {
                Some((u, h)) if self.host_is_ours(h) => u.to_owned(),
                Some(_) => return None,
                None => aor.to_owned(),
            }
        };
        Some(format!("{user}@{}", self.cfg.domain.to_ascii_lowercase()))
    }

    fn host_is_ours(&self, host: &str) -> bool {
        host.eq_ignore_ascii_case(&self.cfg.domain)
            || self
                .cfg
                .aliases
                .iter()
                .any(|a| a.eq_ignore_ascii_case(host))
            || (self.cfg.accept_ip_hosts && is_ip_literal(host))
    }

    fn challenge_as(
        &mut self,
        ctx: &RegisterContext<'_>,
        user: Option<&str>,
        stale: bool,
        proxy: bool,
    ) -> Reply {
        let mut nonce_random = [0u8; 16];
        nonce_random.copy_from_slice(ctx.random.get(..16).unwrap_or(&[0u8; 16]));
        let nonce = self.nonces.issue(ctx.unix_secs, nonce_random);
        // Unknown users get the same offer as password users.
        let offered = &self.cfg.algorithms;
        let algorithms: Vec<Algorithm> = user
            .and_then(|u| self.users.get(u))
            .map(|u| {
                let can = u.algorithms();
                offered
                    .iter()
                    .copied()
                    .filter(|a| can.contains(a))
                    .collect::<Vec<_>>()
            })
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| offered.clone());
        let (status, reason, header) = if proxy {
            (407, "Proxy Authentication Required", "Proxy-Authenticate")
        } else {
            (401, "Unauthorized", "WWW-Authenticate")
        };
        let mut reply = Reply::new(status, reason, Outcome::Challenged { stale });
        for algorithm in algorithms {
            let ch = Challenge {
                realm: self.cfg.domain.clone(),
                nonce: nonce.clone(),
                opaque: None,
                algorithm,
                qop_auth: true,
                stale,
            };
            reply = reply.header(header, ch.to_header_value());
        }
        reply
    }

    /// Checks the credentials; `Ok(username)` when they are right.
    fn authenticate(&mut self, ctx: &RegisterContext<'_>, to_user: &str) -> Result<String, Reply> {
        self.authenticate_as(ctx, to_user, false)
    }

    /// Authenticates a request a proxy forwards (RFC 3261 22.3): `Proxy-Authorization`
    /// checked against the users, `Ok(username)` when right, otherwise the 407 challenge
    /// (or 403/400) to answer with. `claimed_user` picks the algorithms offered.
    pub fn authenticate_proxy(
        &mut self,
        ctx: &RegisterContext<'_>,
        claimed_user: &str,
    ) -> Result<String, Reply> {
        self.authenticate_as(ctx, claimed_user, true)
    }

    fn authenticate_as(
        &mut self,
        ctx: &RegisterContext<'_>,
        to_user: &str,
        proxy: bool,
    ) -> Result<String, Reply> {
        let realm = self.cfg.domain.clone();
        let mut creds = None;
        let auth_header = if proxy {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        for value in ctx.request.headers.get_all(auth_header) {
            match Credentials::parse(value) {
                Ok(c) if c.realm == realm => {
                    creds = Some(c);
                    break;
                }
                Ok(_) => {}
                Err(_) => {
                    return Err(Reply::reject(
                        400,
                        "Bad Authorization",
                        "malformed Authorization header",
                    ));
                }
            }
        }
        let Some(creds) = creds else {
            return Err(self.challenge_as(ctx, Some(to_user), false, proxy));
        };
        // Unknown users, and algorithms a user has no HA1 for, are checked against a dummy
        // HA1: the same work and the same 403 as a wrong password.
        let known = self
            .users
            .get(&creds.username)
            .and_then(|u| u.ha1(creds.algorithm, &realm));
        let ha1 = match &known {
            Some(h) => h.clone(),
            None => crate::auth::ha1(creds.algorithm, &creds.username, &realm, &self.dummy_secret),
        };
        match self.nonces.verify(
            ctx.unix_secs,
            &creds,
            &realm,
            &ha1,
            ctx.request.method.as_str(),
        ) {
            Ok(()) if known.is_some() => Ok(creds.username),
            Ok(()) | Err(AuthError::WrongDigest) => Err(Reply::reject(
                403,
                "Forbidden",
                format!("wrong password or unknown user {:?}", creds.username),
            )),
            Err(AuthError::Stale) | Err(AuthError::UnknownNonce) if known.is_some() => {
                Err(self.challenge_as(ctx, Some(&creds.username), true, proxy))
            }
            Err(AuthError::Malformed) => Err(Reply::reject(
                400,
                "Bad Authorization",
                "malformed Authorization header",
            )),
            Err(_) => Err(self.challenge_as(ctx, Some(&creds.username), false, proxy)),
        }
    }

    /// Handles one REGISTER and says how to answer it.
    pub fn handle_register(&mut self, ctx: &RegisterContext<'_>) -> Reply {
        let req = ctx.request;
        let Some(to) = req.headers.to() else {
            return Reply::reject(400, "Bad To", "no usable To header");
        };
        let Some(to_sip) = to.uri.as_sip() else {
            return Reply::reject(404, "Not Found", "To is not a sip/sips URI");
        };
        let Some(to_user) = to_sip.user().map(str::to_owned) else {
            return Reply::reject(404, "Not Found", "To has no user part");
        };
        // RFC 3261 10.3 steps 3 and 4: authenticate, then authorise the AOR.
        let username = match self.authenticate(ctx, &to_user) {
            Ok(u) => u,
            Err(r) => return r,
        };
        if username != to_user {
            return Reply::reject(
                403,
                "Forbidden",
                format!("user {username:?} may not register {to_user:?}"),
            );
        }
        // Step 5: the AOR must be in our domain.
        if !self.host_is_ours(&to_sip.host) {
            return Reply::reject(
                404,
                "Not Found",
                format!("domain {} is not served here", to_sip.host),
            );
        }
        let key = format!("{to_user}@{}", self.cfg.domain.to_ascii_lowercase());
        let aor = self.aor_of(&to_user);
        let expires_header = match req.headers.get("Expires") {
            None => None,
            Some(v) => match crate::message::parse_delta_seconds(v) {
                Some(e) => Some(e),
                None => return Reply::reject(400, "Bad Expires", "Expires is not a number"),
            },
        };
        let (call_id, cseq) = match (req.headers.call_id(), req.headers.cseq()) {
            (Some(c), Some(s)) => (c.to_owned(), s.seq),
            _ => return Reply::reject(400, "Bad Request", "no Call-ID or CSeq"),
        };
        let contacts = if req.headers.contains("Contact") {
            match req.headers.contacts() {
                Some(c) => Some(c),
                None => {
                    return Reply::reject(
                        400,
                        "Bad Contact",
                        "malformed Contact (or * mixed with other contacts)",
                    );
                }
            }
        } else {
            None
        };
        let path: Vec<String> = req
            .headers
            .get_all("Path")
            .flat_map(|v| split_commas(v).unwrap_or_default())
            .map(str::to_owned)
            .collect();
        match contacts {
            None => {
                let n = self.lookup(&aor, ctx.now).len();
                self.ok(
                    ctx,
                    &key,
                    &aor,
                    &path,
                    false,
                    Outcome::Queried {
                        aor: aor.clone(),
                        bindings: n,
                    },
                )
            }
            Some(Contacts::Wildcard) => {
                if expires_header != Some(0) {
                    return Reply::reject(400, "Invalid Wildcard", "Contact: * needs Expires: 0");
                }
                self.remove_all(ctx, &key, &aor, &call_id, cseq, &path)
            }
            Some(Contacts::List(list)) => {
                self.update(ctx, &key, &aor, list, expires_header, &call_id, cseq, path)
            }
        }
    }

    fn remove_all(
        &mut self,
        ctx: &RegisterContext<'_>,
        key: &str,
        aor: &str,
        call_id: &str,
        cseq: u32,
        path: &[String],
    ) -> Reply {
        let list = self.aors.get(key).cloned().unwrap_or_default();
        if list.iter().any(|b| b.call_id == call_id && b.cseq >= cseq) {
            return out_of_order();
        }
        self.store(key, Vec::new());
        for b in list.iter() {
            self.events.push_back(RegistrarEvent::BindingRemoved {
                aor: aor.to_owned(),
                binding: Box::new(b.clone()),
                reason: RemovalReason::Unregistered,
            });
        }
        if !list.is_empty() {
            self.events.push_back(RegistrarEvent::BindingChanged {
                aor: aor.to_owned(),
                bindings: Vec::new(),
            });
        }
        self.ok(
            ctx,
            key,
            aor,
            path,
            false,
            Outcome::Unregistered {
                aor: aor.to_owned(),
                bindings: 0,
            },
        )
    }

    fn parse_incoming(
        &self,
        list: Vec<NameAddr>,
        expires_header: Option<u32>,
    ) -> Result<Vec<Incoming>, Reply> {
        let mut out = Vec::new();
        for mut contact in list {
            if contact.uri.as_sip().is_none() {
                return Err(Reply::reject(
                    400,
                    "Bad Contact",
                    format!("contact {} is not a sip/sips URI", contact.uri),
                ));
            }
            let expires = match contact.param("expires") {
                Some(Some(v)) => match crate::message::parse_delta_seconds(v) {
                    Some(e) => e,
                    None => {
                        return Err(Reply::reject(
                            400,
                            "Bad Contact",
                            "contact expires is not a number",
                        ));
                    }
                },
                Some(None) => {
                    return Err(Reply::reject(
                        400,
                        "Bad Contact",
                        "contact expires has no value",
                    ));
                }
                None => expires_header.unwrap_or(self.cfg.default_expires),
            };
            let q = match contact.param("q") {
                None => 1000,
                Some(v) => match v.and_then(parse_q) {
                    Some(q) => q,
                    None => {
                        return Err(Reply::reject(
                            400,
                            "Bad Contact",
                            "contact q is not a q-value",
                        ));
                    }
                },
            };
            let instance = contact.param("+sip.instance").flatten().map(str::to_owned);
            let reg_id = match contact.param("reg-id") {
                None => None,
                Some(v) => match v.and_then(|v| v.parse::<u32>().ok()).filter(|r| *r > 0) {
                    Some(r) => Some(r),
                    None => {
                        return Err(Reply::reject(400, "Bad Contact", "reg-id is not a number"));
                    }
                },
            };
            // RFC 5626 6: a reg-id without an instance is ignored.
            let reg_id = reg_id.filter(|_| instance.is_some());
            contact.params.retain(|p| {
                !["expires", "pub-gruu", "temp-gruu"]
                    .iter()
                    .any(|n| p.name.eq_ignore_ascii_case(n))
            });
            out.push(Incoming {
                contact,
                expires,
                q,
                instance,
                reg_id,
            });
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn update(
        &mut self,
        ctx: &RegisterContext<'_>,
        key: &str,
        aor: &str,
        list: Vec<NameAddr>,
        expires_header: Option<u32>,
        call_id: &str,
        cseq: u32,
        path: Vec<String>,
    ) -> Reply {
        let req = ctx.request;
        let incoming = match self.parse_incoming(list, expires_header) {
            Ok(i) => i,
            Err(r) => return r,
        };
        // RFC 3261 10.3 step 7 (and RFC 3261 20.23): too brief → 423 with Min-Expires.
        if incoming
            .iter()
            .any(|i| i.expires > 0 && i.expires < self.cfg.min_expires)
        {
            return Reply::reject(
                423,
                "Interval Too Brief",
                format!("asked for less than {} s", self.cfg.min_expires),
            )
            .header("Min-Expires", self.cfg.min_expires.to_string());
        }
        // RFC 5626 6: outbound with reg-id needs an edge proxy that supports it. We are
        // the edge proxy when the request came straight from the phone (one Via, no Path);
        // behind another proxy, that proxy must have put `ob` in its Path.
        let uses_reg_id = incoming.iter().any(|i| i.reg_id.is_some());
        if uses_reg_id {
            let first_hop_ok = match path.first() {
                Some(p) => NameAddr::parse(p)
                    .and_then(|n| n.uri.as_sip().map(|s| s.param("ob").is_some()))
                    .unwrap_or(false),
                None => req.headers.vias().is_some_and(|v| v.len() == 1),
            };
            if !first_hop_ok {
                return Reply::reject(
                    439,
                    "First Hop Lacks Outbound Support",
                    "reg-id through a first hop without outbound",
                );
            }
        }
        let outbound = uses_reg_id && has_option_tag(req, "Supported", "outbound");
        let gruu = has_option_tag(req, "Supported", "gruu");
        let user_agent = req.headers.get("User-Agent").map(str::to_owned);

        // Work on a copy; commit only when every contact succeeded (step 7).
        let mut bindings = self.aors.get(key).cloned().unwrap_or_default();
        let mut removed: Vec<(Binding, RemovalReason)> = Vec::new();
        let mut touched = Vec::new();
        let mut max_granted = 0;
        let mut random_counter: u8 = 0;
        for inc in incoming {
            let pos = bindings
                .iter()
                .position(|b| match (&inc.instance, inc.reg_id) {
                    (Some(inst), Some(rid)) => {
                        b.instance.as_deref() == Some(inst) && b.reg_id == Some(rid)
                    }
                    (Some(inst), None) => b.instance.as_deref() == Some(inst) && b.reg_id.is_none(),
                    (None, _) => uri_equivalent(&b.contact.uri, &inc.contact.uri),
                });
            if let Some(p) = pos
                && let Some(b) = bindings.get(p)
                && b.call_id == call_id
                && b.cseq >= cseq
            {
                return out_of_order();
            }
            let expires = inc.expires.min(self.cfg.max_expires);
            if expires == 0 {
                if let Some(p) = pos {
                    let b = bindings.remove(p);
                    removed.push((b, RemovalReason::Unregistered));
                }
                continue;
            }
            max_granted = max_granted.max(expires);
            self.refresh_counter += 1;
            let behind_nat = contact_differs_from_source(&inc.contact, &ctx.source);
            let pub_gruu = (gruu && inc.instance.is_some())
                .then(|| format!("sip:{}@{};gr={}", aor_user(aor), self.cfg.domain, self.gr));
            let mut temp_gruus = match pos.and_then(|p| bindings.get(p)) {
                Some(old) if old.call_id == call_id => old.temp_gruus.clone(),
                _ => Vec::new(),
            };
            if pub_gruu.is_some() {
                random_counter = random_counter.wrapping_add(1);
                let mut r = ctx.random.get(16..32).unwrap_or_default().to_vec();
                r.push(random_counter);
                let token = Algorithm::Sha256.hash(&r);
                let token = token.get(..24).unwrap_or(&token);
                temp_gruus.push(format!("sip:tgruu.{token}@{};gr", self.cfg.domain));
            } else {
                temp_gruus.clear();
            }
            let b = Binding {
                contact: inc.contact,
                q: inc.q,
                expires_at: ctx.now + Duration::from_secs(u64::from(expires)),
                expires,
                registered_unix: ctx.unix_secs,
                call_id: call_id.to_owned(),
                cseq,
                instance: inc.instance,
                reg_id: inc.reg_id,
                outbound: outbound && inc.reg_id.is_some(),
                path: path.clone(),
                source: ctx.source,
                behind_nat,
                pub_gruu,
                temp_gruus,
                user_agent: user_agent.clone(),
                refreshed: self.refresh_counter,
            };
            let idx = match pos {
                Some(p) => {
                    if let Some(slot) = bindings.get_mut(p) {
                        *slot = b;
                    }
                    p
                }
                None => {
                    bindings.push(b);
                    bindings.len() - 1
                }
            };
            touched.push(bindings.get(idx).map(|b| b.refreshed).unwrap_or_default());
        }
        // max_contacts: drop the least recently refreshed, never refuse the new one.
        while bindings.len() > self.cfg.max_contacts.max(1) {
            let Some((oldest, _)) = bindings.iter().enumerate().min_by_key(|(_, b)| b.refreshed)
            else {
                break;
            };
            let b = bindings.remove(oldest);
            removed.push((b, RemovalReason::Evicted));
        }
        // Commit.
        let changed = !removed.is_empty() || !touched.is_empty();
        for (b, reason) in removed {
            self.events.push_back(RegistrarEvent::BindingRemoved {
                aor: aor.to_owned(),
                binding: Box::new(b),
                reason,
            });
        }
        let count = bindings.len();
        self.store(key, bindings.clone());
        if changed {
            self.events.push_back(RegistrarEvent::BindingChanged {
                aor: aor.to_owned(),
                bindings,
            });
        }
        let outcome = if touched.is_empty() {
            Outcome::Unregistered {
                aor: aor.to_owned(),
                bindings: count,
            }
        } else {
            Outcome::Registered {
                aor: aor.to_owned(),
                bindings: count,
                expires: max_granted,
            }
        };
        self.ok(ctx, key, aor, &path, outbound, outcome)
    }

    /// The 200 OK: every current binding with its expires (RFC 3261 10.3 step 8), GRUUs,
    /// Path, outbound, Date.
    #[allow(clippy::too_many_arguments)]
    fn ok(
        &self,
        ctx: &RegisterContext<'_>,
        key: &str,
        _aor: &str,
        path: &[String],
        outbound: bool,
        outcome: Outcome,
    ) -> Reply {
        let mut reply = Reply::new(200, "OK", outcome);
        let mut list = self.aors.get(key).cloned().unwrap_or_default();
        list.sort_by(|a, b| b.q.cmp(&a.q).then(b.refreshed.cmp(&a.refreshed)));
        for b in list.iter().filter(|b| b.expires_at > ctx.now) {
            let mut c = b.contact.clone();
            c.set_param("expires", Some(&b.expires_in(ctx.now).to_string()));
            if let Some(g) = &b.pub_gruu {
                c.set_param("pub-gruu", Some(&format!("\"{g}\"")));
                if let Some(t) = b.temp_gruus.last() {
                    c.set_param("temp-gruu", Some(&format!("\"{t}\"")));
                }
            }
            reply = reply.header("Contact", c.to_string());
        }
        for p in path {
            reply = reply.header("Path", p.clone());
        }
        if outbound {
            reply = reply.header("Require", "outbound");
        }
        reply = reply.header("Supported", "outbound, gruu, path");
        reply.header("Date", sip_date(ctx.unix_secs))
    }
}

fn out_of_order() -> Reply {
    Reply::reject(
        500,
        "Server Internal Error",
        "CSeq not above that of an existing binding with the same Call-ID",
    )
    .header("Retry-After", "1")
}

fn aor_user(aor: &str) -> &str {
    let rest = aor.strip_prefix("sip:").unwrap_or(aor);
    rest.rsplit_once('@').map_or(rest, |(u, _)| u)
}

/// Whether the Contact's host:port is not where the request came from (NAT).
fn contact_differs_from_source(contact: &NameAddr, source: &Source) -> bool {
    let Some(sip) = contact.uri.as_sip() else {
        return true;
    };
    let host = sip.host.trim_start_matches('[').trim_end_matches(']');
    let port = sip.port.unwrap_or(if sip.secure { 5061 } else { 5060 });
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip != source.remote.ip() || port != source.remote.port(),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests;
