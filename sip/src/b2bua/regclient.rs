//! A registration client (RFC 3261 10.2), sans-IO: registers one contact of ours with a
//! carrier's registrar, answers its 401/407 with digest credentials and refreshes before
//! the granted expiry; after a failure it tries again later.

use super::DigestCredentials;
use crate::auth::{Challenge, Credentials as DigestAnswer, QopAuth, compute_response};
use crate::endpoint::{Destination, Endpoint, Event};
use crate::message::{CSeq, Headers, Method, NameAddr, Request, Uri, Via};
use crate::transaction::TransactionKey;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegClientConfig {
    /// Name for logs (the trunk's).
    pub name: String,
    /// Request-URI: the registrar (`sip:carrier.example`).
    pub registrar: Uri,
    /// The address-of-record at the carrier (To and From).
    pub aor: Uri,
    /// Where to send the REGISTER.
    pub dest: Destination,
    /// Our address (Via and Contact).
    pub local: SocketAddr,
    /// Expiry asked for, seconds.
    pub expires: u32,
    /// Digest credentials.
    pub credentials: Option<DigestCredentials>,
    /// Delay before trying again after a failure.
    pub retry: Duration,
}

/// State of the registration, for logs and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegState {
    /// Not yet tried.
    Idle,
    /// A REGISTER is out.
    Registering,
    /// Registered until this time.
    Registered(Instant),
    /// The last attempt failed with this status (0: no answer).
    Failed(u16),
}

/// The registration client.
#[derive(Debug)]
pub struct RegClient {
    cfg: RegClientConfig,
    call_id: String,
    from_tag: String,
    cseq: u32,
    state: RegState,
    pending: Option<TransactionKey>,
    auth_tried: bool,
    next: Option<Instant>,
}

impl RegClient {
    /// A client that registers at the first [`RegClient::handle_timeout`] (or `start`).
    pub fn new(cfg: RegClientConfig, call_id: String, from_tag: String, now: Instant) -> Self {
        RegClient {
            cfg,
            call_id,
            from_tag,
            cseq: 0,
            state: RegState::Idle,
            pending: None,
            auth_tried: false,
            next: Some(now),
        }
    }

    /// The current state.
    pub fn state(&self) -> &RegState {
        &self.state
    }

