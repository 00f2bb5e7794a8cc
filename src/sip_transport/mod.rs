//! SIP over UDP and TCP with tokio: binds the listeners, frames TCP streams, feeds one
//! sans-IO [`sip::Endpoint`], writes its outputs and drives its timers.
//!
//! Requests the endpoint does not answer itself become [`sip::Event::Request`]s; until
//! the registrar/proxy is plugged in with [`Bound::serve_with`], [`Bound::serve`] answers
//! them with 501.

// `run`/`bind` are wired into main.rs by the lead; until then only the tests use them.
#![allow(dead_code)] // `run` and `serve_with` are for the registrar/proxy wiring

pub mod dtls;
pub mod tls;

use sip::message::{Frame, StreamFramer};
use sip::{ConnId, Endpoint, EndpointConfig, Event, Input, Output, Transport};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// Largest SIP message accepted on a stream (head plus body).
const MAX_STREAM_MESSAGE: usize = 64 * 1024;
/// Largest UDP datagram.
const MAX_DATAGRAM: usize = 65_535;

/// What to listen on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipTransportConfig {
    /// UDP addresses to bind (port 0 picks a free port).
    pub udp: Vec<SocketAddr>,
    /// TCP addresses to listen on.
    pub tcp: Vec<SocketAddr>,
    /// Value of the Server header.
    pub server_name: String,
}

/// Listeners bound and ready to serve.
#[derive(Debug)]
pub struct Bound {
    udp: Vec<Arc<UdpSocket>>,
    tcp: Vec<TcpListener>,
    udp_addrs: Vec<SocketAddr>,
    tcp_addrs: Vec<SocketAddr>,
    endpoint: EndpointConfig,
    // calls: the driver channel exists from bind on, so TLS dialers can be handed out early.
    to_driver: mpsc::Sender<ToDriver>,
    from_tasks: mpsc::Receiver<ToDriver>,
    next_conn: Arc<std::sync::atomic::AtomicU64>,
    tls: Option<tls::TlsSetup>,
    dialer_peers: Option<tls::InterNode>,
}

impl std::fmt::Debug for tls::TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsSetup")
    }
}

/// A message for the SIP application from one of its own tasks (e.g. an overlay lookup
/// that finished), delivered through [`SipApp::on_wake`] on the driver.
pub type Wake = Box<dyn std::any::Any + Send>;

/// Sends [`Wake`]s to the driver. They travel on the same queue as the socket tasks'
/// messages, so a wake-up sent after a connection was opened is handled after the driver
/// learned about that connection.
#[derive(Clone, Debug)]
pub struct WakeSender(mpsc::Sender<ToDriver>);

impl WakeSender {
    /// Delivers `msg` to [`SipApp::on_wake`] (dropped if the driver has stopped).
    pub async fn send(&self, msg: Wake) {
        let _ = self.0.send(ToDriver::Wake(msg)).await;
    }
}

/// Binds every configured listener.
pub async fn bind(cfg: SipTransportConfig) -> io::Result<Bound> {
    let mut udp = Vec::new();
    let mut udp_addrs = Vec::new();
    for a in &cfg.udp {
        let s = UdpSocket::bind(a).await?;
        let local = s.local_addr()?;
        tracing::info!("SIP listening on udp {local}");
        udp_addrs.push(local);
        udp.push(Arc::new(s));
    }
    let mut tcp = Vec::new();
    let mut tcp_addrs = Vec::new();
    for a in &cfg.tcp {
        let l = TcpListener::bind(a).await?;
        let local = l.local_addr()?;
        tracing::info!("SIP listening on tcp {local}");
        tcp_addrs.push(local);
        tcp.push(l);
    }
    let endpoint = EndpointConfig {
        server_name: cfg.server_name,
        seed: random_seed(),
        // What the registrar implements (RFC 5626, RFC 5627, RFC 3327), so that a phone's
        // `Require:` of them is not refused with 420.
        supported: ["outbound", "gruu", "path"].map(String::from).to_vec(),
        ..EndpointConfig::default()
    };
    let (to_driver, from_tasks) = mpsc::channel::<ToDriver>(1024);
    Ok(Bound {
        udp,
        tcp,
        udp_addrs,
        tcp_addrs,
        endpoint,
        to_driver,
        from_tasks,
        next_conn: Arc::new(std::sync::atomic::AtomicU64::new(1)),
        tls: None,
        dialer_peers: None,
    })
}

