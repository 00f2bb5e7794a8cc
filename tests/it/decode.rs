//! `p2psip decode` shows a message, framed or bare, as text or JSON; garbage exits 1 with the
//! offset of the problem.

use crate::harness::bin;
use std::io::Write;
use std::process::{Command, Output, Stdio};

/// The worked Ping of RELOAD-WIRE.md 1.4 (299-byte security block), in a data frame.
fn framed_ping() -> String {
    let dest = format!("0110{}", "00112233445566778899aabbccddeeff");
    let contents = "0017000000020000".to_string() + "00000000";
    let identity = format!("0420{}", "aa".repeat(32));
    let security = format!("0000 0401 01 0022 {identity} 0100 {}", "55".repeat(256));
    let msg = format!(
        "d2454c4f 65b0781f 0001 0a 64 c0000000 0000016f 0102030405060708 00000000 0000 0012 0000 {dest} {contents} {security}"
    );
    format!("80 00000007 00016f {msg}")
}

fn decode(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(bin())
        .arg("decode")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn decodes_framed_ping_as_text_and_json() {
    let out = decode(&["--hex"], &framed_ping());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("sequence 7") && text.contains("PING_REQ"),
        "{text}"
    );
    assert!(text.contains("00112233445566778899aabbccddeeff"), "{text}");

    let out = decode(&["--hex", "--json"], &framed_ping());
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["frame_sequence"], 7);
    assert_eq!(
        v["message"]["header"]["transaction_id"],
        0x0102030405060708u64
    );
}

#[test]
fn decodes_bare_binary_message() {
    let hex: String = framed_ping().split_whitespace().skip(3).collect();
    let bytes = hex::decode(hex).unwrap();
    let mut child = Command::new(bin())
        .arg("decode")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("PING_REQ"));
}

#[test]
fn garbage_exits_1_with_offset() {
    let truncated: String = framed_ping().split_whitespace().skip(3).take(6).collect();
    let out = decode(&["--hex"], &truncated);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at byte"), "{err}");
}
