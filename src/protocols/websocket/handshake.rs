//! The opening handshake (RFC 6455 §4.2): an HTTP/1.1 `GET` with `Upgrade: websocket` becomes
//! `101 Switching Protocols`, or is answered 400 (426 for a version other than 13).
//!
//! The request has already been framed and validated by the HTTP parser (`http::parser`), with
//! the same limits as on an `http://` worker. `Sec-WebSocket-Accept` is
//! `base64(SHA-1(key + GUID))`; SHA-1 (RFC 3174) and base64 (RFC 4648) are written out here,
//! being a few dozen lines each.

use crate::protocols::http::Request;

/// The GUID RFC 6455 appends to the client's key.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Why a handshake request was turned down, and the answer it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// 400 with this explanation.
    BadRequest(&'static str),
    /// 426: not version 13.
    UnsupportedVersion,
}

impl Rejection {
    /// The HTTP answer (the connection ends after it).
    pub(crate) fn response(self) -> Vec<u8> {
        let (status, extra, body) = match self {
            Rejection::BadRequest(reason) => ("400 Bad Request", "", reason),
            Rejection::UnsupportedVersion => (
                "426 Upgrade Required",
                "Sec-WebSocket-Version: 13\r\n",
                "Only WebSocket version 13 is supported",
            ),
        };
        format!(
            "HTTP/1.1 {status}\r\n{extra}Connection: close\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

/// Checks an upgrade request and returns its `Sec-WebSocket-Accept` value.
pub(crate) fn check(request: &Request) -> Result<String, Rejection> {
    if request.method() != "GET" {
        return Err(Rejection::BadRequest(
            "A WebSocket handshake must be a GET request",
        ));
    }
    if request.protocol_version() != "1.1" {
        return Err(Rejection::BadRequest(
            "A WebSocket handshake must be HTTP/1.1",
        ));
    }
    if !has_token(request, "upgrade", "websocket") {
        return Err(Rejection::BadRequest(
            "This is a WebSocket server: the request needs Upgrade: websocket",
        ));
    }
    if !has_token(request, "connection", "upgrade") {
        return Err(Rejection::BadRequest(
            "A WebSocket handshake needs Connection: Upgrade",
        ));
    }
    match request.header("sec-websocket-version").map(str::trim) {
        None => {
            return Err(Rejection::BadRequest(
                "A WebSocket handshake needs Sec-WebSocket-Version",
            ));
        }
        Some("13") => {}
        Some(_) => return Err(Rejection::UnsupportedVersion),
    }
    let key = request
        .header("sec-websocket-key")
        .map(str::trim)
        .filter(|key| decoded_len(key) == Some(16))
        .ok_or(Rejection::BadRequest(
            "A WebSocket handshake needs a Sec-WebSocket-Key of 16 bytes in base64",
        ))?;
    Ok(accept_key(key))
}

/// Whether the comma-separated header `name` lists `token` (any case).
fn has_token(request: &Request, name: &str, token: &str) -> bool {
    request.header(name).is_some_and(|value| {
        value
            .split(',')
            .any(|item| item.trim().eq_ignore_ascii_case(token))
    })
}

/// Whether `name: value` may be added to a handshake: the name a token, the value free of CR,
/// LF and NUL.
pub(crate) fn valid_extra_header(name: &str, value: &str) -> bool {
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte));
    token && !value.bytes().any(|byte| matches!(byte, b'\r' | b'\n' | 0))
}

/// The `101 Switching Protocols` answer, with `extra` header lines (each ending in CRLF).
pub(crate) fn switching_protocols(accept: &str, extra: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Accept: ",
    );
    out.extend_from_slice(accept.as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(extra);
    out.extend_from_slice(b"\r\n");
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
///
/// ```
/// // RFC 6455 §1.3's example.
/// assert_eq!(
///     workerman::protocols::websocket::accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(key: &str) -> String {
    let mut input = Vec::with_capacity(key.len() + GUID.len());
    input.extend_from_slice(key.as_bytes());
    input.extend_from_slice(GUID);
    base64_encode(&sha1(&input))
}

/// SHA-1 (RFC 3174).
pub(crate) fn sha1(data: &[u8]) -> [u8; 20] {
    let mut state: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let bit_length = (data.len() as u64).wrapping_mul(8);
    // The message, a 0x80 byte, zeros up to 56 mod 64, then the length in bits.
    let mut tail = [0u8; 128];
    let whole = data.len() / 64 * 64;
    let rest = &data[whole..];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    let tail_len = if rest.len() < 56 { 64 } else { 128 };
    tail[tail_len - 8..tail_len].copy_from_slice(&bit_length.to_be_bytes());
    for block in data[..whole]
        .chunks_exact(64)
        .chain(tail[..tail_len].chunks_exact(64))
    {
        let mut w = [0u32; 80];
        for (index, word) in block.chunks_exact(4).enumerate() {
            w[index] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for index in 16..80 {
            w[index] = (w[index - 3] ^ w[index - 8] ^ w[index - 14] ^ w[index - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = state;
        for (index, &word) in w.iter().enumerate() {
            let (f, k) = match index {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let temp = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(word);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = temp;
        }
        for (value, add) in state.iter_mut().zip([a, b, c, d, e]) {
            *value = value.wrapping_add(add);
        }
    }
    let mut digest = [0u8; 20];
    for (chunk, value) in digest.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&value.to_be_bytes());
    }
    digest
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 with padding (RFC 4648 §4).
pub(crate) fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let bytes = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let group = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]);
        for index in 0..4 {
            if index <= chunk.len() {
                let sextet = (group >> (18 - 6 * index)) & 0x3F;
                out.push(char::from(BASE64[sextet as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// How many bytes `text` decodes to, if it is canonical padded base64 (RFC 4648 §4).
pub(crate) fn decoded_len(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.len() % 4 != 0 {
        return None;
    }
    let padding = bytes.iter().rev().take_while(|&&byte| byte == b'=').count();
    if padding > 2 {
        return None;
    }
    let body = &bytes[..bytes.len() - padding];
    let values: Option<Vec<u8>> = body
        .iter()
        .map(|byte| BASE64.iter().position(|c| c == byte).map(|v| v as u8))
        .collect();
    let values = values?;
    // The bits that padding leaves over must be zero (canonical encoding).
    let last = values.last().copied().unwrap_or(0);
    let spare_bits_clear = match padding {
        1 => last & 0x03 == 0,
        2 => last & 0x0F == 0,
        _ => true,
    };
    spare_bits_clear.then_some(bytes.len() / 4 * 3 - padding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    #[test]
    fn sha1_test_vectors() {
        // RFC 3174 §7.3 and FIPS 180 examples.
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(&sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(&sha1(&vec![b'a'; 1_000_000])),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
        let repeated =
            b"0123456701234567012345670123456701234567012345670123456701234567".repeat(10);
        assert_eq!(
            hex(&sha1(&repeated)),
            "dea356a2cddd90c7a7ecedc5ebb563934f460452"
        );
        // Lengths around the padding boundary (55, 56, 63, 64 bytes).
        assert_eq!(
            hex(&sha1(&[b'a'; 55])),
            "c1c8bbdc22796e28c0e15163d20899b65621d65a"
        );
        assert_eq!(
            hex(&sha1(&[b'a'; 56])),
            "c2db330f6083854c99d4b5bfb6e8f29f201be699"
        );
        assert_eq!(
            hex(&sha1(&[b'a'; 64])),
            "0098ba824b5c16427bd7a1122a5a442a25ec644d"
        );
    }

    #[test]
    fn base64_test_vectors() {
        // RFC 4648 §10.
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            if !plain.is_empty() {
                assert_eq!(decoded_len(encoded), Some(plain.len()), "{encoded}");
            }
        }
        assert_eq!(decoded_len("dGhlIHNhbXBsZSBub25jZQ=="), Some(16));
        for bad in [
            "",
            "abc",
            "ab=c",
            "a===",
            "Zh==",
            "Zm9=",
            "Zm9v!A==",
            "dGhlIHNhbXBsZSBub25jZQ",
        ] {
            assert_eq!(decoded_len(bad), None, "{bad}");
        }
    }

    #[test]
    fn accept_key_is_rfc_6455s_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    fn request(text: &str) -> Request {
        Request::parse(text.replace('\n', "\r\n").as_bytes()).expect("a valid HTTP request")
    }

    const GOOD: &str = "GET /chat HTTP/1.1\nHost: server.example.com\nUpgrade: websocket\n\
Connection: Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n\n";

    #[test]
    fn handshake_checks() {
        assert_eq!(
            check(&request(GOOD)).as_deref(),
            Ok("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        let firefox = GOOD
            .replace("Connection: Upgrade", "Connection: keep-alive, Upgrade")
            .replace("Upgrade: websocket", "Upgrade: WebSocket");
        assert!(check(&request(&firefox)).is_ok());
        let bad = |from: &str, to: &str| check(&request(&GOOD.replace(from, to)));
        assert!(matches!(bad("GET", "POST"), Err(Rejection::BadRequest(_))));
        assert!(matches!(
            bad("HTTP/1.1", "HTTP/1.0"),
            Err(Rejection::BadRequest(_))
        ));
        assert!(matches!(
            bad("Upgrade: websocket\n", ""),
            Err(Rejection::BadRequest(_))
        ));
        assert!(matches!(
            bad("Connection: Upgrade", "Connection: close"),
            Err(Rejection::BadRequest(_))
        ));
        assert!(matches!(
            bad("Sec-WebSocket-Version: 13\n", ""),
            Err(Rejection::BadRequest(_))
        ));
        assert_eq!(
            bad("Version: 13", "Version: 8"),
            Err(Rejection::UnsupportedVersion)
        );
        assert!(matches!(
            bad("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n", ""),
            Err(Rejection::BadRequest(_))
        ));
        assert!(matches!(
            bad("dGhlIHNhbXBsZSBub25jZQ==", "Zm9vYmFy"),
            Err(Rejection::BadRequest(_))
        ));
        let answer = String::from_utf8(Rejection::UnsupportedVersion.response()).unwrap();
        assert!(answer.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(answer.contains("\r\nSec-WebSocket-Version: 13\r\n"));
    }
}
