//! Hostile and malformed HTTP requests over loopback. Each one gets a 4xx answer with
//! `Connection: close` and the connection ends, or the connection is closed cleanly; none panics,
//! hangs, or harms the worker: a good request on a fresh connection still works after each.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use support::{HttpClient, start};
use workerman::protocols::http::Request;
use workerman::{TcpConnection, Worker};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Exactly this 4xx status, then the connection ends.
    Status(u16),
    /// Any 4xx, or a close without an answer.
    Rejected,
    /// Valid though unusual (RFC 9112 requires servers to accept it): a normal answer.
    Answered,
}

fn cases() -> Vec<(&'static str, Vec<u8>, Expect)> {
    use Expect::*;
    let big_header = {
        let mut request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: ".to_vec();
        request.extend(vec![b'a'; 20 * 1024]);
        request.extend_from_slice(b"\r\n\r\n");
        request
    };
    let long_target = {
        let mut request = b"GET /".to_vec();
        request.extend(vec![b'p'; 20 * 1024]);
        request.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
        request
    };
    let many_headers = {
        let mut request = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for index in 0..300 {
            request.extend_from_slice(format!("X-{index}: v\r\n").as_bytes());
        }
        request.extend_from_slice(b"\r\n");
        request
    };
    let huge_chunked = {
        let mut request =
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let chunk = vec![b'c'; 1 << 20];
        for _ in 0..11 {
            request.extend_from_slice(b"100000\r\n");
            request.extend_from_slice(&chunk);
            request.extend_from_slice(b"\r\n");
        }
        request
    };
    let tls_client_hello = vec![
        0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0x5a, 0x2b, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0xc0,
        0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xcc, 0xa9, 0x0d, 0x0a, 0x0d, 0x0a,
    ];
    vec![
        ("random bytes", b"\x00\x01\x02\x03\xff\xfe\r\n\r\n".to_vec(), Rejected),
        ("only CRLFs, past the head limit", b"\r\n".repeat(9000), Rejected),
        ("method only", b"GET\r\n\r\n".to_vec(), Status(400)),
        ("no version (HTTP/0.9)", b"GET /\r\n\r\n".to_vec(), Status(400)),
        ("lowercase version", b"GET / http/1.1\r\nHost: x\r\n\r\n".to_vec(), Status(400)),
        ("HTTP/2.0 request line", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n".to_vec(), Status(400)),
        ("HTTP/1.2", b"GET / HTTP/1.2\r\nHost: x\r\n\r\n".to_vec(), Status(400)),
        ("version with 3 digits", b"GET / HTTP/1.12\r\nHost: x\r\n\r\n".to_vec(), Status(400)),
        ("bad method token", b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Status(400)),
        ("NUL in method", b"GE\0T / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Status(400)),
        ("space inside target", b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Status(400)),
        ("control byte in target", b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Status(400)),
        ("target without slash", b"GET index.html HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Status(400)),
        ("asterisk-form with GET", b"GET * HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Status(400)),
        ("asterisk-form with OPTIONS", b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Answered),
        ("absolute-form", b"GET http://x/abs HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Answered),
        ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(), Status(400)),
        ("TLS ClientHello", tls_client_hello, Rejected),
        ("missing Host on HTTP/1.1", b"GET / HTTP/1.1\r\n\r\n".to_vec(), Status(400)),
        ("duplicate Host", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(), Status(400)),
        ("Host with a space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n".to_vec(), Status(400)),
        ("Host with two ports", b"GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n".to_vec(), Status(400)),
        ("Host with a bad port", b"GET / HTTP/1.1\r\nHost: a:port\r\n\r\n".to_vec(), Status(400)),
        (
            "Content-Length with Transfer-Encoding",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            Status(400),
        ),
        (
            "Transfer-Encoding: gzip, chunked",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n".to_vec(),
            Status(400),
        ),
        (
            "Transfer-Encoding: xchunked",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n".to_vec(),
            Status(400),
        ),
        (
            "two Transfer-Encoding headers",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            Status(400),
        ),
        ("negative Content-Length", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(), Status(400)),
        ("Content-Length with a sign", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello".to_vec(), Status(400)),
        ("Content-Length in exponent form", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n".to_vec(), Status(400)),
        (
            "Content-Length that overflows",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(),
            Status(400),
        ),
        (
            "conflicting Content-Lengths",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!".to_vec(),
            Status(400),
        ),
        ("Content-Length over the package limit", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10485761\r\n\r\n".to_vec(), Status(413)),
        ("chunked body over the package limit", huge_chunked, Status(413)),
        ("chunk size not hex", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(), Status(400)),
        ("negative chunk size", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n".to_vec(), Status(400)),
        (
            "chunk size that overflows",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\n".to_vec(),
            Rejected,
        ),
        (
            "chunk data without its CRLF",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n".to_vec(),
            Status(400),
        ),
        ("header block over 16 KiB", big_header, Status(431)),
        ("request line over 16 KiB", long_target, Status(431)),
        ("300 headers", many_headers, Status(431)),
        ("space in a header name", b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n".to_vec(), Status(400)),
        ("header without a colon", b"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n".to_vec(), Status(400)),
        ("empty header name", b"GET / HTTP/1.1\r\nHost: x\r\n: value\r\n\r\n".to_vec(), Status(400)),
        ("NUL in a header value", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n".to_vec(), Status(400)),
        ("obsolete line folding", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n  folded\r\n\r\n".to_vec(), Status(400)),
        ("bare CR in a header value", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n".to_vec(), Status(400)),
        ("space before the colon", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n".to_vec(), Status(400)),
    ]
}

/// What the server did with one request: its answer (possibly empty) and whether it closed.
fn exchange(address: std::net::SocketAddr, request: &[u8]) -> (Vec<u8>, bool) {
    let mut stream = support::connect(address);
    // The server may answer and close before taking every byte: a write error is fine then.
    let _ = stream.write_all(request);
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 8192];
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return (answer, true),
            Ok(count) => answer.extend_from_slice(&buffer[..count]),
            // A reset after the answer is a close too.
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                return (answer, true);
            }
            Err(_) => return (answer, false),
        }
        if started.elapsed() > Duration::from_secs(3) {
            return (answer, false);
        }
    }
}

#[test]
fn every_hostile_request_gets_a_4xx_or_a_clean_close() {
    let server = start(|| {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, request: Request| {
            connection.send(format!("{} {}", request.method(), request.path()));
        });
        worker
    });
    let cases = cases();
    assert!(cases.len() >= 40, "the suite has {} cases", cases.len());
    let mut failures = Vec::new();
    for (name, request, expect) in &cases {
        let (answer, closed) = exchange(server.local_address(), request);
        let text = String::from_utf8_lossy(&answer);
        let status: Option<u16> = text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok());
        let ok = match expect {
            Expect::Status(code) => {
                status == Some(*code) && closed && text.contains("\r\nConnection: close\r\n")
            }
            Expect::Rejected => {
                closed
                    && (answer.is_empty() || status.is_some_and(|code| (400..500).contains(&code)))
            }
            Expect::Answered => status == Some(200),
        };
        if !ok {
            failures.push(format!(
                "{name}: expected {expect:?}, got closed={closed} {:?}",
                &text[..text.len().min(120)]
            ));
        }
        // The worker still serves a good request on a fresh connection.
        let good = HttpClient::connect(server.local_address()).get("/alive");
        assert_eq!(good.body_text(), "GET /alive", "after {name}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
