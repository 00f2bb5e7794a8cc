//! The overlay configuration document (RFC 6940 section 11.1): writing it, signing it, and
//! verifying a received one.
//!
//! The `<signature>` element follows `<configuration>` and holds the base64 of a SecurityBlock
//! (RFC 6940 6.3.4) whose signature covers exactly the bytes from the `<` of `<configuration`
//! through the `>` of `</configuration>`. Each `kind-block` carries a `kind-signature` over its
//! `<kind ...>...</kind>` element in the same way. The signer is the overlay CA, named by
//! `cert_hash` (SHA-256 of its DER certificate), with its certificate in the block.
//!
//! The reader is a small hand-written scanner, enough for documents we write and for the
//! elements we need; it is not a general XML parser (no CDATA, no comments inside elements we
//! read, no entity declarations).

use super::sign::{NodeKey, SecurityBlock};
use super::{PkiError, cert};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

/// Config base namespace.
pub const NS_BASE: &str = "urn:ietf:params:xml:ns:p2p:config-base";
/// CHORD-RELOAD namespace.
pub const NS_CHORD: &str = "urn:ietf:params:xml:ns:p2p:config-chord";
/// Media type of the document (RFC 6940 14.16).
pub const MEDIA_TYPE: &str = "application/p2p-overlay+xml";
/// The `mandatory-extension`s p2psip implements, and lists in every document it writes.
pub const SUPPORTED_EXTENSIONS: &[&str] = &[reload::crypto::x509::REGISTRAR_EXTENSION_NS];

/// Refuses a verified configuration that lacks an extension this node needs (the registrar
/// role: without it, other peers would refuse the registrations we store).
pub fn require_extensions(conf: &OverlayConfig) -> Result<(), PkiError> {
    for ns in SUPPORTED_EXTENSIONS {
        if !conf.mandatory_extensions.iter().any(|m| m == ns) {
            return Err(PkiError::Config(format!(
                "the overlay configuration does not list the mandatory-extension {ns}, which \
                 p2psip registrars need (RFC 6940 11.1); it was written by an older or foreign \
                 CA"
            )));
        }
    }
    Ok(())
}

/// What goes into a configuration document we write.
#[derive(Debug, Clone)]
pub struct ConfigParams {
    /// `instance-name`: the overlay name.
    pub overlay: String,
    /// `sequence`.
    pub sequence: u16,
    /// `expiration`, Unix seconds.
    pub expiration: i64,
    /// `root-cert`s (DER).
    pub root_certs: Vec<Vec<u8>>,
    /// `enrollment-server` URLs.
    pub enrollment_servers: Vec<String>,
    /// `bootstrap-node`s as (address literal, port).
    pub bootstrap: Vec<(String, u16)>,
}

/// A Kind in `required-kinds` (RFC 6940 11.1; code points in sections 8, 9 and RFC 7904).
struct KindSpec {
    name: &'static str,
    data_model: &'static str,
    access: &'static str,
    max_count: u32,
    max_size: u32,
    max_node_multiple: Option<u32>,
}

const KINDS: &[KindSpec] = &[
    KindSpec {
        name: "SIP-REGISTRATION",
        data_model: "DICTIONARY",
        access: "USER-NODE-MATCH",
        max_count: 16,
        max_size: 1000,
        max_node_multiple: None,
    },
    KindSpec {
        name: "CERTIFICATE_BY_NODE",
        data_model: "ARRAY",
        access: "NODE-MATCH",
        max_count: 4,
        max_size: 4000,
        max_node_multiple: None,
    },
    KindSpec {
        name: "CERTIFICATE_BY_USER",
        data_model: "ARRAY",
        access: "USER-MATCH",
        max_count: 4,
        max_size: 4000,
        max_node_multiple: None,
    },
    // p2psip-private (RFC 6940 7.4.5 / 14.6): shared SIP users' encrypted digest credentials
    // (reload::storage::KIND_P2PSIP_CREDENTIALS = 0xF0005301), written by registrars only.
    KindSpec {
        name: "4026553089",
        data_model: "SINGLE",
        access: "P2PSIP-REGISTRAR",
        max_count: 1,
        max_size: 1000,
        max_node_multiple: None,
    },
    KindSpec {
        name: "TURN-SERVICE",
        data_model: "SINGLE",
        access: "NODE-MULTIPLE",
        max_count: 1,
        max_size: 100,
        max_node_multiple: Some(20),
    },
];

