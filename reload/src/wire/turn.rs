//! The TURN-SERVICE Kind's value (RFC 6940 9).
//!
//! ```text
//! struct { uint8 iteration; IpAddressPort server_address; } TurnServer;
//! ```

use crate::codec::{Codec, DecodeError, EncodeError, Reader};
use crate::wire::IpAddressPort;
use serde::Serialize;

/// A TURN server advertisement, stored at H(Node-ID || iteration).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TurnServer {
    /// The `d` in 1..turn-density this entry was stored under.
    pub iteration: u8,
    /// The server's address.
    pub server_address: IpAddressPort,
}

impl Codec for TurnServer {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(self.iteration);
        self.server_address.encode(out)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TurnServer {
            iteration: r.u8("TurnServer.iteration")?,
            server_address: IpAddressPort::read(r)?,
        })
    }
}
