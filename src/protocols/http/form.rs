//! Text pieces of a request: url-decoding, query and urlencoded pairs, cookies, multipart/form-data.
//!
//! Everything here reads the request's raw bytes and returns [`Span`]s into them where no decoding
//! is needed, so parsing a plain query string copies nothing. Malformed input never panics: a bad
//! percent escape is kept literally (as PHP's `urldecode` does) and a malformed multipart body
//! yields no fields at all.

use std::borrow::Cow;

use percent_encoding::percent_decode;

/// A byte range `start..end` of a request's raw bytes. `Span::default()` (0..0) means "absent":
/// no header value or body can start at offset 0, where the request line is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    /// The span of `part`, a sub-slice of `base`. Offsets are bounded by the package size limit,
    /// which the parser keeps below `u32::MAX`.
    pub(crate) fn of(base: &[u8], part: &[u8]) -> Span {
        let start = (part.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
        Span::new(start, start + part.len())
    }

    pub(crate) fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// The bytes this span covers, or nothing if it lies outside `raw`.
    pub(crate) fn slice(self, raw: &[u8]) -> &[u8] {
        raw.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }

    pub(crate) fn is_absent(self) -> bool {
        self.start == 0 && self.end == 0
    }

    pub(crate) fn len(self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }
}

/// A piece of text: either valid UTF-8 borrowed from the raw request, or an owned decoded copy.
#[derive(Clone, Debug)]
pub(crate) enum Text {
    Raw(Span),
    Owned(Box<str>),
}

impl Text {
    /// The text of a span, url-decoded (`%XX` and `+`) when `url_decoded` is set. Copies only when
    /// decoding changes something or the bytes are not valid UTF-8 (then lossily).
    pub(crate) fn new(raw: &[u8], span: Span, url_decoded: bool) -> Text {
        let bytes = span.slice(raw);
        if url_decoded && bytes.iter().any(|&b| b == b'%' || b == b'+') {
            return Text::Owned(lossy(&url_decode(bytes)));
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => Text::Raw(span),
            Err(_) => Text::Owned(lossy(bytes)),
        }
    }

    pub(crate) fn get<'a>(&'a self, raw: &'a [u8]) -> &'a str {
        match self {
            Text::Raw(span) => std::str::from_utf8(span.slice(raw)).unwrap_or_default(),
            Text::Owned(text) => text,
        }
    }
}

fn lossy(bytes: &[u8]) -> Box<str> {
    String::from_utf8_lossy(bytes).into()
}

/// A name and its value (a query parameter, a form field, a cookie).
#[derive(Clone, Debug)]
pub(crate) struct Pair {
    pub(crate) name: Text,
    pub(crate) value: Text,
}

/// Decodes `%XX` escapes and `+` (as a space), like PHP's `urldecode`. An invalid escape is kept
/// as it is.
pub(crate) fn url_decode(bytes: &[u8]) -> Cow<'_, [u8]> {
    if !bytes.contains(&b'+') {
        return percent_decode(bytes).into();
    }
    let spaced: Vec<u8> = bytes
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    Cow::Owned(percent_decode(&spaced).collect())
}

/// Splits `a=1&b=x+y` (a query string or an urlencoded body) into url-decoded pairs, in order.
/// Empty segments and segments with an empty name are skipped; `a` alone is `a` = "".
pub(crate) fn parse_pairs(raw: &[u8], span: Span) -> Vec<Pair> {
    let mut pairs = Vec::new();
    let mut start = span.start as usize;
    for segment in span.slice(raw).split(|&b| b == b'&') {
        let end = start + segment.len();
        let (name, value) = match segment.iter().position(|&b| b == b'=') {
            Some(eq) => (Span::new(start, start + eq), Span::new(start + eq + 1, end)),
            None => (Span::new(start, end), Span::new(end, end)),
        };
        if name.len() > 0 {
            pairs.push(Pair {
                name: Text::new(raw, name, true),
                value: Text::new(raw, value, true),
            });
        }
        start = end + 1;
    }
    pairs
}

