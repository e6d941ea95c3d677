//! `websocket://` over real sockets, with the test client in `support/websocket.rs`.
//!
//! The first part reimplements the Autobahn test suite's server cases (sections 1 framing,
//! 2 ping/pong, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 close handling, 9 limits
//! at a smaller scale, 10 auto-fragmentation) against an echo server, each case on its own
//! connection, with Autobahn's numbering and expectations. The rest covers the handshake (400,
//! 426), `on_websocket_connect` refusals, sends queued before the 101, `max_package_size`, message
//! types, and the callbacks.

mod support;
#[path = "support/websocket.rs"]
mod ws;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::time::Duration;

use workerman::protocols::http::{Request, Response};
use workerman::protocols::websocket::{Message, WebSocketType};
use workerman::{RunningWorker, TcpConnection, Worker};
use ws::{
    Frame, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, WsClient, masked,
};

/// Autobahn's testee: every message echoed with its own type.
fn echo_server() -> RunningWorker {
    support::start(|| {
        let mut worker = Worker::new("websocket://127.0.0.1:0");
        worker.set_max_package_size(16 * 1024 * 1024);
        worker.set_max_send_buffer_size(16 * 1024 * 1024);
        worker.on_message(|connection: &TcpConnection, message: Message| {
            connection.send(message);
        });
        worker
    })
}

type CaseFn = Box<dyn Fn(&mut WsClient)>;

#[derive(Default)]
struct Cases(Vec<(String, CaseFn)>);

impl Cases {
    fn add(&mut self, id: impl Into<String>, case: impl Fn(&mut WsClient) + 'static) {
        self.0.push((id.into(), Box::new(case)));
    }

    /// Runs every case on a new connection to one echo server; fails listing the failed ids.
    fn run(self, section: &str) {
        let server = echo_server();
        let mut failures = Vec::new();
        for (id, case) in &self.0 {
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let mut client = WsClient::connect(server.local_address());
                case(&mut client);
            }));
            if let Err(panic) = outcome {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("case {id}: {message}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{section}: {} of {} cases failed:\n{}",
            failures.len(),
            self.0.len(),
            failures.join("\n")
        );
        eprintln!("{section}: {} cases, all pass", self.0.len());
    }
}

/// What a frame-wise send waits between frames (Autobahn sends them in separate TCP segments).
const FRAME_PAUSE: Duration = Duration::from_millis(5);

fn expect_echo(client: &mut WsClient, opcode: u8, payload: &[u8]) {
    let frame = client.read_message().expect("an echo, not the end");
    assert_eq!(frame.opcode, opcode, "echo type");
    assert_eq!(frame.payload.len(), payload.len(), "echo length");
    assert!(frame.payload == payload, "echo payload differs");
}

/// The client closes normally: the server answers 1000 and closes.
fn close_normally(client: &mut WsClient) {
    client.send_close(1000, b"");
    let before = client.expect_close(1000);
    assert!(
        before.is_empty(),
        "unexpected frames before the close: {before:?}"
    );
}

/// The server fails the connection with `code`, having sent exactly `before` first.
fn expect_failure(client: &mut WsClient, code: u16, before: &[Frame]) {
    let got = client.expect_close(code);
    assert_eq!(got, before, "frames before the close");
}

fn send_frames(client: &mut WsClient, frames: &[Vec<u8>], how: Delivery) {
    match how {
        Delivery::OneChop => client.write(&frames.concat()),
        Delivery::FrameWise => {
            for frame in frames {
                client.write_chopped(frame, frame.len().max(1), Duration::ZERO);
                std::thread::sleep(FRAME_PAUSE);
            }
        }
        Delivery::Chopped => client.write_chopped(&frames.concat(), 1, Duration::ZERO),
    }
}

#[derive(Clone, Copy)]
enum Delivery {
    OneChop,
    FrameWise,
    Chopped,
}

// ---------------------------------------------------------------------------------------------
// Autobahn section 1: framing

#[test]
fn autobahn_1_framing() {
    let mut cases = Cases::default();
    let lengths = [0, 125, 126, 127, 128, 65535, 65536];
    for (index, &length) in lengths.iter().enumerate() {
        cases.add(format!("1.1.{}", index + 1), move |client| {
            let payload = vec![b'*'; length];
            client.send(OP_TEXT, &payload);
            expect_echo(client, OP_TEXT, &payload);
            close_normally(client);
        });
        cases.add(format!("1.2.{}", index + 1), move |client| {
            let payload = vec![0xfe; length];
            client.send(OP_BINARY, &payload);
            expect_echo(client, OP_BINARY, &payload);
            close_normally(client);
        });
    }
    cases.add("1.1.8", |client| {
        let payload = vec![b'*'; 65536];
        client.write_chopped(&masked(true, OP_TEXT, &payload), 997, Duration::ZERO);
        expect_echo(client, OP_TEXT, &payload);
        close_normally(client);
    });
    cases.add("1.2.8", |client| {
        let payload = vec![0xfe; 65536];
        client.write_chopped(&masked(true, OP_BINARY, &payload), 997, Duration::ZERO);
        expect_echo(client, OP_BINARY, &payload);
        close_normally(client);
    });
    cases.run("section 1 (framing)");
}

// ---------------------------------------------------------------------------------------------
// Section 2: pings and pongs

fn expect_pong(client: &mut WsClient, payload: &[u8]) {
    let frame = client.read_frame().expect("a pong");
    assert_eq!(frame, Frame::new(OP_PONG, payload));
}

