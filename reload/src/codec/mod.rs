//! The one codec for RELOAD's TLS-style presentation language (RFC 6940 section 6.3.1).
//!
//! Every wire type implements [`Codec`]: `encode` appends bytes to a `Vec<u8>`, `read` pulls
//! a value from a bounded [`Reader`]. Decoding is total: every length is checked against what
//! remains, and a failure is a small [`DecodeError`] naming what and where (byte offset).

use std::fmt;

/// What went wrong while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The input ended before the structure did.
    Truncated,
    /// Bytes were left over after a structure that must fill its container.
    TrailingBytes,
    /// A field holds a value the RFC does not allow here.
    InvalidValue,
    /// A length field is out of the range the structure allows.
    BadLength,
    /// A nesting or size limit we impose to bound work was exceeded.
    LimitExceeded,
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "truncated",
            Self::TrailingBytes => "trailing bytes",
            Self::InvalidValue => "invalid value",
            Self::BadLength => "bad length",
            Self::LimitExceeded => "limit exceeded",
        })
    }
}

/// A decode failure: which field, what was wrong, and the absolute byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind} in {what} at byte {offset}")]
pub struct DecodeError {
    /// What was wrong.
    pub kind: DecodeErrorKind,
    /// The field or structure being read (a static name from the RFC's vocabulary).
    pub what: &'static str,
    /// Offset from the start of the outermost buffer.
    pub offset: usize,
}

/// A bounded cursor over received bytes that knows its absolute offset.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over a whole buffer (offsets count from its start).
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            base: 0,
        }
    }

    /// Absolute offset of the next byte.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when every byte was read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..] // ok: pos <= buf.len() is an invariant
    }

    /// An error of `kind` about `what` at the current offset.
    pub fn error(&self, kind: DecodeErrorKind, what: &'static str) -> DecodeError {
        DecodeError {
            kind,
            what,
            offset: self.offset(),
        }
    }

    /// Takes exactly `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.error(DecodeErrorKind::Truncated, what));
        }
        let s = &self.buf[self.pos..self.pos + n]; // ok: n <= remaining checked above
        self.pos += n;
        Ok(s)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Peeks at the next byte without consuming it.
    pub fn peek_u8(&self, what: &'static str) -> Result<u8, DecodeError> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.error(DecodeErrorKind::Truncated, what))
    }

    /// Reads a u8.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Reads a big-endian u16.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian 24-bit integer.
    pub fn u24(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let [a, b, c] = self.array(what)?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }

    /// Reads a big-endian u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian u64.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian u128.
    pub fn u128(&mut self, what: &'static str) -> Result<u128, DecodeError> {
        Ok(u128::from_be_bytes(self.array(what)?))
    }

    /// Reads a RELOAD Boolean (one byte, 0 or 1; anything else is invalid).
    pub fn boolean(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        let at = self.offset();
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError {
                kind: DecodeErrorKind::InvalidValue,
                what,
                offset: at,
            }),
        }
    }

    /// Reads a length prefix of `width` bytes (1, 2, 3 or 4).
    pub fn length(&mut self, width: LenWidth, what: &'static str) -> Result<usize, DecodeError> {
        Ok(match width {
            LenWidth::U8 => self.u8(what)? as usize,
            LenWidth::U16 => self.u16(what)? as usize,
            LenWidth::U24 => self.u24(what)? as usize,
            LenWidth::U32 => self.u32(what)? as usize,
        })
    }

    /// Reads a length-prefixed opaque vector `opaque x<min..max>`.
    pub fn opaque(
        &mut self,
        width: LenWidth,
        min: usize,
        what: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        let at = self.offset();
        let n = self.length(width, what)?;
        if n < min {
            return Err(DecodeError {
                kind: DecodeErrorKind::BadLength,
                what,
                offset: at,
            });
        }
        self.take(n, what)
    }

    /// Splits off a sub-reader over the next `n` bytes (offsets stay absolute).
    pub fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader<'a>, DecodeError> {
        let base = self.offset();
        let buf = self.take(n, what)?;
        Ok(Reader { buf, pos: 0, base })
    }

    /// Splits off a sub-reader over a length-prefixed region.
    pub fn prefixed(
        &mut self,
        width: LenWidth,
        what: &'static str,
    ) -> Result<Reader<'a>, DecodeError> {
        let n = self.length(width, what)?;
        self.sub(n, what)
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.error(DecodeErrorKind::TrailingBytes, what))
        }
    }

    /// Reads a length-prefixed list of `T` whose prefix counts bytes, not elements.
    pub fn list<T: Codec>(
        &mut self,
        width: LenWidth,
        what: &'static str,
    ) -> Result<Vec<T>, DecodeError> {
        self.list_with(width, what, T::read)
    }

    /// Reads a length-prefixed list whose elements are read by `f` (for elements whose layout
    /// depends on context, such as a Kind's data model).
    ///
    /// Memory grows only with elements actually read, never with the announced length, and an
    /// element that consumes no bytes is refused so the loop always terminates.
    pub fn list_with<T>(
        &mut self,
        width: LenWidth,
        what: &'static str,
        mut f: impl FnMut(&mut Reader<'a>) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let mut sub = self.prefixed(width, what)?;
        let mut out = Vec::new();
        while !sub.is_empty() {
            let before = sub.remaining();
            out.push(f(&mut sub)?);
            if sub.remaining() == before {
                return Err(sub.error(DecodeErrorKind::InvalidValue, what));
            }
        }
        Ok(out)
    }

    /// A reader over `buf` whose offsets start at `base` (to decode a field that was stored
    /// as bytes while keeping error offsets absolute).
    pub fn with_base(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }
}

