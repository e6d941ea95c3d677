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
