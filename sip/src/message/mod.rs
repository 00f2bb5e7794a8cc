//! SIP messages: parsing from bytes (RFC 3261 7), validation of the mandatory headers
//! (RFC 3261 8.1.1, 8.2.2), and printing back to bytes.
//!
//! We wrote this parser ourselves instead of wrapping `ezk-sip-types`: its request line
//! only accepts sip/sips URIs (RFC 3261 allows any absoluteURI, e.g. `tel:`), its
//! `Headers` merges all same-name fields into the first one's position, and its quoted
//! string parser rejects escaped quotes in display names. Patching all three meant
//! replacing most of what we would use from it.

mod cseq;
mod framer;
mod headers;
mod method;
mod name_addr;
mod text;
mod uri;
mod via;

pub use cseq::CSeq;
pub use framer::{Frame, FrameError, StreamFramer};
pub use headers::{Header, Headers, canonical_name, split_commas};
pub use method::Method;
pub use name_addr::{Contacts, NameAddr};
pub use text::{Param, is_token, take_quoted, unquote};
pub use uri::{SipUri, Uri, parse_host_port};
pub use via::{MAGIC_COOKIE, Via};

/// A parsed SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method of the Request-Line.
    pub method: Method,
    /// The Request-URI.
    pub uri: Uri,
    /// Header fields in arrival order.
    pub headers: Headers,
    /// The body (exactly Content-Length bytes).
    pub body: Vec<u8>,
}

/// A parsed SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code, 100..=699.
    pub status: u16,
    /// Reason phrase (may be empty).
    pub reason: String,
    /// Header fields in arrival order.
    pub headers: Headers,
    /// The body (exactly Content-Length bytes).
    pub body: Vec<u8>,
}

/// A SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipMessage {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

/// Why a message was rejected; `Display` is usable as a 400 reason phrase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// Nothing but whitespace.
    #[error("Empty message")]
    Empty,
    /// No empty line ends the header section.
    #[error("Missing empty line after headers")]
    NoHeadEnd,
    /// The Request-Line is not `Method SP Request-URI SP SIP-Version`.
    #[error("Bad Request-Line")]
    BadRequestLine,
    /// The Status-Line is not `SIP/2.0 SP 3DIGIT SP Reason`.
    #[error("Bad Status-Line")]
    BadStatusLine,
    /// The Request-URI does not parse (or carries `?headers`).
    #[error("Bad Request-URI")]
    BadRequestUri,
    /// A SIP version other than 2.0 (answer 505).
    #[error("Version Not Supported")]
    BadVersion,
    /// A header line without `name:` or with a non-token name.
    #[error("Malformed header line")]
    BadHeaderLine,
    /// Header bytes are not UTF-8.
    #[error("Header is not UTF-8")]
    NotUtf8,
    /// A mandatory header is missing.
    #[error("Missing {0} header")]
    MissingHeader(&'static str),
    /// A single-valued header appears more than once.
    #[error("Multiple {0} headers")]
    MultipleHeader(&'static str),
    /// A header's value does not parse.
    #[error("Bad {0}")]
    BadHeader(&'static str),
    /// The CSeq method differs from the request method (RFC 3261 8.1.1.5).
    #[error("CSeq method does not match request method")]
    CSeqMismatch,
    /// Content-Length is larger than the bytes that follow the header section.
    #[error("Content-Length larger than message")]
    Truncated,
    /// The message exceeds the size limit.
    #[error("Message too large")]
    TooLarge,
}

/// What could still be read from a message that failed to parse, enough to build a 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partial {
    /// Whether the start line looked like a request (not `SIP/...`).
    pub is_request: bool,
    /// The first token of a request's start line, when it is a token.
    pub method: Option<Method>,
    /// Every header line that could be split into name and value.
    pub headers: Headers,
}

/// A message that could not be accepted, with a reason and what was readable of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    /// Why the message was rejected.
    pub reason: Reason,
    /// The readable part, `None` when not even the header section could be split.
    pub partial: Option<Box<Partial>>,
}

