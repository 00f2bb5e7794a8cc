//! INVITE server transaction (RFC 3261 17.2.1, figure 7, with the RFC 6026 Accepted state).

use super::{TimerConfig, TxError, TxEvent, due, earliest};
use std::time::{Duration, Instant};

/// States of figure 7 plus RFC 6026 `Accepted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteServerState {
    /// INVITE received; provisional responses may be sent.
    Proceeding,
    /// A 2xx was sent (RFC 6026 7.1): INVITE retransmissions are absorbed, ACKs pass to
    /// the TU, until Timer L.
    Accepted,
    /// A 300-699 was sent; retransmitting it (Timer G) until the ACK or Timer H.
    Completed,
    /// The ACK arrived; absorbing ACK retransmissions until Timer I.
    Confirmed,
    /// Done.
    Terminated,
}

/// What to do with an ACK that matched this transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// The ACK was for our non-2xx final response: it is consumed here.
    Absorbed,
    /// The ACK is for a 2xx: hand it to the TU (RFC 6026 Accepted state).
    PassUp,
}

/// An INVITE server transaction.
#[derive(Debug)]
pub struct InviteServer {
    state: InviteServerState,
    reliable: bool,
    timers: TimerConfig,
    last_response: Option<Vec<u8>>,
    timer_g: Option<Instant>,
    g_interval: Duration,
    timer_h: Option<Instant>,
    timer_i: Option<Instant>,
    timer_l: Option<Instant>,
}

impl InviteServer {
    /// Starts in Proceeding. The owner should send a 100 Trying right away (17.2.1).
    pub fn new(reliable: bool, timers: TimerConfig) -> Self {
        InviteServer {
            state: InviteServerState::Proceeding,
            reliable,
            timers,
            last_response: None,
            timer_g: None,
            g_interval: timers.t1,
            timer_h: None,
            timer_i: None,
            timer_l: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> InviteServerState {
        self.state
    }

    /// A retransmitted INVITE arrived: returns the response to resend, if any.
    pub fn on_request(&self) -> Option<Vec<u8>> {
        match self.state {
            InviteServerState::Proceeding | InviteServerState::Completed => {
                self.last_response.clone()
            }
            _ => None,
        }
    }

    /// An ACK matched this transaction.
    pub fn on_ack(&mut self, now: Instant) -> AckOutcome {
        match self.state {
            InviteServerState::Completed => {
                self.state = InviteServerState::Confirmed;
                self.timer_g = None;
                self.timer_h = None;
                let wait = if self.reliable {
                    Duration::ZERO
                } else {
                    self.timers.t4
                };
                self.timer_i = Some(now + wait);
                AckOutcome::Absorbed
            }
            InviteServerState::Accepted => AckOutcome::PassUp,
            _ => AckOutcome::Absorbed,
        }
    }

    /// The TU sends a response; returns the bytes to transmit.
    pub fn send_response(
        &mut self,
        now: Instant,
        status: u16,
        bytes: Vec<u8>,
    ) -> Result<Vec<u8>, TxError> {
        match self.state {
            InviteServerState::Proceeding => {
                if (200..300).contains(&status) {
                    self.state = InviteServerState::Accepted;
                    self.timer_l = Some(now + self.timers.t64());
                } else if status >= 300 {
                    self.state = InviteServerState::Completed;
                    if !self.reliable {
                        self.g_interval = self.timers.t1;
                        self.timer_g = Some(now + self.g_interval);
                    }
                    self.timer_h = Some(now + self.timers.t64());
                }
                self.last_response = Some(bytes.clone());
                Ok(bytes)
            }
            // The TU (or a proxy forwarding a 2xx retransmission) may resend a 2xx.
            InviteServerState::Accepted if (200..300).contains(&status) => Ok(bytes),
            InviteServerState::Accepted => Err(TxError::WrongState("Accepted")),
            InviteServerState::Completed => Err(TxError::WrongState("Completed")),
            InviteServerState::Confirmed => Err(TxError::WrongState("Confirmed")),
            InviteServerState::Terminated => Err(TxError::WrongState("Terminated")),
        }
    }

    /// When the next timer fires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.timer_g, self.timer_h, self.timer_i, self.timer_l])
    }

    /// Fires due timers: G retransmits the final response (doubling up to T2), H times
    /// out waiting for the ACK, I and L terminate.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<TxEvent> {
        let mut out = Vec::new();
        if due(self.timer_h, now) {
            self.state = InviteServerState::Terminated;
            self.timer_g = None;
            self.timer_h = None;
            out.push(TxEvent::Timeout);
            return out;
        }
        if due(self.timer_g, now) {
            if let Some(b) = &self.last_response {
                out.push(TxEvent::Transmit(b.clone()));
            }
            self.g_interval = (self.g_interval * 2).min(self.timers.t2);
            self.timer_g = Some(now + self.g_interval);
        }
        if due(self.timer_i, now) {
            self.timer_i = None;
            self.state = InviteServerState::Terminated;
        }
        if due(self.timer_l, now) {
            self.timer_l = None;
            self.state = InviteServerState::Terminated;
        }
        out
    }

