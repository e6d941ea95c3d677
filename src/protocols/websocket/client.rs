//! The client's side of the opening handshake (RFC 6455 §4.1) and of masking, for `ws://`
//! [`AsyncTcpConnection`](crate::connection::AsyncTcpConnection)s.
//!
//! The client sends `GET path HTTP/1.1` with `Upgrade: websocket`, `Connection: Upgrade`,
//! `Sec-WebSocket-Version: 13` and a random 16-byte `Sec-WebSocket-Key`; the answer must be a
//! `101` with `Upgrade: websocket`, `Connection: Upgrade` and the matching
//! `Sec-WebSocket-Accept`, or the connection fails. Every frame a client sends is masked with a
//! fresh key (§5.3), drawn from a per-thread generator seeded by the OS's randomness.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};

use super::handshake::{accept_key, client_key};
use super::{Pending, Phase, WebSocketState, frame};

/// The largest `101` answer head accepted.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// The most header lines in the answer.
const MAX_RESPONSE_HEADERS: usize = 64;

/// The server's answer to a `ws://` client's upgrade request, as `on_websocket_connect` gets it.
///
/// ```
/// use workerman::protocols::websocket::HandshakeResponse;
/// let response = HandshakeResponse::parse(
///     b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nX-Id: 7\r\n\r\n",
/// )
/// .unwrap();
/// assert_eq!(response.status(), 101);
/// assert_eq!(response.header("x-id"), Some("7"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeResponse {
    status: u16,
    headers: Vec<(String, String)>,
    head_len: usize,
}

impl HandshakeResponse {
    /// Parses a response head from the start of `bytes`; `None` until the whole head (ending in
    /// an empty line) is there, or when it is not a valid HTTP/1.x response head.
    ///
    /// ```
    /// use workerman::protocols::websocket::HandshakeResponse;
    /// assert!(HandshakeResponse::parse(b"HTTP/1.1 101 OK\r\n").is_none());
    /// ```
    pub fn parse(bytes: &[u8]) -> Option<HandshakeResponse> {
        match parse_head(bytes) {
            Ok(Some(response)) => Some(response),
            _ => None,
        }
    }

    /// The status code (101 on success).
    ///
    /// ```
    /// # let response = workerman::protocols::websocket::HandshakeResponse::parse(b"HTTP/1.1 101 OK\r\n\r\n").unwrap();
    /// assert_eq!(response.status(), 101);
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first header of that name (any case), trimmed.
    ///
    /// ```
    /// # let response = workerman::protocols::websocket::HandshakeResponse::parse(b"HTTP/1.1 101 OK\r\nSec-WebSocket-Protocol: chat\r\n\r\n").unwrap();
    /// assert_eq!(response.header("Sec-WebSocket-Protocol"), Some("chat"));
    /// assert_eq!(response.header("cookie"), None);
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every header, in order, as `(name, value)`.
    ///
    /// ```
    /// # let response = workerman::protocols::websocket::HandshakeResponse::parse(b"HTTP/1.1 101 OK\r\nA: 1\r\n\r\n").unwrap();
    /// assert_eq!(response.headers().count(), 1);
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }
}

/// `Ok(None)`: the head is not whole yet; `Err`: it is not an HTTP response head (or too large).
fn parse_head(bytes: &[u8]) -> Result<Option<HandshakeResponse>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(bytes) {
        Ok(httparse::Status::Complete(head_len)) => {
            let headers = response
                .headers
                .iter()
                .map(|header| {
                    (
                        header.name.to_owned(),
                        String::from_utf8_lossy(header.value).trim().to_owned(),
                    )
                })
                .collect();
            Ok(Some(HandshakeResponse {
                status: response.code.unwrap_or(0),
                headers,
                head_len,
            }))
        }
        Ok(httparse::Status::Partial) if bytes.len() > MAX_RESPONSE_HEAD => Err(format!(
            "the answer's head is over {MAX_RESPONSE_HEAD} bytes"
        )),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(error) => Err(format!("the answer is not HTTP: {error}")),
    }
}

/// Checks the answer at the start of `data` against the key sent: `Ok(None)` until it is whole,
/// then `Ok((head length, response))`, or `Err(why)` when the handshake failed.
pub(crate) fn check_response(
    data: &[u8],
    expected_accept: &str,
) -> Result<Option<(usize, HandshakeResponse)>, String> {
    let Some(response) = parse_head(data)? else {
        return Ok(None);
    };
    if response.status != 101 {
        return Err(format!(
            "the server answered {} instead of 101 Switching Protocols",
            response.status
        ));
    }
    let lists = |name: &str, token: &str| {
        response.header(name).is_some_and(|value| {
            value
                .split(',')
                .any(|item| item.trim().eq_ignore_ascii_case(token))
        })
    };
    if !lists("upgrade", "websocket") || !lists("connection", "upgrade") {
        return Err("the 101 answer lacks Upgrade: websocket or Connection: Upgrade".into());
    }
    if response.header("sec-websocket-accept") != Some(expected_accept) {
        return Err(format!(
            "Sec-WebSocket-Accept {:?} does not match the key sent",
            response.header("sec-websocket-accept").unwrap_or("")
        ));
    }
    Ok(Some((response.head_len, response)))
}

