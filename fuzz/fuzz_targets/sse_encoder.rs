//! The Server-Sent Events encoder on arbitrary field values: its output, parsed by the WHATWG
//! rules (an independent parser), gives back exactly what was encoded (after the documented
//! sanitizing of CR/LF in event and id, and NUL in id), as one event and nothing more.
#![no_main]

use libfuzzer_sys::fuzz_target;
use workerman::protocols::http::ServerSentEvents;

#[path = "../../tests/support/event_stream.rs"]
mod event_stream;

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    let mut fields = text.splitn(4, '\u{1}');
    let event = fields.next().unwrap_or("").to_owned();
    let id = fields.next().unwrap_or("").to_owned();
    let comment = fields.next().unwrap_or("").to_owned();
    let data = fields.next().unwrap_or("").to_owned();

    let encoded = ServerSentEvents::new()
        .comment(comment)
        .event(event.clone())
        .id(&id)
        .data(data.clone())
        .to_bytes();
    let events = event_stream::parse(&encoded);
    assert_eq!(events.len(), 1, "one event, not {events:?}");
    let parsed = &events[0];

    let expected_data = data.replace("\r\n", "\n").replace('\r', "\n");
    assert_eq!(parsed.data, expected_data);
    let expected_type: String = event.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    let expected_type = if expected_type.is_empty() { "message".to_owned() } else { expected_type };
    assert_eq!(parsed.event_type, expected_type);
    let expected_id: String = id.chars().filter(|c| !matches!(c, '\r' | '\n' | '\0')).collect();
    assert_eq!(parsed.last_event_id, expected_id);
});
