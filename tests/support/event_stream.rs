//! An independent `text/event-stream` parser for tests, written from the WHATWG HTML standard,
//! §9.2.6 "Interpreting an event stream" / "Parsing an event stream" (not from our encoder).
//!
//! It is incremental, so a test can push socket reads as they arrive:
//!
//! ```ignore
//! let mut parser = EventStreamParser::new();
//! assert!(parser.feed(b"data: hel").is_empty());
//! let events = parser.feed(b"lo\n\n");
//! assert_eq!(events[0].data, "hello");
//! ```
#![allow(dead_code)]

/// One dispatched event, as a browser's `MessageEvent` would see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// The event type: the `event` field, or `"message"` when it was empty or absent.
    pub event_type: String,
    /// The `data` lines joined with `\n`.
    pub data: String,
    /// The last event ID string of the source when this event was dispatched.
    pub last_event_id: String,
}

/// The parser state of one event stream.
#[derive(Debug, Default)]
pub struct EventStreamParser {
    /// Up to the first three bytes, held until we know whether they are a UTF-8 BOM.
    head: Vec<u8>,
    /// The BOM check is done.
    started: bool,
    /// The current, not yet terminated line.
    line: Vec<u8>,
    /// The previous byte was a CR, so an LF right after it belongs to the same line break.
    after_cr: bool,
    data: String,
    event_type: String,
    last_event_id_buffer: String,
    last_event_id: String,
    retry: Option<u64>,
    /// Every field line processed so far, known or not, as `(name, value)`.
    fields: Vec<(String, String)>,
    /// Every comment line so far, without its leading colon.
    comments: Vec<String>,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl EventStreamParser {
    /// A parser at the start of a stream.
    pub fn new() -> EventStreamParser {
        EventStreamParser::default()
    }

    /// Pushes the next bytes of the stream; returns the events they complete, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        let mut bytes = bytes;
        if !self.started {
            // One leading BOM is stripped (UTF-8 decode).
            while self.head.len() < BOM.len() && !bytes.is_empty() {
                self.head.push(bytes[0]);
                bytes = &bytes[1..];
                if !BOM.starts_with(&self.head) {
                    break;
                }
            }
            let decided = self.head.len() == BOM.len() || !BOM.starts_with(&self.head);
            if !decided {
                return events;
            }
            self.started = true;
            let head = std::mem::take(&mut self.head);
            if head != BOM {
                self.push_bytes(&head, &mut events);
            }
        }
        self.push_bytes(bytes, &mut events);
        events
    }

    /// The reconnection time set by the last valid `retry` field, if any.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Every field line processed so far, known or not, as `(name, value)`: lets a test check
    /// that nothing but the fields it sent reached the parser.
    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }

    /// Every comment line so far, without the leading `:`.
    pub fn comments(&self) -> &[String] {
        &self.comments
    }

    /// The source's last event ID string (set at each dispatch, kept across events).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    fn push_bytes(&mut self, bytes: &[u8], events: &mut Vec<Event>) {
        for &b in bytes {
            // end-of-line = ( cr lf / cr / lf )
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(events);
                }
                b'\n' => self.end_line(events),
                _ => self.line.push(b),
            }
        }
    }

    fn end_line(&mut self, events: &mut Vec<Event>) {
        // Line breaks are ASCII, so no UTF-8 sequence spans two lines: decoding per line is the
        // same as decoding the stream.
        let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
        if line.is_empty() {
            if let Some(event) = self.dispatch() {
                events.push(event);
            }
        } else if let Some(comment) = line.strip_prefix(':') {
            self.comments.push(comment.to_owned());
        } else if let Some((field, value)) = line.split_once(':') {
            let value = value.strip_prefix(' ').unwrap_or(value);
            self.process_field(field, value);
        } else {
            self.process_field(&line, "");
        }
    }

    fn process_field(&mut self, field: &str, value: &str) {
        self.fields.push((field.to_owned(), value.to_owned()));
        match field {
            "event" => self.event_type = value.to_owned(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            // An id holding NUL is ignored.
            "id" if !value.contains('\0') => self.last_event_id_buffer = value.to_owned(),
            // Only ASCII digits (a value too large for u64 is ignored too).
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok().or(self.retry);
            }
            _ => {}
        }
    }

    fn dispatch(&mut self) -> Option<Event> {
        self.last_event_id = self.last_event_id_buffer.clone();
        if self.data.is_empty() {
            self.event_type.clear();
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        let event_type = std::mem::take(&mut self.event_type);
        Some(Event {
            event_type: if event_type.is_empty() {
                "message".to_owned()
            } else {
                event_type
            },
            data,
            last_event_id: self.last_event_id.clone(),
        })
    }
}

