//! calls: the overlay driver's side of AppAttach with ICE (RFC 6940 6.5.2). The engine draws
//! the ICE credentials and answers AppAttach; the application's UDP socket (SIP over DTLS,
//! [`crate::sip_transport::dtls`]) runs the checks. This hook tells that socket, from inside
//! the driver and before the messages go out, what it needs: the credentials of our
//! requests (so the peer's early checks verify), the requests we answered (the controlled
//! half of ICE, relay permissions for the requester) and the overlay's TURN server (the
//! socket allocates its own relayed address there with the same credentials).

use super::turn::Relay;
use reload::node::app_attach::AppAttachAnswered;
use reload::node::{IceCredentials, Node};
use std::net::SocketAddr;
use std::sync::Arc;

/// What the driver tells the application socket.
#[derive(Debug, Clone)]
pub enum AppIceEvent {
    /// Our credentials in an AppAttach request about to be sent.
    Issued(IceCredentials),
    /// An AppAttach request we answered (our credentials in the answer included).
    Answered(AppAttachAnswered),
    /// The overlay's TURN server and its long-term credentials.
    Turn {
        /// The server.
        server: SocketAddr,
        /// User name and password.
        creds: (String, String),
    },
}

/// Called by the driver, synchronously, for each [`AppIceEvent`].
pub type AppIceHook = Arc<dyn Fn(AppIceEvent) + Send + Sync>;

/// The hook and what was already told.
#[derive(Default)]
pub(super) struct AppIce {
    hook: Option<AppIceHook>,
    turn_told: bool,
}

impl AppIce {
    /// Sets the hook (a later one replaces it; the TURN server is told again).
    pub(super) fn set(&mut self, hook: AppIceHook) {
        self.hook = Some(hook);
        self.turn_told = false;
    }

    /// Tells the hook about credentials just issued.
    pub(super) fn issued(&self, creds: &IceCredentials) {
        if let Some(h) = &self.hook {
            h(AppIceEvent::Issued(creds.clone()));
        }
    }

    /// Hands the answered AppAttach requests and the TURN server (once known) to the hook.
    pub(super) fn flush(&mut self, node: &mut Node, relay: Option<&Arc<Relay>>) {
        while let Some(a) = node.poll_app_attach_answered() {
            if let Some(h) = &self.hook {
                h(AppIceEvent::Answered(a));
            }
        }
        if !self.turn_told
            && let Some(h) = &self.hook
            && let Some(r) = relay
            && let Some(server) = r.server()
        {
            self.turn_told = true;
            h(AppIceEvent::Turn {
                server,
                creds: r.credentials().unwrap_or_default(),
            });
        }
    }
}
