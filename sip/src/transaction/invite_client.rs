//! INVITE client transaction (RFC 3261 17.1.1, figure 5, with the RFC 6026 Accepted state).

use super::{TimerConfig, TxEvent, due, earliest};
use crate::message::{CSeq, Headers, Method, Request, Response};
use std::time::{Duration, Instant};

/// States of figure 5 plus RFC 6026 `Accepted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteClientState {
    /// INVITE sent; retransmitting on Timer A until a response or Timer B.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A 2xx arrived (RFC 6026 7.2): further 2xx pass to the TU until Timer M.
    Accepted,
    /// A 300-699 arrived and was ACKed; re-ACKing retransmissions until Timer D.
    Completed,
    /// Done.
    Terminated,
}

/// An INVITE client transaction.
#[derive(Debug)]
pub struct InviteClient {
    state: InviteClientState,
    reliable: bool,
    timers: TimerConfig,
    request: Request,
    bytes: Vec<u8>,
    ack: Option<Vec<u8>>,
    timer_a: Option<Instant>,
    a_interval: Duration,
    timer_b: Option<Instant>,
    timer_d: Option<Instant>,
    timer_m: Option<Instant>,
}

/// Builds the ACK for a non-2xx final response (RFC 3261 17.1.1.3): same Request-URI,
/// Call-ID, From, CSeq number and top Via as the INVITE, To from the response, Route
/// headers of the INVITE.
pub fn build_ack(invite: &Request, response: &Response) -> Request {
    let mut h = Headers::new();
    if let Some(v) = invite.headers.top_via() {
        h.push("Via", v.to_string());
    }
    for name in ["Route"] {
        for v in invite.headers.get_all(name) {
            h.push(name, v);
        }
    }
    h.push("Max-Forwards", "70");
    if let Some(v) = invite.headers.get("From") {
        h.push("From", v);
    }
    if let Some(v) = response
        .headers
        .get("To")
        .or_else(|| invite.headers.get("To"))
    {
        h.push("To", v);
    }
    if let Some(v) = invite.headers.call_id() {
        h.push("Call-ID", v);
    }
    let seq = invite.headers.cseq().map_or(0, |c| c.seq);
    h.push(
        "CSeq",
        CSeq {
            seq,
            method: Method::Ack,
        }
        .to_string(),
    );
    h.push("Content-Length", "0");
    Request {
        method: Method::Ack,
        uri: invite.uri.clone(),
        headers: h,
        body: Vec::new(),
    }
}

impl InviteClient {
    /// Starts in Calling; the owner transmits `request` once right away.
    pub fn new(now: Instant, request: Request, reliable: bool, timers: TimerConfig) -> Self {
        let bytes = request.to_bytes();
        InviteClient {
            state: InviteClientState::Calling,
            reliable,
            timers,
            request,
            bytes,
            ack: None,
            timer_a: (!reliable).then(|| now + timers.t1),
            a_interval: timers.t1,
            timer_b: Some(now + timers.t64()),
            timer_d: None,
            timer_m: None,
        }
    }

    /// The INVITE as bytes (for the first transmission).
    pub fn request_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The current state.
    pub fn state(&self) -> InviteClientState {
        self.state
    }

    /// A response matched; returns (pass it to the TU?, bytes to transmit, i.e. an ACK).
    pub fn on_response(&mut self, now: Instant, response: &Response) -> (bool, Option<Vec<u8>>) {
        let status = response.status;
        match self.state {
            InviteClientState::Calling | InviteClientState::Proceeding => {
                self.timer_a = None;
                if status < 200 {
                    self.state = InviteClientState::Proceeding;
                    self.timer_b = None;
                    (true, None)
                } else if status < 300 {
                    self.state = InviteClientState::Accepted;
                    self.timer_b = None;
                    self.timer_m = Some(now + self.timers.t64());
                    (true, None)
                } else {
                    self.state = InviteClientState::Completed;
                    self.timer_b = None;
                    let wait = if self.reliable {
                        Duration::ZERO
                    } else {
                        Duration::from_secs(32).max(self.timers.t64())
                    };
                    self.timer_d = Some(now + wait);
                    let ack = build_ack(&self.request, response).to_bytes();
                    self.ack = Some(ack.clone());
                    (true, Some(ack))
                }
            }
            InviteClientState::Accepted => ((200..300).contains(&status), None),
            InviteClientState::Completed if status >= 300 => (false, self.ack.clone()),
            _ => (false, None),
        }
    }

