//! The text and frame codecs on arbitrary bytes: they never panic, report lengths inside the
//! buffer and the limit, and what they encode decodes back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use workerman::protocols::{Input, frame, text};

fuzz_target!(|data: &[u8]| {
    let max = 1 + data.first().copied().unwrap_or(0) as usize * 64;
    match text::input(data, max) {
        Input::Package(length) => {
            assert!(length <= data.len() && length < max + 1);
            assert_eq!(data[length - 1], b'\n');
            let line = text::decode(&data[..length]);
            assert!(!line.ends_with('\n'));
        }
        Input::NeedMore => assert!(!data.contains(&b'\n') && data.len() < max),
        Input::Invalid => {}
    }
    match frame::input(data, max) {
        Input::Package(length) => {
            assert!((4..=max).contains(&length));
            if length <= data.len() {
                let payload = frame::decode(&data[..length]);
                let mut wire = Vec::new();
                frame::encode(&payload, &mut wire);
                assert_eq!(wire, &data[..length]);
            }
        }
        Input::NeedMore => assert!(data.len() < 4),
        Input::Invalid => {}
    }
    // A line without a newline round-trips through text.
    if !data.contains(&b'\n') && !data.contains(&b'\r') {
        if let Ok(line) = std::str::from_utf8(data) {
            let mut wire = Vec::new();
            text::encode(line.as_bytes(), &mut wire);
            assert_eq!(text::input(&wire, wire.len() + 1), Input::Package(wire.len()));
            assert_eq!(text::decode(&wire), line);
        }
    }
});
