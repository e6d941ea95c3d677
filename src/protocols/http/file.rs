//! File responses: the streaming body of a large file, `Range` parsing, `Last-Modified` dates and
//! the path resolution behind `Response::from_static_dir`.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use percent_encoding::percent_decode_str;

/// Files up to this size are read into the output buffer whole; larger ones are streamed.
pub(crate) const MAX_INLINE_FILE: u64 = 2 * 1024 * 1024;

/// The part of a file still to be sent after the response head (files over 2 MiB).
///
/// The connection pulls it piece by piece with [`FileStream::fill`], pacing itself on its send
/// buffer the way Workerman paces `withFile` on BufferFull / BufferDrain.
#[derive(Debug)]
pub(crate) struct FileStream {
    file: File,
    remaining: u64,
}

impl FileStream {
    /// A stream of `remaining` bytes from `file`'s current position.
    pub(crate) fn new(file: File, remaining: u64) -> FileStream {
        FileStream { file, remaining }
    }

    /// Appends up to `max` more bytes to `out`; `Ok(true)` when the whole range has been
    /// appended. A file that shrank under us gives `UnexpectedEof`.
    pub(crate) fn fill(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<bool> {
        let want = self.remaining.min(max as u64);
        if want > 0 {
            let got = (&mut self.file).take(want).read_to_end(out)? as u64;
            if got == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while it was being sent",
                ));
            }
            self.remaining -= got;
        }
        Ok(self.remaining == 0)
    }
}

/// What a request's `Range` header asks of a file of a given size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RangeOutcome {
    /// No usable range (absent, malformed, multi-range, another unit): send the whole file, 200.
    Whole,
    /// One satisfiable range, both ends inclusive: 206.
    Partial { first: u64, last: u64 },
    /// A well-formed range that selects nothing: 416.
    Unsatisfiable,
}

/// Parses a `Range` header value (RFC 9110 §14.2) against a file of `size` bytes.
///
/// Only a single `bytes=a-b`, `bytes=a-` or `bytes=-n` is honoured; a multi-range request or
/// anything malformed is ignored (the whole file is sent), as RFC 9110 allows.
pub(crate) fn parse_range(header: &str, size: u64) -> RangeOutcome {
    let Some((unit, spec)) = header.trim().split_once('=') else {
        return RangeOutcome::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return RangeOutcome::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return RangeOutcome::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // Suffix range: the last n bytes.
        let Some(n) = digits(last) else {
            return RangeOutcome::Whole;
        };
        if n == 0 || size == 0 {
            return RangeOutcome::Unsatisfiable;
        }
        return RangeOutcome::Partial {
            first: size.saturating_sub(n),
            last: size - 1,
        };
    }
    let Some(first) = digits(first) else {
        return RangeOutcome::Whole;
    };
    let last = if last.is_empty() {
        u64::MAX
    } else {
        match digits(last) {
            Some(last) if last >= first => last,
            _ => return RangeOutcome::Whole,
        }
    };
    if first >= size {
        return RangeOutcome::Unsatisfiable;
    }
    RangeOutcome::Partial {
        first,
        last: last.min(size - 1),
    }
}

/// A non-empty run of ASCII digits; saturates at `u64::MAX` (a huge position is still a position).
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// Appends `time` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`); `false` (nothing written)
/// for a time before 1970 or after 9999, which the format cannot hold.
pub(crate) fn push_http_date(out: &mut Vec<u8>, time: SystemTime) -> bool {
    /// 10000-01-01T00:00:00Z, the first time with a five-digit year.
    const YEAR_10000: u64 = 253_402_300_800;
    let writable = time
        .duration_since(UNIX_EPOCH)
        .is_ok_and(|since_epoch| since_epoch.as_secs() < YEAR_10000);
    // Writing into a Vec cannot fail.
    writable && write!(out, "{}", httpdate::HttpDate::from(time)).is_ok()
}

/// Maps a request path onto a regular file under `root`, or `None` (→ 404).
///
/// Strips the query and fragment, percent-decodes, and refuses: malformed escapes, non-UTF-8,
/// NUL, backslashes, `..` segments, dotfiles (except `.well-known`), and anything whose
/// canonical path (symlinks resolved) is not inside the canonical root. A directory serves its
/// `index.html`.
pub(crate) fn resolve_static(root: &Path, url_path: &str) -> Option<PathBuf> {
    let path = url_path.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path)?;
    if decoded.contains(['\0', '\\']) {
        return None;
    }
    let root = root.canonicalize().ok()?;
    let mut candidate = root.clone();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => continue,
            ".." => return None,
            ".well-known" => {}
            _ if segment.starts_with('.') => return None,
            _ => {}
        }
        // Every segment must be one plain name (no drive prefix, no root) on every platform.
        let mut components = Path::new(segment).components();
        if !matches!(
            (components.next(), components.next()),
            (Some(Component::Normal(_)), None)
        ) {
            return None;
        }
        candidate.push(segment);
    }
    let mut resolved = inside(&root, &candidate)?;
    if resolved.is_dir() {
        resolved = inside(&root, &resolved.join("index.html"))?;
    }
    resolved.is_file().then_some(resolved)
}

