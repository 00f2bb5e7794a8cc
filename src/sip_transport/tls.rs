//! SIP over TLS (RFC 3261 26.2, RFC 5630): one stream transport for two kinds of listener.
//!
//! * The **inter-node** listener (RFC 7904 5.1): mutual TLS with the overlay node
//!   certificates. The peer's certificate names its Node-ID; connections are kept in a pool
//!   per Node-ID ([`InterNode`]), reused for later calls and closed after an idle time.
//!   Requests arriving on such a connection come from another node that already
//!   authenticated its caller. [`Dialer`] opens them after AppAttach told where the peer's
//!   listener is; the dialled peer's certificate must carry the Node-ID we attached to.
//! * **Phone-facing** listeners (`sip.tls`): a server certificate (the node's own or a
//!   configured one), no client certificate; phones connect as to any SIP/TLS registrar.
//!
//! Both deliver [`Transport::Tls`] messages to the one endpoint; a TLS connection's writes go
//! through the same connection table as TCP.

use super::{MAX_STREAM_MESSAGE, ToDriver};
use crate::pki::local::Identity;
use reload::wire::NodeId;
use sip::message::{Frame, StreamFramer};
use sip::{ConnId, Transport};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// How long an inter-node connection may stay unused before it is closed.
/// Bound on a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The authenticated inter-node connections: Node-ID by connection and the pooled
/// connection per Node-ID.
#[derive(Clone, Default, Debug)]
pub struct InterNode {
    inner: Arc<Mutex<Peers>>,
}

#[derive(Default, Debug)]
struct Peers {
    by_conn: HashMap<ConnId, (NodeId, SocketAddr)>,
    by_node: HashMap<NodeId, (ConnId, SocketAddr)>,
}

impl InterNode {
    fn lock(&self) -> std::sync::MutexGuard<'_, Peers> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The Node-ID of the peer at the other end of `conn`, when it is an inter-node link.
    pub fn peer_of(&self, conn: ConnId) -> Option<NodeId> {
        self.lock().by_conn.get(&conn).map(|(n, _)| *n)
    }

    /// The pooled connection to `node` and its remote address, if one is open.
    pub fn conn_to(&self, node: NodeId) -> Option<(ConnId, SocketAddr)> {
        self.lock().by_node.get(&node).copied()
    }

    /// How many inter-node connections are open.
    pub fn len(&self) -> usize {
        self.lock().by_conn.len()
    }

    /// Whether no inter-node connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn add(&self, conn: ConnId, node: NodeId, remote: SocketAddr) {
        let mut p = self.lock();
        p.by_conn.insert(conn, (node, remote));
        // The newest connection serves later requests; an older one stays usable for the
        // transactions that run on it until it closes.
        p.by_node.insert(node, (conn, remote));
    }

    pub(super) fn remove(&self, conn: ConnId) {
        let mut p = self.lock();
        if let Some((n, _)) = p.by_conn.remove(&conn)
            && p.by_node.get(&n).is_some_and(|(c, _)| *c == conn)
        {
            p.by_node.remove(&n);
            // Another connection to the same node may remain: it serves from now on.
            let other = p
                .by_conn
                .iter()
                .find(|(_, (m, _))| *m == n)
                .map(|(c, (_, r))| (*c, *r));
            if let Some(o) = other {
                p.by_node.insert(n, o);
            }
        }
    }
}

/// What the TLS listeners need: built by the node from its identity and configuration.
pub struct TlsSetup {
    /// The inter-node listener, if any: bound socket, server and client settings.
    pub internode: Option<InterNodeListener>,
    /// Phone-facing listeners with their server settings.
    pub phones: Vec<(TcpListener, Arc<rustls::ServerConfig>)>,
    /// Idle time after which inter-node connections close.
    pub idle: Duration,
}

/// The inter-node listener and the node identity it authenticates with.
pub struct InterNodeListener {
    /// Bound listener.
    pub listener: TcpListener,
    /// The node's certificate, key and overlay root.
    pub identity: Arc<Identity>,
}

impl InterNodeListener {
    /// Binds `addr` for inter-node SIP over TLS.
    pub async fn bind(addr: SocketAddr, identity: Arc<Identity>) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self { listener, identity })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Server settings for phone-facing SIP over TLS: the configured certificate chain and key
/// (PEM files), or the node's own certificate when none is configured. No client
/// certificate is asked for.
pub fn phone_server_config(
    identity: &Identity,
    cert_key: Option<(&std::path::Path, &std::path::Path)>,
) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let (chain, key) = match cert_key {
        Some((c, k)) => {
            let chain = CertificateDer::pem_file_iter(c)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("certificate {}: {e}", c.display()))?;
            let key =
                PrivateKeyDer::from_pem_file(k).map_err(|e| format!("key {}: {e}", k.display()))?;
            (chain, key)
        }
        None => (
            vec![CertificateDer::from(identity.cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_pkcs8.clone())),
        ),
    };
    rustls::ServerConfig::builder_with_provider(crate::pki::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| e.to_string())
}