/// Events read off a stream (an SSE response past its head) through [`EventStreamParser`].
pub struct EventReader<R> {
    reader: R,
    parser: EventStreamParser,
    /// Events parsed and not yet returned (one read may hold several).
    parsed: std::collections::VecDeque<Event>,
}

impl<R: std::io::BufRead> EventReader<R> {
    pub fn new(reader: R) -> EventReader<R> {
        EventReader {
            reader,
            parser: EventStreamParser::new(),
            parsed: Default::default(),
        }
    }

    /// The next event (within the reader's timeout); fails the test if the stream ends first.
    pub fn next(&mut self) -> Event {
        loop {
            if let Some(event) = self.parsed.pop_front() {
                return event;
            }
            let buffer = self.reader.fill_buf().expect("an event arrives");
            assert!(!buffer.is_empty(), "the stream ended");
            let length = buffer.len();
            self.parsed.extend(self.parser.feed(buffer));
            self.reader.consume(length);
        }
    }
}

impl EventReader<std::io::BufReader<std::net::TcpStream>> {
    /// The next event if one comes before `deadline` (comments and partial events do not
    /// count), else `None`; fails the test if the stream ends first. The socket's read timeout
    /// is put back as it was.
    pub fn next_before(&mut self, deadline: std::time::Instant) -> Option<Event> {
        let socket = self.reader.get_ref().try_clone().expect("clone the socket");
        let timeout = socket.read_timeout().expect("the read timeout");
        let event = loop {
            if let Some(event) = self.parsed.pop_front() {
                break Some(event);
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                break None;
            }
            let wait = (deadline - now).max(std::time::Duration::from_millis(1));
            socket.set_read_timeout(Some(wait)).unwrap();
            match std::io::BufRead::fill_buf(&mut self.reader) {
                Ok(buffer) => {
                    assert!(!buffer.is_empty(), "the stream ended");
                    let length = buffer.len();
                    self.parsed.extend(self.parser.feed(buffer));
                    std::io::BufRead::consume(&mut self.reader, length);
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(error) => panic!("reading the stream: {error}"),
            }
        };
        socket.set_read_timeout(timeout).unwrap();
        event
    }
}

impl<R: std::io::BufRead> EventReader<R> {
    /// The stream's lastEventId once it has one (an `id:` line alone sets it without an
    /// event); fails the test if the stream ends first. Read a line at a time, so it is the
    /// value right after the first `id:` line, not one of a later event that came in the same
    /// read. Events read meanwhile stay queued.
    pub fn last_event_id(&mut self) -> String {
        loop {
            if !self.parser.last_event_id().is_empty() {
                return self.parser.last_event_id().to_owned();
            }
            let buffer = self.reader.fill_buf().expect("an id arrives");
            assert!(!buffer.is_empty(), "the stream ended");
            let length = buffer
                .iter()
                .position(|&byte| byte == b'\n')
                .map_or(buffer.len(), |end| end + 1);
            self.parsed.extend(self.parser.feed(&buffer[..length]));
            self.reader.consume(length);
        }
    }
}

/// Parses a whole stream in one go.
pub fn parse(bytes: &[u8]) -> Vec<Event> {
    EventStreamParser::new().feed(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, data: &str, last_event_id: &str) -> Event {
        Event {
            event_type: event_type.into(),
            data: data.into(),
            last_event_id: last_event_id.into(),
        }
    }

    #[test]
    fn spec_example_stock_ticker() {
        assert_eq!(
            parse(b"data: YHOO\ndata: +2\ndata: 10\n\n"),
            [event("message", "YHOO\n+2\n10", "")]
        );
    }

    #[test]
    fn spec_example_ids_and_unfinished_event() {
        let stream = b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n";
        assert_eq!(
            parse(stream),
            [
                event("message", "first event", "1"),
                event("message", "second event", "")
            ]
        );
    }

    #[test]
    fn spec_example_empty_data() {
        assert_eq!(
            parse(b"data\n\ndata\ndata\n\ndata:"),
            [event("message", "", ""), event("message", "\n", "")]
        );
    }

    #[test]
    fn spec_example_one_optional_space() {
        assert_eq!(
            parse(b"data:test\n\ndata: test\n\n"),
            [event("message", "test", ""), event("message", "test", "")]
        );
    }

    #[test]
    fn line_endings_cr_lf_crlf() {
        assert_eq!(
            parse(b"data: a\rdata: b\r\ndata: c\n\r\n"),
            [event("message", "a\nb\nc", "")]
        );
        assert_eq!(parse(b"data: x\r\r"), [event("message", "x", "")]);
        assert_eq!(
            parse(b"data: x\n\r\n"),
            [event("message", "x", "")],
            "LF then CRLF is two line ends"
        );
    }

    #[test]
    fn crlf_split_across_feeds_is_one_line_end() {
        let mut parser = EventStreamParser::new();
        assert!(parser.feed(b"data: a\r").is_empty());
        assert!(parser.feed(b"\ndata: b\r").is_empty());
        assert_eq!(parser.feed(b"\n\r"), [event("message", "a\nb", "")]);
        assert_eq!(
            parser.feed(b"\ndata: c\n\n"),
            [event("message", "c", "")],
            "that LF ended its own line"
        );
    }

    #[test]
    fn bom_is_stripped_once_even_when_split() {
        let mut parser = EventStreamParser::new();
        assert!(parser.feed(b"\xEF").is_empty());
        assert!(parser.feed(b"\xBB").is_empty());
        assert_eq!(parser.feed(b"\xBFdata: x\n\n"), [event("message", "x", "")]);
        // A second BOM is not stripped: the line's field name is then "\u{FEFF}data", ignored.
        assert!(parse(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\n").is_empty());
        // A non-BOM start is kept.
        assert_eq!(
            parse(b"\xEFdata: x\n\n").len(),
            0,
            "the field name starts with U+FFFD"
        );
        assert_eq!(parse(b"data: x\n\n"), [event("message", "x", "")]);
    }

    #[test]
    fn event_type_resets_after_dispatch() {
        assert_eq!(
            parse(b"event: add\ndata: 1\n\ndata: 2\n\nevent: gone\n\ndata: 3\n\n"),
            [
                event("add", "1", ""),
                event("message", "2", ""),
                event("message", "3", "")
            ]
        );
        assert_eq!(parse(b"event:\ndata: x\n\n"), [event("message", "x", "")]);
    }

    #[test]
    fn last_event_id_persists_and_nul_ids_are_ignored() {
        let mut parser = EventStreamParser::new();
        let events = parser.feed(b"id: 7\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\nid: 8\n\n");
        assert_eq!(
            events,
            [
                event("message", "a", "7"),
                event("message", "b", "7"),
                event("message", "c", "7")
            ]
        );
        assert_eq!(
            parser.last_event_id(),
            "8",
            "an event without data still sets the id"
        );
    }

    #[test]
    fn retry_digits_only() {
        let mut parser = EventStreamParser::new();
        parser.feed(b"retry: 3000\n");
        assert_eq!(parser.retry(), Some(3000));
        for bad in [
            &b"retry: 1a\n"[..],
            b"retry: -1\n",
            b"retry: \n",
            b"retry:  5\n",
            b"retry: 1.5\n",
        ] {
            parser.feed(bad);
            assert_eq!(
                parser.retry(),
                Some(3000),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        parser.feed(b"retry:0\n");
        assert_eq!(parser.retry(), Some(0));
    }

    #[test]
    fn unknown_fields_and_comments_are_ignored() {
        let mut parser = EventStreamParser::new();
        assert_eq!(
            parser.feed(b": hi\nfoo: bar\nData: no\ndata: yes\n\n"),
            [event("message", "yes", "")]
        );
        assert_eq!(parser.comments(), [" hi"]);
        let fields: Vec<_> = parser
            .fields()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(fields, [("foo", "bar"), ("Data", "no"), ("data", "yes")]);
    }

    #[test]
    fn only_first_colon_splits() {
        assert_eq!(parse(b"data: a: b:c\n\n"), [event("message", "a: b:c", "")]);
    }

    #[test]
    fn unfinished_event_is_not_dispatched() {
        let mut parser = EventStreamParser::new();
        assert!(parser.feed(b"data: never finished\n").is_empty());
    }

    #[test]
    fn byte_at_a_time_equals_all_at_once() {
        let stream =
            "\u{FEFF}: c\r\nevent: e\rid: 1\ndata: 你好\r\ndata: 🌍\r\n\r\ndata: x\r\r".as_bytes();
        let mut parser = EventStreamParser::new();
        let mut events = Vec::new();
        for b in stream {
            events.extend(parser.feed(std::slice::from_ref(b)));
        }
        assert_eq!(events, parse(stream));
        assert_eq!(
            events,
            [event("e", "你好\n🌍", "1"), event("message", "x", "1")]
        );
    }
}
