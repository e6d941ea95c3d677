//! Every `ServerSentEvents` the encoder writes parses back, under an independent WHATWG parser, to
//! exactly what was set (or its documented sanitized form), and never to an extra field or event.

#[path = "support/event_stream.rs"]
mod event_stream;
mod support;

use event_stream::{Event, EventStreamParser};
use workerman::protocols::http::{Chunk, Response, ServerSentEvents};

/// One event as the test builds it.
#[derive(Clone, Debug, Default)]
struct Spec {
    comment: Option<String>,
    event: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
    data: Option<String>,
}

impl Spec {
    fn build(&self) -> ServerSentEvents {
        let mut sse = ServerSentEvents::new();
        if let Some(c) = &self.comment {
            sse = sse.comment(c.clone());
        }
        if let Some(e) = &self.event {
            sse = sse.event(e.clone());
        }
        if let Some(id) = &self.id {
            sse = sse.id(id);
        }
        if let Some(r) = self.retry {
            sse = sse.retry(r);
        }
        if let Some(d) = &self.data {
            sse = sse.data(d.clone());
        }
        sse
    }
}

/// The documented line-break rule: CRLF, CR and LF all end a line.
fn lines(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .split('\n')
        .map(str::to_owned)
        .collect()
}

/// The documented sanitizing: CR and LF (and NUL for ids) are removed.
fn without(text: &str, removed: &[char]) -> String {
    text.chars().filter(|c| !removed.contains(c)).collect()
}

/// Feeds the encoded specs (in `piece`-byte reads) and checks events, fields and comments.
fn check_stream(specs: &[Spec], piece: usize) {
    let mut stream = Vec::new();
    for spec in specs {
        stream.extend_from_slice(&spec.build().to_bytes());
    }
    let mut parser = EventStreamParser::new();
    let mut events = Vec::new();
    for read in stream.chunks(piece.max(1)) {
        events.extend(parser.feed(read));
    }

    let mut expected_events = Vec::new();
    let mut expected_fields = Vec::new();
    let mut expected_comments = Vec::new();
    let mut last_id = String::new();
    let mut retry = None;
    for spec in specs {
        if let Some(c) = &spec.comment {
            expected_comments.extend(lines(c).into_iter().map(|l| format!(" {l}")));
        }
        let event_type = spec.event.as_deref().map(|e| without(e, &['\r', '\n']));
        if let Some(e) = &event_type {
            expected_fields.push(("event".to_owned(), e.clone()));
        }
        if let Some(id) = &spec.id {
            last_id = without(id, &['\r', '\n', '\0']);
            expected_fields.push(("id".to_owned(), last_id.clone()));
        }
        if let Some(r) = spec.retry {
            retry = Some(r);
            expected_fields.push(("retry".to_owned(), r.to_string()));
        }
        if let Some(d) = &spec.data {
            let data_lines = lines(d);
            expected_fields.extend(data_lines.iter().map(|l| ("data".to_owned(), l.clone())));
            expected_events.push(Event {
                event_type: event_type
                    .filter(|e| !e.is_empty())
                    .unwrap_or_else(|| "message".to_owned()),
                data: data_lines.join("\n"),
                last_event_id: last_id.clone(),
            });
        }
        let empty = spec.comment.is_none()
            && spec.event.is_none()
            && spec.id.is_none()
            && spec.retry.is_none()
            && spec.data.is_none();
        if empty {
            expected_comments.push(String::new());
        }
    }
    let context = format!(
        "specs {specs:?}\nstream {:?}",
        String::from_utf8_lossy(&stream)
    );
    assert_eq!(events, expected_events, "{context}");
    assert_eq!(parser.fields(), expected_fields, "{context}");
    assert_eq!(parser.comments(), expected_comments, "{context}");
    assert_eq!(parser.retry(), retry, "{context}");
    assert_eq!(parser.last_event_id(), last_id, "{context}");
    // The stream ends exactly at an event boundary: nothing is left pending.
    assert!(parser.feed(b"\n").is_empty(), "{context}");
    assert_eq!(parser.fields().len(), expected_fields.len(), "{context}");
}

fn data(d: &str) -> Spec {
    Spec {
        data: Some(d.to_owned()),
        ..Spec::default()
    }
}

#[test]
fn seed_event_parses_as_the_browser_sees_it() {
    let bytes = ServerSentEvents::new()
        .event("message")
        .data("hello")
        .id(1)
        .to_bytes();
    let events = EventStreamParser::new().feed(&bytes);
    assert_eq!(
        events,
        [Event {
            event_type: "message".into(),
            data: "hello".into(),
            last_event_id: "1".into()
        }]
    );
}