#[test]
fn autobahn_2_ping_pong() {
    let mut cases = Cases::default();
    let payloads: [(&str, Vec<u8>); 4] = [
        ("2.1", Vec::new()),
        ("2.2", b"Hello, world!".to_vec()),
        ("2.3", vec![0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]),
        ("2.4", vec![0xfe; 125]),
    ];
    for (id, payload) in payloads {
        cases.add(id, move |client| {
            client.send(OP_PING, &payload);
            expect_pong(client, &payload);
            close_normally(client);
        });
    }
    cases.add("2.5", |client| {
        client.send(OP_PING, &[0xfe; 126]);
        expect_failure(client, 1002, &[]);
    });
    cases.add("2.6", |client| {
        let payload = [0xfe; 125];
        client.write_chopped(
            &masked(true, OP_PING, &payload),
            1,
            Duration::from_micros(100),
        );
        expect_pong(client, &payload);
        close_normally(client);
    });
    cases.add("2.7", |client| {
        client.send(OP_PONG, b"");
        close_normally(client);
    });
    cases.add("2.8", |client| {
        client.send(OP_PONG, b"unsolicited pong payload");
        close_normally(client);
    });
    cases.add("2.9", |client| {
        client.send(OP_PONG, b"unsolicited pong payload");
        client.send(OP_PING, b"ping payload");
        expect_pong(client, b"ping payload");
        close_normally(client);
    });
    for (id, chop) in [("2.10", 0), ("2.11", 1)] {
        cases.add(id, move |client| {
            for index in 0..10 {
                let frame = masked(true, OP_PING, format!("payload-{index}").as_bytes());
                if chop == 0 {
                    client.write(&frame);
                } else {
                    client.write_chopped(&frame, chop, Duration::ZERO);
                }
            }
            for index in 0..10 {
                expect_pong(client, format!("payload-{index}").as_bytes());
            }
            close_normally(client);
        });
    }
    cases.run("section 2 (ping/pong)");
}

// ---------------------------------------------------------------------------------------------
// Section 3: reserved bits

fn with_rsv(rsv: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
    ws::frame_bytes(true, rsv, opcode, payload, Some([1, 2, 3, 4]))
}

#[test]
fn autobahn_3_reserved_bits() {
    let mut cases = Cases::default();
    let hello = b"Hello, world!";
    cases.add("3.1", move |client| {
        client.write(&with_rsv(1, OP_TEXT, hello));
        expect_failure(client, 1002, &[]);
    });
    for (id, rsv, how) in [
        ("3.2", 2, Delivery::OneChop),
        ("3.3", 3, Delivery::FrameWise),
        ("3.4", 4, Delivery::Chopped),
    ] {
        cases.add(id, move |client| {
            let frames = [
                masked(true, OP_TEXT, hello),
                with_rsv(rsv, OP_TEXT, hello),
                masked(true, OP_PING, b""),
            ];
            send_frames(client, &frames, how);
            expect_failure(client, 1002, &[Frame::new(OP_TEXT, hello)]);
        });
    }
    cases.add("3.5", |client| {
        let payload: Vec<u8> = (0..=255).collect();
        client.write(&with_rsv(5, OP_BINARY, &payload));
        expect_failure(client, 1002, &[]);
    });
    cases.add("3.6", |client| {
        client.write(&with_rsv(6, OP_PING, hello));
        expect_failure(client, 1002, &[]);
    });
    cases.add("3.7", |client| {
        client.write(&with_rsv(7, OP_CLOSE, &1000u16.to_be_bytes()));
        expect_failure(client, 1002, &[]);
    });
    cases.run("section 3 (reserved bits)");
}

// ---------------------------------------------------------------------------------------------
// Section 4: opcodes

#[test]
fn autobahn_4_opcodes() {
    let mut cases = Cases::default();
    for (group, opcodes) in [("4.1", [3u8, 4, 5, 6, 7]), ("4.2", [11, 12, 13, 14, 15])] {
        for (index, opcode) in opcodes.into_iter().enumerate() {
            cases.add(format!("{group}.{}", index + 1), move |client| {
                let payload: &[u8] = if index % 2 == 1 {
                    b"reserved opcode payload"
                } else {
                    b""
                };
                if index < 2 {
                    client.send(opcode, payload);
                    expect_failure(client, 1002, &[]);
                } else {
                    let frames = [
                        masked(true, OP_TEXT, b"Hello, world!"),
                        masked(true, opcode, payload),
                        masked(true, OP_PING, b""),
                    ];
                    send_frames(client, &frames, Delivery::OneChop);
                    expect_failure(client, 1002, &[Frame::text("Hello, world!")]);
                }
            });
        }
    }
    cases.run("section 4 (opcodes)");
}

// ---------------------------------------------------------------------------------------------
// Section 5: fragmentation

