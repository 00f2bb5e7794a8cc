//! Header fields kept in arrival order, with compact forms mapped to full names.

/// One header field line: canonical name and raw (unfolded, trimmed) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Canonical name (full form, canonical case for known names).
    pub name: String,
    /// Raw value with folding replaced by a single space and outer whitespace trimmed.
    pub value: String,
}

/// Well-known header names with their compact forms (RFC 3261 7.3.3 and later RFCs).
const KNOWN: &[(&str, Option<&str>)] = &[
    ("Accept", None),
    ("Accept-Contact", Some("a")),
    ("Accept-Encoding", None),
    ("Accept-Language", None),
    ("Alert-Info", None),
    ("Allow", None),
    ("Allow-Events", Some("u")),
    ("Authentication-Info", None),
    ("Authorization", None),
    ("Call-ID", Some("i")),
    ("Call-Info", None),
    ("Contact", Some("m")),
    ("Content-Disposition", None),
    ("Content-Encoding", Some("e")),
    ("Content-Language", None),
    ("Content-Length", Some("l")),
    ("Content-Type", Some("c")),
    ("CSeq", None),
    ("Date", None),
    ("Error-Info", None),
    ("Event", Some("o")),
    ("Expires", None),
    ("From", Some("f")),
    ("Identity", Some("y")),
    ("In-Reply-To", None),
    ("Max-Forwards", None),
    ("Min-Expires", None),
    ("MIME-Version", None),
    ("Organization", None),
    ("Path", None),
    ("Priority", None),
    ("Proxy-Authenticate", None),
    ("Proxy-Authorization", None),
    ("Proxy-Require", None),
    ("RAck", None),
    ("Record-Route", None),
    ("Refer-To", Some("r")),
    ("Referred-By", Some("b")),
    ("Reject-Contact", Some("j")),
    ("Reply-To", None),
    ("Request-Disposition", Some("d")),
    ("Require", None),
    ("Retry-After", None),
    ("Route", None),
    ("RSeq", None),
    ("Server", None),
    ("Session-Expires", Some("x")),
    ("Subject", Some("s")),
    ("Supported", Some("k")),
    ("Timestamp", None),
    ("To", Some("t")),
    ("Unsupported", None),
    ("User-Agent", None),
    ("Via", Some("v")),
    ("Warning", None),
    ("WWW-Authenticate", None),
];

/// Maps a received header name (any case, compact or full) to its canonical spelling.
pub fn canonical_name(name: &str) -> String {
    for (full, compact) in KNOWN {
        if full.eq_ignore_ascii_case(name) || compact.is_some_and(|c| c.eq_ignore_ascii_case(name))
        {
            return (*full).to_owned();
        }
    }
    name.to_owned()
}

fn same_name(stored: &str, asked: &str) -> bool {
    stored.eq_ignore_ascii_case(asked) || canonical_name(asked).eq_ignore_ascii_case(stored)
}

/// Header fields in the order they arrived (a proxy must keep the order of same-name fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    list: Vec<Header>,
}

impl Headers {
    /// An empty header list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a header (name is canonicalised).
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.list.push(Header {
            name: canonical_name(name),
            value: value.into(),
        });
    }

    /// Inserts a header before all others of the list.
    pub fn push_front(&mut self, name: &str, value: impl Into<String>) {
        self.list.insert(
            0,
            Header {
                name: canonical_name(name),
                value: value.into(),
            },
        );
    }

    /// The first value of header `name` (compact or full name, any case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_all(name).next()
    }

    /// All values of header `name` in arrival order (one per header line).
    pub fn get_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + use<'a> {
        let canon = canonical_name(name);
        self.list
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(&canon))
            .map(|h| h.value.as_str())
    }

    /// The number of header lines named `name`.
    pub fn count(&self, name: &str) -> usize {
        self.get_all(name).count()
    }

    /// Whether a header `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Removes every header `name`; returns how many were removed.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.list.len();
        self.list.retain(|h| !same_name(&h.name, name));
        before - self.list.len()
    }

    /// Replaces the first header `name` (keeping its position) and removes the others,
    /// or appends it when absent.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        let mut seen = false;
        self.list.retain_mut(|h| {
            if same_name(&h.name, name) {
                if seen {
                    return false;
                }
                seen = true;
                h.value.clone_from(&value);
            }
            true
        });
        if !seen {
            self.push(name, value);
        }
    }

    /// Mutable access to the first header line named `name`.
    pub fn first_mut(&mut self, name: &str) -> Option<&mut Header> {
        self.list.iter_mut().find(|h| same_name(&h.name, name))
    }

    /// All header lines in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.list.iter()
    }

    /// The number of header lines.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are no header lines.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Splits a header value at commas that are outside quoted strings and `<...>`
/// (RFC 3261 7.3.1: several values of one header may be joined by commas).
/// Returns trimmed, non-empty pieces only when every piece is non-empty; an empty piece
/// (as in `a,,b`) yields `None`.
pub fn split_commas(value: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_quote = false;
    let mut escaped = false;
    let mut in_angle = false;
    for (i, c) in value.char_indices() {
        if in_quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quote = false;
            }
            continue;
        }
        match c {
            '"' => in_quote = true,
            '<' => in_angle = true,
            '>' => in_angle = false,
            ',' if !in_angle => {
                let piece = value.get(start..i)?.trim();
                if piece.is_empty() {
                    return None;
                }
                out.push(piece);
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = value.get(start..)?.trim();
    if last.is_empty() {
        return None;
    }
    out.push(last);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case() {
        let mut h = Headers::new();
        h.push("v", "a");
        h.push("VIA", "b");
        h.push("call-id", "x");
        assert_eq!(h.get_all("Via").collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(h.get("i"), Some("x"));
        assert_eq!(h.iter().next().map(|h| h.name.as_str()), Some("Via"));
        h.set("Via", "c");
        assert_eq!(h.get_all("via").collect::<Vec<_>>(), vec!["c"]);
        assert_eq!(h.remove("Call-ID"), 1);
    }

    #[test]
    fn commas() {
        assert_eq!(
            split_commas(r#""a, \"b" <sip:x@y>, <sip:z,w>"#),
            Some(vec![r#""a, \"b" <sip:x@y>"#, "<sip:z,w>"])
        );
        assert_eq!(split_commas("a,,b"), None);
    }
}
