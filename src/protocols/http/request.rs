//! The HTTP request handed to `on_message`: the raw bytes plus offsets, parsed further on demand.

use std::cell::{OnceCell, RefCell};
use std::fmt;
use std::mem::MaybeUninit;

use crate::connection::TcpConnection;
use crate::protocols::http::fields::{self, Field};
use crate::protocols::http::form::{self, Form, Pair, Span, UploadedFile};

/// Where the parts of a request head are in its raw bytes, found while framing it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Start of the method (after any leading empty lines).
    pub(crate) method_start: u32,
    /// Start of the request target as sent; the method ends one byte before it.
    pub(crate) target_start: u32,
    /// What `uri()` returns: the target, or for absolute-form its path and query.
    pub(crate) uri: Span,
    /// Length of the head, blank line included; the body starts here.
    pub(crate) head_len: u32,
    /// The Host header's value, trimmed (absent if none).
    pub(crate) host: Span,
    /// The first Range header's value, trimmed (absent if none).
    pub(crate) range: Span,
    /// `HTTP_11 | KEEP_ALIVE | ROOT_URI | CHUNKED | EXPECT_CONTINUE` (the parser keeps its own
    /// flags in bits 6 and 7).
    pub(crate) flags: u8,
}

impl Layout {
    pub(crate) const HTTP_11: u8 = 1;
    pub(crate) const KEEP_ALIVE: u8 = 1 << 1;
    /// An absolute-form target without a path (`http://host`): `uri()` is `/`.
    pub(crate) const ROOT_URI: u8 = 1 << 2;
    pub(crate) const CHUNKED: u8 = 1 << 3;
    pub(crate) const EXPECT_CONTINUE: u8 = 1 << 4;
}

/// An HTTP request, as `on_message` receives it on an `http://` worker.
///
/// It owns the request's bytes and parses lazily: `method()`, `uri()`, `path()` and friends are
/// slices found while the request was framed; the header map, query, cookies and body fields are
/// each parsed on first use and cached.
///
/// Header names are case-insensitive. A header sent more than once reads as its values joined with
/// `", "` (RFC 9110 §5.3; Workerman joins with `","`).
///
/// ```
/// use workerman::protocols::http::Request;
///
/// let request = Request::parse(
///     b"GET /search?q=rust+http&page=2 HTTP/1.1\r\nHost: example.com\r\nAccept: text/html\r\n\r\n",
/// )?;
/// assert_eq!(request.method(), "GET");
/// assert_eq!(request.path(), "/search");
/// assert_eq!(request.get("q"), Some("rust http"));
/// assert_eq!(request.header("accept"), Some("text/html"));
/// # Ok::<(), workerman::protocols::http::HttpError>(())
/// ```
pub struct Request {
    raw: Vec<u8>,
    layout: Layout,
    body: Span,
    /// The connection it came from (slot and id of its `TcpConnection`; id 0: none), kept as
    /// numbers so a `Request` stays `Send`.
    connection_key: u32,
    connection_id: u64,
    /// What is parsed on demand, boxed so a `Request` stays small (96 bytes) when moved.
    parsed: OnceCell<Box<Parsed>>,
}

/// A request's lazily parsed parts, each filled on first use, and the trailer section of a
/// chunked body (rare, so kept here, not in every `Request`).
#[derive(Default)]
struct Parsed {
    trailer_section: Span,
    headers: OnceCell<Fields>,
    trailers: OnceCell<Fields>,
    query: OnceCell<Vec<Pair>>,
    cookies: OnceCell<Vec<Pair>>,
    form: OnceCell<Form>,
    query_fields: OnceCell<Field>,
    form_fields: OnceCell<Field>,
    #[cfg(feature = "json")]
    json: OnceCell<Option<serde_json::Value>>,
}

impl Parsed {
    #[cold]
    fn with_trailers(trailer_section: Span) -> Box<Parsed> {
        Box::new(Parsed {
            trailer_section,
            ..Parsed::default()
        })
    }
}

impl Request {
    #[inline]
    pub(crate) fn from_parts(raw: Vec<u8>, layout: Layout, body: Span, trailers: Span) -> Request {
        let parsed = OnceCell::new();
        if !trailers.is_absent() {
            let _ = parsed.set(Parsed::with_trailers(trailers));
        }
        Request {
            raw,
            layout,
            body,
            connection_key: 0,
            connection_id: 0,
            parsed,
        }
    }

    fn trailer_section(&self) -> Span {
        self.parsed
            .get()
            .map_or(Span::default(), |parsed| parsed.trailer_section)
    }

    /// The request with its body fields already read (a streamed upload).
    pub(crate) fn with_form(self, form: Form) -> Request {
        let _ = self.parsed().form.set(form);
        self
    }

    pub(crate) fn set_connection(&mut self, connection: &TcpConnection) {
        self.connection_key = connection.key() as u32;
        self.connection_id = connection.id();
    }

    /// The connection this request came on (Workerman's `$request->connection`); `None` for a
    /// request made with [`Request::parse`].
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")?;
    /// assert!(request.connection().is_none());
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn connection(&self) -> Option<TcpConnection> {
        (self.connection_id != 0)
            .then(|| TcpConnection::new(self.connection_key as usize, self.connection_id))
    }

