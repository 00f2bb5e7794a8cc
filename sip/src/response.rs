//! Building responses to requests (RFC 3261 8.2.6), including 400s for requests that only
//! partially parsed.

use crate::message::{Headers, Method, NameAddr, ParseError, Request, Response, valid_call_id};

/// Why a broken message gets no response at all (it is dropped instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unanswerable {
    /// It was a response (responses are never answered).
    #[error("broken response dropped")]
    NotARequest,
    /// It was an ACK (ACKs are never answered, RFC 3261 17.1.1.3).
    #[error("broken ACK dropped")]
    Ack,
    /// Not even the header section could be read.
    #[error("no readable headers")]
    NoHeaders,
    /// There is no parseable top Via to send the response along.
    #[error("no usable Via")]
    BadVia,
    /// There is no usable Call-ID to put in the response.
    #[error("no usable Call-ID")]
    BadCallId,
}

/// Builds a response from the headers of a request: copies all Via values in order, From,
/// To, Call-ID, CSeq and Timestamp (for 100); adds `to_tag` to To when it has no tag and
/// the status is above 100; adds Server when given, and Content-Length.
pub fn response_from_headers(
    req: &Headers,
    status: u16,
    reason: &str,
    to_tag: Option<&str>,
    server: Option<&str>,
) -> Response {
    let mut resp = Response::new(status, reason);
    let h = &mut resp.headers;
    for v in req.get_all("Via") {
        h.push("Via", v);
    }
    if let Some(v) = req.get("From") {
        h.push("From", v);
    }
    if let Some(v) = req.get("To") {
        let value = match (to_tag, status > 100) {
            (Some(tag), true) => add_tag(v, tag),
            _ => v.to_owned(),
        };
        h.push("To", value);
    }
    if let Some(v) = req.get("Call-ID") {
        h.push("Call-ID", v);
    }
    if let Some(v) = req.get("CSeq") {
        h.push("CSeq", v);
    }
    if status == 100
        && let Some(v) = req.get("Timestamp")
    {
        h.push("Timestamp", v);
    }
    if let Some(s) = server {
        h.push("Server", s);
    }
    h.push("Content-Length", "0");
    resp
}

fn add_tag(to: &str, tag: &str) -> String {
    match NameAddr::parse(to) {
        Some(na) if na.tag().is_some() => to.to_owned(),
        Some(mut na) => {
            na.set_param("tag", Some(tag));
            na.to_string()
        }
        None => format!("{to};tag={tag}"),
    }
}

/// Builds a response to a parsed request (RFC 3261 8.2.6).
pub fn response_to(
    req: &Request,
    status: u16,
    reason: &str,
    to_tag: Option<&str>,
    server: Option<&str>,
) -> Response {
    response_from_headers(&req.headers, status, reason, to_tag, server)
}

/// Builds the error response (400, or 505 for a bad version) for a message that failed to
/// parse, with the parse error as reason phrase; or says why it must be dropped.
pub fn error_response(
    err: &ParseError,
    to_tag: Option<&str>,
    server: Option<&str>,
) -> Result<Response, Unanswerable> {
    let partial = err.partial.as_deref().ok_or(Unanswerable::NoHeaders)?;
    if !partial.is_request {
        return Err(Unanswerable::NotARequest);
    }
    if partial.method == Some(Method::Ack) {
        return Err(Unanswerable::Ack);
    }
    if partial.headers.top_via().is_none() {
        return Err(Unanswerable::BadVia);
    }
    if !partial.headers.call_id().is_some_and(valid_call_id) {
        return Err(Unanswerable::BadCallId);
    }
    Ok(response_from_headers(
        &partial.headers,
        err.status(),
        &err.reason_phrase(),
        to_tag,
        server,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{SipMessage, parse_message};

    const REQ: &str = "INVITE sip:bob@biloxi.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8;received=192.0.2.1\r\n\
Via: SIP/2.0/UDP bigbox3.site3.atlanta.com;branch=z9hG4bK77ef4c2312983.1\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.com>\r\n\
From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
Timestamp: 54\r\n\
Content-Length: 0\r\n\r\n";

    #[test]
    fn copies_and_tags() {
        let SipMessage::Request(req) = parse_message(REQ.as_bytes()).unwrap() else {
            panic!()
        };
        let r = response_to(&req, 180, "Ringing", Some("a6c85cf"), Some("p2psip"));
        assert_eq!(r.headers.get_all("Via").count(), 2);
        assert_eq!(r.headers.to().unwrap().tag(), Some("a6c85cf"));
        assert_eq!(r.headers.get("Server"), Some("p2psip"));
        assert!(r.headers.get("Timestamp").is_none());
        let text = String::from_utf8(r.to_bytes()).unwrap();
        assert!(text.starts_with("SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP pc33"));
        assert!(text.contains("To: Bob <sip:bob@biloxi.com>;tag=a6c85cf\r\n"));
        assert!(parse_message(text.as_bytes()).is_ok());
        let t = response_to(&req, 100, "Trying", Some("x"), None);
        assert_eq!(t.headers.to().unwrap().tag(), None);
        assert_eq!(t.headers.get("Timestamp"), Some("54"));
    }

    #[test]
    fn bad_requests() {
        let e =
            parse_message(REQ.replace("CSeq: 314159 INVITE", "CSeq: x").as_bytes()).unwrap_err();
        let r = error_response(&e, Some("t1"), None).unwrap();
        assert_eq!((r.status, r.reason.as_str()), (400, "Bad CSeq"));
        assert_eq!(r.headers.get("CSeq"), Some("x"));
        let e =
            parse_message(REQ.replace("Call-ID: a84b4c76e66710\r\n", "").as_bytes()).unwrap_err();
        assert_eq!(error_response(&e, None, None), Err(Unanswerable::BadCallId));
        let e = parse_message(
            REQ.replace("SIP/2.0/UDP pc33", "SIP/2.0/UDP pc 33")
                .as_bytes(),
        )
        .unwrap_err();
        assert_eq!(error_response(&e, None, None), Err(Unanswerable::BadVia));
        let e = parse_message(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\n").unwrap_err();
        assert_eq!(
            error_response(&e, None, None),
            Err(Unanswerable::NotARequest)
        );
        let e = parse_message(b"garbage").unwrap_err();
        assert_eq!(error_response(&e, None, None), Err(Unanswerable::NoHeaders));
    }
}
