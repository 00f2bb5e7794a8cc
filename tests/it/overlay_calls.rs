//! Calls across the overlay (RFC 7904): a phone registered at one node is stored as a
//! SIP-REGISTRATION entry that every other node can fetch, and that survives the death of a
//! replica. Skipped, with a printed reason, when sipp is not installed.

use crate::harness::NodeProc;
use crate::harness::{addr_after, enrollment_server, enrollment_yaml};
use crate::overlay::{OverlayNode, http, wait_for, wait_ring};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

/// A lab node with SIP users 1000..1004 (password pw-<user>, MD5 digest).
fn config(user: &str, bootstrap: Option<SocketAddr>, enroll: Option<SocketAddr>) -> String {
    let b = bootstrap
        .map(|a| format!("  bootstrap: [\"{a}\"]\n"))
        .unwrap_or_default()
        + &enrollment_yaml(enroll);
    let mut users = String::new();
    for u in 1000..1005 {
        users.push_str(&format!("  - {{name: \"{u}\", password: pw-{u}}}\n"));
    }
    format!(
        "sip:\n  udp: [\"127.0.0.1:0\"]\n  tcp: [\"127.0.0.1:0\"]\n\
         registrar:\n  digest_algorithms: [MD5]\n  shared_users_ttl: 1\n\
         users:\n{users}\
         overlay:\n  instance_name: lab.p2psip\n  node_user: {user}\n  listen: \"127.0.0.1:0\"\n  discovery: {{enabled: false}}\n{b}\
         admin:\n  listen: \"127.0.0.1:0\"\n  debug: true\n"
    )
}

/// `n` nodes, the others enrolled at the first one; (node, SIP UDP address) each.
pub(crate) fn start(n: usize) -> Vec<(OverlayNode, SocketAddr)> {
    let mut nodes: Vec<(OverlayNode, SocketAddr)> = Vec::new();
    for i in 1..=n {
        let user = format!("n{i}");
        let dir = tempfile::tempdir().unwrap();
        let boot = nodes.first().map(|f| f.0.overlay);
        let enroll = nodes.first().and_then(|f| f.0.enroll);
        std::fs::write(dir.path().join("config.yaml"), config(&user, boot, enroll)).unwrap();
        let mut p = NodeProc::start_in_env(dir, &[], &[]);
        let server = boot.is_none().then(|| enrollment_server(&mut p));
        let udp = addr_after(
            &p.wait_line("SIP listening on udp ", T),
            "SIP listening on udp ",
        );
        let overlay = addr_after(&p.wait_line("listening on tls ", T), "listening on tls ");
        let admin = addr_after(
            &p.wait_line("admin listening on http ", T),
            "admin listening on http ",
        );
        nodes.push((
            OverlayNode {
                proc: p,
                overlay,
                admin,
                user,
                enroll: server,
            },
            udp,
        ));
    }
    nodes
}

pub(crate) fn have_sipp() -> bool {
    let ok = Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        eprintln!("SKIPPED: `sipp` is not installed (Debian: sip-tester)");
    }
    ok
}

/// Registers `user` at `node` with SIPp (one REGISTER with digest).
pub(crate) fn register(dir: &Path, node: SocketAddr, user: &str, expires: u32, port: u16) {
    let code = sipp_register(dir, node, user, expires, port, "register.xml");
    assert_eq!(code, Some(0), "sipp REGISTER of {user} failed");
}