    /// When [`RegClient::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next
    }

    /// Sends the REGISTER when due.
    pub fn handle_timeout(&mut self, ep: &mut Endpoint, now: Instant) {
        if self.next.is_some_and(|n| n <= now) {
            self.next = None;
            self.auth_tried = false;
            self.send(ep, now, None);
        }
    }

    fn build(&mut self, ep: &mut Endpoint) -> Request {
        self.cseq = self.cseq.wrapping_add(1);
        let mut h = Headers::new();
        let mut via = Via::new(
            self.cfg.dest.transport.via_token(),
            &self.cfg.local.ip().to_string(),
            Some(self.cfg.local.port()),
            &ep.new_branch(),
        );
        via.set_param("rport", None);
        h.push("Via", via.to_string());
        h.push("Max-Forwards", "70");
        let mut from = NameAddr::new(self.cfg.aor.clone());
        from.set_param("tag", Some(&self.from_tag));
        h.push("From", from.to_string());
        h.push("To", NameAddr::new(self.cfg.aor.clone()).to_string());
        h.push("Call-ID", self.call_id.clone());
        h.push(
            "CSeq",
            CSeq {
                seq: self.cseq,
                method: Method::Register,
            }
            .to_string(),
        );
        let user = self
            .cfg
            .aor
            .as_sip()
            .and_then(|u| u.user())
            .unwrap_or("trunk")
            .to_owned();
        let tp = match self.cfg.dest.transport {
            crate::Transport::Udp => "",
            crate::Transport::Tcp => ";transport=tcp",
            crate::Transport::Tls => ";transport=tls",
        };
        h.push("Contact", format!("<sip:{user}@{}{tp}>", self.cfg.local));
        h.push("Expires", self.cfg.expires.to_string());
        h.push("User-Agent", ep.config().server_name.clone());
        h.push("Content-Length", "0");
        Request {
            method: Method::Register,
            uri: self.cfg.registrar.clone(),
            headers: h,
            body: Vec::new(),
        }
    }

    fn send(&mut self, ep: &mut Endpoint, now: Instant, auth: Option<(&str, String)>) {
        let mut req = self.build(ep);
        if let Some((name, value)) = auth {
            req.headers.push(name, value);
        }
        match ep.send_request(now, req, self.cfg.dest) {
            Ok(k) => {
                self.pending = Some(k);
                self.state = RegState::Registering;
            }
            Err(e) => {
                tracing::warn!("trunk {}: REGISTER not sent: {e}", self.cfg.name);
                self.failed(now, 0);
            }
        }
    }

    fn failed(&mut self, now: Instant, status: u16) {
        self.pending = None;
        self.state = RegState::Failed(status);
        self.next = Some(now + self.cfg.retry);
    }

    /// Feeds an endpoint event in; returns it when it is not this client's.
    pub fn on_event(&mut self, ep: &mut Endpoint, now: Instant, event: Event) -> Option<Event> {
        match event {
            Event::Response { key, response } if self.pending.as_ref() == Some(&key) => {
                if response.status < 200 {
                    return None;
                }
                self.pending = None;
                let status = response.status;
                if matches!(status, 401 | 407) && !self.auth_tried {
                    self.auth_tried = true;
                    if let Some(auth) = self.answer(&response) {
                        self.send(ep, now, Some(auth));
                        return None;
                    }
                }
                if (200..300).contains(&status) {
                    let granted = granted_expiry(&response.headers, self.cfg.expires);
                    tracing::info!(
                        "trunk {}: registered with the carrier for {granted} s",
                        self.cfg.name
                    );
                    let g = Duration::from_secs(u64::from(granted));
                    self.state = RegState::Registered(now + g);
                    // Refresh at 80% of the granted time (at least 5 s ahead).
                    let refresh = (g * 4 / 5).max(Duration::from_secs(1));
                    self.next = Some(now + refresh);
                } else {
                    tracing::warn!(
                        "trunk {}: the carrier refused the registration with {status} {}; trying again in {} s",
                        self.cfg.name,
                        response.reason,
                        self.cfg.retry.as_secs()
                    );
                    self.failed(now, status);
                }
                None
            }
            Event::Timeout { key } if self.pending.as_ref() == Some(&key) => {
                tracing::warn!(
                    "trunk {}: no answer to REGISTER; trying again in {} s",
                    self.cfg.name,
                    self.cfg.retry.as_secs()
                );
                self.failed(now, 0);
                None
            }
            other => Some(other),
        }
    }

    fn answer(&self, challenge: &crate::message::Response) -> Option<(&'static str, String)> {
        let creds = self.cfg.credentials.as_ref()?;
        let (hname, aname) = if challenge.status == 401 {
            ("WWW-Authenticate", "Authorization")
        } else {
            ("Proxy-Authenticate", "Proxy-Authorization")
        };
        let ch = challenge
            .headers
            .get_all(hname)
            .find_map(Challenge::parse)?;
        let uri = self.cfg.registrar.to_string();
        let cnonce = format!("{:08x}", self.cseq);
        let qop = ch.qop_auth.then_some((1u32, cnonce));
        let response = compute_response(
            ch.algorithm,
            &creds.username,
            &ch.realm,
            &creds.password,
            &ch.nonce,
            "REGISTER",
            &uri,
            qop.as_ref()
                .map(|(nc, c)| QopAuth {
                    nc: *nc,
                    cnonce: c.as_str(),
                })
                .as_ref(),
        );
        let a = DigestAnswer {
            username: creds.username.clone(),
            realm: ch.realm,
            nonce: ch.nonce,
            uri,
            response,
            algorithm: ch.algorithm,
            qop,
            opaque: ch.opaque,
        };
        Some((aname, a.to_header_value()))
    }
}

/// The expiry the registrar granted: the `expires` of our Contact, else Expires, else what
/// we asked for.
fn granted_expiry(h: &Headers, asked: u32) -> u32 {
    let from_contact = h
        .get_all("Contact")
        .filter_map(NameAddr::parse_list)
        .flatten()
        .find_map(|c| c.param("expires").flatten().and_then(|v| v.parse().ok()));
    from_contact.or_else(|| h.expires()).unwrap_or(asked)
}
