//! Message contents (RFC 6940 6.3.3): code, body and extensions.
//!
//! ```text
//! struct { uint16 message_code; opaque message_body<0..2^32-1>;
//!          MessageExtension extensions<0..2^32-1>; } MessageContents;
//! struct { MessageExtensionType type; Boolean critical;
//!          opaque extension_contents<0..2^32-1>; } MessageExtension;
//! ```
//! The body stays raw bytes here; [`crate::wire::Body`] types it by message code. This
//! encoding is canonical: re-encoding decoded contents gives back the received bytes exactly.

use crate::code_point;
use crate::codec::{Codec, DecodeError, EncodeError, LenWidth, Opaque, Reader, write_list};
use serde::Serialize;

code_point! {
    /// `message_code` (RFC 6940 14.8, RFC 7851 9.3): requests are odd, answer = request + 1.
    pub struct MessageCode(u16) {
        /// Invalid.
        INVALID = 0,
        /// Probe request.
        PROBE_REQ = 1,
        /// Probe answer.
        PROBE_ANS = 2,
        /// Attach request.
        ATTACH_REQ = 3,
        /// Attach answer.
        ATTACH_ANS = 4,
        /// Store request.
        STORE_REQ = 7,
        /// Store answer.
        STORE_ANS = 8,
        /// Fetch request.
        FETCH_REQ = 9,
        /// Fetch answer.
        FETCH_ANS = 10,
        /// Find request.
        FIND_REQ = 13,
        /// Find answer.
        FIND_ANS = 14,
        /// Join request.
        JOIN_REQ = 15,
        /// Join answer.
        JOIN_ANS = 16,
        /// Leave request.
        LEAVE_REQ = 17,
        /// Leave answer.
        LEAVE_ANS = 18,
        /// Update request.
        UPDATE_REQ = 19,
        /// Update answer.
        UPDATE_ANS = 20,
        /// RouteQuery request.
        ROUTE_QUERY_REQ = 21,
        /// RouteQuery answer.
        ROUTE_QUERY_ANS = 22,
        /// Ping request.
        PING_REQ = 23,
        /// Ping answer.
        PING_ANS = 24,
        /// Stat request.
        STAT_REQ = 25,
        /// Stat answer.
        STAT_ANS = 26,
        /// AppAttach request.
        APP_ATTACH_REQ = 29,
        /// AppAttach answer.
        APP_ATTACH_ANS = 30,
        /// ConfigUpdate request.
        CONFIG_UPDATE_REQ = 33,
        /// ConfigUpdate answer.
        CONFIG_UPDATE_ANS = 34,
        /// Experimental A request.
        EXP_A_REQ = 35,
        /// Experimental A answer.
        EXP_A_ANS = 36,
        /// Experimental B request.
        EXP_B_REQ = 37,
        /// Experimental B answer.
        EXP_B_ANS = 38,
        /// PathTrack request (RFC 7851).
        PATH_TRACK_REQ = 39,
        /// PathTrack answer (RFC 7851).
        PATH_TRACK_ANS = 40,
        /// Error response.
        ERROR = 0xffff,
    }
}

impl MessageCode {
    /// True for request codes (odd, not the error code).
    pub fn is_request(self) -> bool {
        self.0 & 1 == 1 && self != Self::ERROR
    }

    /// True for answer codes (even, non-zero).
    pub fn is_answer(self) -> bool {
        self.0 & 1 == 0 && self.0 != 0
    }

    /// True for the error code.
    pub fn is_error(self) -> bool {
        self == Self::ERROR
    }

    /// The answer code for a request code (`None` for non-requests).
    pub fn answer(self) -> Option<MessageCode> {
        self.is_request().then(|| MessageCode(self.0 + 1))
    }

    /// The request code an answer code answers (`None` for non-answers).
    pub fn request(self) -> Option<MessageCode> {
        self.is_answer().then(|| MessageCode(self.0 - 1))
    }
}

code_point! {
    /// `MessageExtensionType` (RFC 6940 14.14, RFC 7851 9.5).
    pub struct ExtensionType(u16) {
        /// Invalid.
        INVALID = 0,
        /// Experimental (`exp-ext`).
        EXP_EXT = 1,
        /// Diagnostic_Ping (RFC 7851).
        DIAGNOSTIC_PING = 2,
        /// Reserved.
        RESERVED = 0xffff,
    }
}

/// A message extension; unknown types are kept as they came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageExtension {
    /// Extension type.
    pub ext_type: ExtensionType,
    /// A critical extension the receiver does not know makes it answer Error_Unknown_Extension.
    pub critical: bool,
    /// Contents.
    pub contents: Opaque,
}

impl Codec for MessageExtension {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.ext_type.encode(out)?;
        out.push(self.critical as u8);
        self.contents
            .write_prefixed(out, LenWidth::U32, "MessageExtension.extension_contents")
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(MessageExtension {
            ext_type: ExtensionType::read(r)?,
            critical: r.boolean("MessageExtension.critical")?,
            contents: Opaque::read_prefixed(
                r,
                LenWidth::U32,
                0,
                "MessageExtension.extension_contents",
            )?,
        })
    }
}

/// `MessageContents`, with the body as raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageContents {
    /// Message code.
    pub code: MessageCode,
    /// The method body, as bytes (see [`crate::wire::Body`] to type it).
    pub body: Opaque,
    /// Extensions.
    pub extensions: Vec<MessageExtension>,
}

impl Codec for MessageContents {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.code.encode(out)?;
        self.body
            .write_prefixed(out, LenWidth::U32, "MessageContents.message_body")?;
        write_list(
            out,
            LenWidth::U32,
            "MessageContents.extensions",
            &self.extensions,
        )
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(MessageContents {
            code: MessageCode::read(r)?,
            body: Opaque::read_prefixed(r, LenWidth::U32, 0, "MessageContents.message_body")?,
            extensions: r.list(LenWidth::U32, "MessageContents.extensions")?,
        })
    }
}