/// Escapes text for XML content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Writes and signs a configuration document with the CA key and certificate.
pub fn build(p: &ConfigParams, signer: &NodeKey, signer_cert: &[u8]) -> Result<String, PkiError> {
    let mut c = String::new();
    c.push_str(&format!(
        "<configuration instance-name=\"{}\" sequence=\"{}\" expiration=\"{}\">\n",
        xml_escape(&p.overlay),
        p.sequence,
        super::rfc3339(p.expiration)
    ));
    c.push_str("  <topology-plugin>CHORD-RELOAD</topology-plugin>\n");
    c.push_str("  <node-id-length>16</node-id-length>\n");
    for r in &p.root_certs {
        c.push_str(&format!("  <root-cert>{}</root-cert>\n", B64.encode(r)));
    }
    for e in &p.enrollment_servers {
        c.push_str(&format!(
            "  <enrollment-server>{}</enrollment-server>\n",
            xml_escape(e)
        ));
    }
    c.push_str("  <self-signed-permitted digest=\"sha256\">false</self-signed-permitted>\n");
    // p2psip registrars store their phones' registrations under the registrar role
    // (docs/SECURITY.md): peers that do not implement it must not join (RFC 6940 11.1).
    for ns in SUPPORTED_EXTENSIONS {
        c.push_str(&format!(
            "  <mandatory-extension>{ns}</mandatory-extension>\n"
        ));
    }
    for (addr, port) in &p.bootstrap {
        c.push_str(&format!(
            "  <bootstrap-node address=\"{}\" port=\"{port}\"/>\n",
            xml_escape(addr)
        ));
    }
    c.push_str("  <required-kinds>\n");
    for k in KINDS {
        let attr = if k.name.bytes().all(|b| b.is_ascii_digit()) {
            "id"
        } else {
            "name"
        };
        let mut kind = format!(
            "<kind {attr}=\"{}\"><data-model>{}</data-model><access-control>{}</access-control>\
             <max-count>{}</max-count><max-size>{}</max-size>",
            k.name, k.data_model, k.access, k.max_count, k.max_size
        );
        if let Some(n) = k.max_node_multiple {
            kind.push_str(&format!("<max-node-multiple>{n}</max-node-multiple>"));
        }
        kind.push_str("</kind>");
        let sig = SecurityBlock::sign(signer, signer_cert, kind.as_bytes())?.encode()?;
        c.push_str(&format!(
            "    <kind-block>\n      {kind}\n      <kind-signature>{}</kind-signature>\n    </kind-block>\n",
            B64.encode(sig)
        ));
    }
    c.push_str("  </required-kinds>\n");
    c.push_str("</configuration>");
    let sig = SecurityBlock::sign(signer, signer_cert, c.as_bytes())?.encode()?;
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<overlay xmlns=\"{NS_BASE}\" xmlns:chord=\"{NS_CHORD}\">\n{c}\n<signature>{}</signature>\n</overlay>\n",
        B64.encode(sig)
    ))
}

/// A verified configuration document: the fields p2psip uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayConfig {
    /// `instance-name`.
    pub overlay: String,
    /// `sequence`.
    pub sequence: u16,
    /// `expiration` as written (RFC 3339).
    pub expiration: String,
    /// `root-cert`s (DER).
    pub root_certs: Vec<Vec<u8>>,
    /// `enrollment-server`s.
    pub enrollment_servers: Vec<String>,
    /// `bootstrap-node`s.
    pub bootstrap: Vec<(String, u16)>,
    /// Names of the Kinds in `required-kinds` (each kind-signature verified).
    pub kinds: Vec<String>,
    /// `mandatory-extension`s (each one p2psip implements; others are refused).
    pub mandatory_extensions: Vec<String>,
    /// The certificate (DER) that signed the document: one of `root_certs`.
    pub signer: Vec<u8>,
}

