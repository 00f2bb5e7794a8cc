//! name-addr / addr-spec values: From, To, Contact, Route, Record-Route (RFC 3261 20.10, 20.20, 20.39).

use super::headers::split_commas;
use super::text::{
    Param, find_param, is_lws, is_token, parse_params, take_quoted, unquote, write_params,
};
use super::uri::Uri;
use std::fmt;

/// `[display-name] <uri> *(;param)` or `uri *(;param)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name as received (a quoted string keeps its quotes and escapes).
    pub display: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Whether the URI was enclosed in `<...>`.
    pub bracketed: bool,
    /// Header parameters after the URI (tag, expires, q, ...).
    pub params: Vec<Param>,
}

impl NameAddr {
    /// A bracketed name-addr without display name or parameters.
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display: None,
            uri,
            bracketed: true,
            params: Vec::new(),
        }
    }

    /// Parses one value. Escaped quotes in quoted display names are handled; an addr-spec
    /// form whose URI holds `,`, `?` or `;` before its parameters is rejected (RFC 3261 20).
    pub fn parse(s: &str) -> Option<NameAddr> {
        let s = s.trim_matches(is_lws);
        let (display, rest) = if s.starts_with('"') {
            let (q, rest) = take_quoted(s)?;
            let rest = rest.trim_start_matches(is_lws);
            if !rest.starts_with('<') {
                return None;
            }
            (Some(q.to_owned()), rest)
        } else if let Some(i) = s.find('<') {
            let name = s.get(..i)?.trim_matches(is_lws);
            if !name.is_empty() && !name.split(is_lws).filter(|w| !w.is_empty()).all(is_token) {
                return None;
            }
            let display = (!name.is_empty()).then(|| name.to_owned());
            (display, s.get(i..)?)
        } else {
            let end = s.find(';').unwrap_or(s.len());
            let uri_str = s.get(..end)?.trim_end_matches(is_lws);
            if uri_str.contains([',', '?']) {
                return None;
            }
            let uri = Uri::parse(uri_str)?;
            let params = parse_params(s.get(end..)?)?;
            return Some(NameAddr {
                display: None,
                uri,
                bracketed: false,
                params,
            });
        };
        let inner = rest.strip_prefix('<')?;
        let close = inner.find('>')?;
        let uri = Uri::parse(inner.get(..close)?)?;
        let params = parse_params(inner.get(close + 1..)?)?;
        Some(NameAddr {
            display,
            uri,
            bracketed: true,
            params,
        })
    }

    /// Parses a comma-separated list of values (Contact, Route, Record-Route).
    pub fn parse_list(value: &str) -> Option<Vec<NameAddr>> {
        split_commas(value)?
            .into_iter()
            .map(NameAddr::parse)
            .collect()
    }

    /// The display name with quotes and escapes removed.
    pub fn display_name(&self) -> Option<String> {
        self.display.as_deref().map(|d| {
            if d.starts_with('"') {
                unquote(d)
            } else {
                d.to_owned()
            }
        })
    }

    /// A header parameter's value (`Some(None)` for a flag).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name).map(|p| p.value.as_deref())
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").flatten()
    }

    /// Sets (or adds) a header parameter.
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
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        if let Some(d) = &self.display {
            s.push_str(d);
            s.push(' ');
        }
        if self.bracketed || self.display.is_some() {
            s.push('<');
            s.push_str(&self.uri.to_string());
            s.push('>');
        } else {
            s.push_str(&self.uri.to_string());
        }
        write_params(&mut s, &self.params);
        f.write_str(&s)
    }
}

/// The value of the Contact header(s) of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    /// `Contact: *` (REGISTER removal of all bindings, RFC 3261 10.2.2).
    Wildcard,
    /// The listed contacts in order.
    List(Vec<NameAddr>),
}

impl Contacts {
    /// Parses all Contact header values; `*` must stand alone.
    pub fn parse<'a>(values: impl Iterator<Item = &'a str>) -> Option<Contacts> {
        let values: Vec<&str> = values.collect();
        if values.iter().any(|v| v.trim() == "*") {
            return (values.len() == 1).then_some(Contacts::Wildcard);
        }
        let mut list = Vec::new();
        for v in values {
            list.extend(NameAddr::parse_list(v)?);
        }
        Some(Contacts::List(list))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_quotes_and_lws() {
        let n = NameAddr::parse(
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com> ;  tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(n.tag(), Some("98asjd8"));
        assert_eq!(n.display_name().as_deref(), Some(r#"J Rosenberg \""#));
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display.as_deref(), Some("caller"));
        let n =
            NameAddr::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(n.tag(), Some("1918181833n"));
        assert!(!n.bracketed);
        assert_eq!(
            n.to_string(),
            "sip:vivekg@chair-dnrc.example.com;tag=1918181833n"
        );
    }

    #[test]
    fn rejects() {
        assert!(NameAddr::parse(r#""Mr. J. User <sip:j.user@example.com>"#).is_none());
        assert!(NameAddr::parse("Bell, Alexander <sip:a.g.bell@example.com>;tag=43").is_none());
        assert!(
            NameAddr::parse("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>").is_some()
        );
        assert!(NameAddr::parse("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_none());
        assert!(NameAddr::parse(r#""Watson, Thomas" < sip:t.watson@example.org >"#).is_none());
    }

    #[test]
    fn contacts() {
        let c =
            Contacts::parse(["<sip:a@h1>;expires=60, \"x, y\" <sip:b@h2>", "sip:c@h3"].into_iter())
                .unwrap();
        assert!(matches!(c, Contacts::List(ref l) if l.len() == 3));
        assert_eq!(Contacts::parse(["*"].into_iter()), Some(Contacts::Wildcard));
        assert_eq!(Contacts::parse(["*", "<sip:a@b>"].into_iter()), None);
    }
}
