//! The overlay PKI end to end with the real binary: `ca init`, `ca serve`, `enroll`,
//! `ca verify`.

use crate::harness::{NodeProc, bin};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

const T: Duration = Duration::from_secs(30);

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .output()
        .expect("run p2psip")
}

fn pem_der(path: &Path) -> Vec<u8> {
    use base64::Engine;
    let text = std::fs::read_to_string(path).unwrap();
    let b64: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

/// Checks `cert` is signed by `ca` and returns its reload URIs and rfc822Names.
fn check_cert(cert: &[u8], ca: &[u8]) -> (Vec<String>, Vec<String>) {
    let (_, c) = X509Certificate::from_der(cert).unwrap();
    let (_, r) = X509Certificate::from_der(ca).unwrap();
    assert!(r.is_ca());
    c.verify_signature(Some(r.public_key())).unwrap();
    assert!(c.validity().is_valid());
    let san = c.subject_alternative_name().unwrap().unwrap();
    let mut uris = Vec::new();
    let mut users = Vec::new();
    for n in &san.value.general_names {
        match n {
            GeneralName::URI(u) => uris.push(u.to_string()),
            GeneralName::RFC822Name(u) => users.push(u.to_string()),
            other => panic!("unexpected SAN {other:?}"),
        }
    }
    (uris, users)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn ca_init_serve_enroll_and_verify() {
    let top = tempfile::tempdir().unwrap();
    let o = run(
        top.path(),
        &[
            "ca",
            "init",
            "--overlay",
            "it.p2psip.test",
            "--dir",
            "ca",
            "--enrollment-url",
            "https://127.0.0.1:8443/",
            "--bootstrap",
            "127.0.0.1:6084",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("created overlay CA for overlay it.p2psip.test"));
    let ca_dir = top.path().join("ca");
    let ca_der = pem_der(&ca_dir.join("ca.cert.pem"));
    // A second init into the same directory is refused.
    let o = run(
        top.path(),
        &["ca", "init", "--overlay", "x.test", "--dir", "ca"],
    );
    assert!(!o.status.success());

    std::fs::write(
        top.path().join("users.txt"),
        "alice:alice-secret\nbob:bob-secret\n",
    )
    .unwrap();
    std::fs::write(top.path().join("alice.pw"), "alice-secret\n").unwrap();

    // The server runs in its own temp dir; give it absolute paths.
    let srv_dir = tempfile::tempdir().unwrap();
    let ca_arg = ca_dir.to_str().unwrap().to_string();
    let users_arg = top.path().join("users.txt").to_str().unwrap().to_string();
    let mut srv = NodeProc::start_in(
        srv_dir,
        &[
            "ca",
            "serve",
            "--dir",
            &ca_arg,
            "--listen",
            "127.0.0.1:0",
            "--users",
            &users_arg,
        ],
    );
    let line = srv.wait_line("listening on ", T);
    let addr = line
        .split("listening on ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let url = format!("https://{addr}/");
    assert!(!line.contains("secret"));

    // alice: trust on first contact.
    let o = run(
        top.path(),
        &[
            "enroll",
            "--server",
            &url,
            "--user",
            "alice",
            "--password-file",
            "alice.pw",
            "--dir",
            "alice",
            "--insecure-first-contact",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("first contact: trusting overlay CA"));
    // bob: CA certificate given beforehand.
    let o = run(
        top.path(),
        &[
            "enroll",
            "--server",
            &url,
            "--user",
            "bob",
            "--password",
            "bob-secret",
            "--dir",
            "bob",
            "--ca-cert",
            ca_dir.join("ca.cert.pem").to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    let mut node_uris = Vec::new();
    for user in ["alice", "bob"] {
        let d = top.path().join(user);
        for f in [
            "node.key.pem",
            "node.cert.pem",
            "ca.cert.pem",
            "overlay.xml",
        ] {
            assert!(d.join(f).is_file(), "{user}/{f}");
        }
        assert_eq!(pem_der(&d.join("ca.cert.pem")), ca_der);
        let (uris, users) = check_cert(&pem_der(&d.join("node.cert.pem")), &ca_der);
        assert_eq!(users, vec![user.to_string()]);
        assert_eq!(uris.len(), 1);
        let u = &uris[0];
        assert!(
            u.starts_with("reload://0110")
                && u.ends_with("@it.p2psip.test/")
                && u.len() == 13 + 32 + 16,
            "{u}"
        );
        node_uris.push(u.clone());
        // The stored configuration verifies against the CA.
        let o = run(
            &d,
            &["ca", "verify", "overlay.xml", "--ca-cert", "ca.cert.pem"],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("OK: overlay it.p2psip.test"));
    }
    assert_ne!(node_uris[0], node_uris[1], "distinct Node-IDs");

    // A wrong password: 403 failed_authentication, nothing written.
    let o = run(
        top.path(),
        &[
            "enroll",
            "--server",
            &url,
            "--user",
            "bob",
            "--password",
            "wrong",
            "--dir",
            "bob2",
            "--ca-cert",
            ca_dir.join("ca.cert.pem").to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("failed_authentication"),
        "{}",
        stderr(&o)
    );
    assert!(!top.path().join("bob2").join("node.cert.pem").exists());
    assert!(!stderr(&o).contains("wrong"));

    // A returning user gets the same Node-ID with a new key and certificate.
    let o = run(
        top.path(),
        &[
            "enroll",
            "--server",
            &url,
            "--user",
            "alice",
            "--password",
            "alice-secret",
            "--dir",
            "alice-again",
            "--ca-cert",
            ca_dir.join("ca.cert.pem").to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let again = pem_der(&top.path().join("alice-again/node.cert.pem"));
    assert_ne!(again, pem_der(&top.path().join("alice/node.cert.pem")));
    let (uris, _) = check_cert(&again, &ca_der);
    assert_eq!(uris, vec![node_uris[0].clone()]);

    // A foreign CA certificate: the HTTPS server is not trusted.
    let o = run(
        top.path(),
        &[
            "ca",
            "init",
            "--overlay",
            "it.p2psip.test",
            "--dir",
            "other",
        ],
    );
    assert!(o.status.success());
    let o = run(
        top.path(),
        &[
            "enroll",
            "--server",
            &url,
            "--user",
            "bob",
            "--password",
            "bob-secret",
            "--dir",
            "bob3",
            "--ca-cert",
            top.path().join("other/ca.cert.pem").to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("TLS"), "{}", stderr(&o));

    // Tampered overlay.xml fails verification.
    let d = top.path().join("alice");
    let xml = std::fs::read_to_string(d.join("overlay.xml")).unwrap();
    let tampered = xml.replace("127.0.0.1\" port=\"6084\"", "203.0.113.66\" port=\"6084\"");
    assert_ne!(tampered, xml);
    std::fs::write(d.join("overlay.xml"), tampered).unwrap();
    let o = run(
        &d,
        &["ca", "verify", "overlay.xml", "--ca-cert", "ca.cert.pem"],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("signature"), "{}", stderr(&o));
    // And an untouched one signed by another CA is refused against our CA.
    let o = run(
        top.path(),
        &[
            "ca",
            "verify",
            "other/overlay.xml",
            "--ca-cert",
            "ca/ca.cert.pem",
        ],
    );
    assert!(!o.status.success());

    // The server logged issuing and refusing, never a password.
    srv.wait_line("refused enrollment", T);
    srv.wait_line("issued a certificate to user bob", T);
    assert!(
        !srv.seen
            .iter()
            .any(|l| l.contains("secret") || l.contains("wrong")),
        "{:?}",
        srv.seen
    );
}
