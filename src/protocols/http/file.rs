//! File responses: the streaming body of a large file, `Range` parsing, `Last-Modified` dates and
//! the path resolution behind `Response::from_static_dir`.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::protocols::http::response::push_decimal;

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
/// for a time before 1970.
pub(crate) fn push_http_date(out: &mut Vec<u8>, time: SystemTime) -> bool {
    let Ok(since_epoch) = time.duration_since(UNIX_EPOCH) else {
        return false;
    };
    let secs = since_epoch.as_secs();
    let days = secs / 86_400;
    let secs_of_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    out.extend_from_slice(WEEKDAYS[(days % 7) as usize].as_bytes());
    out.extend_from_slice(b", ");
    push_two_digits(out, day);
    out.push(b' ');
    out.extend_from_slice(MONTHS[(month - 1) as usize].as_bytes());
    out.push(b' ');
    push_decimal(out, year);
    out.push(b' ');
    push_two_digits(out, secs_of_day / 3600);
    out.push(b':');
    push_two_digits(out, secs_of_day / 60 % 60);
    out.push(b':');
    push_two_digits(out, secs_of_day % 60);
    out.extend_from_slice(b" GMT");
    true
}

fn push_two_digits(out: &mut Vec<u8>, n: u64) {
    out.push(b'0' + (n / 10 % 10) as u8);
    out.push(b'0' + (n % 10) as u8);
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`, for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Maps a request path onto a regular file under `root`, or `None` (→ 404).
///
/// Strips the query and fragment, percent-decodes, and refuses: malformed escapes, non-UTF-8,
/// NUL, backslashes, `..` segments, dotfiles (except `.well-known`), and anything whose
/// canonical path (symlinks resolved) is not inside the canonical root. A directory serves its
/// `index.html`.
pub(crate) fn resolve_static(root: &Path, url_path: &str) -> Option<PathBuf> {
    let path = url_path.split(['?', '#']).next().unwrap_or("");
    let decoded = String::from_utf8(percent_decode(path)?).ok()?;
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

/// `%XX` escapes decoded; `None` for a `%` not followed by two hex digits.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let high = hex_value(*bytes.get(i + 1)?)?;
            let low = hex_value(*bytes.get(i + 2)?)?;
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
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
    fn civil_dates_match_a_day_by_day_walk() {
        let (mut y, mut m, mut d) = (1970u64, 1u64, 1u64);
        for days in 0..(366 * 450) {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let month_len = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            d += 1;
            if d > month_len[(m - 1) as usize] {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
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
        assert_eq!(percent_decode("/a%20b%2Fc").unwrap(), b"/a b/c");
        assert_eq!(percent_decode("%e4%BD%a0").unwrap(), "你".as_bytes());
        assert_eq!(percent_decode("+"), Some(b"+".to_vec()));
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%zz"), None);
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
