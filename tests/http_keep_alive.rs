//! HTTP/1.1 over loopback: keep-alive per RFC 9112, HTTP/1.0, Connection: close, pipelining in
//! order (also when answered later), HEAD, chunked requests and responses, the error answers, the
//! head and idle timeouts, and a panic's 500.

mod support;

use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use support::{HttpClient, read_response, read_to_close, start};
use workerman::protocols::http::{Chunk, Request, Response};
use workerman::{TcpConnection, Timer, Worker};

fn hello_server() -> workerman::RunningWorker {
    start(|| {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.on_message(
            |connection: &TcpConnection, request: Request| match request.path() {
                "/panic" => panic!("handler bug"),
                "/echo" => {
                    let body = request.raw_body().to_vec();
                    connection.send(body);
                }
                "/chunked" => {
                    connection.send(Response::new(
                        200,
                        [("Transfer-Encoding", "chunked")],
                        "first;",
                    ));
                    connection.send(Chunk::new("second;"));
                    connection.send(Chunk::new(""));
                }
                path => {
                    connection.send(format!("{} {path}", request.method()));
                }
            },
        );
        worker
    })
}

#[test]
fn send_of_a_string_is_a_200_with_workermans_headers() {
    let server = hello_server();
    let mut client = HttpClient::connect(server.local_address());
    let response = client.get("/hi");
    assert_eq!(
        response.head,
        "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Type: text/html;charset=utf-8\r\n\
         Content-Length: 7\r\n\r\n"
    );
    assert_eq!(response.body_text(), "GET /hi");
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let server = hello_server();
    let mut client = HttpClient::connect(server.local_address());
    for index in 0..50 {
        let response = client.get(&format!("/{index}"));
        assert_eq!(response.status, 200);
        assert_eq!(response.body_text(), format!("GET /{index}"));
    }
}

