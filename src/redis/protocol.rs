//! RESP, the Redis protocol, as a [`Protocol`]: framing, decoding replies, encoding commands.
//!
//! Sans-I/O: bytes in, replies out. Framing ([`frame_length`]) is ours: it walks a reply's
//! headers without recursion or allocation, so it can refuse what `redis-protocol`'s decoder
//! would take badly from a hostile peer: a reply bigger than the limit (a `$1073741824` header
//! is refused before a byte of it is buffered), nesting deeper than [`MAX_DEPTH`] (the decoder
//! recurses once per level), and bytes that are not RESP at all. A whole frame is then decoded
//! by `redis-protocol` (RESP2 or RESP3, push frames included) into a [`Value`]. Commands are
//! written directly as RESP arrays of bulk strings, the only form Redis takes.

use std::cell::Cell;

use redis_protocol::resp2::types::RangeFrame as Resp2Frame;
use redis_protocol::resp3::types::{RangeFrame as Resp3Frame, VerbatimStringFormat};

use super::Value;
use crate::TcpConnection;
use crate::protocols::{Input, Protocol};

/// The deepest nesting of aggregates accepted in a reply (Redis's own replies nest a few levels:
/// `XREAD` is four).
pub(crate) const MAX_DEPTH: usize = 32;
/// The longest header line (type byte to CRLF) of a length-prefixed or numeric frame.
const MAX_HEADER_LINE: usize = 64;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    /// A reply value.
    Value(Value),
    /// An error reply's line (`ERR ...`).
    Error(String),
    /// A RESP3 push frame (pub/sub messages and confirmations), or in RESP2 an array on a
    /// subscribed connection (told apart by the caller).
    Push(Vec<Value>),
    /// The frame was complete but not valid RESP (a bad number, a bad verbatim format).
    Malformed(String),
}

/// Why [`frame_length`] refused the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// Not RESP: the byte at this offset cannot start a frame, or a header is malformed.
    Malformed(&'static str),
    /// The reply is (or declares itself) longer than the limit.
    TooLarge,
}

/// The length of the whole frame at the start of `buffer`: `Ok(Some(n))`, `Ok(None)` when more
/// bytes are needed, or why the input can never become a valid reply within `max_size` bytes.
/// `resp3` decides what `$-1`/`*-1` mean (nil in RESP2; refused in RESP3, which has `_`).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn frame_length(
    buffer: &[u8],
    max_size: usize,
    resp3: bool,
) -> Result<Option<usize>, FrameError> {
    frame_length_from(buffer, max_size, resp3, &mut Scan::default())
}

/// Where [`frame_length_from`] stopped in an incomplete frame: the start of the element it could
/// not finish and the aggregates open around it. A longer buffer holding the same frame resumes
/// there, so a big reply arriving in many reads is walked once, not once per read.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Scan {
    position: usize,
    depth: usize,
    remaining: [usize; MAX_DEPTH],
}