    fn parsed(&self) -> &Parsed {
        self.parsed.get_or_init(Box::default)
    }

    /// The method, e.g. `"GET"`, exactly as sent (methods are case-sensitive).
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(b"DELETE /item/7 HTTP/1.1\r\nHost: h\r\n\r\n")?;
    /// assert_eq!(request.method(), "DELETE");
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn method(&self) -> &str {
        let start = self.layout.method_start as usize;
        let end = (self.layout.target_start as usize).saturating_sub(1);
        self.str_at(Span::new(start, end))
    }

    /// The request target's path and query, as sent (`/a/b?x=1`). For an absolute-form target
    /// (`GET http://host/a?x=1`) it is the part after the authority; for `OPTIONS *` it is `*`.
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(b"GET /a%20b?x=1 HTTP/1.1\r\nHost: h\r\n\r\n")?;
    /// assert_eq!(request.uri(), "/a%20b?x=1");
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn uri(&self) -> &str {
        if self.layout.flags & Layout::ROOT_URI != 0 {
            return "/";
        }
        self.str_at(self.layout.uri)
    }

    /// The path part of [`uri`](Self::uri): up to `?` or `#`, not url-decoded.
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(b"GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\n\r\n")?;
    /// assert_eq!(request.path(), "/a/b");
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn path(&self) -> &str {
        let uri = self.uri();
        let end = uri.find(['?', '#']).unwrap_or(uri.len());
        &uri[..end]
    }

    /// The query string: after the first `?`, up to any `#`; `""` if there is none.
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(b"GET /a?x=1&y=2 HTTP/1.1\r\nHost: h\r\n\r\n")?;
    /// assert_eq!(request.query_string(), "x=1&y=2");
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn query_string(&self) -> &str {
        let uri = self.uri();
        let Some(question) = uri.find('?') else {
            return "";
        };
        let query = &uri[question + 1..];
        let end = query.find('#').unwrap_or(query.len());
        &query[..end]
    }

    /// `"1.1"` or `"1.0"`.
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")?;
    /// assert_eq!(request.protocol_version(), "1.1");
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn protocol_version(&self) -> &str {
        if self.layout.flags & Layout::HTTP_11 != 0 {
            "1.1"
        } else {
            "1.0"
        }
    }

    /// The Host header, port included (`"example.com:8080"`), or `None` if it was not sent (only
    /// possible in HTTP/1.0).
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(b"GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n")?;
    /// assert_eq!(request.host(), Some("example.com:8080"));
    /// assert_eq!(request.host_without_port(), Some("example.com"));
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn host(&self) -> Option<&str> {
        let host = self.layout.host;
        (!host.is_absent()).then(|| self.str_at(host))
    }

    /// The Host header without its `:port`; an IPv6 literal keeps its brackets (`"[::1]"`).
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n")?;
    /// assert_eq!(request.host_without_port(), Some("[::1]"));
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn host_without_port(&self) -> Option<&str> {
        let host = self.host()?;
        let end = match host.find(']') {
            Some(close) => close + 1,
            None => host.find(':').unwrap_or(host.len()),
        };
        Some(&host[..end])
    }

    /// A header's value; `name` is case-insensitive. A repeated header reads as its values joined
    /// with `", "`. A value that is not UTF-8 reads lossily (invalid bytes become U+FFFD).
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(
    ///     b"GET / HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\naccept: */*\r\n\r\n",
    /// )?;
    /// assert_eq!(request.header("Accept"), Some("text/html, */*"));
    /// assert_eq!(request.header("x-missing"), None);
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_fields().get(&self.raw, name)
    }

