//! A back-to-back user agent (RFC 3261 UAS + UAC, RFC 7092 terminology), sans-IO, driven
//! through the [`Endpoint`] like the [`crate::proxy::Proxy`].
//!
//! The application hands over an out-of-dialog INVITE ([`B2bua::start`]) with an ordered
//! list of far targets (trunks). The B2BUA answers the caller as a UAS (the "A leg") and
//! places a new call to the first target as a UAC (the "B leg"): its own Call-ID, From tag,
//! CSeq space and Contact, so neither side learns the other's Via, Record-Route, Contact or
//! Call-ID (topology hiding). A 401/407 of the far side is answered once with the target's
//! digest credentials (never the caller's); a 503, 408 or no answer within
//! [`B2buaConfig::attempt_timeout`] moves on to the next target (failover). Provisional and
//! final responses, ACK, BYE, CANCEL and in-dialog requests (re-INVITE, UPDATE, INFO, ...)
//! are relayed both ways; the SDP body is copied untouched. Every call ends in one
//! [`CallRecord`].

#[cfg(test)]
mod tests;

pub mod regclient;

use crate::auth::{Challenge, Credentials as DigestAnswer, QopAuth, compute_response};
use crate::endpoint::{Destination, Endpoint, Event, Source, Transport};
use crate::message::{CSeq, Headers, Method, NameAddr, Request, Response, Uri, Via};
use crate::proxy::{CallRecord, uri_destination};
use crate::transaction::TransactionKey;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Digest credentials for answering a far side's challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// One place the far leg may be sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FarTarget {
    /// Name for logs and records (the trunk's name).
    pub name: String,
    /// Request-URI of the far leg.
    pub uri: Uri,
    /// From URI of the far leg (the caller as the far side should see it).
    pub from: Uri,
    /// Display name for From.
    pub from_display: Option<String>,
    /// To URI of the far leg.
    pub to: Uri,
    /// Where to send it.
    pub dest: Destination,
    /// Answers to 401/407 from the far side.
    pub credentials: Option<DigestCredentials>,
}

/// B2BUA settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct B2buaConfig {
    /// Our addresses per transport (Via sent-by and Contact); when a transport has none, the
    /// address the request arrived at is used.
    pub local: Vec<(Transport, SocketAddr)>,
    /// How long a far target may stay silent (not even 100 Trying) before the next one is
    /// tried.
    pub attempt_timeout: Duration,
    /// How long a far leg may ring before the call is given up with 480.
    pub ring_timeout: Duration,
    /// T1 (for retransmitting our 2xx to the caller over UDP).
    pub t1: Duration,
    /// T2.
    pub t2: Duration,
    /// This node's `p2pnode` value: when set, responses to the caller carry our own
    /// Record-Route naming this node on top of the caller side's, so that in-dialog
    /// requests that crossed other nodes of the overlay find their way back here.
    pub node_param: Option<String>,
}

impl Default for B2buaConfig {
    fn default() -> Self {
        B2buaConfig {
            local: Vec::new(),
            attempt_timeout: Duration::from_secs(5),
            ring_timeout: Duration::from_secs(120),
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            node_param: None,
        }
    }
}

/// One side of the bridged call: the dialog state of that leg as seen by us.
#[derive(Debug, Clone)]
struct Leg {
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    /// Our URI on this leg (From of our requests).
    local_uri: NameAddr,
    /// The peer's URI on this leg (To of our requests).
    remote_uri: NameAddr,
    remote_target: Uri,
    /// Whether `remote_target` came from the peer (a Contact); until then requests go to
    /// `dest` (the configured trunk address or the caller's flow).
    target_learned: bool,
    /// Requests on this leg always go to `dest` (the caller's flow: the phone, or the node
    /// that proxied the call here).
    use_flow: bool,
    /// Route set for our requests on this leg, in the order to send.
    route_set: Vec<String>,
    local_cseq: u32,
    /// CSeq number of the last INVITE we sent on this leg (for its ACK).
    invite_cseq: u32,
    dest: Destination,
    /// Our address on this leg.
    local: SocketAddr,
}

/// Which leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Side {
    /// The caller's leg (we are the UAS of the initial INVITE).
    A,
    /// The far leg (we are the UAC).
    B,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The far INVITE is out, nothing heard yet.
    Calling,
    /// A provisional response came.
    Proceeding,
    /// Both legs answered.
    Confirmed,
    /// Over (BYE seen or failed); kept until the linger time passes.
    Ended,
}

/// What a client transaction of ours is for.
#[derive(Debug, Clone)]
enum Purpose {
    /// The initial INVITE of the far leg (attempt number).
    Invite(u32),
    /// A relayed in-dialog request: answer the server transaction on the other side.
    Relay {
        server: TransactionKey,
        to: Side,
        request: Request,
        auth_tried: bool,
    },
    /// A BYE we originated on `to` (retried once with credentials).
    Bye {
        to: Side,
        request: Request,
        auth_tried: bool,
    },
    /// An abandoned attempt of a failed-over call: a late 2xx is ACKed and hung up.
    Stale { leg: Box<Leg> },
}

#[derive(Debug)]
struct Call {
    server: TransactionKey,
    invite: Request,
    a: Leg,
    b: Option<Leg>,
    /// The far INVITE currently out (to CANCEL it, or to resend it with credentials).
    b_invite: Option<(TransactionKey, Request)>,
    targets: VecDeque<FarTarget>,
    target: Option<FarTarget>,
    attempt: u32,
    auth_tries: u32,
    state: State,
    cancel_wanted: bool,
    cancelled: bool,
    /// A's INVITE had no body: the ACK towards B waits for A's ACK (late offer).
    late_offer: bool,
    /// Bytes of the ACK we sent to B's 2xx (resent on 2xx retransmissions).
    b_ack: Option<Vec<u8>>,
    /// Our 2xx to A and its next retransmission (UDP) time and interval.
    a_2xx: Option<(Response, Instant, Duration, Instant)>,
    start: Instant,
    answer: Option<Instant>,
    attempt_deadline: Option<Instant>,
    ring_deadline: Option<Instant>,
    linger: Option<Instant>,
    last_status: Option<(u16, String)>,
    timed_out: bool,
}

