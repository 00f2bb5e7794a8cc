//! Digest authentication helpers for a registrar (RFC 3261 22.4 with RFC 7616 digest
//! computation and RFC 8760 algorithms): MD5, SHA-256 and SHA-512/256, with their
//! `-sess` variants; `qop=auth`; nonces built from caller-supplied time and randomness,
//! with expiry and replay protection by nonce-count.

use crate::message::split_commas;
use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};
use std::collections::HashMap;

/// A digest algorithm (RFC 7616 3.2, RFC 8760 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// MD5 (RFC 2617; kept for old phones).
    Md5,
    /// MD5-sess.
    Md5Sess,
    /// SHA-256 (RFC 8760).
    Sha256,
    /// SHA-256-sess.
    Sha256Sess,
    /// SHA-512-256 (RFC 8760).
    Sha512_256,
    /// SHA-512-256-sess.
    Sha512_256Sess,
}

impl Algorithm {
    /// Parses the `algorithm` parameter (case-insensitive).
    pub fn parse(s: &str) -> Option<Algorithm> {
        let all = [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
            Algorithm::Sha512_256,
            Algorithm::Sha512_256Sess,
        ];
        all.into_iter().find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    /// The token used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    fn is_sess(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// `H(data)` as lower-case hex.
    pub fn hash(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex::encode(Md5::digest(data)),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex::encode(Sha256::digest(data)),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => {
                hex::encode(Sha512_256::digest(data))
            }
        }
    }
}

/// `HA1 = H(username ":" realm ":" password)`, what a registrar may store instead of the
/// password (RFC 7616 3.4.2, before the `-sess` step).
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    alg.hash(format!("{username}:{realm}:{password}").as_bytes())
}

/// The `qop=auth` inputs of a response computation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QopAuth<'a> {
    /// nonce-count.
    pub nc: u32,
    /// Client nonce.
    pub cnonce: &'a str,
}

/// The request-digest (RFC 7616 3.4.1) from a stored HA1 (without `-sess` applied).
pub fn response_from_ha1(
    alg: Algorithm,
    ha1: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    qop: Option<&QopAuth<'_>>,
) -> String {
    let ha1 = match (alg.is_sess(), qop) {
        (true, Some(q)) => alg.hash(format!("{ha1}:{nonce}:{}", q.cnonce).as_bytes()),
        _ => ha1.to_owned(),
    };
    let ha2 = alg.hash(format!("{method}:{uri}").as_bytes());
    match qop {
        Some(q) => {
            alg.hash(format!("{ha1}:{nonce}:{:08x}:{}:auth:{ha2}", q.nc, q.cnonce).as_bytes())
        }
        None => alg.hash(format!("{ha1}:{nonce}:{ha2}").as_bytes()),
    }
}

/// The request-digest from a password.
#[allow(clippy::too_many_arguments)]
pub fn compute_response(
    alg: Algorithm,
    username: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    qop: Option<&QopAuth<'_>>,
) -> String {
    response_from_ha1(
        alg,
        &ha1(alg, username, realm, password),
        nonce,
        method,
        uri,
        qop,
    )
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Splits `Digest a=b, c="d"` into lower-cased names and unquoted values.
fn parse_digest_params(value: &str) -> Option<HashMap<String, String>> {
    let value = value.trim();
    let (scheme, rest) = value.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let mut map = HashMap::new();
    for part in split_commas(rest)? {
        let (name, v) = part.split_once('=')?;
        let (name, v) = (name.trim().to_ascii_lowercase(), v.trim());
        let v = if v.starts_with('"') {
            let (q, after) = crate::message::take_quoted(v)?;
            if !after.trim().is_empty() {
                return None;
            }
            crate::message::unquote(q)
        } else {
            v.to_owned()
        };
        if name.is_empty() || map.insert(name, v).is_some() {
            return None;
        }
    }
    Some(map)
}

/// A `WWW-Authenticate` / `Proxy-Authenticate` Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Protection realm.
    pub realm: String,
    /// Server nonce.
    pub nonce: String,
    /// Opaque value to be echoed.
    pub opaque: Option<String>,
    /// Digest algorithm.
    pub algorithm: Algorithm,
    /// Whether `qop="auth"` is offered.
    pub qop_auth: bool,
    /// The previous nonce was stale (RFC 7616 3.3).
    pub stale: bool,
}