impl ParseError {
    fn bare(reason: Reason) -> Self {
        ParseError {
            reason,
            partial: None,
        }
    }

    /// The status code to answer with: 505 for an unsupported version, otherwise 400.
    pub fn status(&self) -> u16 {
        match self.reason {
            Reason::BadVersion => 505,
            Reason::TooLarge => 513,
            _ => 400,
        }
    }

    /// A reason phrase for the error response, e.g. `Missing Call-ID header`.
    pub fn reason_phrase(&self) -> String {
        self.reason.to_string()
    }
}

/// Typed accessors over the headers every request and response carries.
impl Headers {
    /// All Via values (comma-joined values split), top first; `None` if any is malformed.
    pub fn vias(&self) -> Option<Vec<Via>> {
        let mut out = Vec::new();
        for v in self.get_all("Via") {
            out.extend(Via::parse_list(v)?);
        }
        Some(out)
    }

    /// The topmost Via.
    pub fn top_via(&self) -> Option<Via> {
        let first = self.get("Via")?;
        Via::parse(split_commas(first)?.first()?)
    }

    /// Replaces the topmost Via value, keeping any other values of the same header line.
    pub fn set_top_via(&mut self, via: &Via) {
        match self.first_mut("Via") {
            Some(h) => {
                let rest: Vec<String> = split_commas(&h.value)
                    .map(|p| p.iter().skip(1).map(|s| (*s).to_owned()).collect())
                    .unwrap_or_default();
                let mut value = via.to_string();
                for r in rest {
                    value.push_str(", ");
                    value.push_str(&r);
                }
                h.value = value;
            }
            None => self.push_front("Via", via.to_string()),
        }
    }

    /// Removes the topmost Via value (a proxy does this on responses, RFC 3261 16.7).
    pub fn pop_top_via(&mut self) -> Option<Via> {
        let top = self.top_via()?;
        let h = self.first_mut("Via")?;
        let rest: Vec<String> = split_commas(&h.value)?
            .iter()
            .skip(1)
            .map(|s| (*s).to_owned())
            .collect();
        if rest.is_empty() {
            let idx = self.iter().position(|h| h.name == "Via")?;
            let mut kept = Headers::new();
            for (i, h) in self.iter().enumerate() {
                if i != idx {
                    kept.push(&h.name, h.value.clone());
                }
            }
            *self = kept;
        } else {
            h.value = rest.join(", ");
        }
        Some(top)
    }

    /// The Call-ID value.
    pub fn call_id(&self) -> Option<&str> {
        self.get("Call-ID")
    }

    /// The parsed CSeq.
    pub fn cseq(&self) -> Option<CSeq> {
        CSeq::parse(self.get("CSeq")?)
    }

    /// The parsed From.
    pub fn from(&self) -> Option<NameAddr> {
        NameAddr::parse(self.get("From")?)
    }

    /// The parsed To.
    pub fn to(&self) -> Option<NameAddr> {
        NameAddr::parse(self.get("To")?)
    }

    /// The parsed Max-Forwards (0..=255).
    pub fn max_forwards(&self) -> Option<u8> {
        parse_small_number(self.get("Max-Forwards")?, 255).and_then(|n| u8::try_from(n).ok())
    }

    /// The parsed Expires (delta-seconds; values over 2^32-1 are clamped, RFC 3261 20.19).
    pub fn expires(&self) -> Option<u32> {
        parse_delta_seconds(self.get("Expires")?)
    }

    /// All Contact values, or `None` when absent or malformed.
    pub fn contacts(&self) -> Option<Contacts> {
        if !self.contains("Contact") {
            return None;
        }
        Contacts::parse(self.get_all("Contact"))
    }
}

/// Parses delta-seconds; values over 2^32-1 are clamped to 2^32-1.
pub fn parse_delta_seconds(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(s.parse::<u32>().unwrap_or(u32::MAX))
}

