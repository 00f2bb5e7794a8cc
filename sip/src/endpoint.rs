//! A sans-IO SIP endpoint: parses what the transports received, runs the transaction
//! layer, answers what it can itself (OPTIONS to this node, malformed requests,
//! unsupported methods, CANCEL matching) and hands everything else to the application as
//! events with a transaction key the application answers through [`Endpoint::respond`].
//!
//! Three verbs: [`Endpoint::handle_input`], [`Endpoint::poll_output`],
//! [`Endpoint::poll_timeout`]. Time is passed in; nothing here reads a clock.

use crate::message::{
    Headers, Method, ParseError, Request, Response, SipMessage, Uri, Via, parse_message,
    split_commas,
};
use crate::response::{error_response, response_from_headers};
use crate::transaction::{
    AckOutcome, InviteClient, InviteServer, NonInviteClient, NonInviteServer, TimerConfig,
    TransactionKey, TxError, TxEvent,
};
use crate::transaction::{
    InviteClientState, InviteServerState, NonInviteClientState, NonInviteServerState,
};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

/// The transport a message travelled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP datagrams (unreliable).
    Udp,
    /// TCP stream.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl Transport {
    /// Whether retransmission timers are off (RFC 3261 17: reliable transports).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The Via transport token.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

/// A stream connection handle chosen by the transport driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Where a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// Transport it arrived on.
    pub transport: Transport,
    /// Our local address it arrived at.
    pub local: SocketAddr,
    /// The peer's address.
    pub remote: SocketAddr,
    /// The stream connection, for TCP/TLS.
    pub conn: Option<ConnId>,
}

/// Where to send a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination {
    /// Transport to use.
    pub transport: Transport,
    /// Peer address (for streams: where to connect when `conn` is gone).
    pub remote: SocketAddr,
    /// Existing stream connection to reuse.
    pub conn: Option<ConnId>,
}

/// Input from the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A datagram, or one framed stream message.
    Received {
        /// Transport it arrived on.
        transport: Transport,
        /// Our local address.
        local: SocketAddr,
        /// The peer's address.
        remote: SocketAddr,
        /// The stream connection, for TCP/TLS.
        conn: Option<ConnId>,
        /// The message bytes.
        bytes: Vec<u8>,
    },
    /// The time returned by `poll_timeout` has come.
    Timeout,
}

/// Something the application has to look at.
#[allow(clippy::large_enum_variant)] // events are moved once, boxing buys nothing
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new request the endpoint did not answer itself (REGISTER, INVITE, OPTIONS for a
    /// user, BYE, ...). Answer with [`Endpoint::respond`] / [`Endpoint::reply`] using `key`.
    Request {
        /// Server transaction key.
        key: TransactionKey,
        /// The request, top Via already carrying `received`/`rport`.
        request: Request,
        /// Where it came from.
        source: Source,
    },
    /// An ACK that belongs to no non-2xx final response (the ACK for a 2xx).
    Ack {
        /// The ACK.
        request: Request,
        /// Where it came from.
        source: Source,
    },
    /// A CANCEL matched the INVITE server transaction `invite`; the CANCEL was answered
    /// with 200. The application should answer the INVITE with 487.
    Cancelled {
        /// The INVITE's server transaction key.
        invite: TransactionKey,
    },
    /// A response for a client transaction started with [`Endpoint::send_request`].
    Response {
        /// Client transaction key.
        key: TransactionKey,
        /// The response.
        response: Response,
    },
    /// A client transaction got no final response (Timer B/F), or an INVITE server
    /// transaction got no ACK (Timer H).
    Timeout {
        /// The transaction.
        key: TransactionKey,
    },
    /// A message was thrown away without an answer (too broken to answer, or a stray
    /// response).
    Dropped {
        /// Who sent it.
        remote: SocketAddr,
        /// Why, in plain words.
        reason: String,
    },
}

/// Output for the driver.
#[allow(clippy::large_enum_variant)] // moved once to the driver
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send bytes.
    Transmit {
        /// Transport to use.
        transport: Transport,
        /// Peer address.
        remote: SocketAddr,
        /// Stream connection to reuse, if any.
        conn: Option<ConnId>,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// An event for the application.
    Event(Event),
}

/// Errors of the application-facing API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// No live transaction has this key.
    #[error("no such transaction")]
    UnknownTransaction,
    /// The request has no top Via with a branch.
    #[error("request has no Via branch")]
    NoBranch,
    /// A transaction with this key already exists.
    #[error("transaction already exists")]
    DuplicateTransaction,
    /// ACK is not sent in a transaction; use `send_stateless`.
    #[error("ACK is sent without a transaction")]
    AckNotTransactional,
    /// The transaction refused the response in its state.
    #[error(transparent)]
    Transaction(#[from] TxError),
}

/// Endpoint settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// Value of the Server header.
    pub server_name: String,
    /// Methods this node accepts (others known get 405 with Allow).
    pub allow: Vec<Method>,
    /// Option tags we support (Supported; Require of others gets 420).
    pub supported: Vec<String>,
    /// Body types we accept (Accept in OPTIONS answers).
    pub accept: Vec<String>,
    /// RFC 3261 timer values.
    pub timers: TimerConfig,
    /// Seed for tags and branches (the caller supplies the randomness).
    pub seed: u64,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            server_name: "p2psip".to_owned(),
            allow: vec![
                Method::Invite,
                Method::Ack,
                Method::Bye,
                Method::Cancel,
                Method::Options,
                Method::Register,
                Method::Prack,
                Method::Update,
                Method::Info,
                Method::Message,
                Method::Refer,
                Method::Subscribe,
                Method::Notify,
            ],
            supported: Vec::new(),
            accept: vec!["application/sdp".to_owned()],
            timers: TimerConfig::default(),
            seed: 0,
        }
    }
}