#[test]
fn autobahn_5_fragmentation() {
    let mut cases = Cases::default();
    for (id, opcode) in [("5.1", OP_PING), ("5.2", OP_PONG)] {
        cases.add(id, move |client| {
            let frames = [
                masked(false, opcode, b"fragment1"),
                masked(true, OP_CONTINUATION, b"fragment2"),
            ];
            send_frames(client, &frames, Delivery::OneChop);
            expect_failure(client, 1002, &[]);
        });
    }
    let ways = [Delivery::OneChop, Delivery::FrameWise, Delivery::Chopped];
    for (index, how) in ways.into_iter().enumerate() {
        cases.add(format!("5.{}", 3 + index), move |client| {
            let frames = [
                masked(false, OP_TEXT, b"fragment1"),
                masked(true, OP_CONTINUATION, b"fragment2"),
            ];
            send_frames(client, &frames, how);
            expect_echo(client, OP_TEXT, b"fragment1fragment2");
            close_normally(client);
        });
        cases.add(format!("5.{}", 6 + index), move |client| {
            let frames = [
                masked(false, OP_TEXT, b"fragment1"),
                masked(true, OP_PING, b"ping payload"),
                masked(true, OP_CONTINUATION, b"fragment2"),
            ];
            send_frames(client, &frames, how);
            expect_pong(client, b"ping payload");
            expect_echo(client, OP_TEXT, b"fragment1fragment2");
            close_normally(client);
        });
        // A continuation with nothing to continue, with FIN set (5.9-5.11) or not (5.12-5.14).
        for (base, fin) in [(9, true), (12, false)] {
            cases.add(format!("5.{}", base + index), move |client| {
                let frames = [
                    masked(fin, OP_CONTINUATION, b"non-continuation payload"),
                    masked(true, OP_TEXT, b"Hello, world!"),
                ];
                send_frames(client, &frames, how);
                expect_failure(client, 1002, &[]);
            });
        }
    }
    cases.add("5.15", |client| {
        let frames = [
            masked(false, OP_TEXT, b"fragment1"),
            masked(true, OP_CONTINUATION, b"fragment2"),
            masked(false, OP_CONTINUATION, b"fragment3"),
            masked(true, OP_TEXT, b"fragment4"),
        ];
        send_frames(client, &frames, Delivery::OneChop);
        expect_failure(client, 1002, &[Frame::text("fragment1fragment2")]);
    });
    for (id, first_fin) in [("5.16", false), ("5.17", true)] {
        cases.add(id, move |client| {
            let mut frames = Vec::new();
            for _ in 0..2 {
                frames.push(masked(first_fin, OP_CONTINUATION, b"fragment1"));
                frames.push(masked(false, OP_TEXT, b"fragment2"));
                frames.push(masked(true, OP_CONTINUATION, b"fragment3"));
            }
            send_frames(client, &frames, Delivery::OneChop);
            expect_failure(client, 1002, &[]);
        });
    }
    cases.add("5.18", |client| {
        let frames = [
            masked(false, OP_TEXT, b"fragment1"),
            masked(true, OP_TEXT, b"fragment2"),
        ];
        send_frames(client, &frames, Delivery::OneChop);
        expect_failure(client, 1002, &[]);
    });
    for (id, how) in [("5.19", Delivery::OneChop), ("5.20", Delivery::FrameWise)] {
        cases.add(id, move |client| {
            let first = [
                masked(false, OP_TEXT, b"fragment1"),
                masked(false, OP_CONTINUATION, b"fragment2"),
                masked(true, OP_PING, b"pongme 1!"),
            ];
            send_frames(client, &first, how);
            expect_pong(client, b"pongme 1!");
            std::thread::sleep(Duration::from_millis(50));
            let second = [
                masked(false, OP_CONTINUATION, b"fragment3"),
                masked(false, OP_CONTINUATION, b"fragment4"),
                masked(true, OP_PING, b"pongme 2!"),
                masked(true, OP_CONTINUATION, b"fragment5"),
            ];
            send_frames(client, &second, how);
            expect_pong(client, b"pongme 2!");
            expect_echo(
                client,
                OP_TEXT,
                b"fragment1fragment2fragment3fragment4fragment5",
            );
            close_normally(client);
        });
    }
    cases.run("section 5 (fragmentation)");
}

// ---------------------------------------------------------------------------------------------
// Section 6: UTF-8 handling

/// Autobahn's `createUtf8TestSequences` (from Markus Kuhn's UTF-8 decoder stress test), one
/// group per case section from 6.5 on.
fn utf8_test_sequences() -> Vec<Vec<(bool, Vec<u8>)>> {
    let valid = |bytes: &[u8]| (true, bytes.to_vec());
    let invalid = |bytes: &[u8]| (false, bytes.to_vec());
    let kosme = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
    let mut groups = vec![
        vec![
            valid(b"hello\x24world"),
            valid(b"hello\xC2\xA2world"),
            valid(b"hello\xE2\x82\xACworld"),
            valid(b"hello\xF0\xA4\xAD\xA2world"),
            valid(kosme),
        ],
        // Every prefix of a valid string with multi-byte characters.
        (1..=kosme.len())
            .map(|end| {
                (
                    std::str::from_utf8(&kosme[..end]).is_ok(),
                    kosme[..end].to_vec(),
                )
            })
            .collect(),
        vec![
            valid(b"\x00"),
            valid(b"\xc2\x80"),
            valid(b"\xe0\xa0\x80"),
            valid(b"\xf0\x90\x80\x80"),
        ],
        vec![
            invalid(b"\xf8\x88\x80\x80\x80"),
            invalid(b"\xfc\x84\x80\x80\x80\x80"),
        ],
        vec![
            valid(b"\x7f"),
            valid(b"\xdf\xbf"),
            valid(b"\xef\xbf\xbf"),
            valid(b"\xf4\x8f\xbf\xbf"),
        ],
        vec![
            invalid(b"\xf7\xbf\xbf\xbf"),
            invalid(b"\xfb\xbf\xbf\xbf\xbf"),
            invalid(b"\xfd\xbf\xbf\xbf\xbf\xbf"),
        ],
        vec![
            valid(b"\xed\x9f\xbf"),
            valid(b"\xee\x80\x80"),
            valid(b"\xef\xbf\xbd"),
            valid(b"\xf4\x8f\xbf\xbf"),
            invalid(b"\xf4\x90\x80\x80"),
        ],
        vec![
            invalid(b"\x80"),
            invalid(b"\xbf"),
            invalid(b"\x80\xbf"),
            invalid(b"\x80\xbf\x80"),
            invalid(b"\x80\xbf\x80\xbf"),
            invalid(b"\x80\xbf\x80\xbf\x80"),
            invalid(b"\x80\xbf\x80\xbf\x80\xbf"),
            invalid(&(0x80..0xbf).collect::<Vec<u8>>()),
        ],
        [
            (0xc0u8, 0xdfu8),
            (0xe0, 0xef),
            (0xf0, 0xf7),
            (0xf8, 0xfb),
            (0xfc, 0xfd),
        ]
        .iter()
        .map(|&(from, to)| invalid(&(from..to).flat_map(|byte| [byte, 0x20]).collect::<Vec<_>>()))
        .collect(),
    ];
    let missing_last: [&[u8]; 10] = [
        b"\xc0",
        b"\xe0\x80",
        b"\xf0\x80\x80",
        b"\xf8\x80\x80\x80",
        b"\xfc\x80\x80\x80\x80",
        b"\xdf",
        b"\xef\xbf",
        b"\xf7\xbf\xbf",
        b"\xfb\xbf\xbf\xbf",
        b"\xfd\xbf\xbf\xbf\xbf",
    ];
    groups.push(missing_last.iter().map(|bytes| invalid(bytes)).collect());
    groups.push(vec![invalid(&missing_last.concat())]);
    groups.push(vec![
        invalid(b"\xfe"),
        invalid(b"\xff"),
        invalid(b"\xfe\xfe\xff\xff"),
    ]);
    groups.push(vec![
        invalid(b"\xc0\xaf"),
        invalid(b"\xe0\x80\xaf"),
        invalid(b"\xf0\x80\x80\xaf"),
        invalid(b"\xf8\x80\x80\x80\xaf"),
        invalid(b"\xfc\x80\x80\x80\x80\xaf"),
    ]);
    groups.push(vec![
        invalid(b"\xc1\xbf"),
        invalid(b"\xe0\x9f\xbf"),
        invalid(b"\xf0\x8f\xbf\xbf"),
        invalid(b"\xf8\x87\xbf\xbf\xbf"),
        invalid(b"\xfc\x83\xbf\xbf\xbf\xbf"),
    ]);
    groups.push(vec![
        invalid(b"\xc0\x80"),
        invalid(b"\xe0\x80\x80"),
        invalid(b"\xf0\x80\x80\x80"),
        invalid(b"\xf8\x80\x80\x80\x80"),
        invalid(b"\xfc\x80\x80\x80\x80\x80"),
    ]);
    groups.push(
        [
            b"\xed\xa0\x80",
            b"\xed\xad\xbf",
            b"\xed\xae\x80",
            b"\xed\xaf\xbf",
            b"\xed\xb0\x80",
            b"\xed\xbe\x80",
            b"\xed\xbf\xbf",
        ]
        .iter()
        .map(|bytes| invalid(*bytes))
        .collect(),
    );
    let high: [&[u8]; 4] = [
        b"\xed\xa0\x80",
        b"\xed\xad\xbf",
        b"\xed\xae\x80",
        b"\xed\xaf\xbf",
    ];
    let low: [&[u8]; 2] = [b"\xed\xb0\x80", b"\xed\xbf\xbf"];
    groups.push(
        high.iter()
            .flat_map(|h| low.iter().map(move |l| invalid(&[*h, *l].concat())))
            .collect(),
    );
    let mut noncharacters = vec![valid(b"\xef\xbf\xbe"), valid(b"\xef\xbf\xbf")];
    for z1 in [0xf0u8, 0xf1, 0xf2, 0xf3, 0xf4] {
        for z2 in [0x8fu8, 0x9f, 0xaf, 0xbf] {
            if z1 == 0xf4 && z2 != 0x8f {
                continue;
            }
            for z3 in [0xbeu8, 0xbf] {
                if z1 == 0xf0 && z2 == 0x8f {
                    continue;
                }
                noncharacters.push(valid(&[z1, z2, 0xbf, z3]));
            }
        }
    }
    groups.push(noncharacters);
    groups.push(
        (0xb9u8..=0xbf)
            .map(|last| valid(&[0xef, 0xbf, last]))
            .collect(),
    );
    groups
}