    /// Every header, once per name (spelled as first sent), in the order first sent, with repeated
    /// headers joined as in [`header`](Self::header).
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n")?;
    /// let headers: Vec<(&str, &str)> = request.headers().collect();
    /// assert_eq!(headers, [("Host", "h"), ("X-A", "1")]);
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.header_fields().iter(&self.raw)
    }

    /// A query parameter, url-decoded (`+` is a space). If the name repeats, the last value wins,
    /// as in PHP; [`get_all`](Self::get_all) has every pair.
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(b"GET /?a=1&b=x%2By+z&a=2 HTTP/1.1\r\nHost: h\r\n\r\n")?;
    /// assert_eq!(request.get("a"), Some("2"));
    /// assert_eq!(request.get("b"), Some("x+y z"));
    /// assert_eq!(request.get("c"), None);
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn get(&self, name: &str) -> Option<&str> {
        last_value(&self.raw, self.query_pairs(), name)
    }

    /// Every query parameter in order, url-decoded, repeats included.
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(b"GET /?a=1&a=2 HTTP/1.1\r\nHost: h\r\n\r\n")?;
    /// assert_eq!(request.get_all().collect::<Vec<_>>(), [("a", "1"), ("a", "2")]);
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn get_all(&self) -> impl Iterator<Item = (&str, &str)> {
        pairs(&self.raw, self.query_pairs())
    }

    /// A query field read PHP's way (Workerman's `$request->get('tag')` for `tag[]=a&tag[]=b`
    /// or `user[name]=x`): a list, a map or text. See [`Field`].
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(b"GET /?id[]=3&id[]=5 HTTP/1.1\r\nHost: h\r\n\r\n")?;
    /// let ids: Vec<&str> = request.get_field("id").unwrap().as_list().unwrap()
    ///     .iter().filter_map(|id| id.as_str()).collect();
    /// assert_eq!(ids, ["3", "5"]);
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn get_field(&self, name: &str) -> Option<&Field> {
        self.get_fields().get(name)
    }

    /// Every query field read PHP's way, as one map (Workerman's `$request->get()`).
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(b"GET /?a=1&b[x]=2 HTTP/1.1\r\nHost: h\r\n\r\n")?;
    /// assert_eq!(request.get_fields().as_map().unwrap().len(), 2);
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn get_fields(&self) -> &Field {
        self.parsed()
            .query_fields
            .get_or_init(|| fields::build(self.get_all()))
    }

    /// A body field read PHP's way (Workerman's `$request->post('user')` for `user[name]=x`),
    /// from a urlencoded or multipart body; see [`post`](Self::post) for the body types. A JSON
    /// body's members are plain text here (its structure is in [`json`](Self::json)).
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(
    ///     b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 24\r\n\r\nuser[name]=x&user[age]=7",
    /// )?;
    /// let user = request.post_field("user").unwrap();
    /// assert_eq!(user.get("age").and_then(|age| age.as_str()), Some("7"));
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn post_field(&self, name: &str) -> Option<&Field> {
        self.post_fields().get(name)
    }

    /// Every body field read PHP's way, as one map (Workerman's `$request->post()`).
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(
    ///     b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\n\r\na[]=1&b",
    /// )?;
    /// assert_eq!(request.post_fields().as_map().unwrap().len(), 2);
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn post_fields(&self) -> &Field {
        self.parsed()
            .form_fields
            .get_or_init(|| fields::build(self.post_all()))
    }

    /// A body field (the last one if the name repeats). The body is read by its Content-Type, as
    /// Workerman does: `multipart/...; boundary=...` gives the form fields (files are in
    /// [`file`](Self::file)); a type containing `json` gives the top-level members of a JSON
    /// object, strings as themselves and other values as JSON text; anything else is read as
    /// `application/x-www-form-urlencoded`.
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(
    ///     b"POST /login HTTP/1.1\r\nHost: h\r\n\
    ///       Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 21\r\n\r\n\
    ///       user=ann&pass=p%40ss!",
    /// )?;
    /// assert_eq!(request.post("user"), Some("ann"));
    /// assert_eq!(request.post("pass"), Some("p@ss!"));
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn post(&self, name: &str) -> Option<&str> {
        last_value(&self.raw, &self.form().fields, name)
    }

    /// Every body field in order, repeats included (see [`post`](Self::post)).
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// # #[cfg(feature = "json")] {
    /// let request = Request::parse(
    ///     b"POST / HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 19\r\n\r\n\
    ///       {\"a\":\"x\",\"b\":[1,2]}",
    /// )?;
    /// assert_eq!(request.post_all().collect::<Vec<_>>(), [("a", "x"), ("b", "[1,2]")]);
    /// # }
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn post_all(&self) -> impl Iterator<Item = (&str, &str)> {
        pairs(&self.raw, &self.form().fields)
    }

    /// The body parsed as JSON when the Content-Type contains `json`; `None` for other types, an
    /// empty body, or invalid JSON.
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(
    ///     b"POST / HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n[1,2,3]\n",
    /// )?;
    /// assert_eq!(request.json(), Some(&serde_json::json!([1, 2, 3])));
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    #[cfg(feature = "json")]
    pub fn json(&self) -> Option<&serde_json::Value> {
        self.parsed()
            .json
            .get_or_init(|| {
                let is_json = self.header("content-type").is_some_and(is_json_type);
                if !is_json || self.raw_body().is_empty() {
                    return None;
                }
                serde_json::from_slice(self.raw_body()).ok()
            })
            .as_ref()
    }

    /// An uploaded file of a `multipart/form-data` body, by field name (the last one if the name
    /// repeats). Files are kept in memory; the whole request is bounded by the maximum package
    /// size. See [`UploadedFile`].
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// # let body = "\
    /// #     --B\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"me.png\"\r\n\
    /// #     Content-Type: image/png\r\n\r\nPNG...\r\n\
    /// #     --B\r\nContent-Disposition: form-data; name=\"cv\"; filename=\"cv.txt\"\r\n\
    /// #     Content-Type: text/plain\r\n\r\nhello\r\n\
    /// #     --B--\r\n";
    /// # let raw = format!(
    /// #     "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=B\r\n\
    /// #      Content-Length: {}\r\n\r\n{body}",
    /// #     body.len()
    /// # );
    /// # let request = Request::parse(raw.as_bytes())?;
    /// assert_eq!(request.file("cv").unwrap().data(), b"hello");
    /// assert!(request.file("missing").is_none());
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn file(&self, name: &str) -> Option<&UploadedFile> {
        self.form()
            .files
            .iter()
            .rev()
            .find(|file| file.name() == name)
    }

    /// Every uploaded file in order.
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// # let body = "\
    /// #     --B\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"me.png\"\r\n\
    /// #     Content-Type: image/png\r\n\r\nPNG...\r\n\
    /// #     --B\r\nContent-Disposition: form-data; name=\"cv\"; filename=\"cv.txt\"\r\n\
    /// #     Content-Type: text/plain\r\n\r\nhello\r\n\
    /// #     --B--\r\n";
    /// # let raw = format!(
    /// #     "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=B\r\n\
    /// #      Content-Length: {}\r\n\r\n{body}",
    /// #     body.len()
    /// # );
    /// # let request = Request::parse(raw.as_bytes())?;
    /// let total: usize = request.files().map(|file| file.size()).sum();
    /// assert_eq!(total, 11);
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn files(&self) -> impl Iterator<Item = &UploadedFile> {
        self.form().files.iter()
    }

    /// A cookie's value, not url-decoded (as Workerman). If the name repeats, the first wins
    /// (browsers send the most specific cookie first).
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(b"GET / HTTP/1.1\r\nHost: h\r\nCookie: sid=a%3Db; theme=dark\r\n\r\n")?;
    /// assert_eq!(request.cookie("sid"), Some("a%3Db"));
    /// assert_eq!(request.cookie("theme"), Some("dark"));
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookie_pairs()
            .iter()
            .find(|pair| pair.name.get(&self.raw) == name)
            .map(|pair| pair.value.get(&self.raw))
    }

    /// Every cookie in order, repeats included.
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(b"GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; b=2; a=3\r\n\r\n")?;
    /// let cookies: Vec<(&str, &str)> = request.cookies().collect();
    /// assert_eq!(cookies, [("a", "1"), ("b", "2"), ("a", "3")]);
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn cookies(&self) -> impl Iterator<Item = (&str, &str)> {
        pairs(&self.raw, self.cookie_pairs())
    }

    /// A trailer field of a chunked body (case-insensitive name, repeats joined with `", "`).
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(
    ///     b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
    ///       5\r\nhello\r\n0\r\nChecksum: abc\r\n\r\n",
    /// )?;
    /// assert_eq!(request.raw_body(), b"hello");
    /// assert_eq!(request.trailer("checksum"), Some("abc"));
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.parsed()
            .trailers
            .get_or_init(|| Fields::parse_trailers(&self.raw, self.trailer_section()))
            .get(&self.raw, name)
    }

    /// The request head as received: request line and header fields, up to and including the
    /// blank line.
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nrest")?;
    /// assert_eq!(request.raw_head(), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn raw_head(&self) -> &[u8] {
        let start = self.layout.method_start as usize;
        let end = self.layout.head_len as usize;
        self.raw.get(start..end).unwrap_or_default()
    }

    /// The body. A chunked body is already de-chunked (its trailers are in
    /// [`trailer`](Self::trailer)).
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// let request = Request::parse(
    ///     b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
    /// )?;
    /// assert_eq!(request.raw_body(), b"hello");
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn raw_body(&self) -> &[u8] {
        self.body.slice(&self.raw)
    }

    /// The request as bytes on the wire (for `pipe`). A chunked body was de-chunked in place,
    /// so it is framed again here as one chunk followed by the original trailers.
    pub(crate) fn into_raw(mut self) -> Vec<u8> {
        let raw = std::mem::take(&mut self.raw);
        if self.layout.flags & Layout::CHUNKED == 0 {
            return raw;
        }
        let head = raw.get(..self.layout.head_len as usize).unwrap_or_default();
        let body = self.body.slice(&raw);
        let trailers = self.trailer_section().slice(&raw);
        let mut wire = Vec::with_capacity(head.len() + body.len() + trailers.len() + 24);
        wire.extend_from_slice(head);
        if !body.is_empty() {
            wire.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            wire.extend_from_slice(body);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n");
        wire.extend_from_slice(trailers);
        wire
    }

    /// Whether the connection stays open after the response (RFC 9112 §9.3): HTTP/1.1 unless a
    /// `Connection: close` token; HTTP/1.0 only with a `Connection: keep-alive` token.
    pub(crate) fn keep_alive(&self) -> bool {
        self.layout.flags & Layout::KEEP_ALIVE != 0
    }

    /// Whether this is a HEAD request (its response has no body).
    pub(crate) fn is_head(&self) -> bool {
        self.method() == "HEAD"
    }

    /// The first Range header's value, found while framing (no header parsing).
    pub(crate) fn range_header(&self) -> Option<&str> {
        let range = self.layout.range;
        (!range.is_absent()).then(|| self.str_at(range))
    }

    fn str_at(&self, span: Span) -> &str {
        std::str::from_utf8(span.slice(&self.raw)).unwrap_or_default()
    }

    fn header_fields(&self) -> &Fields {
        self.parsed()
            .headers
            .get_or_init(|| Fields::parse_head(&self.raw, self.layout.head_len as usize))
    }

    fn query_pairs(&self) -> &[Pair] {
        self.parsed().query.get_or_init(|| {
            let query = self.query_string();
            if query.is_empty() {
                return Vec::new();
            }
            form::parse_pairs(&self.raw, Span::of(&self.raw, query.as_bytes()))
        })
    }

    fn cookie_pairs(&self) -> &[Pair] {
        self.parsed().cookies.get_or_init(|| {
            let mut cookies = Vec::new();
            for line in self.header_fields().lines.iter() {
                if line.name.slice(&self.raw).eq_ignore_ascii_case(b"cookie") {
                    form::parse_cookies(&self.raw, line.value, &mut cookies);
                }
            }
            cookies
        })
    }

    fn form(&self) -> &Form {
        self.parsed().form.get_or_init(|| {
            if self.body.len() == 0 {
                return Form::default();
            }
            let content_type = self.header("content-type").unwrap_or_default();
            if let Some(boundary) = form::multipart_boundary(content_type) {
                return form::parse_multipart(&self.raw, self.body, boundary).unwrap_or_default();
            }
            if is_json_type(content_type) {
                return self.json_form();
            }
            Form {
                fields: form::parse_pairs(&self.raw, self.body),
                files: Vec::new(),
            }
        })
    }

    #[cfg(feature = "json")]
    fn json_form(&self) -> Form {
        let Some(serde_json::Value::Object(members)) = self.json() else {
            return Form::default();
        };
        let fields = members
            .iter()
            .map(|(name, value)| Pair {
                name: form::Text::Owned(name.as_str().into()),
                value: form::Text::Owned(match value {
                    serde_json::Value::String(text) => text.as_str().into(),
                    other => other.to_string().into(),
                }),
            })
            .collect();
        Form {
            fields,
            files: Vec::new(),
        }
    }

    #[cfg(not(feature = "json"))]
    fn json_form(&self) -> Form {
        Form::default()
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("uri", &self.uri())
            .field("version", &self.protocol_version())
            .field("body_len", &self.raw_body().len())
            .finish_non_exhaustive()
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        recycle(std::mem::take(&mut self.raw));
    }
}

/// Workerman reads a body as JSON when its Content-Type contains `json`.
fn is_json_type(content_type: &str) -> bool {
    content_type
        .as_bytes()
        .windows(4)
        .any(|window| window.eq_ignore_ascii_case(b"json"))
}

fn last_value<'a>(raw: &'a [u8], pairs: &'a [Pair], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|pair| pair.name.get(raw) == name)
        .map(|pair| pair.value.get(raw))
}

fn pairs<'a>(raw: &'a [u8], pairs: &'a [Pair]) -> impl Iterator<Item = (&'a str, &'a str)> {
    pairs
        .iter()
        .map(move |pair| (pair.name.get(raw), pair.value.get(raw)))
}

