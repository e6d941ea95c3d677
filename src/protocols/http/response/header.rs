//! Header lines of a response: name validation and value cleaning, so no header can split the
//! response.

use std::borrow::Cow;

/// A header line: name and value.
pub(crate) type Header = (Cow<'static, str>, Cow<'static, str>);

/// Headers that describe a body; dropped when a file response turns into a 404.
pub(super) fn is_representation_header(name: &str) -> bool {
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

/// Whether the header name `name` is `lower_case`, in any case.
pub(super) fn is(name: &str, lower_case: &str) -> bool {
    name.eq_ignore_ascii_case(lower_case)
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether `s` is a valid header name (a non-empty RFC 9110 token).
pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// CR, LF, NUL and other control characters (but not tab) become spaces; clean values are
/// kept as they are, without copying.
pub(super) fn clean_value(value: Cow<'static, str>) -> Cow<'static, str> {
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
