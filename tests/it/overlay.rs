//! Five `p2psip` processes on loopback form a CHORD-RELOAD ring over TLS links; values stored
//! at one are fetched at every other; SIGKILL of one loses nothing and the ring repairs.
//! Nodes 2..5 join by enrollment: node 1 holds the overlay CA and serves enrollment embedded;
//! the others are given its address and the enrollment password (docs/SECURITY.md).

use crate::harness::NodeProc;
use crate::harness::{addr_after, enrollment_server, enrollment_yaml};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

/// One HTTP/1.1 request to the admin endpoint; (status code, body).
pub fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(15))).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

fn status(addr: SocketAddr) -> Option<Value> {
    let (c, b) = http(addr, "GET", "/status", b"")?;
    (c == 200).then(|| serde_json::from_str(&b).ok())?
}

/// Polls `f` until it returns `Some`, at most `timeout`.
pub fn wait_for<R>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<R>) -> R {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(r) = f() {
            return r;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100)); // ok: polling interval of a bounded wait
    }
}

/// A node of the test overlay.
pub struct OverlayNode {
    /// The process.
    pub proc: NodeProc,
    /// Overlay TLS address.
    pub overlay: SocketAddr,
    /// Admin HTTP address.
    pub admin: SocketAddr,
    /// User name.
    pub user: String,
    /// Its embedded enrollment server (the first node's).
    pub enroll: Option<SocketAddr>,
}

/// Config text for a loopback lab node: the first (no bootstrap) serves enrollment; a node
/// given `enroll` joins by enrollment there; a node with a bootstrap but no `enroll` creates
/// its own CA (a stranger).
pub fn node_config(
    user: &str,
    bootstrap: Option<SocketAddr>,
    enroll: Option<SocketAddr>,
) -> String {
    node_config_at(user, 0, bootstrap, enroll)
}

/// Config text for a loopback lab node with the overlay on `port` (0 = any).
pub fn node_config_at(
    user: &str,
    port: u16,
    bootstrap: Option<SocketAddr>,
    enroll: Option<SocketAddr>,
) -> String {
    node_config_link(user, port, bootstrap, enroll, "tls")
}

/// Config text for a loopback lab node opening its links with `link` ("tls" or "dtls").
pub fn node_config_link(
    user: &str,
    port: u16,
    bootstrap: Option<SocketAddr>,
    enroll: Option<SocketAddr>,
    link: &str,
) -> String {
    let b = bootstrap
        .map(|a| format!("  bootstrap: [\"{a}\"]\n"))
        .unwrap_or_default();
    let e = match (bootstrap, enroll) {
        (None, _) => enrollment_yaml(None),
        (Some(_), Some(s)) => enrollment_yaml(Some(s)),
        (Some(_), None) => String::new(),
    };
    format!(
        "sip:\n  udp: [\"127.0.0.1:0\"]\n  tcp: [\"127.0.0.1:0\"]\n\
         overlay:\n  instance_name: lab.p2psip\n  node_user: {user}\n  listen: \"127.0.0.1:{port}\"\n  link: {link}\n  discovery: {{enabled: false}}\n{b}{e}\
         admin:\n  listen: \"127.0.0.1:0\"\n  debug: true\n"
    )
}

/// Starts `n` nodes: the first creates the overlay, the others join it.
pub fn start_overlay(n: usize, env: &[(&str, &str)]) -> Vec<OverlayNode> {
    start_overlay_link(n, env, "tls")
}

/// Starts `n` nodes that open their links with `link` ("tls" or "dtls").
pub fn start_overlay_link(n: usize, env: &[(&str, &str)], link: &str) -> Vec<OverlayNode> {
    start_overlay_extra(n, env, link, "")
}