/// Opens inter-node connections (after AppAttach) into the transport's connection table.
#[derive(Clone)]
pub struct Dialer {
    pub(super) to_driver: mpsc::Sender<ToDriver>,
    pub(super) next_conn: Arc<AtomicU64>,
    pub(super) identity: Arc<Identity>,
    pub(super) peers: InterNode,
    pub(super) idle: Duration,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dialer")
    }
}

impl Dialer {
    /// The pool of inter-node connections this dialer fills.
    pub fn peers(&self) -> &InterNode {
        &self.peers
    }

    /// Connects to `peer`'s SIP/TLS listener at one of `addrs` (its AppAttach candidates,
    /// tried in order); the server's certificate must carry `peer`. Returns the connection
    /// once the transport knows it.
    pub async fn dial(
        &self,
        peer: NodeId,
        addrs: &[SocketAddr],
    ) -> io::Result<(ConnId, SocketAddr)> {
        let mut last = io::Error::other("no candidate address");
        for addr in addrs {
            match self.dial_one(peer, *addr).await {
                Ok(c) => return Ok(c),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn dial_one(&self, peer: NodeId, addr: SocketAddr) -> io::Result<(ConnId, SocketAddr)> {
        let cfg = crate::pki::tls::client_config(&self.identity, Some(peer))
            .map_err(|e| io::Error::other(e.to_string()))?;
        let connector = TlsConnector::from(Arc::new(cfg));
        let tcp = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr()?;
        let tls = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            connector.connect(crate::pki::tls::link_server_name(), tcp),
        )
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        let ids = crate::pki::tls::peer_node_ids(
            tls.get_ref().1.peer_certificates(),
            &self.identity.overlay,
        );
        if !ids.contains(&peer) {
            return Err(io::Error::other(format!(
                "peer at {addr} is not Node-ID {}",
                hex::encode(peer.to_array())
            )));
        }
        let id = ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed));
        let (ready_tx, ready_rx) = oneshot::channel();
        let link = Link {
            id,
            local,
            remote: addr,
            to_driver: self.to_driver.clone(),
            peer: Some((peer, self.peers.clone())),
            idle: Some(self.idle),
            ready: Some(ready_tx),
        };
        tokio::spawn(link.run(tls));
        ready_rx
            .await
            .map_err(|_| io::Error::other("transport stopped"))?;
        Ok((id, addr))
    }
}

/// Accepts inter-node connections: mutual TLS, the client's Node-ID goes into the pool.
pub(super) async fn internode_acceptor(
    l: InterNodeListener,
    to_driver: mpsc::Sender<ToDriver>,
    next_conn: Arc<AtomicU64>,
    peers: InterNode,
    idle: Duration,
) {
    let cfg = match crate::pki::tls::server_config(&l.identity, None) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            tracing::warn!("inter-node SIP/TLS listener off: {e}");
            return;
        }
    };
    let acceptor = TlsAcceptor::from(cfg);
    let overlay = l.identity.overlay.clone();
    loop {
        let (tcp, remote) = match l.listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("inter-node SIP accept failed: {e}");
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let (to_driver, next_conn, peers, overlay) = (
            to_driver.clone(),
            next_conn.clone(),
            peers.clone(),
            overlay.clone(),
        );
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let Ok(local) = tcp.local_addr() else { return };
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    tracing::info!("inter-node SIP/TLS from {remote} refused: {e}");
                    return;
                }
                Err(_) => {
                    tracing::info!("inter-node SIP/TLS from {remote}: handshake timed out");
                    return;
                }
            };
            let ids = crate::pki::tls::peer_node_ids(tls.get_ref().1.peer_certificates(), &overlay);
            let Some(peer) = ids.first().copied() else {
                tracing::info!("inter-node SIP/TLS from {remote}: certificate names no Node-ID");
                return;
            };
            let id = ConnId(next_conn.fetch_add(1, Ordering::Relaxed));
            let link = Link {
                id,
                local,
                remote,
                to_driver,
                peer: Some((peer, peers)),
                idle: Some(idle),
                ready: None,
            };
            link.run(tls).await;
        });
    }
}

