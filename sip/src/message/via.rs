//! The Via header (RFC 3261 20.42) with `received`/`rport` (RFC 3581).

use super::headers::split_commas;
use super::text::{Param, find_param, is_lws, is_token, is_token_char, parse_params, write_params};
use super::uri::parse_host_port;
use std::fmt;

/// The RFC 3261 branch magic cookie.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// One via-parm: `SIP/2.0/transport sent-by *(;param)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Protocol name and version, normally `SIP/2.0`.
    pub protocol: String,
    /// Transport token as received (UDP, TCP, TLS, SCTP, WS, ...).
    pub transport: String,
    /// sent-by host.
    pub host: String,
    /// sent-by port, if written.
    pub port: Option<u16>,
    /// Parameters in order (branch, received, rport, ...).
    pub params: Vec<Param>,
}

impl Via {
    /// A new Via with a branch parameter.
    pub fn new(transport: &str, host: &str, port: Option<u16>, branch: &str) -> Via {
        Via {
            protocol: "SIP/2.0".to_owned(),
            transport: transport.to_owned(),
            host: host.to_owned(),
            port,
            params: vec![Param::new("branch", Some(branch))],
        }
    }

    /// Parses one via-parm (LWS allowed around `/`, `:`, `;` and `=`).
    pub fn parse(s: &str) -> Option<Via> {
        let (name, rest) = s.trim_matches(is_lws).split_once('/')?;
        let (version, rest) = rest.split_once('/')?;
        let (name, version) = (name.trim_matches(is_lws), version.trim_matches(is_lws));
        if !is_token(name) || !is_token(version) {
            return None;
        }
        let rest = rest.trim_start_matches(is_lws);
        let t_end = rest.find(|c: char| !is_token_char(c))?;
        let transport = rest.get(..t_end)?;
        let rest = rest.get(t_end..)?;
        if transport.is_empty() || !rest.starts_with(is_lws) {
            return None;
        }
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (rest.get(..i)?, rest.get(i..)?),
            None => (rest, ""),
        };
        let sent_by = sent_by.trim_matches(is_lws);
        // `host SWS ":" SWS port`: drop LWS around the colon; LWS anywhere else is an error.
        let compact: String = sent_by
            .split(':')
            .map(|p| p.trim_matches(is_lws))
            .collect::<Vec<_>>()
            .join(":");
        if compact.contains(is_lws) {
            return None;
        }
        let (host, port) = parse_host_port(&compact)?;
        let params = parse_params(params)?;
        Some(Via {
            protocol: format!("{name}/{version}"),
            transport: transport.to_owned(),
            host,
            port,
            params,
        })
    }

    /// Parses a header value that may hold several comma-separated via-parms.
    pub fn parse_list(value: &str) -> Option<Vec<Via>> {
        split_commas(value)?.into_iter().map(Via::parse).collect()
    }

    /// A parameter's value (`Some(None)` for a flag parameter).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name).map(|p| p.value.as_deref())
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&str> {
        self.param("received").flatten()
    }

    /// The `rport` parameter: `Some(None)` when present without a value.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.param("rport").map(|v| v.and_then(|p| p.parse().ok()))
    }

    /// Sets (or adds) a parameter, keeping its position when present.
    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        match self
            .params
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            Some(p) => p.value = value.map(str::to_owned),
            None => self.params.push(Param::new(name, value)),
        }
    }

    /// `host[:port]` as written.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }

    /// Whether the transport is reliable (anything but UDP).
    pub fn is_reliable(&self) -> bool {
        !self.transport.eq_ignore_ascii_case("UDP")
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = format!("{}/{} {}", self.protocol, self.transport, self.sent_by());
        write_params(&mut s, &self.params);
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_lws_and_list() {
        let v = Via::parse("SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.branch(), Some("390skdjuw"));
        let l = Via::parse_list(
            "SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8  , SIP  /    2.0   / UDP  192.168.255.111   ; branch= z9hG4bK30239",
        )
        .unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].branch(), Some("z9hG4bK30239"));
        let v = Via::parse("SIP/2.0/UDP [2001:db8::9:1]:5070;rport").unwrap();
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.rport(), Some(None));
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;,;,,").is_none());
        assert!(Via::parse_list("SIP/2.0/UDP 192.0.2.15;;,;,,").is_none());
        assert!(Via::parse("SIP/2.0/UDP").is_none());
        assert!(Via::parse("SIP/2.0/UDP a b").is_none());
    }

    #[test]
    fn print_round_trip() {
        let mut v =
            Via::parse("SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds;rport").unwrap();
        v.set_param("received", Some("192.0.2.1"));
        v.set_param("rport", Some("5061"));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds;rport=5061;received=192.0.2.1"
        );
        assert_eq!(Via::parse(&v.to_string()), Some(v));
    }
}
