//! `ServerSentEvents`: one event of a `text/event-stream`, Workerman's `ServerSentEvents`.

use std::borrow::Cow;
use std::fmt;

use crate::protocols::http::response::push_decimal;

/// One Server-Sent Event, built field by field and sent with `connection.send(..)` on a
/// connection whose response had `Content-Type: text/event-stream`.
///
/// Fields are written in Workerman's order (comment, `event`, `id`, `retry`, `data`), each as
/// `name: value\n`, and a blank line ends the event. Unlike Workerman, nothing can inject a field
/// or end the event early:
/// - `data` is split on CR, LF and CRLF into several `data:` lines, so a browser's `event.data`
///   is the text with every line break turned into `\n`. An empty `data("")` still sends a
///   `data:` line, so the event is dispatched with empty data.
/// - CR and LF are **removed** from `event` and `id`, and NUL from `id` (a browser would ignore
///   an id holding NUL).
/// - A comment with line breaks becomes several `:` comment lines.
/// - An event with no fields at all is a lone comment (`:\n\n`), a harmless keep-alive.
///
/// Browsers dispatch only events that have `data`; `id` and `retry` take effect regardless.
///
/// ```
/// use workerman::protocols::http::ServerSentEvents;
///
/// let event = ServerSentEvents::new().event("message").data("hello").id(1);
/// assert_eq!(event.to_string(), "event: message\nid: 1\ndata: hello\n\n");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerSentEvents {
    comment: Option<Cow<'static, str>>,
    event: Option<Cow<'static, str>>,
    id: Option<EventId>,
    retry: Option<u64>,
    data: Option<Cow<'static, str>>,
}

impl ServerSentEvents {
    /// An event with no fields yet.
    ///
    /// ```
    /// use workerman::protocols::http::ServerSentEvents;
    ///
    /// assert_eq!(ServerSentEvents::new().to_string(), ":\n\n");
    /// ```
    pub fn new() -> ServerSentEvents {
        ServerSentEvents::default()
    }

    /// The event type (`event:`); a browser's `addEventListener(type, ..)` receives it.
    /// CR and LF are removed.
    ///
    /// ```
    /// use workerman::protocols::http::ServerSentEvents;
    ///
    /// let event = ServerSentEvents::new().event("ping").data("");
    /// assert_eq!(event.to_string(), "event: ping\ndata: \n\n");
    /// ```
    pub fn event(mut self, event: impl Into<Cow<'static, str>>) -> ServerSentEvents {
        self.event = Some(event.into());
        self
    }

    /// The payload (`data:`), split into one line per line of text.
    ///
    /// ```
    /// use workerman::protocols::http::ServerSentEvents;
    ///
    /// let event = ServerSentEvents::new().data("line 1\nline 2");
    /// assert_eq!(event.to_string(), "data: line 1\ndata: line 2\n\n");
    /// ```
    pub fn data(mut self, data: impl Into<Cow<'static, str>>) -> ServerSentEvents {
        self.data = Some(data.into());
        self
    }

    /// The event id (`id:`), which the browser sends back as `Last-Event-ID` when it reconnects.
    /// CR, LF and NUL are removed.
    ///
    /// ```
    /// use workerman::protocols::http::ServerSentEvents;
    ///
    /// assert_eq!(ServerSentEvents::new().id(42).to_string(), "id: 42\n\n");
    /// ```
    pub fn id(mut self, id: impl fmt::Display) -> ServerSentEvents {
        let mut formatted = EventId::default();
        // Writing to an `EventId` cannot fail; a `Display` that errors leaves what it wrote.
        let _ = fmt::Write::write_fmt(&mut formatted, format_args!("{id}"));
        self.id = Some(formatted);
        self
    }

    /// The reconnection delay in milliseconds (`retry:`).
    ///
    /// ```
    /// use workerman::protocols::http::ServerSentEvents;
    ///
    /// assert_eq!(ServerSentEvents::new().retry(5000).to_string(), "retry: 5000\n\n");
    /// ```
    pub fn retry(mut self, milliseconds: u64) -> ServerSentEvents {
        self.retry = Some(milliseconds);
        self
    }

    /// A comment line (`: text`), ignored by browsers; useful as a keep-alive.
    ///
    /// ```
    /// use workerman::protocols::http::ServerSentEvents;
    ///
    /// assert_eq!(ServerSentEvents::new().comment("keep-alive").to_string(), ": keep-alive\n\n");
    /// ```
    pub fn comment(mut self, comment: impl Into<Cow<'static, str>>) -> ServerSentEvents {
        self.comment = Some(comment.into());
        self
    }

