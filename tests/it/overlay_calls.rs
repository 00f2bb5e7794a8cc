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
/// Extra `sip:` keys come in `extra_sip` (each line indented by two spaces).
fn config_with(
    user: &str,
    bootstrap: Option<SocketAddr>,
    enroll: Option<SocketAddr>,
    extra_sip: &str,
) -> String {
    let b = bootstrap
        .map(|a| format!("  bootstrap: [\"{a}\"]\n"))
        .unwrap_or_default()
        + &enrollment_yaml(enroll);
    let mut users = String::new();
    for u in 1000..1005 {
        users.push_str(&format!("  - {{name: \"{u}\", password: pw-{u}}}\n"));
    }
    format!(
        "sip:\n  udp: [\"127.0.0.1:0\"]\n  tcp: [\"127.0.0.1:0\"]\n{extra_sip}\
         registrar:\n  digest_algorithms: [MD5]\n  shared_users_ttl: 1\n\
         users:\n{users}\
         overlay:\n  instance_name: lab.p2psip\n  node_user: {user}\n  listen: \"127.0.0.1:0\"\n  discovery: {{enabled: false}}\n{b}\
         admin:\n  listen: \"127.0.0.1:0\"\n  debug: true\n"
    )
}

/// `n` nodes, the others enrolled at the first one; (node, SIP UDP address) each.
pub(crate) fn start(n: usize) -> Vec<(OverlayNode, SocketAddr)> {
    start_with(n, |_, c| c)
}