#[test]
fn autobahn_6_utf8() {
    let mut cases = Cases::default();
    cases.add("6.1.1", |client| {
        client.send(OP_TEXT, b"");
        expect_echo(client, OP_TEXT, b"");
        close_normally(client);
    });
    cases.add("6.1.2", |client| {
        let frames = [
            masked(false, OP_TEXT, b""),
            masked(false, OP_CONTINUATION, b""),
            masked(true, OP_CONTINUATION, b""),
        ];
        send_frames(client, &frames, Delivery::OneChop);
        expect_echo(client, OP_TEXT, b"");
        close_normally(client);
    });
    cases.add("6.1.3", |client| {
        let frames = [
            masked(false, OP_TEXT, b""),
            masked(false, OP_CONTINUATION, b"middle frame payload"),
            masked(true, OP_CONTINUATION, b""),
        ];
        send_frames(client, &frames, Delivery::OneChop);
        expect_echo(client, OP_TEXT, b"middle frame payload");
        close_normally(client);
    });
    let hello = "Hello-µ@ßöäüàá-UTF-8!!".as_bytes();
    cases.add("6.2.1", move |client| {
        client.send(OP_TEXT, hello);
        expect_echo(client, OP_TEXT, hello);
        close_normally(client);
    });
    cases.add("6.2.2", move |client| {
        let split = "Hello-µ@ßöäü".len();
        let frames = [
            masked(false, OP_TEXT, &hello[..split]),
            masked(true, OP_CONTINUATION, &hello[split..]),
        ];
        send_frames(client, &frames, Delivery::OneChop);
        expect_echo(client, OP_TEXT, hello);
        close_normally(client);
    });
    let kosme: &[u8] = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
    for (id, text) in [("6.2.3", hello), ("6.2.4", kosme)] {
        cases.add(id, move |client| {
            // One fragment per byte: characters are split across frames.
            let frames: Vec<Vec<u8>> = text
                .iter()
                .enumerate()
                .map(|(index, byte)| {
                    let opcode = if index == 0 { OP_TEXT } else { OP_CONTINUATION };
                    masked(index == text.len() - 1, opcode, &[*byte])
                })
                .collect();
            send_frames(client, &frames, Delivery::OneChop);
            expect_echo(client, OP_TEXT, text);
            close_normally(client);
        });
    }
    let bad: &[u8] =
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64";
    cases.add("6.3.1", move |client| {
        client.send(OP_TEXT, bad);
        expect_failure(client, 1007, &[]);
    });
    cases.add("6.3.2", move |client| {
        let frames: Vec<Vec<u8>> = bad
            .iter()
            .enumerate()
            .map(|(index, byte)| {
                let opcode = if index == 0 { OP_TEXT } else { OP_CONTINUATION };
                masked(index == bad.len() - 1, opcode, &[*byte])
            })
            .collect();
        send_frames(client, &frames, Delivery::OneChop);
        expect_failure(client, 1007, &[]);
    });
    // 6.4.x: fail fast. The connection must fail on the part that makes the text invalid, before
    // the rest of the message (or even of the frame) is sent.
    let part1: &[u8] = kosme;
    let part2: &[u8] = b"\xf4\x90\x80\x80";
    let part3: &[u8] = b"\x65\x64\x69\x74\x65\x64";
    let whole = [part1, part2, part3].concat();
    let fail_fast = |client: &mut WsClient, parts: [&[u8]; 3], frames: bool| {
        let total = parts.iter().map(|part| part.len()).sum::<usize>();
        if frames {
            client.write(&masked(false, OP_TEXT, parts[0]));
        } else {
            // One frame, its payload in three chops: header + part 1 first.
            let mut header = masked(true, OP_TEXT, &vec![0; total]);
            header.truncate(header.len() - total);
            let mask = [header[2], header[3], header[4], header[5]];
            client.write(&header);
            let masked_payload: Vec<u8> = parts
                .concat()
                .iter()
                .enumerate()
                .map(|(index, byte)| byte ^ mask[index % 4])
                .collect();
            client.write(&masked_payload[..parts[0].len()]);
            std::thread::sleep(Duration::from_millis(100));
            client.write(&masked_payload[parts[0].len()..parts[0].len() + parts[1].len()]);
            // Part 3 is never sent: the close must come without it.
            expect_failure(client, 1007, &[]);
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
        client.write(&masked(false, OP_CONTINUATION, parts[1]));
        expect_failure(client, 1007, &[]);
    };
    let (a, b, c) = (part1, part2, part3);
    let whole_2 = whole.clone();
    cases.add("6.4.1", move |client| fail_fast(client, [a, b, c], true));
    cases.add("6.4.2", move |client| {
        fail_fast(client, [&whole[..12], &whole[12..13], &whole[13..]], true)
    });
    cases.add("6.4.3", move |client| fail_fast(client, [a, b, c], false));
    cases.add("6.4.4", move |client| {
        fail_fast(
            client,
            [&whole_2[..12], &whole_2[12..13], &whole_2[13..]],
            false,
        )
    });
    for (group_index, group) in utf8_test_sequences().into_iter().enumerate() {
        for (index, (valid, bytes)) in group.into_iter().enumerate() {
            cases.add(
                format!("6.{}.{}", group_index + 5, index + 1),
                move |client| {
                    client.send(OP_TEXT, &bytes);
                    if valid {
                        expect_echo(client, OP_TEXT, &bytes);
                        close_normally(client);
                    } else {
                        expect_failure(client, 1007, &[]);
                    }
                },
            );
        }
    }
    cases.run("section 6 (UTF-8)");
}

// ---------------------------------------------------------------------------------------------
// Section 7: close handling

#[test]
fn autobahn_7_close() {
    let mut cases = Cases::default();
    cases.add("7.1.1", |client| {
        client.send(OP_TEXT, b"Hello World!");
        expect_echo(client, OP_TEXT, b"Hello World!");
        close_normally(client);
    });
    cases.add("7.1.2", |client| {
        client.send_close(1000, b"");
        client.send(OP_CLOSE, b"");
        expect_failure(client, 1000, &[]);
    });
    cases.add("7.1.3", |client| {
        client.send_close(1000, b"");
        client.send(OP_PING, b"");
        expect_failure(client, 1000, &[]);
    });
    cases.add("7.1.4", |client| {
        client.send_close(1000, b"");
        client.send(OP_TEXT, b"Hello World!");
        expect_failure(client, 1000, &[]);
    });
    // A message's first fragment, the close, then the last fragment: no echo.
    cases.add("7.1.5", |client| {
        let frames = [
            masked(false, OP_TEXT, b"fragment1"),
            masked(true, OP_CLOSE, &1000u16.to_be_bytes()),
            masked(true, OP_CONTINUATION, b"fragment2"),
        ];
        send_frames(client, &frames, Delivery::OneChop);
        expect_failure(client, 1000, &[]);
    });
    cases.add("7.1.6", |client| {
        // Autobahn rates this one informational: the echo may or may not arrive before the close.
        let payload = vec![b'B'; 256 * 1024];
        client.send(OP_TEXT, &payload);
        client.send_close(1000, b"");
        client.send(OP_PING, b"ping");
        let before = client.expect_close(1000);
        assert!(before.len() <= 1 && before.iter().all(|frame| frame.payload == payload));
    });
    cases.add("7.3.1", |client| {
        client.send(OP_CLOSE, b"");
        let frame = client.read_frame().expect("a close frame");
        assert_eq!(frame.opcode, OP_CLOSE);
        assert!(frame.payload.is_empty() || frame.close_code() == Some(1000));
        assert!(client.read_frame().is_none());
    });
    cases.add("7.3.2", |client| {
        client.send(OP_CLOSE, b"a");
        expect_failure(client, 1002, &[]);
    });
    cases.add("7.3.3", close_normally);
    cases.add("7.3.4", |client| {
        client.send_close(1000, b"Hello World!");
        expect_failure(client, 1000, &[]);
    });
    cases.add("7.3.5", |client| {
        client.send_close(1000, &[b'*'; 123]);
        expect_failure(client, 1000, &[]);
    });
    cases.add("7.3.6", |client| {
        client.send_close(1000, &[b'*'; 124]);
        expect_failure(client, 1002, &[]);
    });
    cases.add("7.5.1", |client| {
        client.send_close(
            1000,
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
        );
        expect_failure(client, 1007, &[]);
    });
    let valid = [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ];
    for (index, code) in valid.into_iter().enumerate() {
        cases.add(format!("7.7.{}", index + 1), move |client| {
            client.send_close(code, b"");
            expect_failure(client, code, &[]);
        });
    }
    let invalid = [0u16, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999];
    for (index, code) in invalid.into_iter().enumerate() {
        cases.add(format!("7.9.{}", index + 1), move |client| {
            client.send_close(code, b"");
            expect_failure(client, 1002, &[]);
        });
    }
    for (index, code) in [5000u16, 65535].into_iter().enumerate() {
        cases.add(format!("7.13.{}", index + 1), move |client| {
            client.send_close(code, b"");
            expect_failure(client, 1002, &[]);
        });
    }
    cases.run("section 7 (close handling)");
}

// ---------------------------------------------------------------------------------------------
// Section 9 (a quarter of Autobahn's sizes: the tests run unoptimized) and 10

#[test]
fn autobahn_9_limits_and_10_fragmentation() {
    let mut cases = Cases::default();
    let sizes = [16 << 10, 64 << 10, 256 << 10, 1 << 20, 2 << 20, 4 << 20];
    for (index, size) in sizes.into_iter().enumerate() {
        for (group, opcode, byte) in [("9.1", OP_TEXT, b'*'), ("9.2", OP_BINARY, 0xfe)] {
            cases.add(format!("{group}.{}", index + 1), move |client| {
                let payload = vec![byte; size];
                client.send(opcode, &payload);
                expect_echo(client, opcode, &payload);
                close_normally(client);
            });
        }
    }
    let fragment_sizes = [
        64,
        256,
        1 << 10,
        4 << 10,
        16 << 10,
        64 << 10,
        256 << 10,
        1 << 20,
        4 << 20,
    ];
    for (index, fragment) in fragment_sizes.into_iter().enumerate() {
        for (group, opcode, byte) in [("9.3", OP_TEXT, b'*'), ("9.4", OP_BINARY, 0xfe)] {
            cases.add(format!("{group}.{}", index + 1), move |client| {
                let payload = vec![byte; 1 << 20];
                let chunks: Vec<&[u8]> = payload.chunks(fragment).collect();
                let mut wire = Vec::with_capacity(payload.len() + chunks.len() * 14);
                for (position, chunk) in chunks.iter().enumerate() {
                    let opcode = if position == 0 {
                        opcode
                    } else {
                        OP_CONTINUATION
                    };
                    wire.extend(masked(position == chunks.len() - 1, opcode, chunk));
                }
                client.write(&wire);
                expect_echo(client, opcode, &payload);
                close_normally(client);
            });
        }
    }
    let chops = [64, 128, 256, 512, 1024, 2048];
    for (index, chop) in chops.into_iter().enumerate() {
        for (group, opcode, byte) in [("9.5", OP_TEXT, b'*'), ("9.6", OP_BINARY, 0xfe)] {
            cases.add(format!("{group}.{}", index + 1), move |client| {
                let payload = vec![byte; 256 << 10];
                client.write_chopped(&masked(true, opcode, &payload), chop, Duration::ZERO);
                expect_echo(client, opcode, &payload);
                close_normally(client);
            });
        }
    }
    let round_trip_sizes = [0, 16, 64, 256, 1024, 4096];
    for (index, size) in round_trip_sizes.into_iter().enumerate() {
        for (group, opcode, byte) in [("9.7", OP_TEXT, b'*'), ("9.8", OP_BINARY, 0xfe)] {
            cases.add(format!("{group}.{}", index + 1), move |client| {
                let payload = vec![byte; size];
                for _ in 0..250 {
                    client.send(opcode, &payload);
                    expect_echo(client, opcode, &payload);
                }
                close_normally(client);
            });
        }
    }
    cases.add("10.1.1", |client| {
        // 64 KiB in fragments of 1300 bytes.
        let payload = vec![b'*'; 65536];
        let chunks: Vec<&[u8]> = payload.chunks(1300).collect();
        for (position, chunk) in chunks.iter().enumerate() {
            let opcode = if position == 0 {
                OP_TEXT
            } else {
                OP_CONTINUATION
            };
            client.write(&masked(position == chunks.len() - 1, opcode, chunk));
        }
        expect_echo(client, OP_TEXT, &payload);
        close_normally(client);
    });
    cases.run("sections 9 (limits, scaled down) and 10 (auto-fragmentation)");
}

// ---------------------------------------------------------------------------------------------
// Handshake

fn handshake_answer(server: &RunningWorker, request: &str) -> support::HttpResponse {
    let mut client = support::HttpClient::connect(server.local_address());
    client.write(request.as_bytes());
    let response = client.response();
    assert!(
        client.closed(),
        "the connection ends after a refused handshake"
    );
    response
}

#[test]
fn bad_handshakes_are_answered_400() {
    let server = echo_server();
    let good = ws::upgrade_request("/", "");
    let variants = [
        good.replacen("GET", "POST", 1),
        good.replace("HTTP/1.1", "HTTP/1.0"),
        good.replace("Upgrade: websocket\r\n", ""),
        good.replace("Upgrade: websocket", "Upgrade: h2c"),
        good.replace("Connection: Upgrade", "Connection: keep-alive"),
        good.replace(&format!("Sec-WebSocket-Key: {}\r\n", ws::KEY), ""),
        good.replace(ws::KEY, "not base64!"),
        good.replace(ws::KEY, "Zm9vYmFy"), // 6 bytes, not 16
        good.replace("Sec-WebSocket-Version: 13\r\n", ""),
        "GET / HTTP/1.1\r\nHost: test\r\n\r\n".to_owned(),
        "GET / HTTP/1.1\r\n\r\n".to_owned(), // no Host: the HTTP parser's 400
        "NOT HTTP AT ALL\r\n\r\n".to_owned(),
    ];
    for request in variants {
        let response = handshake_answer(&server, &request);
        assert_eq!(response.status, 400, "{request:?}\n{response:?}");
        assert_eq!(response.header("connection"), Some("close"));
    }
}

#[test]
fn a_version_other_than_13_is_answered_426() {
    let server = echo_server();
    for version in ["8", "12", "14", "13, 8"] {
        let request = ws::upgrade_request("/", "").replace(
            "Sec-WebSocket-Version: 13",
            &format!("Sec-WebSocket-Version: {version}"),
        );
        let response = handshake_answer(&server, &request);
        assert_eq!(response.status, 426, "{version}");
        assert_eq!(response.header("sec-websocket-version"), Some("13"));
    }
}

#[test]
fn a_good_handshake_gets_101_and_browser_variants_pass() {
    let server = echo_server();
    let client = WsClient::connect(server.local_address());
    assert!(
        client
            .head
            .starts_with("HTTP/1.1 101 Switching Protocols\r\n")
    );
    assert_eq!(client.header("connection").as_deref(), Some("Upgrade"));
    // Firefox sends `Connection: keep-alive, Upgrade`; case does not matter.
    let firefox = ws::upgrade_request("/", "")
        .replace("Connection: Upgrade", "Connection: keep-alive, Upgrade")
        .replace("Upgrade: websocket", "Upgrade: WebSocket");
    let mut client = WsClient::connect_with(server.local_address(), &firefox);
    client.send(OP_TEXT, b"hi");
    expect_echo(&mut client, OP_TEXT, b"hi");
}

#[test]
fn frames_sent_right_behind_the_handshake_are_read() {
    let server = echo_server();
    let mut client = WsClient::open(server.local_address());
    let mut bytes = ws::upgrade_request("/", "").into_bytes();
    bytes.extend(masked(true, OP_TEXT, b"eager"));
    client.write(&bytes);
    client.head = client.read_head();
    assert!(client.head.starts_with("HTTP/1.1 101"));
    expect_echo(&mut client, OP_TEXT, b"eager");
}

#[test]
fn the_handshake_must_arrive_within_the_request_head_timeout() {
    let server = support::start(|| {
        let mut worker = Worker::new("websocket://127.0.0.1:0");
        worker.set_request_head_timeout(Duration::from_millis(200));
        worker.on_message(|connection: &TcpConnection, text: String| {
            connection.send(text);
        });
        worker
    });
    let mut slow = WsClient::open(server.local_address());
    slow.write(b"GET / HTTP/1.1\r\n");
    assert!(slow.closed());
    // Once upgraded, an idle connection stays.
    let mut client = WsClient::connect(server.local_address());
    std::thread::sleep(Duration::from_millis(400));
    client.send(OP_TEXT, b"still here");
    expect_echo(&mut client, OP_TEXT, b"still here");
}

// ---------------------------------------------------------------------------------------------
// on_websocket_connect / on_websocket_connected

#[test]
fn on_websocket_connect_sees_the_request_and_can_refuse() {
    let server = support::start(|| {
        let mut worker = Worker::new("websocket://127.0.0.1:0");
        worker.on_websocket_connect(
            |connection: &TcpConnection, request: &Request| match request.get("who") {
                Some("mallory") => connection.close(),
                Some("eve") => connection.close_with(Response::new(
                    403,
                    [("Content-Type", "text/plain")],
                    "go away",
                )),
                Some("alice") => {
                    assert!(connection.add_websocket_header("Sec-WebSocket-Protocol", "chat"));
                    assert!(!connection.add_websocket_header("Bad Name", "x"));
                    assert!(!connection.add_websocket_header("X-Injected", "a\r\nb: c"));
                }
                _ => {}
            },
        );
        worker.on_websocket_connected(|connection: &TcpConnection, request: &Request| {
            assert!(!connection.add_websocket_header("X-Late", "too late"));
            connection.send(format!("welcome to {}", request.path()));
        });
        worker.on_message(|connection: &TcpConnection, text: String| {
            connection.send(text);
        });
        worker
    });
    // Refused by closing: no answer at all.
    let mut client = WsClient::open(server.local_address());
    client.write(ws::upgrade_request("/room?who=mallory", "").as_bytes());
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut client.reader, &mut rest).unwrap();
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    // Refused with an answer.
    let response = handshake_answer(&server, &ws::upgrade_request("/room?who=eve", ""));
    assert_eq!(response.status, 403);
    assert_eq!(response.body_text(), "go away");
    // Accepted, with a header added to the 101, then `on_websocket_connected`.
    let mut client = WsClient::connect_with(
        server.local_address(),
        &ws::upgrade_request("/room?who=alice", ""),
    );
    assert_eq!(
        client.header("sec-websocket-protocol").as_deref(),
        Some("chat")
    );
    assert_eq!(client.read_frame(), Some(Frame::text("welcome to /room")));
}