/// A seed from the std hasher's random keys, which the OS supplies (no extra dependency).
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    h.finish()
}

/// Binds and serves until `shutdown` becomes true.
pub async fn run(cfg: SipTransportConfig, shutdown: watch::Receiver<bool>) -> io::Result<()> {
    bind(cfg).await?.serve(shutdown).await
}

/// Messages from socket tasks to the driver.
pub(crate) enum ToDriver {
    Received {
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
        conn: Option<ConnId>,
        bytes: Vec<u8>,
    },
    Opened {
        id: ConnId,
        remote: SocketAddr,
        writer: mpsc::Sender<Vec<u8>>,
    },
    Closed {
        id: ConnId,
    },
    Wake(Wake),
}

/// The application hook: gets every endpoint event with the endpoint to answer through.
pub trait SipApp: Send {
    /// Handles one event.
    fn on_event(&mut self, endpoint: &mut Endpoint, now: std::time::Instant, event: Event);

    /// When the application's own timers next need [`SipApp::on_timeout`].
    fn poll_timeout(&self) -> Option<std::time::Instant> {
        None
    }

    /// The application's timers are due.
    fn on_timeout(&mut self, _endpoint: &mut Endpoint, _now: std::time::Instant) {}

    /// A message from one of the application's own tasks (see [`Bound::wake_channel`]).
    fn on_wake(&mut self, _endpoint: &mut Endpoint, _now: std::time::Instant, _msg: Wake) {}
}

/// The stand-in application: answers requests with 501 and logs the rest.
struct NoApp;

impl SipApp for NoApp {
    fn on_event(&mut self, endpoint: &mut Endpoint, now: std::time::Instant, event: Event) {
        match event {
            Event::Request { key, request, .. } => {
                tracing::debug!(method = %request.method, "no SIP application yet, answering 501");
                if let Err(e) = endpoint.reply(now, &key, 501, "Not Implemented") {
                    tracing::warn!("could not answer {}: {e}", request.method);
                }
            }
            Event::Dropped { remote, reason } => {
                tracing::debug!("dropped SIP message from {remote}: {reason}");
            }
            other => tracing::debug!(?other, "SIP event ignored"),
        }
    }
}

impl Bound {
    /// The bound UDP addresses (real ports when port 0 was asked for).
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// The bound TCP addresses.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    /// Adds the SIP/TLS listeners (inter-node and phone-facing); returns the dialer for
    /// inter-node connections when there is an inter-node listener.
    pub fn add_tls(&mut self, setup: tls::TlsSetup) -> Option<tls::Dialer> {
        let dialer = setup.internode.as_ref().map(|l| tls::Dialer {
            to_driver: self.to_driver.clone(),
            next_conn: self.next_conn.clone(),
            identity: l.identity.clone(),
            peers: tls::InterNode::default(),
            idle: setup.idle,
        });
        self.tls = Some(setup);
        self.dialer_peers = dialer.as_ref().map(|d| d.peers.clone());
        dialer
    }

    /// A sender whose messages reach [`SipApp::on_wake`] on the driver.
    pub fn wake_channel(&self) -> WakeSender {
        WakeSender(self.to_driver.clone())
    }

    /// Serves with the stand-in application until `shutdown` becomes true.
    pub async fn serve(self, shutdown: watch::Receiver<bool>) -> io::Result<()> {
        self.serve_with(NoApp, shutdown).await
    }

