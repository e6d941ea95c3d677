//! `Response`: an HTTP/1.1 response builder, and the encoder that writes it onto the wire.
//!
//! Encoding follows Workerman v5.2 byte for byte where Workerman is right, and fixes its known
//! defects: header names are matched case-insensitively, the SSE head is chosen by media type,
//! HEAD / 1xx / 204 / 304 responses carry no body, and `Connection: close` is honoured.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::protocols::http::file::{self, FileStream, MAX_INLINE_FILE, RangeOutcome};
use crate::protocols::http::mime;

/// The default `Content-Type`, as Workerman writes it.
const DEFAULT_CONTENT_TYPE: &str = "text/html;charset=utf-8";
const NOT_FOUND_BODY: &str = "<h3>404 Not Found</h3>";
const INTERNAL_ERROR_BODY: &str = "<h3>500 Internal Server Error</h3>";

/// A response body: `'static` data is borrowed (zero-copy), anything else is owned.
///
/// ```
/// use workerman::protocols::http::Body;
///
/// let body = Body::from("hello");
/// assert_eq!(body.as_bytes(), b"hello");
/// assert_eq!(Body::from(vec![1u8, 2]).len(), 2);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Body(Cow<'static, [u8]>);

impl Body {
    /// An empty body.
    ///
    /// ```
    /// use workerman::protocols::http::Body;
    ///
    /// assert!(Body::empty().is_empty());
    /// ```
    pub const fn empty() -> Body {
        Body(Cow::Borrowed(&[]))
    }

    /// The bytes of the body.
    ///
    /// ```
    /// use workerman::protocols::http::Body;
    ///
    /// assert_eq!(Body::from(String::from("hi")).as_bytes(), b"hi");
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    ///
    /// ```
    /// use workerman::protocols::http::Body;
    ///
    /// assert_eq!(Body::from("abc").len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `true` for a body of zero bytes.
    ///
    /// ```
    /// use workerman::protocols::http::Body;
    ///
    /// assert!(Body::from("").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Body({:?})", String::from_utf8_lossy(&self.0))
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body(Cow::Borrowed(s.as_bytes()))
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body(Cow::Owned(s.into_bytes()))
    }
}

impl From<Cow<'static, str>> for Body {
    fn from(s: Cow<'static, str>) -> Body {
        match s {
            Cow::Borrowed(s) => Body::from(s),
            Cow::Owned(s) => Body::from(s),
        }
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Body {
        Body(Cow::Borrowed(bytes))
    }
}

impl<const N: usize> From<&'static [u8; N]> for Body {
    fn from(bytes: &'static [u8; N]) -> Body {
        Body(Cow::Borrowed(bytes))
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Body {
        Body(Cow::Owned(bytes))
    }
}

impl From<Cow<'static, [u8]>> for Body {
    fn from(bytes: Cow<'static, [u8]>) -> Body {
        Body(bytes)
    }
}

/// `SameSite` attribute of a [`Cookie`].
///
/// ```
/// use workerman::protocols::http::{Cookie, SameSite};
///
/// let cookie = Cookie::new("sid", "abc").same_site(SameSite::Strict);
/// assert_eq!(cookie.to_string(), "sid=abc; SameSite=Strict");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    /// Sent only with same-site requests.
    Strict,
    /// Sent with same-site requests and top-level cross-site navigations.
    Lax,
    /// Sent with every request; browsers require `secure(true)` with it.
    None,
}

/// A `Set-Cookie` value, built up and then added with [`Response::cookie`].
///
/// Workerman's `cookie($name, $value, $maxAge, $path, $domain, $secure, $httpOnly, $sameSite)`
/// becomes a builder: set only what you need. Attributes come out in Workerman's order
/// (`Domain`, `Max-Age`, `Path`, `Secure`, `HttpOnly`, `SameSite`). The value is percent-encoded
/// like PHP's `rawurlencode`; a name keeps its RFC 6265 token characters and percent-encodes the
/// rest; `;`, control characters and non-ASCII are dropped from `path` and `domain`, so nothing
/// can add an attribute or a header line.
///
/// ```
/// use workerman::protocols::http::{Cookie, Response, SameSite};
///
/// let response = Response::ok("hi").cookie(
///     Cookie::new("sid", "a b")
///         .max_age(3600)
///         .path("/")
///         .http_only(true)
///         .same_site(SameSite::Lax),
/// );
/// assert_eq!(
///     response.header("set-cookie"),
///     Some("sid=a%20b; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax")
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cookie {
    name: Cow<'static, str>,
    value: Cow<'static, str>,
    max_age: Option<i64>,
    path: Option<Cow<'static, str>>,
    domain: Option<Cow<'static, str>>,
    secure: bool,
    http_only: bool,
    same_site: Option<SameSite>,
}

impl Cookie {
    /// A session cookie `name=value` with no attributes.
    ///
    /// ```
    /// use workerman::protocols::http::Cookie;
    ///
    /// assert_eq!(Cookie::new("lang", "en").to_string(), "lang=en");
    /// ```
    pub fn new(name: impl Into<Cow<'static, str>>, value: impl Into<Cow<'static, str>>) -> Cookie {
        Cookie {
            name: name.into(),
            value: value.into(),
            max_age: None,
            path: None,
            domain: None,
            secure: false,
            http_only: false,
            same_site: None,
        }
    }

    /// `Max-Age` in seconds; zero or negative deletes the cookie.
    ///
    /// ```
    /// use workerman::protocols::http::Cookie;
    ///
    /// assert_eq!(Cookie::new("a", "").max_age(0).to_string(), "a=; Max-Age=0");
    /// ```
    pub fn max_age(mut self, seconds: i64) -> Cookie {
        self.max_age = Some(seconds);
        self
    }

    /// `Path` attribute.
    ///
    /// ```
    /// use workerman::protocols::http::Cookie;
    ///
    /// assert_eq!(Cookie::new("a", "1").path("/app").to_string(), "a=1; Path=/app");
    /// ```
    pub fn path(mut self, path: impl Into<Cow<'static, str>>) -> Cookie {
        self.path = Some(path.into());
        self
    }

    /// `Domain` attribute.
    ///
    /// ```
    /// use workerman::protocols::http::Cookie;
    ///
    /// assert_eq!(Cookie::new("a", "1").domain("example.com").to_string(), "a=1; Domain=example.com");
    /// ```
    pub fn domain(mut self, domain: impl Into<Cow<'static, str>>) -> Cookie {
        self.domain = Some(domain.into());
        self
    }

