//! `Response`: an HTTP/1.1 response builder; the encoder that writes it onto the wire is in
//! `encode.rs` (and `file_body.rs` for files), as hyper splits its encoder from its builder.
//!
//! Encoding follows Workerman v5.2 byte for byte where Workerman is right, and fixes its known
//! defects: header names are matched case-insensitively, the SSE head is chosen by media type,
//! HEAD / 1xx / 204 / 304 responses carry no body, and `Connection: close` is honoured.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::protocols::http::file;

mod body;
mod cookie;
mod digits;
mod encode;
mod file_body;
mod header;
mod status;

pub use body::Body;
pub use cookie::{Cookie, SameSite};
pub(crate) use digits::push_decimal;
pub(crate) use encode::{EncodeOptions, Encoded, Framing, encode_body_response, push_chunk};
pub(crate) use header::Header;
use header::{clean_value, is_representation_header, is_token};
use status::reason_phrase;

const NOT_FOUND_BODY: &str = "<h3>404 Not Found</h3>";

/// An HTTP/1.1 response, Workerman's `Response`: status, headers in insertion order, and a body
/// or a file.
///
/// Send it with `connection.send(response)`. The encoder adds `Connection: keep-alive` (or
/// `close`), a default `Content-Type: text/html;charset=utf-8` and `Content-Length` when they are
/// absent; a `Content-Type` of `text/event-stream` starts a Server-Sent Events stream and
/// `Transfer-Encoding: chunked` a chunked one (then send [`ServerSentEvents`] or [`Chunk`]s).
///
/// Header names are validated (an invalid name is dropped with a warning) and CR, LF, NUL and
/// other control characters in values become spaces, so no header can split the response.
///
/// [`ServerSentEvents`]: crate::protocols::http::ServerSentEvents
/// [`Chunk`]: crate::protocols::http::Chunk
///
/// ```
/// use workerman::protocols::http::Response;
///
/// let response = Response::new(200, [("Content-Type", "text/event-stream")], "\r\n");
/// assert_eq!(response.header("content-type"), Some("text/event-stream"));
///
/// let json = Response::ok(r#"{"ok":true}"#).with_header("Content-Type", "application/json");
/// assert_eq!(json.status(), 200);
/// ```
#[derive(Clone, Debug)]
pub struct Response {
    status: u16,
    reason: Option<Cow<'static, str>>,
    headers: Vec<Header>,
    body: Body,
    file: Option<FileSource>,
}

#[derive(Clone, Debug)]
struct FileSource {
    path: PathBuf,
    /// `(offset, len)` chosen by the application (`len == 0`: to the end); `None`: whole file,
    /// and the request's `Range` header is honoured.
    window: Option<(u64, u64)>,
}

impl Default for Response {
    /// `200 OK` with no headers and an empty body.
    ///
    /// ```
    /// use workerman::protocols::http::Response;
    ///
    /// let response = Response::default().with_status(204);
    /// assert_eq!(response.status(), 204);
    /// ```
    fn default() -> Response {
        Response {
            status: 200,
            reason: None,
            headers: Vec::new(),
            body: Body::empty(),
            file: None,
        }
    }
}

impl Response {
    /// Workerman's `new Response($status, $headers, $body)`.
    ///
    /// A status outside 100..=999 becomes 500 (with a warning). For no headers use
    /// [`Response::ok`] or `Response::default().with_status(..).with_body(..)`, since an empty `[]`
    /// leaves the header types uninferred.
    ///
    /// ```
    /// use workerman::protocols::http::Response;
    ///
    /// let response = Response::new(404, [("Content-Type", "text/plain")], "no such page");
    /// assert_eq!(response.status(), 404);
    /// assert_eq!(response.body_bytes(), b"no such page");
    /// ```
    pub fn new<H, K, V>(status: u16, headers: H, body: impl Into<Body>) -> Response
    where
        H: IntoIterator<Item = (K, V)>,
        K: Into<Cow<'static, str>>,
        V: Into<Cow<'static, str>>,
    {
        Response::default()
            .with_status(status)
            .with_headers(headers)
            .with_body(body)
    }