/// One element occurrence: the start tag's text (between `<` and `>`), the inner text, and
/// the byte range of the whole element in the document.
struct Elem<'a> {
    tag: &'a str,
    inner: &'a str,
    start: usize,
    end: usize,
}

/// All top-level occurrences of `<name ...>...</name>` or `<name .../>` in `doc`.
fn elements<'a>(doc: &'a str, name: &str) -> Result<Vec<Elem<'a>>, PkiError> {
    let open = format!("<{name}");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(i) = doc[pos..].find(&open) {
        let start = pos + i;
        let after = start + open.len();
        // The name must end here: `<kind` must not match `<kind-block`.
        match doc[after..].chars().next() {
            Some(c) if c == '>' || c == '/' || c.is_whitespace() => {}
            _ => {
                pos = after;
                continue;
            }
        }
        let gt = doc[after..]
            .find('>')
            .ok_or_else(|| PkiError::Config(format!("unterminated <{name}> tag")))?
            + after;
        let tag = &doc[start + 1..gt];
        if tag.ends_with('/') {
            out.push(Elem {
                tag,
                inner: "",
                start,
                end: gt + 1,
            });
            pos = gt + 1;
            continue;
        }
        let ci = doc[gt + 1..]
            .find(&close)
            .ok_or_else(|| PkiError::Config(format!("<{name}> is not closed")))?
            + gt
            + 1;
        let end = ci + close.len();
        out.push(Elem {
            tag,
            inner: &doc[gt + 1..ci],
            start,
            end,
        });
        pos = end;
    }
    Ok(out)
}

/// The value of attribute `name` in a start tag's text.
fn attr(tag: &str, name: &str) -> Option<String> {
    let mut rest = tag;
    loop {
        let i = rest.find(name)?;
        let before_ok = rest[..i].ends_with(|c: char| c.is_whitespace());
        let after = rest[i + name.len()..].trim_start();
        if before_ok && let Some(v) = after.strip_prefix('=') {
            let v = v.trim_start();
            let q = v.chars().next()?;
            if q != '"' && q != '\'' {
                return None;
            }
            let body = &v[1..];
            let e = body.find(q)?;
            return Some(xml_unescape(&body[..e]));
        }
        rest = &rest[i + name.len()..];
    }
}

fn one_text(doc: &str, name: &str) -> Result<Option<String>, PkiError> {
    let e = elements(doc, name)?;
    match e.as_slice() {
        [] => Ok(None),
        [x] => Ok(Some(xml_unescape(x.inner.trim()))),
        _ => Err(PkiError::Config(format!("more than one <{name}>"))),
    }
}

fn b64_decode(s: &str, what: &str) -> Result<Vec<u8>, PkiError> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    B64.decode(clean)
        .map_err(|e| PkiError::Config(format!("{what} is not base64: {e}")))
}