    /// `Secure` attribute (HTTPS only).
    ///
    /// ```
    /// use workerman::protocols::http::Cookie;
    ///
    /// assert_eq!(Cookie::new("a", "1").secure(true).to_string(), "a=1; Secure");
    /// ```
    pub fn secure(mut self, secure: bool) -> Cookie {
        self.secure = secure;
        self
    }

    /// `HttpOnly` attribute (hidden from JavaScript).
    ///
    /// ```
    /// use workerman::protocols::http::Cookie;
    ///
    /// assert_eq!(Cookie::new("a", "1").http_only(true).to_string(), "a=1; HttpOnly");
    /// ```
    pub fn http_only(mut self, http_only: bool) -> Cookie {
        self.http_only = http_only;
        self
    }

    /// `SameSite` attribute.
    ///
    /// ```
    /// use workerman::protocols::http::{Cookie, SameSite};
    ///
    /// assert_eq!(Cookie::new("a", "1").same_site(SameSite::None).secure(true).to_string(),
    ///            "a=1; Secure; SameSite=None");
    /// ```
    pub fn same_site(mut self, same_site: SameSite) -> Cookie {
        self.same_site = Some(same_site);
        self
    }
}

impl fmt::Display for Cookie {
    /// The `Set-Cookie` header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.name.as_bytes() {
            if is_token_byte(b) {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        f.write_str("=")?;
        for &b in self.value.as_bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        let attribute_text = |f: &mut fmt::Formatter<'_>, text: &str| {
            text.chars()
                .filter(|&c| c.is_ascii() && !c.is_ascii_control() && c != ';')
                .try_for_each(|c| write!(f, "{c}"))
        };
        if let Some(domain) = self.domain.as_deref().filter(|d| !d.is_empty()) {
            f.write_str("; Domain=")?;
            attribute_text(f, domain)?;
        }
        if let Some(max_age) = self.max_age {
            write!(f, "; Max-Age={max_age}")?;
        }
        if let Some(path) = self.path.as_deref().filter(|p| !p.is_empty()) {
            f.write_str("; Path=")?;
            attribute_text(f, path)?;
        }
        if self.secure {
            f.write_str("; Secure")?;
        }
        if self.http_only {
            f.write_str("; HttpOnly")?;
        }
        match self.same_site {
            Some(SameSite::Strict) => f.write_str("; SameSite=Strict"),
            Some(SameSite::Lax) => f.write_str("; SameSite=Lax"),
            Some(SameSite::None) => f.write_str("; SameSite=None"),
            None => Ok(()),
        }
    }
}

/// A header line: name and value.
pub(crate) type Header = (Cow<'static, str>, Cow<'static, str>);

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

    /// Writes the response into `out` (the head, and the body or its first part).
    ///
    /// Never allocates beyond growing `out` (a file response opens the file).
    pub(crate) fn encode(mut self, opts: &EncodeOptions<'_>, out: &mut Vec<u8>) -> Encoded {
        if !is_bodiless(self.status) {
            if let Some(source) = self.file.take() {
                return self.encode_file(source, opts, out);
            }
        }
        let scan = Scan::of(&self.headers);
        let kind = if is_bodiless(self.status) {
            Kind::Bodiless
        } else if scan.event_stream {
            Kind::EventStream
        } else if scan.chunked {
            Kind::Chunked
        } else {
            Kind::Complete
        };
        // A HEAD answer may carry the application's own Content-Length (of the GET body).
        let keep_user_length = kind == Kind::Complete && opts.head_request && scan.content_length;

        push_status_line(out, self.status, self.reason());
        for (name, value) in &self.headers {
            let skip = (opts.close && is(name, "connection"))
                || (is(name, "content-length") && !keep_user_length)
                || (is(name, "transfer-encoding") && kind != Kind::Chunked);
            if !skip {
                push_header(out, name, value);
            }
        }
        push_connection(out, opts, &scan);
        if kind != Kind::Bodiless && !scan.content_type {
            push_header(out, "Content-Type", DEFAULT_CONTENT_TYPE);
        }
        let close_after = opts.close || scan.close;
        let body = self.body.as_bytes();
        let framing = match kind {
            Kind::Bodiless => {
                out.extend_from_slice(b"\r\n");
                Framing::Complete
            }
            Kind::Complete => {
                if !keep_user_length {
                    push_content_length(out, body.len() as u64);
                }
                out.extend_from_slice(b"\r\n");
                if !opts.head_request {
                    out.extend_from_slice(body);
                }
                Framing::Complete
            }
            Kind::EventStream => {
                if !scan.cache_control {
                    push_header(out, "Cache-Control", "no-cache");
                }
                if !scan.accel_buffering {
                    push_header(out, "X-Accel-Buffering", "no");
                }
                out.extend_from_slice(b"\r\n");
                if opts.head_request {
                    Framing::Complete
                } else {
                    // Old Workerman needed a "\r\n" body to end the head; it is not an event.
                    if body.iter().any(|&b| b != b'\r' && b != b'\n') {
                        out.extend_from_slice(body);
                    }
                    Framing::EventStream
                }
            }
            Kind::Chunked => {
                out.extend_from_slice(b"\r\n");
                if opts.head_request {
                    Framing::Complete
                } else {
                    if !body.is_empty() {
                        push_chunk(out, body);
                    }
                    Framing::Chunked
                }
            }
        };
        Encoded {
            framing,
            close_after,
        }
    }

    fn encode_file(
        self,
        source: FileSource,
        opts: &EncodeOptions<'_>,
        out: &mut Vec<u8>,
    ) -> Encoded {
        let opened = File::open(&source.path)
            .and_then(|file| file.metadata().map(|meta| (file, meta)))
            .ok()
            .filter(|(_, meta)| meta.is_file());
        let Some((mut file, meta)) = opened else {
            return self.into_not_found().encode(opts, out);
        };
        let size = meta.len();

        // What to send: [start, end) of the file, and with which status.
        let outcome = match source.window {
            _ if self.status != 200 => None,
            Some((offset, len)) => {
                let end = if len == 0 {
                    size
                } else {
                    offset.saturating_add(len).min(size)
                };
                Some(if offset == 0 && end == size {
                    RangeOutcome::Whole
                } else if offset >= size {
                    RangeOutcome::Unsatisfiable
                } else {
                    RangeOutcome::Partial {
                        first: offset,
                        last: end - 1,
                    }
                })
            }
            None => match opts.range {
                // RFC 9110 §14.2: Range is defined for GET only.
                Some(range) if !opts.head_request => Some(file::parse_range(range, size)),
                _ => None,
            },
        };
        let (status, start, end) = match outcome {
            None | Some(RangeOutcome::Whole) => (self.status, 0, size),
            Some(RangeOutcome::Partial { first, last }) => (206, first, last + 1),
            Some(RangeOutcome::Unsatisfiable) => (416, 0, 0),
        };
        let reason = if status == self.status {
            self.reason()
        } else {
            reason_phrase(status)
        };
        let scan = Scan::of(&self.headers);
        let head_start = out.len();

        push_status_line(out, status, reason);
        for (name, value) in &self.headers {
            let skip = (opts.close && is(name, "connection"))
                || is(name, "content-length")
                || is(name, "transfer-encoding")
                || is(name, "content-range");
            if !skip {
                push_header(out, name, value);
            }
        }
        push_connection(out, opts, &scan);
        let close_after = opts.close || scan.close;
        if status == 416 {
            out.extend_from_slice(b"Content-Range: bytes */");
            push_decimal(out, size);
            out.extend_from_slice(b"\r\n");
            push_content_length(out, 0);
            out.extend_from_slice(b"\r\n");
            return Encoded {
                framing: Framing::Complete,
                close_after,
            };
        }
        let mime = mime::from_path(&source.path);
        if !scan.content_type {
            push_header(
                out,
                "Content-Type",
                mime.unwrap_or("application/octet-stream"),
            );
            if mime.is_none() && !scan.content_disposition {
                push_attachment(out, &source.path);
            }
        }
        if let (false, Ok(modified)) = (scan.last_modified, meta.modified()) {
            let line_start = out.len();
            out.extend_from_slice(b"Last-Modified: ");
            if file::push_http_date(out, modified) {
                out.extend_from_slice(b"\r\n");
            } else {
                out.truncate(line_start);
            }
        }
        if !scan.accept_ranges {
            push_header(out, "Accept-Ranges", "bytes");
        }
        if status == 206 {
            out.extend_from_slice(b"Content-Range: bytes ");
            push_decimal(out, start);
            out.push(b'-');
            push_decimal(out, end - 1);
            out.push(b'/');
            push_decimal(out, size);
            out.extend_from_slice(b"\r\n");
        }
        let len = end - start;
        push_content_length(out, len);
        out.extend_from_slice(b"\r\n");
        if opts.head_request || len == 0 {
            return Encoded {
                framing: Framing::Complete,
                close_after,
            };
        }
        if start > 0 {
            if let Err(err) = file.seek(SeekFrom::Start(start)) {
                return file_error(out, head_start, &source.path, &err, opts);
            }
        }
        if len > MAX_INLINE_FILE {
            return Encoded {
                framing: Framing::File(FileStream::new(file, len)),
                close_after,
            };
        }
        match file.take(len).read_to_end(out) {
            Ok(read) if read as u64 == len => Encoded {
                framing: Framing::Complete,
                close_after,
            },
            Ok(_) => {
                let err = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
                file_error(out, head_start, &source.path, &err, opts)
            }
            Err(err) => file_error(out, head_start, &source.path, &err, opts),
        }
    }
}