    /// The transport reported a failure.
    pub fn on_transport_error(&mut self) {
        self.state = InviteServerState::Terminated;
        self.timer_g = None;
        self.timer_h = None;
        self.timer_i = None;
        self.timer_l = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn non_2xx_retransmits_until_ack() {
        let t0 = super::super::test_epoch();
        let mut tx = InviteServer::new(false, TimerConfig::default());
        tx.send_response(t0, 100, b"100".to_vec()).unwrap();
        assert_eq!(tx.on_request(), Some(b"100".to_vec()));
        tx.send_response(t0, 486, b"486".to_vec()).unwrap();
        assert_eq!(tx.state(), InviteServerState::Completed);
        // Timer G: 500, 1000, 2000, 4000, 4000 ms.
        let mut t = t0;
        for gap in [500, 1000, 2000, 4000, 4000] {
            t += ms(gap);
            assert_eq!(tx.poll_timeout(), Some(t));
            assert_eq!(
                tx.handle_timeout(t),
                vec![TxEvent::Transmit(b"486".to_vec())]
            );
        }
        assert_eq!(tx.on_request(), Some(b"486".to_vec()));
        assert_eq!(tx.on_ack(t), AckOutcome::Absorbed);
        assert_eq!(tx.state(), InviteServerState::Confirmed);
        assert_eq!(tx.poll_timeout(), Some(t + Duration::from_secs(5)));
        assert_eq!(tx.on_ack(t), AckOutcome::Absorbed);
        assert!(tx.handle_timeout(t + Duration::from_secs(5)).is_empty());
        assert_eq!(tx.state(), InviteServerState::Terminated);
    }

    #[test]
    fn timer_h_without_ack() {
        let t0 = super::super::test_epoch();
        let mut tx = InviteServer::new(true, TimerConfig::default());
        tx.send_response(t0, 500, b"500".to_vec()).unwrap();
        // Reliable: no Timer G, only H at 64*T1.
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        assert_eq!(
            tx.handle_timeout(t0 + Duration::from_secs(32)),
            vec![TxEvent::Timeout]
        );
        assert_eq!(tx.state(), InviteServerState::Terminated);
    }

    #[test]
    fn accepted_passes_ack_up_until_timer_l() {
        let t0 = super::super::test_epoch();
        let mut tx = InviteServer::new(false, TimerConfig::default());
        tx.send_response(t0, 200, b"200".to_vec()).unwrap();
        assert_eq!(tx.state(), InviteServerState::Accepted);
        assert_eq!(tx.on_request(), None);
        assert_eq!(
            tx.send_response(t0, 200, b"200".to_vec()),
            Ok(b"200".to_vec())
        );
        assert!(tx.send_response(t0, 486, b"486".to_vec()).is_err());
        assert_eq!(tx.on_ack(t0), AckOutcome::PassUp);
        tx.handle_timeout(t0 + Duration::from_secs(32));
        assert_eq!(tx.state(), InviteServerState::Terminated);
    }
}
