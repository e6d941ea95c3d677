//! `text://`: one message per line.
//!
//! A package ends at `\n`; `decode` strips the trailing `\r\n` (or `\n`), `encode` appends `\n`.
//! A line that reaches `max_package_size` without a `\n` closes the connection, as in Workerman.
//! Bytes that are not UTF-8 are replaced with U+FFFD in the `String` that `on_message` receives
//! (take `Vec<u8>` in `on_message` to get them untouched).
//!
//! ```
//! use workerman::protocols::{text, Input};
//!
//! let received = b"GET key\r\nSET k";
//! let Input::Package(length) = text::input(received, 1024) else { unreachable!() };
//! assert_eq!(text::decode(&received[..length]), "GET key");
//! assert_eq!(text::input(&received[length..], 1024), Input::NeedMore); // half a line
//! let mut out = Vec::new();
//! text::encode(b"OK", &mut out);
//! assert_eq!(out, b"OK\n");
//! ```

use super::{Input, Protocol};
use crate::connection::TcpConnection;

/// The newline-framed text protocol, as Workerman's `Text`.
///
/// ```
/// use workerman::protocols::{text, Input};
/// assert_eq!(text::input(b"hello\nwor", 1024), Input::Package(6));
/// assert_eq!(text::decode(b"hello\r\n"), "hello");
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct Text;

/// Where the first line in `buffer` ends (its length, `\n` included).
///
/// ```
/// use workerman::protocols::{text, Input};
/// assert_eq!(text::input(b"no newline yet", 1024), Input::NeedMore);
/// assert_eq!(text::input(b"too long", 4), Input::Invalid);
/// ```
pub fn input(buffer: &[u8], max_package_size: usize) -> Input {
    match buffer.iter().position(|&byte| byte == b'\n') {
        Some(end) if end < max_package_size => Input::Package(end + 1),
        Some(_) => Input::Invalid,
        None if buffer.len() >= max_package_size => Input::Invalid,
        None => Input::NeedMore,
    }
}

/// The line without its `\r\n` / `\n` ending (Workerman's `rtrim("\r\n")`).
///
/// ```
/// assert_eq!(workerman::protocols::text::decode(b"a line\r\n"), "a line");
/// ```
pub fn decode(package: &[u8]) -> String {
    let mut end = package.len();
    while end > 0 && matches!(package[end - 1], b'\r' | b'\n') {
        end -= 1;
    }
    match std::str::from_utf8(&package[..end]) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(&package[..end]).into_owned(),
    }
}

/// The raw line without its ending, for `on_message` closures that take `Vec<u8>`.
pub(crate) fn decode_bytes(package: &[u8]) -> Vec<u8> {
    let mut end = package.len();
    while end > 0 && matches!(package[end - 1], b'\r' | b'\n') {
        end -= 1;
    }
    package[..end].to_vec()
}

/// Appends `data` and a `\n`.
///
/// ```
/// let mut out = Vec::new();
/// workerman::protocols::text::encode(b"hi", &mut out);
/// assert_eq!(out, b"hi\n");
/// ```
pub fn encode(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len() + 1);
    out.extend_from_slice(data);
    out.push(b'\n');
}

impl Protocol for Text {
    type Message = String;
    fn input(&self, buffer: &[u8], connection: &TcpConnection) -> Input {
        input(buffer, connection.max_package_size())
    }
    fn decode(&self, package: &[u8], _connection: &TcpConnection) -> String {
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
    fn finds_each_line_and_strips_its_ending() {
        let buffer = b"one\r\ntwo\nthree";
        assert_eq!(input(buffer, 100), Input::Package(5));
        assert_eq!(decode(&buffer[..5]), "one");
        assert_eq!(input(&buffer[5..], 100), Input::Package(4));
        assert_eq!(decode(&buffer[5..9]), "two");
        assert_eq!(input(&buffer[9..], 100), Input::NeedMore);
    }

    #[test]
    fn a_line_at_the_package_limit_is_invalid() {
        assert_eq!(input(b"12345", 5), Input::Invalid);
        assert_eq!(input(b"12345\n", 5), Input::Invalid);
        assert_eq!(input(b"1234\n", 5), Input::Package(5));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        assert_eq!(decode(b"a\xffb\n"), "a\u{fffd}b");
        assert_eq!(decode_bytes(b"a\xffb\r\n"), b"a\xffb");
    }
}