#[test]
fn connection_close_is_honoured() {
    let server = hello_server();
    let mut client = HttpClient::connect(server.local_address());
    client.write(b"GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let response = client.response();
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(response.body_text(), "GET /bye");
    assert!(client.closed());
}

#[test]
fn http_1_0_closes_unless_it_asks_for_keep_alive() {
    let server = hello_server();
    let mut client = HttpClient::connect(server.local_address());
    client.write(b"GET /one HTTP/1.0\r\n\r\n");
    let response = client.response();
    assert_eq!(response.header("connection"), Some("close"));
    assert!(client.closed());

    let mut client = HttpClient::connect(server.local_address());
    client.write(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(client.response().header("connection"), Some("keep-alive"));
    client.write(b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(client.response().body_text(), "GET /b");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = hello_server();
    let mut client = HttpClient::connect(server.local_address());
    let mut batch = Vec::new();
    for index in 0..16 {
        batch.extend_from_slice(format!("GET /p{index} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    }
    client.write(&batch);
    for index in 0..16 {
        assert_eq!(client.response().body_text(), format!("GET /p{index}"));
    }
}

#[test]
fn pipelined_requests_answered_later_still_come_back_in_order() {
    // The handler answers each request after a delay that shrinks: without ordering, the later
    // requests would overtake the earlier ones.
    let server = start(|| {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, request: Request| {
            let delay: f64 = request.path()[1..].parse().unwrap();
            let connection = connection.clone();
            let path = request.path().to_owned();
            Timer::once(delay, move || {
                connection.send(path);
            });
        });
        worker
    });
    let mut client = HttpClient::connect(server.local_address());
    client.write(
        b"GET /0.15 HTTP/1.1\r\nHost: x\r\n\r\nGET /0.05 HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /0.0 HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    for expected in ["/0.15", "/0.05", "/0.0"] {
        assert_eq!(client.response().body_text(), expected);
    }
}

#[test]
fn head_gets_the_length_but_no_body() {
    let server = hello_server();
    let mut client = HttpClient::connect(server.local_address());
    client.write(b"HEAD /x HTTP/1.1\r\nHost: x\r\n\r\n");
    let response = read_response(&mut client.reader, true);
    assert_eq!(
        response.header("content-length"),
        Some("7"),
        "the length of \"HEAD /x\""
    );
    // The next response follows directly: no body bytes were sent for HEAD.
    assert_eq!(client.get("/next").body_text(), "GET /next");
}

#[test]
fn chunked_request_bodies_with_trailers() {
    let server = hello_server();
    let mut client = HttpClient::connect(server.local_address());
    client.write(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n",
    );
    assert_eq!(client.response().body_text(), "hello, world");
    // Split at every few bytes.
    let request = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                    3\r\nabc\r\n0\r\n\r\n";
    for piece in request.chunks(3) {
        client.write(piece);
        thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(client.response().body_text(), "abc");
}

#[test]
fn content_length_bodies_split_across_writes() {
    let server = hello_server();
    let mut client = HttpClient::connect(server.local_address());
    let body = vec![b'q'; 300_000];
    client.write(
        format!(
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    for piece in body.chunks(70_000) {
        client.write(piece);
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(client.response().body, body);
}

#[test]
fn chunked_responses_then_the_next_request() {
    let server = hello_server();
    let mut client = HttpClient::connect(server.local_address());
    client.write(b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    let response = client.response();
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert_eq!(response.header("content-length"), None);
    assert_eq!(response.body_text(), "first;second;");
    assert_eq!(client.response().body_text(), "GET /after");
}

fn expect_error(request: &[u8], status: u16) {
    let server = hello_server();
    let mut client = HttpClient::connect(server.local_address());
    client.write(request);
    let response = client.response();
    assert_eq!(
        response.status,
        status,
        "for {:?}",
        String::from_utf8_lossy(&request[..request.len().min(80)])
    );
    assert_eq!(response.header("connection"), Some("close"));
    assert!(client.closed(), "the connection ends after an error answer");
    // The worker still serves others.
    assert_eq!(
        HttpClient::connect(server.local_address())
            .get("/ok")
            .status,
        200
    );
}

#[test]
fn malformed_request_line_is_400() {
    expect_error(b"GARBAGE\r\n\r\n", 400);
    expect_error(b"GET /x HTTP/9.9\r\nHost: x\r\n\r\n", 400);
}

#[test]
fn missing_or_duplicate_host_is_400() {
    expect_error(b"GET / HTTP/1.1\r\n\r\n", 400);
    expect_error(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
}

#[test]
fn content_length_with_transfer_encoding_is_400() {
    expect_error(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
    );
}

#[test]
fn bad_chunk_size_is_400() {
    expect_error(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        400,
    );
}

#[test]
fn header_block_over_16_kib_is_431() {
    let mut request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    request.extend(vec![b'a'; 17 * 1024]);
    request.extend_from_slice(b"\r\n\r\n");
    expect_error(&request, 431);
}

#[test]
fn body_over_max_package_size_is_413() {
    expect_error(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n",
        413,
    );
}

#[test]
fn panic_in_on_message_answers_500_and_others_keep_working() {
    let server = hello_server();
    let mut client = HttpClient::connect(server.local_address());
    let response = client.get("/panic");
    assert_eq!(response.status, 500);
    assert_eq!(response.header("connection"), Some("close"));
    assert!(client.closed());
    assert_eq!(
        HttpClient::connect(server.local_address())
            .get("/fine")
            .status,
        200
    );
}

#[test]
fn slow_request_head_is_closed_by_the_head_timeout() {
    let server = start(|| {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.set_request_head_timeout(Duration::from_millis(300));
        worker.on_message(|connection: &TcpConnection, _request: Request| {
            connection.send("ok");
        });
        worker
    });
    let mut stream = support::connect(server.local_address());
    let started = Instant::now();
    // A byte every 50 ms: never a whole head in time.
    for &byte in b"GET / HTTP/1.1\r\nHost: slow" {
        if stream.write_all(&[byte]).is_err() {
            break;
        }
        thread::sleep(Duration::from_millis(50));
        if started.elapsed() > Duration::from_millis(700) {
            break;
        }
    }
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(1500),
        "closed after {elapsed:?}"
    );
    assert!(rest.is_empty());
}

#[test]
fn idle_keep_alive_connection_times_out() {
    let server = start(|| {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.set_keep_alive_timeout(Duration::from_millis(300));
        worker.on_message(|connection: &TcpConnection, _request: Request| {
            connection.send("ok");
        });
        worker
    });
    let mut client = HttpClient::connect(server.local_address());
    assert_eq!(client.get("/").status, 200);
    let idle = Instant::now();
    assert!(client.closed());
    let elapsed = idle.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
}

#[test]
fn a_stream_of_requests_is_not_cut_by_the_timeouts() {
    let server = start(|| {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.set_keep_alive_timeout(Duration::from_millis(200));
        worker.set_request_head_timeout(Duration::from_millis(200));
        worker.on_message(|connection: &TcpConnection, _request: Request| {
            connection.send("ok");
        });
        worker
    });
    let mut client = HttpClient::connect(server.local_address());
    for _ in 0..10 {
        assert_eq!(client.get("/").status, 200);
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn static_files_ranges_and_large_files_under_backpressure() {
    let directory = std::env::temp_dir().join(format!("workerman-files-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let large: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(directory.join("large.bin"), &large).unwrap();
    std::fs::write(directory.join("page.html"), "<h1>hi</h1>").unwrap();
    let root = directory.clone();
    let server = start(move || {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.on_message(move |connection: &TcpConnection, request: Request| {
            connection.send(Response::from_static_dir(&root, request.path()));
        });
        worker
    });
    let mut client = HttpClient::connect(server.local_address());
    let page = client.get("/page.html");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.header("last-modified").is_some());
    assert_eq!(page.body_text(), "<h1>hi</h1>");

    assert_eq!(client.get("/missing.txt").status, 404);
    assert_eq!(client.get("/../../etc/passwd").status, 404);
    assert_eq!(client.get("/%2e%2e/%2e%2e/etc/passwd").status, 404);

    client.write(b"GET /large.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=100-199\r\n\r\n");
    let part = client.response();
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some("bytes 100-199/3000000"));
    assert_eq!(part.body, &large[100..200]);

    // 3 MB, read slowly at first so the server must wait for the socket to drain.
    client.write(
        b"GET /large.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /page.html HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    thread::sleep(Duration::from_millis(300));
    let whole = client.response();
    assert_eq!(whole.status, 200);
    assert!(
        whole.body == large,
        "the streamed file arrives whole and in order"
    );
    assert_eq!(
        client.response().body_text(),
        "<h1>hi</h1>",
        "the pipelined request waited"
    );
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn a_request_cut_short_by_the_client_costs_nothing() {
    let server = hello_server();
    for cut in [5, 20, 40] {
        let mut stream = support::connect(server.local_address());
        stream
            .write_all(&b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"[..cut])
            .unwrap();
        drop(stream);
    }
    let mut stream = support::connect(server.local_address());
    stream
        .write_all(b"GET /still HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let all = read_to_close(&mut stream);
    assert!(String::from_utf8_lossy(&all).ends_with("GET /still"));
}

#[test]
fn expect_100_continue_gets_an_interim_answer_before_the_body() {
    let server = hello_server();
    let mut client = HttpClient::connect(server.local_address());
    client.write(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    );
    let interim = client.response();
    assert_eq!(interim.status, 100);
    assert!(interim.body.is_empty());
    client.write(b"body");
    assert_eq!(client.response().body_text(), "body");
    // Sent with its body at once, no interim answer is needed (or sent).
    client.write(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
    );
    assert_eq!(client.response().body_text(), "hi");
}
