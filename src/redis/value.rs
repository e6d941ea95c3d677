//! [`Value`]: one reply from Redis, RESP2 or RESP3.

use std::borrow::Cow;
use std::fmt;

/// A reply from Redis: every RESP3 type (RESP2's five are among them).
///
/// The accessors read what a command's reply usually is, whatever the protocol: `as_int` also
/// reads a bulk string of digits, `into_pairs` reads a RESP3 map or a RESP2 flat array of
/// field/value pairs (as `HGETALL` answers on each).
///
/// ```
/// use workerman::redis::Value;
/// let reply = Value::Bulk(b"42".to_vec());
/// assert_eq!(reply.as_str(), Some("42"));
/// assert_eq!(reply.as_int(), Some(42));
/// assert!(Value::Nil.is_nil());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Nil: a missing key (`$-1`, `*-1` in RESP2, `_` in RESP3).
    Nil,
    /// An integer (`:`).
    Int(i64),
    /// A bulk (blob) string (`$`): binary-safe bytes.
    Bulk(Vec<u8>),
    /// A simple string (`+`), such as `OK` or `PONG`.
    Simple(String),
    /// An array (`*`).
    Array(Vec<Value>),
    /// A RESP3 map (`%`), its pairs in the order received.
    Map(Vec<(Value, Value)>),
    /// A RESP3 set (`~`).
    Set(Vec<Value>),
    /// A RESP3 double (`,`).
    Double(f64),
    /// A RESP3 boolean (`#`).
    Boolean(bool),
    /// A RESP3 big number (`(`), as its decimal digits.
    BigNumber(String),
    /// A RESP3 verbatim string (`=`): its three-letter format (`txt`, `mkd`) and its text.
    Verbatim {
        /// `txt` or `mkd`.
        format: String,
        /// The text.
        text: String,
    },
}