#[derive(Debug)]
enum ServerKind {
    NonInvite(NonInviteServer),
    Invite(InviteServer),
}

#[derive(Debug)]
struct ServerTx {
    kind: ServerKind,
    dest: Destination,
    to_tag: String,
    request: Request,
    /// Deadline and sequence number of this transaction's live entry in the timer heap.
    scheduled: Option<(Instant, u64)>,
}

impl ServerTx {
    fn terminated(&self) -> bool {
        match &self.kind {
            ServerKind::NonInvite(t) => t.state() == NonInviteServerState::Terminated,
            ServerKind::Invite(t) => t.state() == InviteServerState::Terminated,
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match &self.kind {
            ServerKind::NonInvite(t) => t.poll_timeout(),
            ServerKind::Invite(t) => t.poll_timeout(),
        }
    }
}

#[derive(Debug)]
enum ClientKind {
    NonInvite(NonInviteClient),
    Invite(Box<InviteClient>),
}

#[derive(Debug)]
struct ClientTx {
    kind: ClientKind,
    dest: Destination,
    /// Deadline and sequence number of this transaction's live entry in the timer heap.
    scheduled: Option<(Instant, u64)>,
}

impl ClientTx {
    fn terminated(&self) -> bool {
        match &self.kind {
            ClientKind::NonInvite(t) => t.state() == NonInviteClientState::Terminated,
            ClientKind::Invite(t) => t.state() == InviteClientState::Terminated,
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match &self.kind {
            ClientKind::NonInvite(t) => t.poll_timeout(),
            ClientKind::Invite(t) => t.poll_timeout(),
        }
    }
}

/// Which transaction table a timer entry points into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Server,
    Client,
}

/// One entry of the timer heap: (deadline, sequence number, table, key). An entry is live
/// while its transaction's `timer_seq` equals its sequence number; rescheduling pushes a
/// new entry and leaves the old one to be skipped (lazy deletion).
#[derive(Debug)]
struct TimerEntry(Instant, u64, Side, TransactionKey);

// Ordered by (deadline, sequence number) only: sequence numbers are unique.
impl PartialEq for TimerEntry {
    fn eq(&self, other: &Self) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}
impl Eq for TimerEntry {}
impl PartialOrd for TimerEntry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for TimerEntry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(other.0, other.1))
    }
}

/// The SIP endpoint: transport-facing parsing, transactions and local answers.
#[derive(Debug)]
pub struct Endpoint {
    cfg: EndpointConfig,
    servers: HashMap<TransactionKey, ServerTx>,
    clients: HashMap<TransactionKey, ClientTx>,
    /// Deadlines of all transactions; the top is always live (see `purge_timers`), so
    /// `poll_timeout` is a peek and a timeout touches only due transactions.
    timers: BinaryHeap<Reverse<TimerEntry>>,
    timer_seq: u64,
    out: VecDeque<Output>,
    rng: u64,
}

/// Adds `received` (RFC 3261 18.2.1) and fills `rport` (RFC 3581 4) in the top Via.
fn stamp_via(headers: &mut Headers, remote: SocketAddr) -> Option<Via> {
    let mut via = headers.top_via()?;
    let ip = remote.ip().to_string();
    let host = via.host.trim_start_matches('[').trim_end_matches(']');
    if via.rport().is_some() {
        via.set_param("rport", Some(&remote.port().to_string()));
        via.set_param("received", Some(&ip));
    } else if !host.eq_ignore_ascii_case(&ip) {
        via.set_param("received", Some(&ip));
    }
    headers.set_top_via(&via);
    Some(via)
}

/// Where responses to a request go (RFC 3261 18.2.2, RFC 3581 4).
fn response_destination(source: &Source, via: &Via) -> Destination {
    if source.transport.is_reliable() {
        return Destination {
            transport: source.transport,
            remote: source.remote,
            conn: source.conn,
        };
    }
    let port = match via.rport() {
        Some(Some(p)) => p,
        _ => via.port.unwrap_or(5060),
    };
    Destination {
        transport: source.transport,
        remote: SocketAddr::new(source.remote.ip(), port),
        conn: None,
    }
}

impl Endpoint {
    /// A new endpoint.
    pub fn new(cfg: EndpointConfig) -> Self {
        let rng = cfg.seed;
        Endpoint {
            cfg,
            servers: HashMap::new(),
            clients: HashMap::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            out: VecDeque::new(),
            rng,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EndpointConfig {
        &self.cfg
    }

    fn next_random(&mut self) -> u64 {
        // SplitMix64 over the caller's seed.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A fresh tag for To/From.
    pub fn new_tag(&mut self) -> String {
        format!("{:016x}", self.next_random())
    }

    /// A fresh RFC 3261 branch (with the magic cookie).
    pub fn new_branch(&mut self) -> String {
        format!(
            "{}{:016x}",
            crate::message::MAGIC_COOKIE,
            self.next_random()
        )
    }

    /// Feeds input in.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Received {
                transport,
                local,
                remote,
                conn,
                bytes,
            } => {
                let source = Source {
                    transport,
                    local,
                    remote,
                    conn,
                };
                match parse_message(&bytes) {
                    Ok(SipMessage::Request(r)) => self.on_request(now, r, source),
                    Ok(SipMessage::Response(r)) => self.on_response(now, r, source),
                    Err(e) => self.on_parse_error(e, source),
                }
            }
            Input::Timeout => self.on_timeout(now),
        }
    }

