//! A chat in the browser: the page comes from an `http://` worker, the messages go over a
//! `websocket://` worker, and every message is broadcast to everyone connected.
//!
//! ```text
//! cargo run --example websocket_chat
//! ```
//! Then open <http://127.0.0.1:8095/> in two browser tabs and type. The page's script connects to
//! `ws://<the page's host>:8096`.
//!
//! The `wss` mode: with `TLS_CERT` and `TLS_KEY` (PEM paths) both workers use TLS: the page is
//! <https://localhost:8095/> and its script connects to `wss://<the page's host>:8096`.
//! ```text
//! TLS_CERT=cert.pem TLS_KEY=key.pem cargo run --example websocket_chat
//! ```

use workerman::connection::SslContext;
use workerman::protocols::http::{Request, Response};
use workerman::{TcpConnection, Worker};

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>workerman chat</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40em; margin: 2em auto; }
  #log { list-style: none; padding: 0; min-height: 10em; }
  #log li.system { color: #777; }
  form { display: flex; gap: .5em; }
  #text { flex: 1; }
</style>
<h1>Chat</h1>
<p id="status">connecting…</p>
<ul id="log"></ul>
<form id="form">
  <input id="text" autocomplete="off" placeholder="Say something" autofocus>
  <button>Send</button>
</form>
<script>
  const log = document.getElementById("log");
  const status = document.getElementById("status");
  const input = document.getElementById("text");
  const show = (text, system) => {
    const item = document.createElement("li");
    item.textContent = text;
    if (system) item.className = "system";
    log.appendChild(item);
  };
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.hostname}:8096/`);
  socket.addEventListener("open", () => {
    status.textContent = "connected";
    document.body.dataset.state = "open";
  });
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    show(message.text, message.system);
  });
  socket.addEventListener("close", (event) => {
    status.textContent = `disconnected (${event.code})`;
    document.body.dataset.state = "closed";
  });
  document.getElementById("form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.value !== "" && socket.readyState === WebSocket.OPEN) {
      socket.send(input.value);
      input.value = "";
    }
  });
</script>
</html>
"#;

/// One chat line as the page reads it: `{"text": "...", "system": bool}`.
fn line(text: &str, system: bool) -> String {
    serde_json::json!({ "text": text, "system": system }).to_string()
}

fn broadcast(chat: &Worker, text: &str, system: bool) {
    let message = line(text, system);
    for connection in chat.connections() {
        connection.send(message.as_str());
    }
}

/// The `wss` mode's context, when `TLS_CERT` and `TLS_KEY` are set.
fn tls_context() -> Option<SslContext> {
    let cert = std::env::var_os("TLS_CERT")?;
    let key = std::env::var_os("TLS_KEY")?;
    Some(SslContext::new().local_cert(cert).local_pk(key))
}

fn main() {
    let tls = tls_context();
    let mut web = Worker::new("http://0.0.0.0:8095");
    if let Some(context) = &tls {
        web.set_transport("ssl");
        web.set_ssl_context(context.clone());
    }
    web.set_name("chat_page");
    web.on_message(|connection: &TcpConnection, request: Request| {
        if request.path() == "/" {
            connection.send(Response::new(
                200,
                [("Content-Type", "text/html; charset=utf-8")],
                PAGE,
            ));
        } else {
            connection.send(Response::new(
                404,
                [("Content-Type", "text/plain")],
                "not found",
            ));
        }
    });

    let mut chat = Worker::new("websocket://0.0.0.0:8096");
    chat.set_name("chat");
    if let Some(context) = tls {
        chat.set_transport("ssl");
        chat.set_ssl_context(context);
    }
    // A chat line is short: refuse anything over 64 KiB (the client gets close code 1009).
    chat.set_max_package_size(64 * 1024);
    let everyone = chat.clone();
    chat.on_websocket_connected(move |connection: &TcpConnection, _request: &Request| {
        broadcast(&everyone, &format!("user {} joined", connection.id()), true);
    });
    let everyone = chat.clone();
    chat.on_message(move |connection: &TcpConnection, text: String| {
        broadcast(
            &everyone,
            &format!("user {}: {text}", connection.id()),
            false,
        );
    });
    let everyone = chat.clone();
    chat.on_close(move |connection: &TcpConnection| {
        broadcast(&everyone, &format!("user {} left", connection.id()), true);
    });
    Worker::run_all();
}