/// As [`start_overlay_link`], with `extra` (indented YAML lines) added to each node's
/// `overlay:` section.
pub fn start_overlay_extra(
    n: usize,
    env: &[(&str, &str)],
    link: &str,
    extra: &str,
) -> Vec<OverlayNode> {
    let mut nodes: Vec<OverlayNode> = Vec::new();
    for i in 1..=n {
        let user = format!("n{i}");
        let dir = tempfile::tempdir().unwrap();
        let boot = nodes.first().map(|f| f.overlay);
        let enroll = nodes.first().and_then(|f| f.enroll);
        std::fs::write(
            dir.path().join("config.yaml"),
            node_config_link(&user, 0, boot, enroll, link).replacen(
                "overlay:\n",
                &format!("overlay:\n{extra}"),
                1,
            ),
        )
        .unwrap();
        let mut p = NodeProc::start_in_env(dir, &[], env);
        let server = boot.is_none().then(|| enrollment_server(&mut p));
        let overlay = addr_after(&p.wait_line("listening on tls ", T), "listening on tls ");
        let admin = addr_after(
            &p.wait_line("admin listening on http ", T),
            "admin listening on http ",
        );
        nodes.push(OverlayNode {
            proc: p,
            overlay,
            admin,
            user,
            enroll: server,
        });
    }
    nodes
}