    /// When the next timer fires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.timer_a, self.timer_b, self.timer_d, self.timer_m])
    }

    /// Fires due timers: A retransmits (doubling), B times out, D and M terminate.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<TxEvent> {
        let mut out = Vec::new();
        if due(self.timer_b, now) {
            self.state = InviteClientState::Terminated;
            self.timer_a = None;
            self.timer_b = None;
            out.push(TxEvent::Timeout);
            return out;
        }
        if due(self.timer_a, now) {
            out.push(TxEvent::Transmit(self.bytes.clone()));
            self.a_interval = self.a_interval.saturating_mul(2);
            self.timer_a = Some(now + self.a_interval);
        }
        if due(self.timer_d, now) || due(self.timer_m, now) {
            self.timer_d = None;
            self.timer_m = None;
            self.state = InviteClientState::Terminated;
        }
        out
    }

    /// The transport reported a failure sending the INVITE.
    pub fn on_transport_error(&mut self) {
        self.state = InviteClientState::Terminated;
        self.timer_a = None;
        self.timer_b = None;
        self.timer_d = None;
        self.timer_m = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{SipMessage, parse_message};

    const INVITE: &str = "INVITE sip:bob@biloxi.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8\r\n\
Route: <sip:p1.example.com;lr>\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.com>\r\n\
From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
Content-Length: 0\r\n\r\n";

    fn invite() -> Request {
        match parse_message(INVITE.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => panic!(),
        }
    }

    fn response(status: u16) -> Response {
        let mut r = crate::response::response_to(&invite(), status, "X", Some("totag"), None);
        r.reason = "X".into();
        r
    }

    #[test]
    fn timer_a_doubles_until_b() {
        let t0 = super::super::test_epoch();
        let mut tx = InviteClient::new(t0, invite(), false, TimerConfig::default());
        let mut fired = Vec::new();
        loop {
            let t = tx.poll_timeout().unwrap();
            let ev = tx.handle_timeout(t);
            if ev == vec![TxEvent::Timeout] {
                assert_eq!(t, t0 + Duration::from_secs(32));
                break;
            }
            fired.push(t.duration_since(t0).as_millis());
        }
        assert_eq!(fired, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(tx.state(), InviteClientState::Terminated);
    }

    #[test]
    fn non_2xx_is_acked_and_absorbed() {
        let t0 = super::super::test_epoch();
        let mut tx = InviteClient::new(t0, invite(), false, TimerConfig::default());
        assert_eq!(tx.on_response(t0, &response(180)), (true, None));
        assert_eq!(tx.poll_timeout(), None);
        let (up, ack) = tx.on_response(t0, &response(486));
        assert!(up);
        let ack = ack.unwrap();
        let SipMessage::Request(a) = parse_message(&ack).unwrap() else {
            panic!()
        };
        assert_eq!(a.method, Method::Ack);
        assert_eq!(a.headers.cseq().unwrap().to_string(), "314159 ACK");
        assert_eq!(a.headers.to().unwrap().tag(), Some("totag"));
        assert_eq!(
            a.headers.top_via().unwrap().branch(),
            Some("z9hG4bKnashds8")
        );
        assert_eq!(a.headers.get("Route"), Some("<sip:p1.example.com;lr>"));
        assert_eq!(tx.on_response(t0, &response(486)), (false, Some(ack)));
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        tx.handle_timeout(t0 + Duration::from_secs(32));
        assert_eq!(tx.state(), InviteClientState::Terminated);
    }

    #[test]
    fn accepted_passes_2xx_retransmissions() {
        let t0 = super::super::test_epoch();
        let mut tx = InviteClient::new(t0, invite(), true, TimerConfig::default());
        assert_eq!(tx.on_response(t0, &response(200)), (true, None));
        assert_eq!(tx.state(), InviteClientState::Accepted);
        assert_eq!(tx.on_response(t0, &response(200)), (true, None));
        assert_eq!(tx.on_response(t0, &response(486)), (false, None));
        tx.handle_timeout(t0 + Duration::from_secs(32));
        assert_eq!(tx.state(), InviteClientState::Terminated);
    }
}