#[test]
fn sends_before_the_handshake_completes_are_queued_in_order() {
    let server = support::start(|| {
        let mut worker = Worker::new("websocket://127.0.0.1:0");
        worker.on_connect(|connection: &TcpConnection| {
            assert!(connection.send("from on_connect").is_accepted());
        });
        worker.on_websocket_connect(|connection: &TcpConnection, _request: &Request| {
            assert_eq!(
                connection.send(Message::Binary(vec![1, 2, 3])),
                workerman::SendResult::Queued
            );
        });
        worker.on_websocket_connected(|connection: &TcpConnection, _request: &Request| {
            connection.send("from on_websocket_connected");
        });
        worker
    });
    let mut client = WsClient::connect(server.local_address());
    assert_eq!(client.read_frame(), Some(Frame::text("from on_connect")));
    assert_eq!(client.read_frame(), Some(Frame::new(OP_BINARY, &[1, 2, 3])));
    assert_eq!(
        client.read_frame(),
        Some(Frame::text("from on_websocket_connected"))
    );
}

// ---------------------------------------------------------------------------------------------
// Messages, types, limits, callbacks

#[test]
fn max_package_size_limits_whole_messages_with_1009() {
    let server = support::start(|| {
        let mut worker = Worker::new("websocket://127.0.0.1:0");
        worker.set_max_package_size(1000);
        worker.on_message(|connection: &TcpConnection, message: Message| {
            connection.send(message);
        });
        worker
    });
    let address = server.local_address();
    let mut client = WsClient::connect(address);
    client.send(OP_BINARY, &[7; 1000]);
    expect_echo(&mut client, OP_BINARY, &[7; 1000]);
    client.send(OP_BINARY, &[7; 1001]);
    expect_failure(&mut client, 1009, &[]);
    // Fragments that are each small but together too big.
    let mut client = WsClient::connect(address);
    client.write(&masked(false, OP_TEXT, &[b'a'; 600]));
    client.write(&masked(true, OP_CONTINUATION, &[b'a'; 600]));
    expect_failure(&mut client, 1009, &[]);
    // Decided from the header alone: a frame announcing 1 GiB fails before its payload.
    let mut client = WsClient::connect(address);
    let mut header = vec![0x82, 0xFF];
    header.extend_from_slice(&(1u64 << 30).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    client.write(&header);
    expect_failure(&mut client, 1009, &[]);
}

#[test]
fn on_message_types_and_the_connections_websocket_type() {
    let (sender, received) = mpsc::channel::<String>();
    let server = support::start(move || {
        let mut worker = Worker::new("websocket://127.0.0.1:0");
        worker.on_message(move |connection: &TcpConnection, text: String| {
            sender.send(text.clone()).unwrap();
            match text.as_str() {
                "binary please" => {
                    connection.set_websocket_type(WebSocketType::Binary);
                    assert_eq!(connection.websocket_type(), WebSocketType::Binary);
                    connection.send("now binary");
                    connection.send(Message::Text("but this is text".into()));
                }
                _ => {
                    connection.send(text.as_str());
                    connection.send(&[0xff, 0x00][..]); // not UTF-8: a binary frame
                }
            }
        });
        worker
    });
    let mut client = WsClient::connect(server.local_address());
    client.send(OP_TEXT, "héllo".as_bytes());
    assert_eq!(client.read_frame(), Some(Frame::text("héllo")));
    assert_eq!(client.read_frame(), Some(Frame::new(OP_BINARY, &[0xff, 0])));
    // A binary message reaches a `String` closure as (lossy) text.
    client.send(OP_BINARY, b"bin\xff");
    assert_eq!(
        received.recv_timeout(Duration::from_secs(5)).unwrap(),
        "héllo"
    );
    assert_eq!(
        received.recv_timeout(Duration::from_secs(5)).unwrap(),
        "bin\u{fffd}"
    );
    client.read_frame();
    client.read_frame();
    client.send(OP_TEXT, b"binary please");
    assert_eq!(
        client.read_frame(),
        Some(Frame::new(OP_BINARY, b"now binary"))
    );
    assert_eq!(client.read_frame(), Some(Frame::text("but this is text")));
}

#[test]
fn a_vec_closure_gets_every_message_as_bytes() {
    let server = support::start(|| {
        let mut worker = Worker::new("websocket://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, bytes: Vec<u8>| {
            connection.send(Message::Binary(bytes));
        });
        worker
    });
    let mut client = WsClient::connect(server.local_address());
    client.send(OP_TEXT, b"text");
    assert_eq!(client.read_frame(), Some(Frame::new(OP_BINARY, b"text")));
    client.send(OP_BINARY, &[0, 255]);
    assert_eq!(client.read_frame(), Some(Frame::new(OP_BINARY, &[0, 255])));
}

