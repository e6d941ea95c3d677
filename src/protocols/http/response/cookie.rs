//! `Cookie` and `SameSite`: a `Set-Cookie` value, in Workerman's attribute order.

use std::borrow::Cow;
use std::fmt;

use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};

/// What a cookie name percent-encodes: everything but the RFC 9110 token characters.
const NAME_ESCAPED: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'(')
    .add(b')')
    .add(b',')
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'{')
    .add(b'}');

/// What a cookie value percent-encodes: PHP's `rawurlencode` keeps only `A-Z a-z 0-9 - _ . ~`.
const VALUE_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

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

/// A `Set-Cookie` value, built up and then added with [`Response::cookie`](super::Response::cookie).
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
        write!(
            f,
            "{}={}",
            utf8_percent_encode(&self.name, NAME_ESCAPED),
            utf8_percent_encode(&self.value, VALUE_ESCAPED)
        )?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::http::Response;
    use crate::protocols::http::response::encode::tests::wire;
    use crate::protocols::http::response::header::is_token;

    #[test]
    fn cookie_names_keep_exactly_the_token_characters() {
        for byte in 0u8..=0x7f {
            let name = char::from(byte).to_string();
            let kept = Cookie::new(name.clone(), "").to_string() == format!("{name}=");
            assert_eq!(kept, is_token(&name), "byte {byte:#04x}");
        }
        assert_eq!(Cookie::new("é", "").to_string(), "%C3%A9=");
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
}
