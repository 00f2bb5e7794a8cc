//! Non-INVITE client transaction (RFC 3261 17.1.2, figure 6).

use super::{TimerConfig, TxEvent, due, earliest};
use std::time::{Duration, Instant};

/// States of figure 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonInviteClientState {
    /// Request sent, no response yet.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived; absorbing retransmissions until Timer K.
    Completed,
    /// Done.
    Terminated,
}

/// A non-INVITE client transaction.
#[derive(Debug)]
pub struct NonInviteClient {
    state: NonInviteClientState,
    reliable: bool,
    timers: TimerConfig,
    request: Vec<u8>,
    timer_e: Option<Instant>,
    e_interval: Duration,
    timer_f: Option<Instant>,
    timer_k: Option<Instant>,
}

impl NonInviteClient {
    /// Starts in Trying; the owner transmits `request` once right away.
    pub fn new(now: Instant, request: Vec<u8>, reliable: bool, timers: TimerConfig) -> Self {
        NonInviteClient {
            state: NonInviteClientState::Trying,
            reliable,
            timers,
            request,
            timer_e: (!reliable).then(|| now + timers.t1),
            e_interval: timers.t1,
            timer_f: Some(now + timers.t64()),
            timer_k: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> NonInviteClientState {
        self.state
    }

    /// A response with `status` matched this transaction; returns whether to pass it to
    /// the TU (retransmitted finals are absorbed in Completed).
    pub fn on_response(&mut self, now: Instant, status: u16) -> bool {
        match self.state {
            NonInviteClientState::Trying | NonInviteClientState::Proceeding => {
                if status < 200 {
                    self.state = NonInviteClientState::Proceeding;
                } else {
                    self.state = NonInviteClientState::Completed;
                    self.timer_e = None;
                    self.timer_f = None;
                    let wait = if self.reliable {
                        Duration::ZERO
                    } else {
                        self.timers.t4
                    };
                    self.timer_k = Some(now + wait);
                }
                true
            }
            _ => false,
        }
    }

    /// When the next timer fires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.timer_e, self.timer_f, self.timer_k])
    }

    /// Fires due timers: E retransmits, F times out, K terminates.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<TxEvent> {
        let mut out = Vec::new();
        if due(self.timer_f, now) {
            self.state = NonInviteClientState::Terminated;
            self.timer_e = None;
            self.timer_f = None;
            out.push(TxEvent::Timeout);
            return out;
        }
        if due(self.timer_e, now) {
            out.push(TxEvent::Transmit(self.request.clone()));
            self.e_interval = if self.state == NonInviteClientState::Proceeding {
                self.timers.t2
            } else {
                (self.e_interval * 2).min(self.timers.t2)
            };
            self.timer_e = Some(now + self.e_interval);
        }
        if due(self.timer_k, now) {
            self.timer_k = None;
            self.state = NonInviteClientState::Terminated;
        }
        out
    }

    /// The transport reported a failure sending the request (RFC 3261 17.1.4).
    pub fn on_transport_error(&mut self) {
        self.state = NonInviteClientState::Terminated;
        self.timer_e = None;
        self.timer_f = None;
        self.timer_k = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmits_then_times_out() {
        let t0 = super::super::test_epoch();
        let mut tx = NonInviteClient::new(t0, b"REQ".to_vec(), false, TimerConfig::default());
        let mut t = t0;
        let mut sends = 0;
        loop {
            let next = tx.poll_timeout().unwrap();
            assert!(next >= t);
            t = next;
            let ev = tx.handle_timeout(t);
            if ev == vec![TxEvent::Timeout] {
                break;
            }
            assert_eq!(ev, vec![TxEvent::Transmit(b"REQ".to_vec())]);
            sends += 1;
        }
        // 0.5, 1.5, 3.5, 7.5, 11.5, ..., 31.5 s: 10 retransmissions before F at 32 s.
        assert_eq!(sends, 10);
        assert_eq!(t, t0 + Duration::from_secs(32));
        assert_eq!(tx.state(), NonInviteClientState::Terminated);
    }

    #[test]
    fn proceeding_uses_t2_and_final_completes() {
        let t0 = super::super::test_epoch();
        let mut tx = NonInviteClient::new(t0, b"REQ".to_vec(), false, TimerConfig::default());
        assert!(tx.on_response(t0, 100));
        let t = t0 + Duration::from_millis(500);
        assert_eq!(tx.handle_timeout(t).len(), 1);
        assert_eq!(tx.poll_timeout(), Some(t + Duration::from_secs(4)));
        assert!(tx.on_response(t, 200));
        assert!(!tx.on_response(t, 200));
        assert_eq!(tx.poll_timeout(), Some(t + Duration::from_secs(5)));
        assert!(tx.handle_timeout(t + Duration::from_secs(5)).is_empty());
        assert_eq!(tx.state(), NonInviteClientState::Terminated);
    }

    #[test]
    fn reliable_has_no_timer_e() {
        let t0 = super::super::test_epoch();
        let tx = NonInviteClient::new(t0, b"REQ".to_vec(), true, TimerConfig::default());
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
    }
}
