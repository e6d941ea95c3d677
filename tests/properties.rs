//! Property tests (proptest) of the codec invariants the fuzz targets check, run by `cargo test`:
//! text and frame round-trip, SSE events parse back (under the WHATWG rules) to what was encoded,
//! arbitrary bytes never panic the HTTP parser, and a live worker answers valid requests written
//! in arbitrary pieces exactly as when written whole.

#[path = "support/event_stream.rs"]
mod event_stream;
mod support;

use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

use proptest::prelude::*;
use workerman::protocols::http::{Request, ServerSentEvents};
use workerman::protocols::{Input, frame, text};
use workerman::{RunningWorker, TcpConnection, Worker};

proptest! {
    #[test]
    fn text_lines_round_trip(line in "[^\r\n]{0,200}") {
        let mut wire = Vec::new();
        text::encode(line.as_bytes(), &mut wire);
        prop_assert_eq!(text::input(&wire, 1 << 20), Input::Package(wire.len()));
        prop_assert_eq!(text::decode(&wire), line);
    }

    #[test]
    fn frames_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut wire = Vec::new();
        frame::encode(&payload, &mut wire);
        prop_assert_eq!(frame::input(&wire, 1 << 20), Input::Package(wire.len()));
        prop_assert_eq!(frame::decode(&wire), payload);
    }

    #[test]
    fn sse_events_parse_back_exactly(
        event in "\\PC{0,20}",
        id in "[a-z0-9\r\n\0]{0,12}",
        data in "(\\PC|\r|\n){0,80}",
        comment in "(\\PC|\r|\n){0,20}",
    ) {
        let bytes = ServerSentEvents::new()
            .comment(comment)
            .event(event.clone())
            .id(&id)
            .data(data.clone())
            .to_bytes();
        let events = event_stream::parse(&bytes);
        prop_assert_eq!(events.len(), 1);
        prop_assert_eq!(&events[0].data, &data.replace("\r\n", "\n").replace('\r', "\n"));
        let sanitized_event: String = event.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
        let expected_type = if sanitized_event.is_empty() { "message".to_owned() } else { sanitized_event };
        prop_assert_eq!(&events[0].event_type, &expected_type);
        let sanitized_id: String = id.chars().filter(|c| !matches!(c, '\r' | '\n' | '\0')).collect();
        prop_assert_eq!(&events[0].last_event_id, &sanitized_id);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_request_parser(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(request) = Request::parse(&bytes) {
            let _ = (request.path(), request.header("host"), request.get("a"), request.post("a"));
            let _ = (request.cookie("a"), request.raw_body().len(), request.headers().count());
        }
    }
}

/// One echo server for every case of the socket property below.
fn echo_server() -> std::net::SocketAddr {
    static SERVER: OnceLock<(std::net::SocketAddr, std::sync::Mutex<RunningWorker>)> =
        OnceLock::new();
    SERVER
        .get_or_init(|| {
            let server = support::start(|| {
                let mut worker = Worker::new("http://127.0.0.1:0");
                worker.on_message(|connection: &TcpConnection, request: Request| {
                    let mut answer = format!(
                        "{} {} q={:?}|",
                        request.method(),
                        request.path(),
                        request.get("q")
                    );
                    answer.push_str(&String::from_utf8_lossy(request.raw_body()));
                    connection.send(answer);
                });
                worker
            });
            (server.local_address(), std::sync::Mutex::new(server))
        })
        .0
}

fn request_strategy() -> impl Strategy<Value = (Vec<u8>, String)> {
    (
        prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE")],
        "/[a-z0-9]{0,12}",
        "[a-z0-9]{0,8}",
        proptest::collection::vec(any::<u8>(), 0..300),
        any::<bool>(),
    )
        .prop_map(|(method, path, query, body, chunked)| {
            let mut wire =
                format!("{method} {path}?q={query} HTTP/1.1\r\nHost: h\r\n").into_bytes();
            if chunked {
                wire.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                for piece in body.chunks(7) {
                    wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                    wire.extend_from_slice(piece);
                    wire.extend_from_slice(b"\r\n");
                }
                wire.extend_from_slice(b"0\r\n\r\n");
            } else {
                wire.extend_from_slice(
                    format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes(),
                );
                wire.extend_from_slice(&body);
            }
            let expected = format!(
                "{method} {path} q={:?}|{}",
                Some(query.as_str()),
                String::from_utf8_lossy(&body)
            );
            (wire, expected)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn requests_in_arbitrary_pieces_are_answered_as_whole(
        requests in proptest::collection::vec(request_strategy(), 1..4),
        cuts in proptest::collection::vec(1usize..40, 1..12),
    ) {
        let mut wire = Vec::new();
        for (request, _) in &requests {
            wire.extend_from_slice(request);
        }
        let mut client = support::HttpClient::connect(echo_server());
        let mut at = 0;
        for cut in cuts.iter().cycle() {
            if at >= wire.len() {
                break;
            }
            let end = (at + cut).min(wire.len());
            client.reader.get_mut().write_all(&wire[at..end]).unwrap();
            client.reader.get_mut().flush().unwrap();
            std::thread::sleep(Duration::from_micros(300));
            at = end;
        }
        for (_, expected) in &requests {
            prop_assert_eq!(&client.response().body_text(), expected);
        }
    }
}