fn ids(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until every node is joined and each one's first successor is the next Node-ID on
/// the ring of `nodes`.
pub fn wait_ring(nodes: &[&OverlayNode], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let last = std::cell::RefCell::new(Vec::new());
    wait_for(
        "a consistent ring",
        timeout + Duration::from_secs(1),
        || {
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for a consistent ring; last status:\n{}",
                    last.borrow()
                        .iter()
                        .map(|v: &Value| v.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            let st: Vec<Value> = nodes
                .iter()
                .map(|n| status(n.admin))
                .collect::<Option<_>>()?;
            *last.borrow_mut() = st.clone();
            let mut all: Vec<String> = st
                .iter()
                .map(|s| s["node_id"].as_str().unwrap_or_default().to_string())
                .collect();
            all.sort();
            for s in &st {
                if s["joined"] != Value::Bool(true) {
                    return None;
                }
                let me = s["node_id"].as_str()?;
                let i = all.iter().position(|x| x == me)?;
                let next = &all[(i + 1) % all.len()];
                let prev = &all[(i + all.len() - 1) % all.len()];
                if ids(s, "successors").first() != Some(next)
                    || ids(s, "predecessors").first() != Some(prev)
                {
                    return None;
                }
            }
            Some(())
        },
    )
}

pub fn store(n: &OverlayNode, value: &str) {
    wait_for(&format!("store at {}", n.user), T, || {
        let (c, _) = http(n.admin, "POST", "/debug/store", value.as_bytes())?;
        (c == 200).then_some(())
    })
}

/// Each node stores a value under its user; every node fetches every value.
pub fn store_everywhere_fetch_everywhere(nodes: &[OverlayNode]) {
    for n in nodes {
        store(n, &format!("value-of-{}", n.user));
    }
    for a in nodes {
        for b in nodes {
            let got = wait_for(&format!("{} fetching {}", a.user, b.user), T, || {
                fetch(a, &b.user).filter(|v| !v.is_empty())
            });
            assert_eq!(got, vec![format!("value-of-{}", b.user)]);
        }
    }
}

pub fn fetch(n: &OverlayNode, user: &str) -> Option<Vec<String>> {
    let (c, b) = http(n.admin, "GET", &format!("/debug/fetch?user={user}"), b"")?;
    if c != 200 {
        return None;
    }
    let v: Value = serde_json::from_str(&b).ok()?;
    Some(ids(&v, "values"))
}

#[test]
fn five_processes_form_a_ring_store_fetch_and_survive_a_kill() {
    let started = Instant::now();
    let mut nodes = start_overlay(5, &[]);
    let refs: Vec<&OverlayNode> = nodes.iter().collect();
    wait_ring(&refs, Duration::from_secs(30));
    store_everywhere_fetch_everywhere(&nodes);
    // Metrics name the methods seen.
    let (c, m) = http(nodes[0].admin, "GET", "/metrics", b"").unwrap();
    assert_eq!(c, 200);
    assert!(m.contains("method=\"store\"") && m.contains("p2psip_overlay_link_rtt_ms_count"));

    // SIGKILL node 3: the ring repairs and no value is lost.
    let mut killed = nodes.remove(2);
    let _ = killed.proc.child.kill();
    let _ = killed.proc.child.wait();
    let refs: Vec<&OverlayNode> = nodes.iter().collect();
    wait_ring(&refs, Duration::from_secs(30));
    let mut users: Vec<String> = nodes.iter().map(|n| n.user.clone()).collect();
    users.push(killed.user.clone());
    for a in &nodes {
        for u in &users {
            let got = wait_for(
                &format!("{} fetching {u} after the kill", a.user),
                T,
                || fetch(a, u).filter(|v| !v.is_empty()),
            );
            assert_eq!(got, vec![format!("value-of-{u}")]);
        }
    }
    // SIGTERM: graceful Leave, then exit 0.
    let mut last = nodes.pop().unwrap();
    assert_eq!(last.proc.signal_and_wait("TERM", T), Some(0));
    assert!(
        last.proc
            .seen
            .iter()
            .any(|l| l.contains("left the overlay")),
        "{:?}",
        last.proc.seen
    );
    eprintln!("overlay test took {:?}", started.elapsed());
}

/// Four nodes whose links are all DTLS over UDP (DTLS-UDP-SR with simple reliability) form a
/// ring and store and fetch; every link in /status is DTLS.
#[test]
fn dtls_links_form_a_ring_and_store_fetch() {
    let nodes = start_overlay_link(4, &[], "dtls");
    let refs: Vec<&OverlayNode> = nodes.iter().collect();
    wait_ring(&refs, Duration::from_secs(40));
    store_everywhere_fetch_everywhere(&nodes);
    for n in &nodes {
        let st = status(n.admin).unwrap();
        let links = st["links"].as_array().unwrap();
        assert!(!links.is_empty());
        for l in links {
            assert_eq!(l["protocol"], "dtls", "{l}");
        }
    }
}

/// With `overlay.omit_certificates`, nodes leave their certificates out of requests once
/// they stored them in the overlay (RFC 6940 6.3.4, 8). Node 4 forgets every certificate it
/// verified; node 1's next request to it (a ping, without certificate) is held while node 4
/// fetches node 1's certificate from CERTIFICATE_BY_NODE, verifies it against the overlay CA
/// and caches it; then the ping is answered.
#[test]
fn omitted_certificates_are_fetched_from_the_overlay() {
    let nodes = start_overlay_extra(4, &[], "tls", "  omit_certificates: true\n");
    let refs: Vec<&OverlayNode> = nodes.iter().collect();
    wait_ring(&refs, Duration::from_secs(40));
    let stats = |n: &OverlayNode| status(n.admin).map(|s| s["stats"].clone());
    for n in &nodes {
        wait_for(&format!("{} storing its certificate", n.user), T, || {
            (stats(n)?["certificates_published"] == true).then_some(())
        });
    }
    let mut nodes = nodes;
    let (c, _) = http(nodes[3].admin, "POST", "/debug/forget-certificates", b"").unwrap();
    assert_eq!(c, 200);
    let id4 = status(nodes[3].admin).unwrap()["node_id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = std::process::Command::new(crate::harness::bin())
        .args(["diag", "ping", &id4, "--admin", &nodes[0].admin.to_string()])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if !(out.status.success() && text.contains(&id4)) {
        let st = stats(&nodes[3]);
        let lines = nodes[3].proc.drain().join("\n");
        panic!("ping: {text}; node 4: {st:?}\n{lines}");
    }
    let n4 = &nodes[3];
    let st = wait_for("node 4 to fetch a certificate", T, || {
        stats(n4).filter(|s| s["certificate_fetches"].as_u64() > Some(0))
    });
    assert!(st["certificates_cached"].as_u64() > Some(0), "{st}");
    assert_eq!(st["certificate_fetches_failed"], 0, "{st}");
    assert_eq!(st["bad_signature"], 0, "{st}");
    // Store and fetch go on everywhere.
    store_everywhere_fetch_everywhere(&nodes);
}

/// The capture process, stopped even when the test fails.
struct Capture(std::process::Child);

impl std::ops::Deref for Capture {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Capture {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Captures a 4-node overlay with tshark (two nodes open TLS links, two DTLS links),
/// decrypts the TLS and DTLS links with the nodes' key log and checks that Wireshark's RELOAD
/// dissector decodes every message, the DTLS handshakes and STUN decode, and nothing is
/// malformed. Robust under load: waits until dumpcap reports it is capturing, captures with a
/// 64 MiB buffer, polls (bounded) until every method is in the file, and reports dumpcap's
/// drop count with any failure.
/// Skipped, with the reason, when tshark is missing or capture on `lo` is not permitted.
#[test]
fn wireshark_decodes_every_method_without_malformed_packets() {
    use std::process::{Command, Stdio};
    if Command::new("tshark").arg("-v").output().is_err()
        || Command::new("dumpcap").arg("-v").output().is_err()
    {
        eprintln!("SKIP wireshark test: tshark/dumpcap is not installed");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let keys = work.path().join("keys.log");
    let pcap = work.path().join("cap.pcapng");
    // Two DTLS nodes (the third and the fourth), so that ICE checks, consent checks and
    // keepalives run between them on the UDP port.
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let filter = ports
        .iter()
        .map(|p| format!("tcp port {p} or udp port {p}"))
        .collect::<Vec<_>>()
        .join(" or ");
    // dumpcap itself (tshark's capture child): on SIGINT it writes what it has and exits.
    let mut cap = Capture(
        Command::new("dumpcap")
            // A 64 MiB kernel buffer so a loaded machine drops nothing.
            .args(["-i", "lo", "-B", "64", "-f", &filter, "-w"])
            .arg(&pcap)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Wait for "Capturing on" (or a refusal) on tshark's stderr.
    let err = cap.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let deadline = Instant::now() + T;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) if l.contains("Capturing on") => break,
            Ok(l) if l.contains("ermission") || l.contains("don't have") => {
                let _ = cap.kill();
                let _ = cap.wait();
                eprintln!("SKIP wireshark test: capture not permitted: {l}");
                return;
            }
            Ok(_) => {}
            Err(_) => {
                let _ = cap.kill();
                let st = cap.wait();
                eprintln!("SKIP wireshark test: tshark did not start capturing ({st:?})");
                return;
            }
        }
    }
    let keys_s = keys.to_str().unwrap().to_string();
    let env = [("SSLKEYLOGFILE", keys_s.as_str())];
    let mut nodes: Vec<OverlayNode> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let user = format!("w{}", i + 1);
        let dir = tempfile::tempdir().unwrap();
        let boot = nodes.first().map(|f| f.overlay);
        let enroll = nodes.first().and_then(|f| f.enroll);
        let link = if i >= 2 { "dtls" } else { "tls" };
        let cfg = node_config_link(&user, *port, boot, enroll, link);
        std::fs::write(dir.path().join("config.yaml"), cfg).unwrap();
        let mut p = NodeProc::start_in_env(dir, &[], &env);
        let server = boot.is_none().then(|| enrollment_server(&mut p));
        let overlay = addr_after(&p.wait_line("listening on tls ", T), "listening on tls ");
        assert_eq!(overlay.port(), *port);
        let admin = addr_after(
            &p.wait_line("admin listening on http ", T),
            "admin listening on http ",
        );
        nodes.push(OverlayNode {
            proc: p,
            overlay,
            admin,
            user,
            enroll: server,
        });
    }
    let refs: Vec<&OverlayNode> = nodes.iter().collect();
    wait_ring(&refs, Duration::from_secs(60));
    for n in &nodes {
        store(n, &format!("ws-{}", n.user));
    }
    for a in &nodes {
        for b in &nodes {
            wait_for("fetch", T, || fetch(a, &b.user).filter(|v| !v.is_empty()));
        }
    }
    let script = work.path().join("reload-over-tls.lua");
    std::fs::write(
        &script,
        "local t = DissectorTable.get(\"tls.port\")\n\
         local rf = Dissector.get(\"reload-framing\")\n\
         local d = DissectorTable.get(\"dtls.port\")\n\
         for p in string.gmatch(os.getenv(\"RELOAD_TLS_PORTS\") or \"\", \"%d+\") do t:add(tonumber(p), rf); d:add(tonumber(p), rf) end\n",
    )
    .unwrap();
    // `strict`: the capture is complete, so tshark must succeed (while dumpcap still writes,
    // the last packet may be cut short).
    let decode = |display: &str, strict: bool| -> String {
        let mut c = Command::new("tshark");
        c.arg("-X")
            .arg(format!("lua_script:{}", script.display()))
            .arg("-r")
            .arg(&pcap)
            .arg("-o")
            .arg(format!("tls.keylog_file:{}", keys.display()))
            .env(
                "RELOAD_TLS_PORTS",
                ports
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        for p in &ports {
            c.args(["-d", &format!("tcp.port=={p},tls")]);
        }
        c.args(["-Y", display]);
        let out = c.output().unwrap();
        assert!(
            out.status.success() || !strict,
            "tshark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Leave, then stop the capture.
    let mut last = nodes.pop().unwrap();
    assert_eq!(last.proc.signal_and_wait("TERM", T), Some(0));
    drop(nodes);
    // dumpcap hands packets over in blocks: wait (bounded) until the file shows every method,
    // then stop it.
    let methods = [
        "Attach Request",
        "Attach Response",
        "Join Request",
        "Join Response",
        "Update Request",
        "Update Response",
        "Store Request",
        "Store Response",
        "Fetch Request",
        "Fetch Response",
        "Leave Request",
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let all = decode("reload || dtls.handshake", false);
        if methods.iter().all(|m| all.contains(m)) && all.contains("DTLS") {
            break;
        }
        std::thread::sleep(Duration::from_millis(500)); // ok: polling interval of a bounded wait
    }
    let _ = Command::new("kill")
        .args(["-INT", &cap.id().to_string()])
        .status();
    let _ = cap.wait();
    // dumpcap's closing statistics: "Packets received/dropped on interface 'lo': R/D ...".
    let mut dropped = None;
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(2)) {
        if let Some(rest) = l.split("received/dropped on interface").nth(1)
            && let Some(d) = rest
                .split("': ")
                .nth(1)
                .and_then(|x| x.trim().split('/').nth(1))
                .and_then(|x| x.split_whitespace().next())
                .and_then(|x| x.parse::<u64>().ok())
        {
            dropped = Some(d);
        }
    }
    eprintln!("wireshark: dumpcap dropped {dropped:?} packets");

    if let Ok(k) = std::env::var("P2PSIP_KEEP_CAPTURE") {
        let _ = std::fs::copy(&pcap, format!("{k}.pcapng"));
        let _ = std::fs::copy(&keys, format!("{k}.keys"));
    }
    let all = decode("reload", true);
    let malformed = decode("_ws.malformed || _ws.expert.severity == error", true);
    assert!(
        malformed.trim().is_empty(),
        "malformed packets:\n{malformed}\nall:\n{all}"
    );
    for m in methods {
        // A method can only be missing because the capture lost packets; say so.
        assert!(
            all.contains(m),
            "no {m} decoded (dumpcap dropped {dropped:?} packets):\n{all}"
        );
    }
    // The DTLS node's links: the handshake decodes, the key log decrypts the records to
    // RELOAD, and STUN on the same port decodes as STUN.
    let dtls = decode("dtls.handshake.type", true);
    assert!(
        dtls.contains("Client Hello") && dtls.contains("Server Hello"),
        "no DTLS handshake decoded:\n{dtls}"
    );
    let over_dtls = decode("dtls && reload", true);
    assert!(
        over_dtls.contains("Attach") || over_dtls.contains("Update"),
        "no RELOAD message decrypted from the DTLS links:\n{over_dtls}"
    );
    let stun = decode("stun", true);
    assert!(!stun.trim().is_empty(), "no STUN decoded");
    // ICE checks (RFC 8445): USERNAME, PRIORITY, tie-breaker, MESSAGE-INTEGRITY and a
    // FINGERPRINT that Wireshark verifies.
    let checks = decode(
        "stun.att.username && stun.att.hmac && stun.att.priority && stun.att.tie-breaker",
        true,
    );
    assert!(!checks.trim().is_empty(), "no ICE check decoded:\n{stun}");
    let bad_crc = decode("stun.att.crc32.bad || stun.att.crc32.status == 2", true);
    assert!(
        bad_crc.trim().is_empty(),
        "bad STUN FINGERPRINT:\n{bad_crc}"
    );
    eprintln!(
        "wireshark: {} DTLS handshake, {} RELOAD-over-DTLS and {} STUN packets decoded",
        dtls.lines().count(),
        over_dtls.lines().count(),
        stun.lines().count()
    );
    eprintln!(
        "wireshark: {} RELOAD packets decoded, none malformed",
        all.lines().count()
    );
}

/// LAN discovery: two nodes without bootstrap addresses find each other over multicast on
/// loopback (a group and port of their own, so parallel tests never hear each other).
#[test]
fn nodes_without_bootstrap_find_each_other_by_multicast() {
    let port = std::net::UdpSocket::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let group = format!("239.255.{}.{}:{port}", port % 250, (port / 250) % 250 + 1);
    let cfg = |user: &str, enroll: Option<SocketAddr>| {
        let c = match enroll {
            None => node_config(user, None, None),
            // Joins by discovery: no bootstrap, but an enrollment server to enroll with.
            Some(e) => node_config(user, None, None)
                .replace(&enrollment_yaml(None), &enrollment_yaml(Some(e))),
        };
        c.replace(
            "discovery: {enabled: false}",
            &format!(
                "discovery: {{enabled: true, group: \"{group}\", interface: 127.0.0.1, wait_ms: 1500, interval_ms: 200}}"
            ),
        )
    };
    let d1 = tempfile::tempdir().unwrap();
    std::fs::write(d1.path().join("config.yaml"), cfg("m1", None)).unwrap();
    let mut p1 = NodeProc::start_in_env(d1, &[], &[]);
    let e1 = enrollment_server(&mut p1);
    p1.wait_line("starting a new overlay", T);
    let a1 = addr_after(
        &p1.wait_line("admin listening on http ", T),
        "admin listening on http ",
    );
    let d2 = tempfile::tempdir().unwrap();
    std::fs::write(d2.path().join("config.yaml"), cfg("m2", Some(e1))).unwrap();
    let mut p2 = NodeProc::start_in_env(d2, &[], &[]);
    p2.wait_line("discovered overlay node", T);
    p2.wait_line("joining the overlay through", T);
    let a2 = addr_after(
        &p2.wait_line("admin listening on http ", T),
        "admin listening on http ",
    );
    let o = |p: NodeProc, admin| OverlayNode {
        proc: p,
        overlay: admin,
        admin,
        user: String::new(),
        enroll: None,
    };
    let (n1, n2) = (o(p1, a1), o(p2, a2));
    wait_ring(&[&n1, &n2], Duration::from_secs(20));
}

/// A node enrolled with another overlay CA cannot open a link: both sides say why.
#[test]
fn node_from_another_ca_is_refused() {
    let mut nodes = start_overlay(1, &[]);
    let a = nodes.remove(0);
    let dir = tempfile::tempdir().unwrap();
    // Same overlay name, but its own CA (no copy of node 1's).
    std::fs::write(
        dir.path().join("config.yaml"),
        node_config("stranger", Some(a.overlay), None),
    )
    .unwrap();
    let mut b = NodeProc::start_in_env(dir, &[], &[]);
    b.wait_line("TLS handshake failed", T);
    let mut a = a;
    a.proc
        .wait_line("refused an overlay connection from 127.0.0.1", T);
    let st = status(a.admin).unwrap();
    assert!(ids(&st, "successors").is_empty(), "{st}");
}

/// The same over DTLS: a node of another CA is refused by both ends of the association.
#[test]
fn dtls_node_from_another_ca_is_refused() {
    let mut nodes = start_overlay_link(1, &[], "dtls");
    let mut a = nodes.remove(0);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        node_config_link("stranger", 0, Some(a.overlay), None, "dtls"),
    )
    .unwrap();
    let mut b = NodeProc::start_in_env(dir, &[], &[]);
    b.wait_line("peer certificate refused", T);
    a.proc
        .wait_line("refused a DTLS association from 127.0.0.1", T);
    let st = status(a.admin).unwrap();
    assert!(ids(&st, "successors").is_empty(), "{st}");
}