/// The B2BUA core.
#[derive(Debug)]
pub struct B2bua {
    cfg: B2buaConfig,
    next_id: u64,
    calls: HashMap<u64, Call>,
    by_server: HashMap<TransactionKey, u64>,
    by_client: HashMap<TransactionKey, (u64, Purpose)>,
    /// (Call-ID, our tag) -> call and leg.
    by_dialog: HashMap<(String, String), (u64, Side)>,
    timers: BTreeSet<(Instant, u64)>,
    records: VecDeque<CallRecord>,
}

/// Errors of [`B2bua::start`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum B2buaError {
    /// The request is not an out-of-dialog INVITE.
    #[error("only an out-of-dialog INVITE starts a bridged call")]
    NotInitialInvite,
    /// The INVITE lacks From, To, Call-ID or CSeq.
    #[error("INVITE lacks From, To, Call-ID or CSeq")]
    Malformed,
    /// The server transaction is gone.
    #[error("no such server transaction")]
    UnknownTransaction,
}

fn header_values(h: &Headers, name: &str) -> Vec<String> {
    h.get_all(name)
        .flat_map(|v| crate::message::split_commas(v).unwrap_or_default())
        .map(|s| s.trim().to_owned())
        .collect()
}

fn first_contact(h: &Headers) -> Option<Uri> {
    let v = h.get("Contact")?;
    let list = NameAddr::parse_list(v)?;
    list.into_iter().next().map(|n| n.uri)
}

fn transport_param(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "",
        Transport::Tcp => ";transport=tcp",
        Transport::Tls => ";transport=tls",
    }
}

fn result_words(status: u16) -> &'static str {
    match status {
        200..=299 => "answered",
        486 | 600 => "busy",
        480 | 408 => "no answer",
        487 => "cancelled",
        404 | 604 => "not found",
        _ => "failed",
    }
}

/// Copies the body and its type headers.
fn copy_body(from_headers: &Headers, body: &[u8], to: &mut Headers) -> Vec<u8> {
    for n in ["Content-Type", "Content-Disposition", "Content-Encoding"] {
        if let Some(v) = from_headers.get(n) {
            to.push(n, v);
        }
    }
    body.to_vec()
}

impl B2bua {
    /// A B2BUA.
    pub fn new(cfg: B2buaConfig) -> Self {
        B2bua {
            cfg,
            next_id: 1,
            calls: HashMap::new(),
            by_server: HashMap::new(),
            by_client: HashMap::new(),
            by_dialog: HashMap::new(),
            timers: BTreeSet::new(),
            records: VecDeque::new(),
        }
    }

    /// The next finished call record.
    pub fn poll_record(&mut self) -> Option<CallRecord> {
        self.records.pop_front()
    }