/// A file failed while being read: replace what was written with a 500 and close.
fn file_error(
    out: &mut Vec<u8>,
    head_start: usize,
    path: &Path,
    err: &std::io::Error,
    opts: &EncodeOptions<'_>,
) -> Encoded {
    log::error!("reading {}: {err}", path.display());
    out.truncate(head_start);
    let opts = EncodeOptions {
        close: true,
        ..*opts
    };
    write_plain(500, INTERNAL_ERROR_BODY.as_bytes(), &opts, out)
}

/// How the caller should treat the connection after [`Response::encode`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct EncodeOptions<'a> {
    /// The request was `HEAD`: write the head only.
    pub head_request: bool,
    /// The connection closes after this response: write `Connection: close` instead of
    /// keep-alive.
    pub close: bool,
    /// The request's `Range` header value, for `with_file`.
    pub range: Option<&'a str>,
}

/// What follows the head that [`Response::encode`] wrote.
#[derive(Debug)]
pub(crate) enum Framing {
    /// The response is complete in `out`.
    Complete,
    /// An open Server-Sent Events stream: later `ServerSentEvents` are written raw.
    EventStream,
    /// An open chunked body: later `Chunk`s are written framed, `Chunk::new("")` ends it.
    Chunked,
    /// The rest of a large file, to be pulled with `FileStream::fill`.
    File(FileStream),
}

/// The result of encoding a response.
#[derive(Debug)]
pub(crate) struct Encoded {
    /// What follows the head.
    pub framing: Framing,
    /// Close the connection once this response is sent (the application sent
    /// `Connection: close`, or `EncodeOptions::close`).
    pub close_after: bool,
}

/// `connection.send("ok")` on an HTTP connection: a 200 text/html response, written with no
/// intermediate struct.
pub(crate) fn encode_body_response(
    body: &[u8],
    opts: &EncodeOptions<'_>,
    out: &mut Vec<u8>,
) -> Encoded {
    write_plain(200, body, opts, out)
}

