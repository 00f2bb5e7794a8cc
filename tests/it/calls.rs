//! The proxy with real clients: SIPp callers (with 407 digest auth) and called phones
//! registered to one node, and two baresip instances calling each other. Skipped, with a
//! printed reason, when sipp or baresip is not installed.
//!
//! A call to an existing user without a registration is answered 480 Temporarily
//! Unavailable (RFC 3261 21.4.18: "not logged in"; what phones show as "unavailable");
//! a call to a user the node does not know gets 404 Not Found.

use crate::harness::NodeProc;
use crate::harness::{addr_after, free_udp_port, have, scenario, wait_child};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

fn config() -> String {
    "sip:\n  udp: [\"127.0.0.1:0\"]\n  tcp: [\"127.0.0.1:0\"]\n\
     registrar:\n  digest_algorithms: [MD5]\n\
     users:\n  - {name: \"1000\", password: pw-1000}\n  - {name: \"1001\", password: pw-1001}\n\
     \x20 - {name: \"1002\", password: pw-1002}\n  - {name: \"1003\", password: pw-1003}\n\
     \x20 - {name: \"1004\", password: pw-1004}\n"
        .to_string()
        + crate::harness::LOOPBACK_OVERLAY
}

fn start() -> (NodeProc, SocketAddr) {
    let (n, udp, _) = start_both();
    (n, udp)
}