    /// How many calls are being bridged (including ones lingering after their end).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// When [`B2bua::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| *t)
    }

    fn local_addr(&self, transport: Transport, fallback: SocketAddr) -> SocketAddr {
        local_of(&self.cfg, transport, fallback)
    }

    fn contact(&self, leg: &Leg, id: u64) -> String {
        format!(
            "<sip:b2b{id}@{}{}>",
            leg.local,
            transport_param(leg.dest.transport)
        )
    }

    /// Whether this event belongs to a bridged call (in-dialog request, ACK, CANCEL,
    /// response or timeout of ours).
    pub fn owns(&self, event: &Event) -> bool {
        match event {
            Event::Request { key, request, .. } => {
                self.by_server.contains_key(key) || self.dialog_of(request).is_some()
            }
            Event::Ack { request, .. } => self.dialog_of(request).is_some(),
            Event::Cancelled { invite } => self.by_server.contains_key(invite),
            Event::Response { key, .. } | Event::Timeout { key } => {
                self.by_client.contains_key(key) || self.by_server.contains_key(key)
            }
            Event::Dropped { .. } => false,
        }
    }

    fn dialog_of(&self, request: &Request) -> Option<(u64, Side)> {
        let call_id = request.headers.call_id()?;
        let to = request.headers.to()?;
        let tag = to.tag()?;
        self.by_dialog
            .get(&(call_id.to_owned(), tag.to_owned()))
            .copied()
    }

    /// Starts bridging the INVITE of server transaction `key` to `targets`, tried in order.
    /// An empty target list answers 503 at once.
    pub fn start(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        key: TransactionKey,
        request: Request,
        source: Source,
        targets: Vec<FarTarget>,
    ) -> Result<u64, B2buaError> {
        if request.method != Method::Invite
            || request.headers.to().is_some_and(|t| t.tag().is_some())
        {
            return Err(B2buaError::NotInitialInvite);
        }
        let h = &request.headers;
        let (Some(from), Some(to), Some(call_id), Some(cseq)) =
            (h.from(), h.to(), h.call_id().map(str::to_owned), h.cseq())
        else {
            return Err(B2buaError::Malformed);
        };
        let remote_target = first_contact(h).unwrap_or_else(|| from.uri.clone());
        let route_set = header_values(h, "Record-Route");
        // The To tag the endpoint gives every response of this transaction.
        let probe = ep
            .make_response(&key, 180, "Ringing")
            .ok_or(B2buaError::UnknownTransaction)?;
        let local_tag = probe
            .headers
            .to()
            .and_then(|t| t.tag().map(str::to_owned))
            .unwrap_or_default();
        let local = self.local_addr(source.transport, source.local);
        let mut local_uri = to.clone();
        local_uri.set_param("tag", Some(&local_tag));
        let a = Leg {
            call_id: call_id.clone(),
            local_tag: local_tag.clone(),
            remote_tag: from.tag().map(str::to_owned),
            local_uri,
            remote_uri: from.clone(),
            remote_target,
            target_learned: false,
            use_flow: true,
            // As UAS: the Record-Route values in order (RFC 3261 12.1.1).
            route_set,
            local_cseq: cseq.seq.wrapping_add(100_000),
            invite_cseq: 0,
            dest: Destination {
                transport: source.transport,
                remote: source.remote,
                conn: source.conn,
            },
            local,
        };
        let id = self.next_id;
        self.next_id += 1;
        let late_offer = request.body.is_empty();
        let call = Call {
            server: key.clone(),
            invite: request,
            a,
            b: None,
            b_invite: None,
            targets: targets.into(),
            target: None,
            attempt: 0,
            auth_tries: 0,
            state: State::Calling,
            cancel_wanted: false,
            cancelled: false,
            late_offer,
            b_ack: None,
            a_2xx: None,
            start: now,
            answer: None,
            attempt_deadline: None,
            ring_deadline: Some(now + self.cfg.ring_timeout),
            linger: None,
            last_status: None,
            timed_out: false,
        };
        self.calls.insert(id, call);
        self.by_server.insert(key, id);
        self.by_dialog.insert((call_id, local_tag), (id, Side::A));
        self.next_attempt(ep, now, id);
        self.reschedule(id);
        Ok(id)
    }

    fn reschedule(&mut self, id: u64) {
        self.timers.retain(|(_, i)| *i != id);
        let Some(c) = self.calls.get(&id) else {
            return;
        };
        let t = [
            c.attempt_deadline,
            c.ring_deadline,
            c.linger,
            c.a_2xx.as_ref().map(|(_, at, _, _)| *at),
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(t) = t {
            self.timers.insert((t, id));
        }
    }

    /// Sends the far INVITE to the next target, or gives the caller the final answer when
    /// none is left.
    fn next_attempt(&mut self, ep: &mut Endpoint, now: Instant, id: u64) {
        let inv = call_invite(&self.calls, id);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(target) = call.targets.pop_front() else {
            let (status, reason) = match (&call.last_status, call.timed_out) {
                (Some((503, _)), _) => (503, "Service Unavailable".to_owned()),
                (Some((s, r)), _) => (*s, r.clone()),
                (None, true) => (408, "Request Timeout".to_owned()),
                (None, false) => (503, "Service Unavailable".to_owned()),
            };
            tracing::info!(
                call_id = call.a.call_id,
                "no trunk left to try for {}: answering {status} {reason}",
                call.invite.uri
            );
            self.fail(ep, now, id, status, &reason);
            return;
        };
        call.attempt += 1;
        call.auth_tries = 0;
        call.state = State::Calling;
        let attempt = call.attempt;
        let local = local_of(&self.cfg, target.dest.transport, call.a.local);
        let mut from = NameAddr::new(target.from.clone());
        from.display = target.from_display.clone();
        let tag = ep.new_tag();
        from.set_param("tag", Some(&tag));
        let call_id = format!("{}-b2b{id}a{attempt}", ep.new_tag());
        let leg = Leg {
            call_id: call_id.clone(),
            local_tag: tag.clone(),
            remote_tag: None,
            local_uri: from,
            remote_uri: NameAddr::new(target.to.clone()),
            remote_target: target.uri.clone(),
            target_learned: false,
            use_flow: false,
            route_set: Vec::new(),
            local_cseq: 1,
            invite_cseq: 1,
            dest: target.dest,
            local,
        };
        let mut req = self.leg_request(ep, id, &leg, Method::Invite, 1);
        if let Some(inv) = &inv {
            req.body = copy_body(&inv.headers, &inv.body, &mut req.headers);
            if let Some(v) = inv.headers.get("Allow") {
                req.headers.push("Allow", v);
            }
        }
        req.headers
            .set("Content-Length", req.body.len().to_string());
        tracing::info!(
            call_id = leg.call_id,
            "bridging call to {} through {} ({} {}), attempt {attempt}",
            target.uri,
            target.name,
            target.dest.transport.via_token(),
            target.dest.remote
        );
        let sent = ep.send_request(now, req.clone(), target.dest);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.target = Some(target);
        match sent {
            Ok(k) => {
                self.by_dialog.insert((call_id, tag), (id, Side::B));
                call.b = Some(leg);
                call.b_invite = Some((k.clone(), req));
                call.attempt_deadline = Some(now + self.cfg.attempt_timeout);
                self.by_client.insert(k, (id, Purpose::Invite(attempt)));
                self.reschedule(id);
            }
            Err(e) => {
                tracing::warn!("could not send the far INVITE: {e}");
                call.last_status = Some((503, "Service Unavailable".into()));
                self.next_attempt(ep, now, id);
            }
        }
    }

    /// A new request on `leg` with fresh Via, our Contact, the leg's dialog identifiers.
    fn leg_request(
        &self,
        ep: &mut Endpoint,
        id: u64,
        leg: &Leg,
        method: Method,
        seq: u32,
    ) -> Request {
        let mut h = Headers::new();
        let via = Via::new(
            leg.dest.transport.via_token(),
            &leg.local.ip().to_string(),
            Some(leg.local.port()),
            &ep.new_branch(),
        );
        let mut via = via;
        via.set_param("rport", None);
        h.push("Via", via.to_string());
        for r in &leg.route_set {
            h.push("Route", r.clone());
        }
        h.push("Max-Forwards", "70");
        h.push("From", leg.local_uri.to_string());
        let mut to = leg.remote_uri.clone();
        if let Some(t) = &leg.remote_tag {
            to.set_param("tag", Some(t));
        }
        h.push("To", to.to_string());
        h.push("Call-ID", leg.call_id.clone());
        h.push(
            "CSeq",
            CSeq {
                seq,
                method: method.clone(),
            }
            .to_string(),
        );
        if matches!(
            method,
            Method::Invite | Method::Update | Method::Subscribe | Method::Refer | Method::Notify
        ) {
            h.push("Contact", self.contact(leg, id));
        }
        h.push("User-Agent", ep.config().server_name.clone());
        h.push("Content-Length", "0");
        Request {
            method,
            uri: leg.remote_target.clone(),
            headers: h,
            body: Vec::new(),
        }
    }

    /// Where a request on `leg` goes: the first Route if it is an address, else the remote
    /// target if it is one, else the leg's flow.
    fn leg_dest(leg: &Leg) -> Destination {
        if leg.use_flow || leg.route_set.is_empty() && !leg.target_learned {
            return leg.dest;
        }
        let hop = leg
            .route_set
            .first()
            .and_then(|r| NameAddr::parse(r))
            .map(|n| n.uri)
            .unwrap_or_else(|| leg.remote_target.clone());
        match hop.as_sip().and_then(uri_destination) {
            Some(mut d) if d.transport == leg.dest.transport => {
                if d.remote == leg.dest.remote {
                    d.conn = leg.dest.conn;
                }
                d
            }
            _ => leg.dest,
        }
    }

    /// Feeds one endpoint event in. Returns it when it is not the B2BUA's business.
    pub fn on_event(&mut self, ep: &mut Endpoint, now: Instant, event: Event) -> Option<Event> {
        match event {
            Event::Request {
                key,
                request,
                source,
            } => match self.dialog_of(&request) {
                Some((id, side)) => {
                    self.on_in_dialog(ep, now, id, side, key, request, source);
                    None
                }
                None => Some(Event::Request {
                    key,
                    request,
                    source,
                }),
            },
            Event::Ack { request, source } => match self.dialog_of(&request) {
                Some((id, side)) => {
                    self.on_ack(ep, now, id, side, request);
                    None
                }
                None => Some(Event::Ack { request, source }),
            },
            Event::Cancelled { invite } => match self.by_server.get(&invite).copied() {
                Some(id) => {
                    self.on_cancel(ep, now, id);
                    None
                }
                None => Some(Event::Cancelled { invite }),
            },
            Event::Response { key, response } => match self.by_client.get(&key).cloned() {
                Some((id, purpose)) => {
                    self.on_response(ep, now, id, key, purpose, response);
                    None
                }
                None => Some(Event::Response { key, response }),
            },
            Event::Timeout { key } => {
                if let Some((id, purpose)) = self.by_client.get(&key).cloned() {
                    self.on_client_timeout(ep, now, id, key, purpose);
                    return None;
                }
                if self.by_server.contains_key(&key) {
                    return None;
                }
                Some(Event::Timeout { key })
            }
            other => Some(other),
        }
    }

    fn on_cancel(&mut self, ep: &mut Endpoint, now: Instant, id: u64) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.state == State::Confirmed || call.state == State::Ended {
            return;
        }
        tracing::info!(
            call_id = call.a.call_id,
            "caller cancelled the bridged call"
        );
        call.cancelled = true;
        call.targets.clear();
        if call.state == State::Proceeding {
            self.send_cancel(ep, now, id);
        } else {
            call.cancel_wanted = true;
        }
        self.fail(ep, now, id, 487, "Request Terminated");
    }

    fn send_cancel(&mut self, ep: &mut Endpoint, now: Instant, id: u64) {
        let Some((_, inv)) = self.calls.get(&id).and_then(|c| c.b_invite.as_ref()) else {
            return;
        };
        let Some(dest) = self
            .calls
            .get(&id)
            .and_then(|c| c.b.as_ref())
            .map(|l| l.dest)
        else {
            return;
        };
        let mut h = Headers::new();
        if let Some(v) = inv.headers.top_via() {
            h.push("Via", v.to_string());
        }
        for r in inv.headers.get_all("Route") {
            h.push("Route", r);
        }
        h.push("Max-Forwards", "70");
        for n in ["From", "To", "Call-ID"] {
            if let Some(v) = inv.headers.get(n) {
                h.push(n, v);
            }
        }
        let seq = inv.headers.cseq().map_or(1, |c| c.seq);
        h.push(
            "CSeq",
            CSeq {
                seq,
                method: Method::Cancel,
            }
            .to_string(),
        );
        h.push("Content-Length", "0");
        let cancel = Request {
            method: Method::Cancel,
            uri: inv.uri.clone(),
            headers: h,
            body: Vec::new(),
        };
        if let Err(e) = ep.send_request(now, cancel, dest) {
            tracing::debug!("CANCEL not sent: {e}");
        }
    }

    /// Gives the caller a final failure answer (if none was sent) and ends the call.
    fn fail(&mut self, ep: &mut Endpoint, now: Instant, id: u64, status: u16, reason: &str) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.state == State::Ended || call.state == State::Confirmed {
            return;
        }
        let _ = ep.reply(now, &call.server, status, reason);
        let rec = CallRecord {
            call_id: call.a.call_id.clone(),
            caller: call.a.remote_uri.uri.to_string(),
            callee: call.a.local_uri.uri.to_string(),
            start: call.start,
            answer: None,
            end: now,
            result: if call.cancelled {
                "cancelled"
            } else {
                result_words(status)
            }
            .to_owned(),
            status,
            reason: reason.to_owned(),
        };
        self.records.push_back(rec);
        self.end(now, id);
    }

    /// Marks the call over; its state stays a while for retransmissions.
    fn end(&mut self, now: Instant, id: u64) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.state = State::Ended;
        call.attempt_deadline = None;
        call.ring_deadline = None;
        call.a_2xx = None;
        call.linger = Some(now + self.cfg.t1.saturating_mul(64));
        self.reschedule(id);
    }

    fn remove(&mut self, id: u64) {
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        self.timers.retain(|(_, i)| *i != id);
        self.by_server.remove(&call.server);
        self.by_dialog
            .remove(&(call.a.call_id.clone(), call.a.local_tag.clone()));
        if let Some(b) = &call.b {
            self.by_dialog
                .remove(&(b.call_id.clone(), b.local_tag.clone()));
        }
        self.by_client.retain(|_, (i, p)| {
            *i != id || matches!(p, Purpose::Stale { .. } | Purpose::Bye { .. })
        });
    }

    /// Fires due timers: silent targets, ring timeout, 2xx retransmission, cleanup.
    pub fn handle_timeout(&mut self, ep: &mut Endpoint, now: Instant) {
        while let Some(&(t, id)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.remove(&(t, id));
            let Some(call) = self.calls.get_mut(&id) else {
                continue;
            };
            if call.linger.is_some_and(|l| l <= now) {
                self.remove(id);
                self.by_client.retain(|_, (i, _)| *i != id);
                continue;
            }
            if let Some((resp, at, interval, until)) = call.a_2xx.take() {
                if at <= now {
                    if now < until {
                        let _ = ep.respond(now, &call.server, resp.clone());
                        let next = (interval * 2).min(self.cfg.t2);
                        call.a_2xx = Some((resp, now + next, next, until));
                    } else {
                        tracing::info!(
                            call_id = call.a.call_id,
                            "the caller never acknowledged the answer: hanging up"
                        );
                        self.hangup_both(ep, now, id, None);
                        continue;
                    }
                } else {
                    call.a_2xx = Some((resp, at, interval, until));
                }
            }
            let Some(call) = self.calls.get_mut(&id) else {
                continue;
            };
            if call.attempt_deadline.is_some_and(|d| d <= now) {
                call.attempt_deadline = None;
                let name = call.target.as_ref().map(|t| t.name.clone());
                tracing::info!(
                    call_id = call.a.call_id,
                    "trunk {} did not answer within {} s: trying the next one",
                    name.unwrap_or_default(),
                    self.cfg.attempt_timeout.as_secs()
                );
                call.timed_out = true;
                self.abandon_attempt(id);
                self.next_attempt(ep, now, id);
            } else if call.ring_deadline.is_some_and(|d| d <= now) && call.state != State::Confirmed
            {
                call.ring_deadline = None;
                tracing::info!(call_id = call.a.call_id, "nobody answered: giving up");
                call.targets.clear();
                if call.state == State::Proceeding {
                    self.send_cancel(ep, now, id);
                } else {
                    call.cancel_wanted = true;
                }
                self.fail(ep, now, id, 480, "Temporarily Unavailable");
            }
            self.reschedule(id);
        }
    }

    /// Leaves the current far attempt behind: its INVITE may still answer late.
    fn abandon_attempt(&mut self, id: u64) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(leg) = call.b.take() else {
            return;
        };
        self.by_dialog
            .remove(&(leg.call_id.clone(), leg.local_tag.clone()));
        if let Some((k, _)) = call.b_invite.take() {
            self.by_client
                .insert(k, (id, Purpose::Stale { leg: Box::new(leg) }));
        }
    }

    fn on_client_timeout(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        id: u64,
        key: TransactionKey,
        purpose: Purpose,
    ) {
        self.by_client.remove(&key);
        match purpose {
            Purpose::Invite(attempt) => {
                let Some(call) = self.calls.get_mut(&id) else {
                    return;
                };
                if call.attempt != attempt || call.state == State::Ended {
                    return;
                }
                tracing::info!(
                    call_id = call.a.call_id,
                    "no final answer from trunk {}: trying the next one",
                    call.target.as_ref().map(|t| t.name.as_str()).unwrap_or("")
                );
                call.timed_out = true;
                call.b_invite = None;
                if let Some(leg) = call.b.take() {
                    self.by_dialog.remove(&(leg.call_id, leg.local_tag));
                }
                self.next_attempt(ep, now, id);
            }
            Purpose::Relay { server, .. } => {
                let _ = ep.reply(now, &server, 408, "Request Timeout");
            }
            Purpose::Bye { .. } | Purpose::Stale { .. } => {}
        }
    }

    fn on_response(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        id: u64,
        key: TransactionKey,
        purpose: Purpose,
        resp: Response,
    ) {
        match purpose {
            Purpose::Invite(attempt) => self.on_invite_response(ep, now, id, key, attempt, resp),
            Purpose::Relay {
                server,
                to,
                request,
                auth_tried,
            } => {
                if resp.status >= 200 {
                    self.by_client.remove(&key);
                }
                if matches!(resp.status, 401 | 407)
                    && !auth_tried
                    && let Some(req) = self.authorized(id, to, &request, &resp)
                {
                    self.send_on(
                        ep,
                        now,
                        id,
                        to,
                        req.clone(),
                        Purpose::Relay {
                            server,
                            to,
                            request: req,
                            auth_tried: true,
                        },
                    );
                    return;
                }
                if resp.status == 100 {
                    return;
                }
                self.learn_target(id, to, &resp, request.method == Method::Invite);
                let Some(mut up) = ep.make_response(&server, resp.status, &resp.reason) else {
                    return;
                };
                if let Some(call) = self.calls.get(&id) {
                    let leg = match to.other() {
                        Side::A => &call.a,
                        Side::B => call.b.as_ref().unwrap_or(&call.a),
                    };
                    if (200..300).contains(&resp.status)
                        && matches!(request.method, Method::Invite | Method::Update)
                    {
                        up.headers.push("Contact", self.contact(leg, id));
                    }
                }
                up.body = copy_body(&resp.headers, &resp.body, &mut up.headers);
                up.headers.set("Content-Length", up.body.len().to_string());
                let _ = ep.respond(now, &server, up);
            }
            Purpose::Bye {
                to,
                request,
                auth_tried,
            } => {
                self.by_client.remove(&key);
                if matches!(resp.status, 401 | 407)
                    && !auth_tried
                    && let Some(req) = self.authorized(id, to, &request, &resp)
                {
                    self.send_on(
                        ep,
                        now,
                        id,
                        to,
                        req.clone(),
                        Purpose::Bye {
                            to,
                            request: req,
                            auth_tried: true,
                        },
                    );
                }
            }
            Purpose::Stale { leg } => {
                if (200..300).contains(&resp.status) && resp.headers.cseq().is_some() {
                    // A trunk we gave up on answered after all: ACK and hang up.
                    let mut leg = *leg;
                    leg.remote_tag = resp.headers.to().and_then(|t| t.tag().map(str::to_owned));
                    if let Some(c) = first_contact(&resp.headers) {
                        leg.remote_target = c;
                        leg.target_learned = true;
                    }
                    leg.route_set = header_values(&resp.headers, "Record-Route");
                    leg.route_set.reverse();
                    let ack = self.leg_request(ep, id, &leg, Method::Ack, leg.invite_cseq);
                    ep.send_stateless(Self::leg_dest(&leg), ack.to_bytes());
                    let bye = self.leg_request(ep, id, &leg, Method::Bye, 2);
                    let _ = ep.send_request(now, bye, Self::leg_dest(&leg));
                    tracing::info!(
                        "a trunk answered an abandoned attempt ({}): hung up",
                        leg.call_id
                    );
                }
                if resp.status >= 200 {
                    self.by_client.remove(&key);
                }
            }
        }
    }

    /// Takes the remote target and tag from a dialog-forming response on `side`.
    fn learn_target(&mut self, id: u64, side: Side, resp: &Response, invite: bool) {
        if !invite || !(200..300).contains(&resp.status) {
            return;
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let leg = match side {
            Side::A => Some(&mut call.a),
            Side::B => call.b.as_mut(),
        };
        if let Some(leg) = leg
            && let Some(c) = first_contact(&resp.headers)
            && side == Side::B
        {
            leg.remote_target = c;
            leg.target_learned = true;
        }
    }

    /// The request again with an Authorization/Proxy-Authorization answering `challenge`,
    /// a new branch and the next CSeq; `None` without credentials for that leg.
    fn authorized(
        &mut self,
        id: u64,
        side: Side,
        request: &Request,
        challenge: &Response,
    ) -> Option<Request> {
        let call = self.calls.get_mut(&id)?;
        let creds = call.target.as_ref()?.credentials.clone()?;
        if side != Side::B {
            return None;
        }
        let (hname, aname) = if challenge.status == 401 {
            ("WWW-Authenticate", "Authorization")
        } else {
            ("Proxy-Authenticate", "Proxy-Authorization")
        };
        let ch = challenge
            .headers
            .get_all(hname)
            .find_map(Challenge::parse)?;
        let uri = request.uri.to_string();
        let cnonce = format!("{:08x}{:08x}", id, call.attempt + call.auth_tries);
        let qop = ch.qop_auth.then_some((1u32, cnonce));
        let response = compute_response(
            ch.algorithm,
            &creds.username,
            &ch.realm,
            &creds.password,
            &ch.nonce,
            request.method.as_str(),
            &uri,
            qop.as_ref()
                .map(|(nc, c)| QopAuth {
                    nc: *nc,
                    cnonce: c.as_str(),
                })
                .as_ref(),
        );
        let answer = DigestAnswer {
            username: creds.username.clone(),
            realm: ch.realm.clone(),
            nonce: ch.nonce.clone(),
            uri,
            response,
            algorithm: ch.algorithm,
            qop,
            opaque: ch.opaque.clone(),
        };
        let leg = call.b.as_mut()?;
        leg.local_cseq = leg.local_cseq.wrapping_add(1);
        let seq = leg.local_cseq;
        if request.method == Method::Invite {
            leg.invite_cseq = seq;
        }
        let mut req = request.clone();
        req.headers.remove("Authorization");
        req.headers.remove("Proxy-Authorization");
        req.headers.push(aname, answer.to_header_value());
        req.headers.set(
            "CSeq",
            CSeq {
                seq,
                method: request.method.clone(),
            }
            .to_string(),
        );
        Some(req)
    }

    /// Sends `req` (with a fresh branch) on `side` and remembers what it is for.
    fn send_on(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        id: u64,
        side: Side,
        mut req: Request,
        purpose: Purpose,
    ) -> Option<TransactionKey> {
        let call = self.calls.get(&id)?;
        let leg = match side {
            Side::A => &call.a,
            Side::B => call.b.as_ref()?,
        };
        let dest = Self::leg_dest(leg);
        if let Some(mut via) = req.headers.top_via() {
            via.set_param("branch", Some(&ep.new_branch()));
            req.headers.set_top_via(&via);
        }
        match ep.send_request(now, req, dest) {
            Ok(k) => {
                self.by_client.insert(k.clone(), (id, purpose));
                Some(k)
            }
            Err(e) => {
                tracing::debug!("request not sent: {e}");
                None
            }
        }
    }

    fn on_invite_response(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        id: u64,
        key: TransactionKey,
        attempt: u32,
        resp: Response,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.attempt != attempt {
            return;
        }
        call.attempt_deadline = None;
        let status = resp.status;
        if status < 200 {
            let first = call.state == State::Calling;
            if first {
                call.state = State::Proceeding;
            }
            let cancel = first && call.cancel_wanted;
            if status > 100
                && let Some(b) = call.b.as_mut()
                && b.remote_tag.is_none()
            {
                b.remote_tag = resp.headers.to().and_then(|t| t.tag().map(str::to_owned));
            }
            if cancel {
                self.send_cancel(ep, now, id);
            } else if status > 100 && call.state != State::Ended {
                let server = call.server.clone();
                let a = call.a.clone();
                let rr = record_route_values(&self.cfg, call);
                if let Some(mut up) = ep.make_response(&server, status, &resp.reason) {
                    push_record_route(&mut up, rr);
                    up.headers.push("Contact", self.contact(&a, id));
                    up.body = copy_body(&resp.headers, &resp.body, &mut up.headers);
                    up.headers.set("Content-Length", up.body.len().to_string());
                    let _ = ep.respond(now, &server, up);
                }
            }
            self.reschedule(id);
            return;
        }
        if (200..300).contains(&status) {
            self.on_invite_2xx(ep, now, id, resp);
            self.reschedule(id);
            return;
        }
        self.by_client.remove(&key);
        if matches!(status, 401 | 407) && call.state != State::Ended && call.auth_tries < 1 {
            let inv = call.b_invite.as_ref().map(|(_, r)| r.clone());
            if let Some(inv) = inv
                && let Some(req) = self.authorized(id, Side::B, &inv, &resp)
            {
                let Some(call) = self.calls.get_mut(&id) else {
                    return;
                };
                call.auth_tries += 1;
                call.state = State::Calling;
                tracing::info!(
                    call_id = call.a.call_id,
                    "trunk {} asked for credentials ({status}): answering with the trunk's",
                    call.target.as_ref().map(|t| t.name.as_str()).unwrap_or("")
                );
                if let Some(k) =
                    self.send_on(ep, now, id, Side::B, req.clone(), Purpose::Invite(attempt))
                    && let Some(call) = self.calls.get_mut(&id)
                {
                    call.b_invite = Some((k, req));
                    call.attempt_deadline = Some(now + self.cfg.attempt_timeout);
                }
                self.reschedule(id);
                return;
            }
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.b_invite = None;
        if call.state == State::Ended {
            return;
        }
        let trunk = call
            .target
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default();
        tracing::info!(
            call_id = call.a.call_id,
            "trunk {trunk} answered {status} {}",
            resp.reason
        );
        call.last_status = Some((status, resp.reason.clone()));
        if let Some(leg) = call.b.take() {
            self.by_dialog.remove(&(leg.call_id, leg.local_tag));
        }
        if matches!(status, 503 | 408) && !call.targets.is_empty() {
            self.next_attempt(ep, now, id);
            self.reschedule(id);
            return;
        }
        let (status, reason) = match status {
            401 | 407 => (403, "Forbidden".to_owned()),
            s => (s, resp.reason.clone()),
        };
        self.fail(ep, now, id, status, &reason);
    }

    fn on_invite_2xx(&mut self, ep: &mut Endpoint, now: Instant, id: u64, resp: Response) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let remote_tag = resp.headers.to().and_then(|t| t.tag().map(str::to_owned));
        if call.state == State::Confirmed {
            // A retransmission: our ACK got lost.
            if let (Some(ack), Some(b)) = (&call.b_ack, &call.b) {
                ep.send_stateless(Self::leg_dest(b), ack.clone());
            }
            return;
        }
        let Some(b) = call.b.as_mut() else {
            return;
        };
        b.remote_tag = remote_tag;
        if let Some(c) = first_contact(&resp.headers) {
            b.remote_target = c;
            b.target_learned = true;
        }
        b.route_set = header_values(&resp.headers, "Record-Route");
        b.route_set.reverse();
        let b = b.clone();
        let cancelled = call.state == State::Ended;
        call.state = State::Confirmed;
        call.attempt_deadline = None;
        call.ring_deadline = None;
        if cancelled {
            // Answered after the caller gave up: ACK and hang up the far leg.
            let ack = self.ack_for(ep, id, &b, None);
            ep.send_stateless(Self::leg_dest(&b), ack.to_bytes());
            let bye = self.leg_request(ep, id, &b, Method::Bye, b.local_cseq.wrapping_add(1));
            self.send_on(
                ep,
                now,
                id,
                Side::B,
                bye.clone(),
                Purpose::Bye {
                    to: Side::B,
                    request: bye,
                    auth_tried: false,
                },
            );
            if let Some(c) = self.calls.get_mut(&id) {
                c.state = State::Ended;
            }
            return;
        }
        let late = call.late_offer;
        if !late {
            let ack = self.ack_for(ep, id, &b, None);
            let bytes = ack.to_bytes();
            ep.send_stateless(Self::leg_dest(&b), bytes.clone());
            if let Some(c) = self.calls.get_mut(&id) {
                c.b_ack = Some(bytes);
            }
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.answer = Some(now);
        let server = call.server.clone();
        let a = call.a.clone();
        tracing::info!(
            call_id = a.call_id,
            "trunk {} answered: call bridged",
            call.target.as_ref().map(|t| t.name.as_str()).unwrap_or("")
        );
        let rr = record_route_values(&self.cfg, call);
        let Some(mut up) = ep.make_response(&server, resp.status, &resp.reason) else {
            return;
        };
        push_record_route(&mut up, rr);
        up.headers.push("Contact", self.contact(&a, id));
        up.body = copy_body(&resp.headers, &resp.body, &mut up.headers);
        up.headers.set("Content-Length", up.body.len().to_string());
        let _ = ep.respond(now, &server, up.clone());
        if !a.dest.transport.is_reliable()
            && let Some(call) = self.calls.get_mut(&id)
        {
            let until = now + self.cfg.t1.saturating_mul(64);
            call.a_2xx = Some((up, now + self.cfg.t1, self.cfg.t1, until));
        }
    }

    /// The ACK for the INVITE of `leg` (its `invite_cseq`), with `body`.
    fn ack_for(&self, ep: &mut Endpoint, id: u64, leg: &Leg, body: Option<&Request>) -> Request {
        let mut ack = self.leg_request(ep, id, leg, Method::Ack, leg.invite_cseq);
        ack.headers.remove("Contact");
        if let Some(src) = body {
            ack.body = copy_body(&src.headers, &src.body, &mut ack.headers);
            ack.headers
                .set("Content-Length", ack.body.len().to_string());
        }
        ack
    }

    fn on_ack(&mut self, ep: &mut Endpoint, _now: Instant, id: u64, side: Side, ack: Request) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let seq = ack.headers.cseq().map(|c| c.seq);
        if side == Side::A && call.a_2xx.is_some() {
            call.a_2xx = None;
        }
        let initial = side == Side::A
            && call.b_ack.is_none()
            && call.late_offer
            && call.invite.headers.cseq().map(|c| c.seq) == seq;
        if initial {
            let Some(b) = call.b.clone() else {
                return;
            };
            let fwd = self.ack_for(ep, id, &b, Some(&ack));
            let bytes = fwd.to_bytes();
            ep.send_stateless(Self::leg_dest(&b), bytes.clone());
            if let Some(c) = self.calls.get_mut(&id) {
                c.b_ack = Some(bytes);
            }
            self.reschedule(id);
            return;
        }
        if call.invite.headers.cseq().map(|c| c.seq) == seq && side == Side::A {
            // The ACK of the initial INVITE: B was already acknowledged.
            self.reschedule(id);
            return;
        }
        // The ACK of a relayed re-INVITE: send it on with the other leg's INVITE CSeq.
        let other = side.other();
        let leg = match other {
            Side::A => Some(call.a.clone()),
            Side::B => call.b.clone(),
        };
        if let Some(leg) = leg {
            let fwd = self.ack_for(ep, id, &leg, Some(&ack));
            ep.send_stateless(Self::leg_dest(&leg), fwd.to_bytes());
        }
        self.reschedule(id);
    }

    #[allow(clippy::too_many_arguments)]
    fn on_in_dialog(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        id: u64,
        side: Side,
        key: TransactionKey,
        request: Request,
        _source: Source,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            let _ = ep.reply(now, &key, 481, "Call/Transaction Does Not Exist");
            return;
        };
        if request.method == Method::Bye {
            let _ = ep.reply(now, &key, 200, "OK");
            if call.state == State::Ended {
                return;
            }
            tracing::info!(
                call_id = call.a.call_id,
                "{} hung up",
                if side == Side::A {
                    "the caller"
                } else {
                    "the far side"
                }
            );
            self.hangup_both(ep, now, id, Some(side));
            return;
        }
        if call.state != State::Confirmed {
            let _ = ep.reply(now, &key, 481, "Call/Transaction Does Not Exist");
            return;
        }
        let other = side.other();
        let leg = match other {
            Side::A => Some(&mut call.a),
            Side::B => call.b.as_mut(),
        };
        if leg.is_none() {
            let _ = ep.reply(now, &key, 481, "Call/Transaction Does Not Exist");
            return;
        }
        if request.method == Method::Invite
            && let Some(c) = first_contact(&request.headers)
        {
            // A target refresh of the side that sent it.
            let from_leg = match side {
                Side::A => Some(&mut call.a),
                Side::B => call.b.as_mut(),
            };
            if let Some(l) = from_leg {
                l.remote_target = c;
                l.target_learned = side == Side::B;
            }
        }
        let leg = match other {
            Side::A => &mut call.a,
            Side::B => match call.b.as_mut() {
                Some(b) => b,
                None => return,
            },
        };
        leg.local_cseq = leg.local_cseq.wrapping_add(1);
        let seq = leg.local_cseq;
        if request.method == Method::Invite {
            leg.invite_cseq = seq;
        }
        let leg = leg.clone();
        let mut fwd = self.leg_request(ep, id, &leg, request.method.clone(), seq);
        fwd.body = copy_body(&request.headers, &request.body, &mut fwd.headers);
        for n in ["Event", "Subscription-State", "Refer-To", "Info-Package"] {
            if let Some(v) = request.headers.get(n) {
                fwd.headers.push(n, v);
            }
        }
        fwd.headers
            .set("Content-Length", fwd.body.len().to_string());
        let method = request.method.clone();
        if self
            .send_on(
                ep,
                now,
                id,
                other,
                fwd.clone(),
                Purpose::Relay {
                    server: key.clone(),
                    to: other,
                    request: fwd,
                    auth_tried: false,
                },
            )
            .is_none()
        {
            let _ = ep.reply(now, &key, 500, "Server Internal Error");
        } else {
            tracing::debug!("relayed {method} across the bridge");
        }
    }

    /// Sends BYE on every leg but `except` and writes the call record.
    fn hangup_both(&mut self, ep: &mut Endpoint, now: Instant, id: u64, except: Option<Side>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let answered = call.state == State::Confirmed;
        let mut legs = Vec::new();
        if except != Some(Side::A) && answered {
            call.a.local_cseq = call.a.local_cseq.wrapping_add(1);
            legs.push((Side::A, call.a.clone()));
        }
        if except != Some(Side::B)
            && answered
            && let Some(b) = call.b.as_mut()
        {
            b.local_cseq = b.local_cseq.wrapping_add(1);
            legs.push((Side::B, b.clone()));
        }
        let rec = CallRecord {
            call_id: call.a.call_id.clone(),
            caller: call.a.remote_uri.uri.to_string(),
            callee: call.a.local_uri.uri.to_string(),
            start: call.start,
            answer: call.answer,
            end: now,
            result: "answered".to_owned(),
            status: 200,
            reason: "OK".to_owned(),
        };
        self.records.push_back(rec);
        for (side, leg) in legs {
            let bye = self.leg_request(ep, id, &leg, Method::Bye, leg.local_cseq);
            self.send_on(
                ep,
                now,
                id,
                side,
                bye.clone(),
                Purpose::Bye {
                    to: side,
                    request: bye,
                    auth_tried: false,
                },
            );
        }
        self.end(now, id);
    }
}

fn call_invite(calls: &HashMap<u64, Call>, id: u64) -> Option<Request> {
    calls.get(&id).map(|c| c.invite.clone())
}

fn local_of(cfg: &B2buaConfig, transport: Transport, fallback: SocketAddr) -> SocketAddr {
    cfg.local
        .iter()
        .find(|(t, _)| *t == transport)
        .map_or(fallback, |(_, a)| *a)
}

/// Record-Route of a dialog-forming response to the caller: the request's values (RFC 3261
/// 12.1.1) and, with a node parameter, ours on top.
fn record_route_values(cfg: &B2buaConfig, call: &Call) -> Vec<String> {
    let mut values = header_values(&call.invite.headers, "Record-Route");
    if let Some(node) = &cfg.node_param {
        values.insert(
            0,
            format!(
                "<sip:{}{};lr;p2pnode={node}>",
                call.a.local,
                transport_param(call.a.dest.transport)
            ),
        );
    }
    values
}

fn push_record_route(resp: &mut Response, values: Vec<String>) {
    for v in values.into_iter().rev() {
        resp.headers.push_front("Record-Route", v);
    }
}
