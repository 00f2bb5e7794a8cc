//! Non-INVITE server transaction (RFC 3261 17.2.2, figure 8).

use super::{TimerConfig, TxError, due, earliest};
use std::time::Instant;

/// States of figure 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonInviteServerState {
    /// Request received, nothing sent yet.
    Trying,
    /// A provisional response was sent.
    Proceeding,
    /// A final response was sent; absorbing retransmissions until Timer J.
    Completed,
    /// Done.
    Terminated,
}

/// A non-INVITE server transaction.
#[derive(Debug)]
pub struct NonInviteServer {
    state: NonInviteServerState,
    reliable: bool,
    timers: TimerConfig,
    last_response: Option<Vec<u8>>,
    timer_j: Option<Instant>,
}

impl NonInviteServer {
    /// Starts in Trying; `reliable` is whether the request came over a reliable transport.
    pub fn new(reliable: bool, timers: TimerConfig) -> Self {
        NonInviteServer {
            state: NonInviteServerState::Trying,
            reliable,
            timers,
            last_response: None,
            timer_j: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> NonInviteServerState {
        self.state
    }

    /// A retransmitted request arrived: returns the last response to resend, if any.
    pub fn on_request(&self) -> Option<Vec<u8>> {
        match self.state {
            NonInviteServerState::Proceeding | NonInviteServerState::Completed => {
                self.last_response.clone()
            }
            _ => None,
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
            NonInviteServerState::Trying | NonInviteServerState::Proceeding => {
                if status < 200 {
                    self.state = NonInviteServerState::Proceeding;
                } else {
                    self.state = NonInviteServerState::Completed;
                    let wait = if self.reliable {
                        std::time::Duration::ZERO
                    } else {
                        self.timers.t64()
                    };
                    self.timer_j = Some(now + wait);
                }
                self.last_response = Some(bytes.clone());
                Ok(bytes)
            }
            NonInviteServerState::Completed => Err(TxError::WrongState("Completed")),
            NonInviteServerState::Terminated => Err(TxError::WrongState("Terminated")),
        }
    }

    /// When the next timer fires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.timer_j])
    }

    /// Fires due timers (Timer J: Completed -> Terminated).
    pub fn handle_timeout(&mut self, now: Instant) {
        if due(self.timer_j, now) {
            self.timer_j = None;
            self.state = NonInviteServerState::Terminated;
        }
    }

    /// The transport reported a failure sending a response.
    pub fn on_transport_error(&mut self) {
        self.state = NonInviteServerState::Terminated;
        self.timer_j = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn udp_flow_with_timer_j() {
        let t0 = super::super::test_epoch();
        let mut tx = NonInviteServer::new(false, TimerConfig::default());
        assert_eq!(tx.on_request(), None);
        tx.send_response(t0, 100, b"100".to_vec()).unwrap();
        assert_eq!(tx.state(), NonInviteServerState::Proceeding);
        assert_eq!(tx.on_request(), Some(b"100".to_vec()));
        tx.send_response(t0, 200, b"200".to_vec()).unwrap();
        assert_eq!(tx.state(), NonInviteServerState::Completed);
        assert_eq!(tx.on_request(), Some(b"200".to_vec()));
        assert!(tx.send_response(t0, 200, b"again".to_vec()).is_err());
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        tx.handle_timeout(t0 + Duration::from_secs(31));
        assert_eq!(tx.state(), NonInviteServerState::Completed);
        tx.handle_timeout(t0 + Duration::from_secs(32));
        assert_eq!(tx.state(), NonInviteServerState::Terminated);
        assert_eq!(tx.poll_timeout(), None);
    }

    #[test]
    fn reliable_terminates_at_once() {
        let t0 = super::super::test_epoch();
        let mut tx = NonInviteServer::new(true, TimerConfig::default());
        tx.send_response(t0, 404, b"404".to_vec()).unwrap();
        assert_eq!(tx.poll_timeout(), Some(t0));
        tx.handle_timeout(t0);
        assert_eq!(tx.state(), NonInviteServerState::Terminated);
    }
}
