//! Errors found while reading an HTTP request, each mapped to the 4xx reply that ends the connection.

use std::fmt;

/// Why an HTTP request was refused.
///
/// Every variant maps to a 4xx status ([`HttpError::status`]); the server answers with that status
/// and `Connection: close`, then ends the connection.
///
/// ```
/// use workerman::protocols::http::HttpError;
///
/// let error = HttpError::BadRequest("invalid Host header");
/// assert_eq!(error.status(), 400);
/// assert_eq!(error.to_string(), "400 Bad Request: invalid Host header");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpError {
    /// The request is malformed (400); the string says what was wrong.
    BadRequest(&'static str),
    /// The request head is larger than the configured limit, or has too many fields (431).
    HeaderTooLarge,
    /// The request (head and body) is larger than the maximum package size (413).
    PayloadTooLarge,
    /// 408: the request body did not arrive within the body timeout.
    RequestTimeout,
}

impl HttpError {
    /// The HTTP status code of the reply: 400, 413 or 431.
    ///
    /// ```
    /// use workerman::protocols::http::HttpError;
    ///
    /// assert_eq!(HttpError::PayloadTooLarge.status(), 413);
    /// assert_eq!(HttpError::HeaderTooLarge.status(), 431);
    /// ```
    pub fn status(&self) -> u16 {
        match self {
            HttpError::BadRequest(_) => 400,
            HttpError::PayloadTooLarge => 413,
            HttpError::HeaderTooLarge => 431,
            HttpError::RequestTimeout => 408,
        }
    }

    /// True for a malformed request (400).
    ///
    /// ```
    /// use workerman::protocols::http::HttpError;
    ///
    /// assert!(HttpError::BadRequest("bad chunk size").is_bad_request());
    /// ```
    pub fn is_bad_request(&self) -> bool {
        matches!(self, HttpError::BadRequest(_))
    }

    /// The status line's reason phrase, e.g. `"Bad Request"`.
    fn reason(&self) -> &'static str {
        match self {
            HttpError::BadRequest(_) => "Bad Request",
            HttpError::PayloadTooLarge => "Payload Too Large",
            HttpError::HeaderTooLarge => "Request Header Fields Too Large",
            HttpError::RequestTimeout => "Request Timeout",
        }
    }

    /// The complete reply on the wire: status line, `Connection: close`, a plain-text body that
    /// repeats the reason phrase, framed by `Content-Length`.
    pub(crate) fn response(&self) -> &'static [u8] {
        match self {
            HttpError::BadRequest(_) => {
                b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nBad Request"
            }
            HttpError::PayloadTooLarge => {
                b"HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 17\r\n\r\nPayload Too Large"
            }
            HttpError::RequestTimeout => {
                b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 15\r\n\r\nRequest Timeout"
            }
            HttpError::HeaderTooLarge => {
                b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 31\r\n\r\nRequest Header Fields Too Large"
            }
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::BadRequest(detail) => write!(f, "400 Bad Request: {detail}"),
            other => write!(f, "{} {}", other.status(), other.reason()),
        }
    }
}

impl std::error::Error for HttpError {}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [HttpError; 4] = [
        HttpError::BadRequest("x"),
        HttpError::RequestTimeout,
        HttpError::PayloadTooLarge,
        HttpError::HeaderTooLarge,
    ];

    /// Each reply must be a complete response whose Content-Length matches its body.
    #[test]
    fn responses_are_correctly_framed() {
        for error in ALL {
            let wire = std::str::from_utf8(error.response()).unwrap();
            let (head, body) = wire.split_once("\r\n\r\n").unwrap();
            let status_line = format!("HTTP/1.1 {} {}", error.status(), error.reason());
            assert!(head.starts_with(&status_line), "{head}");
            assert!(head.contains("\r\nConnection: close"));
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(length, body.len());
            assert_eq!(body, error.reason());
        }
    }

    #[test]
    fn status_and_display() {
        assert_eq!(HttpError::BadRequest("x").status(), 400);
        assert_eq!(HttpError::PayloadTooLarge.status(), 413);
        assert_eq!(HttpError::HeaderTooLarge.status(), 431);
        assert_eq!(
            HttpError::PayloadTooLarge.to_string(),
            "413 Payload Too Large"
        );
        assert_eq!(
            HttpError::HeaderTooLarge.to_string(),
            "431 Request Header Fields Too Large"
        );
        assert!(!HttpError::HeaderTooLarge.is_bad_request());
        assert!(std::mem::size_of::<HttpError>() <= 24);
    }
}
