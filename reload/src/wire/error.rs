//! Error responses (RFC 6940 6.3.3.1, 14.9; RFC 7851 9.4).
//!
//! ```text
//! struct { uint16 error_code; opaque error_info<0..2^16-1>; } ErrorResponse;
//! ```
//! `error_info` is UTF-8 text except for Error_Generation_Counter_Too_Low (a `StoreAns`) and
//! Error_Unknown_Kind (`KindId unknown_kinds<0..2^8-1>`); helpers decode those two.

use crate::code_point;
use crate::codec::{Codec, DecodeError, EncodeError, LenWidth, Opaque, Reader, write_list};
use crate::wire::{KindId, StoreAns};
use serde::Serialize;

code_point! {
    /// `error_code` (RFC 6940 14.9 for 0-20, RFC 7851 9.4 for 21-26).
    pub struct ErrorCode(u16) {
        /// Invalid.
        INVALID = 0,
        /// Unassigned in RFC 6940.
        UNASSIGNED = 1,
        /// Error_Forbidden.
        FORBIDDEN = 2,
        /// Error_Not_Found.
        NOT_FOUND = 3,
        /// Error_Request_Timeout.
        REQUEST_TIMEOUT = 4,
        /// Error_Generation_Counter_Too_Low (error_info is a StoreAns).
        GENERATION_COUNTER_TOO_LOW = 5,
        /// Error_Incompatible_with_Overlay.
        INCOMPATIBLE_WITH_OVERLAY = 6,
        /// Error_Unsupported_Forwarding_Option.
        UNSUPPORTED_FORWARDING_OPTION = 7,
        /// Error_Data_Too_Large.
        DATA_TOO_LARGE = 8,
        /// Error_Data_Too_Old.
        DATA_TOO_OLD = 9,
        /// Error_TTL_Exceeded.
        TTL_EXCEEDED = 10,
        /// Error_Message_Too_Large.
        MESSAGE_TOO_LARGE = 11,
        /// Error_Unknown_Kind (error_info lists the Kind-IDs).
        UNKNOWN_KIND = 12,
        /// Error_Unknown_Extension.
        UNKNOWN_EXTENSION = 13,
        /// Error_Response_Too_Large.
        RESPONSE_TOO_LARGE = 14,
        /// Error_Config_Too_Old.
        CONFIG_TOO_OLD = 15,
        /// Error_Config_Too_New.
        CONFIG_TOO_NEW = 16,
        /// Error_In_Progress.
        IN_PROGRESS = 17,
        /// Error_Exp_A.
        EXP_A = 18,
        /// Error_Exp_B.
        EXP_B = 19,
        /// Error_Invalid_Message.
        INVALID_MESSAGE = 20,
        /// Error_Underlay_Destination_Unreachable (RFC 7851).
        UNDERLAY_DESTINATION_UNREACHABLE = 21,
        /// Error_Underlay_Time_Exceeded (RFC 7851).
        UNDERLAY_TIME_EXCEEDED = 22,
        /// Error_Message_Expired (RFC 7851).
        MESSAGE_EXPIRED = 23,
        /// Error_Upstream_Misrouting (RFC 7851).
        UPSTREAM_MISROUTING = 24,
        /// Error_Loop_Detected (RFC 7851).
        LOOP_DETECTED = 25,
        /// Error_TTL_Hops_Exceeded (RFC 7851).
        TTL_HOPS_EXCEEDED = 26,
    }
}

/// The body of an error response (message code 0xffff).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorResponse {
    /// The error code.
    pub error_code: ErrorCode,
    /// Extra information (UTF-8 text unless the code says otherwise).
    pub error_info: Opaque,
}

impl ErrorResponse {
    /// An error with a text reason.
    pub fn new(error_code: ErrorCode, reason: &str) -> Self {
        ErrorResponse {
            error_code,
            error_info: Opaque(reason.as_bytes().to_vec()),
        }
    }

    /// `error_info` as text, when it is valid UTF-8.
    pub fn info_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.error_info).ok()
    }

    /// An Error_Unknown_Kind response listing `kinds`.
    pub fn unknown_kinds(kinds: &[KindId]) -> Result<Self, EncodeError> {
        let mut info = Vec::new();
        write_list(&mut info, LenWidth::U8, "unknown_kinds", kinds)?;
        Ok(ErrorResponse {
            error_code: ErrorCode::UNKNOWN_KIND,
            error_info: Opaque(info),
        })
    }

    /// An Error_Generation_Counter_Too_Low response carrying the current counters.
    pub fn generation_counter_too_low(current: &StoreAns) -> Result<Self, EncodeError> {
        Ok(ErrorResponse {
            error_code: ErrorCode::GENERATION_COUNTER_TOO_LOW,
            error_info: Opaque(current.to_bytes()?),
        })
    }

    /// The StoreAns of an Error_Generation_Counter_Too_Low `error_info`.
    pub fn parse_store_ans(&self) -> Result<StoreAns, DecodeError> {
        StoreAns::from_bytes(&self.error_info)
    }

    /// The Kind-IDs of an Error_Unknown_Kind `error_info`.
    pub fn parse_unknown_kinds(&self) -> Result<Vec<KindId>, DecodeError> {
        let mut r = Reader::new(&self.error_info);
        let v = r.list(LenWidth::U8, "unknown_kinds")?;
        r.finish("unknown_kinds")?;
        Ok(v)
    }
}

impl Codec for ErrorResponse {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.error_code.encode(out)?;
        self.error_info
            .write_prefixed(out, LenWidth::U16, "ErrorResponse.error_info")
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ErrorResponse {
            error_code: ErrorCode::read(r)?,
            error_info: Opaque::read_prefixed(r, LenWidth::U16, 0, "ErrorResponse.error_info")?,
        })
    }
}