/// Header (or trailer) field lines, with repeated names joined on demand.
#[derive(Debug, Default)]
struct Fields {
    lines: Vec<Line>,
    /// Values that are not a plain slice of the raw bytes: the joined value of a repeated name
    /// (stored at its first line) or a lossily decoded non-UTF-8 value.
    owned: Vec<(usize, Box<str>)>,
}

#[derive(Debug)]
struct Line {
    name: Span,
    value: Span,
    /// A later line of a name already seen.
    repeat: bool,
}

impl Fields {
    fn parse_head(raw: &[u8], head_len: usize) -> Fields {
        let mut headers = [const { MaybeUninit::<httparse::Header>::uninit() }; 100];
        let mut request = httparse::Request::new(&mut []);
        let head = raw.get(..head_len).unwrap_or_default();
        match request.parse_with_uninit_headers(head, &mut headers) {
            Ok(httparse::Status::Complete(_)) => Fields::new(raw, request.headers),
            _ => Fields::default(),
        }
    }

    fn parse_trailers(raw: &[u8], section: Span) -> Fields {
        if section.is_absent() {
            return Fields::default();
        }
        let mut headers = [httparse::EMPTY_HEADER; 100];
        match httparse::parse_headers(section.slice(raw), &mut headers) {
            Ok(httparse::Status::Complete((_, fields))) => Fields::new(raw, fields),
            _ => Fields::default(),
        }
    }