/// Appends the cookies of one `Cookie` header value (`a=1; b=2`) to `out`. Names and values are
/// trimmed of spaces but not url-decoded (as Workerman); a part without `=` or with an empty name
/// is skipped.
pub(crate) fn parse_cookies(raw: &[u8], span: Span, out: &mut Vec<Pair>) {
    let mut start = span.start as usize;
    for part in span.slice(raw).split(|&b| b == b';') {
        let end = start + part.len();
        if let Some(eq) = part.iter().position(|&b| b == b'=') {
            let name = trim_span(raw, Span::new(start, start + eq));
            let value = trim_span(raw, Span::new(start + eq + 1, end));
            if name.len() > 0 {
                out.push(Pair {
                    name: Text::new(raw, name, false),
                    value: Text::new(raw, value, false),
                });
            }
        }
        start = end + 1;
    }
}

/// `span` without leading and trailing spaces and tabs.
fn trim_span(raw: &[u8], span: Span) -> Span {
    let bytes = span.slice(raw);
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let leading = bytes.iter().take_while(|b| is_space(b)).count();
    let trailing = bytes[leading..]
        .iter()
        .rev()
        .take_while(|b| is_space(b))
        .count();
    Span::new(span.start as usize + leading, span.end as usize - trailing)
}

/// A file sent in a `multipart/form-data` body (Workerman's `$request->file('name')` array:
/// `name`, `tmp_name`, `size`, `error`, `type`, `full_path`).
///
/// A body small enough to be buffered (up to `Worker::set_upload_threshold`, 1 MiB by default)
/// keeps its files in memory ([`data`](Self::data)); a larger one is streamed, each file to a
/// temporary file in the upload directory ([`tmp_name`](Self::tmp_name)), so a 1 GiB upload
/// costs the server a constant amount of memory. A temporary file is removed when the request
/// is dropped (after `on_message`, as Workerman does) unless [`move_to`](Self::move_to) took it.
///
/// ```
/// use workerman::protocols::http::Request;
///
/// let body = "--B\r\n\
///     Content-Disposition: form-data; name=\"avatar\"; filename=\"me.png\"\r\n\
///     Content-Type: image/png\r\n\r\n\
///     PNG...\r\n\
///     --B--\r\n";
/// let raw = format!(
///     "POST /upload HTTP/1.1\r\nHost: example.com\r\n\
///      Content-Type: multipart/form-data; boundary=B\r\nContent-Length: {}\r\n\r\n{body}",
///     body.len()
/// );
/// let request = Request::parse(raw.as_bytes())?;
/// let file = request.file("avatar").unwrap();
/// assert_eq!(file.file_name(), "me.png");
/// assert_eq!(file.content_type(), "image/png");
/// assert_eq!(file.data(), b"PNG...");
/// assert_eq!(file.size(), 6);
/// assert_eq!(file.error(), 0);
/// assert!(file.tmp_name().is_none()); // small: in memory
/// # Ok::<(), workerman::protocols::http::HttpError>(())
/// ```
#[derive(Debug)]
pub struct UploadedFile {
    pub(crate) name: String,
    pub(crate) file_name: String,
    pub(crate) content_type: String,
    pub(crate) data: Vec<u8>,
    pub(crate) size: u64,
    pub(crate) error: u8,
    /// The temporary file of a streamed upload.
    pub(crate) temporary: Option<TemporaryFile>,
}

/// A temporary upload file, removed when dropped unless it was moved.
#[derive(Debug)]
pub(crate) struct TemporaryFile {
    pub(crate) path: std::path::PathBuf,
    pub(crate) moved: std::cell::Cell<bool>,
}