/// Verifies a configuration document and returns its contents.
///
/// Checks: exactly one `configuration`, followed by a `signature` whose SecurityBlock verifies
/// over the exact configuration bytes; the signer certificate is one of the document's own
/// `root-cert`s, which must be a CA valid at `now`; if `pinned_root` is given (a CA we already
/// trust), it must be that signer. Each `kind-signature` must verify by the same rule.
/// `expected_overlay`, when given, must equal `instance-name`. Refuses `shared-secret`
/// overlays, other topology plugins and Node-ID lengths other than 16.
pub fn verify(
    doc: &str,
    pinned_root: Option<&[u8]>,
    expected_overlay: Option<&str>,
    now: i64,
) -> Result<OverlayConfig, PkiError> {
    let confs = elements(doc, "configuration")?;
    let conf = match confs.as_slice() {
        [c] => c,
        [] => return Err(PkiError::Config("no <configuration> element".into())),
        _ => {
            return Err(PkiError::Config(
                "more than one <configuration>: p2psip serves one overlay per document".into(),
            ));
        }
    };
    let conf_bytes = &doc.as_bytes()[conf.start..conf.end];
    let after = &doc[conf.end..];
    let sigs = elements(after, "signature")?;
    let sig = sigs.first().ok_or_else(|| {
        PkiError::Config("the configuration is not signed (no <signature>)".into())
    })?;
    // Only whitespace may sit between </configuration> and <signature>.
    if !after[..sig.start].trim().is_empty() {
        return Err(PkiError::Config(
            "<signature> must directly follow </configuration>".into(),
        ));
    }
    let sb = SecurityBlock::decode(&b64_decode(sig.inner, "<signature>")?)?;
    let signer = sb
        .verify(conf_bytes)
        .map_err(|e| PkiError::Config(format!("signature over <configuration> fails: {e}")))?
        .to_vec();

    let inner = conf.inner;
    let mut root_certs = Vec::new();
    for r in elements(inner, "root-cert")? {
        root_certs.push(b64_decode(r.inner, "<root-cert>")?);
    }
    if !root_certs.contains(&signer) {
        return Err(PkiError::Config(
            "the configuration is not signed by one of its root-certs".into(),
        ));
    }
    if let Some(pin) = pinned_root
        && pin != signer.as_slice()
    {
        return Err(PkiError::Config(
            "the configuration is signed by a CA other than the one we trust".into(),
        ));
    }
    check_ca(&signer, now)?;

    let overlay = attr(conf.tag, "instance-name")
        .ok_or_else(|| PkiError::Config("configuration has no instance-name".into()))?;
    if let Some(exp) = expected_overlay
        && exp != overlay
    {
        return Err(PkiError::Config(format!(
            "instance-name is {overlay:?}, expected {exp:?}"
        )));
    }
    let sequence = attr(conf.tag, "sequence")
        .unwrap_or_else(|| "0".into())
        .parse::<u16>()
        .map_err(|_| PkiError::Config("sequence is not a number 0..65534".into()))?;
    let expiration = attr(conf.tag, "expiration").unwrap_or_default();
    if !elements(inner, "shared-secret")?.is_empty() {
        return Err(PkiError::Config(
            "shared-secret overlays (TLS-PSK/SRP) are not supported by p2psip".into(),
        ));
    }
    if let Some(t) = one_text(inner, "topology-plugin")?
        && t != "CHORD-RELOAD"
    {
        return Err(PkiError::Config(format!(
            "topology-plugin {t} is not supported (only CHORD-RELOAD)"
        )));
    }
    if let Some(n) = one_text(inner, "node-id-length")?
        && n != "16"
    {
        return Err(PkiError::Config(format!(
            "node-id-length {n} is not supported (only 16)"
        )));
    }
    let enrollment_servers = elements(inner, "enrollment-server")?
        .iter()
        .map(|e| xml_unescape(e.inner.trim()))
        .collect();
    let mut bootstrap = Vec::new();
    for b in elements(inner, "bootstrap-node")? {
        let addr = attr(b.tag, "address")
            .ok_or_else(|| PkiError::Config("bootstrap-node without address".into()))?;
        let port = match attr(b.tag, "port") {
            Some(p) => p
                .parse()
                .map_err(|_| PkiError::Config(format!("bootstrap-node port {p:?}")))?,
            None => 6084,
        };
        bootstrap.push((addr, port));
    }
    let mut mandatory_extensions = Vec::new();
    for m in elements(inner, "mandatory-extension")? {
        let ns = xml_unescape(m.inner.trim());
        if !SUPPORTED_EXTENSIONS.contains(&ns.as_str()) {
            return Err(PkiError::Config(format!(
                "mandatory-extension {ns} is not supported by p2psip; refusing this overlay \
                 (RFC 6940 11.1)"
            )));
        }
        mandatory_extensions.push(ns);
    }
    let mut kinds = Vec::new();
    for kb in elements(inner, "kind-block")? {
        let k = elements(kb.inner, "kind")?;
        let [k] = k.as_slice() else {
            return Err(PkiError::Config(
                "kind-block needs exactly one <kind>".into(),
            ));
        };
        let name = attr(k.tag, "name")
            .or_else(|| attr(k.tag, "id"))
            .ok_or_else(|| PkiError::Config("kind without name or id".into()))?;
        let ks = one_text(kb.inner, "kind-signature")?
            .ok_or_else(|| PkiError::Config(format!("kind {name} has no kind-signature")))?;
        let ksb = SecurityBlock::decode(&b64_decode(&ks, "<kind-signature>")?)?;
        let ksigner = ksb
            .verify(&kb.inner.as_bytes()[k.start..k.end])
            .map_err(|e| PkiError::Config(format!("kind-signature of {name} fails: {e}")))?;
        if ksigner != signer.as_slice() {
            return Err(PkiError::Config(format!(
                "kind {name} is signed by someone other than the configuration signer"
            )));
        }
        kinds.push(name);
    }
    Ok(OverlayConfig {
        overlay,
        sequence,
        expiration,
        root_certs,
        enrollment_servers,
        bootstrap,
        kinds,
        mandatory_extensions,
        signer,
    })
}

