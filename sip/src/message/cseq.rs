//! The CSeq header (RFC 3261 20.16, 8.1.1.5).

use super::method::Method;
use super::text::{is_lws, is_token};
use std::fmt;

/// `CSeq: number method`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number, below 2^31.
    pub seq: u32,
    /// The request method.
    pub method: Method,
}

impl CSeq {
    /// Parses a CSeq value; the number must be below 2^31 (RFC 3261 8.1.1.5).
    pub fn parse(s: &str) -> Option<CSeq> {
        let s = s.trim_matches(is_lws);
        let end = s.find(is_lws)?;
        let (num, method) = (s.get(..end)?, s.get(end..)?.trim_matches(is_lws));
        if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit()) || !is_token(method) {
            return None;
        }
        let trimmed = num.trim_start_matches('0');
        if trimmed.len() > 10 {
            return None;
        }
        let seq: u64 = if trimmed.is_empty() {
            0
        } else {
            trimmed.parse().ok()?
        };
        if seq >= 1 << 31 {
            return None;
        }
        Some(CSeq {
            seq: u32::try_from(seq).ok()?,
            method: Method::from_token(method),
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        assert_eq!(CSeq::parse("0009\t  INVITE").unwrap().seq, 9);
        assert_eq!(CSeq::parse("1 REGISTER").unwrap().method, Method::Register);
        assert!(CSeq::parse("36893488147419103232 INVITE").is_none());
        assert!(CSeq::parse("2147483648 INVITE").is_none());
        assert!(CSeq::parse("INVITE").is_none());
        assert!(CSeq::parse("-1 INVITE").is_none());
    }
}
