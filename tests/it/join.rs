//! Joining by enrollment (issue 11 item 2): node A holds the overlay CA and serves enrollment
//! embedded; node B, given A's overlay address and the enrollment password, enrolls at first
//! start (certificate with the registrar role, signed overlay.xml, credential key) and joins.
//! A wrong password or an unreachable server stops the node with exit code 1 and words.

use crate::harness::addr_after;
use crate::harness::{NodeProc, free_udp_port};
use crate::overlay::OverlayNode;
use crate::overlay::{fetch, node_config, start_overlay, store, wait_for, wait_ring};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

#[test]
fn second_node_joins_with_address_and_password() {
    let mut nodes = start_overlay(1, &[]);
    let a = nodes.remove(0);
    let server = a.enroll.expect("node A serves enrollment");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        node_config("b", Some(a.overlay), Some(server)),
    )
    .unwrap();
    let mut p = NodeProc::start_in_env(dir, &[], &[]);
    p.wait_line("enrolled in overlay lab.p2psip", T);
    p.wait_line("received the overlay credential key", T);
    let overlay = addr_after(&p.wait_line("listening on tls ", T), "listening on tls ");
    let admin = addr_after(
        &p.wait_line("admin listening on http ", T),
        "admin listening on http ",
    );
    let data = p.path().join("data");
    assert!(data.join("node.cert.pem").exists() && data.join("overlay.xml").exists());
    assert!(!data.join("ca").exists(), "B holds no CA");
    let b = OverlayNode {
        proc: p,
        overlay,
        admin,
        user: "b".into(),
        enroll: None,
    };
    wait_ring(&[&a, &b], Duration::from_secs(30));
    store(&b, "value-of-b");
    for n in [&a, &b] {
        let got = wait_for("fetch of b's value", T, || {
            fetch(n, "b").filter(|v| !v.is_empty())
        });
        assert!(got.iter().any(|v| v.contains("value-of-b")), "{got:?}");
    }

    // Wrong password: exit 1, in words.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        node_config("c", Some(a.overlay), Some(server)).replace("test-enroll-pw", "wrong-pw"),
    )
    .unwrap();
    let mut c = NodeProc::start_in_env(dir, &[], &[]);
    assert_eq!(c.wait_exit(T), Some(1));
    assert!(
        c.seen.iter().any(|l| l.contains("wrong password")),
        "{}",
        c.seen.join("\n")
    );
    assert!(!c.path().join("data/node.cert.pem").exists());

    // No server there: exit 1, in words.
    let closed = std::net::SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        node_config("d", Some(a.overlay), Some(closed)),
    )
    .unwrap();
    let mut d = NodeProc::start_in_env(dir, &[], &[]);
    assert_eq!(d.wait_exit(T), Some(1));
    assert!(
        d.seen.iter().any(|l| l.contains("cannot enroll at")),
        "{}",
        d.seen.join("\n")
    );
}
