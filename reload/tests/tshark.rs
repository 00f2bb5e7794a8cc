//! "Wireshark agrees" (issue 3, item 6c): every RELOAD method, request and answer, encoded
//! with `reload::wire`, framed (RFC 6940 6.6.2), written as UDP datagrams to port 6084 (the
//! port `reload-framing` is registered on) and dissected by `tshark`.
//!
//! Asserted, per packet:
//! 1. no `Malformed`, `Expert Info (Error`, `Exception occurred` line in `tshark -V`;
//! 2. the fields tshark shows (PDML `show`/`value`, and the bytes of the span it gives a
//!    structure) equal what was encoded: framing, message code, transaction id, TTL, overlay,
//!    via/destination lists, resource ids, Kinds, generation counters, dictionary keys, the
//!    SIP registration route, the TURN server, the security block, ...;
//! 3. `tshark -T fields` lists every frame with the right code and transaction id.
//!
//! Where Wireshark's RELOAD dissector (checked against 4.0.17) disagrees with RFC 6940, the
//! check accepts either the right answer or exactly the known dissector behaviour, and prints
//! a note; see [`Quirk`]. The test is skipped (with a message) when `tshark` is missing.
//!
//! The summary (methods checked, dissector notes) is written to stderr past the harness's
//! capture. Set `RELOAD_TSHARK_KEEP=/some/file.pcap` to keep the capture.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "tshark/messages.rs"]
mod messages;
#[path = "tshark/pcap.rs"]
mod pcap;

use reload::codec::{Codec, Opaque};
use reload::wire::header::{UNFRAGMENTED, VERSION};
use reload::wire::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A real self-signed DER certificate (P-256, CN=alice, rfc822Name alice@example.com), so the
/// X.509 bytes the dissector hands to its X.509 dissector are well formed.
const CERT: &[u8] = include_bytes!("tshark/alice-cert.der");
/// SHA-256 of [`CERT`] (`sha256sum tests/tshark/alice-cert.der`): the `cert_hash` signer.
const CERT_SHA256: &str = "da6e2522b7661bdfcb5a8ed84573de262c8d537469bed2783e15bfd7e2d70f1a";

const OVERLAY_NAME: &str = "example.com";
/// A private-use Kind (RFC 6940 14.6) that Wireshark learns from its Kind-ID UAT.
const PRIVATE_KIND: KindId = KindId(0xf000_0001);
/// The `reload_kindids` UAT row that tells Wireshark [`PRIVATE_KIND`]'s data model.
const PRIVATE_KIND_UAT: &str = r#"uat:reload_kindids:"4026531841","EXAMPLE-PRIVATE","SINGLE""#;
const CONFIG_SEQ: u16 = 7;
const ALICE: u128 = 0x0011_2233_4455_6677_8899_aabb_ccdd_eeff;
const BOB: u128 = 0x8000_0000_0000_0000_0000_0000_0000_0001;
const PEER_A: u128 = 0x1111_1111_1111_1111_1111_1111_1111_1111;
const PEER_B: u128 = 0x2222_2222_2222_2222_2222_2222_2222_2222;
const PEER_C: u128 = 0x3333_3333_3333_3333_3333_3333_3333_3333;
const PEER_D: u128 = 0xdddd_dddd_dddd_dddd_dddd_dddd_dddd_dddd;

/// Ethernet + IPv4 + UDP header bytes in front of each payload ([`pcap::Pcap::udp`]).
const PAYLOAD_OFFSET: usize = 14 + 20 + 8;
/// Upper bound for one tshark run.
const TSHARK_TIMEOUT: Duration = Duration::from_secs(60);

fn nid(v: u128) -> NodeId {
    NodeId(v)
}

fn node(v: u128) -> Destination {
    Destination::Node(NodeId(v))
}

fn nid_hex(v: u128) -> String {
    format!("{v:032x}")
}

fn enc<T: Codec>(v: &T) -> Vec<u8> {
    v.to_bytes().unwrap()
}