    /// The next output, if any.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When `handle_input(now, Input::Timeout)` should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse(TimerEntry(t, ..))| *t)
    }

    /// Whether a heap entry still stands for its transaction's current deadline.
    fn entry_live(&self, seq: u64, side: Side, key: &TransactionKey) -> bool {
        let live = match side {
            Side::Server => self.servers.get(key).and_then(|s| s.scheduled),
            Side::Client => self.clients.get(key).and_then(|c| c.scheduled),
        };
        live.is_some_and(|(_, s)| s == seq)
    }

    /// Pops stale entries off the top so that the top is live (amortised: every entry is
    /// pushed and popped once).
    fn purge_timers(&mut self) {
        while let Some(Reverse(TimerEntry(_, seq, side, key))) = self.timers.peek() {
            if self.entry_live(*seq, *side, key) {
                return;
            }
            self.timers.pop();
        }
    }

    /// Re-reads a transaction's deadline after it changed state: pushes a new heap entry
    /// when the deadline moved and removes a terminated transaction.
    fn reschedule(&mut self, side: Side, key: &TransactionKey) {
        let (deadline, terminated, scheduled) = match side {
            Side::Server => match self.servers.get(key) {
                Some(s) => (s.poll_timeout(), s.terminated(), s.scheduled),
                None => return,
            },
            Side::Client => match self.clients.get(key) {
                Some(c) => (c.poll_timeout(), c.terminated(), c.scheduled),
                None => return,
            },
        };
        if terminated {
            match side {
                Side::Server => {
                    self.servers.remove(key);
                }
                Side::Client => {
                    self.clients.remove(key);
                }
            }
            self.purge_timers();
            return;
        }
        if deadline == scheduled.map(|(d, _)| d) {
            return;
        }
        let entry = deadline.map(|d| {
            self.timer_seq += 1;
            self.timers
                .push(Reverse(TimerEntry(d, self.timer_seq, side, key.clone())));
            (d, self.timer_seq)
        });
        match side {
            Side::Server => {
                if let Some(s) = self.servers.get_mut(key) {
                    s.scheduled = entry;
                }
            }
            Side::Client => {
                if let Some(c) = self.clients.get_mut(key) {
                    c.scheduled = entry;
                }
            }
        }
        self.purge_timers();
    }

    /// How many server and client transactions are alive.
    pub fn transaction_count(&self) -> (usize, usize) {
        (self.servers.len(), self.clients.len())
    }

    fn transmit(&mut self, dest: Destination, bytes: Vec<u8>) {
        self.out.push_back(Output::Transmit {
            transport: dest.transport,
            remote: dest.remote,
            conn: dest.conn,
            bytes,
        });
    }

    fn event(&mut self, e: Event) {
        self.out.push_back(Output::Event(e));
    }

    fn on_parse_error(&mut self, mut e: ParseError, source: Source) {
        let via = match e.partial.as_deref_mut() {
            Some(p) if p.is_request => stamp_via(&mut p.headers, source.remote),
            _ => None,
        };
        let tag = self.new_tag();
        match (
            error_response(&e, Some(&tag), Some(&self.cfg.server_name)),
            via,
        ) {
            (Ok(resp), Some(via)) => {
                tracing::debug!(remote = %source.remote, reason = %e, "answering malformed request");
                let dest = response_destination(&source, &via);
                self.transmit(dest, resp.to_bytes());
            }
            (Ok(_), None) => self.event(Event::Dropped {
                remote: source.remote,
                reason: format!("{e}: no usable Via"),
            }),
            (Err(why), _) => self.event(Event::Dropped {
                remote: source.remote,
                reason: format!("{e}: {why}"),
            }),
        }
    }

    fn on_response(&mut self, now: Instant, resp: Response, source: Source) {
        let key = TransactionKey::client_for_response(&resp);
        let Some((key, tx)) = key.and_then(|k| self.clients.get_mut(&k).map(|t| (k, t))) else {
            self.event(Event::Dropped {
                remote: source.remote,
                reason: format!("response {} matches no transaction", resp.status),
            });
            return;
        };
        let dest = tx.dest;
        let (up, ack) = match &mut tx.kind {
            ClientKind::NonInvite(t) => (t.on_response(now, resp.status), None),
            ClientKind::Invite(t) => t.on_response(now, &resp),
        };
        self.reschedule(Side::Client, &key);
        if let Some(ack) = ack {
            self.transmit(dest, ack);
        }
        if up {
            self.event(Event::Response {
                key,
                response: resp,
            });
        }
    }

    fn on_request(&mut self, now: Instant, mut req: Request, source: Source) {
        let Some(via) = stamp_via(&mut req.headers, source.remote) else {
            return;
        };
        let dest = response_destination(&source, &via);
        let Some(key) = TransactionKey::server(&req) else {
            self.event(Event::Dropped {
                remote: source.remote,
                reason: "request without transaction identity".to_owned(),
            });
            return;
        };
        if req.method == Method::Ack {
            let outcome = match self.servers.get_mut(&key).map(|s| &mut s.kind) {
                Some(ServerKind::Invite(t)) => t.on_ack(now),
                _ => AckOutcome::PassUp,
            };
            self.reschedule(Side::Server, &key);
            if outcome == AckOutcome::PassUp {
                self.event(Event::Ack {
                    request: req,
                    source,
                });
            }
            return;
        }
        if let Some(s) = self.servers.get(&key) {
            let resend = match &s.kind {
                ServerKind::NonInvite(t) => t.on_request(),
                ServerKind::Invite(t) => t.on_request(),
            };
            if let Some(bytes) = resend {
                let d = s.dest;
                self.transmit(d, bytes);
            }
            return;
        }
        let reliable = source.transport.is_reliable();
        let timers = self.cfg.timers;
        let kind = if req.method == Method::Invite {
            ServerKind::Invite(InviteServer::new(reliable, timers))
        } else {
            ServerKind::NonInvite(NonInviteServer::new(reliable, timers))
        };
        let to_tag = self.new_tag();
        self.servers.insert(
            key.clone(),
            ServerTx {
                kind,
                dest,
                to_tag,
                request: req.clone(),
                scheduled: None,
            },
        );
        if req.method == Method::Invite {
            self.reply_or_log(now, &key, 100, "Trying");
        }
        if req.method == Method::Cancel {
            self.on_cancel(now, key);
            return;
        }
        self.dispatch(now, key, req, source);
    }

    fn on_cancel(&mut self, now: Instant, key: TransactionKey) {
        let invite = TransactionKey {
            method: Method::Invite,
            ..key.clone()
        };
        let invite_tag = match self.servers.get(&invite) {
            Some(ServerTx {
                kind: ServerKind::Invite(_),
                to_tag,
                ..
            }) => Some(to_tag.clone()),
            _ => None,
        };
        match invite_tag {
            Some(tag) => {
                if let Some(s) = self.servers.get_mut(&key) {
                    s.to_tag = tag;
                }
                self.reply_or_log(now, &key, 200, "OK");
                self.event(Event::Cancelled { invite });
            }
            None => self.reply_or_log(now, &key, 481, "Call/Transaction Does Not Exist"),
        }
    }

    fn unsupported_required(&self, req: &Request, header: &str) -> Vec<String> {
        req.headers
            .get_all(header)
            .flat_map(|v| split_commas(v).unwrap_or_default())
            .filter(|tag| {
                !self
                    .cfg
                    .supported
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(tag))
            })
            .map(str::to_owned)
            .collect()
    }

    fn dispatch(&mut self, now: Instant, key: TransactionKey, req: Request, source: Source) {
        if let Method::Extension(_) = req.method {
            self.reply_or_log(now, &key, 501, "Not Implemented");
            return;
        }
        if !self.cfg.allow.contains(&req.method) {
            if let Some(mut r) = self.make_response(&key, 405, "Method Not Allowed") {
                r.headers.push("Allow", self.allow_value());
                self.respond_or_log(now, &key, r);
            }
            return;
        }
        if !matches!(req.uri.scheme(), "sip" | "sips" | "tel") {
            self.reply_or_log(now, &key, 416, "Unsupported URI Scheme");
            return;
        }
        // Where we are the UAS (OPTIONS to this node, REGISTER to the registrar) Require
        // applies (RFC 3261 8.2.2.3); where we act as a proxy, Proxy-Require (16.3).
        let to_us = req.method == Method::Options
            && (matches!(&req.uri, Uri::Sip(u) if u.userinfo.is_none())
                || req.headers.max_forwards() == Some(0));
        let unsupported = if to_us || req.method == Method::Register {
            self.unsupported_required(&req, "Require")
        } else {
            self.unsupported_required(&req, "Proxy-Require")
        };
        if !unsupported.is_empty() {
            if let Some(mut r) = self.make_response(&key, 420, "Bad Extension") {
                r.headers.push("Unsupported", unsupported.join(", "));
                self.respond_or_log(now, &key, r);
            }
            return;
        }
        if to_us {
            if let Some(mut r) = self.make_response(&key, 200, "OK") {
                r.headers.push("Allow", self.allow_value());
                r.headers.push("Accept", self.cfg.accept.join(", "));
                r.headers.push("Accept-Encoding", "identity");
                r.headers.push("Accept-Language", "en");
                r.headers.push("Supported", self.cfg.supported.join(", "));
                self.respond_or_log(now, &key, r);
            }
            return;
        }
        if req.headers.max_forwards() == Some(0) {
            self.reply_or_log(now, &key, 483, "Too Many Hops");
            return;
        }
        self.event(Event::Request {
            key,
            request: req,
            source,
        });
    }

    fn allow_value(&self) -> String {
        self.cfg
            .allow
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn reply_or_log(&mut self, now: Instant, key: &TransactionKey, status: u16, reason: &str) {
        if let Err(e) = self.reply(now, key, status, reason) {
            tracing::warn!(%status, error = %e, "could not send local response");
        }
    }

    fn respond_or_log(&mut self, now: Instant, key: &TransactionKey, resp: Response) {
        if let Err(e) = self.respond(now, key, resp) {
            tracing::warn!(error = %e, "could not send local response");
        }
    }

    /// Builds a response to the request of server transaction `key` (RFC 3261 8.2.6):
    /// copies Via/From/To/Call-ID/CSeq, adds the transaction's To tag and Server. The
    /// caller may add headers (Contact, Expires, ...) before [`Endpoint::respond`].
    pub fn make_response(
        &self,
        key: &TransactionKey,
        status: u16,
        reason: &str,
    ) -> Option<Response> {
        let s = self.servers.get(key)?;
        Some(response_from_headers(
            &s.request.headers,
            status,
            reason,
            Some(&s.to_tag),
            Some(&self.cfg.server_name),
        ))
    }

    /// Sends `response` in server transaction `key`.
    pub fn respond(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        response: Response,
    ) -> Result<(), EndpointError> {
        let s = self
            .servers
            .get_mut(key)
            .ok_or(EndpointError::UnknownTransaction)?;
        let bytes = response.to_bytes();
        let bytes = match &mut s.kind {
            ServerKind::NonInvite(t) => t.send_response(now, response.status, bytes)?,
            ServerKind::Invite(t) => t.send_response(now, response.status, bytes)?,
        };
        let d = s.dest;
        self.reschedule(Side::Server, key);
        self.transmit(d, bytes);
        Ok(())
    }

    /// Builds and sends a header-only response in server transaction `key`.
    pub fn reply(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        status: u16,
        reason: &str,
    ) -> Result<(), EndpointError> {
        let r = self
            .make_response(key, status, reason)
            .ok_or(EndpointError::UnknownTransaction)?;
        self.respond(now, key, r)
    }

    /// Starts a client transaction for `request` (which must carry our top Via with a
    /// fresh branch, see [`Endpoint::new_branch`]) and sends it to `dest`.
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Request,
        dest: Destination,
    ) -> Result<TransactionKey, EndpointError> {
        if request.method == Method::Ack {
            return Err(EndpointError::AckNotTransactional);
        }
        let key = TransactionKey::client(&request).ok_or(EndpointError::NoBranch)?;
        if self.clients.contains_key(&key) {
            return Err(EndpointError::DuplicateTransaction);
        }
        let reliable = dest.transport.is_reliable();
        let timers = self.cfg.timers;
        let (kind, bytes) = if request.method == Method::Invite {
            let t = InviteClient::new(now, request, reliable, timers);
            let b = t.request_bytes().to_vec();
            (ClientKind::Invite(Box::new(t)), b)
        } else {
            let b = request.to_bytes();
            (
                ClientKind::NonInvite(NonInviteClient::new(now, b.clone(), reliable, timers)),
                b,
            )
        };
        self.clients.insert(
            key.clone(),
            ClientTx {
                kind,
                dest,
                scheduled: None,
            },
        );
        self.reschedule(Side::Client, &key);
        self.transmit(dest, bytes);
        Ok(key)
    }

    /// Sends bytes outside any transaction (ACK for 2xx, stateless forwarding).
    pub fn send_stateless(&mut self, dest: Destination, bytes: Vec<u8>) {
        self.transmit(dest, bytes);
    }

    fn on_timeout(&mut self, now: Instant) {
        let mut due = Vec::new();
        while let Some(Reverse(TimerEntry(t, seq, side, key))) = self.timers.peek() {
            if *t > now {
                break;
            }
            if self.entry_live(*seq, *side, key) {
                due.push((*side, key.clone()));
            }
            self.timers.pop();
        }
        for (side, key) in due {
            match side {
                Side::Server => {
                    if let Some(s) = self.servers.get_mut(&key) {
                        s.scheduled = None;
                        if let ServerKind::Invite(t) = &mut s.kind {
                            let dest = s.dest;
                            for ev in t.handle_timeout(now) {
                                self.out.push_back(tx_output(ev, dest, &key));
                            }
                        } else if let ServerKind::NonInvite(t) = &mut s.kind {
                            t.handle_timeout(now);
                        }
                    }
                }
                Side::Client => {
                    if let Some(c) = self.clients.get_mut(&key) {
                        c.scheduled = None;
                        let dest = c.dest;
                        let evs = match &mut c.kind {
                            ClientKind::NonInvite(t) => t.handle_timeout(now),
                            ClientKind::Invite(t) => t.handle_timeout(now),
                        };
                        for ev in evs {
                            self.out.push_back(tx_output(ev, dest, &key));
                        }
                    }
                }
            }
            self.reschedule(side, &key);
        }
        self.purge_timers();
    }
}

