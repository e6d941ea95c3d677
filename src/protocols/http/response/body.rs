//! `Body`: the bytes of a response, borrowed when `'static`, owned otherwise.

use std::borrow::Cow;
use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::http::Response;

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
}