/// Accepts phone connections on a phone-facing SIP/TLS listener.
pub(super) async fn phone_acceptor(
    listener: TcpListener,
    cfg: Arc<rustls::ServerConfig>,
    to_driver: mpsc::Sender<ToDriver>,
    next_conn: Arc<AtomicU64>,
) {
    let acceptor = TlsAcceptor::from(cfg);
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("SIP tls accept failed: {e}");
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let (to_driver, next_conn) = (to_driver.clone(), next_conn.clone());
        tokio::spawn(async move {
            let Ok(local) = tcp.local_addr() else { return };
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    tracing::debug!("SIP tls handshake with {remote} failed: {e}");
                    return;
                }
                Err(_) => return,
            };
            let id = ConnId(next_conn.fetch_add(1, Ordering::Relaxed));
            let link = Link {
                id,
                local,
                remote,
                to_driver,
                peer: None,
                idle: None,
                ready: None,
            };
            link.run(tls).await;
        });
    }
}

/// One TLS connection carrying SIP.
struct Link {
    id: ConnId,
    local: SocketAddr,
    remote: SocketAddr,
    to_driver: mpsc::Sender<ToDriver>,
    peer: Option<(NodeId, InterNode)>,
    idle: Option<Duration>,
    ready: Option<oneshot::Sender<()>>,
}