#[test]
fn ping_and_close_callbacks_observe_and_the_protocol_still_answers() {
    let (sender, events) = mpsc::channel::<String>();
    let server = support::start(move || {
        let mut worker = Worker::new("websocket://127.0.0.1:0");
        let pings = sender.clone();
        worker.on_websocket_ping(move |_connection: &TcpConnection, payload: &[u8]| {
            pings
                .send(format!("ping {}", String::from_utf8_lossy(payload)))
                .unwrap();
        });
        let closes = sender.clone();
        worker.on_websocket_close(
            move |_connection: &TcpConnection, code: u16, reason: &str| {
                closes.send(format!("close {code} {reason}")).unwrap();
            },
        );
        worker.on_close(move |_connection: &TcpConnection| sender.send("on_close".into()).unwrap());
        worker
    });
    let mut client = WsClient::connect(server.local_address());
    client.send(OP_PING, b"are you there");
    expect_pong(&mut client, b"are you there");
    client.send_close(4001, b"bye now");
    expect_failure(&mut client, 4001, &[]);
    let got: Vec<String> = (0..3)
        .map(|_| events.recv_timeout(Duration::from_secs(5)).unwrap())
        .collect();
    assert_eq!(
        got,
        ["ping are you there", "close 4001 bye now", "on_close"]
    );
    // An empty close frame is reported as 1005 and answered with an empty one.
    let mut client = WsClient::connect(server.local_address());
    client.send(OP_CLOSE, b"");
    let frame = client.read_frame().unwrap();
    assert_eq!(frame, Frame::new(OP_CLOSE, b""));
    assert_eq!(
        events.recv_timeout(Duration::from_secs(5)).unwrap(),
        "close 1005 "
    );
}