/// [`frame_length`], resuming from (and, when more bytes are needed, saving to) `scan`, which
/// must come from an earlier call on a prefix of this same `buffer` (or be the default).
pub(crate) fn frame_length_from(
    buffer: &[u8],
    max_size: usize,
    resp3: bool,
    scan: &mut Scan,
) -> Result<Option<usize>, FrameError> {
    // Elements still to read at each open aggregate level.
    let Scan {
        mut position,
        mut depth,
        mut remaining,
    } = *scan;
    let mut save = |position: usize, depth: usize, remaining: &[usize; MAX_DEPTH]| {
        *scan = Scan {
            position,
            depth,
            remaining: *remaining,
        };
    };
    loop {
        let element_start = position;
        let Some(&kind) = buffer.get(position) else {
            save(element_start, depth, &remaining);
            return Ok(None);
        };
        let line_start = position + 1;
        let numeric = !matches!(kind, b'+' | b'-' | b'(');
        let window_end = if numeric {
            buffer.len().min(line_start + MAX_HEADER_LINE)
        } else {
            buffer.len()
        };
        let Some(line_length) = buffer[line_start..window_end]
            .iter()
            .position(|&byte| byte == b'\n')
        else {
            if numeric && window_end == line_start + MAX_HEADER_LINE {
                return Err(FrameError::Malformed("header line too long"));
            }
            if buffer.len() > max_size {
                return Err(FrameError::TooLarge);
            }
            save(element_start, depth, &remaining);
            return Ok(None);
        };
        if line_length == 0 || buffer[line_start + line_length - 1] != b'\r' {
            return Err(FrameError::Malformed("a line not ending in CRLF"));
        }
        let line = &buffer[line_start..line_start + line_length - 1];
        position = line_start + line_length + 1;
        // How many elements this frame opens (0 for a scalar).
        let mut opens = 0usize;
        match kind {
            b'+' | b'-' | b':' | b',' | b'(' | b'#' | b'_' => {}
            b'$' | b'!' | b'=' => {
                if line == b"-1" && kind == b'$' && !resp3 {
                    // RESP2 nil bulk string.
                } else {
                    let length = parse_length(line)?;
                    if length > max_size {
                        return Err(FrameError::TooLarge);
                    }
                    let end = position + length + 2;
                    if end > max_size.saturating_add(MAX_HEADER_LINE * 2) {
                        return Err(FrameError::TooLarge);
                    }
                    if buffer.len() < end {
                        save(element_start, depth, &remaining);
                        return Ok(None);
                    }
                    if &buffer[end - 2..end] != b"\r\n" {
                        return Err(FrameError::Malformed("a string not ending in CRLF"));
                    }
                    position = end;
                }
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                if line == b"-1" && kind == b'*' && !resp3 {
                    // RESP2 nil array.
                } else {
                    let count = parse_length(line)?;
                    // Each element takes at least 3 bytes (`_\r\n`).
                    if count > max_size / 3 {
                        return Err(FrameError::TooLarge);
                    }
                    opens = match kind {
                        b'%' => count * 2,
                        // An attribute's pairs, then the frame it describes.
                        b'|' => count * 2 + 1,
                        _ => count,
                    };
                }
            }
            _ => return Err(FrameError::Malformed("not a RESP type byte")),
        }
        if position > max_size {
            return Err(FrameError::TooLarge);
        }
        if opens > 0 {
            if depth == MAX_DEPTH {
                return Err(FrameError::Malformed("nested too deep"));
            }
            remaining[depth] = opens;
            depth += 1;
            continue;
        }
        // A whole element ended: it counts toward its parent, which may end with it.
        loop {
            if depth == 0 {
                *scan = Scan::default();
                return Ok(Some(position));
            }
            remaining[depth - 1] -= 1;
            if remaining[depth - 1] > 0 {
                break;
            }
            depth -= 1;
        }
    }
}

fn parse_length(line: &[u8]) -> Result<usize, FrameError> {
    if line.is_empty() || line.len() > 19 || !line.iter().all(u8::is_ascii_digit) {
        return Err(FrameError::Malformed("a bad length"));
    }
    std::str::from_utf8(line)
        .ok()
        .and_then(|digits| digits.parse().ok())
        .ok_or(FrameError::Malformed("a bad length"))
}

/// Decodes one whole frame (exactly the bytes [`frame_length`] reported).
pub(crate) fn decode(frame: &[u8], resp3: bool) -> Reply {
    if resp3 {
        match redis_protocol::resp3::decode::complete::decode_range(frame) {
            Ok(Some((range, _))) => from_resp3(frame, range),
            Ok(None) => Reply::Malformed("an incomplete frame".into()),
            Err(error) => Reply::Malformed(error.to_string()),
        }
    } else {
        match redis_protocol::resp2::decode::decode_range(frame) {
            Ok(Some((range, _))) => from_resp2(frame, range),
            Ok(None) => Reply::Malformed("an incomplete frame".into()),
            Err(error) => Reply::Malformed(error.to_string()),
        }
    }
}

fn from_resp2(buffer: &[u8], frame: Resp2Frame) -> Reply {
    match frame {
        Resp2Frame::Error(range) => Reply::Error(lossy(&buffer[range.0..range.1])),
        other => match resp2_value(buffer, other) {
            Ok(value) => Reply::Value(value),
            Err(why) => Reply::Malformed(why),
        },
    }
}

