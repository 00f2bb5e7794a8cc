//! Signature throughput of the X.509 provider: sign and verify a 200-byte RELOAD signature
//! input with ECDSA P-256 (`04 03`) and RSA-2048 (`04 01`). `verify_cached` is what a node
//! pays per message once the signer's certificate is in its cache; `verify_cold` also parses
//! and chain-checks the certificate.
//!
//! Run: `cargo bench -p reload --bench crypto`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/support/pki.rs"]
mod pki;

use divan::{Bencher, black_box};
use reload::crypto::x509::X509Crypto;
use reload::crypto::{CryptoProvider, SignatureParts};
use reload::wire::NodeId;

fn main() {
    divan::main();
}

fn provider(rsa: bool) -> (X509Crypto, Vec<u8>) {
    let ca = pki::TestCa::new("bench.overlay");
    let id = ca.issue(
        "alice@bench.overlay",
        &[NodeId(42)],
        &[],
        pki::NOW - 60,
        pki::NOW + 86_400,
        rsa,
    );
    let p = X509Crypto::new(
        "bench.overlay",
        &ca.cert_der,
        &id.cert_der,
        &id.key_der,
        pki::NOW,
    )
    .unwrap();
    (p, ca.cert_der)
}

fn signed(p: &X509Crypto) -> (Vec<u8>, SignatureParts) {
    let data = vec![0x5a; 200];
    let (h, s, value) = p.sign(&data);
    let (ih, ch) = p.identity();
    (
        data,
        SignatureParts {
            hash_alg: h,
            sig_alg: s,
            identity_hash_alg: ih,
            cert_hash: ch,
            value,
            node_id_hash: false,
        },
    )
}

#[divan::bench(args = ["ecdsa-p256", "rsa-2048"])]
fn sign(b: Bencher, alg: &str) {
    let (p, _) = provider(alg == "rsa-2048");
    let data = vec![0x5a; 200];
    b.bench(|| black_box(p.sign(black_box(&data))));
}

#[divan::bench(args = ["ecdsa-p256", "rsa-2048"])]
fn verify_cached(b: Bencher, alg: &str) {
    let (p, _) = provider(alg == "rsa-2048");
    let (data, sig) = signed(&p);
    let certs = p.certificates();
    assert!(p.verify(&data, &sig, &certs).is_some());
    b.bench(|| black_box(p.verify(black_box(&data), &sig, &certs)));
}

#[divan::bench(args = ["ecdsa-p256", "rsa-2048"])]
fn verify_cold(b: Bencher, alg: &str) {
    let (p, root) = provider(alg == "rsa-2048");
    let (data, sig) = signed(&p);
    let certs = p.certificates();
    b.bench(|| {
        reload::crypto::x509::verify_chain(&certs[0], &root, "bench.overlay", pki::NOW).unwrap();
        reload::crypto::x509::verify(
            &certs[0],
            reload::crypto::x509::SigAlg {
                hash: sig.hash_alg,
                sig: sig.sig_alg,
            },
            &data,
            &sig.value,
        )
        .unwrap()
    });
}