#[test]
fn server_close_sends_a_close_frame_first() {
    let server = support::start(|| {
        let mut worker = Worker::new("websocket://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, text: String| {
            connection.close_with(format!("bye {text}"));
            // Nothing goes out after the close frame.
            assert!(!connection.send("too late").is_accepted());
        });
        worker
    });
    let mut client = WsClient::connect(server.local_address());
    client.send(OP_TEXT, b"alice");
    assert_eq!(client.expect_close(1000), [Frame::text("bye alice")]);
}

#[test]
fn unmasked_client_frames_fail_with_1002() {
    let server = echo_server();
    let mut client = WsClient::connect(server.local_address());
    client.write(&ws::frame_bytes(true, 0, OP_TEXT, b"naked", None));
    expect_failure(&mut client, 1002, &[]);
}

#[test]
fn a_panic_in_on_message_costs_only_its_connection() {
    let server = support::start(|| {
        let mut worker = Worker::new("websocket://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, text: String| {
            if text == "panic" {
                panic!("on purpose");
            }
            connection.send(text);
        });
        worker
    });
    let mut other = WsClient::connect(server.local_address());
    let mut client = WsClient::connect(server.local_address());
    client.send(OP_TEXT, b"panic");
    assert!(client.closed());
    other.send(OP_TEXT, b"still fine");
    expect_echo(&mut other, OP_TEXT, b"still fine");
}

#[test]
fn many_messages_in_one_read_are_all_delivered_in_order() {
    let server = echo_server();
    let mut client = WsClient::connect(server.local_address());
    let mut wire = Vec::new();
    for index in 0..500 {
        wire.extend(masked(true, OP_TEXT, format!("message {index}").as_bytes()));
    }
    client.write(&wire);
    for index in 0..500 {
        assert_eq!(
            client.read_frame(),
            Some(Frame::text(&format!("message {index}")))
        );
    }
}