fn tx_output(ev: TxEvent, dest: Destination, key: &TransactionKey) -> Output {
    match ev {
        TxEvent::Transmit(bytes) => Output::Transmit {
            transport: dest.transport,
            remote: dest.remote,
            conn: dest.conn,
            bytes,
        },
        TxEvent::Timeout => Output::Event(Event::Timeout { key: key.clone() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::parse_message;
    use std::time::Duration;

    const LOCAL: &str = "192.0.2.10:5060";
    const PHONE: &str = "198.51.100.7:40000";

    fn options(uri: &str, via_extra: &str) -> String {
        format!(
            "OPTIONS {uri} SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.7:5070;branch=z9hG4bKopt1{via_extra}\r\n\
Max-Forwards: 70\r\n\
To: <sip:node.example.com>\r\n\
From: <sip:alice@example.com>;tag=abc\r\n\
Call-ID: opt1@10.0.0.7\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
        )
    }

    fn recv(
        ep: &mut Endpoint,
        now: Instant,
        transport: Transport,
        conn: Option<ConnId>,
        msg: &str,
    ) {
        ep.handle_input(
            now,
            Input::Received {
                transport,
                local: LOCAL.parse().unwrap(),
                remote: PHONE.parse().unwrap(),
                conn,
                bytes: msg.as_bytes().to_vec(),
            },
        );
    }

    fn drain(ep: &mut Endpoint) -> Vec<Output> {
        std::iter::from_fn(|| ep.poll_output()).collect()
    }

    fn sent(o: &Output) -> (SocketAddr, Option<ConnId>, Response) {
        match o {
            Output::Transmit {
                remote,
                conn,
                bytes,
                ..
            } => match parse_message(bytes).unwrap() {
                SipMessage::Response(r) => (*remote, *conn, r),
                SipMessage::Request(r) => panic!("request {r:?}"),
            },
            Output::Event(e) => panic!("event {e:?}"),
        }
    }

    #[test]
    fn options_to_us_gets_200_via_rport() {
        let t0 = crate::transaction::test_epoch();
        let mut ep = Endpoint::new(EndpointConfig::default());
        recv(
            &mut ep,
            t0,
            Transport::Udp,
            None,
            &options("sip:node.example.com", ";rport"),
        );
        let out = drain(&mut ep);
        assert_eq!(out.len(), 1);
        let (to, _, r) = sent(&out[0]);
        assert_eq!(to, PHONE.parse().unwrap());
        assert_eq!(r.status, 200);
        assert!(r.headers.get("Allow").unwrap().contains("REGISTER"));
        assert_eq!(r.headers.get("Accept"), Some("application/sdp"));
        assert!(r.headers.contains("Supported"));
        let via = r.headers.top_via().unwrap();
        assert_eq!(via.received(), Some("198.51.100.7"));
        assert_eq!(via.rport(), Some(Some(40000)));
        assert!(r.headers.to().unwrap().tag().is_some());
        // A retransmission gets the same response again.
        recv(
            &mut ep,
            t0,
            Transport::Udp,
            None,
            &options("sip:node.example.com", ";rport"),
        );
        let again = drain(&mut ep);
        assert_eq!(again, out);
        // Timer J removes the transaction.
        assert_eq!(ep.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        ep.handle_input(t0 + Duration::from_secs(32), Input::Timeout);
        assert_eq!(ep.transaction_count(), (0, 0));
    }

    #[test]
    fn udp_without_rport_uses_sent_by_port() {
        let t0 = crate::transaction::test_epoch();
        let mut ep = Endpoint::new(EndpointConfig::default());
        recv(
            &mut ep,
            t0,
            Transport::Udp,
            None,
            &options("sip:node.example.com", ""),
        );
        let (to, _, r) = sent(&drain(&mut ep)[0]);
        assert_eq!(to, "198.51.100.7:5070".parse().unwrap());
        assert_eq!(r.headers.top_via().unwrap().rport(), None);
    }

    #[test]
    fn tcp_response_reuses_connection() {
        let t0 = crate::transaction::test_epoch();
        let mut ep = Endpoint::new(EndpointConfig::default());
        let msg = options("sip:node.example.com", "").replace("UDP", "TCP");
        recv(&mut ep, t0, Transport::Tcp, Some(ConnId(7)), &msg);
        let (to, conn, r) = sent(&drain(&mut ep)[0]);
        assert_eq!(
            (to, conn, r.status),
            (PHONE.parse().unwrap(), Some(ConnId(7)), 200)
        );
        // Reliable: the transaction ends at once.
        ep.handle_input(t0, Input::Timeout);
        assert_eq!(ep.transaction_count(), (0, 0));
    }

    #[test]
    fn malformed_and_unsupported() {
        let t0 = crate::transaction::test_epoch();
        let mut ep = Endpoint::new(EndpointConfig::default());
        let good = options("sip:node.example.com", ";rport");
        recv(
            &mut ep,
            t0,
            Transport::Udp,
            None,
            &good.replace("CSeq: 1 OPTIONS\r\n", ""),
        );
        // The 400 cannot carry a CSeq the request did not have.
        let Output::Transmit { bytes, .. } = &drain(&mut ep)[0] else {
            panic!()
        };
        assert!(bytes.starts_with(b"SIP/2.0 400 Missing CSeq header\r\n"));
        recv(
            &mut ep,
            t0,
            Transport::Udp,
            None,
            &good.replace("Call-ID: opt1@10.0.0.7\r\n", ""),
        );
        assert!(matches!(
            &drain(&mut ep)[..],
            [Output::Event(Event::Dropped { .. })]
        ));
        let foo = good.replace("OPTIONS", "FOO").replace("opt1", "foo1");
        recv(&mut ep, t0, Transport::Udp, None, &foo);
        assert_eq!(sent(&drain(&mut ep)[0]).2.status, 501);
        let publish = good.replace("OPTIONS", "PUBLISH").replace("opt1", "pub1");
        recv(&mut ep, t0, Transport::Udp, None, &publish);
        let (_, _, r) = sent(&drain(&mut ep)[0]);
        assert_eq!(r.status, 405);
        assert!(r.headers.contains("Allow"));
        let unk = options("nobodyknowsthisscheme:totallyopaquecontent", "").replace("opt1", "unk1");
        recv(&mut ep, t0, Transport::Udp, None, &unk);
        assert_eq!(sent(&drain(&mut ep)[0]).2.status, 416);
        let req = good
            .replace("opt1", "req1")
            .replace("Max-Forwards", "Require: foo\r\nMax-Forwards");
        recv(&mut ep, t0, Transport::Udp, None, &req);
        let (_, _, r) = sent(&drain(&mut ep)[0]);
        assert_eq!((r.status, r.headers.get("Unsupported")), (420, Some("foo")));
        let resp = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.7;branch=z9hG4bKnone\r\n\
To: <sip:a@b>;tag=1\r\nFrom: <sip:a@b>;tag=2\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n";
        recv(&mut ep, t0, Transport::Udp, None, resp);
        assert!(matches!(
            &drain(&mut ep)[..],
            [Output::Event(Event::Dropped { .. })]
        ));
    }

    #[test]
    fn max_forwards_zero() {
        let t0 = crate::transaction::test_epoch();
        let mut ep = Endpoint::new(EndpointConfig::default());
        let m = options("sip:bob@example.com", "").replace("Max-Forwards: 70", "Max-Forwards: 0");
        recv(&mut ep, t0, Transport::Udp, None, &m);
        assert_eq!(sent(&drain(&mut ep)[0]).2.status, 200);
        let bye = m.replace("OPTIONS", "BYE").replace("opt1", "bye1");
        recv(&mut ep, t0, Transport::Udp, None, &bye);
        assert_eq!(sent(&drain(&mut ep)[0]).2.status, 483);
    }

    fn invite() -> String {
        options("sip:bob@example.com", "")
            .replace("OPTIONS", "INVITE")
            .replace("opt1", "inv1")
    }

    #[test]
    fn invite_flow_with_non_2xx_and_ack() {
        let t0 = crate::transaction::test_epoch();
        let mut ep = Endpoint::new(EndpointConfig::default());
        recv(&mut ep, t0, Transport::Udp, None, &invite());
        let out = drain(&mut ep);
        assert_eq!(sent(&out[0]).2.status, 100);
        let Output::Event(Event::Request { key, request, .. }) = &out[1] else {
            panic!("{out:?}")
        };
        assert_eq!(request.method, Method::Invite);
        // Retransmitted INVITE: the 100 again, no new event.
        recv(&mut ep, t0, Transport::Udp, None, &invite());
        assert_eq!(sent(&drain(&mut ep)[0]).2.status, 100);
        ep.reply(t0, key, 486, "Busy Here").unwrap();
        let (_, _, busy) = sent(&drain(&mut ep)[0]);
        assert_eq!(busy.status, 486);
        let tag = busy.headers.to().unwrap().tag().unwrap().to_owned();
        // Timer G retransmits.
        ep.handle_input(t0 + Duration::from_millis(500), Input::Timeout);
        assert_eq!(sent(&drain(&mut ep)[0]).2.status, 486);
        let ack = invite()
            .replace("INVITE sip", "ACK sip")
            .replace("1 INVITE", "1 ACK")
            .replace(
                "<sip:node.example.com>",
                &format!("<sip:node.example.com>;tag={tag}"),
            );
        recv(
            &mut ep,
            t0 + Duration::from_millis(600),
            Transport::Udp,
            None,
            &ack,
        );
        assert!(drain(&mut ep).is_empty());
        ep.handle_input(t0 + Duration::from_secs(6), Input::Timeout);
        assert!(drain(&mut ep).is_empty());
        assert_eq!(ep.transaction_count(), (0, 0));
        // An ACK for nothing we know (a 2xx ACK) goes to the application.
        recv(&mut ep, t0, Transport::Udp, None, &ack);
        assert!(matches!(
            &drain(&mut ep)[..],
            [Output::Event(Event::Ack { .. })]
        ));
    }

    #[test]
    fn cancel_matches_invite() {
        let t0 = crate::transaction::test_epoch();
        let mut ep = Endpoint::new(EndpointConfig::default());
        recv(&mut ep, t0, Transport::Udp, None, &invite());
        let out = drain(&mut ep);
        let Output::Event(Event::Request { key, .. }) = &out[1] else {
            panic!()
        };
        let cancel = invite().replace("INVITE", "CANCEL");
        recv(&mut ep, t0, Transport::Udp, None, &cancel);
        let out = drain(&mut ep);
        assert_eq!(sent(&out[0]).2.status, 200);
        assert_eq!(
            out[1],
            Output::Event(Event::Cancelled {
                invite: key.clone()
            })
        );
        ep.reply(t0, key, 487, "Request Terminated").unwrap();
        assert_eq!(sent(&drain(&mut ep)[0]).2.status, 487);
        let stray = cancel.replace("inv1", "other");
        recv(&mut ep, t0, Transport::Udp, None, &stray);
        assert_eq!(sent(&drain(&mut ep)[0]).2.status, 481);
    }

    #[test]
    fn client_transaction_and_timeout() {
        let t0 = crate::transaction::test_epoch();
        let mut ep = Endpoint::new(EndpointConfig::default());
        let branch = ep.new_branch();
        let SipMessage::Request(mut req) =
            parse_message(options("sip:bob@example.com", "").as_bytes()).unwrap()
        else {
            panic!()
        };
        req.headers.set(
            "Via",
            Via::new("UDP", "192.0.2.10", Some(5060), &branch).to_string(),
        );
        let dest = Destination {
            transport: Transport::Udp,
            remote: PHONE.parse().unwrap(),
            conn: None,
        };
        let key = ep.send_request(t0, req.clone(), dest).unwrap();
        assert!(matches!(&drain(&mut ep)[..], [Output::Transmit { .. }]));
        let resp = crate::response::response_to(&req, 200, "OK", Some("t"), None);
        ep.handle_input(
            t0,
            Input::Received {
                transport: Transport::Udp,
                local: LOCAL.parse().unwrap(),
                remote: PHONE.parse().unwrap(),
                conn: None,
                bytes: resp.to_bytes(),
            },
        );
        let out = drain(&mut ep);
        assert!(
            matches!(&out[..], [Output::Event(Event::Response { key: k, response }) ] if *k == key && response.status == 200)
        );
        // Second request never answered: Timer F.
        let mut req2 = req.clone();
        let b2 = ep.new_branch();
        req2.headers.set(
            "Via",
            Via::new("UDP", "192.0.2.10", Some(5060), &b2).to_string(),
        );
        let key2 = ep.send_request(t0, req2, dest).unwrap();
        drain(&mut ep);
        let mut events = Vec::new();
        while let Some(t) = ep.poll_timeout() {
            ep.handle_input(t, Input::Timeout);
            events.extend(drain(&mut ep));
        }
        assert!(events.contains(&Output::Event(Event::Timeout { key: key2 })));
        assert_eq!(ep.transaction_count(), (0, 0));
    }

    #[test]
    fn invite_2xx_absorbs_retransmissions_and_timer_h_reports() {
        let t0 = crate::transaction::test_epoch();
        let mut ep = Endpoint::new(EndpointConfig::default());
        recv(&mut ep, t0, Transport::Udp, None, &invite());
        let out = drain(&mut ep);
        let Output::Event(Event::Request { key, .. }) = &out[1] else {
            panic!()
        };
        ep.reply(t0, key, 200, "OK").unwrap();
        assert_eq!(sent(&drain(&mut ep)[0]).2.status, 200);
        // RFC 6026 Accepted: the INVITE retransmission is absorbed, not re-answered.
        recv(&mut ep, t0, Transport::Udp, None, &invite());
        assert!(drain(&mut ep).is_empty());
        ep.handle_input(t0 + Duration::from_secs(32), Input::Timeout);
        assert_eq!(ep.transaction_count(), (0, 0));

        let second = invite().replace("inv1", "inv2");
        recv(
            &mut ep,
            t0,
            Transport::Tcp,
            Some(ConnId(1)),
            &second.replace("UDP", "TCP"),
        );
        let out = drain(&mut ep);
        let Output::Event(Event::Request { key, .. }) = &out[1] else {
            panic!()
        };
        ep.reply(t0, key, 480, "Temporarily Unavailable").unwrap();
        drain(&mut ep);
        ep.handle_input(t0 + Duration::from_secs(32), Input::Timeout);
        assert_eq!(
            drain(&mut ep),
            vec![Output::Event(Event::Timeout { key: key.clone() })]
        );
        assert_eq!(ep.transaction_count(), (0, 0));
        assert_eq!(
            ep.respond(t0, key, Response::new(200, "OK")),
            Err(EndpointError::UnknownTransaction)
        );
    }

    #[test]
    fn timer_heap_tracks_rescheduled_and_finished_transactions() {
        let t0 = crate::transaction::test_epoch();
        let mut ep = Endpoint::new(EndpointConfig::default());
        let dest = Destination {
            transport: Transport::Udp,
            remote: PHONE.parse().unwrap(),
            conn: None,
        };
        let SipMessage::Request(base) = parse_message(invite().as_bytes()).unwrap() else {
            panic!()
        };
        let mut keys = Vec::new();
        for i in 0..3u64 {
            let mut req = base.clone();
            let b = ep.new_branch();
            req.headers.set(
                "Via",
                Via::new("UDP", "192.0.2.10", Some(5060), &b).to_string(),
            );
            let at = t0 + Duration::from_millis(10 * i);
            keys.push((ep.send_request(at, req.clone(), dest).unwrap(), req));
        }
        drain(&mut ep);
        // Timer A of the first INVITE.
        assert_eq!(ep.poll_timeout(), Some(t0 + Duration::from_millis(500)));
        // A 180 stops Timer A of the first: the next deadline is the second's Timer A.
        let ringing = crate::response::response_to(&keys[0].1, 180, "Ringing", Some("t"), None);
        ep.handle_input(
            t0,
            Input::Received {
                transport: Transport::Udp,
                local: LOCAL.parse().unwrap(),
                remote: PHONE.parse().unwrap(),
                conn: None,
                bytes: ringing.to_bytes(),
            },
        );
        drain(&mut ep);
        assert_eq!(ep.poll_timeout(), Some(t0 + Duration::from_millis(510)));
        // Only the due transaction retransmits.
        ep.handle_input(t0 + Duration::from_millis(515), Input::Timeout);
        assert_eq!(drain(&mut ep).len(), 1);
        assert_eq!(ep.poll_timeout(), Some(t0 + Duration::from_millis(520)));
        // The first (Proceeding, no timer) stays; the others time out with Timer B.
        while let Some(t) = ep.poll_timeout() {
            ep.handle_input(t, Input::Timeout);
        }
        assert_eq!(ep.transaction_count(), (0, 1));
    }
}