    /// Serves with `app` handling endpoint events until `shutdown` becomes true.
    pub async fn serve_with(
        self,
        mut app: impl SipApp,
        mut shutdown: watch::Receiver<bool>,
    ) -> io::Result<()> {
        let (to_driver, mut from_tasks) = (self.to_driver, self.from_tasks);
        let mut tasks = JoinSet::new();
        let next_conn = self.next_conn;
        if let Some(setup) = self.tls {
            if let Some(l) = setup.internode {
                let peers = self.dialer_peers.clone().unwrap_or_default();
                tasks.spawn(tls::internode_acceptor(
                    l,
                    to_driver.clone(),
                    next_conn.clone(),
                    peers,
                    setup.idle,
                ));
            }
            for (l, cfg) in setup.phones {
                tasks.spawn(tls::phone_acceptor(
                    l,
                    cfg,
                    to_driver.clone(),
                    next_conn.clone(),
                ));
            }
        }
        for sock in &self.udp {
            tasks.spawn(udp_reader(sock.clone(), to_driver.clone()));
        }
        for l in self.tcp {
            tasks.spawn(tcp_acceptor(l, to_driver.clone(), next_conn.clone()));
        }
        let mut endpoint = Endpoint::new(self.endpoint);
        let mut conns: HashMap<ConnId, (SocketAddr, mpsc::Sender<Vec<u8>>)> = HashMap::new();
        let udp = self.udp;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let deadline = match (endpoint.poll_timeout(), app.poll_timeout()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    continue;
                }
                msg = from_tasks.recv() => {
                    let Some(msg) = msg else { break };
                    let now = tokio::time::Instant::now().into_std();
                    match msg {
                        ToDriver::Received { transport, local, remote, conn, bytes } => {
                            endpoint.handle_input(now, Input::Received { transport, local, remote, conn, bytes });
                        }
                        ToDriver::Opened { id, remote, writer } => {
                            conns.insert(id, (remote, writer));
                        }
                        ToDriver::Closed { id } => {
                            conns.remove(&id);
                        }
                        ToDriver::Wake(msg) => app.on_wake(&mut endpoint, now, msg),
                    }
                }
                () = sleep_until(deadline) => {
                    let now = tokio::time::Instant::now().into_std();
                    endpoint.handle_input(now, Input::Timeout);
                    app.on_timeout(&mut endpoint, now);
                }
            }
            let now = tokio::time::Instant::now().into_std();
            while let Some(out) = endpoint.poll_output() {
                match out {
                    Output::Transmit {
                        transport,
                        remote,
                        conn,
                        bytes,
                    } => {
                        send(
                            transport, remote, conn, bytes, &udp, &conns, &mut tasks, &to_driver,
                            &next_conn,
                        )
                        .await;
                    }
                    Output::Event(ev) => app.on_event(&mut endpoint, now, ev),
                }
            }
        }
        tracing::info!("SIP transport stopping");
        tasks.shutdown().await;
        Ok(())
    }
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

#[allow(clippy::too_many_arguments)]
async fn send(
    transport: Transport,
    remote: SocketAddr,
    conn: Option<ConnId>,
    bytes: Vec<u8>,
    udp: &[Arc<UdpSocket>],
    conns: &HashMap<ConnId, (SocketAddr, mpsc::Sender<Vec<u8>>)>,
    tasks: &mut JoinSet<()>,
    to_driver: &mpsc::Sender<ToDriver>,
    next_conn: &Arc<std::sync::atomic::AtomicU64>,
) {
    match transport {
        Transport::Udp => {
            let sock = udp.iter().find(|s| {
                s.local_addr()
                    .is_ok_and(|a| a.is_ipv4() == remote.is_ipv4())
            });
            match sock {
                Some(s) => {
                    if let Err(e) = s.send_to(&bytes, remote).await {
                        tracing::debug!("SIP udp send to {remote} failed: {e}");
                    }
                }
                None => tracing::warn!("no udp socket to reach {remote}"),
            }
        }
        Transport::Tcp => {
            let existing = conn
                .and_then(|c| conns.get(&c))
                .or_else(|| conns.values().find(|(r, _)| *r == remote));
            if let Some((_, w)) = existing {
                // Never let one slow connection stall the driver: drop when its queue is
                // full (the peer is not reading), reconnect only when it is gone.
                match w.try_send(bytes) {
                    Ok(()) => return,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::warn!(
                            "SIP tcp connection to {remote} is not keeping up; dropping a message"
                        );
                        return;
                    }
                    Err(mpsc::error::TrySendError::Closed(b)) => {
                        return connect_and_send(remote, b, tasks, to_driver, next_conn);
                    }
                }
            }
            connect_and_send(remote, bytes, tasks, to_driver, next_conn);
        }
        Transport::Tls => {
            // TLS connections are opened by their acceptors or by the inter-node dialer
            // (after AppAttach); a message for a connection that is gone is dropped, the
            // transaction layer reports the failure.
            let existing = conn
                .and_then(|c| conns.get(&c))
                .or_else(|| conns.values().find(|(r, _)| *r == remote));
            match existing.map(|(_, w)| w.try_send(bytes)) {
                Some(Ok(())) => {}
                Some(Err(mpsc::error::TrySendError::Full(_))) => {
                    tracing::warn!(
                        "SIP tls connection to {remote} is not keeping up; dropping a message"
                    );
                }
                Some(Err(mpsc::error::TrySendError::Closed(_))) | None => {
                    tracing::info!("no SIP tls connection to {remote} any more; message dropped");
                }
            }
        }
    }
}