#[test]
fn nasty_data_round_trips() {
    for d in [
        "",
        "\n",
        "\r",
        "\r\n",
        "a\rb",
        "a\nb",
        "a\r\nb",
        "a\n\rb",
        "trailing cr\r",
        "trailing lf\n",
        "trailing crlf\r\n",
        "\r\r\n\n",
        " leading space",
        "  two spaces",
        "data: fake\n\nevent: x",
        ":not a comment",
        "id: 9",
        "nul\0inside",
        "你好\n世界",
        "🌍\r🚀",
        "\u{FEFF}bom",
    ] {
        check_stream(&[data(d)], usize::MAX);
        check_stream(&[data(d)], 1);
    }
}

#[test]
fn nasty_event_id_and_comment_are_sanitized() {
    let nasty = [
        "",
        "\r",
        "\n",
        "\r\n",
        "a\nb",
        "x\r\ndata: injected",
        "\n\nid: 666",
        "a\0b",
        " space",
        "名前",
        "x\r",
    ];
    for text in nasty {
        let specs = [
            Spec {
                event: Some(text.to_owned()),
                data: Some("d".into()),
                ..Spec::default()
            },
            Spec {
                id: Some(text.to_owned()),
                data: Some("d".into()),
                ..Spec::default()
            },
            Spec {
                comment: Some(text.to_owned()),
                ..Spec::default()
            },
            Spec {
                comment: Some(text.to_owned()),
                event: Some(text.to_owned()),
                id: Some(text.to_owned()),
                ..Spec::default()
            },
        ];
        check_stream(&specs, usize::MAX);
        check_stream(&specs, 1);
        check_stream(&specs, 3);
    }
}

#[test]
fn empty_builder_is_a_harmless_keep_alive() {
    check_stream(&[Spec::default(), data("x"), Spec::default()], 1);
}

#[test]
fn id_and_retry_persist_across_events() {
    let specs = [
        Spec {
            id: Some("1".into()),
            retry: Some(1500),
            data: Some("a".into()),
            ..Spec::default()
        },
        data("b"),
        Spec {
            id: Some(String::new()),
            ..Spec::default()
        },
        data("c"),
        Spec {
            retry: Some(0),
            event: Some("end".into()),
            data: Some(String::new()),
            ..Spec::default()
        },
    ];
    check_stream(&specs, 2);
}

#[test]
fn random_events_round_trip() {
    const PIECES: [&str; 14] = [
        "a", "Z", " ", ":", "\r", "\n", "\r\n", "\0", "é", "🌍", "data: ", "id:", "\u{FEFF}", "\t",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |bound: u64| {
        // xorshift64*
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        seed.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound
    };
    for _ in 0..2000 {
        let count = 1 + next(4) as usize;
        let mut specs = Vec::new();
        for _ in 0..count {
            let text = |next: &mut dyn FnMut(u64) -> u64| -> Option<String> {
                if next(3) == 0 {
                    return None;
                }
                let len = next(8);
                Some(
                    (0..len)
                        .map(|_| PIECES[next(PIECES.len() as u64) as usize])
                        .collect(),
                )
            };
            let comment = text(&mut next);
            let event = text(&mut next);
            let id = text(&mut next);
            let data = text(&mut next);
            let retry = (next(3) == 0).then(|| next(100_000));
            specs.push(Spec {
                comment,
                event,
                id,
                retry,
                data,
            });
        }
        let piece = 1 + next(7) as usize;
        check_stream(&specs, piece);
    }
}

#[test]
fn sse_response_head_then_events_parse_cleanly() {
    // The seed's "\r\n" body is dropped, so the first event is the first thing after the head.
    let head = Response::new(200, [("Content-Type", "text/event-stream")], "\r\n");
    assert_eq!(head.body_bytes(), b"\r\n");
    let mut stream = Vec::new();
    for n in 0..3 {
        stream.extend_from_slice(
            &ServerSentEvents::new()
                .data(format!("n={n}"))
                .id(n)
                .to_bytes(),
        );
    }
    let events = EventStreamParser::new().feed(&stream);
    assert_eq!(
        events.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
        ["n=0", "n=1", "n=2"]
    );
    assert_eq!(events[2].last_event_id, "2");
}

#[test]
fn chunks_are_public_bytes() {
    assert_eq!(Chunk::new("x").to_bytes(), b"1\r\nx\r\n");
}
