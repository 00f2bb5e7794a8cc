//! The TURN-SERVICE usage (RFC 6940 9) in the node: a node that offers a TURN server
//! (`overlay.turn_service.advertise`) stores TurnServer entries at `H(Node-ID || d)` for
//! `d` in 1..=turn density once it has joined, and stores them again before their lifetime
//! ends; a node with DTLS links, no `overlay.turn_server` and a server-reflexive address that
//! differs from its own (it is behind a NAT) finds a server through the overlay (Find for
//! TURN-SERVICE at a random Resource-ID, then Fetch, repeated with other random keys) and
//! allocates its relayed candidate there. The sans-IO logic is [`reload::usage::turn`].
//!
//! A node that is not behind a NAT (`overlay.turn_service.serve`) runs its own TURN server
//! ([`super::turn_server`]) and advertises that one; a configured server
//! (`overlay.turn_service.advertise`, e.g. a coturn beside the node) can be advertised
//! instead.

use super::turn::{self, Relay, UdpOut};
use super::{OverlayHandle, ice};
use reload::codec::Codec;
use reload::node::Outcome;
use reload::storage::{DataValue, KIND_TURN_SERVICE, Selector, ValueKey};
use reload::usage::turn::{Discovery, TurnNext};
use reload::wire::{ResourceId, TurnServer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Lifetime of our TURN-SERVICE entries, in seconds (stored again at half of it).
pub const LIFETIME_S: u32 = 600;
/// Finds per discovery round before pausing (RFC 6940 9: "repeated with some other random
/// Resource-ID").
const MAX_TRIES: u32 = 20;

/// `overlay.turn_service` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnServiceConfig {
    /// The TURN server this node advertises ("IP:port", UDP), if any.
    pub advertise: Option<SocketAddr>,
    /// Find a TURN server through the overlay when this node needs a relay.
    pub discover: bool,
    /// Turn density: advertisements per server (1..=20, NODE-MULTIPLE's maximum).
    pub density: u32,
    /// Whether this node runs its own TURN server ([`super::turn_server`]).
    pub serve: Serve,
    /// UDP port of the node's own TURN server.
    pub port: u16,
    /// Password of the overlay's TURN credentials (None: derived from the overlay).
    pub secret: Option<String>,
}

/// `overlay.turn_service.serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serve {
    /// Serve when ICE shows we are not behind a NAT (and links are DTLS).
    Auto,
    /// Always serve (with DTLS links).
    Yes,
    /// Never serve.
    No,
}

impl Default for TurnServiceConfig {
    fn default() -> Self {
        Self {
            advertise: None,
            discover: true,
            density: 5,
            serve: Serve::Auto,
            port: 3478,
            secret: None,
        }
    }
}

/// What the serving task needs besides the config: links are DTLS, the realm (overlay
/// name) and the overlay's TURN credentials.
#[derive(Debug, Clone)]
pub struct ServeCtx {
    /// The node opens DTLS links (TURN relays only serve those).
    pub dtls: bool,
    /// The TURN realm: the overlay name.
    pub realm: String,
    /// The overlay's TURN credentials ([`super::turn_server::credentials`]).
    pub creds: (String, String),
}

/// Spawns the advertising task (with `advertise`), the serving task (see [`Serve`]) and the
/// discovery task (with `discover`: the overlay socket and a relay that has no server yet).
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    cfg: &TurnServiceConfig,
    handle: OverlayHandle,
    joined: Arc<AtomicBool>,
    discover: Option<(Arc<UdpOut>, Arc<Relay>)>,
    ice: ice::SharedIce,
    host: SocketAddr,
    serve: ServeCtx,
) {
    if let Some(server) = cfg.advertise {
        tokio::spawn(advertise(
            handle.clone(),
            server,
            cfg.density,
            joined.clone(),
        ));
    }
    tokio::spawn(serve_loop(
        cfg.clone(),
        handle.clone(),
        joined.clone(),
        ice.clone(),
        host,
        serve,
    ));
    if let Some((out, relay)) = discover {
        tokio::spawn(discover_loop(handle, out, relay, joined, ice, host));
    }
}

