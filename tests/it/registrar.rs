//! The registrar with real clients: SIPp scenarios from deploy/sipp/ (digest auth, wrong
//! password, unregister, expiry) and baresip over UDP and TCP. Skipped, with a printed
//! reason, when sipp or baresip is not installed.

use crate::harness::NodeProc;
use crate::harness::{addr_after, free_udp_port, have, scenario, wait_child};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// A loopback node with test users; MD5 only because SIPp 3.6 and baresip 1.0 cannot
/// answer SHA-256 challenges.
fn config() -> String {
    "sip:\n  udp: [\"127.0.0.1:0\"]\n  tcp: [\"127.0.0.1:0\"]\n\
     registrar:\n  min_expires: 1\n  digest_algorithms: [MD5]\n\
     users:\n  - {name: \"1001\", password: pw-1001}\n  - {name: \"1002\", password: pw-1002}\n\
     \x20 - {name: \"1003\", password: pw-1003}\n  - {name: \"1004\", password: pw-1004}\n"
        .to_string()
        + crate::harness::LOOPBACK_OVERLAY
}

fn start() -> (NodeProc, SocketAddr, SocketAddr) {
    let mut n = NodeProc::start(&config());
    let udp = addr_after(
        &n.wait_line("SIP listening on udp", T),
        "SIP listening on udp ",
    );
    let tcp = addr_after(
        &n.wait_line("SIP listening on tcp", T),
        "SIP listening on tcp ",
    );
    n.wait_line("node is up", T);
    (n, udp, tcp)
}

/// Runs one SIPp REGISTER call; returns SIPp's exit code (0: the call succeeded).
fn sipp(
    dir: &Path,
    node: SocketAddr,
    scenario_file: &str,
    user: &str,
    pw: &str,
    expires: u32,
) -> i32 {
    sipp_from(free_udp_port(), dir, node, scenario_file, user, pw, expires)
}

