//! Totality: truncated, bit-flipped and hostile inputs never panic; every failure is an error
//! with an offset inside the input; whatever does decode re-encodes to the same bytes.
//! Also replays every file in `tests/regressions/` through every decoder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use proptest::prelude::*;
use reload::codec::{Codec, DecodeError};
use reload::wire::*;

/// Runs every top-level decoder on `b`; each must return, and a success must re-encode to `b`.
fn all_decoders(b: &[u8]) {
    let in_range =
        |e: &DecodeError| assert!(e.offset <= b.len(), "offset {e:?} beyond {}", b.len());
    match Message::decode(b) {
        Ok(m) => {
            assert_eq!(m.encode().unwrap(), b, "Message re-encode");
            let _ = m.contents.decode_body(&BuiltinKinds);
            let _ = m.describe(&BuiltinKinds);
        }
        Err(e) => in_range(&e),
    }
    match RawMessage::decode(b) {
        Ok(m) => assert_eq!(m.encode().unwrap(), b),
        Err(e) => in_range(&e),
    }
    match FramedMessage::from_bytes(b) {
        Ok(f) => assert_eq!(f.to_bytes().unwrap(), b),
        Err(e) => in_range(&e),
    }
    match SipRegistration::from_bytes(b) {
        Ok(s) => assert_eq!(s.to_bytes().unwrap(), b),
        Err(e) => in_range(&e),
    }
    match TurnServer::from_bytes(b) {
        Ok(s) => assert_eq!(s.to_bytes().unwrap(), b),
        Err(e) => in_range(&e),
    }
    for m in [DataModel::Single, DataModel::Array, DataModel::Dictionary] {
        match StoredData::from_bytes(b, m) {
            Ok(s) => assert_eq!(s.to_bytes().unwrap(), b),
            Err(e) => in_range(&e),
        }
    }
    for code in [
        1u16, 2, 3, 4, 7, 8, 9, 10, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 29, 30,
        33, 34, 0xffff,
    ] {
        match Body::decode(MessageCode(code), b, &BuiltinKinds) {
            Ok(body) => assert_eq!(body.to_bytes().unwrap(), b, "Body {code}"),
            Err(e) => in_range(&e),
        }
    }
}

/// Sets the header's `length` to the buffer size (so inner parsers see the damage).
fn fix_length(b: &mut [u8]) {
    if b.len() >= 20 {
        let n = (b.len() as u32).to_be_bytes();
        b[16..20].copy_from_slice(&n);
    }
}

#[test]
fn truncation_of_the_worked_example() {
    let mut msg = vec![];
    msg.extend_from_slice(
        &hex::decode(
            "d2454c4f65b0781f00010a64c00000000000016f010203040506070800000000000000120000",
        )
        .unwrap(),
    );
    msg.extend_from_slice(&hex::decode("011000112233445566778899aabbccddeeff").unwrap());
    msg.extend_from_slice(&hex::decode("001700000002000000000000").unwrap());
    msg.extend_from_slice(&hex::decode("0000040101002204").unwrap());
    msg.push(0x20);
    msg.extend_from_slice(&[0xab; 32]);
    msg.extend_from_slice(&[0x01, 0x00]);
    msg.extend_from_slice(&[0x5a; 256]);
    assert!(Message::decode(&msg).is_ok());
    for cut in 0..msg.len() {
        let mut t = msg[..cut].to_vec();
        let e = Message::decode(&t).unwrap_err();
        assert!(e.offset <= cut);
        fix_length(&mut t);
        if let Err(e) = Message::decode(&t) {
            assert!(e.offset <= cut);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every prefix of a valid message fails (or, with `length` patched, fails deeper).
    #[test]
    fn truncated_messages((m, _) in typed_message()) {
        let b = m.encode().unwrap();
        for cut in 0..b.len() {
            let mut t = b[..cut].to_vec();
            prop_assert!(Message::decode(&t).is_err());
            fix_length(&mut t);
            all_decoders(&t);
        }
    }

    /// Every prefix of a valid body is handled by the body decoder without panicking.
    #[test]
    fn truncated_bodies(b in body()) {
        let bytes = b.to_bytes().unwrap();
        for cut in 0..bytes.len() {
            match Body::decode(b.code(), &bytes[..cut], &BuiltinKinds) {
                Ok(d) => prop_assert_eq!(d.to_bytes().unwrap(), &bytes[..cut]),
                Err(e) => prop_assert!(e.offset <= cut),
            }
        }
    }

    /// Random byte changes in valid messages never panic; what decodes is canonical.
    #[test]
    fn flipped_messages(
        (m, _) in typed_message(),
        flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4),
    ) {
        let mut b = m.encode().unwrap();
        for (i, x) in flips {
            let i = i % b.len();
            b[i] ^= x;
        }
        all_decoders(&b);
        fix_length(&mut b);
        all_decoders(&b);
    }

    /// Random byte changes inside bodies.
    #[test]
    fn flipped_bodies(
        body in body(),
        flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4),
    ) {
        let mut b = body.to_bytes().unwrap();
        if !b.is_empty() {
            for (i, x) in flips {
                let i = i % b.len();
                b[i] ^= x;
            }
        }
        match Body::decode(body.code(), &b, &BuiltinKinds) {
            Ok(d) => prop_assert_eq!(d.to_bytes().unwrap(), b),
            Err(e) => prop_assert!(e.offset <= b.len()),
        }
    }

    /// Arbitrary bytes.
    #[test]
    fn random_bytes(b in proptest::collection::vec(any::<u8>(), 0..128)) {
        all_decoders(&b);
    }
}

#[test]
fn regressions_replay() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        all_decoders(&bytes);
        n += 1;
    }
    assert!(n > 0, "no regression inputs in {}", dir.display());
}
