//! Whole messages: forwarding header, contents and security block (RFC 6940 6.3).
//!
//! * [`RawMessage`] is what a forwarding peer needs: the header parsed, everything after it
//!   (contents and security block, or a fragment of them) kept as bytes and re-sent untouched.
//! * [`Message`] is what the destination needs: all three parts decoded.
//!
//! Both compute `length` when encoding and, when decoding, read the 38 fixed bytes first and
//! check `length` and the three list lengths against the input before parsing anything else.
//! [`MessageContents`] is canonical (decode then encode gives the received bytes), and
//! [`Message::decode_with_contents`] also returns the received contents bytes, which is what
//! the message signature covers ([`message_signature_input`]).

use crate::codec::{Codec, DecodeError, DecodeErrorKind, EncodeError, Opaque, Reader};
use crate::wire::{
    Body, ForwardingHeader, KindModels, MessageCode, MessageContents, MessageExtension,
    SecurityBlock, SignerIdentity,
};
use serde::Serialize;

/// A message whose payload (contents and security block, or a fragment) stays raw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawMessage {
    /// The forwarding header.
    pub header: ForwardingHeader,
    /// Everything after the header, as received.
    pub payload: Opaque,
}

impl RawMessage {
    /// Encodes with `length` computed.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(64 + self.payload.len());
        self.header
            .encode_with_payload_len(&mut out, self.payload.len())?;
        out.extend_from_slice(&self.payload);
        Ok(out)
    }

    /// Decodes a buffer that holds exactly one message (`length` must equal its size).
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let (header, length) = ForwardingHeader::read_with_length(&mut r)?;
        check_exact(length, buf.len())?;
        let payload = Opaque(r.rest().to_vec());
        Ok(RawMessage { header, payload })
    }

    /// Decodes the first message of `buf`, returning it and the bytes it used (for streams
    /// where `length` delimits messages).
    pub fn decode_prefix(buf: &[u8]) -> Result<(Self, usize), DecodeError> {
        let mut r = Reader::new(buf);
        let (header, length) = ForwardingHeader::read_with_length(&mut r)?;
        let used = buf.len() - r.remaining();
        let payload = Opaque(r.take(length - used, "payload")?.to_vec());
        Ok((RawMessage { header, payload }, length))
    }
}

fn check_exact(length: usize, available: usize) -> Result<(), DecodeError> {
    if length < available {
        return Err(DecodeError {
            kind: DecodeErrorKind::TrailingBytes,
            what: "ForwardingHeader.length",
            offset: length,
        });
    }
    Ok(())
}

/// A fully decoded message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// The forwarding header.
    pub header: ForwardingHeader,
    /// Message code, body (raw) and extensions.
    pub contents: MessageContents,
    /// Certificates and the signature.
    pub security: SecurityBlock,
}

impl Message {
    /// Encodes the message, computing `length` and the list lengths.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut payload = Vec::new();
        self.contents.encode(&mut payload)?;
        self.security.encode(&mut payload)?;
        let mut out = Vec::with_capacity(64 + payload.len());
        self.header
            .encode_with_payload_len(&mut out, payload.len())?;
        out.extend_from_slice(&payload);
        Ok(out)
    }

    /// Decodes a buffer holding exactly one whole (unfragmented or reassembled) message.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_with_contents(buf).map(|(m, _)| m)
    }

    /// Decodes like [`Message::decode`] and also returns the received bytes of
    /// `MessageContents`, which the message signature covers.
    pub fn decode_with_contents(buf: &[u8]) -> Result<(Self, &[u8]), DecodeError> {
        let mut r = Reader::new(buf);
        let (header, length) = ForwardingHeader::read_with_length(&mut r)?;
        check_exact(length, buf.len())?;
        let contents_start = r.offset();
        let contents = MessageContents::read(&mut r)?;
        let contents_end = r.offset();
        let security = SecurityBlock::read(&mut r)?;
        r.finish("Message")?;
        let raw = buf.get(contents_start..contents_end).unwrap_or_default();
        Ok((
            Message {
                header,
                contents,
                security,
            },
            raw,
        ))
    }

    /// Decodes a whole message and its typed body; body errors carry offsets from the start
    /// of `buf` (as every other decode error does).
    pub fn decode_typed(buf: &[u8], kinds: &dyn KindModels) -> Result<(Self, Body), DecodeError> {
        let mut r = Reader::new(buf);
        let (_, _) = ForwardingHeader::read_with_length(&mut r)?;
        // message_code (2) and the message_body length (4) precede the body
        let body_offset = r.offset() + 6;
        let m = Self::decode(buf)?;
        let mut br = Reader::with_base(&m.contents.body, body_offset);
        let body = Body::read_with(m.contents.code, &mut br, kinds)?;
        br.finish("message_body")?;
        Ok((m, body))
    }

    /// The bytes the originator's signature covers, from this message's fields (contents
    /// re-encoded, which is byte-identical to the received form).
    pub fn signature_input(&self) -> Result<Vec<u8>, EncodeError> {
        let contents = self.contents.to_bytes()?;
        message_signature_input(
            self.header.overlay,
            self.header.transaction_id,
            &contents,
            &self.security.signature.identity,
        )
    }

    /// A view with the body typed, for display (`{:#?}`) or serde serialization (JSON).
    pub fn described(&self, kinds: &dyn KindModels) -> DescribedMessage<'_> {
        DescribedMessage {
            header: &self.header,
            code: self.contents.code,
            body: self
                .contents
                .decode_body(kinds)
                .map_err(|e| format!("{e} (offset within message_body)")),
            extensions: &self.contents.extensions,
            security: &self.security,
        }
    }

    /// A readable multi-line text dump with the body typed (`kinds` gives data models).
    pub fn describe(&self, kinds: &dyn KindModels) -> String {
        format!("{:#?}", self.described(kinds))
    }
}

/// A decoded message with its body typed, for display and JSON output.
#[derive(Debug, Serialize)]
pub struct DescribedMessage<'a> {
    /// The forwarding header.
    pub header: &'a ForwardingHeader,
    /// The message code.
    pub code: MessageCode,
    /// The typed body, or why it did not decode.
    pub body: Result<Body, String>,
    /// Extensions.
    pub extensions: &'a [MessageExtension],
    /// Certificates and signature.
    pub security: &'a SecurityBlock,
}

/// Signature input for a message (RFC 6940 6.3.4):
/// `overlay || transaction_id || MessageContents || SignerIdentity`.
///
/// `contents` must be the `MessageContents` bytes as received (or as sent).
pub fn message_signature_input(
    overlay: u32,
    transaction_id: u64,
    contents: &[u8],
    signer: &SignerIdentity,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(12 + contents.len() + 40);
    out.extend_from_slice(&overlay.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(contents);
    signer.encode(&mut out)?;
    Ok(out)
}
