//! The node's own TURN server (RFC 8656, UDP relays) for the TURN-SERVICE usage (RFC 6940
//! 9): a node that is not behind a NAT (`overlay.turn_service.serve`) runs one on
//! `overlay.turn_service.port` and advertises it in the overlay. The protocol is the sans-IO
//! `turn-server-proto`; this module owns its sockets and clock.
//!
//! Authentication: the crate only does long-term credentials (RFC 8489 9.2). Every member
//! of the overlay derives the same user name and password from the overlay: the user is
//! [`USER`], the realm the overlay name, and the password `overlay.turn_service.secret` or,
//! without one, a hash of the overlay name and its root certificate ([`credentials`]). So
//! the relays serve whoever has the overlay's configuration (its root certificate), not the
//! open Internet; a deployment that wants more sets a secret shared by its nodes.
//!
//! Bounds: at most [`MAX_ALLOCATIONS`] allocations (486 Allocation Quota Reached /
//! 508 Insufficient Capacity beyond), lifetimes of 600 s by default and 3600 s at most, and
//! permissions and channels (300 s / 600 s) as the crate implements RFC 8656.

use sha2::Digest;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use turn_server_proto::api::{
    SocketAllocateError, TcpConnectError, TurnServerApi, TurnServerPollRet,
};
use turn_server_proto::server::TurnServer;
use turn_server_proto::stun::agent::Transmit;
use turn_server_proto::types::Instant;
use turn_server_proto::types::stun::TransportType;

/// The user name of the overlay's TURN credentials.
pub const USER: &str = "reload";
/// Most allocations one node relays at a time.
pub const MAX_ALLOCATIONS: usize = 64;

/// The long-term credentials (user, password) of the overlay's TURN servers: `secret` if set,
/// else hex(SHA-256("p2psip TURN-SERVICE" || overlay || root certificate DER))[..32].
pub fn credentials(overlay: &str, root_der: &[u8], secret: Option<&str>) -> (String, String) {
    let password = match secret {
        Some(s) => s.to_string(),
        None => {
            let mut h = sha2::Sha256::new();
            h.update(b"p2psip TURN-SERVICE\0");
            h.update(overlay.as_bytes());
            h.update(b"\0");
            h.update(root_der);
            let mut p = hex::encode(h.finalize());
            p.truncate(32);
            p
        }
    };
    (USER.to_string(), password)
}

/// Binds the server's UDP socket at `listen` and spawns it; the bound address.
pub async fn spawn(
    listen: SocketAddr,
    realm: String,
    creds: (String, String),
) -> std::io::Result<SocketAddr> {
    let sock = Arc::new(UdpSocket::bind(listen).await?);
    let local = sock.local_addr()?;
    let mut server = TurnServer::new(TransportType::Udp, local, realm);
    server.add_user(creds.0, creds.1);
    // Nonces stay valid for an hour; a client with a stale one gets 438 and retries.
    server.set_nonce_expiry_duration(Duration::from_secs(3600));
    tokio::spawn(run(sock, server));
    Ok(local)
}

/// A datagram for the server: (local address it arrived on, sender, data).
type Incoming = (SocketAddr, SocketAddr, Vec<u8>);

struct Glue {
    listen: Arc<UdpSocket>,
    relays: HashMap<SocketAddr, (Arc<UdpSocket>, tokio::task::JoinHandle<()>)>,
    tx: mpsc::Sender<Incoming>,
    base: std::time::Instant,
}

impl Glue {
    fn now(&self) -> Instant {
        Instant::from_nanos(i64::try_from(self.base.elapsed().as_nanos()).unwrap_or(i64::MAX))
    }

    fn deadline(&self, t: Instant) -> tokio::time::Instant {
        let d = t.saturating_duration_since(Instant::from_nanos(0));
        tokio::time::Instant::from_std(self.base + d)
    }