impl Challenge {
    /// The header value, e.g. `Digest realm="x", nonce="y", algorithm=SHA-256, qop="auth"`.
    pub fn to_header_value(&self) -> String {
        let mut s = format!(
            "Digest realm={}, nonce={}, algorithm={}",
            quote(&self.realm),
            quote(&self.nonce),
            self.algorithm.as_str()
        );
        if self.qop_auth {
            s.push_str(", qop=\"auth\"");
        }
        if let Some(o) = &self.opaque {
            s.push_str(", opaque=");
            s.push_str(&quote(o));
        }
        if self.stale {
            s.push_str(", stale=true");
        }
        s
    }

    /// Parses a challenge header value.
    pub fn parse(value: &str) -> Option<Challenge> {
        let p = parse_digest_params(value)?;
        Some(Challenge {
            realm: p.get("realm")?.clone(),
            nonce: p.get("nonce")?.clone(),
            opaque: p.get("opaque").cloned(),
            algorithm: match p.get("algorithm") {
                Some(a) => Algorithm::parse(a)?,
                None => Algorithm::Md5,
            },
            qop_auth: p
                .get("qop")
                .is_some_and(|q| q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth"))),
            stale: p
                .get("stale")
                .is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }
}

/// An `Authorization` / `Proxy-Authorization` Digest answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Realm.
    pub realm: String,
    /// Server nonce being answered.
    pub nonce: String,
    /// The digest-uri (the Request-URI as the client wrote it).
    pub uri: String,
    /// The request-digest in hex.
    pub response: String,
    /// Algorithm (MD5 when absent).
    pub algorithm: Algorithm,
    /// `qop=auth` with its nonce-count and cnonce.
    pub qop: Option<(u32, String)>,
    /// Opaque value echoed back.
    pub opaque: Option<String>,
}

/// Why credentials were rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The header is not a well-formed Digest answer.
    #[error("malformed credentials")]
    Malformed,
    /// The nonce was not issued by us.
    #[error("unknown nonce")]
    UnknownNonce,
    /// The nonce expired: challenge again with `stale=true`.
    #[error("stale nonce")]
    Stale,
    /// The nonce-count did not increase (a replay).
    #[error("replayed nonce-count")]
    Replay,
    /// The realm, algorithm, URI or opaque value does not match.
    #[error("credentials do not match the challenge")]
    Mismatch,
    /// The digest is wrong (wrong password).
    #[error("wrong digest")]
    WrongDigest,
}

impl Credentials {
    /// Parses an Authorization header value.
    pub fn parse(value: &str) -> Result<Credentials, AuthError> {
        let p = parse_digest_params(value).ok_or(AuthError::Malformed)?;
        let get = |k: &str| p.get(k).cloned().ok_or(AuthError::Malformed);
        let qop = match p.get("qop") {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let nc = get("nc")?;
                if nc.len() != 8 {
                    return Err(AuthError::Malformed);
                }
                let nc = u32::from_str_radix(&nc, 16).map_err(|_| AuthError::Malformed)?;
                Some((nc, get("cnonce")?))
            }
            Some(_) => return Err(AuthError::Malformed),
        };
        Ok(Credentials {
            username: get("username")?,
            realm: get("realm")?,
            nonce: get("nonce")?,
            uri: get("uri")?,
            response: get("response")?.to_ascii_lowercase(),
            algorithm: match p.get("algorithm") {
                Some(a) => Algorithm::parse(a).ok_or(AuthError::Malformed)?,
                None => Algorithm::Md5,
            },
            qop,
            opaque: p.get("opaque").cloned(),
        })
    }