/// A response with only the default headers.
fn write_plain(status: u16, body: &[u8], opts: &EncodeOptions<'_>, out: &mut Vec<u8>) -> Encoded {
    push_status_line(out, status, reason_phrase(status));
    out.extend_from_slice(if opts.close {
        b"Connection: close\r\n"
    } else {
        b"Connection: keep-alive\r\n"
    });
    out.extend_from_slice(b"Content-Type: text/html;charset=utf-8\r\n");
    push_content_length(out, body.len() as u64);
    out.extend_from_slice(b"\r\n");
    if !opts.head_request {
        out.extend_from_slice(body);
    }
    Encoded {
        framing: Framing::Complete,
        close_after: opts.close,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bodiless,
    Complete,
    EventStream,
    Chunked,
}

/// What the application's headers already say, from one pass over them.
#[derive(Default)]
struct Scan {
    connection: bool,
    close: bool,
    content_type: bool,
    event_stream: bool,
    content_length: bool,
    chunked: bool,
    cache_control: bool,
    accel_buffering: bool,
    content_disposition: bool,
    last_modified: bool,
    accept_ranges: bool,
}

impl Scan {
    fn of(headers: &[Header]) -> Scan {
        let mut scan = Scan::default();
        for (name, value) in headers {
            if is(name, "connection") {
                scan.connection = true;
                scan.close |= value
                    .split(',')
                    .any(|token| token.trim().eq_ignore_ascii_case("close"));
            } else if is(name, "content-type") {
                scan.content_type = true;
                scan.event_stream = is_event_stream(value);
            } else if is(name, "content-length") {
                scan.content_length = true;
            } else if is(name, "transfer-encoding") {
                // The last coding must be chunked; anything else cannot frame a response.
                scan.chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|coding| coding.trim().eq_ignore_ascii_case("chunked"));
                if !scan.chunked {
                    log::warn!("dropping Transfer-Encoding {value:?}: only chunked is supported");
                }
            } else if is(name, "cache-control") {
                scan.cache_control = true;
            } else if is(name, "x-accel-buffering") {
                scan.accel_buffering = true;
            } else if is(name, "content-disposition") {
                scan.content_disposition = true;
            } else if is(name, "last-modified") {
                scan.last_modified = true;
            } else if is(name, "accept-ranges") {
                scan.accept_ranges = true;
            }
        }
        scan
    }
}

/// `true` when a `Content-Type` value's media type is `text/event-stream` (any case, parameters
/// and surrounding spaces allowed).
fn is_event_stream(content_type: &str) -> bool {
    let media_type = content_type.split(';').next().unwrap_or("");
    media_type
        .trim_matches([' ', '\t'])
        .eq_ignore_ascii_case("text/event-stream")
}

