//! `Chunk`: one piece of a chunked response body, Workerman's `Chunk`.

use crate::protocols::http::response::{Body, push_chunk};

/// One chunk of a `Transfer-Encoding: chunked` response, sent with `connection.send(..)` after a
/// [`Response`](crate::protocols::http::Response) that set that header.
///
/// It is written as `{hex length}\r\n{data}\r\n`; an empty chunk is the terminator `0\r\n\r\n`,
/// which ends the response.
///
/// ```
/// use workerman::protocols::http::Chunk;
///
/// assert_eq!(Chunk::new("hello").to_bytes(), b"5\r\nhello\r\n");
/// assert_eq!(Chunk::new("").to_bytes(), b"0\r\n\r\n");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chunk(Body);

impl Chunk {
    /// A chunk carrying `data` (borrowed without copying when it is `'static`).
    ///
    /// ```
    /// use workerman::protocols::http::Chunk;
    ///
    /// let chunk = Chunk::new(vec![b'x'; 16]);
    /// assert_eq!(&chunk.to_bytes()[..4], b"10\r\n");
    /// ```
    pub fn new(data: impl Into<Body>) -> Chunk {
        Chunk(data.into())
    }

    /// The terminating chunk, the same as `Chunk::new("")`.
    ///
    /// ```
    /// use workerman::protocols::http::Chunk;
    ///
    /// assert_eq!(Chunk::last(), Chunk::new(""));
    /// ```
    pub fn last() -> Chunk {
        Chunk(Body::empty())
    }

    /// The data carried, without framing.
    ///
    /// ```
    /// use workerman::protocols::http::Chunk;
    ///
    /// assert_eq!(Chunk::new("abc").data(), b"abc");
    /// ```
    pub fn data(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The wire bytes of this chunk.
    ///
    /// ```
    /// use workerman::protocols::http::Chunk;
    ///
    /// assert_eq!(Chunk::new("x").to_bytes(), b"1\r\nx\r\n");
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Appends the wire bytes to `out` without allocating.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        push_chunk(out, self.data());
    }

    /// `true` for the empty terminating chunk: the response is over after it.
    pub(crate) fn is_last(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_framing() {
        assert_eq!(Chunk::new("x").to_bytes(), b"1\r\nx\r\n");
        assert_eq!(
            Chunk::new("hello world!!!!!").to_bytes(),
            b"10\r\nhello world!!!!!\r\n"
        );
        let big = vec![b'a'; 0xabc];
        let mut expected = b"abc\r\n".to_vec();
        expected.extend_from_slice(&big);
        expected.extend_from_slice(b"\r\n");
        assert_eq!(Chunk::new(big).to_bytes(), expected);
    }

    #[test]
    fn empty_chunk_is_the_terminator() {
        assert_eq!(Chunk::new("").to_bytes(), b"0\r\n\r\n");
        assert_eq!(Chunk::new(Vec::new()).to_bytes(), b"0\r\n\r\n");
        assert!(Chunk::new("").is_last());
        assert!(Chunk::last().is_last());
        assert!(!Chunk::new("x").is_last());
    }

    #[test]
    fn binary_and_line_breaks_pass_through() {
        assert_eq!(Chunk::new(&b"\r\n\0"[..]).to_bytes(), b"3\r\n\r\n\0\r\n");
    }

    #[test]
    fn encode_appends() {
        let mut out = b"head".to_vec();
        Chunk::new("ab").encode(&mut out);
        Chunk::last().encode(&mut out);
        assert_eq!(out, b"head2\r\nab\r\n0\r\n\r\n");
    }
}
