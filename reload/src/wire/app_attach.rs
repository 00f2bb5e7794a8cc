//! AppAttach (RFC 6940 6.5.2): like Attach, with an Application-ID and no `send_update`.
//!
//! ```text
//! struct { opaque ufrag<0..2^8-1>; opaque password<0..2^8-1>; uint16 application;
//!          opaque role<0..2^8-1>; IceCandidate candidates<0..2^16-1>; } AppAttachReq;
//! ```
//! AppAttachAns has the same layout.

use crate::codec::{Codec, DecodeError, EncodeError, LenWidth, Opaque, Reader, write_list};
use crate::wire::IceCandidate;
use serde::Serialize;

/// Application-ID for SIP (RFC 7904).
pub const APPLICATION_SIP: u16 = 5060;
/// Application-ID for SIPS (RFC 7904).
pub const APPLICATION_SIPS: u16 = 5061;

/// The body of AppAttach requests and answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct AppAttachReqAns {
    /// ICE username fragment.
    pub ufrag: Opaque,
    /// ICE password.
    pub password: Opaque,
    /// Application-ID (5060 SIP, 5061 SIPS).
    pub application: u16,
    /// "passive" in requests, "active" in answers.
    pub role: Opaque,
    /// Candidates.
    pub candidates: Vec<IceCandidate>,
}

impl Codec for AppAttachReqAns {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.ufrag
            .write_prefixed(out, LenWidth::U8, "AppAttach.ufrag")?;
        self.password
            .write_prefixed(out, LenWidth::U8, "AppAttach.password")?;
        out.extend_from_slice(&self.application.to_be_bytes());
        self.role
            .write_prefixed(out, LenWidth::U8, "AppAttach.role")?;
        write_list(out, LenWidth::U16, "AppAttach.candidates", &self.candidates)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AppAttachReqAns {
            ufrag: Opaque::read_prefixed(r, LenWidth::U8, 0, "AppAttach.ufrag")?,
            password: Opaque::read_prefixed(r, LenWidth::U8, 0, "AppAttach.password")?,
            application: r.u16("AppAttach.application")?,
            role: Opaque::read_prefixed(r, LenWidth::U8, 0, "AppAttach.role")?,
            candidates: r.list(LenWidth::U16, "AppAttach.candidates")?,
        })
    }
}