/// 1xx, 204 and 304 responses never have a body (RFC 9112 §6.3).
fn is_bodiless(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

/// Headers that describe a body; dropped when a file response turns into a 404.
fn is_representation_header(name: &str) -> bool {
    [
        "content-type",
        "content-disposition",
        "content-range",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "last-modified",
        "accept-ranges",
        "etag",
    ]
    .iter()
    .any(|known| is(name, known))
}

fn is(name: &str, lower_case: &str) -> bool {
    name.eq_ignore_ascii_case(lower_case)
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// CR, LF, NUL and other control characters (but not tab) become spaces; clean values are
/// kept as they are, without copying.
fn clean_value(value: Cow<'static, str>) -> Cow<'static, str> {
    if value.bytes().any(is_forbidden_in_value) {
        let cleaned: String = value
            .chars()
            .map(|c| {
                if c.is_ascii() && is_forbidden_in_value(c as u8) {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        Cow::Owned(cleaned)
    } else {
        value
    }
}

fn is_forbidden_in_value(b: u8) -> bool {
    (b.is_ascii_control() && b != b'\t') || b == 0x7f
}

fn push_status_line(out: &mut Vec<u8>, status: u16, reason: &str) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn push_connection(out: &mut Vec<u8>, opts: &EncodeOptions<'_>, scan: &Scan) {
    if opts.close {
        push_header(out, "Connection", "close");
    } else if !scan.connection {
        push_header(out, "Connection", "keep-alive");
    }
}

fn push_content_length(out: &mut Vec<u8>, len: u64) {
    out.extend_from_slice(b"Content-Length: ");
    push_decimal(out, len);
    out.extend_from_slice(b"\r\n");
}

/// `Content-Disposition: attachment; filename="…"`, with a quoted-string-safe ASCII fallback name
/// and, for non-ASCII names, an RFC 8187 `filename*`.
fn push_attachment(out: &mut Vec<u8>, path: &Path) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or(Cow::Borrowed("download"));
    out.extend_from_slice(b"Content-Disposition: attachment; filename=\"");
    for &b in name.as_bytes() {
        let safe = b.is_ascii() && !b.is_ascii_control() && b != b'"' && b != b'\\';
        out.push(if safe { b } else { b'_' });
    }
    out.push(b'"');
    if !name.is_ascii() {
        out.extend_from_slice(b"; filename*=UTF-8''");
        for &b in name.as_bytes() {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                out.push(b);
            } else {
                out.push(b'%');
                push_hex_digit(out, b >> 4, true);
                push_hex_digit(out, b & 0xf, true);
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// A chunk of a chunked body: `{hex len}\r\n{data}\r\n` (`0\r\n\r\n` for empty data).
pub(crate) fn push_chunk(out: &mut Vec<u8>, data: &[u8]) {
    push_hex(out, data.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal, without allocating.
pub(crate) fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    if n < 10 {
        out.push(b'0' + n as u8);
        return;
    }
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Appends `n` in lower-case hex (PHP's `dechex`), without allocating.
pub(crate) fn push_hex(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 16];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = hex_digit((n & 0xf) as u8, false);
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

fn hex_digit(nibble: u8, upper: bool) -> u8 {
    match nibble {
        0..=9 => b'0' + nibble,
        _ if upper => b'A' + nibble - 10,
        _ => b'a' + nibble - 10,
    }
}

fn push_hex_digit(out: &mut Vec<u8>, nibble: u8, upper: bool) {
    out.push(hex_digit(nibble, upper));
}

/// The standard reason phrase of a status code (RFC 9110), or "" for an unknown one.
pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::http::file::tests::TempDir;

    fn encode_with(response: Response, opts: &EncodeOptions<'_>) -> (String, Encoded) {
        let mut out = Vec::new();
        let encoded = response.encode(opts, &mut out);
        (String::from_utf8(out).expect("utf-8 output"), encoded)
    }

    fn wire(response: Response) -> String {
        encode_with(response, &EncodeOptions::default()).0
    }

    const HEAD: EncodeOptions<'static> = EncodeOptions {
        head_request: true,
        close: false,
        range: None,
    };
    const CLOSE: EncodeOptions<'static> = EncodeOptions {
        head_request: false,
        close: true,
        range: None,
    };

    fn ranged(range: &str) -> EncodeOptions<'_> {
        EncodeOptions {
            range: Some(range),
            ..EncodeOptions::default()
        }
    }

    #[test]
    fn plain_body_response_is_workermans_bytes() {
        let mut out = Vec::new();
        let encoded = encode_body_response(b"ok", &EncodeOptions::default(), &mut out);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Type: text/html;charset=utf-8\r\n\
              Content-Length: 2\r\n\r\nok"
        );
        assert!(matches!(encoded.framing, Framing::Complete));
        assert!(!encoded.close_after);
    }

    #[test]
    fn plain_body_response_head_and_close() {
        let mut out = Vec::new();
        let opts = EncodeOptions {
            head_request: true,
            close: true,
            range: None,
        };
        let encoded = encode_body_response(b"hello", &opts, &mut out);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/html;charset=utf-8\r\n\
              Content-Length: 5\r\n\r\n"
        );
        assert!(encoded.close_after);
    }

    #[test]
    fn response_without_headers_matches_plain_send() {
        let mut plain = Vec::new();
        encode_body_response(b"ok", &EncodeOptions::default(), &mut plain);
        assert_eq!(wire(Response::ok("ok")).into_bytes(), plain);
    }

    #[test]
    fn user_headers_in_order_then_defaults() {
        let response = Response::new(201, [("X-B", "2"), ("X-A", "1")], "made");
        assert_eq!(
            wire(response),
            "HTTP/1.1 201 Created\r\nX-B: 2\r\nX-A: 1\r\nConnection: keep-alive\r\n\
             Content-Type: text/html;charset=utf-8\r\nContent-Length: 4\r\n\r\nmade"
        );
    }

    #[test]
    fn user_content_type_and_connection_match_any_case() {
        let response = Response::new(
            200,
            [("content-type", "text/plain"), ("CONNECTION", "keep-alive")],
            "x",
        );
        assert_eq!(
            wire(response),
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nCONNECTION: keep-alive\r\nContent-Length: 1\r\n\r\nx"
        );
    }

    #[test]
    fn user_content_length_is_replaced_by_the_real_one() {
        let response = Response::new(
            200,
            [("Content-Length", "999"), ("content-length", "1")],
            "abc",
        );
        assert_eq!(
            wire(response),
            "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Type: text/html;charset=utf-8\r\n\
             Content-Length: 3\r\n\r\nabc"
        );
    }

    #[test]
    fn head_keeps_content_length_and_drops_body() {
        let (bytes, encoded) = encode_with(Response::ok("hello"), &HEAD);
        assert_eq!(
            bytes,
            "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Type: text/html;charset=utf-8\r\n\
             Content-Length: 5\r\n\r\n"
        );
        assert!(matches!(encoded.framing, Framing::Complete));
    }

    #[test]
    fn head_keeps_an_explicit_content_length() {
        let response = Response::new(200, [("Content-Length", "1234")], "");
        assert_eq!(
            encode_with(response, &HEAD).0,
            "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nConnection: keep-alive\r\n\
             Content-Type: text/html;charset=utf-8\r\n\r\n"
        );
    }

    #[test]
    fn bodiless_statuses_have_no_body_and_no_length() {
        for status in [100, 101, 103, 204, 304] {
            let response = Response::new(status, [("Content-Length", "5")], "dropped");
            let expected = format!(
                "HTTP/1.1 {status} {}\r\nConnection: keep-alive\r\n\r\n",
                reason_phrase(status)
            );
            assert_eq!(wire(response), expected);
        }
        let upgrade = Response::new(
            101,
            [("Upgrade", "websocket"), ("Connection", "Upgrade")],
            "",
        );
        assert_eq!(
            wire(upgrade),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        );
    }

    #[test]
    fn close_option_replaces_the_users_connection_header() {
        let response = Response::new(200, [("Connection", "keep-alive"), ("X", "y")], "a");
        let (bytes, encoded) = encode_with(response, &CLOSE);
        assert_eq!(
            bytes,
            "HTTP/1.1 200 OK\r\nX: y\r\nConnection: close\r\nContent-Type: text/html;charset=utf-8\r\n\
             Content-Length: 1\r\n\r\na"
        );
        assert!(encoded.close_after);
    }

    #[test]
    fn user_connection_close_is_honoured() {
        for value in ["close", "Close", "keep-alive, close", " CLOSE "] {
            let (bytes, encoded) = encode_with(
                Response::new(200, [("Connection", value)], ""),
                &EncodeOptions::default(),
            );
            assert!(encoded.close_after, "{value}");
            assert!(!bytes.contains("keep-alive\r\n") || value.contains("keep-alive"));
        }
        let (_, encoded) = encode_with(
            Response::new(200, [("Connection", "closer")], ""),
            &EncodeOptions::default(),
        );
        assert!(!encoded.close_after);
    }

    #[test]
    fn unknown_status_has_an_empty_reason() {
        assert!(wire(Response::ok("").with_status(599)).starts_with("HTTP/1.1 599 \r\n"));
    }

    #[test]
    fn custom_reason_phrase() {
        let response = Response::ok("")
            .with_status(200)
            .with_reason("Fine\r\nX-Evil: 1");
        assert!(wire(response).starts_with("HTTP/1.1 200 Fine  X-Evil: 1\r\nConnection"));
        let reset = Response::ok("").with_reason("Custom").with_status(404);
        assert_eq!(reset.reason(), "Not Found");
    }

    #[test]
    fn invalid_status_becomes_500() {
        for status in [0, 99, 1000, u16::MAX] {
            assert_eq!(Response::ok("").with_status(status).status(), 500);
        }
    }

    #[test]
    fn sse_seed_response() {
        let response = Response::new(200, [("Content-Type", "text/event-stream")], "\r\n");
        let (bytes, encoded) = encode_with(response, &EncodeOptions::default());
        assert_eq!(
            bytes,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: keep-alive\r\n\
             Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n\r\n"
        );
        assert!(matches!(encoded.framing, Framing::EventStream));
        assert!(!encoded.close_after);
    }

    #[test]
    fn sse_media_type_any_case_with_parameters() {
        for value in [
            "text/event-stream",
            "TEXT/Event-Stream",
            "text/event-stream; charset=utf-8",
            " text/event-stream ;charset=utf-8",
            "\ttext/event-stream",
        ] {
            let response = Response::new(200, [("content-type", value)], "");
            let (bytes, encoded) = encode_with(response, &EncodeOptions::default());
            assert!(matches!(encoded.framing, Framing::EventStream), "{value:?}");
            assert!(
                !bytes.to_ascii_lowercase().contains("content-length"),
                "{value:?}"
            );
        }
        for value in [
            "text/event-streams",
            "text/plain; x=text/event-stream",
            "text/event",
        ] {
            let response = Response::new(200, [("Content-Type", value)], "");
            let (_, encoded) = encode_with(response, &EncodeOptions::default());
            assert!(matches!(encoded.framing, Framing::Complete), "{value:?}");
        }
    }

    #[test]
    fn sse_keeps_user_cache_headers_and_writes_a_real_body() {
        let response = Response::new(
            200,
            [
                ("Content-Type", "text/event-stream"),
                ("cache-control", "no-store"),
                ("X-Accel-Buffering", "yes"),
            ],
            "retry: 1000\n\n",
        )
        .with_header("Content-Length", "10")
        .with_header("Transfer-Encoding", "chunked");
        assert_eq!(
            wire(response),
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\ncache-control: no-store\r\n\
             X-Accel-Buffering: yes\r\nConnection: keep-alive\r\n\r\nretry: 1000\n\n"
        );
    }

    #[test]
    fn sse_crlf_only_bodies_are_dropped() {
        for body in ["", "\r\n", "\n", "\r\n\r\n", "\r"] {
            let response = Response::new(200, [("Content-Type", "text/event-stream")], body);
            assert!(
                wire(response).ends_with("X-Accel-Buffering: no\r\n\r\n"),
                "{body:?}"
            );
        }
    }

    #[test]
    fn sse_head_request_is_complete() {
        let response = Response::new(200, [("Content-Type", "text/event-stream")], "data: x\n\n");
        let (bytes, encoded) = encode_with(response, &HEAD);
        assert!(bytes.ends_with("X-Accel-Buffering: no\r\n\r\n"));
        assert!(matches!(encoded.framing, Framing::Complete));
    }

    #[test]
    fn sse_error_status_is_a_normal_response() {
        let response = Response::new(204, [("Content-Type", "text/event-stream")], "");
        let (bytes, encoded) = encode_with(response, &EncodeOptions::default());
        assert_eq!(
            bytes,
            "HTTP/1.1 204 No Content\r\nContent-Type: text/event-stream\r\nConnection: keep-alive\r\n\r\n"
        );
        assert!(matches!(encoded.framing, Framing::Complete));
    }

    #[test]
    fn chunked_first_chunk_is_the_body() {
        let response = Response::new(200, [("Transfer-Encoding", "chunked")], "x");
        let (bytes, encoded) = encode_with(response, &EncodeOptions::default());
        assert_eq!(
            bytes,
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\
             Content-Type: text/html;charset=utf-8\r\n\r\n1\r\nx\r\n"
        );
        assert!(matches!(encoded.framing, Framing::Chunked));
    }

    #[test]
    fn chunked_empty_body_writes_no_chunk() {
        let response = Response::new(
            200,
            [("transfer-encoding", "Chunked"), ("Content-Length", "3")],
            "",
        );
        let (bytes, encoded) = encode_with(response, &EncodeOptions::default());
        assert_eq!(
            bytes,
            "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\nConnection: keep-alive\r\n\
             Content-Type: text/html;charset=utf-8\r\n\r\n"
        );
        assert!(matches!(encoded.framing, Framing::Chunked));
    }

    #[test]
    fn chunked_length_is_hex() {
        let body = "a".repeat(255);
        let response = Response::new(200, [("Transfer-Encoding", "chunked")], body.clone());
        assert!(wire(response).ends_with(&format!("\r\n\r\nff\r\n{body}\r\n")));
    }

    #[test]
    fn chunked_head_request_is_complete() {
        let response = Response::new(200, [("Transfer-Encoding", "chunked")], "x");
        let (bytes, encoded) = encode_with(response, &HEAD);
        assert!(bytes.ends_with("charset=utf-8\r\n\r\n"));
        assert!(matches!(encoded.framing, Framing::Complete));
    }

    #[test]
    fn non_chunked_transfer_encoding_is_dropped() {
        let response = Response::new(200, [("Transfer-Encoding", "gzip")], "abc");
        assert_eq!(
            wire(response),
            "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Type: text/html;charset=utf-8\r\n\
             Content-Length: 3\r\n\r\nabc"
        );
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
    fn odd_headers_cannot_split_the_response() {
        let response = Response::ok("")
            .with_header("X-Evil", "a\r\nSet-Cookie: owned=1")
            .with_header("Bad Name", "v")
            .with_header("Bad:Name", "v")
            .with_header("", "v")
            .with_header("Bad\r\nName", "v")
            .with_header("X-Nul", "a\0b\x7fc\td");
        assert_eq!(
            response.headers().collect::<Vec<_>>(),
            [("X-Evil", "a  Set-Cookie: owned=1"), ("X-Nul", "a b c\td")]
        );
        let bytes = wire(response);
        assert_eq!(bytes.matches("\r\n").count(), 7, "{bytes}");
    }

    #[test]
    fn clean_values_are_not_copied() {
        let response = Response::ok("").with_header("A", "static");
        assert!(matches!(response.headers[0].1, Cow::Borrowed(_)));
    }

    #[test]
    fn static_bodies_are_zero_copy() {
        const TEXT: &str = "static text";
        let response = Response::ok(TEXT);
        assert_eq!(response.body_bytes().as_ptr(), TEXT.as_ptr());
        assert!(matches!(Body::from(&b"bytes"[..]).0, Cow::Borrowed(_)));
        assert!(matches!(Body::from(b"bytes").0, Cow::Borrowed(_)));
        assert!(matches!(Body::from(Cow::Borrowed("s")).0, Cow::Borrowed(_)));
        assert!(matches!(Body::from(String::from("s")).0, Cow::Owned(_)));
    }

    #[test]
    fn unicode_body_length_is_in_bytes() {
        assert!(wire(Response::ok("你好")).contains("Content-Length: 6\r\n\r\n你好"));
    }

    #[test]
    fn cookies_follow_workermans_attribute_order() {
        let cookie = Cookie::new("sid", "v")
            .same_site(SameSite::Lax)
            .http_only(true)
            .secure(true)
            .path("/")
            .max_age(-1)
            .domain("example.com");
        assert_eq!(
            cookie.to_string(),
            "sid=v; Domain=example.com; Max-Age=-1; Path=/; Secure; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn cookie_values_are_rawurlencoded_and_attributes_sanitized() {
        let cookie = Cookie::new("na me;", "a=b; c\r\n你~")
            .path("/x; Secure\r\n")
            .domain("");
        assert_eq!(
            cookie.to_string(),
            "na%20me%3B=a%3Db%3B%20c%0D%0A%E4%BD%A0~; Path=/x Secure"
        );
        let response = Response::ok("").cookie(cookie);
        assert!(wire(response).starts_with("HTTP/1.1 200 OK\r\nSet-Cookie: na%20me%3B=a%3Db%3B%20c%0D%0A%E4%BD%A0~; Path=/x Secure\r\n"));
    }

    #[test]
    fn file_small_whole() {
        let dir = TempDir::new("resp-small");
        let path = dir.write("hello.txt", b"hello file");
        let (bytes, encoded) = encode_with(
            Response::default().with_file(&path),
            &EncodeOptions::default(),
        );
        let head_end = bytes.find("\r\n\r\n").unwrap();
        let (head, body) = (&bytes[..head_end], &bytes[head_end + 4..]);
        assert!(head.starts_with(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Type: text/plain; charset=utf-8\r\nLast-Modified: "
        ));
        assert!(
            head.ends_with(" GMT\r\nAccept-Ranges: bytes\r\nContent-Length: 10"),
            "{head}"
        );
        assert!(!head.contains("Content-Disposition"));
        assert_eq!(body, "hello file");
        assert!(matches!(encoded.framing, Framing::Complete));
    }

    #[test]
    fn file_last_modified_is_the_mtime() {
        let dir = TempDir::new("resp-mtime");
        let path = dir.write("a.css", b"x");
        let file = File::options().write(true).open(&path).unwrap();
        file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(784_111_777))
            .unwrap();
        drop(file);
        assert!(
            wire(Response::default().with_file(&path))
                .contains("\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n")
        );
    }

    #[test]
    fn file_unknown_type_is_an_attachment() {
        let dir = TempDir::new("resp-attach");
        let path = dir.write("data.bin", b"\x00\x01");
        let bytes = wire(Response::default().with_file(&path));
        assert!(bytes.contains(
            "\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"data.bin\"\r\n"
        ));
        let typed = Response::new(200, [("Content-Type", "text/plain")], "").with_file(&path);
        assert!(
            !wire(typed).contains("Content-Disposition"),
            "the application chose a type"
        );
    }

    #[test]
    fn file_attachment_name_is_quoted_safely() {
        let dir = TempDir::new("resp-attach-name");
        let path = dir.write("we\"ird\\ 名.bin", b"x");
        let bytes = wire(Response::default().with_file(&path));
        assert!(
            bytes.contains("Content-Disposition: attachment; filename=\"we_ird_ ___.bin\"; filename*=UTF-8''we%22ird%5C%20%E5%90%8D.bin\r\n"),
            "{bytes}"
        );
    }

    #[test]
    fn file_user_headers_win() {
        let dir = TempDir::new("resp-user");
        let path = dir.write("a.html", b"<p>");
        let response = Response::new(
            200,
            [
                ("content-type", "text/x"),
                ("last-modified", "never"),
                ("accept-ranges", "none"),
            ],
            "",
        )
        .with_file(&path);
        assert_eq!(
            wire(response),
            "HTTP/1.1 200 OK\r\ncontent-type: text/x\r\nlast-modified: never\r\naccept-ranges: none\r\n\
             Connection: keep-alive\r\nContent-Length: 3\r\n\r\n<p>"
        );
    }

    #[test]
    fn file_head_request() {
        let dir = TempDir::new("resp-head");
        let path = dir.write("a.json", b"{}");
        let (bytes, encoded) = encode_with(Response::default().with_file(&path), &HEAD);
        assert!(bytes.ends_with("Accept-Ranges: bytes\r\nContent-Length: 2\r\n\r\n"));
        assert!(bytes.contains("Content-Type: application/json\r\n"));
        assert!(matches!(encoded.framing, Framing::Complete));
        let ranged_head = EncodeOptions {
            head_request: true,
            close: false,
            range: Some("bytes=0-0"),
        };
        let (bytes, _) = encode_with(Response::default().with_file(&path), &ranged_head);
        assert!(
            bytes.starts_with("HTTP/1.1 200 OK\r\n"),
            "Range is for GET only"
        );
    }

    #[test]
    fn file_range_gives_206() {
        let dir = TempDir::new("resp-range");
        let path = dir.write("a.txt", b"0123456789");
        for (range, content_range, body) in [
            ("bytes=2-4", "bytes 2-4/10", "234"),
            ("bytes=7-", "bytes 7-9/10", "789"),
            ("bytes=-3", "bytes 7-9/10", "789"),
            ("bytes=-30", "bytes 0-9/10", "0123456789"),
            ("bytes=8-100", "bytes 8-9/10", "89"),
        ] {
            let bytes = encode_with(Response::default().with_file(&path), &ranged(range)).0;
            assert!(
                bytes.starts_with("HTTP/1.1 206 Partial Content\r\n"),
                "{range}"
            );
            let tail = format!(
                "Accept-Ranges: bytes\r\nContent-Range: {content_range}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            assert!(bytes.ends_with(&tail), "{range}: {bytes}");
        }
    }

    #[test]
    fn file_range_unsatisfiable_gives_416() {
        let dir = TempDir::new("resp-416");
        let path = dir.write("a.txt", b"0123456789");
        let (bytes, encoded) =
            encode_with(Response::default().with_file(&path), &ranged("bytes=10-"));
        assert_eq!(
            bytes,
            "HTTP/1.1 416 Range Not Satisfiable\r\nConnection: keep-alive\r\nContent-Range: bytes */10\r\n\
             Content-Length: 0\r\n\r\n"
        );
        assert!(matches!(encoded.framing, Framing::Complete));
    }

    #[test]
    fn file_range_malformed_or_multi_is_ignored() {
        let dir = TempDir::new("resp-multi");
        let path = dir.write("a.txt", b"0123456789");
        for range in ["bytes=0-1,3-4", "bytes=x-", "lines=1-2", "bytes=5-2"] {
            let bytes = encode_with(Response::default().with_file(&path), &ranged(range)).0;
            assert!(bytes.starts_with("HTTP/1.1 200 OK\r\n"), "{range}");
            assert!(
                bytes.ends_with("Content-Length: 10\r\n\r\n0123456789"),
                "{range}"
            );
        }
    }

    #[test]
    fn file_range_only_applies_to_200() {
        let dir = TempDir::new("resp-404page");
        let path = dir.write("404.html", b"gone");
        let response = Response::default().with_status(404).with_file(&path);
        let bytes = encode_with(response, &ranged("bytes=0-0")).0;
        assert!(bytes.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(bytes.ends_with("Content-Length: 4\r\n\r\ngone"));
    }

    #[test]
    fn file_explicit_window() {
        let dir = TempDir::new("resp-window");
        let path = dir.write("a.txt", b"0123456789");
        let part = |offset, len| wire(Response::default().with_file_range(&path, offset, len));
        let bytes = part(3, 4);
        assert!(bytes.starts_with("HTTP/1.1 206 Partial Content\r\n"));
        assert!(bytes.ends_with("Content-Range: bytes 3-6/10\r\nContent-Length: 4\r\n\r\n3456"));
        assert!(
            part(6, 0).ends_with("Content-Range: bytes 6-9/10\r\nContent-Length: 4\r\n\r\n6789")
        );
        assert!(
            part(6, 100).ends_with("Content-Range: bytes 6-9/10\r\nContent-Length: 4\r\n\r\n6789")
        );
        assert!(part(0, 0).starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(part(0, 10).ends_with("Content-Length: 10\r\n\r\n0123456789"));
        assert!(part(10, 1).starts_with("HTTP/1.1 416 Range Not Satisfiable\r\n"));
        let windowed = Response::default().with_file_range(&path, 1, 1);
        let bytes = encode_with(windowed, &ranged("bytes=5-")).0;
        assert!(
            bytes.ends_with("Content-Range: bytes 1-1/10\r\nContent-Length: 1\r\n\r\n1"),
            "the window wins"
        );
    }

    #[test]
    fn file_empty() {
        let dir = TempDir::new("resp-empty");
        let path = dir.write("empty.txt", b"");
        assert!(wire(Response::default().with_file(&path)).ends_with("Content-Length: 0\r\n\r\n"));
        let bytes = encode_with(Response::default().with_file(&path), &ranged("bytes=0-")).0;
        assert!(bytes.starts_with("HTTP/1.1 416 "));
        assert!(bytes.contains("Content-Range: bytes */0\r\n"));
    }

    #[test]
    fn file_missing_is_404() {
        let response = Response::new(
            200,
            [("Content-Type", "application/pdf"), ("X-Keep", "1")],
            "",
        )
        .with_file("/definitely/not/here.pdf");
        assert_eq!(response.status(), 404);
        assert_eq!(
            wire(response),
            "HTTP/1.1 404 Not Found\r\nX-Keep: 1\r\nConnection: keep-alive\r\n\
             Content-Type: text/html;charset=utf-8\r\nContent-Length: 22\r\n\r\n<h3>404 Not Found</h3>"
        );
        let dir = TempDir::new("resp-dir");
        assert_eq!(
            Response::default().with_file(&dir.0).status(),
            404,
            "a directory is not a file"
        );
    }

    #[test]
    fn file_vanishing_before_encode_is_404() {
        let dir = TempDir::new("resp-vanish");
        let path = dir.write("a.txt", b"x");
        let response = Response::default().with_file(&path);
        std::fs::remove_file(&path).unwrap();
        assert!(wire(response).starts_with("HTTP/1.1 404 Not Found\r\n"));
    }

    #[test]
    fn file_large_is_streamed() {
        let dir = TempDir::new("resp-large");
        let size = MAX_INLINE_FILE as usize + 10;
        let contents: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let path = dir.write("big.bin", &contents);
        let mut out = Vec::new();
        let encoded = Response::default()
            .with_file(&path)
            .encode(&ranged("bytes=5-"), &mut out);
        let head = String::from_utf8(out.clone()).unwrap();
        assert!(head.starts_with("HTTP/1.1 206 Partial Content\r\n"));
        assert!(head.ends_with(&format!(
            "Content-Range: bytes 5-{}/{size}\r\nContent-Length: {}\r\n\r\n",
            size - 1,
            size - 5
        )));
        let Framing::File(mut stream) = encoded.framing else {
            panic!("expected a file stream")
        };
        let mut body = Vec::new();
        while !stream.fill(&mut body, 1 << 20).unwrap() {}
        assert_eq!(body, &contents[5..]);

        let mut out = Vec::new();
        let encoded = Response::default().with_file(&path).encode(&HEAD, &mut out);
        assert!(matches!(encoded.framing, Framing::Complete));
        assert!(out.ends_with(format!("Content-Length: {size}\r\n\r\n").as_bytes()));
    }

    #[test]
    fn file_exactly_inline_limit_is_read_whole() {
        let dir = TempDir::new("resp-limit");
        let path = dir.write("limit.bin", &vec![7u8; MAX_INLINE_FILE as usize]);
        let mut out = Vec::new();
        let encoded = Response::default()
            .with_file(&path)
            .encode(&EncodeOptions::default(), &mut out);
        assert!(matches!(encoded.framing, Framing::Complete));
        assert!(out.ends_with(&[7u8; 16]));
    }

    #[test]
    fn file_close_option() {
        let dir = TempDir::new("resp-close");
        let path = dir.write("a.txt", b"x");
        let response = Response::new(200, [("Connection", "keep-alive")], "").with_file(&path);
        let (bytes, encoded) = encode_with(response, &CLOSE);
        assert!(bytes.starts_with("HTTP/1.1 200 OK\r\nConnection: close\r\n"));
        assert!(encoded.close_after);
    }

    #[test]
    fn file_with_bodiless_status_sends_no_file() {
        let dir = TempDir::new("resp-304");
        let path = dir.write("a.txt", b"x");
        let response = Response::default().with_file(&path).with_status(304);
        assert_eq!(
            wire(response),
            "HTTP/1.1 304 Not Modified\r\nConnection: keep-alive\r\n\r\n"
        );
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

    #[test]
    fn numbers() {
        let mut out = Vec::new();
        for n in [0u64, 7, 10, 99, 100, 12345, u64::MAX] {
            out.clear();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
            out.clear();
            push_hex(&mut out, n);
            assert_eq!(out, format!("{n:x}").as_bytes());
        }
    }

    #[test]
    fn reason_phrases() {
        assert_eq!(reason_phrase(200), "OK");
        assert_eq!(reason_phrase(206), "Partial Content");
        assert_eq!(reason_phrase(416), "Range Not Satisfiable");
        assert_eq!(reason_phrase(431), "Request Header Fields Too Large");
        assert_eq!(reason_phrase(599), "");
    }
}
