//! The WebSocket frame codec on arbitrary bytes: the decoder never panics, reports the same events
//! however its input is split, and what the encoder writes (fragmented, masked, with a ping in
//! between) decodes back to the same message. The UTF-8 validator agrees with the standard
//! library's, and the handshake checks never panic on a parsed request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use workerman::fuzzing::{HttpRequestParser, websocket_handshake};
use workerman::protocols::websocket::frame::{
    Decoder, Event, OP_BINARY, OP_CONTINUATION, OP_PING, OP_TEXT, Role, Utf8Validator, encode_frame,
};

/// Decodes `data` fed in pieces of `piece` bytes (the unconsumed rest kept, as the connection
/// does); returns the events with their messages, stopping at the first failure.
fn decode(data: &[u8], piece: usize, role: Role, max: usize) -> Vec<(Event, Vec<u8>)> {
    let mut decoder = Decoder::default();
    let mut events = Vec::new();
    let mut buffer: Vec<u8> = Vec::new();
    let mut fed = 0;
    loop {
        let (consumed, event) = decoder.next(&buffer, role, max);
        assert!(consumed <= buffer.len());
        buffer.drain(..consumed);
        match event {
            Event::More if consumed == 0 || buffer.is_empty() => {
                if fed == data.len() {
                    return events;
                }
                let end = (fed + piece).min(data.len());
                buffer.extend_from_slice(&data[fed..end]);
                fed = end;
            }
            Event::More => {}
            Event::Message(opcode) => {
                let message = decoder.take_message();
                assert!(message.len() <= max);
                if opcode == OP_TEXT {
                    assert!(std::str::from_utf8(&message).is_ok());
                }
                events.push((event, message));
            }
            Event::Fail(code) => {
                assert!(matches!(code, 1002 | 1007 | 1009));
                events.push((event, Vec::new()));
                return events;
            }
            other => events.push((other, Vec::new())),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let max = 1 + usize::from(control) * 37;
    let role = if control & 1 == 0 {
        Role::Server
    } else {
        Role::Client
    };

    // 1. Arbitrary bytes: the same events whole and in pieces.
    let whole = decode(rest, rest.len().max(1), role, max);
    let piece = 1 + usize::from(control % 13);
    assert_eq!(decode(rest, piece, role, max), whole);

    // 2. Encode → decode: `rest` as one message in fragments, a ping after the first fragment.
    let text = std::str::from_utf8(rest).is_ok();
    let opcode = if text { OP_TEXT } else { OP_BINARY };
    let fragment = 1 + usize::from(control % 17) * 3;
    let mask = (role == Role::Server).then_some([control, 0x5a, !control, 0xa5]);
    let mut wire = Vec::new();
    let chunks: Vec<&[u8]> = if rest.is_empty() {
        vec![&[][..]]
    } else {
        rest.chunks(fragment).collect()
    };
    let ping = &rest[..rest.len().min(125)];
    if chunks.len() == 1 {
        encode_frame(&mut wire, true, OP_PING, ping, mask);
    }
    for (index, chunk) in chunks.iter().enumerate() {
        let frame_opcode = if index == 0 { opcode } else { OP_CONTINUATION };
        encode_frame(
            &mut wire,
            index == chunks.len() - 1,
            frame_opcode,
            chunk,
            mask,
        );
        if index == 0 && chunks.len() > 1 {
            // Between the first fragment and the next: control frames may interleave.
            encode_frame(&mut wire, true, OP_PING, ping, mask);
        }
    }
    let events = decode(&wire, piece, role, usize::MAX);
    assert_eq!(events.len(), 2, "{events:?}");
    match events[0].0 {
        Event::Ping(payload) => assert_eq!(payload.payload(), ping),
        ref other => panic!("expected the ping, got {other:?}"),
    }
    assert_eq!(events[1], (Event::Message(opcode), rest.to_vec()));

    // 3. The incremental UTF-8 validator agrees with std at any split.
    let split = usize::from(control).min(rest.len());
    let mut utf8 = Utf8Validator::default();
    let valid = utf8.feed(&rest[..split]) && utf8.feed(&rest[split..]) && utf8.is_complete();
    assert_eq!(valid, text);

    // 4. A parsed request through the handshake checks.
    let mut parser = HttpRequestParser::default();
    if let Ok(Some(length)) = parser.input(rest, 1 << 20) {
        let request = parser.decode(rest[..length].to_vec());
        match websocket_handshake(&request) {
            Ok(accept) => assert_eq!(accept.len(), 28),
            Err(answer) => assert!(answer.starts_with(b"HTTP/1.1 4")),
        }
    }
});