/// Width of a vector's length prefix, which follows the vector's upper bound (RFC 6940 6.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LenWidth {
    /// `<0..2^8-1>`
    U8,
    /// `<0..2^16-1>`
    U16,
    /// `<0..2^24-1>`
    U24,
    /// `<0..2^32-1>`
    U32,
}

impl LenWidth {
    /// Bytes the prefix takes.
    pub fn bytes(self) -> usize {
        match self {
            Self::U8 => 1,
            Self::U16 => 2,
            Self::U24 => 3,
            Self::U32 => 4,
        }
    }

    /// Largest length the prefix can hold.
    pub fn max(self) -> usize {
        match self {
            Self::U8 => 0xff,
            Self::U16 => 0xffff,
            Self::U24 => 0xff_ffff,
            Self::U32 => 0xffff_ffff,
        }
    }
}

/// Error for values that cannot be encoded (an API misuse, not peer input): a vector longer
/// than its length prefix can hold, shorter than its declared minimum, or a value that would
/// not decode back as itself (such as a Destination type with the high bit set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{what} is {len} bytes, outside the range its encoding allows (at most {max})")]
pub struct EncodeError {
    /// The field being written.
    pub what: &'static str,
    /// Its length in bytes.
    pub len: usize,
    /// The largest length allowed.
    pub max: usize,
}

/// Writes a length prefix of `width` and back-patches it after `body` has written.
///
/// Lengths that overflow the prefix are clamped into an [`EncodeError`]; encoding still
/// produces well-formed framing so callers can surface the error without a panic.
pub fn write_prefixed(
    out: &mut Vec<u8>,
    width: LenWidth,
    what: &'static str,
    body: impl FnOnce(&mut Vec<u8>),
) -> Result<(), EncodeError> {
    let at = out.len();
    out.extend(std::iter::repeat_n(0u8, width.bytes()));
    body(out);
    let len = out.len() - at - width.bytes();
    if len > width.max() {
        return Err(EncodeError {
            what,
            len,
            max: width.max(),
        });
    }
    let be = (len as u32).to_be_bytes();
    out[at..at + width.bytes()].copy_from_slice(&be[4 - width.bytes()..]); // ok: our own buffer, `at` bytes reserved above
    Ok(())
}

/// Writes an opaque vector with its length prefix.
pub fn write_opaque(
    out: &mut Vec<u8>,
    width: LenWidth,
    what: &'static str,
    data: &[u8],
) -> Result<(), EncodeError> {
    write_prefixed(out, width, what, |o| o.extend_from_slice(data))
}

/// A RELOAD wire structure.
pub trait Codec: Sized {
    /// Appends the wire form to `out`.
    ///
    /// Fails only when a vector is longer than its length prefix can express.
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError>;

    /// Reads one value from `r`.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Encodes into a fresh buffer.
    fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::new();
        self.encode(&mut v)?;
        Ok(v)
    }

    /// Decodes a value that must fill `bytes` exactly.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::read(&mut r)?;
        r.finish("trailing data")?;
        Ok(v)
    }
}

/// Encodes a list whose prefix counts bytes.
pub fn write_list<T: Codec>(
    out: &mut Vec<u8>,
    width: LenWidth,
    what: &'static str,
    items: &[T],
) -> Result<(), EncodeError> {
    let mut err = None;
    write_prefixed(out, width, what, |o| {
        for i in items {
            if let Err(e) = i.encode(o) {
                err.get_or_insert(e);
            }
        }
    })?;
    err.map_or(Ok(()), Err)
}