impl Drop for TemporaryFile {
    fn drop(&mut self) {
        if !self.moved.get() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl UploadedFile {
    /// PHP's `UPLOAD_ERR_OK`: the file arrived whole.
    ///
    /// ```
    /// use workerman::protocols::http::UploadedFile;
    /// # use workerman::protocols::http::Request;
    /// # let body = "\
    /// #     --B\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"photos/me.png\"\r\n\
    /// #     Content-Type: image/png\r\n\r\nPNG...\r\n\
    /// #     --B--\r\n";
    /// # let raw = format!(
    /// #     "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=B\r\n\
    /// #      Content-Length: {}\r\n\r\n{body}",
    /// #     body.len()
    /// # );
    /// # let request = Request::parse(raw.as_bytes())?;
    /// let file = request.file("avatar").unwrap();
    /// assert_eq!(file.error(), UploadedFile::UPLOAD_ERR_OK);
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub const UPLOAD_ERR_OK: u8 = 0;
    /// PHP's `UPLOAD_ERR_CANT_WRITE`: the temporary file could not be written (disk full).
    ///
    /// ```no_run
    /// use workerman::protocols::http::{Request, Response, UploadedFile};
    /// # fn f(connection: &workerman::TcpConnection, request: Request) {
    /// if let Some(file) = request.file("video") {
    ///     if file.error() == UploadedFile::UPLOAD_ERR_CANT_WRITE {
    ///         connection.send(Response::new(507, [("Content-Type", "text/plain")], "disk full"));
    ///     }
    /// }
    /// # }
    /// ```
    pub const UPLOAD_ERR_CANT_WRITE: u8 = 7;

    pub(crate) fn in_memory(
        name: String,
        file_name: String,
        content_type: String,
        data: Vec<u8>,
    ) -> UploadedFile {
        UploadedFile {
            name,
            file_name,
            content_type,
            size: data.len() as u64,
            data,
            error: Self::UPLOAD_ERR_OK,
            temporary: None,
        }
    }

    /// The form field's name (`name="..."` of the part; Workerman's array key).
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// # let body = "\
    /// #     --B\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"photos/me.png\"\r\n\
    /// #     Content-Type: image/png\r\n\r\nPNG...\r\n\
    /// #     --B--\r\n";
    /// # let raw = format!(
    /// #     "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=B\r\n\
    /// #      Content-Length: {}\r\n\r\n{body}",
    /// #     body.len()
    /// # );
    /// # let request = Request::parse(raw.as_bytes())?;
    /// let names: Vec<&str> = request.files().map(|file| file.name()).collect();
    /// assert_eq!(names, ["avatar"]);
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file name the client sent (`filename="..."`, Workerman's `name`), as sent: it may
    /// contain path separators and must not be used as a local path without sanitising. Empty
    /// when the browser sent a file input with no file chosen.
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// # let body = "\
    /// #     --B\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"photos/me.png\"\r\n\
    /// #     Content-Type: image/png\r\n\r\nPNG...\r\n\
    /// #     --B--\r\n";
    /// # let raw = format!(
    /// #     "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=B\r\n\
    /// #      Content-Length: {}\r\n\r\n{body}",
    /// #     body.len()
    /// # );
    /// # let request = Request::parse(raw.as_bytes())?;
    /// let file = request.file("avatar").unwrap();
    /// // As sent: never use it as a local path without sanitising it.
    /// let base = file.file_name().rsplit(['/', '\\']).next().unwrap_or_default();
    /// assert_eq!(base, "me.png");
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// The file name as sent, path included (Workerman's `full_path`, PHP 8.1's name for it).
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// # let body = "\
    /// #     --B\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"photos/me.png\"\r\n\
    /// #     Content-Type: image/png\r\n\r\nPNG...\r\n\
    /// #     --B--\r\n";
    /// # let raw = format!(
    /// #     "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=B\r\n\
    /// #      Content-Length: {}\r\n\r\n{body}",
    /// #     body.len()
    /// # );
    /// # let request = Request::parse(raw.as_bytes())?;
    /// assert_eq!(request.file("avatar").unwrap().full_path(), "photos/me.png");
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn full_path(&self) -> &str {
        &self.file_name
    }

    /// The part's `Content-Type` (Workerman's `type`), or `""` if it had none.
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// # let body = "\
    /// #     --B\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"photos/me.png\"\r\n\
    /// #     Content-Type: image/png\r\n\r\nPNG...\r\n\
    /// #     --B--\r\n";
    /// # let raw = format!(
    /// #     "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=B\r\n\
    /// #      Content-Length: {}\r\n\r\n{body}",
    /// #     body.len()
    /// # );
    /// # let request = Request::parse(raw.as_bytes())?;
    /// let file = request.file("avatar").unwrap();
    /// assert!(file.content_type().starts_with("image/"));
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The contents of a file kept in memory; empty for one streamed to disk (read it from
    /// [`tmp_name`](Self::tmp_name)).
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// # let body = "\
    /// #     --B\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"photos/me.png\"\r\n\
    /// #     Content-Type: image/png\r\n\r\nPNG...\r\n\
    /// #     --B--\r\n";
    /// # let raw = format!(
    /// #     "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=B\r\n\
    /// #      Content-Length: {}\r\n\r\n{body}",
    /// #     body.len()
    /// # );
    /// # let request = Request::parse(raw.as_bytes())?;
    /// let file = request.file("avatar").unwrap();
    /// assert!(file.data().starts_with(b"PNG"));
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The file's size in bytes (Workerman's `size`), in memory or on disk.
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// # let body = "\
    /// #     --B\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"photos/me.png\"\r\n\
    /// #     Content-Type: image/png\r\n\r\nPNG...\r\n\
    /// #     --B--\r\n";
    /// # let raw = format!(
    /// #     "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=B\r\n\
    /// #      Content-Length: {}\r\n\r\n{body}",
    /// #     body.len()
    /// # );
    /// # let request = Request::parse(raw.as_bytes())?;
    /// let file = request.file("avatar").unwrap();
    /// assert_eq!(file.size(), 6);
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn size(&self) -> usize {
        self.size as usize
    }

    /// PHP's upload error code (Workerman's `error`): [`UPLOAD_ERR_OK`](Self::UPLOAD_ERR_OK)
    /// or [`UPLOAD_ERR_CANT_WRITE`](Self::UPLOAD_ERR_CANT_WRITE).
    ///
    /// ```
    /// use workerman::protocols::http::UploadedFile;
    /// # use workerman::protocols::http::Request;
    /// # let body = "\
    /// #     --B\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"photos/me.png\"\r\n\
    /// #     Content-Type: image/png\r\n\r\nPNG...\r\n\
    /// #     --B--\r\n";
    /// # let raw = format!(
    /// #     "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=B\r\n\
    /// #      Content-Length: {}\r\n\r\n{body}",
    /// #     body.len()
    /// # );
    /// # let request = Request::parse(raw.as_bytes())?;
    /// let file = request.file("avatar").unwrap();
    /// assert_eq!(file.error(), UploadedFile::UPLOAD_ERR_OK);
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn error(&self) -> u8 {
        self.error
    }

    /// Where a streamed file is on disk (Workerman's `tmp_name`); `None` for a file in memory.
    /// The file is removed when the request is dropped unless [`move_to`](Self::move_to) moved it.
    ///
    /// ```
    /// # use workerman::protocols::http::Request;
    /// # let body = "\
    /// #     --B\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"photos/me.png\"\r\n\
    /// #     Content-Type: image/png\r\n\r\nPNG...\r\n\
    /// #     --B--\r\n";
    /// # let raw = format!(
    /// #     "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=B\r\n\
    /// #      Content-Length: {}\r\n\r\n{body}",
    /// #     body.len()
    /// # );
    /// # let request = Request::parse(raw.as_bytes())?;
    /// let file = request.file("avatar").unwrap();
    /// match file.tmp_name() {
    ///     Some(path) => println!("streamed to {}", path.display()),
    ///     None => assert_eq!(file.data(), b"PNG..."), // small: kept in memory
    /// }
    /// # Ok::<(), workerman::protocols::http::HttpError>(())
    /// ```
    pub fn tmp_name(&self) -> Option<&std::path::Path> {
        self.temporary
            .as_ref()
            .map(|temporary| temporary.path.as_path())
    }

    /// Puts the file at `destination` (a rename, or a copy across file systems; a file in
    /// memory is written there) so it is kept after the request (Workerman's
    /// `move_uploaded_file($file['tmp_name'], ...)`).
    ///
    /// ```no_run
    /// # fn f(request: workerman::protocols::http::Request) -> std::io::Result<()> {
    /// if let Some(avatar) = request.file("avatar") {
    ///     avatar.move_to("/srv/avatars/42.png")?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn move_to(&self, destination: impl AsRef<std::path::Path>) -> std::io::Result<()> {
        let destination = destination.as_ref();
        let Some(temporary) = &self.temporary else {
            return std::fs::write(destination, &self.data);
        };
        if temporary.moved.get() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the uploaded file was already moved",
            ));
        }
        if std::fs::rename(&temporary.path, destination).is_err() {
            std::fs::copy(&temporary.path, destination)?;
            let _ = std::fs::remove_file(&temporary.path);
        }
        temporary.moved.set(true);
        Ok(())
    }
}