    async fn send(&self, t: Transmit<Vec<u8>>) {
        let sock = if t.from == self.listen.local_addr().ok().unwrap_or(t.from) {
            Some(&self.listen)
        } else {
            self.relays.get(&t.from).map(|(s, _)| s)
        };
        if let Some(s) = sock {
            let _ = s.send_to(&t.data, t.to).await;
        }
    }

    /// Binds a relayed socket on the listen IP and forwards what it receives.
    async fn allocate(&mut self) -> Result<SocketAddr, SocketAllocateError> {
        if self.relays.len() >= MAX_ALLOCATIONS {
            return Err(SocketAllocateError::InsufficientCapacity);
        }
        let ip = self
            .listen
            .local_addr()
            .map_err(|_| SocketAllocateError::InsufficientCapacity)?
            .ip();
        let s = UdpSocket::bind(SocketAddr::new(ip, 0))
            .await
            .map_err(|_| SocketAllocateError::InsufficientCapacity)?;
        let s = Arc::new(s);
        let addr = s
            .local_addr()
            .map_err(|_| SocketAllocateError::InsufficientCapacity)?;
        let (rs, tx) = (s.clone(), self.tx.clone());
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, from)) = rs.recv_from(&mut buf).await {
                let d = buf.get(..n).unwrap_or_default().to_vec();
                if tx.send((addr, from, d)).await.is_err() {
                    return;
                }
            }
        });
        self.relays.insert(addr, (s, task));
        Ok(addr)
    }
}