/// A `ws://` client's state for a new connection: the upgrade request ready to go (sent once
/// connected) and the answer it expects.
pub(crate) fn start(
    path: &str,
    host: &str,
    extra_headers: &[u8],
    binary: bool,
    offer_deflate: bool,
) -> WebSocketState {
    let key = client_key(&random_bytes::<16>());
    let mut request = Vec::with_capacity(160 + path.len() + host.len() + extra_headers.len());
    for part in [
        "GET ",
        path,
        " HTTP/1.1\r\nHost: ",
        host,
        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: ",
        &key,
        "\r\n",
    ] {
        request.extend_from_slice(part.as_bytes());
    }
    if let Some(offer) = super::client_offer().filter(|_| offer_deflate) {
        for part in ["Sec-WebSocket-Extensions: ", offer, "\r\n"] {
            request.extend_from_slice(part.as_bytes());
        }
    }
    request.extend_from_slice(extra_headers);
    request.extend_from_slice(b"\r\n");
    WebSocketState {
        phase: Phase::Handshake,
        binary,
        client: true,
        handshake: Some(Box::new(Pending {
            headers: request,
            held: Vec::new(),
            held_bytes: 0,
            accept: accept_key(&key),
        })),
        ..WebSocketState::default()
    }
}

/// The upgrade request, once: the connection is up and sends it first.
pub(crate) fn take_request(state: &mut WebSocketState) -> Option<Vec<u8>> {
    let pending = state.handshake.as_mut()?;
    (!pending.headers.is_empty()).then(|| std::mem::take(&mut pending.headers))
}

/// A masked, empty ping (`set_websocket_ping_interval`): the bytes to send.
pub(crate) fn ping_frame() -> Vec<u8> {
    let mut wire = Vec::with_capacity(6);
    frame::encode_frame(&mut wire, true, frame::OP_PING, &[], Some(mask()));
    wire
}

thread_local! {
    /// xorshift64* state; never zero.
    static RANDOM: Cell<u64> = Cell::new(seed());
}

/// 64 bits from the OS: std seeds each `RandomState` from the OS's randomness.
fn seed() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(std::process::id().into());
    hasher.finish() | 1
}

fn next_random() -> u64 {
    RANDOM.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    for chunk in bytes.chunks_mut(8) {
        let word = next_random().to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    bytes
}

/// A fresh masking key for one client frame.
pub(crate) fn mask() -> [u8; 4] {
    random_bytes::<4>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(accept: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes()
        .into_iter()
        .chain([0x81, 0x02, b'h', b'i'])
        .collect()
    }

    #[test]
    fn request_has_the_rfc_headers_and_a_16_byte_key() {
        let mut state = start(
            "/chat?x=1",
            "example.com:8000",
            b"Origin: http://a\r\n",
            false,
            false,
        );
        let request = String::from_utf8(take_request(&mut state).unwrap()).unwrap();
        assert!(request.starts_with("GET /chat?x=1 HTTP/1.1\r\nHost: example.com:8000\r\n"));
        assert!(request.contains("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"));
        assert!(request.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert!(request.ends_with("\r\nOrigin: http://a\r\n\r\n"));
        let key = request
            .lines()
            .find_map(|line| line.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap();
        assert!(super::super::handshake::is_key(key));
        assert_eq!(state.handshake.as_ref().unwrap().accept, accept_key(key));
        assert!(take_request(&mut state).is_none(), "sent once");
    }

    #[test]
    fn keys_differ() {
        let mut first = start("/", "h", b"", false, false);
        let mut second = start("/", "h", b"", false, false);
        assert_ne!(take_request(&mut first), take_request(&mut second));
    }

    #[test]
    fn answers_are_checked() {
        let good = answer("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let expected = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
        let (length, response) = check_response(&good, expected).unwrap().unwrap();
        assert_eq!(&good[length..], b"\x81\x02hi");
        assert_eq!(response.status(), 101);
        // Every split before the end of the head waits.
        let head_end = length;
        for cut in 0..head_end {
            assert_eq!(
                check_response(&good[..cut], expected),
                Ok(None),
                "cut {cut}"
            );
        }
        assert!(check_response(&answer("wrong"), expected).is_err());
        let refused = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
        assert!(
            check_response(refused, expected)
                .unwrap_err()
                .contains("403")
        );
        let no_upgrade =
            b"HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert!(check_response(no_upgrade, expected).is_err());
        assert!(check_response(b"SSH-2.0-OpenSSH\r\n\r\n", expected).is_err());
        let endless = vec![b'a'; MAX_RESPONSE_HEAD + 10];
        let mut huge = b"HTTP/1.1 101 OK\r\nX: ".to_vec();
        huge.extend_from_slice(&endless);
        assert!(check_response(&huge, expected).is_err());
    }

    #[test]
    fn masks_vary() {
        let masks: std::collections::HashSet<[u8; 4]> = (0..1000).map(|_| mask()).collect();
        assert!(masks.len() > 990);
    }
}