/// Opens a new TCP connection and sends `bytes` first (RFC 3261 18.2.2: when the
/// connection a request came on is gone, the response goes over a new one).
fn connect_and_send(
    remote: SocketAddr,
    bytes: Vec<u8>,
    tasks: &mut JoinSet<()>,
    to_driver: &mpsc::Sender<ToDriver>,
    next_conn: &Arc<std::sync::atomic::AtomicU64>,
) {
    let id = ConnId(next_conn.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let to_driver = to_driver.clone();
    tasks.spawn(async move {
        match TcpStream::connect(remote).await {
            Ok(stream) => connection(id, stream, to_driver, Some(bytes)).await,
            Err(e) => tracing::debug!("SIP tcp connect to {remote} failed: {e}"),
        }
    });
}

async fn udp_reader(sock: Arc<UdpSocket>, to_driver: mpsc::Sender<ToDriver>) {
    let Ok(local) = sock.local_addr() else { return };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, remote)) => {
                let bytes = buf.get(..n).unwrap_or_default();
                // RFC 5626 4.4.1 STUN keep-alives and stray CRLFs are not SIP messages.
                if bytes.iter().all(|b| *b == b'\r' || *b == b'\n') {
                    continue;
                }
                let msg = ToDriver::Received {
                    transport: Transport::Udp,
                    local,
                    remote,
                    conn: None,
                    bytes: bytes.to_vec(),
                };
                if to_driver.send(msg).await.is_err() {
                    return;
                }
            }
            // ICMP errors surface here on some systems; keep reading.
            Err(e) => tracing::debug!("SIP udp receive error on {local}: {e}"),
        }
    }
}

