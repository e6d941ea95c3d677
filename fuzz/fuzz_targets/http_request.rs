//! The HTTP request codec fed arbitrary bytes in arbitrary pieces: it never panics, a request
//! split anywhere parses exactly as the whole, and every accessor of every request it accepts
//! works.
#![no_main]

use libfuzzer_sys::fuzz_target;
use workerman::fuzzing::{HttpRequestParser, connection_view};

const MAX_PACKAGE_SIZE: usize = 64 * 1024;

fuzz_target!(|input: &[u8]| {
    // The first byte chooses the cut points: feed the rest in pieces of 1..=16 bytes.
    let Some((&seed, data)) = input.split_first() else {
        return;
    };
    let whole = parse_all(data, &[data.len().max(1)]);
    let step = (seed % 16) as usize + 1;
    let mut cuts = Vec::new();
    let mut at = 0;
    while at < data.len() {
        at = (at + step + (at % 3)).min(data.len());
        cuts.push(at);
    }
    let pieces = parse_all(data, &cuts);
    // Fed whole or in pieces, the same requests come out, and neither way accepts what the other
    // rejects. (A bad partial head may be rejected at once when it arrives whole, yet wait for
    // its line end when it arrives in pieces: both are safe.)
    assert_eq!(whole.0, pieces.0, "requests differ whole vs in pieces");
    assert_eq!(
        whole.1 == End::Clean,
        pieces.1 == End::Clean,
        "outcome differs: {:?} vs {:?}",
        whole.1,
        pieces.1
    );
});

#[derive(Debug, PartialEq)]
enum End {
    /// Every byte belonged to a whole request.
    Clean,
    /// The last request is incomplete.
    Waiting,
    /// Rejected with this status.
    Rejected(u16),
}

/// Runs the parser over `data` as it would see it arriving up to each cut; returns the raw
/// requests found and how it ended.
fn parse_all(data: &[u8], cuts: &[usize]) -> (Vec<Vec<u8>>, End) {
    let mut parser = HttpRequestParser::default();
    let mut requests = Vec::new();
    let mut start = 0;
    for &cut in cuts {
        let cut = cut.min(data.len());
        loop {
            if start >= cut {
                break;
            }
            match parser.input(&data[start..cut], MAX_PACKAGE_SIZE) {
                Ok(Some(length)) => {
                    assert!(length > 0 && start + length <= cut, "length out of range");
                    let raw = data[start..start + length].to_vec();
                    let request = parser.decode(raw.clone());
                    exercise(&request);
                    requests.push(raw);
                    start += length;
                }
                Ok(None) => break,
                Err(error) => {
                    assert!(matches!(error.status(), 400 | 413 | 431));
                    return (requests, End::Rejected(error.status()));
                }
            }
        }
    }
    let end = if start == data.len() { End::Clean } else { End::Waiting };
    (requests, end)
}

fn exercise(request: &workerman::protocols::http::Request) {
    let _ = (request.method(), request.uri(), request.path(), request.query_string());
    let _ = (request.protocol_version(), request.host(), request.host_without_port());
    let _ = (request.raw_head(), request.raw_body());
    for name in ["host", "content-type", "cookie", "x", "content-length", "transfer-encoding"] {
        let _ = request.header(name);
    }
    let _ = request.headers().count();
    let _ = (request.get("a"), request.post("a"), request.cookie("a"), request.file("a"));
    let _ = request.trailer("x");
    let _ = connection_view(request);
}