fn start_both() -> (NodeProc, SocketAddr, SocketAddr) {
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

fn credentials(dir: &Path, user: &str) -> PathBuf {
    let csv = dir.join(format!("cred-{user}.csv"));
    std::fs::write(
        &csv,
        format!("SEQUENTIAL\n{user};[authentication username={user} password=pw-{user}]\n"),
    )
    .unwrap();
    csv
}

/// Starts SIPp with `args` in `dir`.
fn sipp(dir: &Path, node: SocketAddr, file: &str, args: &[&str]) -> Child {
    Command::new("sipp")
        .arg(node.to_string())
        .arg("-sf")
        .arg(scenario(file))
        .args([
            "-i",
            "127.0.0.1",
            "-nostdin",
            "-trace_err",
            "-timeout",
            "60s",
        ])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sipp")
}

fn errors(dir: &Path) -> String {
    let mut s = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_name().to_string_lossy().contains("_errors.log") {
            s.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    s
}

/// Registers `user` from local port `port` (the Contact names it).
fn register(dir: &Path, node: SocketAddr, user: &str, port: u16) {
    let csv = credentials(dir, user);
    let mut c = sipp(
        dir,
        node,
        "register.xml",
        &[
            "-inf",
            csv.to_str().unwrap(),
            "-set",
            "expires",
            "3600",
            "-set",
            "domain",
            "p2psip.local",
            "-m",
            "1",
            "-p",
            &port.to_string(),
        ],
    );
    assert_eq!(wait_child(&mut c, T), Some(0), "{}", errors(dir));
}

fn caller(dir: &Path, node: SocketAddr, file: &str, callee: &str, extra: &[&str]) -> Child {
    let csv = credentials(dir, "1000");
    let port = free_udp_port().to_string();
    let mut args = vec![
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
    ];
    args.extend_from_slice(extra);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sipp(dir, node, file, &args)
}

/// The call records written so far.
fn records(n: &NodeProc) -> Vec<serde_json::Value> {
    std::fs::read_to_string(n.path().join("data/calls.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits until `pred` holds for the call records.
fn wait_records(
    n: &NodeProc,
    pred: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + T;
    loop {
        let r = records(n);
        if pred(&r) || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(50)); // ok: polling interval of a bounded wait
    }
}

#[test]
fn sipp_100_calls_through_one_node() {
    if !have("sipp", "-v") {
        return;
    }
    let (n, udp) = start();
    let dir = tempfile::tempdir().unwrap();
    let phone = free_udp_port();
    register(dir.path(), udp, "1001", phone);
    let mut uas = sipp(
        dir.path(),
        udp,
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
    let mut uac = caller(
        dir.path(),
        udp,
        "uac.xml",
        "1001",
        &["-m", "100", "-r", "25", "-l", "25", "-d", "100"],
    );
    let uac_code = wait_child(&mut uac, Duration::from_secs(60));
    let uas_code = wait_child(&mut uas, Duration::from_secs(20));
    assert_eq!(
        (uac_code, uas_code),
        (Some(0), Some(0)),
        "{}",
        errors(dir.path())
    );
    let recs = wait_records(&n, |r| r.len() >= 100);
    assert_eq!(recs.len(), 100);
    assert!(
        recs.iter()
            .all(|r| r["result"] == "answered" && r["sip_status"] == 200),
        "{recs:?}"
    );
}

#[test]
fn sipp_busy_is_passed_back() {
    if !have("sipp", "-v") {
        return;
    }
    let (n, udp) = start();
    let dir = tempfile::tempdir().unwrap();
    let phone = free_udp_port();
    register(dir.path(), udp, "1001", phone);
    let mut uas = sipp(
        dir.path(),
        udp,
        "uas_busy.xml",
        &["-p", &phone.to_string(), "-m", "1"],
    );
    let mut uac = caller(dir.path(), udp, "uac_fail.xml", "1001", &["-m", "1"]);
    assert_eq!(wait_child(&mut uac, T), Some(0), "{}", errors(dir.path()));
    assert_eq!(wait_child(&mut uas, T), Some(0), "{}", errors(dir.path()));
    let recs = wait_records(&n, |r| !r.is_empty());
    assert_eq!(recs[0]["sip_status"], 486, "{recs:?}");
    assert_eq!(recs[0]["result"], "busy");
}

#[test]
fn sipp_unregistered_480_and_unknown_404() {
    if !have("sipp", "-v") {
        return;
    }
    let (n, udp) = start();
    let dir = tempfile::tempdir().unwrap();
    let mut uac = caller(dir.path(), udp, "uac_fail.xml", "1002", &["-m", "1"]);
    assert_eq!(wait_child(&mut uac, T), Some(0), "{}", errors(dir.path()));
    let mut uac = caller(dir.path(), udp, "uac_fail.xml", "9999", &["-m", "1"]);
    assert_eq!(wait_child(&mut uac, T), Some(0), "{}", errors(dir.path()));
    let recs = wait_records(&n, |r| r.len() >= 2);
    let st: Vec<_> = recs.iter().map(|r| r["sip_status"].clone()).collect();
    assert_eq!(st, vec![480, 404], "{recs:?}");
    assert_eq!(recs[0]["result"], "not registered");
}

/// Two baresip phones registered to the node; 1003 calls 1004, which answers
/// automatically; both send a 440 Hz tone (ausine, which needs 48 kHz stereo) and play
/// nothing; the caller quits after a few seconds, hanging up.
#[test]
fn baresip_calls_baresip() {
    baresip_call("udp", "udp");
}

/// The same with the callee registered over TCP: the INVITE goes down its registration
/// connection and the proxy record-routes twice (UDP side, TCP side).
#[test]
fn baresip_udp_calls_baresip_tcp() {
    baresip_call("udp", "tcp");
}

fn baresip_call(caller_transport: &str, callee_transport: &str) {
    if !have("baresip", "-h") {
        return;
    }
    let (mut n, udp, tcp) = start_both();
    let phone = |user: &str, transport: &str| {
        let node = if transport == "tcp" { tcp } else { udp };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config"),
            "module_path /usr/lib/baresip/modules\nsip_listen 127.0.0.1:0\n\
             module g711.so\nmodule ausine.so\nmodule menu.so\nmodule_app account.so\n\
             audio_source ausine,440\nausrc_srate 48000\nausrc_channels 2\n\
             audio_player nil,nil\naudio_alert nil,nil\n",
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
    let callee_dir = phone("1004", callee_transport);
    let mut callee = Command::new("baresip")
        .arg("-f")
        .arg(callee_dir.path())
        .args(["-n", "127.0.0.1", "-t", "25"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn baresip");
    n.wait_line("registered 1004@p2psip.local", T);
    let caller_dir = phone("1003", caller_transport);
    let mut caller = Command::new("baresip")
        .arg("-f")
        .arg(caller_dir.path())
        .args(["-n", "127.0.0.1", "-t", "6"])
        .args(["-e", "/dial sip:1004@p2psip.local"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn baresip");
    let done = wait_child(&mut caller, T);
    let recs = wait_records(&n, |r| !r.is_empty());
    let _ = callee.kill();
    let _ = callee.wait();
    assert!(done.is_some(), "caller baresip did not quit");
    assert_eq!(recs.len(), 1, "log:\n{}", n.seen.join("\n"));
    assert_eq!(recs[0]["result"], "answered", "{recs:?}");
    assert_eq!(recs[0]["caller"], "sip:1003@p2psip.local");
    assert!(recs[0]["duration_s"].as_f64().unwrap() > 0.0);
}