    fn new(raw: &[u8], headers: &[httparse::Header]) -> Fields {
        let mut fields = Fields::default();
        for (index, header) in headers.iter().enumerate() {
            let name = Span::of(raw, header.name.as_bytes());
            let value = Span::of(raw, header.value);
            let first = fields.lines.iter().position(|line| {
                !line.repeat && line.name.slice(raw).eq_ignore_ascii_case(name.slice(raw))
            });
            fields.lines.push(Line {
                name,
                value,
                repeat: first.is_some(),
            });
            let text = String::from_utf8_lossy(header.value);
            match first {
                Some(first) => {
                    let joined = match fields.owned.iter_mut().find(|(line, _)| *line == first) {
                        Some((_, joined)) => joined,
                        None => {
                            let value = fields.lines[first].value.slice(raw);
                            fields
                                .owned
                                .push((first, String::from_utf8_lossy(value).into()));
                            let last = fields.owned.len() - 1;
                            &mut fields.owned[last].1
                        }
                    };
                    *joined = format!("{joined}, {text}").into();
                }
                None if std::str::from_utf8(header.value).is_err() => {
                    fields.owned.push((index, text.into()));
                }
                None => {}
            }
        }
        fields
    }

    fn value<'a>(&'a self, raw: &'a [u8], index: usize) -> &'a str {
        if let Some((_, owned)) = self.owned.iter().find(|(line, _)| *line == index) {
            return owned;
        }
        let value = self.lines.get(index).map(|line| line.value.slice(raw));
        std::str::from_utf8(value.unwrap_or_default()).unwrap_or_default()
    }

    fn get<'a>(&'a self, raw: &'a [u8], name: &str) -> Option<&'a str> {
        let index = self
            .lines
            .iter()
            .position(|line| line.name.slice(raw).eq_ignore_ascii_case(name.as_bytes()))?;
        Some(self.value(raw, index))
    }