/// The certificate must be a CA valid at `now`.
fn check_ca(der: &[u8], now: i64) -> Result<(), PkiError> {
    let info = cert::parse(der, "")?;
    if !info.is_ca {
        return Err(PkiError::Config(
            "the configuration signer is not a CA certificate".into(),
        ));
    }
    if now < info.not_before || now > info.not_after {
        return Err(PkiError::Config(format!(
            "the overlay CA certificate is outside its validity ({} .. {})",
            super::rfc3339(info.not_before),
            super::rfc3339(info.not_after)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ca::Ca;
    use crate::pki::testutil::NOW;

    fn doc() -> (tempfile::TempDir, Ca, String) {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(
            dir.path(),
            "lab.example",
            Some("https://127.0.0.1:8443/"),
            &["192.0.2.1:6084".into(), "[2001:db8::1]:7000".into()],
            NOW,
        )
        .unwrap();
        let xml = ca.config_xml().unwrap();
        (dir, ca, xml)
    }

    #[test]
    fn written_document_verifies_and_reads_back() {
        let (_d, ca, xml) = doc();
        let c = verify(&xml, Some(ca.cert_der()), Some("lab.example"), NOW).unwrap();
        assert_eq!(c.overlay, "lab.example");
        assert_eq!(c.root_certs, vec![ca.cert_der().to_vec()]);
        assert_eq!(c.enrollment_servers, vec!["https://127.0.0.1:8443/"]);
        assert_eq!(
            c.bootstrap,
            vec![
                ("192.0.2.1".to_string(), 6084),
                ("2001:db8::1".to_string(), 7000)
            ]
        );
        assert_eq!(
            c.kinds,
            vec![
                "SIP-REGISTRATION",
                "CERTIFICATE_BY_NODE",
                "CERTIFICATE_BY_USER",
                "4026553089",
                "TURN-SERVICE"
            ]
        );
        assert!(xml.contains("<max-node-multiple>20</max-node-multiple>"));
        assert!(xml.contains("<kind id=\"4026553089\"><data-model>SINGLE"));
        assert!(xml.contains("<access-control>USER-NODE-MATCH</access-control>"));
        // Without a pin: self-consistent document.
        verify(&xml, None, None, NOW).unwrap();
    }

    #[test]
    fn mandatory_extension_listed_and_unknown_ones_refused() {
        let (d, ca, xml) = doc();
        let c = verify(&xml, Some(ca.cert_der()), None, NOW).unwrap();
        assert_eq!(c.mandatory_extensions, SUPPORTED_EXTENSIONS);
        require_extensions(&c).unwrap();
        let mut without = c.clone();
        without.mandatory_extensions.clear();
        assert!(require_extensions(&without).is_err());
        // A document (validly signed) naming an extension we lack is refused.
        let params = ConfigParams {
            overlay: "lab.example".into(),
            sequence: 1,
            expiration: NOW + 86_400,
            root_certs: vec![ca.cert_der().to_vec()],
            enrollment_servers: vec![],
            bootstrap: vec![],
        };
        let pem = std::fs::read_to_string(d.path().join(crate::pki::ca::CA_KEY)).unwrap();
        let kp = rcgen::KeyPair::from_pem(&pem).unwrap();
        let key = NodeKey::from_pkcs8(kp.serialized_der()).unwrap();
        let good = build(&params, &key, ca.cert_der()).unwrap();
        let conf_start = good.find("<configuration").unwrap();
        let conf_end = good.find("</configuration>").unwrap() + "</configuration>".len();
        let conf = good[conf_start..conf_end].replace(
            "<self-signed-permitted",
            "<mandatory-extension>urn:example:unknown</mandatory-extension>\n  <self-signed-permitted",
        );
        let sig = SecurityBlock::sign(&key, ca.cert_der(), conf.as_bytes())
            .unwrap()
            .encode()
            .unwrap();
        let bad = format!(
            "<overlay>{conf}<signature>{}</signature></overlay>",
            B64.encode(sig)
        );
        let e = verify(&bad, Some(ca.cert_der()), None, NOW).unwrap_err();
        assert!(e.to_string().contains("urn:example:unknown"), "{e}");
    }

    #[test]
    fn tampering_is_rejected() {
        let (_d, ca, xml) = doc();
        for (from, to) in [
            ("sequence=\"1\"", "sequence=\"2\""),
            ("192.0.2.1", "192.0.2.9"),
            ("<node-id-length>16", "<node-id-length> 16"),
            ("\n  <topology-plugin>", "\n   <topology-plugin>"),
            ("<max-count>16<", "<max-count>17<"),
        ] {
            assert!(xml.contains(from), "{from}");
            let bad = xml.replacen(from, to, 1);
            assert!(
                verify(&bad, Some(ca.cert_der()), None, NOW).is_err(),
                "{from}"
            );
        }
        // Wrong overlay name expected.
        assert!(verify(&xml, None, Some("other"), NOW).is_err());
        // Signature removed.
        let i = xml.find("<signature>").unwrap();
        assert!(verify(&xml[..i], None, None, NOW).is_err());
        // A foreign CA as the pin.
        let d2 = tempfile::tempdir().unwrap();
        let other = Ca::init(d2.path(), "lab.example", None, &[], NOW).unwrap();
        assert!(verify(&xml, Some(other.cert_der()), None, NOW).is_err());
        // A document re-signed by a foreign CA with the real root-cert left in: signer not a root.
        let forged = other
            .config_xml()
            .unwrap()
            .replace(&B64.encode(other.cert_der()), &B64.encode(ca.cert_der()));
        assert!(verify(&forged, None, None, NOW).is_err());
    }

    #[test]
    fn mutated_documents_never_panic_and_never_verify() {
        let (_d, ca, xml) = doc();
        let b = xml.as_bytes();
        for i in (0..b.len()).step_by(3) {
            for rep in [b'<', b'>', b'"', b'/', b'x', b' '] {
                if b[i] == rep || !b[i].is_ascii() {
                    continue;
                }
                let mut m = b.to_vec();
                m[i] = rep;
                let m = String::from_utf8(m).unwrap();
                if let Ok(c) = verify(&m, Some(ca.cert_der()), None, NOW) {
                    // Only bytes outside the signed element and the signature may change.
                    let conf_end = xml.find("</configuration>").unwrap() + 16;
                    let sig_start = xml.find("<signature>").unwrap();
                    assert!(
                        i < xml.find("<configuration").unwrap()
                            || (i >= conf_end && i < sig_start)
                            || i > xml.find("</signature>").unwrap(),
                        "byte {i} -> {rep}: {c:?}"
                    );
                }
            }
        }
        for cut in (0..xml.len()).step_by(5) {
            let _ = verify(&xml[..cut], None, None, NOW);
        }
    }

    #[test]
    fn attr_and_elements_scanner() {
        assert_eq!(attr("a x=\"1\" y='2'", "y").as_deref(), Some("2"));
        assert_eq!(attr("a xy=\"1\" y=\"3\"", "y").as_deref(), Some("3"));
        assert_eq!(attr("a x=\"&amp;\"", "x").as_deref(), Some("&"));
        let e = elements("<kind-block><kind a='1'>x</kind></kind-block>", "kind").unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].inner, "x");
        assert!(elements("<kind>x", "kind").is_err());
    }
}
