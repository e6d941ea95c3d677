//! HTTP sessions over loopback: `request.session()` with the `PHPSID` cookie, the file store,
//! saving once and only on change, `regenerate`, `flush`, hostile cookies; and
//! `connection.headers` (`set_header`) merged into the response.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{HttpClient, HttpResponse, start};
use workerman::protocols::http::{FileSessionHandler, Request, Response, SameSite, SessionConfig};
use workerman::{TcpConnection, Worker};

fn session_directory(test: &str) -> PathBuf {
    let directory =
        std::env::temp_dir().join(format!("wm-http-session-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    directory
}

/// The session files once they are `expected` (a session is saved after `on_message` returns,
/// so just after the response the write may still be under way), or what is there after 5 s.
fn settled_files(directory: &Path, expected: &[String]) -> Vec<String> {
    support::wait_until(Duration::from_secs(5), || {
        session_files(directory) == expected
    });
    session_files(directory)
}

fn session_files(directory: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(directory)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `/count` increments a counter; `/read` only reads; `/login` regenerates; `/logout` flushes;
/// `/pull` pulls `flash`; `/all` lists.
fn session_server(directory: PathBuf) -> workerman::RunningWorker {
    start(move || {
        let mut worker = Worker::new("http://127.0.0.1:0");
        let handler = FileSessionHandler::new(&directory).unwrap();
        worker.set_session(
            SessionConfig::new(handler)
                .same_site(SameSite::Lax)
                .lifetime(Duration::from_secs(600)),
        );
        worker.on_message(|connection: &TcpConnection, request: Request| {
            let session = request.session();
            match request.path() {
                "/count" => {
                    let count: u32 = session
                        .get("count")
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0);
                    session.set("count", (count + 1).to_string());
                    session.set("flash", "hi");
                    connection.send(format!("{} {}", count + 1, session.id()));
                }
                "/read" => {
                    let count = session.get("count").unwrap_or_default();
                    let exists = (session.has("count"), session.exists("nope"));
                    connection.send(format!("{count} {exists:?} {}", session.id()));
                }
                "/pull" => {
                    let flash = session.pull("flash");
                    connection.send(format!("{flash:?} {:?}", session.get("flash")));
                }
                "/login" => {
                    let old = session.id();
                    session.regenerate(true);
                    session.set("user", "ada");
                    connection.send(Response::ok(format!("{old} {}", session.id())));
                }
                "/logout" => {
                    session.flush();
                    session.delete("count");
                    connection.send(format!("{:?}", session.all()));
                }
                "/all" => {
                    connection.send(format!("{:?}", session.all()));
                }
                _ => {
                    connection.send("?");
                }
            };
        });
        worker
    })
}

fn get_with_cookie(client: &mut HttpClient, path: &str, cookie: Option<&str>) -> HttpResponse {
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    client.write(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{cookie}\r\n").as_bytes());
    client.response()
}

fn session_cookie(response: &HttpResponse) -> String {
    let set_cookie = response.header("set-cookie").expect("a Set-Cookie");
    set_cookie.split(';').next().unwrap().to_string()
}

#[test]
fn a_session_persists_through_its_cookie_and_is_saved_in_a_file() {
    let directory = session_directory("persist");
    let server = session_server(directory.clone());
    let mut client = HttpClient::connect(server.local_address());

    let first = get_with_cookie(&mut client, "/count", None);
    assert_eq!(first.status, 200);
    let set_cookie = first.header("set-cookie").unwrap().to_string();
    assert!(set_cookie.starts_with("PHPSID="), "{set_cookie}");
    assert!(set_cookie.contains("; Max-Age=600"), "{set_cookie}");
    assert!(set_cookie.contains("; Path=/"), "{set_cookie}");
    assert!(set_cookie.contains("; HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("; SameSite=Lax"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "no TLS: {set_cookie}");
    let cookie = session_cookie(&first);
    let id = cookie.strip_prefix("PHPSID=").unwrap().to_string();
    assert!(id.len() >= 32, "at least 128 bits: {id}");
    assert_eq!(first.body_text(), format!("1 {id}"));
    let expected = [format!("session_{id}")];
    assert_eq!(settled_files(&directory, &expected), expected);

    // Another connection with the cookie sees the data; no new cookie is set.
    let mut other = HttpClient::connect(server.local_address());
    let second = get_with_cookie(&mut other, "/count", Some(&cookie));
    assert_eq!(second.body_text(), format!("2 {id}"));
    assert_eq!(second.header("set-cookie"), None);
    let read = get_with_cookie(&mut other, "/read", Some(&format!("theme=dark; {cookie}")));
    assert_eq!(read.body_text(), format!("2 (true, false) {id}"));
    let pulled = get_with_cookie(&mut client, "/pull", Some(&cookie));
    assert_eq!(pulled.body_text(), "Some(\"hi\") None");
    let pulled = get_with_cookie(&mut client, "/pull", Some(&cookie));
    assert_eq!(
        pulled.body_text(),
        "None None",
        "pull removed it and that was saved"
    );
    server.stop();
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn a_session_is_written_only_when_it_changed() {
    let directory = session_directory("unchanged");
    let server = session_server(directory.clone());
    let mut client = HttpClient::connect(server.local_address());
    let cookie = session_cookie(&get_with_cookie(&mut client, "/count", None));
    let id = cookie.strip_prefix("PHPSID=").unwrap();
    let file = directory.join(format!("session_{id}"));
    settled_files(&directory, &[format!("session_{id}")]);
    let written = std::fs::metadata(&file).unwrap().modified().unwrap();
    // Make a rewrite visible in the modification time.
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(written - Duration::from_secs(100))
        .unwrap();
    let before = std::fs::metadata(&file).unwrap().modified().unwrap();
    for _ in 0..3 {
        let read = get_with_cookie(&mut client, "/read", Some(&cookie));
        assert!(read.body_text().starts_with("1 "), "{}", read.body_text());
    }
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        before
    );
    // A read-only request with no cookie creates nothing on disk.
    let fresh = get_with_cookie(
        &mut HttpClient::connect(server.local_address()),
        "/read",
        None,
    );
    assert!(fresh.header("set-cookie").is_some());
    assert_eq!(session_files(&directory).len(), 1);
    get_with_cookie(&mut client, "/count", Some(&cookie));
    assert!(support::wait_until(Duration::from_secs(5), || {
        std::fs::metadata(&file).is_ok_and(|m| m.modified().unwrap() > before)
    }));
    server.stop();
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn regenerate_moves_the_data_to_a_new_id_and_flush_destroys_the_file() {
    let directory = session_directory("regenerate");
    let server = session_server(directory.clone());
    let mut client = HttpClient::connect(server.local_address());
    let cookie = session_cookie(&get_with_cookie(&mut client, "/count", None));
    let old_id = cookie.strip_prefix("PHPSID=").unwrap().to_string();

    let login = get_with_cookie(&mut client, "/login", Some(&cookie));
    let cookies: Vec<&str> = login
        .head
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .collect();
    assert_eq!(cookies.len(), 1, "one session cookie: {}", login.head);
    let new_cookie = session_cookie(&login);
    let new_id = new_cookie.strip_prefix("PHPSID=").unwrap().to_string();
    assert_ne!(new_id, old_id);
    assert_eq!(login.body_text(), format!("{old_id} {new_id}"));
    let expected = [format!("session_{new_id}")];
    assert_eq!(settled_files(&directory, &expected), expected);
    let all = get_with_cookie(&mut client, "/all", Some(&new_cookie));
    assert!(
        all.body_text().contains("(\"user\", \"ada\")"),
        "{}",
        all.body_text()
    );
    assert!(
        all.body_text().contains("(\"count\", \"1\")"),
        "{}",
        all.body_text()
    );
    let all = get_with_cookie(&mut client, "/all", Some(&cookie));
    assert_eq!(all.body_text(), "[]", "the old id is gone");

    let logout = get_with_cookie(&mut client, "/logout", Some(&new_cookie));
    assert_eq!(logout.body_text(), "[]");
    assert_eq!(
        settled_files(&directory, &[]),
        Vec::<String>::new(),
        "an emptied session's file is removed"
    );
    server.stop();
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn a_hostile_session_cookie_is_ignored_and_never_a_path() {
    let directory = session_directory("hostile");
    let server = session_server(directory.clone());
    let outside = std::env::temp_dir().join(format!("session_escape{}", std::process::id()));
    let _ = std::fs::remove_file(&outside);
    let mut client = HttpClient::connect(server.local_address());
    for bad in [
        format!("PHPSID=../session_escape{}", std::process::id()),
        "PHPSID=short".to_string(),
        format!("PHPSID={}", "a".repeat(300)),
        "PHPSID=%2e%2e%2fetc%2fpasswd0000000".to_string(),
    ] {
        let response = get_with_cookie(&mut client, "/count", Some(&bad));
        assert_eq!(response.status, 200);
        let fresh = session_cookie(&response);
        assert_ne!(fresh, bad, "a new id replaces the invalid one");
        assert!(
            response.body_text().starts_with("1 "),
            "{}",
            response.body_text()
        );
    }
    assert!(!outside.exists());
    assert!(support::wait_until(Duration::from_secs(5), || {
        session_files(&directory).len() == 4
    }));
    assert!(
        session_files(&directory)
            .iter()
            .all(|f| f.starts_with("session_"))
    );
    server.stop();
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn connection_headers_are_merged_into_the_next_response_then_cleared() {
    let server = start(|| {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, request: Request| {
            match request.path() {
                "/string" => {
                    connection.set_header("X-From-Connection", "1");
                    connection.set_header("Content-Type", "text/plain");
                    connection.add_header("Set-Cookie", "a=1");
                    connection.send("body");
                }
                "/response" => {
                    connection.set_header("X-Trace", "c");
                    connection.set_header("X-Mode", "connection");
                    connection.add_header("Set-Cookie", "a=1");
                    connection.remove_header("x-trace");
                    connection.send(
                        Response::new(200, [("X-Mode", "response")], "r")
                            .with_header("Set-Cookie", "b=2"),
                    );
                }
                _ => {
                    connection.send(format!("{:?}", connection.headers()));
                }
            };
        });
        worker
    });
    let mut client = HttpClient::connect(server.local_address());
    let string = client.get("/string");
    assert_eq!(string.header("x-from-connection"), Some("1"));
    assert_eq!(string.header("content-type"), Some("text/plain"));
    assert_eq!(string.header("set-cookie"), Some("a=1"));
    assert_eq!(string.body_text(), "body");
    let response = client.get("/response");
    assert_eq!(response.header("x-mode"), Some("response"));
    assert_eq!(response.header("x-trace"), None);
    let cookies: Vec<&str> = response
        .head
        .lines()
        .filter_map(|l| l.strip_prefix("Set-Cookie: "))
        .collect();
    assert_eq!(cookies, ["b=2", "a=1"]);
    let after = client.get("/other");
    assert_eq!(after.body_text(), "[]", "cleared once sent");
    assert_eq!(after.header("x-from-connection"), None);
    server.stop();
}