/// Runs the node's TURN server and advertises it, when `serve` says so. With "auto": only
/// with a routable host address, no configured `advertise`, and once peers have answered
/// our Binding requests for a while without showing a server-reflexive address that
/// differs from the host one (we are not behind a NAT; RFC 6940 9).
async fn serve_loop(
    cfg: TurnServiceConfig,
    handle: OverlayHandle,
    joined: Arc<AtomicBool>,
    ice: ice::SharedIce,
    host: SocketAddr,
    ctx: ServeCtx,
) {
    if cfg.serve == Serve::No || !ctx.dtls {
        return;
    }
    if cfg.serve == Serve::Auto {
        if cfg.advertise.is_some() || host.ip().is_loopback() || host.ip().is_unspecified() {
            return;
        }
        loop {
            let (gathered, srflx) = match ice.lock() {
                Ok(s) => (s.gathered_at, s.srflx),
                Err(_) => return,
            };
            if srflx.is_some() {
                return;
            }
            if gathered.is_some_and(|t| t.elapsed() >= Duration::from_secs(2)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let listen = SocketAddr::new(host.ip(), cfg.port);
    match super::turn_server::spawn(listen, ctx.realm, ctx.creds).await {
        Ok(server) => {
            tracing::info!("TURN-SERVICE: this node is not behind a NAT: serving TURN on {server}");
            advertise(handle, server, cfg.density, joined).await;
        }
        Err(e) => tracing::warn!("TURN-SERVICE: cannot run a TURN server on {listen}: {e}"),
    }
}

async fn wait_joined(joined: &AtomicBool) {
    while !joined.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The Store values of our advertisements: (Resource-ID, encoded TurnServer).
pub fn advertisements(
    node: reload::wire::NodeId,
    density: u32,
    server: SocketAddr,
) -> Vec<(ResourceId, Vec<u8>)> {
    reload::usage::turn::advertise(node, density.min(20), server.into())
        .into_iter()
        .filter_map(|(r, v)| v.to_bytes().ok().map(|b| (r, b)))
        .collect()
}

/// Stores our advertisements after joining and again every half lifetime (sooner after a
/// failure).
async fn advertise(
    handle: OverlayHandle,
    server: SocketAddr,
    density: u32,
    joined: Arc<AtomicBool>,
) {
    let mut first = true;
    loop {
        wait_joined(&joined).await;
        let ads = advertisements(handle.node_id, density, server);
        let total = ads.len();
        let mut stored = 0;
        for (resource, value) in ads {
            let v = DataValue {
                exists: true,
                value,
            };
            match handle
                .store(
                    resource,
                    KIND_TURN_SERVICE,
                    vec![(ValueKey::Single, v, LIFETIME_S)],
                )
                .await
            {
                Ok(_) => stored += 1,
                Err(super::HandleError::Stopped) => return,
                Err(e) => tracing::debug!("TURN-SERVICE store failed: {e}"),
            }
        }
        if stored == total {
            if first {
                tracing::info!(
                    "TURN-SERVICE: advertising TURN server {server} in the overlay ({stored} entries, turn density {total})"
                );
                first = false;
            }
            tokio::time::sleep(Duration::from_secs(u64::from(LIFETIME_S) / 2)).await;
        } else {
            tracing::warn!(
                "TURN-SERVICE: stored only {stored} of {total} advertisements of TURN server {server}; trying again in 5 s"
            );
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
}

/// Waits until we know whether we are behind a NAT, then finds a TURN server through the
/// overlay and starts the allocation on it.
async fn discover_loop(
    handle: OverlayHandle,
    out: Arc<UdpOut>,
    relay: Arc<Relay>,
    joined: Arc<AtomicBool>,
    ice: ice::SharedIce,
    host: SocketAddr,
) {
    // RFC 6940 9: a server-reflexive address other than our own means a NAT.
    loop {
        let srflx = ice.lock().ok().and_then(|s| s.srflx);
        match srflx {
            Some(s) if s.ip() == host.ip() => {
                tracing::info!(
                    "TURN-SERVICE: our address {host} is public (peers see {s}): no TURN relay needed"
                );
                return;
            }
            Some(_) => break,
            None => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    let mut pause = Duration::from_secs(1);
    loop {
        wait_joined(&joined).await;
        match find_servers(&handle, MAX_TRIES).await {
            Ok(servers) => {
                if let Some(s) = servers
                    .iter()
                    .filter_map(|s| s.server_address.socket_addr())
                    .find(|a| a.is_ipv4())
                {
                    relay.set_server(s);
                    tracing::info!(
                        "TURN-SERVICE: found TURN server {s} through the overlay; allocating a relayed address there"
                    );
                    turn::run(out, relay).await;
                    return;
                }
                tracing::info!(
                    "TURN-SERVICE: no TURN server found in the overlay yet ({MAX_TRIES} Finds); trying again in {} s",
                    pause.as_secs()
                );
            }
            Err(super::HandleError::Stopped) => return,
            Err(e) => tracing::debug!("TURN-SERVICE discovery: {e}"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(15));
    }
}

/// One discovery round (RFC 6940 9): Find at random Resource-IDs, Fetch what a Find
/// returns; the servers found (empty after `max_tries` fruitless Finds).
pub async fn find_servers(
    handle: &OverlayHandle,
    max_tries: u32,
) -> Result<Vec<TurnServer>, super::HandleError> {
    let (mut d, mut next) = Discovery::start(rand::random(), max_tries);
    loop {
        next = match next {
            TurnNext::Find(r) => {
                let closest = match handle.find(r, vec![KIND_TURN_SERVICE]).await {
                    Ok(Outcome::Found(v)) => v
                        .into_iter()
                        .find(|(k, _)| *k == KIND_TURN_SERVICE)
                        .map(|(_, r)| r)
                        // "It is 0 if no Resource-ID is known" (RFC 6940 7.4.4.2).
                        .filter(|r| r.0.iter().any(|b| *b != 0)),
                    Err(super::HandleError::Stopped) => return Err(super::HandleError::Stopped),
                    _ => None,
                };
                d.found(closest, rand::random())
            }
            TurnNext::Fetch(r) => {
                let servers = match handle
                    .fetch(r, vec![(KIND_TURN_SERVICE, Selector::Single)])
                    .await
                {
                    Ok(Outcome::Fetched(kinds)) => kinds
                        .into_iter()
                        .filter(|k| k.kind == KIND_TURN_SERVICE)
                        .flat_map(|k| k.values)
                        .filter(|v| v.value.exists)
                        .filter_map(|v| TurnServer::from_bytes(&v.value.value).ok())
                        .collect(),
                    Err(super::HandleError::Stopped) => return Err(super::HandleError::Stopped),
                    _ => Vec::new(),
                };
                d.fetched(servers, rand::random())
            }
            TurnNext::Done(v) => return Ok(v),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertisements_decode_and_cap_at_twenty() {
        let a: SocketAddr = "10.77.0.13:3478".parse().unwrap();
        let ads = advertisements(reload::wire::NodeId(9), 3, a);
        assert_eq!(ads.len(), 3);
        let t = TurnServer::from_bytes(&ads[1].1).unwrap();
        assert_eq!(t.iteration, 2);
        assert_eq!(t.server_address.socket_addr(), Some(a));
        assert_eq!(advertisements(reload::wire::NodeId(9), 99, a).len(), 20);
    }
}
