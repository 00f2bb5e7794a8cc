//! The node starts on a config file alone, logs what it does, and stops cleanly.

use crate::harness::{NodeProc, bin, loopback_config};
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

#[test]
fn starts_creates_data_dir_and_stops_on_sigterm() {
    let mut n = NodeProc::start(&loopback_config());
    n.wait_line("starting: configuration", T);
    assert!(
        n.path().join("data").is_dir(),
        "data directory beside config.yaml"
    );
    assert_eq!(n.signal_and_wait("TERM", T), Some(0));
    assert!(
        n.seen.iter().any(|l| l.contains("received SIGTERM")),
        "{:?}",
        n.seen
    );
}

#[test]
fn stops_on_sigint() {
    let mut n = NodeProc::start(&loopback_config());
    n.wait_line("starting: configuration", T);
    assert_eq!(n.signal_and_wait("INT", T), Some(0));
}

#[test]
fn bad_config_names_file_key_and_expectation_and_exits_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("broken.yaml");
    std::fs::write(&f, "sip:\n  udp: [\"not-an-address\"]\n").unwrap();
    let out = Command::new(bin())
        .arg("--config")
        .arg(&f)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.yaml") && err.contains("sip.udp[0]") && err.contains("expected"),
        "{err}"
    );

    std::fs::write(&f, "sip:\n  tcp: 5060\n").unwrap();
    let out = Command::new(bin())
        .arg("check-config")
        .arg(&f)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.yaml") && err.contains("sip.tcp") && err.contains("expected a list"),
        "{err}"
    );
}

#[test]
fn help_lists_every_subcommand() {
    let out = Command::new(bin()).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in ["run", "check-config"] {
        assert!(text.contains(sub), "--help lacks {sub}: {text}");
    }
}

#[test]
fn office_example_configs_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/office");
    for f in ["pbx1.yaml", "pbx2.yaml", "pbx3.yaml"] {
        let out = std::process::Command::new(crate::harness::bin())
            .arg("check-config")
            .arg(dir.join(f))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{f}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
