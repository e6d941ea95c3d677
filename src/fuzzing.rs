//! Crate internals for the fuzz targets under `fuzz/` (feature `fuzzing`; not a stable API).

use crate::protocols::http::parser::{Limits, RequestParser};
use crate::protocols::http::{HttpError, Request};

/// The incremental HTTP request parser the connection layer uses.
#[derive(Default)]
pub struct HttpRequestParser {
    parser: RequestParser,
}

impl HttpRequestParser {
    /// `Ok(Some(n))`: a whole request is `buffer[..n]`; `Ok(None)`: need more; `Err`: 4xx.
    pub fn input(
        &mut self,
        buffer: &[u8],
        max_package_size: usize,
    ) -> Result<Option<usize>, HttpError> {
        let limits = Limits {
            max_header_size: crate::protocols::http::MAX_HEADER_SIZE,
            max_package_size,
            ..Limits::default()
        };
        self.parser.input(buffer, &limits)
    }

    /// Whether the head of the request in progress is complete.
    pub fn head_complete(&self) -> bool {
        self.parser.head_complete()
    }

    /// Builds the request from exactly the bytes `input` reported.
    pub fn decode(&mut self, raw: Vec<u8>) -> Request {
        self.parser.decode(raw)
    }
}

/// The connection layer's view of a request: keep-alive, HEAD, Range.
pub fn connection_view(request: &Request) -> (bool, bool, Option<String>) {
    (
        request.keep_alive(),
        request.is_head(),
        request.range_header().map(str::to_owned),
    )
}

/// The WebSocket handshake's checks on a parsed upgrade request: `Ok(Sec-WebSocket-Accept)`, or
/// the HTTP answer (400 or 426) that refuses it.
pub fn websocket_handshake(request: &Request) -> Result<String, Vec<u8>> {
    crate::protocols::websocket::check_handshake(request)
}

/// The Redis client's reply path on arbitrary bytes: each whole frame `frame_length` finds (at
/// most `max_reply_size` bytes) is decoded, as the client does. Returns how many frames were
/// decoded and whether the rest of the input was refused (`Some(true)`), incomplete
/// (`Some(false)`) or empty (`None`).
pub fn redis_replies(data: &[u8], max_reply_size: usize, resp3: bool) -> (usize, Option<bool>) {
    use crate::redis::protocol::{decode, frame_length};
    let mut position = 0;
    let mut frames = 0;
    while position < data.len() {
        match frame_length(&data[position..], max_reply_size, resp3) {
            Ok(Some(length)) => {
                assert!(length > 0 && position + length <= data.len());
                assert!(length <= max_reply_size + 256);
                let _ = decode(&data[position..position + length], resp3);
                position += length;
                frames += 1;
            }
            Ok(None) => return (frames, Some(false)),
            Err(_) => return (frames, Some(true)),
        }
    }
    (frames, None)
}

/// A Redis command as the client writes it (an array of bulk strings), to check it decodes back.
pub fn redis_command(arguments: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    crate::redis::protocol::encode_command(arguments, &mut out);
    out
}