/// `opaque<0..2^8-1>` encoding.
fn p8(b: &[u8]) -> Vec<u8> {
    [&[b.len() as u8][..], b].concat()
}

/// `opaque<0..2^16-1>` encoding.
fn p16(b: &[u8]) -> Vec<u8> {
    [&(b.len() as u16).to_be_bytes()[..], b].concat()
}

/// `opaque<0..2^24-1>` encoding.
fn p24(b: &[u8]) -> Vec<u8> {
    [&(b.len() as u32).to_be_bytes()[1..], b].concat()
}

/// `opaque<0..2^32-1>` encoding.
fn p32(b: &[u8]) -> Vec<u8> {
    [&(b.len() as u32).to_be_bytes()[..], b].concat()
}

// ---------------------------------------------------------------------------------------------
// What tshark must show
// ---------------------------------------------------------------------------------------------

/// Which PDML attribute of a field is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attr {
    /// `show`: the displayed value (decimal for most integers, text for strings).
    Show,
    /// `showname`: the whole displayed line.
    ShowName,
    /// `value`: the raw bytes of a typed field, in hex.
    Value,
    /// The captured bytes at `pos..pos+size`, in hex: what tshark says the structure spans.
    Span,
}

/// All occurrences of `field` in one packet (optionally only those inside an `under` item),
/// in order, must have these attribute values.
#[derive(Debug, Clone)]
struct Check {
    field: &'static str,
    under: Option<&'static str>,
    attr: Attr,
    expected: Vec<String>,
}

impl Check {
    fn under(mut self, ancestor: &'static str) -> Self {
        self.under = Some(ancestor);
        self
    }
}

fn show<T: ToString>(field: &'static str, v: &[T]) -> Check {
    Check {
        field,
        under: None,
        attr: Attr::Show,
        expected: v.iter().map(|s| s.to_string()).collect(),
    }
}

fn showname(field: &'static str, v: &[&str]) -> Check {
    Check {
        field,
        under: None,
        attr: Attr::ShowName,
        expected: v.iter().map(|s| s.to_string()).collect(),
    }
}

fn value<T: AsRef<[u8]>>(field: &'static str, v: &[T]) -> Check {
    Check {
        field,
        under: None,
        attr: Attr::Value,
        expected: v.iter().map(hex::encode).collect(),
    }
}

fn span<T: AsRef<[u8]>>(field: &'static str, v: &[T]) -> Check {
    Check {
        field,
        under: None,
        attr: Attr::Span,
        expected: v.iter().map(hex::encode).collect(),
    }
}

