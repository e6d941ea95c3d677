//! `frame://`: a 4-byte big-endian length, which counts itself, then the payload.
//!
//! ```
//! use workerman::protocols::{frame, Input};
//!
//! let mut wire = Vec::new();
//! frame::encode(b"first", &mut wire);
//! frame::encode(b"second", &mut wire);
//! // Packages are cut from the stream one at a time.
//! let Input::Package(length) = frame::input(&wire, 1024) else { unreachable!() };
//! assert_eq!(frame::decode(&wire[..length]), b"first");
//! assert_eq!(frame::input(&wire[length..], 1024), Input::Package(10));
//! assert_eq!(frame::input(&wire[..3], 1024), Input::NeedMore);
//! ```

use super::{Input, Protocol};
use crate::connection::TcpConnection;

/// The length-prefixed protocol, as Workerman's `Frame`.
///
/// ```
/// use workerman::protocols::{frame, Input};
/// let mut wire = Vec::new();
/// frame::encode(b"hi", &mut wire);
/// assert_eq!(wire, b"\x00\x00\x00\x06hi");
/// assert_eq!(frame::input(&wire, 1024), Input::Package(6));
/// assert_eq!(frame::decode(&wire), b"hi");
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct Frame;

/// The whole length of the frame at the start of `buffer`.
///
/// A length under 4 (it must count its own header) or over `max_package_size` is invalid.
///
/// ```
/// use workerman::protocols::{frame, Input};
/// assert_eq!(frame::input(b"\x00\x00", 1024), Input::NeedMore);
/// assert_eq!(frame::input(b"\x00\x00\x00\x02", 1024), Input::Invalid);
/// ```
pub fn input(buffer: &[u8], max_package_size: usize) -> Input {
    let Some(header) = buffer.get(..4) else {
        return Input::NeedMore;
    };
    let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if length < 4 || length > max_package_size {
        Input::Invalid
    } else {
        Input::Package(length)
    }
}

/// The payload of one whole frame.
///
/// ```
/// assert_eq!(workerman::protocols::frame::decode(b"\x00\x00\x00\x05x"), b"x");
/// ```
pub fn decode(package: &[u8]) -> Vec<u8> {
    package.get(4..).unwrap_or_default().to_vec()
}

/// Appends the 4-byte length (payload + 4) and the payload.
///
/// ```
/// let mut out = Vec::new();
/// workerman::protocols::frame::encode(b"x", &mut out);
/// assert_eq!(out, b"\x00\x00\x00\x05x");
/// ```
///
/// # Panics
/// If the payload does not fit a `u32` length (4 GiB), which no `max_package_size` allows.
pub fn encode(data: &[u8], out: &mut Vec<u8>) {
    let length = u32::try_from(data.len() + 4).expect("a frame payload must be under 4 GiB");
    out.reserve(data.len() + 4);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(data);
}

impl Protocol for Frame {
    type Message = Vec<u8>;
    fn input(&self, buffer: &[u8], connection: &TcpConnection) -> Input {
        input(buffer, connection.max_package_size())
    }
    fn decode(&self, package: &[u8], _connection: &TcpConnection) -> Vec<u8> {
        decode(package)
    }
    fn encode(&self, data: &[u8], _connection: &TcpConnection, out: &mut Vec<u8>) {
        encode(data, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_lengths() {
        let mut wire = Vec::new();
        encode(b"payload", &mut wire);
        encode(b"", &mut wire);
        assert_eq!(input(&wire, 100), Input::Package(11));
        assert_eq!(decode(&wire[..11]), b"payload");
        assert_eq!(input(&wire[11..], 100), Input::Package(4));
        assert_eq!(decode(&wire[11..]), b"");
        assert_eq!(input(b"\x00\x00\x00\x00", 100), Input::Invalid);
        assert_eq!(input(b"\x00\x00\x01\x00", 100), Input::Invalid);
        assert_eq!(input(b"\x00\x00\x00\x64", 100), Input::Package(100));
    }
}