/// `path` canonicalized, if it exists and stays inside `root` (already canonical).
fn inside(root: &Path, path: &Path) -> Option<PathBuf> {
    let canonical = path.canonicalize().ok()?;
    canonical.starts_with(root).then_some(canonical)
}

/// `%XX` escapes decoded; `None` for a `%` not followed by two hex digits, or for a result that
/// is not UTF-8.
fn percent_decode(s: &str) -> Option<Cow<'_, str>> {
    let escapes_valid = s.split('%').skip(1).all(|after_percent| {
        after_percent
            .as_bytes()
            .get(..2)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    escapes_valid
        .then(|| percent_decode_str(s).decode_utf8().ok())
        .flatten()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    /// A fresh empty directory under the system temp dir, removed on drop.
    pub(crate) struct TempDir(pub(crate) PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("workerman-http-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }

        pub(crate) fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
            let path = self.0.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("create parent");
            }
            std::fs::write(&path, contents).expect("write temp file");
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn date(secs: u64) -> String {
        let mut out = Vec::new();
        assert!(push_http_date(
            &mut out,
            UNIX_EPOCH + Duration::from_secs(secs)
        ));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn http_date_known_values() {
        assert_eq!(date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT"); // RFC 9110's example
        assert_eq!(date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(date(1_709_164_799), "Wed, 28 Feb 2024 23:59:59 GMT");
        assert_eq!(date(1_709_251_199), "Thu, 29 Feb 2024 23:59:59 GMT");
        assert_eq!(date(4_102_444_800), "Fri, 01 Jan 2100 00:00:00 GMT");
        assert_eq!(date(253_402_300_799), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn http_date_before_epoch_writes_nothing() {
        let mut out = Vec::new();
        assert!(!push_http_date(
            &mut out,
            UNIX_EPOCH - Duration::from_secs(1)
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn http_date_after_9999_writes_nothing() {
        let mut out = Vec::new();
        let year_10000 = UNIX_EPOCH + Duration::from_secs(253_402_300_800);
        assert!(!push_http_date(&mut out, year_10000));
        assert!(out.is_empty());
    }

    #[test]
    fn range_single_forms() {
        use RangeOutcome::*;
        assert_eq!(
            parse_range("bytes=0-99", 1000),
            Partial { first: 0, last: 99 }
        );
        assert_eq!(
            parse_range("bytes=500-", 1000),
            Partial {
                first: 500,
                last: 999
            }
        );
        assert_eq!(
            parse_range("bytes=-100", 1000),
            Partial {
                first: 900,
                last: 999
            }
        );
        assert_eq!(
            parse_range("bytes=-5000", 1000),
            Partial {
                first: 0,
                last: 999
            }
        );
        assert_eq!(
            parse_range("bytes=900-5000", 1000),
            Partial {
                first: 900,
                last: 999
            }
        );
        assert_eq!(parse_range("bytes=0-0", 1), Partial { first: 0, last: 0 });
        assert_eq!(
            parse_range(" Bytes = 1-2 ", 10),
            Partial { first: 1, last: 2 }
        );
        assert_eq!(
            parse_range("bytes=0-99999999999999999999999", 10),
            Partial { first: 0, last: 9 }
        );
    }

    #[test]
    fn range_unsatisfiable() {
        use RangeOutcome::*;
        assert_eq!(parse_range("bytes=1000-", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=1000-2000", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=-1", 0), Unsatisfiable);
        assert_eq!(
            parse_range("bytes=99999999999999999999999-", 10),
            Unsatisfiable
        );
    }

    #[test]
    fn range_ignored_when_malformed_or_multiple() {
        for header in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=5-1",
            "bytes=+1-2",
            "bytes=1-2-3",
            "bytes=0-1,5-6",
            "bytes=0-1,",
            "items=0-1",
            "bytes=1 2-3",
            "bytes=-1-",
        ] {
            assert_eq!(parse_range(header, 1000), RangeOutcome::Whole, "{header:?}");
        }
    }

    #[test]
    fn file_stream_fills_in_pieces() {
        let dir = TempDir::new("stream");
        let path = dir.write("f.bin", b"0123456789");
        let mut file = File::open(path).unwrap();
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(2)).unwrap();
        let mut stream = FileStream::new(file, 7);
        let mut out = b"head".to_vec();
        assert!(!stream.fill(&mut out, 3).unwrap());
        assert_eq!(out, b"head234");
        assert!(!stream.fill(&mut out, 0).unwrap());
        assert!(stream.fill(&mut out, 100).unwrap());
        assert_eq!(out, b"head2345678");
        assert!(
            stream.fill(&mut out, 100).unwrap(),
            "a finished stream stays finished"
        );
        assert_eq!(out, b"head2345678");
    }

    #[test]
    fn file_stream_reports_a_shrunken_file() {
        let dir = TempDir::new("shrunk");
        let path = dir.write("f.bin", b"abc");
        let mut stream = FileStream::new(File::open(path).unwrap(), 10);
        let mut out = Vec::new();
        assert!(!stream.fill(&mut out, 100).unwrap());
        assert_eq!(out, b"abc");
        let err = stream.fill(&mut out, 100).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/a%20b%2Fc").as_deref(), Some("/a b/c"));
        assert_eq!(percent_decode("%e4%BD%a0").as_deref(), Some("你"));
        assert_eq!(percent_decode("+").as_deref(), Some("+"));
        assert_eq!(percent_decode("/plain").as_deref(), Some("/plain"));
        for malformed in ["%", "%2", "%zz", "a%2/", "%%41", "%4%41", "%ff"] {
            assert_eq!(percent_decode(malformed), None, "{malformed}");
        }
    }

    #[test]
    fn static_resolution_serves_files_and_index() {
        let dir = TempDir::new("static-ok");
        dir.write("index.html", b"root index");
        dir.write("css/site.css", b"body{}");
        dir.write("a b/c.txt", b"spaced");
        dir.write(".well-known/acme", b"token");
        let root = dir.0.canonicalize().unwrap();
        let resolve = |p: &str| resolve_static(&dir.0, p);
        assert_eq!(resolve("/css/site.css"), Some(root.join("css/site.css")));
        assert_eq!(
            resolve("/css//./site.css?v=1#top"),
            Some(root.join("css/site.css"))
        );
        assert_eq!(resolve("/a%20b/c.txt"), Some(root.join("a b/c.txt")));
        assert_eq!(resolve("/"), Some(root.join("index.html")));
        assert_eq!(resolve(""), Some(root.join("index.html")));
        assert_eq!(
            resolve("/.well-known/acme"),
            Some(root.join(".well-known/acme"))
        );
        assert_eq!(resolve("/css/"), None, "a directory without index.html");
        assert_eq!(resolve("/missing.txt"), None);
    }

    #[test]
    fn static_resolution_refuses_escapes() {
        let outer = TempDir::new("static-escape");
        outer.write("secret.txt", b"secret");
        outer.write("root/public.txt", b"public");
        outer.write("root/.env", b"KEY=1");
        outer.write("rootsibling/x.txt", b"sibling");
        let root = outer.0.join("root");
        for path in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2E%2Fsecret.txt",
            "/..%2fsecret.txt",
            "/x/../../secret.txt",
            "/..\\secret.txt",
            "/%5c..%5csecret.txt",
            "/public.txt%00.png",
            "/.env",
            "/%2eenv",
            "/%",
            "/%ff",
            "/../rootsibling/x.txt",
        ] {
            assert_eq!(resolve_static(&root, path), None, "{path}");
        }
        assert!(resolve_static(&root, "/public.txt").is_some());
        assert_eq!(resolve_static(&outer.0.join("no-such-root"), "/x"), None);
    }

    #[cfg(unix)]
    #[test]
    fn static_resolution_refuses_symlinks_out_of_root() {
        let outer = TempDir::new("static-symlink");
        outer.write("secret.txt", b"secret");
        outer.write("root/inner.txt", b"inner");
        let root = outer.0.join("root");
        std::os::unix::fs::symlink(outer.0.join("secret.txt"), root.join("leak.txt")).unwrap();
        std::os::unix::fs::symlink(&outer.0, root.join("up")).unwrap();
        std::os::unix::fs::symlink(root.join("inner.txt"), root.join("alias.txt")).unwrap();
        assert_eq!(resolve_static(&root, "/leak.txt"), None);
        assert_eq!(resolve_static(&root, "/up/secret.txt"), None);
        assert_eq!(
            resolve_static(&root, "/alias.txt"),
            Some(root.canonicalize().unwrap().join("inner.txt")),
            "a symlink that stays inside the root is fine"
        );
    }
}