/// A place where Wireshark's RELOAD dissector is known to disagree with RFC 6940. The test
/// accepts the RFC-correct display or exactly this dissector behaviour, and reports which.
#[derive(Debug, Clone)]
enum Quirk {
    /// `dissect_storeddataspecifier`, DICTIONARY case: the key loop calls
    /// `dissect_opaque(.., offset, 2, ..)` with the specifier's start `offset` instead of the
    /// key's position, and never skips the `keys<0..2^16-1>` length. Every "key" is read at
    /// one fixed position (a 0 length there), so it shows (keys bytes)/2 empty keys. Our bytes
    /// follow RFC 6940 7.4.2.1 (`DictionaryKey keys<0..2^16-1>` after `uint16 length`).
    DictionaryKeys(Vec<Vec<u8>>),
    /// `dissect_icecandidates`: `priority` is read at the candidate's start
    /// (`offset+local_offset+icecandidates_offset`, missing `+icecandidate_offset`), so it
    /// shows the first 4 bytes of the IpAddressPort. RFC 6940 6.5.1.1 puts `uint32 priority`
    /// after addr_port, overlay_link and foundation, which is where we write it.
    IcePriority(Vec<IceCandidate>),
    /// `dissect_signature` raises the expert error "Unknown identity type" for any
    /// SignerIdentityType but cert_hash(1)/cert_hash_node_id(2). RFC 6940 6.3.4 defines
    /// `none(3)` with an empty value, and 7.4.2.2 requires it (with algorithm {0,0} and an
    /// empty signature) for the synthetic "does not exist" values of a FetchAns.
    SignerIdentityNone,
    /// The dissector's table has the RFC 7851 error codes at 101-106; RFC 7851 9.4 assigns
    /// 21-26, so it names code 21 "Unknown". Display only: the code itself must be right.
    Rfc7851ErrorName(&'static str),
}

/// The expert message [`Quirk::SignerIdentityNone`] produces.
const UNKNOWN_IDENTITY: &str = "Unknown identity type";

/// One captured frame with what it is and what tshark must show.
struct Pkt {
    label: String,
    method: &'static str,
    payload: Vec<u8>,
    /// Sent 10.0.0.1 -> 10.0.0.2 (requests) or back (answers and ACKs).
    from_requester: bool,
    /// Message code and transaction id, or `None` for an ACK.
    code_txid: Option<(u16, u64)>,
    checks: Vec<Check>,
    quirks: Vec<Quirk>,
}

// ---------------------------------------------------------------------------------------------
// PDML
// ---------------------------------------------------------------------------------------------

/// One `<field>` (or `<proto>`) of a PDML packet.
#[derive(Debug)]
struct Field {
    name: String,
    show: String,
    showname: String,
    value: String,
    pos: usize,
    size: usize,
    ancestors: Vec<String>,
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let ent = &rest[1..end];
        match ent {
            "quot" => out.push('"'),
            "amp" => out.push('&'),
            "lt" => out.push('<'),
            "gt" => out.push('>'),
            "apos" => out.push('\''),
            _ => {
                let c = ent
                    .strip_prefix("#x")
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32);
                match c {
                    Some(c) => out.push(c),
                    None => out.push_str(&rest[..=end]),
                }
            }
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn attrs(tag: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut rest = tag;
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].rsplit(char::is_whitespace).next().unwrap_or("");
        let after = &rest[eq + 2..];
        let Some(close) = after.find('"') else { break };
        m.insert(name.to_string(), unescape(&after[..close]));
        rest = &after[close + 1..];
    }
    m
}

