//! MIME types of the common web file extensions, for `Response::with_file`.
//!
//! Workerman reads a `mime.types` file at start-up; a fixed table of the types a web server
//! actually meets is enough here. Text types carry `charset=utf-8`.

use std::path::Path;

/// Extension (lower case, no dot) → `Content-Type` value.
const TABLE: &[(&str, &str)] = &[
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("json", "application/json"),
    ("map", "application/json"),
    ("webmanifest", "application/manifest+json"),
    ("txt", "text/plain; charset=utf-8"),
    ("csv", "text/csv; charset=utf-8"),
    ("md", "text/markdown; charset=utf-8"),
    ("xml", "application/xml"),
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("avif", "image/avif"),
    ("bmp", "image/bmp"),
    ("ico", "image/x-icon"),
    ("wasm", "application/wasm"),
    ("pdf", "application/pdf"),
    ("mp4", "video/mp4"),
    ("webm", "video/webm"),
    ("ogv", "video/ogg"),
    ("mov", "video/quicktime"),
    ("mp3", "audio/mpeg"),
    ("m4a", "audio/mp4"),
    ("ogg", "audio/ogg"),
    ("oga", "audio/ogg"),
    ("wav", "audio/wav"),
    ("flac", "audio/flac"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("ttf", "font/ttf"),
    ("otf", "font/otf"),
    ("zip", "application/zip"),
    ("gz", "application/gzip"),
    ("tar", "application/x-tar"),
];

/// The `Content-Type` for a file extension (without the dot, any case), if it is a known web type.
pub(crate) fn from_extension(extension: &str) -> Option<&'static str> {
    TABLE
        .iter()
        .find(|(ext, _)| ext.eq_ignore_ascii_case(extension))
        .map(|&(_, mime)| mime)
}

/// The `Content-Type` for a path, from its extension.
pub(crate) fn from_path(path: &Path) -> Option<&'static str> {
    from_extension(path.extension()?.to_str()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_extensions() {
        assert_eq!(from_extension("html"), Some("text/html; charset=utf-8"));
        assert_eq!(from_extension("js"), Some("text/javascript; charset=utf-8"));
        assert_eq!(
            from_extension("mjs"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(from_extension("wasm"), Some("application/wasm"));
        assert_eq!(from_extension("woff2"), Some("font/woff2"));
        assert_eq!(from_extension("jpeg"), Some("image/jpeg"));
    }

    #[test]
    fn extension_case_is_ignored() {
        assert_eq!(from_extension("PNG"), Some("image/png"));
        assert_eq!(from_path(Path::new("/a/B.JPG")), Some("image/jpeg"));
    }

    #[test]
    fn unknown_or_missing_extension() {
        assert_eq!(from_extension("exe"), None);
        assert_eq!(from_extension(""), None);
        assert_eq!(from_path(Path::new("/a/LICENSE")), None);
        assert_eq!(
            from_path(Path::new("/a/.html")),
            None,
            ".html is a dotfile, not an extension"
        );
    }

    #[test]
    fn table_keys_are_lower_case_and_unique() {
        for (i, (ext, _)) in TABLE.iter().enumerate() {
            assert_eq!(*ext, ext.to_ascii_lowercase());
            assert!(
                TABLE[i + 1..].iter().all(|(other, _)| other != ext),
                "{ext}"
            );
        }
    }
}