/// Fields and files of a request body.
#[derive(Debug, Default)]
pub(crate) struct Form {
    pub(crate) fields: Vec<Pair>,
    pub(crate) files: Vec<UploadedFile>,
}

/// At most this many files are kept from one multipart body (PHP's `max_file_uploads` in
/// Workerman is 1024); later ones are dropped.
pub(crate) const MAX_FILE_UPLOADS: usize = 1024;

/// The `boundary` parameter of a `multipart/...` Content-Type, quoted or not.
pub(crate) fn multipart_boundary(content_type: &str) -> Option<&str> {
    let (media_type, mut rest) = content_type.split_once(';')?;
    if !media_type
        .trim()
        .get(..10)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("multipart/"))
    {
        return None;
    }
    // `*( OWS ";" OWS name "=" ( token / quoted-string ) )`, quotes may hold `;`.
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        let eq = rest.find('=')?;
        if let Some(semicolon) = rest[..eq].find(';') {
            rest = &rest[semicolon..]; // a parameter without a value
            continue;
        }
        let key = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            },
            None => {
                let end = after.find(';').unwrap_or(after.len());
                (after[..end].trim_end(), &after[end..])
            }
        };
        if key.eq_ignore_ascii_case("boundary") {
            return (!value.is_empty() && value.len() <= 200).then_some(value);
        }
        rest = &next[next.find(';')?..];
    }
}