fn resp2_value(buffer: &[u8], frame: Resp2Frame) -> Result<Value, String> {
    Ok(match frame {
        Resp2Frame::SimpleString(range) => Value::Simple(lossy(&buffer[range.0..range.1])),
        Resp2Frame::Error(range) => Value::Simple(lossy(&buffer[range.0..range.1])),
        Resp2Frame::Integer(number) => Value::Int(number),
        Resp2Frame::BulkString(range) => Value::Bulk(buffer[range.0..range.1].to_vec()),
        Resp2Frame::Null => Value::Nil,
        Resp2Frame::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| resp2_value(buffer, item))
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn from_resp3(buffer: &[u8], frame: Resp3Frame) -> Reply {
    match frame {
        Resp3Frame::SimpleError { data, .. } | Resp3Frame::BlobError { data, .. } => {
            Reply::Error(lossy(&buffer[data.0..data.1]))
        }
        Resp3Frame::Push { data, .. } => {
            match data
                .into_iter()
                .map(|item| resp3_value(buffer, item))
                .collect()
            {
                Ok(items) => Reply::Push(items),
                Err(why) => Reply::Malformed(why),
            }
        }
        other => match resp3_value(buffer, other) {
            Ok(value) => Reply::Value(value),
            Err(why) => Reply::Malformed(why),
        },
    }
}

fn resp3_value(buffer: &[u8], frame: Resp3Frame) -> Result<Value, String> {
    let text = |range: (usize, usize)| lossy(&buffer[range.0..range.1]);
    Ok(match frame {
        Resp3Frame::BlobString { data, .. } => Value::Bulk(buffer[data.0..data.1].to_vec()),
        Resp3Frame::SimpleString { data, .. } => Value::Simple(text(data)),
        // An error nested in an aggregate (as in a transaction's replies) is kept as its text.
        Resp3Frame::SimpleError { data, .. } | Resp3Frame::BlobError { data, .. } => {
            Value::Simple(text(data))
        }
        Resp3Frame::Boolean { data, .. } => Value::Boolean(data),
        Resp3Frame::Null => Value::Nil,
        Resp3Frame::Number { data, .. } => Value::Int(data),
        Resp3Frame::Double { data, .. } => Value::Double(data),
        Resp3Frame::BigNumber { data, .. } => Value::BigNumber(text(data)),
        Resp3Frame::VerbatimString { data, format, .. } => Value::Verbatim {
            format: match format {
                VerbatimStringFormat::Text => "txt".into(),
                VerbatimStringFormat::Markdown => "mkd".into(),
            },
            text: text(data),
        },
        Resp3Frame::Array { data, .. } | Resp3Frame::Push { data, .. } => Value::Array(
            data.into_iter()
                .map(|item| resp3_value(buffer, item))
                .collect::<Result<_, _>>()?,
        ),
        Resp3Frame::Set { data, .. } => Value::Set(
            data.into_iter()
                .map(|item| resp3_value(buffer, item))
                .collect::<Result<_, _>>()?,
        ),
        // redis-protocol fills the map from the last pair back: reversed, it is in wire order.
        Resp3Frame::Map { data, .. } => Value::Map(
            data.into_iter()
                .rev()
                .map(|(key, value)| Ok((resp3_value(buffer, key)?, resp3_value(buffer, value)?)))
                .collect::<Result<_, String>>()?,
        ),
        Resp3Frame::Hello { .. } => return Err("a HELLO frame from the server".into()),
        Resp3Frame::ChunkedString(_) => return Err("a streamed string".into()),
    })
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Appends a command (`["SET", "k", "v"]`) as a RESP array of bulk strings.
pub(crate) fn encode_command<A: AsRef<[u8]>>(arguments: &[A], out: &mut Vec<u8>) {
    // One allocation for the whole command, not one per doubling of the buffer.
    let length = arguments
        .iter()
        .fold(header_length(arguments.len()), |total, argument| {
            let argument = argument.as_ref().len();
            total.saturating_add(header_length(argument) + argument + 2)
        });
    out.reserve(length);
    write_header(out, b'*', arguments.len());
    for argument in arguments {
        let argument = argument.as_ref();
        write_header(out, b'$', argument.len());
        out.extend_from_slice(argument);
        out.extend_from_slice(b"\r\n");
    }
}

/// The bytes of a `*3\r\n` / `$5\r\n` header for `length`.
fn header_length(length: usize) -> usize {
    let digits = length.checked_ilog10().map_or(1, |log| log as usize + 1);
    digits + 3
}

fn write_header(out: &mut Vec<u8>, kind: u8, length: usize) {
    out.push(kind);
    out.extend_from_slice(itoa::Buffer::new().format(length).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The client's side of RESP on one connection, as a [`Protocol`]: `input` frames a reply,
/// `decode` decodes it, `encode` passes commands (already RESP) through.
pub(crate) struct Resp {
    /// Replies are RESP3 (after a successful `HELLO 3`).
    pub(crate) resp3: Cell<bool>,
    pub(crate) max_reply_size: Cell<usize>,
    /// How far an incomplete reply has been walked (reset for each connection).
    pub(crate) scan: Cell<Scan>,
    /// Where this connection goes, for the log line when a reply is refused.
    pub(crate) target: String,
}

impl Protocol for std::rc::Rc<Resp> {
    type Message = Reply;

    fn input(&self, buffer: &[u8], connection: &TcpConnection) -> Input {
        let mut scan = self.scan.get();
        let found = frame_length_from(
            buffer,
            self.max_reply_size.get(),
            self.resp3.get(),
            &mut scan,
        );
        self.scan.set(if found.is_err() {
            Scan::default()
        } else {
            scan
        });
        match found {
            Ok(Some(length)) => Input::Package(length),
            Ok(None) => Input::NeedMore,
            Err(FrameError::TooLarge) => {
                log::error!(
                    "redis {}: a reply over the {}-byte limit, closing connection {}",
                    self.target,
                    self.max_reply_size.get(),
                    connection.id()
                );
                Input::Invalid
            }
            Err(FrameError::Malformed(why)) => {
                log::error!(
                    "redis {}: malformed reply ({why}), closing connection {}",
                    self.target,
                    connection.id()
                );
                Input::Invalid
            }
        }
    }

    fn decode(&self, package: &[u8], _connection: &TcpConnection) -> Reply {
        decode(package, self.resp3.get())
    }

    fn encode(&self, data: &[u8], _connection: &TcpConnection, out: &mut Vec<u8>) {
        out.extend_from_slice(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: usize = 512 << 20;

    fn whole(bytes: &[u8], resp3: bool) -> Reply {
        let length = frame_length(bytes, MAX, resp3)
            .expect("valid")
            .expect("complete");
        assert_eq!(length, bytes.len());
        decode(bytes, resp3)
    }

    #[test]
    fn resp2_replies() {
        assert_eq!(
            whole(b"+OK\r\n", false),
            Reply::Value(Value::Simple("OK".into()))
        );
        assert_eq!(whole(b"$-1\r\n", false), Reply::Value(Value::Nil));
        assert_eq!(whole(b"*-1\r\n", false), Reply::Value(Value::Nil));
        assert_eq!(whole(b":-5\r\n", false), Reply::Value(Value::Int(-5)));
        assert_eq!(
            whole(b"-WRONGTYPE bad\r\n", false),
            Reply::Error("WRONGTYPE bad".into())
        );
        assert_eq!(
            whole(b"*2\r\n$1\r\na\r\n*1\r\n$0\r\n\r\n", false),
            Reply::Value(Value::Array(vec![
                Value::Bulk(b"a".to_vec()),
                Value::Array(vec![Value::Bulk(Vec::new())])
            ]))
        );
    }

    #[test]
    fn resp3_replies() {
        assert_eq!(whole(b"_\r\n", true), Reply::Value(Value::Nil));
        assert_eq!(whole(b",1.5\r\n", true), Reply::Value(Value::Double(1.5)));
        assert_eq!(whole(b"#t\r\n", true), Reply::Value(Value::Boolean(true)));
        assert_eq!(
            whole(b"(12345678901234567890\r\n", true),
            Reply::Value(Value::BigNumber("12345678901234567890".into()))
        );
        assert_eq!(
            whole(b"=7\r\ntxt:abc\r\n", true),
            Reply::Value(Value::Verbatim {
                format: "txt".into(),
                text: "abc".into()
            })
        );
        assert_eq!(
            whole(b"%2\r\n+b\r\n:2\r\n+a\r\n:1\r\n", true),
            Reply::Value(Value::Map(vec![
                (Value::Simple("b".into()), Value::Int(2)),
                (Value::Simple("a".into()), Value::Int(1)),
            ]))
        );
        assert_eq!(
            whole(b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n", true),
            Reply::Push(vec![
                Value::Bulk(b"message".to_vec()),
                Value::Bulk(b"c".to_vec()),
                Value::Bulk(b"hi".to_vec()),
            ])
        );
        assert_eq!(
            whole(b"|1\r\n+key\r\n+val\r\n:7\r\n", true),
            Reply::Value(Value::Int(7))
        );
        assert_eq!(whole(b"!3\r\nERR\r\n", true), Reply::Error("ERR".into()));
    }

    #[test]
    fn partial_frames_wait_at_every_cut() {
        let frame = b"*3\r\n$3\r\nabc\r\n%1\r\n+k\r\n:1\r\n~1\r\n,2.5\r\n";
        for cut in 0..frame.len() {
            assert_eq!(
                frame_length(&frame[..cut], MAX, true),
                Ok(None),
                "cut {cut}"
            );
        }
        assert_eq!(frame_length(frame, MAX, true), Ok(Some(frame.len())));
    }

    #[test]
    fn hostile_input_is_refused_early() {
        assert_eq!(
            frame_length(b"$1073741824\r\n", MAX, false),
            Err(FrameError::TooLarge)
        );
        assert_eq!(
            frame_length(b"*999999999999\r\n", MAX, false),
            Err(FrameError::TooLarge)
        );
        assert!(matches!(
            frame_length(b"hello\r\n", MAX, false),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            frame_length(b"$abc\r\n", MAX, false),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            frame_length(b"$3\r\nabcde", MAX, false),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            frame_length(&[b'$'; 100], MAX, false),
            Err(FrameError::Malformed(_))
        ));
        let deep = b"*1\r\n".repeat(MAX_DEPTH + 1);
        assert!(matches!(
            frame_length(&deep, MAX, false),
            Err(FrameError::Malformed(_))
        ));
        // A simple string with no end stays within the limit, then is refused.
        assert_eq!(frame_length(b"+abc", 8, false), Ok(None));
        assert_eq!(
            frame_length(b"+abcdefghij", 8, false),
            Err(FrameError::TooLarge)
        );
        assert_eq!(frame_length(b"$9\r\n", 8, false), Err(FrameError::TooLarge));
    }

    #[test]
    fn a_bad_double_is_malformed_not_a_panic() {
        assert!(matches!(whole(b",abc\r\n", true), Reply::Malformed(_)));
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode_command(&["SET", "k", ""], &mut out);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
        out.clear();
        encode_command(&[vec![0u8; 10]], &mut out);
        assert!(out.starts_with(b"*1\r\n$10\r\n"));
        out.clear();
        encode_command(&[vec![b'x'; 12345]], &mut out);
        assert!(out.starts_with(b"*1\r\n$12345\r\nxx"));
        assert_eq!(out.len(), 4 + 8 + 12345 + 2);
        for length in [0, 9, 10, 99, 100, 12345, usize::MAX] {
            let mut header = Vec::new();
            write_header(&mut header, b'$', length);
            assert_eq!(header_length(length), header.len(), "{length}");
        }
    }

    /// RESP3 wire bytes of a value (the test's own encoder).
    fn wire(value: &Value, out: &mut Vec<u8>) {
        match value {
            Value::Nil => out.extend_from_slice(b"_\r\n"),
            Value::Int(number) => out.extend_from_slice(format!(":{number}\r\n").as_bytes()),
            Value::Bulk(bytes) => {
                out.extend_from_slice(format!("${}\r\n", bytes.len()).as_bytes());
                out.extend_from_slice(bytes);
                out.extend_from_slice(b"\r\n");
            }
            Value::Array(items) => {
                out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
                for item in items {
                    wire(item, out);
                }
            }
            other => unreachable!("not generated: {other:?}"),
        }
    }

    fn values() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Nil),
            any::<i64>().prop_map(Value::Int),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bulk),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            proptest::collection::vec(inner, 0..8).prop_map(Value::Array)
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            for resp3 in [false, true] {
                if let Ok(Some(length)) = frame_length(&bytes, 1 << 16, resp3) {
                    prop_assert!(length <= bytes.len());
                    let _ = decode(&bytes[..length], resp3);
                }
            }
        }

        #[test]
        fn commands_decode_back_to_their_arguments(
            arguments in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..40),
        ) {
            let mut bytes = Vec::new();
            encode_command(&arguments, &mut bytes);
            prop_assert_eq!(frame_length(&bytes, MAX, false), Ok(Some(bytes.len())));
            let bulks = arguments.into_iter().map(Value::Bulk).collect();
            prop_assert_eq!(decode(&bytes, false), Reply::Value(Value::Array(bulks)));
        }

        #[test]
        fn values_frame_at_their_end_and_decode_back(value in values(), cut in any::<prop::sample::Index>()) {
            let mut bytes = Vec::new();
            wire(&value, &mut bytes);
            prop_assert_eq!(frame_length(&bytes, MAX, true), Ok(Some(bytes.len())));
            prop_assert_eq!(decode(&bytes, true), Reply::Value(value));
            let cut = cut.index(bytes.len());
            prop_assert_eq!(frame_length(&bytes[..cut], MAX, true), Ok(None));
            // Fed in growing prefixes, resuming each time: the same answers.
            let mut scan = Scan::default();
            for end in [cut / 2, cut, bytes.len()] {
                let expected = frame_length(&bytes[..end], MAX, true);
                prop_assert_eq!(frame_length_from(&bytes[..end], MAX, true, &mut scan), expected);
            }
        }
    }
}
