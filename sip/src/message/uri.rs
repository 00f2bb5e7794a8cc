//! URIs: SIP/SIPS URIs parsed into parts (RFC 3261 19.1), other schemes (tel:, im:, ...)
//! kept opaque after a scheme check (RFC 3986 3.1).

use super::text::{Param, find_param, write_params};
use std::fmt;
use std::net::Ipv6Addr;

/// A URI as found in a Request-Line or inside `<...>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    /// `sip:` or `sips:`.
    Sip(SipUri),
    /// Any other scheme, e.g. `tel:+1-201-555-0123`.
    Other {
        /// The scheme as received.
        scheme: String,
        /// Everything after the first `:`.
        opaque: String,
    },
}

/// A SIP or SIPS URI split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// `user[:password]` as received (escapes kept).
    pub userinfo: Option<String>,
    /// Host name, IPv4 address or bracketed IPv6 reference.
    pub host: String,
    /// Port, if written.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`).
    pub params: Vec<Param>,
    /// The `?headers` part without the `?`.
    pub headers: Option<String>,
}

impl SipUri {
    /// The user part (before any `:password`).
    pub fn user(&self) -> Option<&str> {
        self.userinfo
            .as_deref()
            .map(|u| u.split_once(':').map_or(u, |(user, _)| user))
    }

    /// A URI parameter by name.
    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    /// `host[:port]` as written.
    pub fn host_port(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }
}

fn is_uri_char(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"')
}

/// Validates a host: hostname/IPv4 characters, or a bracketed IPv6 address.
pub fn valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[') {
        return inner
            .strip_suffix(']')
            .is_some_and(|a| a.parse::<Ipv6Addr>().is_ok());
    }
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !host.starts_with('.')
        && !host.starts_with('-')
}

/// Splits `host[:port]`, validating both.
pub fn parse_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']')?;
        let host = s.get(..=end)?;
        let rest = s.get(end + 1..)?;
        match rest.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if rest.is_empty() => (host, None),
            None => return None,
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if !valid_host(host) {
        return None;
    }
    let port = match port {
        Some(p) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok()?)
        }
        Some(_) => return None,
        None => None,
    };
    Some((host.to_owned(), port))
}

impl Uri {
    /// Parses a URI; `None` when it is not a well-formed absolute URI.
    pub fn parse(s: &str) -> Option<Uri> {
        if s.is_empty() || !s.chars().all(is_uri_char) {
            return None;
        }
        let (scheme, rest) = s.split_once(':')?;
        let mut sc = scheme.chars();
        if !sc.next()?.is_ascii_alphabetic()
            || !sc.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return None;
        }
        let secure = if scheme.eq_ignore_ascii_case("sip") {
            false
        } else if scheme.eq_ignore_ascii_case("sips") {
            true
        } else {
            if rest.is_empty() {
                return None;
            }
            return Some(Uri::Other {
                scheme: scheme.to_owned(),
                opaque: rest.to_owned(),
            });
        };
        let (userinfo, rest) = match rest.split_once('@') {
            Some((u, r)) => {
                if u.is_empty() {
                    return None;
                }
                (Some(u.to_owned()), r)
            }
            None => (None, rest),
        };
        let (before_headers, headers) = match rest.split_once('?') {
            Some((b, h)) => {
                if h.is_empty() {
                    return None;
                }
                (b, Some(h.to_owned()))
            }
            None => (rest, None),
        };
        let mut parts = before_headers.split(';');
        let (host, port) = parse_host_port(parts.next()?)?;
        let mut params = Vec::new();
        for p in parts {
            let (name, value) = match p.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (p, None),
            };
            if name.is_empty() || value.is_some_and(str::is_empty) {
                return None;
            }
            params.push(Param::new(name, value));
        }
        Some(Uri::Sip(SipUri {
            secure,
            userinfo,
            host,
            port,
            params,
            headers,
        }))
    }

    /// The scheme, lower-cased for sip/sips.
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Other { scheme, .. } => scheme,
        }
    }

    /// The SIP URI, when this is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other { .. } => None,
        }
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::from(if self.secure { "sips:" } else { "sip:" });
        if let Some(u) = &self.userinfo {
            s.push_str(u);
            s.push('@');
        }
        s.push_str(&self.host_port());
        write_params(&mut s, &self.params);
        if let Some(h) = &self.headers {
            s.push('?');
            s.push_str(h);
        }
        f.write_str(&s)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Other { scheme, opaque } => write!(f, "{scheme}:{opaque}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uris() {
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        let s = u.as_sip().unwrap();
        assert_eq!(s.userinfo.as_deref(), Some("user;par=u%40example.net"));
        assert_eq!(s.host, "example.com");
        let u = Uri::parse("sips:[2001:db8::10]:5061;transport=tcp;lr?h=v").unwrap();
        let s = u.as_sip().unwrap();
        assert_eq!(s.port, Some(5061));
        assert!(s.param("LR").is_some());
        assert_eq!(
            u.to_string(),
            "sips:[2001:db8::10]:5061;transport=tcp;lr?h=v"
        );
        let odd = "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com";
        assert_eq!(
            Uri::parse(odd).unwrap().as_sip().unwrap().host,
            "example.com"
        );
    }

    #[test]
    fn other_and_bad() {
        assert_eq!(Uri::parse("tel:+1-201-555-0123").unwrap().scheme(), "tel");
        assert!(Uri::parse("<sip:a@b>").is_none());
        assert!(Uri::parse("sip:a@b c").is_none());
        assert!(Uri::parse("sip:").is_none());
        assert!(Uri::parse("sip:a@host:99999").is_none());
        assert!(Uri::parse("sip:a@[::1").is_none());
        assert!(Uri::parse("1x:abc").is_none());
    }
}
