//! Stream framing for TCP/TLS (RFC 3261 18.3: Content-Length is mandatory on streams)
//! with CRLF keep-alives (RFC 5626 3.5.1: `CRLFCRLF` ping, `CRLF` pong).

/// One unit read from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole message (head and Content-Length bytes of body), ready for `parse_message`.
    Message(Vec<u8>),
    /// A `CRLFCRLF` keep-alive ping: answer with a `CRLF` pong.
    Ping,
    /// A lone `CRLF` (a pong, or stray whitespace between messages).
    Pong,
}

/// Why a stream can no longer be framed; the connection should be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A message head has no usable Content-Length.
    #[error("Missing or bad Content-Length on a stream")]
    BadContentLength,
    /// The message head or the whole message exceeds the size limit.
    #[error("Message too large")]
    TooLarge,
}

/// Accumulates stream bytes and yields whole messages.
#[derive(Debug)]
pub struct StreamFramer {
    buf: Vec<u8>,
    max_size: usize,
    failed: Option<FrameError>,
}

impl StreamFramer {
    /// A framer accepting messages up to `max_size` bytes (head plus body).
    pub fn new(max_size: usize) -> Self {
        StreamFramer {
            buf: Vec::new(),
            max_size,
            failed: None,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes buffered but not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed. After an error the
    /// framer stays failed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.next_inner();
        if let Err(e) = &r {
            self.failed = Some(e.clone());
            self.buf.clear();
        }
        r
    }

    fn next_inner(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.buf.starts_with(b"\r\n\r\n") {
            self.buf.drain(..4);
            return Ok(Some(Frame::Ping));
        }
        if self.buf.starts_with(b"\r\n") {
            // Wait to tell a pong from the first half of a ping.
            if self.buf.len() < 4 && b"\r\n\r\n".starts_with(&self.buf) {
                return Ok(None);
            }
            self.buf.drain(..2);
            return Ok(Some(Frame::Pong));
        }
        if self.buf.starts_with(b"\n") {
            self.buf.drain(..1);
            return Ok(Some(Frame::Pong));
        }
        if self.buf == b"\r" {
            return Ok(None);
        }
        let Some((head_len, body_start)) = find_head_end(&self.buf) else {
            if self.buf.len() > self.max_size {
                return Err(FrameError::TooLarge);
            }
            return Ok(None);
        };
        let length = content_length(self.buf.get(..head_len).unwrap_or_default())
            .ok_or(FrameError::BadContentLength)?;
        let total = body_start.checked_add(length).ok_or(FrameError::TooLarge)?;
        if total > self.max_size {
            return Err(FrameError::TooLarge);
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let msg: Vec<u8> = self.buf.drain(..total).collect();
        Ok(Some(Frame::Message(msg)))
    }
}

/// Returns (end of head, start of body) for the first empty line (CRLFCRLF or LFLF).
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf.get(i) == Some(&b'\n') {
            match (buf.get(i + 1), buf.get(i + 2)) {
                (Some(b'\n'), _) => return Some((i, i + 2)),
                (Some(b'\r'), Some(b'\n')) => return Some((i, i + 3)),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Finds exactly one Content-Length (or `l`) header in a head and parses it.
fn content_length(head: &[u8]) -> Option<usize> {
    let mut found = None;
    for line in head.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = line.get(..colon)?.trim_ascii_end();
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            if found.is_some() {
                return None;
            }
            let v = std::str::from_utf8(line.get(colon + 1..)?).ok()?.trim();
            if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            found = Some(v.parse::<usize>().ok()?);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nl: 3\r\n\r\nabc";

    #[test]
    fn frames_in_pieces_and_keepalives() {
        let mut f = StreamFramer::new(1000);
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(MSG);
        stream.extend_from_slice(MSG);
        stream.extend_from_slice(b"\r\n");
        let mut frames = Vec::new();
        for b in &stream {
            f.push(std::slice::from_ref(b));
            while let Some(fr) = f.next_frame().unwrap() {
                frames.push(fr);
            }
        }
        assert_eq!(
            frames,
            vec![
                Frame::Ping,
                Frame::Message(MSG.to_vec()),
                Frame::Message(MSG.to_vec())
            ]
        );
        // The trailing CRLF waits for more bytes.
        f.push(b"X");
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Pong));
    }

    #[test]
    fn errors() {
        let mut f = StreamFramer::new(1000);
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FrameError::BadContentLength));
        assert_eq!(f.next_frame(), Err(FrameError::BadContentLength));
        let mut f = StreamFramer::new(40);
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 100\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FrameError::TooLarge));
        let mut f = StreamFramer::new(10);
        f.push(&[b'A'; 11]);
        assert_eq!(f.next_frame(), Err(FrameError::TooLarge));
        let mut f = StreamFramer::new(100);
        f.push(b"X\r\nl: 1\r\nContent-Length: 1\r\n\r\nab");
        assert_eq!(f.next_frame(), Err(FrameError::BadContentLength));
    }
}
