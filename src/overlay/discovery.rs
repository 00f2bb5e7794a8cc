//! LAN discovery over UDP multicast, so office nodes find each other without typed addresses.
//!
//! A node that is in the ring announces itself every few seconds on the multicast group:
//! `p2psip-discovery 1 <overlay> <Node-ID hex> <overlay port>`. A starting node with no
//! bootstrap peer listens for a short while; if it hears a node of its overlay, it joins
//! through it, otherwise it starts a new overlay. Not a RELOAD mechanism (RFC 6940 11.4
//! leaves bootstrap discovery open); nothing here is trusted: the TLS link that follows is
//! authenticated with certificates as always.
//!
//! Limitation: nodes started at the same moment with no bootstrap peer may each start their
//! own overlay; start one first, or give `overlay.bootstrap`.

use reload::wire::NodeId;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::UdpSocket;

/// Discovery settings.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// Multicast group and port.
    pub group: SocketAddrV4,
    /// Interface address to send and join on (0.0.0.0 = the kernel's choice).
    pub interface: Ipv4Addr,
    /// How long a starting node listens for peers, in ms.
    pub wait_ms: u64,
    /// Interval between announcements, in ms.
    pub interval_ms: u64,
}

const MAGIC: &str = "p2psip-discovery 1";

/// A multicast socket bound to the group port (shared with other nodes on the host).
pub fn socket(cfg: &DiscoveryConfig) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, cfg.group.port())).into())?;
    s.join_multicast_v4(cfg.group.ip(), &cfg.interface)?;
    s.set_multicast_if_v4(&cfg.interface)?;
    s.set_multicast_loop_v4(true)?;
    s.set_multicast_ttl_v4(1)?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}

/// Parses an announcement from `from`: (Node-ID, overlay address).
pub fn parse(text: &str, from: SocketAddr, overlay: &str) -> Option<(NodeId, SocketAddr)> {
    let rest = text.trim().strip_prefix(MAGIC)?;
    let mut it = rest.split_whitespace();
    if it.next()? != overlay {
        return None;
    }
    let id = NodeId::from_hex(it.next()?)?;
    let port: u16 = it.next()?.parse().ok()?;
    Some((id, SocketAddr::new(from.ip(), port)))
}

/// The announcement text.
pub fn announcement(overlay: &str, id: NodeId, port: u16) -> String {
    format!("{MAGIC} {overlay} {} {port}\n", hex::encode(id.to_array()))
}

/// Listens for `wait_ms` and returns the overlay addresses of nodes heard (not `me`).
pub async fn listen(
    sock: &UdpSocket,
    cfg: &DiscoveryConfig,
    overlay: &str,
    me: NodeId,
) -> Vec<SocketAddr> {
    let mut found = Vec::new();
    let mut buf = [0u8; 512];
    let _ = tokio::time::timeout(Duration::from_millis(cfg.wait_ms), async {
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                continue;
            };
            let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned();
            if let Some((id, addr)) = parse(&text, from, overlay)
                && id != me
                && !found.contains(&addr)
            {
                tracing::info!(
                    "discovered overlay node {} at {addr}",
                    hex::encode(id.to_array())
                );
                found.push(addr);
                // One live peer is enough; a little more time picks up the others.
                if found.len() >= 3 {
                    break;
                }
            }
        }
    })
    .await;
    found
}

/// Announces us every `interval_ms` while `joined` is set.
pub async fn announce(
    sock: UdpSocket,
    cfg: DiscoveryConfig,
    overlay: String,
    me: NodeId,
    port: u16,
    joined: Arc<AtomicBool>,
) {
    let msg = announcement(&overlay, me, port);
    let mut tick = tokio::time::interval(Duration::from_millis(cfg.interval_ms.max(100)));
    loop {
        tick.tick().await;
        if joined.load(Ordering::Relaxed)
            && let Err(e) = sock.send_to(msg.as_bytes(), cfg.group).await
        {
            tracing::debug!("discovery announcement not sent: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcement_round_trip() {
        let id = NodeId(0x1234);
        let a = announcement("office.example", id, 6084);
        let from: SocketAddr = "192.168.1.7:6085".parse().unwrap();
        assert_eq!(
            parse(&a, from, "office.example"),
            Some((id, "192.168.1.7:6084".parse().unwrap()))
        );
        assert_eq!(parse(&a, from, "other.example"), None);
        assert_eq!(parse("junk", from, "office.example"), None);
    }
}
