//! The opening handshake (RFC 6455 §4.2): an HTTP/1.1 `GET` with `Upgrade: websocket` becomes
//! `101 Switching Protocols`, or is answered 400 (426 for a version other than 13).
//!
//! The request has already been framed and validated by the HTTP parser (`http::parser`), with
//! the same limits as on an `http://` worker. `Sec-WebSocket-Accept` is
//! `base64(SHA-1(key + GUID))`, through the `sha1_smol` and `base64` crates.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

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
        .filter(|key| is_key(key))
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
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(GUID);
    BASE64.encode(sha1.digest().bytes())
}

/// A fresh `Sec-WebSocket-Key` for a client: its 16 random bytes in base64.
pub(crate) fn client_key(random: &[u8; 16]) -> String {
    BASE64.encode(random)
}

/// Whether `key` is a valid `Sec-WebSocket-Key`: 16 bytes in canonical padded base64 (RFC 4648
/// §4; the bits that padding leaves over must be zero).
pub(crate) fn is_key(key: &str) -> bool {
    // 16 bytes are 24 characters; the decoder wants room for 18 (24 / 4 * 3).
    let mut decoded = [0u8; 18];
    key.len() == 24 && BASE64.decode_slice(key, &mut decoded) == Ok(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_16_bytes_of_canonical_base64() {
        assert!(is_key("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(is_key(&client_key(&[0xff; 16])));
        assert_eq!(client_key(b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
        for bad in [
            "",
            "Zm9vYmFy",
            "dGhlIHNhbXBsZSBub25jZQ",
            "dGhlIHNhbXBsZSBub25jZQ=",
            "dGhlIHNhbXBsZSBub25jZR==",
            "dGhlIHNhbXBsZSBub25jZQ=A",
            "dGhlIHNhbXBsZSBub25jZ===",
            "dGhlIHNhbXBsZSBub25j!Q==",
            "dGhlIHNhbXBsZSBub25jZQ==\0",
            "dGhlIHNhbXBsZSBub25jZXMh",
        ] {
            assert!(!is_key(bad), "{bad}");
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