/// One SIPp REGISTER of `user` (password pw-`user`) with `scenario` of deploy/sipp; its exit
/// code (0: the scenario's expectations held).
fn sipp_register(
    dir: &Path,
    node: SocketAddr,
    user: &str,
    expires: u32,
    port: u16,
    scenario: &str,
) -> Option<i32> {
    let csv = dir.join(format!("cred-{user}.csv"));
    std::fs::write(
        &csv,
        format!("SEQUENTIAL\n{user};[authentication username={user} password=pw-{user}]\n"),
    )
    .unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/sipp")
        .join(scenario);
    let expires = expires.to_string();
    let mut c = Command::new("sipp")
        .arg(node.to_string())
        .arg("-sf")
        .arg(scenario)
        .args([
            "-i",
            "127.0.0.1",
            "-nostdin",
            "-trace_err",
            "-timeout",
            "20s",
        ])
        .args(["-inf", csv.to_str().unwrap()])
        .args([
            "-set",
            "expires",
            &expires,
            "-set",
            "domain",
            "p2psip.local",
        ])
        .args(["-m", "1", "-p", &port.to_string()])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sipp");
    let deadline = Instant::now() + T;
    loop {
        if let Ok(Some(st)) = c.try_wait() {
            break st.code();
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            let _ = c.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20)); // ok: polling interval of a bounded wait
    }
}

pub(crate) fn status(addr: SocketAddr) -> Option<Value> {
    let (c, b) = http(addr, "GET", "/status", b"")?;
    (c == 200).then(|| serde_json::from_str(&b).ok())?
}

/// The values of `aor`'s SIP-REGISTRATION entries, fetched through `n`.
fn fetch(n: &OverlayNode, aor: &str) -> Option<Vec<Value>> {
    let (c, b) = http(n.admin, "GET", &format!("/debug/fetch?user={aor}"), b"")?;
    if c != 200 {
        return None;
    }
    let v: Value = serde_json::from_str(&b).ok()?;
    v["values"].as_array().cloned()
}

#[test]
fn registration_is_stored_and_survives_a_replica_kill() {
    if !have_sipp() {
        return;
    }
    let started = Instant::now();
    let mut nodes = start(3);
    let refs: Vec<&OverlayNode> = nodes.iter().map(|n| &n.0).collect();
    wait_ring(&refs, Duration::from_secs(30));
    let sipp_dir = tempfile::tempdir().unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    register(sipp_dir.path(), nodes[0].1, "1001", 3600, port);

    // Node A reports the registration as stored, with its Resource-ID.
    nodes[0]
        .0
        .proc
        .wait_line("stored registration of 1001@p2psip.local", T);
    let a = &nodes[0].0;
    let reg = wait_for("A's registration stored", T, || {
        let st = status(a.admin)?;
        let r = st["registrations"].as_array()?.first()?.clone();
        (r["stored"] == Value::Bool(true)).then_some(r)
    });
    assert_eq!(reg["aor"], "sip:1001@p2psip.local");
    let rid = hex::encode(reload::wire::ResourceId::hash(b"1001@p2psip.local").0);
    assert_eq!(reg["resource_id"], rid.as_str(), "{reg}");
    assert!(!reg["replicas"].as_array().unwrap().is_empty(), "{reg}");

    // Every node fetches it.
    for (n, _) in &nodes {
        let v = wait_for(&format!("{} fetching 1001", n.user), T, || {
            fetch(n, "1001@p2psip.local").filter(|v| !v.is_empty())
        });
        assert_eq!(v.len(), 1);
    }

    // kill -9 A's successor; the remaining node still fetches the entry.
    let st = status(a.admin).unwrap();
    let succ = st["successors"][0].as_str().unwrap().to_string();
    let idx = (1..3)
        .find(|&i| status(nodes[i].0.admin).unwrap()["node_id"] == succ.as_str())
        .unwrap();
    let mut victim = nodes.remove(idx);
    let _ = victim.0.proc.child.kill();
    let _ = victim.0.proc.child.wait();
    let refs: Vec<&OverlayNode> = nodes.iter().map(|n| &n.0).collect();
    wait_ring(&refs, Duration::from_secs(30));
    let v = wait_for("C fetching 1001 after the kill", T, || {
        fetch(&nodes[1].0, "1001@p2psip.local").filter(|v| !v.is_empty())
    });
    assert_eq!(v.len(), 1);

    // Unregistering (Expires: 0) deletes the entry (exists = false).
    register(sipp_dir.path(), nodes[0].1, "1001", 0, port);
    nodes[0]
        .0
        .proc
        .wait_line("stored removal of the registration of 1001@p2psip.local", T);
    wait_for("C seeing 1001 gone", T, || {
        fetch(&nodes[1].0, "1001@p2psip.local").filter(|v| v.is_empty())
    });
    eprintln!("overlay registration test took {:?}", started.elapsed());
}