/// Parses a `multipart/form-data` body. Returns `None` if the body is malformed: no opening
/// delimiter, a part without a head, or no closing delimiter.
pub(crate) fn parse_multipart(raw: &[u8], body: Span, boundary: &str) -> Option<Form> {
    let bytes = body.slice(raw);
    let mut delimiter = Vec::with_capacity(boundary.len() + 4);
    delimiter.extend_from_slice(b"\r\n--");
    delimiter.extend_from_slice(boundary.as_bytes());

    // The first delimiter may open the body (without the CRLF) or follow a preamble.
    let mut pos = if bytes.starts_with(&delimiter[2..]) {
        delimiter.len() - 2
    } else {
        find(bytes, &delimiter, 0)? + delimiter.len()
    };
    let mut form = Form::default();
    loop {
        // After a delimiter: `--` closes the body; otherwise optional whitespace and CRLF.
        let rest = bytes.get(pos..)?;
        if rest.starts_with(b"--") {
            return Some(form);
        }
        let padding = rest
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        if !rest[padding..].starts_with(b"\r\n") {
            return None;
        }
        let part_start = pos + padding + 2;
        let part_end = find(bytes, &delimiter, part_start)?;
        read_part(raw, bytes.get(part_start..part_end)?, &mut form)?;
        pos = part_end + delimiter.len();
    }
}

/// Reads one part (its head, a blank line, its content) into `form`.
fn read_part(raw: &[u8], part: &[u8], form: &mut Form) -> Option<()> {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let (head_len, headers) = match httparse::parse_headers(part, &mut headers) {
        Ok(httparse::Status::Complete(parsed)) => parsed,
        _ => return None,
    };
    let content = &part[head_len..];
    let mut disposition = None;
    let mut content_type = "";
    for header in headers.iter() {
        if header.name.eq_ignore_ascii_case("content-disposition") {
            disposition = Some(header.value);
        } else if header.name.eq_ignore_ascii_case("content-type") {
            content_type = std::str::from_utf8(header.value).unwrap_or_default();
        }
    }
    let disposition = ContentDisposition::parse(disposition?);
    let Some(name) = disposition.name else {
        return Some(()); // a part without a name is ignored, not an error
    };
    match disposition.file_name {
        Some(file_name) => {
            if form.files.len() < MAX_FILE_UPLOADS {
                form.files.push(UploadedFile::in_memory(
                    name.into_owned(),
                    file_name.into_owned(),
                    content_type.to_owned(),
                    content.to_vec(),
                ));
            }
        }
        None => {
            let name = Text::Owned(name.into());
            let value = Text::new(raw, Span::of(raw, content), false);
            form.fields.push(Pair { name, value });
        }
    }
    Some(())
}