async fn tcp_acceptor(
    listener: TcpListener,
    to_driver: mpsc::Sender<ToDriver>,
    next_conn: Arc<std::sync::atomic::AtomicU64>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let id = ConnId(next_conn.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
                    conns.spawn(connection(id, stream, to_driver.clone(), None));
                }
                Err(e) => tracing::warn!("SIP tcp accept failed: {e}"),
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Runs one TCP connection: frames what it reads, answers CRLF pings, writes what the
/// driver sends it.
async fn connection(
    id: ConnId,
    stream: TcpStream,
    to_driver: mpsc::Sender<ToDriver>,
    first: Option<Vec<u8>>,
) {
    let (Ok(local), Ok(remote)) = (stream.local_addr(), stream.peer_addr()) else {
        return;
    };
    let (mut rd, mut wr) = stream.into_split();
    let (writer, mut writes) = mpsc::channel::<Vec<u8>>(64);
    let opened = ToDriver::Opened {
        id,
        remote,
        writer: writer.clone(),
    };
    if to_driver.send(opened).await.is_err() {
        return;
    }
    let write_task = async move {
        while let Some(b) = writes.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
    };
    let read_task = async {
        if let Some(b) = first {
            let _ = writer.send(b).await;
        }
        let mut framer = StreamFramer::new(MAX_STREAM_MESSAGE);
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            framer.push(buf.get(..n).unwrap_or_default());
            loop {
                match framer.next_frame() {
                    Ok(Some(Frame::Message(bytes))) => {
                        let msg = ToDriver::Received {
                            transport: Transport::Tcp,
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
                        tracing::info!("closing SIP tcp connection from {remote}: {e}");
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
    let _ = to_driver.send(ToDriver::Closed { id }).await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(10);

    fn options(transport: &str, branch: &str, call_id: &str) -> String {
        format!(
            "OPTIONS sip:127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/{transport} 127.0.0.1:9;branch=z9hG4bK{branch};rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:127.0.0.1>\r\n\
From: <sip:tester@127.0.0.1>;tag=t1\r\n\
Call-ID: {call_id}\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
        )
    }

    async fn start() -> (
        Vec<SocketAddr>,
        Vec<SocketAddr>,
        watch::Sender<bool>,
        tokio::task::JoinHandle<io::Result<()>>,
    ) {
        let cfg = SipTransportConfig {
            udp: vec!["127.0.0.1:0".parse().unwrap()],
            tcp: vec!["127.0.0.1:0".parse().unwrap()],
            server_name: "p2psip-test".into(),
        };
        let bound = bind(cfg).await.unwrap();
        let (u, t) = (bound.udp_addrs().to_vec(), bound.tcp_addrs().to_vec());
        let (tx, rx) = watch::channel(false);
        let h = tokio::spawn(bound.serve(rx));
        (u, t, tx, h)
    }

    async fn udp_exchange(server: SocketAddr, msg: &str) -> String {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        sock.send_to(msg.as_bytes(), server).await.unwrap();
        let mut buf = vec![0u8; 65536];
        let (n, _) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    async fn read_frame(stream: &mut TcpStream, framer: &mut StreamFramer) -> Frame {
        let mut buf = vec![0u8; 4096];
        loop {
            if let Some(f) = framer.next_frame().unwrap() {
                return f;
            }
            let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "connection closed");
            framer.push(&buf[..n]);
        }
    }

    #[tokio::test]
    async fn options_over_udp_and_400() {
        let (udp, _, stop, handle) = start().await;
        let resp = udp_exchange(udp[0], &options("UDP", "u1", "udp1@test")).await;
        assert!(resp.starts_with("SIP/2.0 200 OK\r\n"), "{resp}");
        assert!(resp.contains("\r\nAllow: "));
        assert!(resp.contains("\r\nServer: p2psip-test\r\n"));
        assert!(resp.contains(";rport="));
        let bad = options("UDP", "u2", "udp2@test").replace("CSeq: 1 OPTIONS", "CSeq: one OPTIONS");
        let resp = udp_exchange(udp[0], &bad).await;
        assert!(resp.starts_with("SIP/2.0 400 Bad CSeq\r\n"), "{resp}");
        stop.send(true).unwrap();
        tokio::time::timeout(WAIT, handle)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn options_over_tcp_with_keepalive() {
        let (_, tcp, stop, handle) = start().await;
        let mut s = TcpStream::connect(tcp[0]).await.unwrap();
        let mut framer = StreamFramer::new(65536);
        s.write_all(b"\r\n\r\n").await.unwrap();
        let mut pong = [0u8; 2];
        tokio::time::timeout(WAIT, s.read_exact(&mut pong))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&pong, b"\r\n");
        // Two requests in one segment, answered on the same connection.
        let two = options("TCP", "t1", "tcp1@test") + &options("TCP", "t2", "tcp2@test");
        s.write_all(two.as_bytes()).await.unwrap();
        for _ in 0..2 {
            let Frame::Message(m) = read_frame(&mut s, &mut framer).await else {
                panic!("expected a message")
            };
            let text = String::from_utf8(m).unwrap();
            assert!(text.starts_with("SIP/2.0 200 OK\r\n"), "{text}");
        }
        let bad =
            options("TCP", "t3", "tcp3@test").replace("Max-Forwards: 70", "Max-Forwards: 300");
        s.write_all(bad.as_bytes()).await.unwrap();
        let Frame::Message(m) = read_frame(&mut s, &mut framer).await else {
            panic!("expected a message")
        };
        assert!(m.starts_with(b"SIP/2.0 400 Bad Max-Forwards\r\n"));
        stop.send(true).unwrap();
        tokio::time::timeout(WAIT, handle)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn unhandled_request_gets_501_and_shutdown_flag_already_set() {
        let (udp, _, stop, handle) = start().await;
        let reg = options("UDP", "r1", "reg1@test")
            .replace("OPTIONS sip", "REGISTER sip")
            .replace("1 OPTIONS", "1 REGISTER");
        let resp = udp_exchange(udp[0], &reg).await;
        assert!(resp.starts_with("SIP/2.0 501 "), "{resp}");
        drop(stop);
        tokio::time::timeout(WAIT, handle)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let cfg = SipTransportConfig {
            udp: vec!["127.0.0.1:0".parse().unwrap()],
            tcp: vec![],
            server_name: "x".into(),
        };
        let (_tx, rx) = watch::channel(true);
        tokio::time::timeout(WAIT, run(cfg, rx))
            .await
            .unwrap()
            .unwrap();
    }

    /// An application that, when a REGISTER arrives, answers 200 and sends an OPTIONS
    /// over a new TCP connection to `probe`, reporting the response status it gets.
    struct ProbeApp {
        probe: SocketAddr,
        report: mpsc::UnboundedSender<u16>,
    }

    impl SipApp for ProbeApp {
        fn on_event(&mut self, ep: &mut Endpoint, now: std::time::Instant, event: Event) {
            match event {
                Event::Request { key, .. } => {
                    ep.reply(now, &key, 200, "OK").unwrap();
                    let branch = ep.new_branch();
                    let text = options("TCP", &branch[7..], "probe@test");
                    let sip::message::SipMessage::Request(req) =
                        sip::message::parse_message(text.as_bytes()).unwrap()
                    else {
                        panic!()
                    };
                    let dest = sip::Destination {
                        transport: Transport::Tcp,
                        remote: self.probe,
                        conn: None,
                    };
                    ep.send_request(now, req, dest).unwrap();
                }
                Event::Response { response, .. } => self.report.send(response.status).unwrap(),
                _ => {}
            }
        }
    }

    #[tokio::test]
    async fn app_hook_and_outbound_tcp_client_transaction() {
        let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let probe_addr = probe.local_addr().unwrap();
        let cfg = SipTransportConfig {
            udp: vec!["127.0.0.1:0".parse().unwrap()],
            tcp: vec![],
            server_name: "t".into(),
        };
        let bound = bind(cfg).await.unwrap();
        let udp = bound.udp_addrs()[0];
        let (report, mut reports) = mpsc::unbounded_channel();
        let (stop, rx) = watch::channel(false);
        let handle = tokio::spawn(bound.serve_with(
            ProbeApp {
                probe: probe_addr,
                report,
            },
            rx,
        ));
        let reg = options("UDP", "reg9", "reg9@test")
            .replace("OPTIONS sip", "REGISTER sip")
            .replace("1 OPTIONS", "1 REGISTER");
        let resp = udp_exchange(udp, &reg).await;
        assert!(resp.starts_with("SIP/2.0 200 OK"), "{resp}");
        // The node connects to the probe and sends the OPTIONS; answer it on that stream.
        let (mut conn, _) = tokio::time::timeout(WAIT, probe.accept())
            .await
            .unwrap()
            .unwrap();
        let mut framer = StreamFramer::new(65536);
        let Frame::Message(m) = read_frame(&mut conn, &mut framer).await else {
            panic!("expected a request")
        };
        let sip::message::SipMessage::Request(req) = sip::message::parse_message(&m).unwrap()
        else {
            panic!("expected a request")
        };
        let answer = sip::response::response_to(&req, 200, "OK", Some("p"), None);
        conn.write_all(&answer.to_bytes()).await.unwrap();
        let status = tokio::time::timeout(WAIT, reports.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status, 200);
        stop.send(true).unwrap();
        tokio::time::timeout(WAIT, handle)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}