    fn iter<'a>(&'a self, raw: &'a [u8]) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.lines
            .iter()
            .enumerate()
            .filter(|(_, line)| !line.repeat)
            .map(move |(index, line)| {
                let name = std::str::from_utf8(line.name.slice(raw)).unwrap_or_default();
                (name, self.value(raw, index))
            })
    }
}

/// Buffers kept for reuse per thread, and the largest capacity worth keeping.
const POOL_BUFFERS: usize = 64;
const POOL_MAX_CAPACITY: usize = 64 * 1024;

thread_local! {
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with at least `min_capacity`, reused from a dropped [`Request`] when one is
/// big enough, else newly allocated.
pub(crate) fn take_buffer(min_capacity: usize) -> Vec<u8> {
    let reused = POOL
        .try_with(|pool| {
            let mut pool = pool.try_borrow_mut().ok()?;
            let index = pool
                .iter()
                .rposition(|buffer| buffer.capacity() >= min_capacity)?;
            Some(pool.swap_remove(index))
        })
        .ok()
        .flatten();
    reused.unwrap_or_else(|| Vec::with_capacity(min_capacity))
}

/// Keeps `buffer` for [`take_buffer`] if it is worth it and the pool has room.
fn recycle(mut buffer: Vec<u8>) {
    if buffer.capacity() == 0 || buffer.capacity() > POOL_MAX_CAPACITY {
        return;
    }
    buffer.clear();
    let _ = POOL.try_with(|pool| {
        let Ok(mut pool) = pool.try_borrow_mut() else {
            return;
        };
        if pool.len() < POOL_BUFFERS {
            if pool.capacity() == 0 {
                pool.reserve_exact(POOL_BUFFERS);
            }
            pool.push(buffer);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::http::error::HttpError;
    use crate::protocols::http::parser::{Limits, RequestParser};

    fn parsed(raw: &[u8]) -> Request {
        Request::parse(raw).unwrap()
    }

    /// A POST with the given Content-Type and body.
    fn post(content_type: &str, body: &[u8]) -> Request {
        let mut raw = format!(
            "POST /p HTTP/1.1\r\nHost: h\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(body);
        parsed(&raw)
    }

    #[test]
    fn request_is_send_and_small() {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<Request>();
        assert!(std::mem::size_of::<Request>() <= 96);
    }

    #[test]
    fn line_accessors_parse_nothing() {
        let request = parsed(b"GET /a/b?x=1#frag HTTP/1.1\r\nHost: h:80\r\nCookie: c=d\r\n\r\n");
        assert_eq!(request.method(), "GET");
        assert_eq!(request.uri(), "/a/b?x=1#frag");
        assert_eq!(request.path(), "/a/b");
        assert_eq!(request.query_string(), "x=1");
        assert_eq!(request.protocol_version(), "1.1");
        assert_eq!(request.host(), Some("h:80"));
        assert_eq!(request.host_without_port(), Some("h"));
        assert!(request.keep_alive());
        assert_eq!(request.range_header(), None);
        assert!(request.parsed.get().is_none());
        assert_eq!(request.get("x"), Some("1"));
        assert!(request.parsed().headers.get().is_none());
        assert!(request.parsed().form.get().is_none());
        assert_eq!(request.header("cookie"), Some("c=d"));
        assert!(request.parsed().headers.get().is_some());
        assert!(request.parsed().cookies.get().is_none());
    }

    #[test]
    fn uri_without_query() {
        let request = parsed(b"GET /a? HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(request.query_string(), "");
        assert_eq!(request.get_all().count(), 0);
        let request = Request::parse(b"GET /plain HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!(request.query_string(), "");
        assert_eq!(request.path(), "/plain");
    }

    #[test]
    fn headers_are_case_insensitive_and_joined() {
        let request = parsed(
            b"GET / HTTP/1.1\r\nHost: h\r\nX-Multi: a\r\nAccept: */*\r\nx-multi: b\r\nX-MULTI:c\r\n\r\n",
        );
        assert_eq!(request.header("x-multi"), Some("a, b, c"));
        assert_eq!(request.header("ACCEPT"), Some("*/*"));
        assert_eq!(request.header("host"), Some("h"));
        assert_eq!(request.header("nope"), None);
        let all: Vec<_> = request.headers().collect();
        assert_eq!(
            all,
            [("Host", "h"), ("X-Multi", "a, b, c"), ("Accept", "*/*")]
        );
    }

    #[test]
    fn empty_header_value() {
        let request = parsed(b"GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Space:   \r\n\r\n");
        assert_eq!(request.header("x-empty"), Some(""));
        assert_eq!(request.header("x-space"), Some(""));
    }

    #[test]
    fn host_without_port_variants() {
        for (host, expected) in [
            ("example.com", "example.com"),
            ("example.com:8080", "example.com"),
            ("[::1]", "[::1]"),
            ("[::1]:80", "[::1]"),
            ("10.0.0.1:1", "10.0.0.1"),
            ("", ""),
        ] {
            let raw = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
            let request = parsed(raw.as_bytes());
            assert_eq!(request.host(), Some(host));
            assert_eq!(request.host_without_port(), Some(expected));
        }
        assert_eq!(request_10().host_without_port(), None);
    }

    fn request_10() -> Request {
        parsed(b"GET / HTTP/1.0\r\n\r\n")
    }

    #[test]
    fn query_parameters() {
        let request = parsed(
            b"GET /?a=1&b=hello+world&c=%E2%82%AC&a=2&empty=&flag&=x&&d=%zz&e=%41%4 HTTP/1.1\r\nHost: h\r\n\r\n",
        );
        assert_eq!(request.get("a"), Some("2"));
        assert_eq!(request.get("b"), Some("hello world"));
        assert_eq!(request.get("c"), Some("\u{20ac}"));
        assert_eq!(request.get("empty"), Some(""));
        assert_eq!(request.get("flag"), Some(""));
        assert_eq!(request.get("d"), Some("%zz"));
        assert_eq!(request.get("e"), Some("A%4"));
        assert_eq!(request.get(""), None);
        let all: Vec<_> = request.get_all().collect();
        assert_eq!(all.len(), 8);
        assert_eq!(all[0], ("a", "1"));
        // Invalid UTF-8 after decoding reads lossily.
        let request = Request::parse(b"GET /?x=%FF HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!(request.get("x"), Some("\u{fffd}"));
        // Encoded names.
        let request =
            Request::parse(b"GET /?a%5B%5D=1&a%5B%5D=2 HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!(
            request.get_all().collect::<Vec<_>>(),
            [("a[]", "1"), ("a[]", "2")]
        );
    }

    #[test]
    fn cookies_are_not_url_decoded() {
        let request = parsed(
            b"GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; b = x%20y ;c=\"q\"; novalue; =skip\r\nCookie: a=2; d=4\r\n\r\n",
        );
        assert_eq!(request.cookie("a"), Some("1"));
        assert_eq!(request.cookie("b"), Some("x%20y"));
        assert_eq!(request.cookie("c"), Some("\"q\""));
        assert_eq!(request.cookie("d"), Some("4"));
        assert_eq!(request.cookie("novalue"), None);
        assert_eq!(request.cookies().count(), 5);
        assert_eq!(request_10().cookie("a"), None);
    }

    #[test]
    fn urlencoded_body() {
        let request = post(
            "application/x-www-form-urlencoded",
            b"name=J%C3%BCrgen&x=1+2&x=3",
        );
        assert_eq!(request.post("name"), Some("J\u{fc}rgen"));
        assert_eq!(request.post("x"), Some("3"));
        assert_eq!(request.post_all().count(), 3);
        // Workerman reads any other type as urlencoded too.
        let request = post("text/plain", b"a=b");
        assert_eq!(request.post("a"), Some("b"));
        let untyped = parsed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\na=b");
        assert_eq!(untyped.post("a"), Some("b"));
        assert_eq!(untyped.raw_body(), b"a=b");
    }

    #[test]
    fn empty_body_has_no_fields() {
        let request = parsed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(request.post("a"), None);
        assert!(request.file("f").is_none());
        #[cfg(feature = "json")]
        assert_eq!(request.json(), None);
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_body() {
        let body = br#"{"s":"text","n":12,"b":true,"z":null,"o":{"k":[1,"2"]},"esc":"a\"b"}"#;
        let request = post("application/json; charset=utf-8", body);
        assert_eq!(request.post("s"), Some("text"));
        assert_eq!(request.post("n"), Some("12"));
        assert_eq!(request.post("b"), Some("true"));
        assert_eq!(request.post("z"), Some("null"));
        assert_eq!(request.post("o"), Some(r#"{"k":[1,"2"]}"#));
        assert_eq!(request.post("esc"), Some("a\"b"));
        assert_eq!(request.json().unwrap()["o"]["k"][1], "2");
        let request = post("application/vnd.api+JSON", b"[1,2]");
        assert_eq!(request.json(), Some(&serde_json::json!([1, 2])));
        assert_eq!(request.post_all().count(), 0);
        let request = post("application/json", b"{not json");
        assert_eq!(request.json(), None);
        assert_eq!(request.post("not"), None);
        // Not JSON by type: no JSON value, urlencoded fields.
        let request = post("application/x-www-form-urlencoded", b"{\"a\":1}");
        assert_eq!(request.json(), None);
    }

    fn multipart_body() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(b"preamble to ignore\r\n--XyZ\r\n");
        body.extend_from_slice(
            b"Content-Disposition: form-data; name=\"title\"\r\n\r\nHello\r\nWorld\r\n",
        );
        body.extend_from_slice(b"--XyZ\r\n");
        body.extend_from_slice(
            b"Content-Disposition: form-data; name=\"doc\"; filename=\"a \\\"b\\\".bin\"\r\n\
              Content-Type: application/octet-stream\r\n\r\n",
        );
        body.extend_from_slice(b"\x00\x01\r\n--XY\xff\r\n");
        body.extend_from_slice(b"\r\n--XyZ\r\n");
        body.extend_from_slice(
            b"content-disposition: form-data; name=euro; filename*=UTF-8''%E2%82%AC.txt; filename=\"e.txt\"\r\n\r\n\
              E\r\n--XyZ\r\n",
        );
        body.extend_from_slice(
            b"Content-Disposition: form-data; filename=\"nameless\"\r\n\r\nx\r\n--XyZ\r\n",
        );
        body.extend_from_slice(
            b"Content-Disposition: form-data; name=\"empty\"; filename=\"\"\r\n\r\n\r\n",
        );
        body.extend_from_slice(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nsecond\r\n",
        );
        body.extend_from_slice(b"--XyZ--\r\nepilogue");
        body
    }

    #[test]
    fn multipart_fields_and_files() {
        let request = post("multipart/form-data; boundary=\"XyZ\"", &multipart_body());
        assert_eq!(request.post("title"), Some("second"));
        let titles: Vec<_> = request.post_all().collect();
        assert_eq!(titles, [("title", "Hello\r\nWorld"), ("title", "second")]);
        let doc = request.file("doc").unwrap();
        assert_eq!(doc.name(), "doc");
        assert_eq!(doc.file_name(), "a \"b\".bin");
        assert_eq!(doc.content_type(), "application/octet-stream");
        assert_eq!(doc.data(), b"\x00\x01\r\n--XY\xff\r\n");
        assert_eq!(doc.size(), 11);
        let euro = request.file("euro").unwrap();
        assert_eq!(euro.file_name(), "\u{20ac}.txt");
        assert_eq!(euro.content_type(), "");
        assert_eq!(euro.data(), b"E");
        let empty = request.file("empty").unwrap();
        assert_eq!((empty.file_name(), empty.size()), ("", 0));
        assert_eq!(request.files().count(), 3);
        assert!(request.file("title").is_none());
        // The same body with an unquoted boundary.
        let request = post("Multipart/Form-Data;boundary=XyZ", &multipart_body());
        assert_eq!(request.files().count(), 3);
    }

    #[test]
    fn chunked_multipart_body() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\nv\r\n--b--\r\n";
        let mut raw =
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=b\r\n\
            Transfer-Encoding: chunked\r\n\r\n"
                .to_vec();
        for piece in body.chunks(7) {
            raw.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            raw.extend_from_slice(piece);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        let request = parsed(&raw);
        assert_eq!(request.raw_body(), body);
        assert_eq!(request.post("k"), Some("v"));
    }

    #[test]
    fn malformed_multipart_gives_nothing() {
        let cases: [&[u8]; 6] = [
            b"no delimiter at all",
            b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue without end",
            b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\nno blank line\r\n--B--",
            b"--BX\r\n",
            b"--B\r\nBad Header\r\n\r\nv\r\n--B--",
            b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--B",
        ];
        for body in cases {
            let request = post("multipart/form-data; boundary=B", body);
            assert_eq!(
                request.post_all().count(),
                0,
                "{:?}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(request.files().count(), 0);
        }
    }

    #[test]
    fn raw_head_and_body() {
        let raw = b"\r\nPOST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody";
        let request = parsed(raw);
        assert_eq!(request.raw_head(), &raw[2..raw.len() - 4]);
        assert_eq!(request.raw_body(), b"body");
        assert_eq!(
            format!("{request:?}"),
            "Request { method: \"POST\", uri: \"/x\", version: \"1.1\", body_len: 4, .. }"
        );
    }

    #[test]
    fn parse_rejects_incomplete_and_ignores_what_follows() {
        assert_eq!(
            Request::parse(b"GET / HTTP/1.1\r\nHost: h\r\n").err(),
            Some(HttpError::BadRequest("incomplete request"))
        );
        let request = parsed(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\n");
        assert_eq!(request.uri(), "/1");
    }

    #[test]
    fn into_raw_gives_wire_bytes() {
        let plain = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab";
        assert_eq!(parsed(plain).into_raw(), plain);
        let chunked = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
            2\r\nab\r\n3;x=y\r\ncde\r\n0\r\nT: 1\r\n\r\n";
        let wire = parsed(chunked).into_raw();
        assert_eq!(
            wire,
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nabcde\r\n0\r\nT: 1\r\n\r\n"
        );
        let again = parsed(&wire);
        assert_eq!(again.raw_body(), b"abcde");
        assert_eq!(again.trailer("t"), Some("1"));
        let empty = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(parsed(empty).into_raw(), empty);
    }

    #[test]
    fn dropped_requests_return_their_buffer_to_the_pool() {
        let mut raw = take_buffer(256);
        assert!(raw.is_empty() && raw.capacity() >= 256);
        raw.extend_from_slice(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        let pointer = raw.as_ptr();
        let mut parser = RequestParser::default();
        let len = parser.input(&raw, &Limits::default()).unwrap().unwrap();
        assert_eq!(len, raw.len());
        drop(parser.decode(raw));
        let reused = take_buffer(200);
        assert_eq!(reused.as_ptr(), pointer);
        assert!(reused.is_empty());
        // Too large to keep.
        let big = Vec::<u8>::with_capacity(POOL_MAX_CAPACITY + 1);
        recycle(big);
        assert!(take_buffer(POOL_MAX_CAPACITY + 1).capacity() > POOL_MAX_CAPACITY);
        // Bounded in count.
        for _ in 0..POOL_BUFFERS * 2 {
            recycle(Vec::with_capacity(16));
        }
        assert!(POOL.with(|pool| pool.borrow().len()) <= POOL_BUFFERS);
        POOL.with(|pool| pool.borrow_mut().clear());
    }
}
