//! Runs every fuzz entry point on its seed corpus and on every regression input, so the
//! fuzz invariants are checked by `cargo test -p reload --features fuzzing`.

#![cfg(feature = "fuzzing")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reload::fuzzing;
use std::path::Path;

type Target = (&'static str, fn(&[u8]));

const TARGETS: &[Target] = &[
    ("message", fuzzing::message),
    ("raw_message", fuzzing::raw_message),
    ("framed_message", fuzzing::framed_message),
    ("body", fuzzing::body),
    ("stored_data_single", fuzzing::stored_data_single),
    ("stored_data_array", fuzzing::stored_data_array),
    ("stored_data_dictionary", fuzzing::stored_data_dictionary),
    ("sip_registration", fuzzing::sip_registration),
    ("turn_server", fuzzing::turn_server),
    ("gruu", fuzzing::gruu),
    ("diagnostics", fuzzing::diagnostics),
];

fn files(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return vec![];
    };
    rd.map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|e| e != "md"))
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

#[test]
fn seeds_and_regressions_hold_the_fuzz_invariants() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let regressions = files(&root.join("tests/regressions"));
    assert!(!regressions.is_empty());
    for (name, f) in TARGETS {
        let seeds = files(&root.join("fuzz/corpus").join(name));
        assert!(!seeds.is_empty(), "no seeds for {name}");
        for input in seeds.iter().chain(&regressions) {
            f(input);
        }
    }
}