fn parse_small_number(s: &str, max: u64) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let t = s.trim_start_matches('0');
    if t.len() > 12 {
        return None;
    }
    let n = if t.is_empty() {
        0
    } else {
        t.parse::<u64>().ok()?
    };
    (n <= max).then_some(n)
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~()<>:\\\"/[]?{}".contains(c)
}

/// Whether a Call-ID is `word ["@" word]` (RFC 3261 25.1).
pub fn valid_call_id(s: &str) -> bool {
    let mut parts = s.split('@');
    let ok = |w: Option<&str>| w.is_some_and(|w| !w.is_empty() && w.chars().all(is_word_char));
    let first = parts.next();
    let second = parts.next();
    ok(first) && (second.is_none() || ok(second)) && parts.next().is_none()
}

fn single<'a>(h: &'a Headers, name: &'static str) -> Result<&'a str, Reason> {
    match h.count(name) {
        0 => Err(Reason::MissingHeader(name)),
        1 => h.get(name).ok_or(Reason::MissingHeader(name)),
        _ => Err(Reason::MultipleHeader(name)),
    }
}

/// Checks the headers every request and response must carry (RFC 3261 8.1.1).
fn validate_common(h: &Headers) -> Result<(), Reason> {
    if !h.contains("Via") {
        return Err(Reason::MissingHeader("Via"));
    }
    if h.vias().is_none() {
        return Err(Reason::BadHeader("Via"));
    }
    for name in ["From", "To"] {
        let v = single(h, name)?;
        let na = NameAddr::parse(v).ok_or(Reason::BadHeader(name))?;
        // From/To are single name-addrs: an unbracketed comma means a list.
        if split_commas(v).is_none_or(|p| p.len() != 1) && !na.bracketed {
            return Err(Reason::BadHeader(name));
        }
    }
    if !valid_call_id(single(h, "Call-ID")?) {
        return Err(Reason::BadHeader("Call-ID"));
    }
    CSeq::parse(single(h, "CSeq")?).ok_or(Reason::BadHeader("CSeq"))?;
    if h.contains("Contact") && h.contacts().is_none() {
        return Err(Reason::BadHeader("Contact"));
    }
    // SIP-date is an RFC 1123 date, always in GMT (RFC 3261 20.17).
    if h.get_all("Date").any(|d| !d.trim_end().ends_with(" GMT")) {
        return Err(Reason::BadHeader("Date"));
    }
    match h.count("Max-Forwards") {
        0 => {}
        1 => {
            h.max_forwards().ok_or(Reason::BadHeader("Max-Forwards"))?;
        }
        _ => return Err(Reason::MultipleHeader("Max-Forwards")),
    }
    Ok(())
}

impl Request {
    /// Validates mandatory headers and the CSeq method (RFC 3261 8.2.2 / 8.1.1.5).
    pub fn validate(&self) -> Result<(), Reason> {
        validate_common(&self.headers)?;
        let cseq = self.headers.cseq().ok_or(Reason::BadHeader("CSeq"))?;
        if cseq.method != self.method {
            return Err(Reason::CSeqMismatch);
        }
        Ok(())
    }

    /// Prints the request; Content-Length is set to the body length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} SIP/2.0\r\n", self.method, self.uri).into_bytes();
        write_rest(&mut out, &self.headers, &self.body);
        out
    }
}

impl Response {
    /// A response with no headers and no body.
    pub fn new(status: u16, reason: &str) -> Response {
        Response {
            status,
            reason: reason.to_owned(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// Validates mandatory headers.
    pub fn validate(&self) -> Result<(), Reason> {
        validate_common(&self.headers)
    }

    /// Prints the response; Content-Length is set to the body length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let reason: String = self
            .reason
            .chars()
            .filter(|c| *c != '\r' && *c != '\n')
            .collect();
        let mut out = format!("SIP/2.0 {} {}\r\n", self.status, reason).into_bytes();
        write_rest(&mut out, &self.headers, &self.body);
        out
    }
}

impl SipMessage {
    /// The headers of either kind.
    pub fn headers(&self) -> &Headers {
        match self {
            SipMessage::Request(r) => &r.headers,
            SipMessage::Response(r) => &r.headers,
        }
    }

    /// Prints the message.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            SipMessage::Request(r) => r.to_bytes(),
            SipMessage::Response(r) => r.to_bytes(),
        }
    }
}

