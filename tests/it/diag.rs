//! `p2psip diag ping|path|info` against a running node's admin endpoint (`POST /diag`): three
//! `p2psip` processes form a ring; the real CLI asks node 1 about node 3 (RFC 7851 PathTrack
//! and diagnostics, RFC 6940 Ping).

use crate::harness::bin;
use crate::overlay::{OverlayNode, http, start_overlay, wait_for, wait_ring};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

fn node_id(n: &OverlayNode) -> String {
    wait_for("status", Duration::from_secs(10), || {
        let (c, b) = http(n.admin, "GET", "/status", b"")?;
        let v: Value = serde_json::from_str(&b).ok()?;
        (c == 200).then(|| v["node_id"].as_str().map(String::from))?
    })
}

/// Runs `p2psip diag ARGS --admin ADDR`; (success, stdout + stderr).
fn diag(admin: std::net::SocketAddr, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin())
        .arg("diag")
        .args(args)
        .args(["--admin", &admin.to_string(), "--timeout-ms", "5000"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("$ p2psip diag {}\n{text}", args.join(" "));
    (out.status.success(), text)
}

#[test]
fn diag_ping_path_info_through_the_admin_endpoint() {
    let nodes = start_overlay(3, &[]);
    let refs: Vec<&OverlayNode> = nodes.iter().collect();
    wait_ring(&refs, Duration::from_secs(30));
    let admin = nodes[0].admin;
    let id3 = node_id(&nodes[2]);

    let (ok, out) = diag(admin, &["ping", &id3]);
    assert!(ok, "ping: {out}");
    assert!(out.starts_with(&id3), "ping: {out}");
    assert!(
        out.contains(" ms") && out.contains("overlay hops"),
        "ping: {out}"
    );

    let (ok, out) = diag(admin, &["path", &id3]);
    assert!(ok, "path: {out}");
    let last = out.lines().rfind(|l| !l.starts_with("    ")).unwrap();
    assert!(last.contains(&id3), "path must end at the target: {out}");
    assert!(out.starts_with(" 1  "), "path: {out}");
    assert!(
        out.lines().filter(|l| !l.starts_with("    ")).count() <= 3,
        "path: {out}"
    );

    let (ok, out) = diag(admin, &["info", &id3]);
    assert!(ok, "info: {out}");
    assert!(out.starts_with(&id3), "info: {out}");
    let rts: u64 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("ROUTING_TABLE_SIZE"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ROUTING_TABLE_SIZE: {out}"));
    assert!(rts > 0, "{out}");
    assert!(out.contains("p2psip-reload/"), "software version: {out}");
    assert!(out.contains("APP_UPTIME"), "{out}");

    // Chosen kinds only, and JSON output.
    let (ok, out) = diag(
        admin,
        &["info", &id3, "--kinds", "software_version", "--json"],
    );
    assert!(ok, "info --json: {out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let info = v["hops"][0]["info"].as_array().unwrap();
    assert_eq!(info.len(), 1, "{out}");
    assert_eq!(info[0]["kind"], "SOFTWARE_VERSION");

    // A resource name: the responsible node answers and is named.
    let ids: Vec<String> = nodes.iter().map(node_id).collect();
    let (ok, out) = diag(admin, &["ping", "alice@lab.p2psip"]);
    assert!(ok, "ping resource: {out}");
    assert!(ids.iter().any(|i| out.starts_with(i.as_str())), "{out}");
    let (ok, out) = diag(admin, &["path", "alice@lab.p2psip"]);
    assert!(ok, "path resource: {out}");

    // Bad requests are refused, not crashed on.
    let (c, _) = http(admin, "POST", "/diag", b"{not json").unwrap();
    assert_eq!(c, 400);
    let (ok, out) = diag(admin, &["info", &id3, "--kinds", "NOPE"]);
    assert!(!ok && out.contains("unknown diagnostic kind"), "{out}");
}