fn millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Link {
    /// Frames what it reads, answers CRLF pings, writes what the driver sends; closes after
    /// `idle` without traffic in either direction.
    async fn run<S: AsyncRead + AsyncWrite + Send + 'static>(self, stream: S) {
        let Link {
            id,
            local,
            remote,
            to_driver,
            peer,
            idle,
            ready,
        } = self;
        let (mut rd, mut wr) = tokio::io::split(stream);
        let (writer, mut writes) = mpsc::channel::<Vec<u8>>(256);
        let opened = ToDriver::Opened {
            id,
            remote,
            writer: writer.clone(),
        };
        if to_driver.send(opened).await.is_err() {
            return;
        }
        if let Some((node, peers)) = &peer {
            peers.add(id, *node, remote);
            tracing::info!(
                "inter-node SIP link to Node-ID {} ({remote}) is up",
                hex::encode(node.to_array())
            );
        }
        if let Some(r) = ready {
            let _ = r.send(());
        }
        let last = Arc::new(AtomicU64::new(millis()));
        let last_w = last.clone();
        let write_task = async move {
            while let Some(b) = writes.recv().await {
                last_w.store(millis(), Ordering::Relaxed);
                if wr.write_all(&b).await.is_err() || wr.flush().await.is_err() {
                    break;
                }
            }
        };
        let read_task = async {
            let mut framer = StreamFramer::new(MAX_STREAM_MESSAGE);
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match idle {
                    Some(d) => match tokio::time::timeout(d, rd.read(&mut buf)).await {
                        Ok(Ok(0) | Err(_)) => return,
                        Ok(Ok(n)) => n,
                        Err(_) => {
                            let quiet = millis().saturating_sub(last.load(Ordering::Relaxed));
                            if u128::from(quiet) >= d.as_millis() {
                                tracing::info!(
                                    "closing inter-node SIP link to {remote}: idle for {} s",
                                    d.as_secs()
                                );
                                return;
                            }
                            continue;
                        }
                    },
                    None => match rd.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    },
                };
                last.store(millis(), Ordering::Relaxed);
                framer.push(buf.get(..n).unwrap_or_default());
                loop {
                    match framer.next_frame() {
                        Ok(Some(Frame::Message(bytes))) => {
                            let msg = ToDriver::Received {
                                transport: Transport::Tls,
                                local,
                                remote,
                                conn: Some(id),
                                bytes,
                            };
                            if to_driver.send(msg).await.is_err() {
                                return;
                            }
                        }
                        Ok(Some(Frame::Ping)) => {
                            let _ = writer.send(b"\r\n".to_vec()).await;
                        }
                        Ok(Some(Frame::Pong)) => {}
                        Ok(None) => break,
                        Err(e) => {
                            tracing::info!("closing SIP tls connection from {remote}: {e}");
                            return;
                        }
                    }
                }
            }
        };
        tokio::select! {
            () = read_task => {}
            () = write_task => {}
        }
        if let Some((node, peers)) = &peer {
            peers.remove(id);
            tracing::info!(
                "inter-node SIP link to Node-ID {} ({remote}) closed",
                hex::encode(node.to_array())
            );
        }
        let _ = to_driver.send(ToDriver::Closed { id }).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pki::ca::Ca;
    use crate::sip_transport::{SipApp, SipTransportConfig, bind};
    use sip::{Endpoint, Event};
    use tokio::sync::watch;

    const WAIT: Duration = Duration::from_secs(10);

    fn node(ca: &Ca, user: &str, now: i64) -> Arc<Identity> {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let ids = ca.node_ids_for(user, 1).unwrap();
        let der = ca.sign_node_cert(&kp, user, &ids, now, 30).unwrap();
        Arc::new(
            Identity::from_parts(
                kp.serialized_der().to_vec(),
                der,
                ca.cert_der().to_vec(),
                ca.overlay(),
                now,
            )
            .unwrap(),
        )
    }

    /// Answers every request 200 and reports whether it came over an inter-node link.
    struct Echo {
        report: mpsc::UnboundedSender<(String, Option<NodeId>)>,
        peers: InterNode,
    }

    impl SipApp for Echo {
        fn on_event(&mut self, ep: &mut Endpoint, now: std::time::Instant, event: Event) {
            if let Event::Request {
                key,
                request,
                source,
            } = event
            {
                let _ = ep.reply(now, &key, 200, "OK");
                let peer = source.conn.and_then(|c| self.peers.peer_of(c));
                let _ = self.report.send((request.method.to_string(), peer));
            }
        }
    }

    struct Started {
        dialer: Dialer,
        internode: SocketAddr,
        reports: mpsc::UnboundedReceiver<(String, Option<NodeId>)>,
        _stop: watch::Sender<bool>,
    }

    async fn start(id: Arc<Identity>, idle: Duration) -> Started {
        let mut bound = bind(SipTransportConfig {
            udp: vec!["127.0.0.1:0".parse().unwrap()],
            tcp: vec![],
            server_name: "t".into(),
        })
        .await
        .unwrap();
        let l = InterNodeListener::bind("127.0.0.1:0".parse().unwrap(), id)
            .await
            .unwrap();
        let internode = l.local_addr().unwrap();
        let dialer = bound
            .add_tls(TlsSetup {
                internode: Some(l),
                phones: Vec::new(),
                idle,
            })
            .unwrap();
        let (report, reports) = mpsc::unbounded_channel();
        let (stop, rx) = watch::channel(false);
        let app = Echo {
            report,
            peers: dialer.peers().clone(),
        };
        tokio::spawn(bound.serve_with(app, rx));
        Started {
            dialer,
            internode,
            reports,
            _stop: stop,
        }
    }

    #[tokio::test]
    async fn internode_link_is_mutual_pooled_checked_and_closed_when_idle() {
        let d = tempfile::tempdir().unwrap();
        let now = crate::pki::now_unix();
        let ca = Ca::init(d.path(), "tls.test", None, &[], now - 86_400).unwrap();
        let (ia, ib) = (node(&ca, "a", now), node(&ca, "b", now));
        let a = start(ia.clone(), Duration::from_millis(300)).await;
        let mut b = start(ib.clone(), Duration::from_secs(300)).await;
        // The wrong Node-ID: refused.
        let wrong = a.dialer.dial(ia.node_id, &[b.internode]).await;
        assert!(wrong.is_err());
        // The right one: pooled on both sides, under the peer's Node-ID.
        let (conn, remote) = a.dialer.dial(ib.node_id, &[b.internode]).await.unwrap();
        assert_eq!(remote, b.internode);
        assert_eq!(a.dialer.peers().conn_to(ib.node_id), Some((conn, remote)));
        // A request over a mutual TLS connection arrives at b marked with the client's
        // Node-ID, and is answered on that connection.
        let cfg = crate::pki::tls::client_config(&ia, Some(ib.node_id)).unwrap();
        let tcp = TcpStream::connect(b.internode).await.unwrap();
        let mut tls = TlsConnector::from(Arc::new(cfg))
            .connect(crate::pki::tls::link_server_name(), tcp)
            .await
            .unwrap();
        let text = "OPTIONS sip:b@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:9;branch=z9hG4bKtls1\r\n\
Max-Forwards: 70\r\nTo: <sip:b@127.0.0.1>\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nCall-ID: tls1@test\r\n\
CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        tls.write_all(text.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(WAIT, tls.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(buf[..n].starts_with(b"SIP/2.0 200 OK"));
        let (method, peer) = tokio::time::timeout(WAIT, b.reports.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((method.as_str(), peer), ("OPTIONS", Some(ia.node_id)));
        drop(tls);
        // b sees the peer in its own pool (accepted side).
        let seen = tokio::time::timeout(WAIT, async {
            loop {
                if b.dialer.peers().conn_to(ia.node_id).is_some() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await; // ok: polling interval of a bounded wait
            }
        })
        .await;
        assert!(seen.is_ok(), "b did not pool a's connection");
        // a's idle timer (300 ms) closes the link; both pools forget it.
        let closed = tokio::time::timeout(WAIT, async {
            loop {
                if a.dialer.peers().conn_to(ib.node_id).is_none()
                    && b.dialer.peers().conn_to(ia.node_id).is_none()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await; // ok: polling interval of a bounded wait
            }
        })
        .await;
        assert!(closed.is_ok(), "idle link not closed");
    }
}
