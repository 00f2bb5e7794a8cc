//! Five `p2psip` processes on loopback form a CHORD-RELOAD ring over TLS links; values stored
//! at one are fetched at every other; SIGKILL of one loses nothing and the ring repairs.
//! Nodes 2..5 share node 1's overlay CA by copying its `data/ca` directory before their first
//! start (they then enroll in-process with it; docs/DEPLOY.md describes the operator path).

use crate::harness::NodeProc;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
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

fn addr_after(line: &str, marker: &str) -> SocketAddr {
    line[line.find(marker).unwrap() + marker.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches(',')
        .parse()
        .unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
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
}

/// Config text for a loopback lab node.
pub fn node_config(user: &str, bootstrap: Option<SocketAddr>) -> String {
    let b = bootstrap
        .map(|a| format!("  bootstrap: [\"{a}\"]\n"))
        .unwrap_or_default();
    format!(
        "sip:\n  udp: [\"127.0.0.1:0\"]\n  tcp: [\"127.0.0.1:0\"]\n\
         overlay:\n  instance_name: lab.p2psip\n  node_user: {user}\n  listen: \"127.0.0.1:0\"\n{b}\
         admin:\n  listen: \"127.0.0.1:0\"\n  debug: true\n"
    )
}

/// Starts `n` nodes: the first creates the overlay, the others join it.
pub fn start_overlay(n: usize, env: &[(&str, &str)]) -> Vec<OverlayNode> {
    let mut nodes: Vec<OverlayNode> = Vec::new();
    for i in 1..=n {
        let user = format!("n{i}");
        let dir = tempfile::tempdir().unwrap();
        let boot = nodes.first().map(|f| f.overlay);
        std::fs::write(dir.path().join("config.yaml"), node_config(&user, boot)).unwrap();
        if let Some(first) = nodes.first() {
            copy_dir(
                &first.proc.path().join("data/ca"),
                &dir.path().join("data/ca"),
            );
        }
        let mut p = NodeProc::start_in_env(dir, &[], env);
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
    wait_for("a consistent ring", timeout, || {
        let st: Vec<Value> = nodes
            .iter()
            .map(|n| status(n.admin))
            .collect::<Option<_>>()?;
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
    })
}

fn store(n: &OverlayNode, value: &str) {
    wait_for(&format!("store at {}", n.user), T, || {
        let (c, _) = http(n.admin, "POST", "/debug/store", value.as_bytes())?;
        (c == 200).then_some(())
    })
}

fn fetch(n: &OverlayNode, user: &str) -> Option<Vec<String>> {
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
    for n in &nodes {
        store(n, &format!("value-of-{}", n.user));
    }
    for a in &nodes {
        for b in &nodes {
            let got = wait_for(&format!("{} fetching {}", a.user, b.user), T, || {
                fetch(a, &b.user).filter(|v| !v.is_empty())
            });
            assert_eq!(got, vec![format!("value-of-{}", b.user)]);
        }
    }
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
