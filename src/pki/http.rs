//! A deliberately small HTTP/1.1 for enrollment: one request per connection, Content-Length
//! bodies only (no chunked encoding), bounded head and body sizes, and RFC 2388
//! multipart/form-data. Used over tokio-rustls by both the server and the client.

use super::PkiError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest request or response head accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest body accepted.
pub const MAX_BODY: usize = 256 * 1024;

/// A parsed request or response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Request: method, path, version; response: version, status, reason.
    pub start: [String; 3],
    /// Header fields, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Message {
    /// First header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn bad(m: impl Into<String>) -> PkiError {
    PkiError::Enroll(m.into())
}

/// Reads one message (head plus Content-Length body).
pub async fn read_message<S: AsyncRead + Unpin>(s: &mut S) -> Result<Message, PkiError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(bad("HTTP head too large"));
        }
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| bad(format!("read: {e}")))?;
        if n == 0 {
            return Err(bad("connection closed before the end of the HTTP head"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("HTTP head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut parts = first.splitn(3, ' ');
    let start = [
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    ];
    let mut headers = Vec::new();
    for l in lines {
        let (n, v) = l
            .split_once(':')
            .ok_or_else(|| bad(format!("bad header line {l:?}")))?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let mut msg = Message {
        start,
        headers,
        body: Vec::new(),
    };
    if msg.header("transfer-encoding").is_some() {
        return Err(bad(
            "Transfer-Encoding is not supported; send Content-Length",
        ));
    }
    let len: usize = match msg.header("content-length") {
        Some(v) => v.parse().map_err(|_| bad("bad Content-Length"))?,
        None => 0,
    };
    if len > MAX_BODY {
        return Err(bad(format!(
            "body of {len} bytes is over the {MAX_BODY}-byte limit"
        )));
    }
    let mut body = buf.split_off(head_end + 4);
    if body.len() > len {
        body.truncate(len);
    }
    while body.len() < len {
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| bad(format!("read: {e}")))?;
        if n == 0 {
            return Err(bad("connection closed before the end of the body"));
        }
        let want = (len - body.len()).min(n);
        body.extend_from_slice(&chunk[..want]);
    }
    msg.body = body;
    Ok(msg)
}

/// Writes a message: start line, headers, Content-Length, body.
pub async fn write_message<S: AsyncWrite + Unpin>(
    s: &mut S,
    start: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(), PkiError> {
    let mut out = format!("{start}\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    s.write_all(&bytes)
        .await
        .map_err(|e| bad(format!("write: {e}")))?;
    s.flush().await.map_err(|e| bad(format!("write: {e}")))?;
    let _ = s.shutdown().await;
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One part of a multipart/form-data body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The `name` from Content-Disposition.
    pub name: String,
    /// Its Content-Type, if given.
    pub content_type: Option<String>,
    /// Content bytes.
    pub data: Vec<u8>,
}

/// Builds a multipart/form-data body; returns (Content-Type header value, body).
pub fn multipart(parts: &[Part]) -> Result<(String, Vec<u8>), PkiError> {
    let boundary = format!("p2psip-{}", hex::encode(super::random::<12>()?));
    let mut body = Vec::new();
    for p in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{}\"\r\n", p.name).as_bytes(),
        );
        if let Some(ct) = &p.content_type {
            body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&p.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok((format!("multipart/form-data; boundary={boundary}"), body))
}

/// Parses a multipart/form-data body given the request's Content-Type value.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<Part>, PkiError> {
    let (mime, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return Err(bad(format!("expected multipart/form-data, got {mime}")));
    }
    let boundary = params
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|b| !b.is_empty() && b.len() <= 70)
        .ok_or_else(|| bad("multipart without boundary"))?;
    let delim = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut pos =
        find(body, &delim).ok_or_else(|| bad("multipart: no first boundary"))? + delim.len();
    loop {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            break;
        }
        let rest = rest
            .strip_prefix(b"\r\n")
            .ok_or_else(|| bad("multipart: boundary not followed by CRLF"))?;
        let he = find(rest, b"\r\n\r\n").ok_or_else(|| bad("multipart: part head not ended"))?;
        let head = std::str::from_utf8(&rest[..he]).map_err(|_| bad("multipart head not UTF-8"))?;
        let content = &rest[he + 4..];
        let mut next_delim = b"\r\n".to_vec();
        next_delim.extend_from_slice(&delim);
        let ce = find(content, &next_delim).ok_or_else(|| bad("multipart: part not terminated"))?;
        let mut name = None;
        let mut content_type = None;
        for line in head.split("\r\n") {
            let Some((n, v)) = line.split_once(':') else {
                continue;
            };
            let n = n.trim().to_ascii_lowercase();
            if n == "content-disposition" {
                name = v
                    .split(';')
                    .filter_map(|p| p.trim().split_once('='))
                    .find(|(k, _)| k.trim() == "name")
                    .map(|(_, v)| v.trim().trim_matches('"').to_string());
            } else if n == "content-type" {
                content_type = Some(v.trim().to_string());
            }
        }
        parts.push(Part {
            name: name.ok_or_else(|| bad("multipart part without a name"))?,
            content_type,
            data: content[..ce].to_vec(),
        });
        // Advance past CRLF + delimiter.
        pos = body.len() - content.len() + ce + next_delim.len();
        if parts.len() > 16 {
            return Err(bad("too many multipart parts"));
        }
    }
    Ok(parts)
}

/// An `https://host[:port][/path]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Host (without brackets for IPv6).
    pub host: String,
    /// Port (443 when absent).
    pub port: u16,
    /// Path, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parses an https URL.
    pub fn parse(s: &str) -> Result<Url, PkiError> {
        let rest = s.strip_prefix("https://").ok_or_else(|| {
            bad(format!(
                "{s:?}: only https:// URLs are allowed (RFC 6940 11.3)"
            ))
        })?;
        let (auth, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(r) = auth.strip_prefix('[') {
            let (h, p) = r
                .split_once(']')
                .ok_or_else(|| bad(format!("{s:?}: bad IPv6 host")))?;
            (h, p.strip_prefix(':'))
        } else {
            match auth.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (auth, None),
            }
        };
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad(format!("{s:?}: bad port")))?,
            None => 443,
        };
        if host.is_empty() {
            return Err(bad(format!("{s:?}: no host")));
        }
        Ok(Url {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// `host:port` for connecting (brackets around IPv6).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_round_trip() {
        let parts = vec![
            Part {
                name: "username".into(),
                content_type: None,
                data: b"alice".to_vec(),
            },
            Part {
                name: "csr".into(),
                content_type: Some("application/pkcs10".into()),
                data: vec![0x30, 0x0d, 0x0a, 0x2d, 0x2d, 0xff],
            },
        ];
        let (ct, body) = multipart(&parts).unwrap();
        assert_eq!(parse_multipart(&ct, &body).unwrap(), parts);
        assert!(parse_multipart("text/plain", &body).is_err());
        for cut in [0, 10, body.len() / 2, body.len() - 5] {
            let _ = parse_multipart(&ct, &body[..cut]); // must not panic
        }
    }

    #[test]
    fn urls() {
        let u = Url::parse("https://127.0.0.1:8443/enroll").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8443, "/enroll")
        );
        let u = Url::parse("https://[::1]:9/").unwrap();
        assert_eq!(u.authority(), "[::1]:9");
        assert_eq!(Url::parse("https://ex.org").unwrap().port, 443);
        assert!(Url::parse("http://ex.org/").is_err());
    }

    #[tokio::test]
    async fn message_round_trip_and_limits() {
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        write_message(&mut a, "POST /x HTTP/1.1", &[("Host", "h")], b"body")
            .await
            .unwrap();
        let m = read_message(&mut b).await.unwrap();
        assert_eq!(m.start[0], "POST");
        assert_eq!(m.header("host"), Some("h"));
        assert_eq!(m.body, b"body");
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        tokio::io::AsyncWriteExt::write_all(&mut a, big.as_bytes())
            .await
            .unwrap();
        assert!(read_message(&mut b).await.is_err());
    }
}