    /// A `200 OK` with this body and no headers of its own.
    ///
    /// ```
    /// use workerman::protocols::http::Response;
    ///
    /// assert_eq!(Response::ok("hello").body_bytes(), b"hello");
    /// ```
    pub fn ok(body: impl Into<Body>) -> Response {
        Response::default().with_body(body)
    }

    /// Serves `url_path` (a request path, e.g. `request.path()`) from the directory `root`.
    ///
    /// The path is percent-decoded and must stay inside `root`: `..`, NUL, backslashes, dotfiles
    /// (other than `.well-known`), malformed escapes and symlinks leading out of `root` all give
    /// a 404, as do missing files and directories without an `index.html`. A directory serves
    /// its `index.html`. The file is sent as by [`Response::with_file`].
    ///
    /// ```no_run
    /// use workerman::protocols::http::Response;
    ///
    /// let response = Response::from_static_dir("./public", "/css/site.css");
    /// let refused = Response::from_static_dir("./public", "/../secret.txt");
    /// assert_eq!(refused.status(), 404);
    /// ```
    pub fn from_static_dir(root: impl AsRef<Path>, url_path: &str) -> Response {
        match file::resolve_static(root.as_ref(), url_path) {
            Some(path) => Response::default().with_file(path),
            None => Response::default().into_not_found(),
        }
    }

    /// Sets the status code (Workerman's `withStatus`), resetting any custom reason phrase.
    ///
    /// ```
    /// use workerman::protocols::http::Response;
    ///
    /// assert_eq!(Response::ok("").with_status(201).status(), 201);
    /// ```
    pub fn with_status(mut self, status: u16) -> Response {
        self.status = if (100..=999).contains(&status) {
            status
        } else {
            log::warn!("invalid HTTP status {status}, sending 500 instead");
            500
        };
        self.reason = None;
        self
    }

    /// Sets a custom reason phrase for the status line (CR, LF and controls become spaces).
    ///
    /// ```
    /// use workerman::protocols::http::Response;
    ///
    /// let response = Response::ok("").with_status(299).with_reason("Fine Indeed");
    /// assert_eq!(response.reason(), "Fine Indeed");
    /// ```
    pub fn with_reason(mut self, reason: impl Into<Cow<'static, str>>) -> Response {
        self.reason = Some(clean_value(reason.into()));
        self
    }

