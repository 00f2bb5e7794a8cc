//! Small lexical helpers shared by the typed headers (RFC 3261 25.1).

/// A `;name[=value]` parameter; the value is kept as received (quotes included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Parameter name as received.
    pub name: String,
    /// Parameter value as received, `None` for a flag parameter.
    pub value: Option<String>,
}

impl Param {
    /// A parameter with a value.
    pub fn new(name: &str, value: Option<&str>) -> Self {
        Param {
            name: name.to_owned(),
            value: value.map(str::to_owned),
        }
    }
}

/// Finds a parameter by case-insensitive name.
pub fn find_param<'a>(params: &'a [Param], name: &str) -> Option<&'a Param> {
    params.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// Writes `;name[=value]` for each parameter.
pub fn write_params(out: &mut String, params: &[Param]) {
    for p in params {
        out.push(';');
        out.push_str(&p.name);
        if let Some(v) = &p.value {
            out.push('=');
            out.push_str(v);
        }
    }
}

/// RFC 3261 `token` characters.
pub fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// Whether `s` is a non-empty token.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
}

/// Linear white space inside an unfolded header value.
pub fn is_lws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Parses a quoted string at the start of `s` (which must begin with `"`).
/// Returns the raw quoted text (quotes included) and the rest.
pub fn take_quoted(s: &str) -> Option<(&str, &str)> {
    let mut chars = s.char_indices();
    if chars.next()?.1 != '"' {
        return None;
    }
    let mut escaped = false;
    for (i, c) in chars {
        if escaped {
            if c == '\r' || c == '\n' {
                return None;
            }
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Some((s.get(..=i)?, s.get(i + 1..)?));
        }
    }
    None
}

/// Removes the quotes and backslash escapes of a quoted string.
pub fn unquote(raw: &str) -> String {
    let inner = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw);
    let mut out = String::with_capacity(inner.len());
    let mut escaped = false;
    for c in inner.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters allowed in a parameter name or unquoted value: token characters plus the
/// extra ones URI and header parameters permit (`[]/:&+$` and IPv6 brackets).
fn is_param_char(c: char) -> bool {
    is_token_char(c) || "[]/:&+$@".contains(c)
}

/// Parses `*( SEMI param )` where `s` is empty or starts (after LWS) with `;`.
/// LWS is allowed around `;` and `=`; an empty or malformed parameter yields `None`.
pub fn parse_params(s: &str) -> Option<Vec<Param>> {
    let mut params = Vec::new();
    let mut rest = s.trim_matches(is_lws);
    while !rest.is_empty() {
        rest = rest.strip_prefix(';')?.trim_start_matches(is_lws);
        let name_end = rest.find(|c: char| !is_param_char(c)).unwrap_or(rest.len());
        let name = rest.get(..name_end)?;
        if name.is_empty() {
            return None;
        }
        rest = rest.get(name_end..)?.trim_start_matches(is_lws);
        let mut value = None;
        if let Some(r) = rest.strip_prefix('=') {
            let r = r.trim_start_matches(is_lws);
            if r.starts_with('"') {
                let (q, after) = take_quoted(r)?;
                value = Some(q.to_owned());
                rest = after;
            } else {
                let end = r.find(|c: char| !is_param_char(c)).unwrap_or(r.len());
                let v = r.get(..end)?;
                if v.is_empty() {
                    return None;
                }
                value = Some(v.to_owned());
                rest = r.get(end..)?;
            }
            rest = rest.trim_start_matches(is_lws);
        }
        params.push(Param {
            name: name.to_owned(),
            value,
        });
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_with_lws() {
        let p = parse_params(" ;  branch  =   z9hG4bK9ikj8 ;lr; q = 0.33").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].value.as_deref(), Some("z9hG4bK9ikj8"));
        assert_eq!(p[1].value, None);
        assert!(parse_params(";;").is_none());
        assert!(parse_params(";a=").is_none());
        assert_eq!(
            parse_params(r#";x="a;b\"c""#).unwrap()[0].value.as_deref(),
            Some(r#""a;b\"c""#)
        );
    }

    #[test]
    fn quoted() {
        let (q, rest) = take_quoted(r#""J Rosenberg \\\"" <sip:a@b>"#).unwrap();
        assert_eq!(q, r#""J Rosenberg \\\"""#);
        assert_eq!(rest, " <sip:a@b>");
        assert_eq!(unquote(q), r#"J Rosenberg \""#);
        assert!(take_quoted("\"open").is_none());
    }
}