fn write_rest(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    let mut wrote_length = false;
    for h in headers.iter() {
        if h.name == "Content-Length" {
            if wrote_length {
                continue;
            }
            wrote_length = true;
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
            continue;
        }
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        for b in h.value.bytes() {
            // Never let a value break the framing.
            out.push(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
        out.extend_from_slice(b"\r\n");
    }
    if !wrote_length {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// The split head of a message: start line, header lines, offset of the body.
struct Head<'a> {
    start: &'a [u8],
    lines: Vec<Vec<u8>>,
    body_start: usize,
}

/// Finds the end of the header section; lines end in CRLF or a bare LF.
/// Continuation lines (leading SP/HT) are joined to the previous line with one space.
fn split_head(bytes: &[u8]) -> Result<Head<'_>, Reason> {
    let mut pos = bytes
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .ok_or(Reason::Empty)?;
    let mut start: Option<&[u8]> = None;
    let mut lines: Vec<Vec<u8>> = Vec::new();
    loop {
        let rel = bytes
            .get(pos..)
            .and_then(|r| r.iter().position(|b| *b == b'\n'));
        let nl = pos + rel.ok_or(Reason::NoHeadEnd)?;
        let mut line = bytes.get(pos..nl).ok_or(Reason::NoHeadEnd)?;
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
        pos = nl + 1;
        if start.is_none() {
            start = Some(line);
            continue;
        }
        if line.is_empty() {
            return Ok(Head {
                start: start.unwrap_or_default(),
                lines,
                body_start: pos,
            });
        }
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            match lines.last_mut() {
                Some(prev) => {
                    let trimmed = line.iter().position(|b| *b != b' ' && *b != b'\t');
                    if let Some(t) = trimmed {
                        prev.push(b' ');
                        prev.extend_from_slice(line.get(t..).unwrap_or_default());
                    }
                }
                // A folded first header line: glue it to the start line's error path.
                None => lines.push(line.to_vec()),
            }
        } else {
            lines.push(line.to_vec());
        }
    }
}

fn parse_header_line(line: &[u8]) -> Result<(String, String), Reason> {
    let line = std::str::from_utf8(line).map_err(|_| Reason::NotUtf8)?;
    // A bare CR is no line end and no header text either.
    if line.contains('\r') {
        return Err(Reason::BadHeaderLine);
    }
    let (name, value) = line.split_once(':').ok_or(Reason::BadHeaderLine)?;
    let name = name.trim_end_matches(text::is_lws);
    if !is_token(name) {
        return Err(Reason::BadHeaderLine);
    }
    Ok((name.to_owned(), value.trim_matches(text::is_lws).to_owned()))
}

enum StartLine {
    Request(Method, Uri),
    Response(u16, String),
}

fn parse_start_line(line: &[u8]) -> Result<StartLine, Reason> {
    let is_response = line.starts_with(b"SIP/");
    if line.contains(&b'\r') {
        return Err(if is_response {
            Reason::BadStatusLine
        } else {
            Reason::BadRequestLine
        });
    }
    let line = std::str::from_utf8(line).map_err(|_| {
        if is_response {
            Reason::BadStatusLine
        } else {
            Reason::BadRequestLine
        }
    })?;
    if is_response {
        let (version, rest) = line.split_once(' ').ok_or(Reason::BadStatusLine)?;
        if !version.eq_ignore_ascii_case("SIP/2.0") {
            return Err(Reason::BadVersion);
        }
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.chars().all(|c| c.is_ascii_digit()) {
            return Err(Reason::BadStatusLine);
        }
        let code: u16 = code.parse().map_err(|_| Reason::BadStatusLine)?;
        if !(100..=699).contains(&code) {
            return Err(Reason::BadStatusLine);
        }
        return Ok(StartLine::Response(code, reason.to_owned()));
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Reason::BadRequestLine);
    };
    if !is_token(method) || uri.is_empty() {
        return Err(Reason::BadRequestLine);
    }
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(
            if version.len() > 4
                && version
                    .get(..4)
                    .is_some_and(|v| v.eq_ignore_ascii_case("SIP/"))
            {
                Reason::BadVersion
            } else {
                Reason::BadRequestLine
            },
        );
    }
    let uri = Uri::parse(uri).ok_or(Reason::BadRequestUri)?;
    if uri.as_sip().is_some_and(|u| u.headers.is_some()) {
        return Err(Reason::BadRequestUri);
    }
    Ok(StartLine::Request(Method::from_token(method), uri))
}