/// The phone's own node dies: the phone re-registers at another node (its backup registrar),
/// which stores its own entry; the dead node's entry stays until its lifetime ends.
#[test]
fn phone_reregisters_at_another_node_after_its_node_dies() {
    if !have_sipp() {
        return;
    }
    let mut nodes = start(3);
    let refs: Vec<&OverlayNode> = nodes.iter().map(|n| &n.0).collect();
    wait_ring(&refs, Duration::from_secs(30));
    let sipp_dir = tempfile::tempdir().unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    register(sipp_dir.path(), nodes[0].1, "1002", 600, port);
    nodes[0]
        .0
        .proc
        .wait_line("stored registration of 1002@p2psip.local", T);
    let mut a = nodes.remove(0);
    let _ = a.0.proc.child.kill();
    let _ = a.0.proc.child.wait();
    let refs: Vec<&OverlayNode> = nodes.iter().map(|n| &n.0).collect();
    wait_ring(&refs, Duration::from_secs(30));
    register(sipp_dir.path(), nodes[0].1, "1002", 600, port);
    nodes[0]
        .0
        .proc
        .wait_line("stored registration of 1002@p2psip.local", T);
    // Node C sees both entries: the dead node's (until its lifetime ends) and B's.
    let v = wait_for("C fetching both entries of 1002", T, || {
        fetch(&nodes[1].0, "1002@p2psip.local").filter(|v| v.len() == 2)
    });
    assert_eq!(v.len(), 2);
}

/// Shared SIP users (issue 6 item 4): a user added at run time on node A (`p2psip user add`
/// and SIGHUP) registers with SIPp at node B, which fetches its credentials from the overlay;
/// deleted on A, it stops working at B once B's cached answer is older than the TTL.
#[test]
fn user_added_on_one_node_registers_at_another() {
    if !have_sipp() {
        return;
    }
    let mut nodes = start(2);
    let refs: Vec<&OverlayNode> = nodes.iter().map(|n| &n.0).collect();
    wait_ring(&refs, T);
    let b_udp = nodes[1].1;
    let user_cmd = |dir: &Path, args: &[&str]| {
        let out = Command::new(crate::harness::bin())
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    let a = &mut nodes[0].0;
    user_cmd(
        a.proc.path(),
        &["user", "add", "1010", "--password", "pw-1010"],
    );
    let _ = Command::new("kill")
        .args(["-HUP", &a.proc.child.id().to_string()])
        .status();
    a.proc
        .wait_line("published the credentials of 1010@p2psip.local", T);
    let dir = tempfile::tempdir().unwrap();
    register(
        dir.path(),
        b_udp,
        "1010",
        60,
        crate::harness::free_udp_port(),
    );
    let b = &mut nodes[1].0;
    b.proc
        .wait_line("fetched the credentials of 1010@p2psip.local", T);
    b.proc.wait_line("registered 1010@p2psip.local", T);

    let a = &mut nodes[0].0;
    user_cmd(a.proc.path(), &["user", "del", "1010"]);
    let _ = Command::new("kill")
        .args(["-HUP", &a.proc.child.id().to_string()])
        .status();
    a.proc
        .wait_line("deleted the credentials of 1010@p2psip.local", T);
    // B asks the overlay again once its answer is older than shared_users_ttl (1 s).
    wait_for("B refusing the deleted user", T, || {
        let code = sipp_register(
            dir.path(),
            b_udp,
            "1010",
            60,
            crate::harness::free_udp_port(),
            "register_forbidden.xml",
        );
        (code == Some(0)).then_some(())
    });
    let b = &mut nodes[1].0;
    b.proc.wait_line("no shared user 1010@p2psip.local", T);
}