/// [`sipp`] from a given local port (the Contact names it).
fn sipp_from(
    port: u16,
    dir: &Path,
    node: SocketAddr,
    scenario_file: &str,
    user: &str,
    pw: &str,
    expires: u32,
) -> i32 {
    let csv = dir.join(format!("users-{user}-{expires}.csv"));
    std::fs::write(
        &csv,
        format!("SEQUENTIAL\n{user};[authentication username={user} password={pw}]\n"),
    )
    .unwrap();
    let mut child = Command::new("sipp")
        .arg(node.to_string())
        .arg("-sf")
        .arg(scenario(scenario_file))
        .arg("-inf")
        .arg(&csv)
        .args(["-set", "expires", &expires.to_string()])
        .args(["-set", "domain", "p2psip.local"])
        .args(["-m", "1", "-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-timeout", "15s", "-nostdin", "-trace_err"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sipp");
    let code = wait_child(&mut child, T).expect("sipp finished in time");
    if code != 0 {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.file_name().to_string_lossy().contains("_errors.log") {
                eprintln!("{}", std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    code
}

#[test]
fn sipp_register_wrong_password_and_unregister() {
    if !have("sipp", "-v") {
        return;
    }
    let (mut n, udp, _) = start();
    let dir = tempfile::tempdir().unwrap();
    let phone = free_udp_port();
    assert_eq!(
        sipp_from(
            phone,
            dir.path(),
            udp,
            "register.xml",
            "1001",
            "pw-1001",
            3600
        ),
        0
    );
    let line = n.wait_line("registered 1001@p2psip.local from udp 127.0.0.1:", T);
    assert!(line.contains(", 1 binding, expires in 3600 s"), "{line}");
    assert!(line.contains("call_id"), "span with the Call-ID: {line}");

    assert_eq!(
        sipp(
            dir.path(),
            udp,
            "register_forbidden.xml",
            "1002",
            "wrong",
            3600
        ),
        0
    );
    let line = n.wait_line("REGISTER for 1002@p2psip.local from udp", T);
    assert!(line.contains("refused with 403"), "{line}");
    // A user that does not exist gets the same 403 after the challenge.
    assert_eq!(
        sipp(
            dir.path(),
            udp,
            "register_forbidden.xml",
            "nobody",
            "x",
            3600
        ),
        0
    );

    // The same phone (same Contact) unregisters.
    assert_eq!(
        sipp_from(phone, dir.path(), udp, "register.xml", "1001", "pw-1001", 0),
        0
    );
    n.wait_line("unregistered 1001@p2psip.local from udp", T);
    n.wait_line("of 1001@p2psip.local removed by the phone", T);
    assert_eq!(n.signal_and_wait("TERM", T), Some(0));
}

#[test]
fn sipp_short_expiry_binding_disappears() {
    if !have("sipp", "-v") {
        return;
    }
    let (mut n, udp, _) = start();
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        sipp(dir.path(), udp, "register.xml", "1002", "pw-1002", 2),
        0
    );
    let line = n.wait_line("registered 1002@p2psip.local from udp", T);
    assert!(line.contains("expires in 2 s"), "{line}");
    n.wait_line("of 1002@p2psip.local expired", Duration::from_secs(10));
    assert_eq!(n.signal_and_wait("TERM", T), Some(0));
}

#[test]
fn users_file_and_sighup() {
    if !have("sipp", "-v") {
        return;
    }
    let (mut n, udp, _) = start();
    let dir = tempfile::tempdir().unwrap();
    // Not a user yet: refused.
    assert_eq!(
        sipp(
            dir.path(),
            udp,
            "register_forbidden.xml",
            "2000",
            "added-pw",
            60
        ),
        0
    );
    let out = Command::new(crate::harness::bin())
        .args(["user", "add", "2000", "--password", "added-pw"])
        .current_dir(n.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(n.path().join("data/users.yaml")).unwrap();
    assert!(
        text.contains("2000") && !text.contains("added-pw"),
        "{text}"
    );
    let list = Command::new(crate::harness::bin())
        .args(["user", "list"])
        .current_dir(n.path())
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("2000@p2psip.local\tusers file"), "{list}");
    assert!(list.contains("1001@p2psip.local\tconfig"), "{list}");
    let _ = Command::new("kill")
        .args(["-HUP", &n.child.id().to_string()])
        .status();
    n.wait_line("SIGHUP: reloaded users, 5 may register", T);
    assert_eq!(
        sipp(dir.path(), udp, "register.xml", "2000", "added-pw", 60),
        0
    );
    n.wait_line("registered 2000@p2psip.local", T);
    assert_eq!(n.signal_and_wait("TERM", T), Some(0));
}

/// Runs baresip with a generated config directory until the node logs the registration.
fn baresip_registers(transport: &str, user: &str) {
    if !have("baresip", "-h") {
        return;
    }
    let (mut n, udp, tcp) = start();
    let node = if transport == "tcp" { tcp } else { udp };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config"),
        "module_path /usr/lib/baresip/modules\nsip_listen 127.0.0.1:0\nmodule_app account.so\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("accounts"),
        format!(
            "<sip:{user}@p2psip.local;transport={transport}>;auth_pass=pw-{user};\
             outbound=\"sip:{node};transport={transport}\";regint=600\n"
        ),
    )
    .unwrap();
    let mut child = Command::new("baresip")
        .arg("-f")
        .arg(dir.path())
        .args(["-n", "127.0.0.1", "-t", "15"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn baresip");
    let line = n.wait_line(
        &format!("registered {user}@p2psip.local from {transport} 127.0.0.1:"),
        T,
    );
    assert!(line.contains("1 binding, expires in 600 s"), "{line}");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(n.signal_and_wait("TERM", T), Some(0));
}

#[test]
fn baresip_registers_over_udp() {
    baresip_registers("udp", "1003");
}

#[test]
fn baresip_registers_over_tcp() {
    baresip_registers("tcp", "1004");
}