    /// Sets a header, replacing every header of that name (names compare case-insensitively).
    /// The header keeps the position of the first one it replaces.
    ///
    /// ```
    /// use workerman::protocols::http::Response;
    ///
    /// let response = Response::new(200, [("X-Mode", "a")], "").with_header("x-mode", "b");
    /// assert_eq!(response.header("X-Mode"), Some("b"));
    /// assert_eq!(response.headers().count(), 1);
    /// ```
    pub fn with_header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Response {
        let name = name.into();
        if !is_token(&name) {
            log::warn!("dropping response header with invalid name {name:?}");
            return self;
        }
        let value = clean_value(value.into());
        match self
            .headers
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some(first) => {
                let mut index = 0;
                self.headers.retain(|(n, _)| {
                    let keep = index <= first || !n.eq_ignore_ascii_case(&name);
                    index += 1;
                    keep
                });
                self.headers[first] = (name, value);
            }
            None => self.headers.push((name, value)),
        }
        self
    }

    /// Adds headers (Workerman's `withHeaders`): a name given again gives another header line.
    ///
    /// ```
    /// use workerman::protocols::http::Response;
    ///
    /// let response = Response::ok("").with_headers([("Link", "</a.css>"), ("Link", "</b.js>")]);
    /// assert_eq!(response.headers().filter(|(n, _)| *n == "Link").count(), 2);
    /// ```
    pub fn with_headers<H, K, V>(mut self, headers: H) -> Response
    where
        H: IntoIterator<Item = (K, V)>,
        K: Into<Cow<'static, str>>,
        V: Into<Cow<'static, str>>,
    {
        for (name, value) in headers {
            self.push_header(name.into(), value.into());
        }
        self
    }

    /// Merges the connection's pending headers (`TcpConnection::set_header`): a name this
    /// response sets keeps its own value, except `Set-Cookie`, which adds a line.
    pub(crate) fn merge_connection_headers(mut self, headers: Vec<Header>) -> Response {
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("set-cookie") || self.header(&name).is_none() {
                self.push_header(name, value);
            }
        }
        self
    }

    /// Removes every header of this name (case-insensitive).
    ///
    /// ```
    /// use workerman::protocols::http::Response;
    ///
    /// let response = Response::new(200, [("X-A", "1")], "").without_header("x-a");
    /// assert_eq!(response.header("X-A"), None);
    /// ```
    pub fn without_header(mut self, name: &str) -> Response {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// Replaces the body (and drops a file set by `with_file`).
    ///
    /// ```
    /// use workerman::protocols::http::Response;
    ///
    /// assert_eq!(Response::ok("a").with_body(vec![b'b']).body_bytes(), b"b");
    /// ```
    pub fn with_body(mut self, body: impl Into<Body>) -> Response {
        self.body = body.into();
        self.file = None;
        self
    }

    /// Sends a file as the body (Workerman's `withFile`).
    ///
    /// The encoder adds `Accept-Ranges: bytes`, a `Content-Type` from the extension (an unknown
    /// one gives `application/octet-stream` and `Content-Disposition: attachment`) and
    /// `Last-Modified`, unless you set them. On a 200 response to a GET, a single-range `Range`
    /// header gives `206 Partial Content` (or `416` when nothing can be served). A path that is not
    /// a regular file gives a 404 now; a file that vanishes before sending gives a 404 then.
    /// Files over 2 MiB are streamed, not read into memory.
    ///
    /// ```no_run
    /// use workerman::protocols::http::Response;
    ///
    /// let response = Response::default().with_file("public/report.pdf");
    /// ```
    pub fn with_file(self, path: impl AsRef<Path>) -> Response {
        self.set_file(path.as_ref(), None)
    }

    /// Sends `len` bytes of a file from `offset` (`len == 0`: to the end), like Workerman's
    /// `withFile($file, $offset, $length)`. A part smaller than the file is a `206` with
    /// `Content-Range`; an offset at or past the end is a `416`. The request's `Range` is not
    /// consulted: the application chose the part.
    ///
    /// ```no_run
    /// use workerman::protocols::http::Response;
    ///
    /// let first_kib = Response::default().with_file_range("video.mp4", 0, 1024);
    /// ```
    pub fn with_file_range(self, path: impl AsRef<Path>, offset: u64, len: u64) -> Response {
        self.set_file(path.as_ref(), Some((offset, len)))
    }

    /// Adds a `Set-Cookie` header (Workerman's `cookie(..)`); see [`Cookie`].
    ///
    /// ```
    /// use workerman::protocols::http::{Cookie, Response};
    ///
    /// let response = Response::ok("").cookie(Cookie::new("a", "1")).cookie(Cookie::new("b", "2"));
    /// assert_eq!(response.headers().filter(|(n, _)| *n == "Set-Cookie").count(), 2);
    /// ```
    pub fn cookie(mut self, cookie: Cookie) -> Response {
        self.push_header(Cow::Borrowed("Set-Cookie"), Cow::Owned(cookie.to_string()));
        self
    }

    /// The status code.
    ///
    /// ```
    /// use workerman::protocols::http::Response;
    ///
    /// assert_eq!(Response::ok("").status(), 200);
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase: the custom one, else the standard one for the status ("" if none).
    ///
    /// ```
    /// use workerman::protocols::http::Response;
    ///
    /// assert_eq!(Response::ok("").with_status(404).reason(), "Not Found");
    /// ```
    pub fn reason(&self) -> &str {
        self.reason
            .as_deref()
            .unwrap_or_else(|| reason_phrase(self.status))
    }

    /// The first header of this name (case-insensitive).
    ///
    /// ```
    /// use workerman::protocols::http::Response;
    ///
    /// let response = Response::new(200, [("Content-Type", "text/plain")], "");
    /// assert_eq!(response.header("CONTENT-TYPE"), Some("text/plain"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &**v)
    }

    /// All headers set so far, in order (the encoder's defaults are not included).
    ///
    /// ```
    /// use workerman::protocols::http::Response;
    ///
    /// let response = Response::new(200, [("A", "1"), ("B", "2")], "");
    /// assert_eq!(response.headers().collect::<Vec<_>>(), [("A", "1"), ("B", "2")]);
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (&**n, &**v))
    }

    /// The body bytes (empty for a file response; see [`Response::file`]).
    ///
    /// ```
    /// use workerman::protocols::http::Response;
    ///
    /// assert_eq!(Response::ok("abc").body_bytes(), b"abc");
    /// ```
    pub fn body_bytes(&self) -> &[u8] {
        self.body.as_bytes()
    }

    /// The file set by `with_file` / `with_file_range`, if any.
    ///
    /// ```
    /// use workerman::protocols::http::Response;
    ///
    /// assert!(Response::ok("").file().is_none());
    /// ```
    pub fn file(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.path.as_path())
    }

    fn push_header(&mut self, name: Cow<'static, str>, value: Cow<'static, str>) {
        if is_token(&name) {
            self.headers.push((name, clean_value(value)));
        } else {
            log::warn!("dropping response header with invalid name {name:?}");
        }
    }

    fn set_file(mut self, path: &Path, window: Option<(u64, u64)>) -> Response {
        if !path.is_file() {
            return self.into_not_found();
        }
        self.body = Body::empty();
        self.file = Some(FileSource {
            path: path.to_path_buf(),
            window,
        });
        self
    }

    /// Becomes Workerman's missing-file answer: 404 with `<h3>404 Not Found</h3>`, dropping the
    /// headers that described the file.
    fn into_not_found(mut self) -> Response {
        self.headers.retain(|(n, _)| !is_representation_header(n));
        self.status = 404;
        self.reason = None;
        self.body = Body::from(NOT_FOUND_BODY);
        self.file = None;
        self
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::protocols::http::file::tests::TempDir;
    use crate::protocols::http::response::encode::tests::wire;

    #[test]
    fn invalid_status_becomes_500() {
        for status in [0, 99, 1000, u16::MAX] {
            assert_eq!(Response::ok("").with_status(status).status(), 500);
        }
    }

    #[test]
    fn with_header_replaces_case_insensitively_in_place() {
        let response = Response::new(
            200,
            [("A", "1"), ("x-k", "old"), ("B", "2"), ("X-K", "older")],
            "",
        )
        .with_header("X-K", "new");
        assert_eq!(
            response.headers().collect::<Vec<_>>(),
            [("A", "1"), ("X-K", "new"), ("B", "2")]
        );
        let appended = Response::ok("").with_header("A", "1").with_header("B", "2");
        assert_eq!(
            appended.headers().collect::<Vec<_>>(),
            [("A", "1"), ("B", "2")]
        );
    }

    #[test]
    fn with_headers_repeats_names() {
        let response =
            Response::ok("").with_headers([("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]);
        assert!(
            wire(response).starts_with("HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n")
        );
    }

    #[test]
    fn without_header_removes_all() {
        let response =
            Response::new(200, [("X", "1"), ("x", "2"), ("Y", "3")], "").without_header("X");
        assert_eq!(response.headers().collect::<Vec<_>>(), [("Y", "3")]);
    }

    #[test]
    fn clean_values_are_not_copied() {
        let response = Response::ok("").with_header("A", "static");
        assert!(matches!(response.headers[0].1, Cow::Borrowed(_)));
    }

    #[test]
    fn with_body_drops_a_file() {
        let dir = TempDir::new("resp-body");
        let path = dir.write("a.txt", b"file");
        let response = Response::default().with_file(&path).with_body("body");
        assert!(response.file().is_none());
        assert!(wire(response).ends_with("\r\n\r\nbody"));
    }

    #[test]
    fn static_dir_serves_and_refuses() {
        let dir = TempDir::new("resp-static");
        dir.write("site/index.html", b"<h1>home</h1>");
        dir.write("secret.txt", b"secret");
        let root = dir.0.join("site");
        let home = Response::from_static_dir(&root, "/");
        assert_eq!(home.status(), 200);
        assert!(wire(home).ends_with("<h1>home</h1>"));
        let home = wire(Response::from_static_dir(&root, "/index.html?x=1"));
        assert!(home.contains("Content-Type: text/html; charset=utf-8\r\n"));
        assert!(home.ends_with("<h1>home</h1>"));
        let escape = Response::from_static_dir(&root, "/%2e%2e/secret.txt");
        assert_eq!(escape.status(), 404);
        assert!(wire(escape).ends_with("<h3>404 Not Found</h3>"));
        assert_eq!(Response::from_static_dir(&root, "/nope").status(), 404);
    }
}