/// Like [`start`], with node i's config (i from 1) passed through `edit(i, config)`.
pub(crate) fn start_with(
    n: usize,
    edit: impl Fn(usize, String) -> String,
) -> Vec<(OverlayNode, SocketAddr)> {
    let mut nodes: Vec<(OverlayNode, SocketAddr)> = Vec::new();
    for i in 1..=n {
        let user = format!("n{i}");
        let dir = tempfile::tempdir().unwrap();
        let boot = nodes.first().map(|f| f.0.overlay);
        let enroll = nodes.first().and_then(|f| f.0.enroll);
        std::fs::write(
            dir.path().join("config.yaml"),
            edit(i, config_with(&user, boot, enroll, "")),
        )
        .unwrap();
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

/// Like [`start`], with extra `sip:` keys (each line indented by two spaces) at every node.
fn start_sip(n: usize, extra_sip: &str) -> Vec<(OverlayNode, SocketAddr)> {
    start_with(n, |_, c| {
        c.replacen("sip:\n", &format!("sip:\n{extra_sip}"), 1)
    })
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
    // calls: the phone is callable again: C's INVITE goes to the dead node (its AppAttach
    // times out) and to B, which delivers it without waiting for the dead one.
    let started = Instant::now();
    one_call(
        sipp_dir.path(),
        nodes[1].1,
        nodes[0].1,
        "1002",
        "p2psip.local",
        port,
        "1002",
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

// calls: INVITE across the overlay (Fetch -> AppAttach -> SIP over inter-node TLS)

/// SIPp with `args` against `node`, in `dir`.
fn sipp_run(dir: &Path, node: SocketAddr, file: &str, args: &[&str]) -> std::process::Child {
    Command::new("sipp")
        .arg(node.to_string())
        .arg("-sf")
        .arg(crate::harness::scenario(file))
        .args([
            "-i",
            "127.0.0.1",
            "-nostdin",
            "-trace_err",
            "-timeout",
            "90s",
        ])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sipp")
}

fn sipp_errors(dir: &Path) -> String {
    let mut s = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_name().to_string_lossy().contains("_errors.log") {
            s.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    s
}

fn call_records(n: &OverlayNode) -> Vec<Value> {
    std::fs::read_to_string(n.proc.path().join("data/calls.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// SIPp uac registered (digest) at node A calls SIPp uas registered at node C: 100 calls
/// (INVITE/180/200/ACK/BYE), none may fail.
#[test]
fn sipp_100_calls_across_a_3_node_overlay() {
    if !have_sipp() {
        return;
    }
    let mut nodes = start(3);
    let refs: Vec<&OverlayNode> = nodes.iter().map(|n| &n.0).collect();
    wait_ring(&refs, Duration::from_secs(30));
    let dir = tempfile::tempdir().unwrap();
    let phone = crate::harness::free_udp_port();
    register(dir.path(), nodes[2].1, "1001", 3600, phone);
    nodes[2]
        .0
        .proc
        .wait_line("stored registration of 1001@p2psip.local", T);
    let (a, c) = (&nodes[0], &nodes[2]);
    wait_for("A fetching 1001", T, || {
        fetch(&a.0, "1001@p2psip.local").filter(|v| !v.is_empty())
    });
    let mut uas = sipp_run(
        dir.path(),
        c.1,
        "uas.xml",
        &[
            "-p",
            &phone.to_string(),
            "-set",
            "user",
            "1001",
            "-m",
            "100",
        ],
    );
    let csv = dir.path().join("cred-1000.csv");
    std::fs::write(
        &csv,
        "SEQUENTIAL\n1000;[authentication username=1000 password=pw-1000]\n",
    )
    .unwrap();
    let port = crate::harness::free_udp_port().to_string();
    let mut uac = sipp_run(
        dir.path(),
        a.1,
        "uac.xml",
        &[
            "-inf",
            csv.to_str().unwrap(),
            "-set",
            "callee",
            "1001",
            "-set",
            "domain",
            "p2psip.local",
            "-p",
            &port,
            "-m",
            "100",
            "-r",
            "20",
            "-l",
            "20",
            "-d",
            "100",
        ],
    );
    let uac_code = crate::harness::wait_child(&mut uac, Duration::from_secs(90));
    let uas_code = crate::harness::wait_child(&mut uas, Duration::from_secs(20));
    assert_eq!(
        (uac_code, uas_code),
        (Some(0), Some(0)),
        "{}\nnode A:\n{}",
        sipp_errors(dir.path()),
        nodes[0].0.proc.drain().join("\n")
    );
    let recs = wait_for("100 call records at A", T, || {
        let r = call_records(&a.0);
        (r.len() >= 100).then_some(r)
    });
    assert!(recs.iter().all(|r| r["result"] == "answered"), "{recs:?}");
    // One pooled inter-node link carried them all.
    nodes[0]
        .0
        .proc
        .wait_line("inter-node SIP link to Node-ID", T);
}

/// Inbound TCP to the callee's inter-node listener is impossible (C does not offer it:
/// `sip.internode_tcp: false`): the calls still go through, over SIP/DTLS after ICE on the
/// UDP candidates of C's application socket (docs/CALLS.md "SIP over DTLS"); one pooled
/// DTLS link carries them, and the BYEs too.
#[test]
fn calls_reach_a_node_without_tcp_over_sip_dtls() {
    if !have_sipp() {
        return;
    }
    let mut nodes = start_with(3, |i, c| {
        if i == 3 {
            c.replacen("sip:\n", "sip:\n  internode_tcp: false\n", 1)
        } else {
            c
        }
    });
    let refs: Vec<&OverlayNode> = nodes.iter().map(|n| &n.0).collect();
    wait_ring(&refs, Duration::from_secs(30));
    let dir = tempfile::tempdir().unwrap();
    let phone = crate::harness::free_udp_port();
    register(dir.path(), nodes[2].1, "1001", 3600, phone);
    nodes[2]
        .0
        .proc
        .wait_line("stored registration of 1001@p2psip.local", T);
    let (a, c) = (&nodes[0], &nodes[2]);
    wait_for("A fetching 1001", T, || {
        fetch(&a.0, "1001@p2psip.local").filter(|v| !v.is_empty())
    });
    let calls = "10";
    let mut uas = sipp_run(
        dir.path(),
        c.1,
        "uas.xml",
        &[
            "-p",
            &phone.to_string(),
            "-set",
            "user",
            "1001",
            "-m",
            calls,
        ],
    );
    let csv = dir.path().join("cred-1000.csv");
    std::fs::write(
        &csv,
        "SEQUENTIAL\n1000;[authentication username=1000 password=pw-1000]\n",
    )
    .unwrap();
    let port = crate::harness::free_udp_port().to_string();
    let mut uac = sipp_run(
        dir.path(),
        a.1,
        "uac.xml",
        &[
            "-inf",
            csv.to_str().unwrap(),
            "-set",
            "callee",
            "1001",
            "-set",
            "domain",
            "p2psip.local",
            "-p",
            &port,
            "-m",
            calls,
            "-r",
            "5",
            "-l",
            "5",
            "-d",
            "100",
        ],
    );
    let uac_code = crate::harness::wait_child(&mut uac, Duration::from_secs(90));
    let uas_code = crate::harness::wait_child(&mut uas, Duration::from_secs(20));
    assert_eq!(
        (uac_code, uas_code),
        (Some(0), Some(0)),
        "{}\nnode A:\n{}\nnode C:\n{}",
        sipp_errors(dir.path()),
        nodes[0].0.proc.drain().join("\n"),
        nodes[2].0.proc.drain().join("\n")
    );
    let recs = wait_for("10 call records at A", T, || {
        let r = call_records(&nodes[0].0);
        (r.len() >= 10).then_some(r)
    });
    assert!(recs.iter().all(|r| r["result"] == "answered"), "{recs:?}");
    // The log says which way C was reached; TLS was never tried (no TCP candidate).
    let line = nodes[0].0.proc.wait_line("over SIP/DTLS", T);
    assert!(line.contains("reached node"), "{line}");
    nodes[2]
        .0
        .proc
        .wait_line("inter-node SIP/DTLS link from node", T);
    assert!(
        !nodes[0]
            .0
            .proc
            .drain()
            .iter()
            .any(|l| l.contains("inter-node SIP link to Node-ID")),
        "a TLS link was opened although C offers no TCP candidate"
    );
    // /status lists the SIP/DTLS socket: C's host candidate and, at A, the link to C.
    let c_id = status(nodes[2].0.admin).unwrap()["node_id"]
        .as_str()
        .unwrap()
        .to_string();
    let c_dtls = status(nodes[2].0.admin).unwrap()["sip_dtls"].clone();
    assert!(
        c_dtls["candidates"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "host")),
        "{c_dtls}"
    );
    let a_dtls = status(nodes[0].0.admin).unwrap()["sip_dtls"].clone();
    assert!(
        a_dtls["links"]
            .as_array()
            .is_some_and(|l| l.iter().any(|l| l["peer"] == c_id.as_str())),
        "{a_dtls}"
    );
}

/// Writes the SIPp credentials of `user` into `dir`.
fn cred(dir: &Path, user: &str) -> std::path::PathBuf {
    let csv = dir.join(format!("cred-{user}.csv"));
    std::fs::write(
        &csv,
        format!("SEQUENTIAL\n{user};[authentication username={user} password=pw-{user}]\n"),
    )
    .unwrap();
    csv
}

/// One call from 1000 at `node` to `callee`@`domain` answered by a uas on `phone` as `user`.
fn one_call(
    dir: &Path,
    node: SocketAddr,
    callee_node: SocketAddr,
    callee: &str,
    domain: &str,
    phone: u16,
    user: &str,
) {
    let mut uas = sipp_run(
        dir,
        callee_node,
        "uas.xml",
        &["-p", &phone.to_string(), "-set", "user", user, "-m", "1"],
    );
    let csv = cred(dir, "1000");
    let port = crate::harness::free_udp_port().to_string();
    let mut uac = sipp_run(
        dir,
        node,
        "uac.xml",
        &[
            "-inf",
            csv.to_str().unwrap(),
            "-set",
            "callee",
            callee,
            "-set",
            "domain",
            domain,
            "-p",
            &port,
            "-m",
            "1",
        ],
    );
    let uac_code = crate::harness::wait_child(&mut uac, Duration::from_secs(40));
    let uas_code = crate::harness::wait_child(&mut uas, Duration::from_secs(10));
    assert_eq!(
        (uac_code, uas_code),
        (Some(0), Some(0)),
        "{}",
        sipp_errors(dir)
    );
}

/// Call forwarding chain 1001 -> 1002 -> 1003 (set at different nodes through the admin
/// port, stored as `uri` entries): a call to 1001 from node A reaches 1003's phone at node C.
#[test]
fn forwarding_chain_delivers_to_the_last_aor() {
    if !have_sipp() {
        return;
    }
    let mut nodes = start(3);
    let refs: Vec<&OverlayNode> = nodes.iter().map(|n| &n.0).collect();
    wait_ring(&refs, Duration::from_secs(30));
    let dir = tempfile::tempdir().unwrap();
    let phone = crate::harness::free_udp_port();
    register(dir.path(), nodes[2].1, "1003", 3600, phone);
    let (c, _) = http(
        nodes[1].0.admin,
        "POST",
        "/forward?user=1001&target=1002",
        b"",
    )
    .unwrap();
    assert_eq!(c, 200);
    // The operator's command (the admin endpoint underneath), with a full AOR as target.
    let out = Command::new(crate::harness::bin())
        .args(["forward", "--admin", &nodes[0].0.admin.to_string()])
        .args(["set", "1002", "1003@p2psip.local"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("is forwarded to sip:1003@p2psip.local"));
    nodes[1]
        .0
        .proc
        .wait_line("stored forwarding of 1001@p2psip.local", T);
    nodes[0]
        .0
        .proc
        .wait_line("stored forwarding of 1002@p2psip.local", T);
    nodes[2]
        .0
        .proc
        .wait_line("stored registration of 1003@p2psip.local", T);
    let a = nodes[0].1;
    let c_udp = nodes[2].1;
    one_call(dir.path(), a, c_udp, "1001", "p2psip.local", phone, "1003");
    nodes[0]
        .0
        .proc
        .wait_line("1002@p2psip.local is forwarded to 1003@p2psip.local", T);
    // A loop (1003 -> 1001 closes the circle) is detected, not followed for ever.
    let (c, _) = http(
        nodes[2].0.admin,
        "POST",
        "/forward?user=1003&target=1001",
        b"",
    )
    .unwrap();
    assert_eq!(c, 200);
    nodes[2]
        .0
        .proc
        .wait_line("stored forwarding of 1003@p2psip.local", T);
    let csv = cred(dir.path(), "1000");
    let port = crate::harness::free_udp_port().to_string();
    let mut uac = sipp_run(
        dir.path(),
        a,
        "uac_fail.xml",
        &[
            "-inf",
            csv.to_str().unwrap(),
            "-set",
            "callee",
            "1001",
            "-set",
            "domain",
            "p2psip.local",
            "-p",
            &port,
            "-m",
            "1",
        ],
    );
    assert_eq!(
        crate::harness::wait_child(&mut uac, Duration::from_secs(40)),
        Some(0),
        "{}",
        sipp_errors(dir.path())
    );
    nodes[0].0.proc.wait_line("forwarding loop", T);
}

/// A GRUU naming node C (gr = C's destination list, RFC 7904 6) reaches the device at C,
/// not the same user's device at node B; no Fetch is needed.
#[test]
fn gruu_call_reaches_the_one_device() {
    if !have_sipp() {
        return;
    }
    let nodes = start(3);
    let refs: Vec<&OverlayNode> = nodes.iter().map(|n| &n.0).collect();
    wait_ring(&refs, Duration::from_secs(30));
    let dir = tempfile::tempdir().unwrap();
    // Device 1 at B: registered, but nothing answers on its port.
    let dead_phone = crate::harness::free_udp_port();
    register(dir.path(), nodes[1].1, "1001", 3600, dead_phone);
    let phone = crate::harness::free_udp_port();
    register(dir.path(), nodes[2].1, "1001", 3600, phone);
    let st = status(nodes[2].0.admin).unwrap();
    let c_id = u128::from_str_radix(st["node_id"].as_str().unwrap(), 16).unwrap();
    let gr = reload::wire::sip::gruu_gr_param(&[reload::wire::Destination::Node(
        reload::wire::NodeId(c_id),
    )])
    .unwrap();
    let domain = format!("p2psip.local;gr={gr}");
    one_call(
        dir.path(),
        nodes[0].1,
        nodes[2].1,
        "1001",
        &domain,
        phone,
        "1001",
    );
    // A wrote the answered call; B (the other device's node) never saw the INVITE (it
    // would have written a cancelled call when C's 200 arrived, before the BYE).
    wait_for("A's call record", T, || {
        call_records(&nodes[0].0)
            .iter()
            .any(|r| r["result"] == "answered")
            .then_some(())
    });
    assert!(call_records(&nodes[1].0).is_empty());
}

/// A node that is the edge of neither phone dies (kill -9) during an established call: the
/// call's BYE still works (in-dialog requests go edge to edge over the inter-node link, media
/// phone to phone), and new calls succeed once the ring has repaired.
#[test]
fn call_survives_the_death_of_a_node_that_is_no_phone_edge() {
    if !have_sipp() {
        return;
    }
    let mut nodes = start(3);
    let refs: Vec<&OverlayNode> = nodes.iter().map(|n| &n.0).collect();
    wait_ring(&refs, Duration::from_secs(30));
    let dir = tempfile::tempdir().unwrap();
    let phone = crate::harness::free_udp_port();
    register(dir.path(), nodes[2].1, "1001", 3600, phone);
    nodes[2]
        .0
        .proc
        .wait_line("stored registration of 1001@p2psip.local", T);
    let (a, c) = (nodes[0].1, nodes[2].1);
    let uas_dir = tempfile::tempdir().unwrap();
    let mut uas = sipp_run(
        uas_dir.path(),
        c,
        "uas.xml",
        &[
            "-p",
            &phone.to_string(),
            "-set",
            "user",
            "1001",
            "-m",
            "1",
            "-trace_msg",
        ],
    );
    let csv = cred(dir.path(), "1000");
    let port = crate::harness::free_udp_port().to_string();
    let mut uac = sipp_run(
        dir.path(),
        a,
        "uac.xml",
        &[
            "-inf",
            csv.to_str().unwrap(),
            "-set",
            "callee",
            "1001",
            "-set",
            "domain",
            "p2psip.local",
            "-p",
            &port,
            "-m",
            "1",
            "-d",
            "6000",
        ],
    );
    // The call is established: A forwarded the 200 (the ACK follows it edge to edge).
    nodes[0].0.proc.wait_line("answered", T);
    let mut b = nodes.remove(1);
    let _ = b.0.proc.child.kill();
    let _ = b.0.proc.child.wait();
    let uac_code = crate::harness::wait_child(&mut uac, Duration::from_secs(40));
    let uas_code = crate::harness::wait_child(&mut uas, Duration::from_secs(10));
    assert_eq!(
        (uac_code, uas_code),
        (Some(0), Some(0)),
        "BYE after the kill: {}{}",
        sipp_errors(dir.path()),
        sipp_errors(uas_dir.path())
    );
    let refs: Vec<&OverlayNode> = nodes.iter().map(|n| &n.0).collect();
    wait_ring(&refs, Duration::from_secs(30));
    one_call(dir.path(), a, c, "1001", "p2psip.local", phone, "1001");
}

/// A 3 s, 8 kHz mono, 16-bit PCM WAV of a 440 Hz tone.
fn tone_wav(path: &Path) {
    let rate = 8000u32;
    let samples: Vec<i16> = (0..rate * 3)
        .map(|i| {
            let t = f64::from(i) / f64::from(rate);
            ((t * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16
        })
        .collect();
    let data_len = (samples.len() * 2) as u32;
    let mut w = Vec::new();
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data_len).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&rate.to_le_bytes());
    w.extend_from_slice(&(rate * 2).to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        w.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, w).unwrap();
}

/// dumpcap on `lo` with `filter`; killed on drop.
struct Dumpcap(std::process::Child);

impl Drop for Dumpcap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts dumpcap and waits until it captures; `None` (with the reason printed) when it
/// cannot.
fn dumpcap(filter: &str, pcap: &Path) -> Option<Dumpcap> {
    if Command::new("tshark").arg("-v").output().is_err()
        || Command::new("dumpcap").arg("-v").output().is_err()
    {
        eprintln!("SKIPPED: tshark/dumpcap is not installed");
        return None;
    }
    let mut cap = Dumpcap(
        Command::new("dumpcap")
            .args(["-i", "lo", "-f", filter, "-w"])
            .arg(pcap)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let err = cap.0.stderr.take().unwrap();
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
            Ok(l) if l.contains("Capturing on") => return Some(cap),
            Ok(l) if l.contains("ermission") || l.contains("don't have") => {
                eprintln!("SKIPPED: capture not permitted: {l}");
                return None;
            }
            Ok(_) => {}
            Err(_) => {
                eprintln!("SKIPPED: dumpcap did not start capturing");
                return None;
            }
        }
    }
}

/// Two baresip phones registered at two different nodes (1003 at A over SIP/TLS, 1004 at C
/// over UDP) call each other with a WAV file as audio source. A capture on loopback shows RTP flowing directly
/// between the two phones' media ports, and no media to or from any node.
#[test]
fn baresip_phones_on_two_nodes_send_media_phone_to_phone() {
    if !have_sipp()
        || Command::new("baresip")
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
    {
        eprintln!("SKIPPED: baresip is not installed");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let wav = work.path().join("tone.wav");
    tone_wav(&wav);
    // Media port ranges of the two phones, known before the capture starts.
    let base = |_: ()| loop {
        let p = crate::harness::free_udp_port();
        if p.is_multiple_of(2) && p < 60_000 {
            break p;
        }
    };
    let (r1, r2) = (base(()), base(()));
    if r1.abs_diff(r2) < 20 {
        eprintln!("SKIPPED: could not pick two media port ranges apart");
        return;
    }
    let pcap = work.path().join("media.pcapng");
    let filter = format!(
        "udp portrange {r1}-{} or udp portrange {r2}-{}",
        r1 + 9,
        r2 + 9
    );
    let Some(cap) = dumpcap(&filter, &pcap) else {
        return;
    };
    let mut nodes = start_sip(3, "  tls: [\"127.0.0.1:0\"]\n");
    let a_tls = addr_after(
        &nodes[0].0.proc.wait_line("SIP listening on tls ", T),
        "SIP listening on tls ",
    );
    let refs: Vec<&OverlayNode> = nodes.iter().map(|n| &n.0).collect();
    wait_ring(&refs, Duration::from_secs(30));
    let phone = |user: &str, node: SocketAddr, transport: &str, rtp: u16| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config"),
            format!(
                "module_path /usr/lib/baresip/modules\nsip_listen 127.0.0.1:0\n\
                 module g711.so\nmodule aufile.so\nmodule menu.so\nmodule_app account.so\n\
                 audio_source aufile,{}\naudio_player nil,nil\naudio_alert nil,nil\n\
                 rtp_ports {rtp}-{}\n",
                wav.display(),
                rtp + 9
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("accounts"),
            format!(
                "<sip:{user}@p2psip.local;transport={transport}>;auth_pass=pw-{user};\
                 outbound=\"sip:{node};transport={transport}\";regint=600;answermode=auto\n"
            ),
        )
        .unwrap();
        dir
    };
    let callee_dir = phone("1004", nodes[2].1, "udp", r2);
    let mut callee = Command::new("baresip")
        .arg("-f")
        .arg(callee_dir.path())
        .args(["-n", "127.0.0.1", "-t", "25"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn baresip");
    nodes[2]
        .0
        .proc
        .wait_line("stored registration of 1004@p2psip.local", T);
    let caller_dir = phone("1003", a_tls, "tls", r1);
    let mut caller = Command::new("baresip")
        .arg("-f")
        .arg(caller_dir.path())
        .args(["-n", "127.0.0.1", "-t", "8"])
        .args(["-e", "/dial sip:1004@p2psip.local"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(work.path().join("caller.out")).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn baresip");
    // Bounded generously: baresip's own 8 s timer runs late on a loaded machine.
    let done = crate::harness::wait_child(&mut caller, 3 * T);
    let recs = wait_for("A's call record", T, || {
        let r = call_records(&nodes[0].0);
        (!r.is_empty()).then_some(r)
    });
    let _ = callee.kill();
    let _ = callee.wait();
    assert!(
        done.is_some(),
        "caller baresip did not quit: {}\nnode A:\n{}\nnode C:\n{}",
        std::fs::read_to_string(work.path().join("caller.out")).unwrap_or_default(),
        nodes[0].0.proc.drain().join("\n"),
        nodes[2].0.proc.drain().join("\n")
    );
    assert_eq!(recs[0]["result"], "answered", "{recs:?}");
    nodes[0]
        .0
        .proc
        .wait_line("registered 1003@p2psip.local from tls", T);
    drop(cap);
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args(["-o", "rtp.heuristic_rtp:TRUE", "-Y", "rtp"])
        .args(["-T", "fields", "-e", "udp.srcport", "-e", "udp.dstport"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let pairs: Vec<(u16, u16)> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t').map(|x| x.trim().parse::<u16>());
            Some((f.next()?.ok()?, f.next()?.ok()?))
        })
        .collect();
    let phone1 = r1..r1 + 10;
    let phone2 = r2..r2 + 10;
    let fwd = pairs
        .iter()
        .filter(|(s, d)| phone1.contains(s) && phone2.contains(d))
        .count();
    let back = pairs
        .iter()
        .filter(|(s, d)| phone2.contains(s) && phone1.contains(d))
        .count();
    assert!(
        fwd > 20 && back > 20,
        "RTP 1003->1004 {fwd}, 1004->1003 {back}: {text}"
    );
    eprintln!("RTP phone to phone: {fwd} packets 1003->1004, {back} packets 1004->1003");
    // Every RTP packet is phone to phone: none to or from a node.
    assert_eq!(fwd + back, pairs.len(), "{pairs:?}");
}

/// Shared SIP users (issue 6 item 4): a user added at run time on node A (`p2psip user add`
/// and SIGHUP) registers with SIPp at node B, which fetches its credentials from the overlay;
/// deleted on A (`p2psip user del` and `POST /users/reload`), it stops working at B once B's
/// cached answer is older than the TTL.
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
    // The admin endpoint does what SIGHUP does.
    let (code, body) = http(a.admin, "POST", "/users/reload", b"").unwrap();
    assert_eq!(code, 200, "{body}");
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

/// The inter-node link closes when idle (here after 1 s) in the middle of a call: the BYE
/// finds the callee's node again by the Node-ID in the Record-Route and attaches again.
#[test]
fn bye_attaches_again_after_the_idle_link_closed() {
    if !have_sipp() {
        return;
    }
    let mut nodes = start_sip(3, "  internode_idle_s: 1\n");
    let refs: Vec<&OverlayNode> = nodes.iter().map(|n| &n.0).collect();
    wait_ring(&refs, Duration::from_secs(30));
    let dir = tempfile::tempdir().unwrap();
    let phone = crate::harness::free_udp_port();
    register(dir.path(), nodes[2].1, "1001", 3600, phone);
    nodes[2]
        .0
        .proc
        .wait_line("stored registration of 1001@p2psip.local", T);
    let mut uas = sipp_run(
        dir.path(),
        nodes[2].1,
        "uas.xml",
        &["-p", &phone.to_string(), "-set", "user", "1001", "-m", "1"],
    );
    let csv = cred(dir.path(), "1000");
    let port = crate::harness::free_udp_port().to_string();
    let mut uac = sipp_run(
        dir.path(),
        nodes[0].1,
        "uac.xml",
        &[
            "-inf",
            csv.to_str().unwrap(),
            "-set",
            "callee",
            "1001",
            "-set",
            "domain",
            "p2psip.local",
            "-p",
            &port,
            "-m",
            "1",
            "-d",
            "4000",
        ],
    );
    nodes[0].0.proc.wait_line("answered", T);
    // Either end may notice the idle second first; both log the close.
    nodes[0].0.proc.wait_line(") closed", T);
    let uac_code = crate::harness::wait_child(&mut uac, Duration::from_secs(40));
    let uas_code = crate::harness::wait_child(&mut uas, Duration::from_secs(10));
    assert_eq!(
        (uac_code, uas_code),
        (Some(0), Some(0)),
        "{}",
        sipp_errors(dir.path())
    );
    // The BYE went over a new link.
    nodes[0].0.proc.wait_line("attaching again", T);
}

/// Failures across the overlay: a busy callee at C is passed back to A as 486; an AOR that
/// is nowhere registered answers 480 (one of our users) or 404 (unknown).
#[test]
fn busy_and_unregistered_across_the_overlay() {
    if !have_sipp() {
        return;
    }
    let mut nodes = start(3);
    let refs: Vec<&OverlayNode> = nodes.iter().map(|n| &n.0).collect();
    wait_ring(&refs, Duration::from_secs(30));
    let dir = tempfile::tempdir().unwrap();
    let phone = crate::harness::free_udp_port();
    register(dir.path(), nodes[2].1, "1001", 3600, phone);
    nodes[2]
        .0
        .proc
        .wait_line("stored registration of 1001@p2psip.local", T);
    let mut uas = sipp_run(
        dir.path(),
        nodes[2].1,
        "uas_busy.xml",
        &["-p", &phone.to_string(), "-m", "1"],
    );
    let csv = cred(dir.path(), "1000");
    for callee in ["1001", "1002", "9999"] {
        let port = crate::harness::free_udp_port().to_string();
        let mut uac = sipp_run(
            dir.path(),
            nodes[0].1,
            "uac_fail.xml",
            &[
                "-inf",
                csv.to_str().unwrap(),
                "-set",
                "callee",
                callee,
                "-set",
                "domain",
                "p2psip.local",
                "-p",
                &port,
                "-m",
                "1",
            ],
        );
        assert_eq!(
            crate::harness::wait_child(&mut uac, Duration::from_secs(40)),
            Some(0),
            "{callee}: {}",
            sipp_errors(dir.path())
        );
    }
    assert_eq!(
        crate::harness::wait_child(&mut uas, Duration::from_secs(10)),
        Some(0)
    );
    let recs = wait_for("three call records at A", T, || {
        let r = call_records(&nodes[0].0);
        (r.len() >= 3).then_some(r)
    });
    let st: Vec<_> = recs.iter().map(|r| r["sip_status"].clone()).collect();
    assert_eq!(st, vec![486, 480, 404], "{recs:?}");
}