/// Parses one datagram (or one framed stream message) into a request or response.
///
/// The body is Content-Length bytes; bytes after it are ignored (RFC 3261 18.3). Without
/// Content-Length the body runs to the end of `bytes` (allowed on datagrams only; the
/// stream framer enforces it). Mandatory headers are checked for both kinds, and for
/// requests the CSeq method must equal the request method.
pub fn parse_message(bytes: &[u8]) -> Result<SipMessage, ParseError> {
    let head = split_head(bytes).map_err(ParseError::bare)?;
    let is_request = !head.start.starts_with(b"SIP/");
    let mut headers = Headers::new();
    let mut first_error = None;
    for line in &head.lines {
        match parse_header_line(line) {
            Ok((name, value)) => headers.push(&name, value),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let start = parse_start_line(head.start);
    let method_token = head
        .start
        .split(|b| *b == b' ')
        .next()
        .and_then(|m| std::str::from_utf8(m).ok())
        .filter(|m| is_request && is_token(m))
        .map(Method::from_token);
    let fail = |reason: Reason, headers: Headers| ParseError {
        reason,
        partial: Some(Box::new(Partial {
            is_request,
            method: method_token.clone(),
            headers,
        })),
    };
    let start = match start {
        Ok(s) => s,
        Err(e) => return Err(fail(e, headers)),
    };
    if let Some(e) = first_error {
        return Err(fail(e, headers));
    }
    let available = bytes.get(head.body_start..).unwrap_or_default();
    let body = match headers.count("Content-Length") {
        0 => available.to_vec(),
        1 => {
            let Some(n) = headers
                .get("Content-Length")
                .and_then(|v| parse_small_number(v, u64::from(u32::MAX)))
            else {
                return Err(fail(Reason::BadHeader("Content-Length"), headers));
            };
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            match available.get(..n) {
                Some(b) => b.to_vec(),
                None => return Err(fail(Reason::Truncated, headers)),
            }
        }
        _ => return Err(fail(Reason::MultipleHeader("Content-Length"), headers)),
    };
    let msg = match start {
        StartLine::Request(method, uri) => {
            let r = Request {
                method,
                uri,
                headers,
                body,
            };
            if let Err(e) = r.validate() {
                return Err(fail(e, r.headers));
            }
            SipMessage::Request(r)
        }
        StartLine::Response(status, reason) => {
            let r = Response {
                status,
                reason,
                headers,
                body,
            };
            if let Err(e) = r.validate() {
                return Err(fail(e, r.headers));
            }
            SipMessage::Response(r)
        }
    };
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &str = "OPTIONS sip:carol@chicago.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKhjhs8ass877\r\n\
Max-Forwards: 70\r\n\
To: <sip:carol@chicago.com>\r\n\
From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 63104 OPTIONS\r\n\
Contact: <sip:alice@pc33.atlanta.com>\r\n\
Accept: application/sdp\r\n\
Content-Length: 0\r\n\r\n";

    fn req(s: &str) -> Request {
        match parse_message(s.as_bytes()) {
            Ok(SipMessage::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    fn err(s: &str) -> ParseError {
        parse_message(s.as_bytes()).unwrap_err()
    }

    #[test]
    fn parse_and_print_round_trip() {
        let r = req(OPTIONS);
        assert_eq!(r.method, Method::Options);
        assert_eq!(r.headers.len(), 9);
        assert_eq!(r.headers.cseq().unwrap().seq, 63104);
        assert_eq!(r.headers.from().unwrap().tag(), Some("1928301774"));
        assert_eq!(String::from_utf8(r.to_bytes()).unwrap(), OPTIONS);
        assert_eq!(
            parse_message(&r.to_bytes()).unwrap(),
            SipMessage::Request(r)
        );
    }

    #[test]
    fn compact_forms_and_body() {
        let s = "INVITE sip:bob@biloxi.com SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
f: <sip:a@b>;tag=1\r\nt: sip:bob@biloxi.com\r\ni: abc@h\r\nCSeq: 1 INVITE\r\n\
c: application/sdp\r\nl: 4\r\n\r\nv=0\r\nEXTRA";
        let r = req(s);
        assert_eq!(r.body, b"v=0\r");
        assert_eq!(r.headers.call_id(), Some("abc@h"));
        assert!(r.headers.iter().any(|h| h.name == "Content-Type"));
    }

    #[test]
    fn reasons() {
        let no_callid = OPTIONS.replace("Call-ID: a84b4c76e66710\r\n", "");
        let e = err(&no_callid);
        assert_eq!(e.to_string(), "Missing Call-ID header");
        assert_eq!(e.status(), 400);
        assert!(e.partial.unwrap().headers.top_via().is_some());
        assert_eq!(
            err(&OPTIONS.replace("63104 OPTIONS", "x OPTIONS")).to_string(),
            "Bad CSeq"
        );
        assert_eq!(
            err(&OPTIONS.replace("63104 OPTIONS", "63104 INVITE")).reason,
            Reason::CSeqMismatch
        );
        assert_eq!(
            err(&OPTIONS.replace("Max-Forwards: 70", "Max-Forwards: 300")).to_string(),
            "Bad Max-Forwards"
        );
        assert_eq!(
            err(&OPTIONS.replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia")).status(),
            505
        );
        assert_eq!(
            err(&OPTIONS.replace("Content-Length: 0", "Content-Length: 10")).reason,
            Reason::Truncated
        );
        assert_eq!(
            err(&OPTIONS.replace("\r\n\r\n", "\r\n")).reason,
            Reason::NoHeadEnd
        );
        assert_eq!(err("\r\n\r\n").reason, Reason::Empty);
        assert_eq!(
            err(&OPTIONS.replace("Accept: application/sdp", "Accept application/sdp")).reason,
            Reason::BadHeaderLine
        );
    }

    #[test]
    fn folding_and_tel() {
        let s = OPTIONS
            .replace("sip:carol@chicago.com SIP", "tel:+1-201-555-0123 SIP")
            .replace("Max-Forwards: 70", "Max-Forwards:\r\n  70");
        let r = req(&s);
        assert_eq!(r.uri.scheme(), "tel");
        assert_eq!(r.headers.max_forwards(), Some(70));
    }

    #[test]
    fn top_via_edit() {
        let mut h = Headers::new();
        h.push(
            "Via",
            "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TCP b;branch=z9hG4bK2",
        );
        h.push("Via", "SIP/2.0/UDP c;branch=z9hG4bK3");
        let mut v = h.top_via().unwrap();
        v.set_param("received", Some("192.0.2.1"));
        h.set_top_via(&v);
        assert_eq!(h.vias().unwrap().len(), 3);
        assert_eq!(h.top_via().unwrap().received(), Some("192.0.2.1"));
        assert_eq!(h.pop_top_via().unwrap().host, "a");
        assert_eq!(h.pop_top_via().unwrap().host, "b");
        assert_eq!(h.vias().unwrap().len(), 1);
    }
}