async fn run(listen: Arc<UdpSocket>, mut server: TurnServer) {
    let (tx, mut rx) = mpsc::channel::<Incoming>(1024);
    let Ok(listen_addr) = listen.local_addr() else {
        return;
    };
    let mut glue = Glue {
        listen: listen.clone(),
        relays: HashMap::new(),
        tx,
        base: std::time::Instant::now(),
    };
    tracing::info!(
        "TURN server listening on {listen_addr} (UDP, long-term credentials, at most {MAX_ALLOCATIONS} allocations)"
    );
    let mut buf = vec![0u8; 65536];
    loop {
        // Drive the server until it only waits.
        let wake = loop {
            let now = glue.now();
            match server.poll(now) {
                TurnServerPollRet::WaitUntil(t) => break t,
                TurnServerPollRet::AllocateSocket {
                    transport,
                    listen_addr,
                    client_addr,
                    allocation_transport,
                    family,
                } => {
                    let r = if allocation_transport == TransportType::Udp
                        && family == turn_server_proto::types::AddressFamily::IPV4
                    {
                        glue.allocate().await
                    } else {
                        Err(SocketAllocateError::AddressFamilyNotSupported)
                    };
                    match &r {
                        Ok(a) => {
                            tracing::info!("TURN server: relayed address {a} for {client_addr}")
                        }
                        Err(e) => {
                            tracing::info!("TURN server: no allocation for {client_addr}: {e}")
                        }
                    }
                    server.allocated_socket(
                        transport,
                        listen_addr,
                        client_addr,
                        allocation_transport,
                        family,
                        r,
                        glue.now(),
                    );
                }
                TurnServerPollRet::TcpConnect {
                    relayed_addr,
                    peer_addr,
                    listen_addr,
                    client_addr,
                } => server.tcp_connected(
                    relayed_addr,
                    peer_addr,
                    listen_addr,
                    client_addr,
                    Err(TcpConnectError::Forbidden),
                    glue.now(),
                ),
                TurnServerPollRet::TcpClose { .. } => {}
                TurnServerPollRet::SocketClose { listen_addr, .. } => {
                    if let Some((_, task)) = glue.relays.remove(&listen_addr) {
                        task.abort();
                        tracing::debug!("TURN server: allocation {listen_addr} ended");
                    }
                }
            }
        };
        while let Some(t) = server.poll_transmit(glue.now()) {
            glue.send(t).await;
        }
        let deadline = glue.deadline(wake);
        tokio::select! {
            r = listen.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { continue };
                let d = buf.get(..n).unwrap_or_default();
                let t = Transmit::new(d, TransportType::Udp, from, listen_addr);
                if let Some(out) = server.recv(t, glue.now()) {
                    let out = out.build();
                    glue.send(out).await;
                }
            }
            Some((at, from, d)) = rx.recv() => {
                let t = Transmit::new(d.as_slice(), TransportType::Udp, from, at);
                if let Some(out) = server.recv(t, glue.now()) {
                    let out = out.build();
                    glue.send(out).await;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_depend_on_overlay_root_and_secret() {
        let a = credentials("o.example", b"root", None);
        assert_eq!(a.0, USER);
        assert_eq!(a.1.len(), 32);
        assert_ne!(a, credentials("o.example", b"other root", None));
        assert_ne!(a, credentials("p.example", b"root", None));
        assert_eq!(credentials("o.example", b"root", Some("s")).1, "s");
    }

    /// Our TURN client against our TURN server: 401, authenticated Allocate, permission,
    /// data both ways through the relayed address.
    #[tokio::test]
    async fn our_client_allocates_and_relays_through_our_server() {
        use super::super::turn::{Relay, UdpOut, run as client_run};
        let creds = credentials("t.example", b"root", None);
        let server = spawn(
            "127.0.0.1:0".parse().unwrap(),
            "t.example".into(),
            creds.clone(),
        )
        .await
        .unwrap();
        let relay = Arc::new(Relay::new(server));
        relay.set_credentials(creds);
        let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let out = Arc::new(UdpOut {
            sock: sock.clone(),
            relay: Some(relay.clone()),
        });
        tokio::spawn(client_run(out.clone(), relay.clone()));
        // The overlay's mux in small: answers go to the relay, Data indications to `data`.
        let (data_tx, mut data) = tokio::sync::mpsc::channel(16);
        let (r2, s2) = (relay.clone(), sock.clone());
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((n, _)) = s2.recv_from(&mut buf).await {
                if let Some(d) = r2.handle(&buf[..n]) {
                    let _ = data_tx.send(d).await;
                }
            }
        });
        let relayed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(a) = relay.relayed() {
                    return a;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("allocation");
        assert_eq!(relayed.ip(), server.ip());
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // CreatePermission is a transaction: it returns once the server granted it.
        tokio::time::timeout(
            Duration::from_secs(3),
            relay.permit(&out, vec![peer.local_addr().unwrap().ip()]),
        )
        .await
        .expect("permission answered");
        // Peer -> relayed address -> Data indication to the client.
        peer.send_to(b"ping", relayed).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), data.recv())
            .await
            .expect("data indication")
            .unwrap();
        assert_eq!(got, (peer.local_addr().unwrap(), b"ping".to_vec()));
        // Client -> Send indication -> peer, from the relayed address.
        out.send_via(b"pong", peer.local_addr().unwrap(), true)
            .await
            .unwrap();
        let mut buf = vec![0u8; 2048];
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((&buf[..n], from), (&b"pong"[..], relayed));
        reader.abort();
    }

    #[tokio::test]
    async fn wrong_password_gets_no_allocation() {
        use super::super::turn::{Relay, UdpOut, run as client_run};
        let server = spawn(
            "127.0.0.1:0".parse().unwrap(),
            "t.example".into(),
            credentials("t.example", b"root", None),
        )
        .await
        .unwrap();
        let relay = Arc::new(Relay::new(server));
        relay.set_credentials((USER.into(), "wrong".into()));
        let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let out = Arc::new(UdpOut {
            sock: sock.clone(),
            relay: Some(relay.clone()),
        });
        tokio::spawn(client_run(out, relay.clone()));
        let mut buf = vec![0u8; 2048];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while let Ok(Ok((n, _))) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await
        {
            relay.handle(&buf[..n]);
        }
        assert_eq!(relay.relayed(), None);
    }
}