    /// The wire bytes of this event.
    ///
    /// ```
    /// use workerman::protocols::http::ServerSentEvents;
    ///
    /// let bytes = ServerSentEvents::new().event("ping").id(1000).retry(5000).data("some thing").to_bytes();
    /// assert_eq!(bytes, b"event: ping\nid: 1000\nretry: 5000\ndata: some thing\n\n");
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Appends the wire bytes to `out` (growing it at most once).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let text_len = |text: &Option<Cow<'static, str>>| text.as_deref().map_or(0, str::len);
        // Room for the common case (one line a field); more lines grow the buffer as they go.
        out.reserve(
            text_len(&self.comment)
                + text_len(&self.event)
                + text_len(&self.data)
                + self.id.as_ref().map_or(0, |id| id.as_bytes().len())
                + 64,
        );
        let start = out.len();
        if let Some(comment) = &self.comment {
            for_each_line(comment, |line| push_field(out, b"", line));
        }
        if let Some(event) = &self.event {
            push_stripped_field(out, b"event", event.as_bytes(), b"\r\n");
        }
        if let Some(id) = &self.id {
            push_stripped_field(out, b"id", id.as_bytes(), b"\r\n\0");
        }
        if let Some(retry) = self.retry {
            out.extend_from_slice(b"retry: ");
            push_decimal(out, retry);
            out.push(b'\n');
        }
        if let Some(data) = &self.data {
            for_each_line(data, |line| push_field(out, b"data", line));
        }
        if out.len() == start {
            out.extend_from_slice(b":\n");
        }
        out.push(b'\n');
    }
}

impl fmt::Display for ServerSentEvents {
    /// The wire form, as text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every piece is a `str` cut at ASCII bytes, so the bytes are UTF-8.
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

/// `name: value\n` (`: value\n` for a comment). Inlined, so the name is a constant.
#[inline(always)]
fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// An event's id, formatted without a heap allocation when it is short (a number, say): the
/// seed sends `.id(1)` with every event.
#[derive(Clone, Default)]
enum EventId {
    Inline {
        bytes: [u8; 23],
        length: u8,
    },
    Heap(String),
    #[default]
    Empty,
}

impl EventId {
    fn as_bytes(&self) -> &[u8] {
        match self {
            EventId::Inline { bytes, length } => &bytes[..*length as usize],
            EventId::Heap(text) => text.as_bytes(),
            EventId::Empty => b"",
        }
    }