/// What a streamed part's head says: its field name (`None`: the part is ignored), its file
/// name if it is a file, its Content-Type.
pub(crate) struct PartHead {
    pub(crate) name: Option<String>,
    pub(crate) file_name: Option<String>,
    pub(crate) content_type: String,
}

/// Reads a part's head (its header lines and the blank line); `None` if malformed.
pub(crate) fn part_head(head: &[u8]) -> Option<PartHead> {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let headers = match httparse::parse_headers(head, &mut headers) {
        Ok(httparse::Status::Complete((_, headers))) => headers,
        _ => return None,
    };
    let mut disposition = None;
    let mut content_type = String::new();
    for header in headers.iter() {
        if header.name.eq_ignore_ascii_case("content-disposition") {
            disposition = Some(header.value);
        } else if header.name.eq_ignore_ascii_case("content-type") {
            content_type = String::from_utf8_lossy(header.value).into_owned();
        }
    }
    let disposition = ContentDisposition::parse(disposition?);
    Some(PartHead {
        name: disposition.name.map(Cow::into_owned),
        file_name: disposition.file_name.map(Cow::into_owned),
        content_type,
    })
}

/// The `name` and `filename` of a `Content-Disposition: form-data; ...` part header.
#[derive(Default)]
struct ContentDisposition<'a> {
    name: Option<Cow<'a, str>>,
    file_name: Option<Cow<'a, str>>,
}

impl<'a> ContentDisposition<'a> {
    fn parse(value: &'a [u8]) -> ContentDisposition<'a> {
        let mut result = ContentDisposition::default();
        let mut extended_file_name = None;
        let mut rest = value;
        // Skip the disposition type (`form-data`), then read `; key=value` parameters.
        let Some(semicolon) = rest.iter().position(|&b| b == b';') else {
            return result;
        };
        rest = &rest[semicolon + 1..];
        loop {
            rest = trim_start(rest);
            let Some(eq) = rest.iter().position(|&b| b == b'=' || b == b';') else {
                break;
            };
            if rest[eq] == b';' {
                rest = &rest[eq + 1..];
                continue;
            }
            let key = trim_end(&rest[..eq]);
            rest = trim_start(&rest[eq + 1..]);
            let value: Cow<'a, [u8]>;
            if let Some(quoted) = rest.strip_prefix(b"\"") {
                let (text, after) = unquote(quoted);
                value = text;
                rest = after;
            } else {
                let end = rest.iter().position(|&b| b == b';').unwrap_or(rest.len());
                value = Cow::Borrowed(trim_end(&rest[..end]));
                rest = &rest[end..];
            }
            let text = match value {
                Cow::Borrowed(bytes) => String::from_utf8_lossy(bytes),
                Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
            };
            if key.eq_ignore_ascii_case(b"name") {
                result.name.get_or_insert(text);
            } else if key.eq_ignore_ascii_case(b"filename") {
                result.file_name.get_or_insert(text);
            } else if key.eq_ignore_ascii_case(b"filename*") {
                extended_file_name = extended_value(&text);
            }
            match rest.iter().position(|&b| b == b';') {
                Some(semicolon) => rest = &rest[semicolon + 1..],
                None => break,
            }
        }
        // RFC 6266: `filename*` (UTF-8''percent-encoded) wins over `filename`.
        if let Some(file_name) = extended_file_name {
            result.file_name = Some(Cow::Owned(file_name));
        }
        result
    }
}

/// A quoted-string's content (with `\x` escapes resolved) and what follows its closing quote.
/// An unterminated string runs to the end.
fn unquote(quoted: &[u8]) -> (Cow<'_, [u8]>, &[u8]) {
    let mut end = 0;
    let mut escaped = false;
    while end < quoted.len() {
        match quoted[end] {
            b'\\' => {
                escaped = true;
                end += 1;
            }
            b'"' => break,
            _ => {}
        }
        end += 1;
    }
    let content = &quoted[..end.min(quoted.len())];
    let after = quoted.get(end + 1..).unwrap_or_default();
    if !escaped {
        return (Cow::Borrowed(content), after);
    }
    let mut out = Vec::with_capacity(content.len());
    let mut bytes = content.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' => out.extend(bytes.next()),
            b => out.push(b),
        }
    }
    (Cow::Owned(out), after)
}