/// Splits PDML into packets of fields, each with the names of the items it is nested in.
fn parse_pdml(xml: &str) -> Vec<Vec<Field>> {
    let mut packets = Vec::new();
    let mut cur: Vec<Field> = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let bytes = xml.as_bytes();
    let mut i = 0;
    while let Some(off) = xml[i..].find('<') {
        let start = i + off;
        // the tag ends at the first '>' outside double quotes
        let mut j = start + 1;
        let mut quoted = false;
        while j < bytes.len() && (quoted || bytes[j] != b'>') {
            if bytes[j] == b'"' {
                quoted = !quoted;
            }
            j += 1;
        }
        let tag = &xml[start + 1..j.min(xml.len())];
        i = (j + 1).min(xml.len());
        if tag.starts_with("packet") {
            cur = Vec::new();
            stack.clear();
        } else if tag.starts_with("/packet") {
            packets.push(std::mem::take(&mut cur));
        } else if tag.starts_with("/field") || tag.starts_with("/proto") {
            stack.pop();
        } else if tag.starts_with("field") || tag.starts_with("proto") {
            let a = attrs(tag);
            let name = a.get("name").cloned().unwrap_or_default();
            let num = |k: &str| a.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
            cur.push(Field {
                name: name.clone(),
                show: a.get("show").cloned().unwrap_or_default(),
                showname: a.get("showname").cloned().unwrap_or_default(),
                value: a.get("value").cloned().unwrap_or_default(),
                pos: num("pos"),
                size: num("size"),
                ancestors: stack.clone(),
            });
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
    }
    packets
}

fn attr_of(f: &Field, attr: Attr, payload: &[u8]) -> String {
    match attr {
        Attr::Show => f.show.clone(),
        Attr::ShowName => f.showname.clone(),
        Attr::Value => f.value.clone(),
        Attr::Span => f
            .pos
            .checked_sub(PAYLOAD_OFFSET)
            .and_then(|s| payload.get(s..s + f.size))
            .map(hex::encode)
            .unwrap_or_else(|| format!("<outside the payload: pos {} size {}>", f.pos, f.size)),
    }
}

fn occurrences(fields: &[Field], name: &str, under: Option<&str>) -> Vec<usize> {
    (0..fields.len())
        .filter(|&i| {
            fields[i].name == name
                && under.is_none_or(|u| fields[i].ancestors.iter().any(|a| a == u))
        })
        .collect()
}

/// Evaluates a known disagreement: `Ok(note)` when tshark shows either the RFC-correct value
/// or exactly the known dissector behaviour, `Err` otherwise.
fn eval_quirk(q: &Quirk, fields: &[Field], payload: &[u8]) -> Result<String, String> {
    match q {
        Quirk::DictionaryKeys(keys) => {
            let idx = occurrences(
                fields,
                "reload.dictionarykey",
                Some("reload.storeddataspecifier.keys"),
            );
            let got: Vec<String> = idx
                .iter()
                .map(|&i| attr_of(&fields[i], Attr::Span, payload))
                .collect();
            let want: Vec<String> = keys.iter().map(|k| hex::encode(p16(k))).collect();
            if got == want {
                return Ok("dictionary keys: shown correctly (dissector fixed)".into());
            }
            let keys_bytes: usize = keys.iter().map(|k| 2 + k.len()).sum();
            let stuck = !idx.is_empty()
                && idx
                    .iter()
                    .all(|&i| fields[i].pos == fields[idx[0]].pos && fields[i].size == 2)
                && idx.len() == keys_bytes / 2;
            if stuck {
                Ok(format!(
                    "dictionary keys: KNOWN DISSECTOR BUG, {} keys of {} bytes shown as {} \
                     empty keys, all at one position",
                    keys.len(),
                    keys.first().map_or(0, Vec::len),
                    idx.len(),
                ))
            } else {
                Err(format!("dictionary keys: want spans {want:?}, got {got:?}"))
            }
        }
        Quirk::IcePriority(cands) => {
            let idx = occurrences(fields, "reload.icecandidate.priority", None);
            let got: Vec<String> = idx.iter().map(|&i| fields[i].value.clone()).collect();
            let right: Vec<String> = cands
                .iter()
                .map(|c| hex::encode(c.priority.to_be_bytes()))
                .collect();
            let bug: Vec<String> = cands.iter().map(|c| hex::encode(&enc(c)[..4])).collect();
            if got == right {
                Ok("ICE priority: shown correctly (dissector fixed)".into())
            } else if got == bug {
                Ok(format!(
                    "ICE priority: KNOWN DISSECTOR BUG, shows the first 4 candidate bytes {got:?} instead of {right:?}"
                ))
            } else {
                Err(format!(
                    "ICE priority: want {right:?} (or the known bug {bug:?}), got {got:?}"
                ))
            }
        }
        Quirk::Rfc7851ErrorName(name) => {
            let idx = occurrences(fields, "reload.error_response.code", None);
            let shown: Vec<&str> = idx.iter().map(|&i| fields[i].showname.as_str()).collect();
            if shown.iter().any(|s| s.contains(name)) {
                Ok(format!(
                    "error code name: shown as {name} (dissector fixed)"
                ))
            } else {
                Ok(format!(
                    "error code name: KNOWN DISSECTOR BUG (RFC 7851 code points), shown as {shown:?}"
                ))
            }
        }
        Quirk::SignerIdentityNone => {
            let idx = occurrences(fields, "_ws.expert.message", None);
            if idx.iter().any(|&i| fields[i].show == UNKNOWN_IDENTITY) {
                Ok(format!(
                    "signer identity none(3): KNOWN DISSECTOR BUG, expert error \"{UNKNOWN_IDENTITY}\""
                ))
            } else {
                Ok("signer identity none(3): accepted (dissector fixed)".into())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running tshark
// ---------------------------------------------------------------------------------------------

/// Removes the temporary directory when the test ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs tshark with its output in a file (large outputs cannot block on a pipe) and a bound
/// on the run time; returns stdout.
#[allow(clippy::disallowed_methods)] // test harness, not sans-IO engine code
fn tshark(args: &[&str], out: &Path) -> String {
    let started = std::time::Instant::now();
    let mut child = Command::new("tshark")
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(std::fs::File::create(out.with_extension("err")).unwrap())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > TSHARK_TIMEOUT {
            let _ = child.kill();
            panic!("tshark {args:?} did not finish within {TSHARK_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(out.with_extension("err")).unwrap_or_default();
    assert!(
        status.success(),
        "tshark {args:?} failed: {status}\n{stderr}"
    );
    std::fs::read_to_string(out).unwrap()
}

fn tshark_version() -> Option<String> {
    let out = Command::new("tshark").arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(str::to_string)
}

/// Splits `tshark -V` text into frames ("Frame N: ..." starts each).
fn split_frames(text: &str) -> Vec<String> {
    let mut frames: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with("Frame ") {
            frames.push(String::new());
        }
        if let Some(f) = frames.last_mut() {
            f.push_str(line);
            f.push('\n');
        }
    }
    frames
}

/// Writes to stderr directly, past the test harness's output capture, so the skip message
/// and the summary show up in a plain `cargo test` run.
fn say(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().write_all(text.as_bytes());
}

fn is_bad_line(line: &str) -> bool {
    line.contains("Malformed")
        || line.contains("Expert Info (Error")
        || line.contains("Exception occurred")
}

#[test]
fn wireshark_agrees() {
    let Some(version) = tshark_version() else {
        say(
            "SKIPPED wireshark_agrees: `tshark` is not installed (apt-get install tshark; the \
             README's test command installs it)\n",
        );
        return;
    };
    let pkts = messages::build();

    let mut cap = pcap::Pcap::new();
    let requester = (Ipv4Addr::new(10, 0, 0, 1), 6084);
    let responder = (Ipv4Addr::new(10, 0, 0, 2), 6084);
    for p in &pkts {
        if p.from_requester {
            cap.udp(requester, responder, &p.payload);
        } else {
            cap.udp(responder, requester, &p.payload);
        }
    }
    assert_eq!(cap.len() as usize, pkts.len());
    let dir = TempDir(std::env::temp_dir().join(format!(
        "reload-tshark-{}-{:p}",
        std::process::id(),
        &pkts
    )));
    std::fs::create_dir_all(&dir.0).unwrap();
    let file = dir.0.join("reload.pcap");
    std::fs::write(&file, cap.bytes()).unwrap();
    if let Ok(keep) = std::env::var("RELOAD_TSHARK_KEEP") {
        std::fs::write(keep, cap.bytes()).unwrap();
    }
    let f = file.to_str().unwrap();
    let prefs = [
        "-n",
        "-o",
        "reload.topology_plugin:CHORD-RELOAD",
        "-o",
        "reload.nodeid_length:16",
        // Wireshark knows the data models of Kinds 1, 2, 3, 16 and 104 only; others come from
        // its "Kind-ID Table" UAT (without it their StoredData values are not parsed).
        "-o",
        PRIVATE_KIND_UAT,
        "-r",
        f,
    ];
    let with =
        |extra: &[&'static str]| -> Vec<&str> { prefs.iter().chain(extra).copied().collect() };

    let mut errors: Vec<String> = Vec::new();

    // (1) No malformed packet, no error-level expert info, no exception.
    let verbose = tshark(&with(&["-V"]), &dir.0.join("v.txt"));
    let frames = split_frames(&verbose);
    assert_eq!(frames.len(), pkts.len(), "tshark -V frame count");
    let mut allowed_seen = 0;
    for (p, text) in pkts.iter().zip(&frames) {
        let allow_unknown_identity = p
            .quirks
            .iter()
            .any(|q| matches!(q, Quirk::SignerIdentityNone));
        for line in text.lines().filter(|l| is_bad_line(l)) {
            // `[Expert Info (Error/Protocol): Unknown identity type]` and its sub-line.
            if allow_unknown_identity && line.contains(UNKNOWN_IDENTITY) {
                allowed_seen += 1;
                continue;
            }
            errors.push(format!("{}: tshark -V: {}", p.label, line.trim()));
        }
        if !text.contains("REsource LOcation And Discovery Framing") {
            errors.push(format!("{}: not dissected as reload-framing", p.label));
        }
    }

    // (3) Every frame, by `-T fields`: framing type, message code, transaction id.
    let fields = tshark(
        &with(&[
            "-T",
            "fields",
            "-E",
            "separator=;",
            "-e",
            "frame.number",
            "-e",
            "reload_framing.type",
            "-e",
            "reload.message.code",
            "-e",
            "reload.forwarding.trans_id",
        ]),
        &dir.0.join("fields.txt"),
    );
    let rows: Vec<&str> = fields.lines().collect();
    assert_eq!(rows.len(), pkts.len(), "tshark -T fields row count");
    for (i, (p, row)) in pkts.iter().zip(&rows).enumerate() {
        let want = match p.code_txid {
            Some((code, txid)) => format!("{};128;{code};{txid:#018x}", i + 1),
            None => format!("{};129;;", i + 1),
        };
        if *row != want {
            errors.push(format!("{}: -T fields row {row:?}, want {want:?}", p.label));
        }
    }

    // (2) Field by field, from PDML.
    let pdml = tshark(&with(&["-T", "pdml"]), &dir.0.join("pdml.xml"));
    let packets = parse_pdml(&pdml);
    assert_eq!(packets.len(), pkts.len(), "PDML packet count");
    let mut notes: Vec<(String, String)> = Vec::new();
    let mut checked = 0usize;
    for (p, fields) in pkts.iter().zip(&packets) {
        for c in &p.checks {
            let got: Vec<String> = occurrences(fields, c.field, c.under)
                .into_iter()
                .map(|i| attr_of(&fields[i], c.attr, &p.payload))
                .collect();
            checked += 1;
            if got != c.expected {
                errors.push(format!(
                    "{}: {}{} {:?}: tshark shows {:?}, encoded {:?}",
                    p.label,
                    c.field,
                    c.under.map(|u| format!(" (under {u})")).unwrap_or_default(),
                    c.attr,
                    got,
                    c.expected
                ));
            }
        }
        for q in &p.quirks {
            match eval_quirk(q, fields, &p.payload) {
                Ok(note) => notes.push((p.label.clone(), note)),
                Err(e) => errors.push(format!("{}: {e}", p.label)),
            }
        }
    }

    // Summary.
    let mut summary = String::new();
    let mut methods: Vec<(&str, Vec<&str>)> = Vec::new();
    for p in &pkts {
        match methods.iter_mut().find(|(m, _)| *m == p.method) {
            Some((_, v)) => v.push(&p.label),
            None => methods.push((p.method, vec![&p.label])),
        }
    }
    let _ = writeln!(
        summary,
        "wireshark_agrees: {version}; {} frames, {checked} field checks; tshark {}",
        pkts.len(),
        with(&["-V | -T fields ... | -T pdml"]).join(" ")
    );
    for (m, labels) in &methods {
        let _ = writeln!(summary, "  {m:<13} {}", labels.join("; "));
    }
    for (label, note) in &notes {
        let _ = writeln!(summary, "  note: {label}: {note}");
    }
    let _ = writeln!(
        summary,
        "  expert errors excused as known dissector bugs: {allowed_seen} line(s)"
    );
    say(&summary);

    assert!(
        errors.is_empty(),
        "tshark disagrees with the encoder ({} problems):\n  {}\n\n{summary}",
        errors.len(),
        errors.join("\n  ")
    );
}
