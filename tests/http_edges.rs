//! HTTP edges over loopback: Workerman's method rule (400 outside its seven methods, `get`
//! included), the request-body timeout's 408, and `send` of a number.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use support::{HttpClient, start};
use workerman::protocols::http::{Field, Request};
use workerman::{TcpConnection, Worker};

fn server(body_timeout: Duration) -> workerman::RunningWorker {
    start(move || {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.set_request_body_timeout(body_timeout);
        worker.on_message(|connection: &TcpConnection, request: Request| {
            match request.path() {
                "/number" => connection.send(42),
                "/float" => connection.send(1.5),
                "/time" => connection.send(1_700_000_000u64),
                "/fields" => connection.send(format!(
                    "{:?} | {:?} | {:?}",
                    request.get_field("a"),
                    request.post_field("user"),
                    request.get("a[]")
                )),
                _ => connection.send(format!("{} {}", request.method(), request.raw_body().len())),
            };
        });
        worker
    })
}

#[test]
fn a_method_outside_workermans_seven_is_a_400_and_never_dispatched() {
    let server = server(Duration::from_secs(60));
    for method in ["get", "Get", "PROPFIND", "TRACE", "BREW"] {
        let mut client = HttpClient::connect(server.local_address());
        client.write(format!("{method} / HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let response = client.response();
        assert_eq!(response.status, 400, "{method}: {}", response.head);
        assert_eq!(response.header("connection"), Some("close"));
        assert!(client.closed(), "{method}");
    }
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        let mut client = HttpClient::connect(server.local_address());
        client.write(format!("{method} / HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let response = client.response();
        assert_eq!(response.body_text(), format!("{method} 0"));
    }
    server.stop();
}

#[test]
fn a_body_slower_than_the_body_timeout_is_cut_with_408() {
    let server = server(Duration::from_millis(800));
    let mut client = HttpClient::connect(server.local_address());
    let started = Instant::now();
    client.write(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789");
    // A trickle that keeps the connection busy does not extend the deadline.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(150));
        let _ = client.reader.get_mut().write_all(b"x");
    }
    let response = client.response();
    let elapsed = started.elapsed();
    assert_eq!(response.status, 408, "{}", response.head);
    assert_eq!(response.header("connection"), Some("close"));
    assert!(elapsed >= Duration::from_millis(700), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    assert!(client.closed());

    // A body that arrives in time is answered, and the timeout does not carry over to the idle
    // keep-alive connection that follows.
    let mut client = HttpClient::connect(server.local_address());
    client.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nab");
    std::thread::sleep(Duration::from_millis(300));
    client.write(b"cd");
    assert_eq!(client.response().body_text(), "POST 4");
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(client.get("/").body_text(), "GET 0");
    server.stop();
}

#[test]
fn send_of_a_number_sends_its_decimal_text() {
    let server = server(Duration::from_secs(60));
    let mut client = HttpClient::connect(server.local_address());
    assert_eq!(client.get("/number").body_text(), "42");
    assert_eq!(client.get("/float").body_text(), "1.5");
    assert_eq!(client.get("/time").body_text(), "1700000000");
    server.stop();
}

#[test]
fn php_style_nested_fields_read_as_lists_and_maps_from_query_form_and_multipart() {
    let server = server(Duration::from_secs(60));
    let mut client = HttpClient::connect(server.local_address());
    let form = "user[name]=ann&user[langs][]=php&user[langs][]=rust";
    client.write(
        format!(
            "POST /fields?a[]=1&a[]=2 HTTP/1.1\r\nHost: t\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    );
    let text = |value: &str| Field::Text(value.into());
    let list = Field::List(vec![text("1"), text("2")]);
    let user = Field::Map(vec![
        ("name".into(), text("ann")),
        ("langs".into(), Field::List(vec![text("php"), text("rust")])),
    ]);
    let expected = format!("{:?} | {:?} | {:?}", Some(&list), Some(&user), Some("2"));
    assert_eq!(client.response().body_text(), expected);

    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"user[name]\"\r\n\r\nann\r\n\
                --XyZ\r\nContent-Disposition: form-data; name=\"user[langs][]\"\r\n\r\nphp\r\n\
                --XyZ\r\nContent-Disposition: form-data; name=\"user[langs][]\"\r\n\r\nrust\r\n\
                --XyZ--\r\n";
    client.write(
        format!(
            "POST /fields HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let expected = format!(
        "{:?} | {:?} | {:?}",
        None::<&Field>,
        Some(&user),
        None::<&str>
    );
    assert_eq!(client.response().body_text(), expected);
    server.stop();
}
