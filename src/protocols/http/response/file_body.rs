//! A file as a response body (`Response::with_file`): the whole file or a range of it (206,
//! 416), `Content-Type` from the extension, `Last-Modified`, and large files streamed.

use std::borrow::Cow;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::digits::push_decimal;
use super::encode::{
    EncodeOptions, Encoded, Framing, Scan, push_connection, push_content_length, push_header,
    push_status_line, write_plain,
};
use super::header::is;
use super::status::reason_phrase;
use super::{FileSource, Response};
use crate::protocols::http::file::{self, FileStream, MAX_INLINE_FILE, RangeOutcome};
use crate::protocols::http::mime;

const INTERNAL_ERROR_BODY: &str = "<h3>500 Internal Server Error</h3>";

/// What an RFC 8187 `filename*` percent-encodes: everything but its `attr-char`s.
const ATTR_CHAR_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

impl Response {
    pub(super) fn encode_file(
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
        for part in utf8_percent_encode(&name, ATTR_CHAR_ESCAPED) {
            out.extend_from_slice(part.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::http::file::tests::TempDir;
    use crate::protocols::http::response::encode::tests::{CLOSE, HEAD, encode_with, ranged, wire};

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
}