/// Encodes a list whose elements are written by `f`.
pub fn write_list_with<T>(
    out: &mut Vec<u8>,
    width: LenWidth,
    what: &'static str,
    items: &[T],
    mut f: impl FnMut(&T, &mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let mut err = None;
    write_prefixed(out, width, what, |o| {
        for i in items {
            if let Err(e) = f(i, o) {
                err.get_or_insert(e);
            }
        }
    })?;
    err.map_or(Ok(()), Err)
}

/// Like [`write_prefixed`], for a body that can itself fail.
pub fn write_prefixed_with(
    out: &mut Vec<u8>,
    width: LenWidth,
    what: &'static str,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let mut err = None;
    write_prefixed(out, width, what, |o| {
        if let Err(e) = body(o) {
            err = Some(e);
        }
    })?;
    err.map_or(Ok(()), Err)
}

/// Fixed-width big-endian integers, so code-point newtypes can share one codec.
pub trait WireInt: Copy + Eq + fmt::LowerHex {
    /// Hex digits in the `Debug` form of an unknown value.
    const HEX_WIDTH: usize;
    /// Appends the big-endian bytes.
    fn put(self, out: &mut Vec<u8>);
    /// Reads one big-endian value.
    fn get(r: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError>;
}

macro_rules! wire_int {
    ($t:ty, $w:expr, $m:ident) => {
        impl WireInt for $t {
            const HEX_WIDTH: usize = $w;
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
            fn get(r: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError> {
                r.$m(what)
            }
        }
        impl Codec for $t {
            fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
                self.put(out);
                Ok(())
            }
            fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                r.$m(stringify!($t))
            }
        }
    };
}
wire_int!(u8, 2, u8);
wire_int!(u16, 4, u16);
wire_int!(u32, 8, u32);
wire_int!(u64, 16, u64);

/// Declares a code-point newtype over an unsigned integer, with named constants, a `Debug`
/// that prints the RFC name (or the hex value when unknown), `Display`, serde `Serialize` and
/// the [`Codec`]. Every value decodes, known or not, and survives a round trip.
#[macro_export]
macro_rules! code_point {
    (
        $(#[$m:meta])*
        $vis:vis struct $name:ident($repr:ty) {
            $( $(#[$cm:meta])* $cname:ident = $val:expr, )*
        }
    ) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        $vis struct $name(pub $repr);

        impl $name {
            $( $(#[$cm])* pub const $cname: $name = $name($val); )*

            /// The name of this code point, if it is one we know.
            pub fn name(self) -> Option<&'static str> {
                $( if self.0 == $val { return Some(stringify!($cname)); } )*
                None
            }

            /// True when this is one of the named values.
            pub fn is_known(self) -> bool {
                self.name().is_some()
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{}({})", n, self.0),
                    None => write!(
                        f,
                        "{}(0x{:0w$x})",
                        stringify!($name),
                        self.0,
                        w = <$repr as $crate::codec::WireInt>::HEX_WIDTH
                    ),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Debug::fmt(self, f)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl From<$repr> for $name {
            fn from(v: $repr) -> Self {
                $name(v)
            }
        }

        impl $crate::codec::Codec for $name {
            fn encode(&self, out: &mut Vec<u8>) -> Result<(), $crate::codec::EncodeError> {
                <$repr as $crate::codec::WireInt>::put(self.0, out);
                Ok(())
            }
            fn read(r: &mut $crate::codec::Reader<'_>) -> Result<Self, $crate::codec::DecodeError> {
                Ok($name(<$repr as $crate::codec::WireInt>::get(r, stringify!($name))?))
            }
        }
    };
}

/// Opaque bytes from the wire (`opaque x<..>` contents, unknown values, signatures).
///
/// `Debug` prints printable ASCII as a quoted string and anything else as `h'..'` hex (long
/// values abbreviated); `Display` and serde give the full hex string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Opaque(pub Vec<u8>);

impl Opaque {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// Reads `opaque<min..width max>` with its length prefix.
    pub fn read_prefixed(
        r: &mut Reader<'_>,
        width: LenWidth,
        min: usize,
        what: &'static str,
    ) -> Result<Self, DecodeError> {
        Ok(Opaque(r.opaque(width, min, what)?.to_vec()))
    }

    /// Writes the bytes with a length prefix of `width`.
    pub fn write_prefixed(
        &self,
        out: &mut Vec<u8>,
        width: LenWidth,
        what: &'static str,
    ) -> Result<(), EncodeError> {
        write_opaque(out, width, what, &self.0)
    }
}

impl std::ops::Deref for Opaque {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Opaque {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Opaque {
    fn from(v: Vec<u8>) -> Self {
        Opaque(v)
    }
}

impl From<&[u8]> for Opaque {
    fn from(v: &[u8]) -> Self {
        Opaque(v.to_vec())
    }
}

impl<const N: usize> From<&[u8; N]> for Opaque {
    fn from(v: &[u8; N]) -> Self {
        Opaque(v.to_vec())
    }
}

impl fmt::Debug for Opaque {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOW: usize = 48;
        let printable = |b: &u8| b.is_ascii_graphic() || *b == b' ';
        if !self.0.is_empty() && self.0.len() <= 256 && self.0.iter().all(printable) {
            // ok: every byte is printable ASCII, so this is valid UTF-8
            return write!(f, "{:?}", String::from_utf8_lossy(&self.0));
        }
        if self.0.len() <= SHOW {
            write!(f, "h'{}'", hex::encode(&self.0))
        } else {
            write!(
                f,
                "h'{}…' ({} bytes)",
                hex::encode(&self.0[..SHOW]), // ok: len > SHOW
                self.0.len()
            )
        }
    }
}

impl fmt::Display for Opaque {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl serde::Serialize for Opaque {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}