/// An RFC 8187 extended value `UTF-8''%e2%82%ac.txt`, decoded; other charsets are not supported.
fn extended_value(value: &str) -> Option<String> {
    let (charset, rest) = value.split_once('\'')?;
    let (_language, encoded) = rest.split_once('\'')?;
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    let decoded = percent_decode(encoded.as_bytes()).decode_utf8().ok()?;
    Some(decoded.into_owned())
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let n = bytes
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    &bytes[n..]
}

fn trim_end(bytes: &[u8]) -> &[u8] {
    let n = bytes
        .iter()
        .rev()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    &bytes[..bytes.len() - n]
}

/// The first position of `needle` in `haystack` at or after `from`.
pub(crate) fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut start = from;
    while let Some(candidate) = haystack.get(start..)?.iter().position(|&b| b == first) {
        let at = start + candidate;
        if haystack.get(at..at + needle.len())? == needle {
            return Some(at);
        }
        start = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(raw: &[u8]) -> Span {
        Span::new(0, raw.len())
    }

    fn pairs(raw: &[u8]) -> Vec<(String, String)> {
        parse_pairs(raw, span(raw))
            .iter()
            .map(|pair| {
                (
                    pair.name.get(raw).to_owned(),
                    pair.value.get(raw).to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn url_decoding() {
        assert_eq!(&*url_decode(b"plain"), b"plain");
        assert!(matches!(url_decode(b"plain"), Cow::Borrowed(_)));
        assert_eq!(&*url_decode(b"a+b%20c"), b"a b c");
        assert_eq!(&*url_decode(b"%41%62%2b"), b"Ab+");
        assert_eq!(&*url_decode(b"%"), b"%");
        assert_eq!(&*url_decode(b"%4"), b"%4");
        assert_eq!(&*url_decode(b"%g1%1g"), b"%g1%1g");
        assert_eq!(&*url_decode(b"%00%ff"), b"\x00\xff");
    }

    #[test]
    fn text_borrows_when_it_can() {
        let raw = b"abc%41";
        assert!(matches!(
            Text::new(raw, Span::new(0, 3), true),
            Text::Raw(_)
        ));
        let decoded = Text::new(raw, span(raw), true);
        assert!(matches!(decoded, Text::Owned(_)));
        assert_eq!(decoded.get(raw), "abcA");
        assert_eq!(Text::new(raw, span(raw), false).get(raw), "abc%41");
        let invalid = b"a\xffb";
        assert_eq!(
            Text::new(invalid, span(invalid), false).get(invalid),
            "a\u{fffd}b"
        );
        // A span outside the buffer reads as empty rather than panicking.
        assert_eq!(Text::Raw(Span::new(5, 50)).get(raw), "");
    }

    #[test]
    fn pairs_parsing() {
        let owned = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(pairs(b""), owned(&[]));
        assert_eq!(pairs(b"a=1&b=2"), owned(&[("a", "1"), ("b", "2")]));
        assert_eq!(
            pairs(b"&&a&=x&b=&c=1=2"),
            owned(&[("a", ""), ("b", ""), ("c", "1=2")])
        );
        assert_eq!(pairs(b"k%20y=v+w"), owned(&[("k y", "v w")]));
    }

    #[test]
    fn pairs_at_an_offset() {
        let raw = b"GET /?x=1&y=2";
        let pairs = parse_pairs(raw, Span::new(6, raw.len()));
        assert_eq!(pairs[0].name.get(raw), "x");
        assert_eq!(pairs[1].value.get(raw), "2");
    }

    #[test]
    fn cookie_parsing() {
        let raw = b"Cookie: a=1;b=2 ;  c = 3; d; e==; =f";
        let mut cookies = Vec::new();
        parse_cookies(raw, Span::new(8, raw.len()), &mut cookies);
        let found: Vec<_> = cookies
            .iter()
            .map(|pair| (pair.name.get(raw), pair.value.get(raw)))
            .collect();
        assert_eq!(found, [("a", "1"), ("b", "2"), ("c", "3"), ("e", "=")]);
    }

    #[test]
    fn boundary_parameter() {
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=abc"),
            Some("abc")
        );
        assert_eq!(
            multipart_boundary("multipart/form-data;boundary=\"a b;c\""),
            Some("a b;c")
        );
        assert_eq!(
            multipart_boundary("MULTIPART/mixed; charset=utf-8; BOUNDARY=x"),
            Some("x")
        );
        assert_eq!(multipart_boundary("multipart/form-data"), None);
        assert_eq!(multipart_boundary("multipart/form-data; boundary="), None);
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=\"\""),
            None
        );
        assert_eq!(multipart_boundary("text/plain; boundary=x"), None);
        assert_eq!(multipart_boundary("multi; boundary=x"), None);
        assert_eq!(multipart_boundary(""), None);
        assert_eq!(
            multipart_boundary("multipart/x; a=\"b;boundary=no\"; boundary=yes"),
            Some("yes")
        );
        assert_eq!(
            multipart_boundary("multipart/x; flag; boundary=z"),
            Some("z")
        );
        assert_eq!(multipart_boundary("multipart/x; a=\"open"), None);
    }

    #[test]
    fn content_disposition() {
        let parsed =
            ContentDisposition::parse(b"form-data; name=\"a;b\"; filename=\"c\\\\d\\\"e\"");
        assert_eq!(parsed.name.as_deref(), Some("a;b"));
        assert_eq!(parsed.file_name.as_deref(), Some("c\\d\"e"));
        let parsed = ContentDisposition::parse(b"form-data;name=plain ;  filename = f.txt ");
        assert_eq!(parsed.name.as_deref(), Some("plain"));
        assert_eq!(parsed.file_name.as_deref(), Some("f.txt"));
        let parsed = ContentDisposition::parse(b"form-data; filename*=UTF-8''caf%C3%A9.txt");
        assert_eq!(parsed.name, None);
        assert_eq!(parsed.file_name.as_deref(), Some("caf\u{e9}.txt"));
        let parsed = ContentDisposition::parse(b"form-data; name=\"unterminated");
        assert_eq!(parsed.name.as_deref(), Some("unterminated"));
        for odd in [
            &b""[..],
            b"form-data",
            b";;;",
            b"form-data; =x",
            b"; name",
            b"; name=\"\\",
        ] {
            let _ = ContentDisposition::parse(odd);
        }
    }

    #[test]
    fn find_needle() {
        assert_eq!(find(b"abcabc", b"ca", 0), Some(2));
        assert_eq!(find(b"abcabc", b"ab", 1), Some(3));
        assert_eq!(find(b"abcabc", b"cx", 0), None);
        assert_eq!(find(b"ab", b"abc", 0), None);
        assert_eq!(find(b"ab", b"a", 5), None);
    }

    #[test]
    fn multipart_never_panics_on_prefixes() {
        let body = b"--B\r\nContent-Disposition: form-data; name=\"a\"; filename=\"f\"\r\n\
            Content-Type: text/plain\r\n\r\ndata\r\n--B\r\nContent-Disposition: form-data; name=b\r\n\r\nv\r\n--B--";
        for end in 0..=body.len() {
            let form = parse_multipart(body, Span::new(0, end), "B");
            if end == body.len() {
                let form = form.unwrap();
                assert_eq!(form.files.len(), 1);
                assert_eq!(form.fields.len(), 1);
            }
        }
        for start in 0..body.len() {
            let _ = parse_multipart(body, Span::new(start, body.len()), "B");
        }
    }
}