impl Value {
    /// Whether this is nil.
    ///
    /// ```
    /// assert!(workerman::redis::Value::Nil.is_nil());
    /// ```
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The bytes of a bulk, simple or verbatim string.
    ///
    /// ```
    /// use workerman::redis::Value;
    /// assert_eq!(Value::Simple("OK".into()).as_bytes(), Some(&b"OK"[..]));
    /// assert_eq!(Value::Int(1).as_bytes(), None);
    /// ```
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(bytes) => Some(bytes),
            Value::Simple(text) => Some(text.as_bytes()),
            Value::Verbatim { text, .. } => Some(text.as_bytes()),
            Value::BigNumber(digits) => Some(digits.as_bytes()),
            _ => None,
        }
    }

    /// A string's text, when it is UTF-8.
    ///
    /// ```
    /// use workerman::redis::Value;
    /// assert_eq!(Value::Bulk(b"v".to_vec()).as_str(), Some("v"));
    /// assert_eq!(Value::Bulk(vec![0xff]).as_str(), None);
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.as_bytes()?).ok()
    }

    /// The value as text for display or logs: strings (lossy UTF-8), numbers, booleans; `None`
    /// for nil and aggregates.
    ///
    /// ```
    /// use workerman::redis::Value;
    /// assert_eq!(Value::Int(3).to_text().as_deref(), Some("3"));
    /// ```
    pub fn to_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::Int(number) => Some(Cow::Owned(number.to_string())),
            Value::Double(number) => Some(Cow::Owned(number.to_string())),
            Value::Boolean(flag) => Some(Cow::Borrowed(if *flag { "true" } else { "false" })),
            other => other.as_bytes().map(String::from_utf8_lossy),
        }
    }

    /// An integer: `Int`, or a string of decimal digits (RESP2 answers some counts as strings).
    ///
    /// ```
    /// use workerman::redis::Value;
    /// assert_eq!(Value::Int(7).as_int(), Some(7));
    /// assert_eq!(Value::Bulk(b"-3".to_vec()).as_int(), Some(-3));
    /// ```
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(number) => Some(*number),
            Value::Boolean(flag) => Some(i64::from(*flag)),
            other => other.as_str()?.parse().ok(),
        }
    }

    /// A floating-point number: `Double`, `Int`, or a string holding one (RESP2's `ZSCORE`).
    ///
    /// ```
    /// use workerman::redis::Value;
    /// assert_eq!(Value::Bulk(b"1.5".to_vec()).as_f64(), Some(1.5));
    /// ```
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Double(number) => Some(*number),
            Value::Int(number) => Some(*number as f64),
            other => other.as_str()?.parse().ok(),
        }
    }

    /// A boolean: `Boolean`, or an integer 0/1 (RESP2's answer to `EXISTS`, `SISMEMBER`...).
    ///
    /// ```
    /// use workerman::redis::Value;
    /// assert_eq!(Value::Int(1).as_bool(), Some(true));
    /// assert_eq!(Value::Boolean(false).as_bool(), Some(false));
    /// ```
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(flag) => Some(*flag),
            Value::Int(0) => Some(false),
            Value::Int(1) => Some(true),
            _ => None,
        }
    }

    /// The elements of an array or a set.
    ///
    /// ```
    /// use workerman::redis::Value;
    /// let reply = Value::Array(vec![Value::Int(1), Value::Nil]);
    /// assert_eq!(reply.as_array().map(|items| items.len()), Some(2));
    /// ```
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) | Value::Set(items) => Some(items),
            _ => None,
        }
    }

    /// The elements of an array or a set, owned.
    ///
    /// ```
    /// use workerman::redis::Value;
    /// assert_eq!(Value::Set(vec![Value::Int(1)]).into_array(), Some(vec![Value::Int(1)]));
    /// ```
    pub fn into_array(self) -> Option<Vec<Value>> {
        match self {
            Value::Array(items) | Value::Set(items) => Some(items),
            _ => None,
        }
    }

    /// Key/value pairs: a RESP3 map, or a RESP2 flat array `[k1, v1, k2, v2, ...]`.
    ///
    /// ```
    /// use workerman::redis::Value;
    /// let flat = Value::Array(vec![Value::Bulk(b"f".to_vec()), Value::Bulk(b"v".to_vec())]);
    /// let pairs = flat.into_pairs().unwrap();
    /// assert_eq!(pairs[0].0.as_str(), Some("f"));
    /// ```
    pub fn into_pairs(self) -> Option<Vec<(Value, Value)>> {
        match self {
            Value::Map(pairs) => Some(pairs),
            Value::Array(items) if items.len() % 2 == 0 => {
                let mut pairs = Vec::with_capacity(items.len() / 2);
                let mut items = items.into_iter();
                while let (Some(key), Some(value)) = (items.next(), items.next()) {
                    pairs.push((key, value));
                }
                Some(pairs)
            }
            _ => None,
        }
    }

    /// Whether this is the simple string `OK`.
    ///
    /// ```
    /// assert!(workerman::redis::Value::Simple("OK".into()).is_ok());
    /// ```
    pub fn is_ok(&self) -> bool {
        matches!(self, Value::Simple(text) if text == "OK")
    }
}

impl fmt::Display for Value {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => formatter.write_str("(nil)"),
            Value::Array(items) | Value::Set(items) => {
                formatter.write_str("[")?;
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        formatter.write_str(", ")?;
                    }
                    write!(formatter, "{item}")?;
                }
                formatter.write_str("]")
            }
            Value::Map(pairs) => {
                formatter.write_str("{")?;
                for (index, (key, value)) in pairs.iter().enumerate() {
                    if index > 0 {
                        formatter.write_str(", ")?;
                    }
                    write!(formatter, "{key}: {value}")?;
                }
                formatter.write_str("}")
            }
            other => formatter.write_str(&other.to_text().unwrap_or_default()),
        }
    }
}