    fn as_str(&self) -> &str {
        // Only whole `str`s are ever copied in, so the bytes are UTF-8.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl fmt::Write for EventId {
    fn write_str(&mut self, piece: &str) -> fmt::Result {
        match self {
            EventId::Empty if piece.len() <= 23 => {
                let mut bytes = [0u8; 23];
                bytes[..piece.len()].copy_from_slice(piece.as_bytes());
                *self = EventId::Inline {
                    bytes,
                    length: piece.len() as u8,
                };
            }
            EventId::Inline { bytes, length } if *length as usize + piece.len() <= 23 => {
                let start = *length as usize;
                bytes[start..start + piece.len()].copy_from_slice(piece.as_bytes());
                *length += piece.len() as u8;
            }
            EventId::Heap(text) => text.push_str(piece),
            _ => {
                let mut text = self.as_str().to_owned();
                text.push_str(piece);
                *self = EventId::Heap(text);
            }
        }
        Ok(())
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for EventId {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for EventId {}

/// `name: value\n` with the `removed` bytes left out of the value. They are ASCII control
/// characters (at most CR), and an ASCII byte never occurs inside a multi-byte UTF-8 sequence,
/// so cutting there keeps the text valid. Inlined, so the name and the set are constants.
#[inline(always)]
fn push_stripped_field(out: &mut Vec<u8>, name: &[u8], value: &[u8], removed: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    if value
        .iter()
        .any(|&byte| byte <= b'\r' && removed.contains(&byte))
    {
        for piece in value.split(|byte| removed.contains(byte)) {
            out.extend_from_slice(piece);
        }
    } else {
        out.extend_from_slice(value);
    }
    out.push(b'\n');
}

/// Calls `f` with each line of `text`, lines ending at CRLF, CR or LF. A final line break leaves
/// an empty last line, and `""` is one empty line, so the line breaks survive a round trip.
/// Works on bytes: CR and LF are ASCII, so every line is still valid UTF-8.
fn for_each_line(text: &str, mut f: impl FnMut(&[u8])) {
    let mut rest = text.as_bytes();
    loop {
        match rest.iter().position(|&byte| byte == b'\r' || byte == b'\n') {
            Some(end) => {
                f(&rest[..end]);
                let break_len = if rest[end..].starts_with(b"\r\n") {
                    2
                } else {
                    1
                };
                rest = &rest[end + break_len..];
            }
            None => {
                f(rest);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_short_and_long_pieces() {
        let long = "a".repeat(20);
        let event = ServerSentEvents::new().id(format_args!("{long}-{}", 12345));
        assert_eq!(event.to_string(), format!("id: {long}-12345\n\n"));
        assert_eq!(ServerSentEvents::new().id(7u64).to_string(), "id: 7\n\n");
        assert_eq!(ServerSentEvents::new().id("").to_string(), "id: \n\n");
        assert_eq!(
            ServerSentEvents::new().id(1),
            ServerSentEvents::new().id("1")
        );
    }

    fn wire(event: ServerSentEvents) -> String {
        event.to_string()
    }

    #[test]
    fn workermans_test_vector() {
        let event = ServerSentEvents::new()
            .event("ping")
            .id(1000)
            .retry(5000)
            .data("some thing");
        assert_eq!(
            wire(event),
            "event: ping\nid: 1000\nretry: 5000\ndata: some thing\n\n"
        );
    }

    #[test]
    fn seed_event() {
        let event = ServerSentEvents::new().event("message").data("hello").id(1);
        assert_eq!(wire(event), "event: message\nid: 1\ndata: hello\n\n");
    }

    #[test]
    fn field_order_is_fixed() {
        let event = ServerSentEvents::new()
            .data("d")
            .retry(1)
            .id("i")
            .event("e")
            .comment("c");
        assert_eq!(wire(event), ": c\nevent: e\nid: i\nretry: 1\ndata: d\n\n");
    }

    #[test]
    fn data_splits_on_every_line_break() {
        assert_eq!(
            wire(ServerSentEvents::new().data("a\nb")),
            "data: a\ndata: b\n\n"
        );
        assert_eq!(
            wire(ServerSentEvents::new().data("a\rb")),
            "data: a\ndata: b\n\n"
        );
        assert_eq!(
            wire(ServerSentEvents::new().data("a\r\nb")),
            "data: a\ndata: b\n\n"
        );
        assert_eq!(
            wire(ServerSentEvents::new().data("a\n\rb")),
            "data: a\ndata: \ndata: b\n\n"
        );
        assert_eq!(
            wire(ServerSentEvents::new().data("a\r")),
            "data: a\ndata: \n\n"
        );
        assert_eq!(
            wire(ServerSentEvents::new().data("\n")),
            "data: \ndata: \n\n"
        );
        assert_eq!(
            wire(ServerSentEvents::new().data("\r\n\r\n")),
            "data: \ndata: \ndata: \n\n"
        );
    }

    #[test]
    fn empty_data_still_writes_a_data_line() {
        assert_eq!(wire(ServerSentEvents::new().data("")), "data: \n\n");
    }

    #[test]
    fn event_and_id_lose_line_breaks_and_nul() {
        let event = ServerSentEvents::new()
            .event("a\r\nb\rc\nd")
            .id("1\n2\r3\x004")
            .data("x");
        assert_eq!(wire(event), "event: abcd\nid: 1234\ndata: x\n\n");
        let injected = ServerSentEvents::new()
            .event("x\n\ndata: evil")
            .id("\r\nretry: 1");
        assert_eq!(wire(injected), "event: xdata: evil\nid: retry: 1\n\n");
    }

    #[test]
    fn multi_line_comment_is_several_comment_lines() {
        let event = ServerSentEvents::new().comment("one\ntwo\r\nthree\rfour");
        assert_eq!(wire(event), ": one\n: two\n: three\n: four\n\n");
        assert_eq!(wire(ServerSentEvents::new().comment("")), ": \n\n");
    }

    #[test]
    fn no_fields_is_a_keep_alive_comment() {
        assert_eq!(ServerSentEvents::new().to_bytes(), b":\n\n");
    }

    #[test]
    fn id_accepts_any_display() {
        assert_eq!(wire(ServerSentEvents::new().id("abc")), "id: abc\n\n");
        assert_eq!(wire(ServerSentEvents::new().id(-5i64)), "id: -5\n\n");
        assert_eq!(wire(ServerSentEvents::new().id("")), "id: \n\n");
    }

    #[test]
    fn retry_is_decimal() {
        assert_eq!(wire(ServerSentEvents::new().retry(0)), "retry: 0\n\n");
        assert_eq!(
            wire(ServerSentEvents::new().retry(u64::MAX)),
            format!("retry: {}\n\n", u64::MAX)
        );
    }

    #[test]
    fn leading_spaces_are_kept_by_the_extra_space() {
        assert_eq!(wire(ServerSentEvents::new().data(" x")), "data:  x\n\n");
    }

    #[test]
    fn unicode_passes_through() {
        assert_eq!(
            wire(ServerSentEvents::new().event("事件").data("你好\n🌍")),
            "event: 事件\ndata: 你好\ndata: 🌍\n\n"
        );
    }

    #[test]
    fn encode_appends() {
        let mut out = b"prefix".to_vec();
        ServerSentEvents::new().data("x").encode(&mut out);
        assert_eq!(out, b"prefixdata: x\n\n");
    }
}