    /// The header value.
    pub fn to_header_value(&self) -> String {
        let mut s = format!(
            "Digest username={}, realm={}, nonce={}, uri={}, response={}, algorithm={}",
            quote(&self.username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(&self.uri),
            quote(&self.response),
            self.algorithm.as_str()
        );
        if let Some((nc, cnonce)) = &self.qop {
            s.push_str(&format!(
                ", qop=auth, nc={nc:08x}, cnonce={}",
                quote(cnonce)
            ));
        }
        if let Some(o) = &self.opaque {
            s.push_str(", opaque=");
            s.push_str(&quote(o));
        }
        s
    }

    /// Checks the digest against a stored HA1 for `method` (constant-time compare).
    pub fn verify_ha1(&self, ha1: &str, method: &str) -> Result<(), AuthError> {
        let qop = self
            .qop
            .as_ref()
            .map(|(nc, cnonce)| QopAuth { nc: *nc, cnonce });
        let expected = response_from_ha1(
            self.algorithm,
            ha1,
            &self.nonce,
            method,
            &self.uri,
            qop.as_ref(),
        );
        if constant_time_eq(expected.as_bytes(), self.response.as_bytes()) {
            Ok(())
        } else {
            Err(AuthError::WrongDigest)
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Issues and checks nonces: `hex(time) . hex(random) . hex(H(secret, time, random))`,
/// so forged or altered nonces are recognised without state; used nonces are tracked to
/// reject nonce-counts that do not increase (RFC 7616 3.3 / 5.3).
#[derive(Debug)]
pub struct NonceManager {
    secret: [u8; 32],
    lifetime_secs: u64,
    max_tracked: usize,
    last_nc: HashMap<String, (u64, u32)>,
}

impl NonceManager {
    /// A manager with a secret from the caller's randomness and a nonce lifetime.
    pub fn new(secret: [u8; 32], lifetime_secs: u64) -> Self {
        NonceManager {
            secret,
            lifetime_secs,
            max_tracked: 100_000,
            last_nc: HashMap::new(),
        }
    }

    fn mac(&self, time: &[u8], random: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(time);
        h.update(random);
        hex::encode(h.finalize().get(..16).unwrap_or_default())
    }

    /// A fresh nonce for `now` (seconds of the caller's wall clock) and 16 random bytes.
    pub fn issue(&mut self, now: u64, random: [u8; 16]) -> String {
        let t = now.to_be_bytes();
        format!(
            "{}{}{}",
            hex::encode(t),
            hex::encode(random),
            self.mac(&t, &random)
        )
    }

    /// Checks a nonce and its nonce-count (`None` when the client did not use qop).
    pub fn check(&mut self, now: u64, nonce: &str, nc: Option<u32>) -> Result<(), AuthError> {
        if nonce.len() != 16 + 32 + 32 || !nonce.is_ascii() {
            return Err(AuthError::UnknownNonce);
        }
        let (t_hex, rest) = nonce.split_at(16);
        let (r_hex, mac) = rest.split_at(32);
        let t = hex::decode(t_hex).map_err(|_| AuthError::UnknownNonce)?;
        let r = hex::decode(r_hex).map_err(|_| AuthError::UnknownNonce)?;
        if !constant_time_eq(self.mac(&t, &r).as_bytes(), mac.as_bytes()) {
            return Err(AuthError::UnknownNonce);
        }
        let issued = u64::from_be_bytes(t.try_into().map_err(|_| AuthError::UnknownNonce)?);
        if now.saturating_sub(issued) > self.lifetime_secs || issued > now.saturating_add(60) {
            self.last_nc.remove(nonce);
            return Err(AuthError::Stale);
        }
        let Some(nc) = nc else {
            return Ok(());
        };
        match self.last_nc.get(nonce) {
            Some((_, last)) if nc <= *last => return Err(AuthError::Replay),
            _ => {}
        }
        if self.last_nc.len() >= self.max_tracked {
            let lifetime = self.lifetime_secs;
            self.last_nc
                .retain(|_, (issued, _)| now.saturating_sub(*issued) <= lifetime);
        }
        if self.last_nc.len() < self.max_tracked {
            self.last_nc.insert(nonce.to_owned(), (issued, nc));
            Ok(())
        } else {
            // Too many live nonces to remember: refuse rather than allow replays.
            Err(AuthError::Stale)
        }
    }

    /// Full check of credentials for a realm: nonce, replay, realm/opaque, digest.
    pub fn verify(
        &mut self,
        now: u64,
        creds: &Credentials,
        realm: &str,
        ha1: &str,
        method: &str,
    ) -> Result<(), AuthError> {
        if creds.realm != realm {
            return Err(AuthError::Mismatch);
        }
        creds.verify_ha1(ha1, method)?;
        self.check(now, &creds.nonce, creds.qop.as_ref().map(|(nc, _)| *nc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7616 3.9.1.
    const NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    #[test]
    fn rfc7616_examples() {
        let q = QopAuth {
            nc: 1,
            cnonce: CNONCE,
        };
        let r = |alg| {
            compute_response(
                alg,
                "Mufasa",
                "http-auth@example.org",
                "Circle of Life",
                NONCE,
                "GET",
                "/dir/index.html",
                Some(&q),
            )
        };
        assert_eq!(r(Algorithm::Md5), "8ca523f5e9506fed4657c9700eebdbec");
        assert_eq!(
            r(Algorithm::Sha256),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn rfc2617_example_and_parse() {
        let header = r#"Digest username="Mufasa",
                 realm="testrealm@host.com",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 uri="/dir/index.html",
                 qop=auth,
                 nc=00000001,
                 cnonce="0a4f113b",
                 response="6629fae49393a05397450978507c4ef1",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#
            .replace('\n', " ");
        let c = Credentials::parse(&header).unwrap();
        assert_eq!(c.qop, Some((1, "0a4f113b".to_owned())));
        let ha1 = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        assert_eq!(c.verify_ha1(&ha1, "GET"), Ok(()));
        assert_eq!(c.verify_ha1(&ha1, "POST"), Err(AuthError::WrongDigest));
        assert_eq!(Credentials::parse(&c.to_header_value()).unwrap(), c);
    }

    #[test]
    fn challenge_round_trip() {
        let ch = Challenge {
            realm: "example.com".into(),
            nonce: "abc".into(),
            opaque: Some("o\"q".into()),
            algorithm: Algorithm::Sha256,
            qop_auth: true,
            stale: true,
        };
        assert_eq!(Challenge::parse(&ch.to_header_value()), Some(ch));
        assert!(Challenge::parse("Basic realm=\"x\"").is_none());
    }

    #[test]
    fn nonce_expiry_forgery_and_replay() {
        let mut m = NonceManager::new([7; 32], 300);
        let n = m.issue(1_000, [1; 16]);
        assert_eq!(m.check(1_010, &n, Some(1)), Ok(()));
        assert_eq!(m.check(1_011, &n, Some(1)), Err(AuthError::Replay));
        assert_eq!(m.check(1_012, &n, Some(2)), Ok(()));
        assert_eq!(m.check(1_400, &n, Some(3)), Err(AuthError::Stale));
        let mut forged = n.clone();
        forged.replace_range(0..1, "1");
        assert_eq!(
            m.check(1_010, &forged, Some(1)),
            Err(AuthError::UnknownNonce)
        );
        assert_eq!(m.check(1_010, "short", None), Err(AuthError::UnknownNonce));
        let other = NonceManager::new([8; 32], 300).issue(1_000, [1; 16]);
        assert_eq!(m.check(1_010, &other, None), Err(AuthError::UnknownNonce));
    }

    #[test]
    fn full_register_flow_sha256_sess() {
        let mut m = NonceManager::new([9; 32], 60);
        let nonce = m.issue(50, [3; 16]);
        let alg = Algorithm::Sha256Sess;
        let q = QopAuth {
            nc: 1,
            cnonce: "xyz",
        };
        let resp = compute_response(
            alg,
            "alice",
            "p2psip",
            "pw",
            &nonce,
            "REGISTER",
            "sip:p2psip",
            Some(&q),
        );
        let creds = Credentials {
            username: "alice".into(),
            realm: "p2psip".into(),
            nonce,
            uri: "sip:p2psip".into(),
            response: resp,
            algorithm: alg,
            qop: Some((1, "xyz".into())),
            opaque: None,
        };
        let stored = ha1(alg, "alice", "p2psip", "pw");
        assert_eq!(m.verify(55, &creds, "p2psip", &stored, "REGISTER"), Ok(()));
        assert_eq!(
            m.verify(56, &creds, "p2psip", &stored, "REGISTER"),
            Err(AuthError::Replay)
        );
        assert_eq!(
            m.verify(56, &creds, "other", &stored, "REGISTER"),
            Err(AuthError::Mismatch)
        );
        let wrong = ha1(alg, "alice", "p2psip", "nope");
        assert_eq!(
            m.verify(56, &creds, "p2psip", &wrong, "REGISTER"),
            Err(AuthError::WrongDigest)
        );
    }
}
