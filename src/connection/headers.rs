//! Workerman's `$connection->headers`: HTTP headers set on the connection before the response is
//! sent, merged into that response (what session middleware uses for its `Set-Cookie`).

use std::borrow::Cow;

use super::TcpConnection;
use super::table;

impl TcpConnection {
    /// Sets a header for the next HTTP response on this connection, replacing any header of that
    /// name set before (Workerman's `$connection->headers['X-Name'] = 'value'`). The headers are
    /// merged into the next response sent (a `Response` or a plain body) and then cleared; a
    /// name the response sets itself keeps the response's value, except `Set-Cookie`, which adds
    /// a line. Nothing happens on a closed connection.
    ///
    /// ```no_run
    /// use workerman::protocols::http::Request;
    /// use workerman::{TcpConnection, Worker};
    ///
    /// let mut worker = Worker::new("http://127.0.0.1:0");
    /// worker.on_message(|connection: &TcpConnection, _request: Request| {
    ///     connection.set_header("X-Powered-By", "workerman-rs");
    ///     connection.send("ok"); // carries X-Powered-By
    /// });
    /// ```
    pub fn set_header(
        &self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) {
        let (name, value) = (name.into(), value.into());
        self.with_headers(|headers| {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
            headers.push((name, value));
        });
    }

    /// Adds a header line for the next HTTP response, keeping those of the same name
    /// (Workerman's `$connection->headers['Set-Cookie'][] = ...`).
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// connection.add_header("Set-Cookie", "a=1");
    /// connection.add_header("Set-Cookie", "b=2");
    /// assert_eq!(connection.headers().len(), 2);
    /// # }
    /// ```
    pub fn add_header(
        &self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) {
        let (name, value) = (name.into(), value.into());
        self.with_headers(|headers| headers.push((name, value)));
    }

    /// Removes every pending header of this name (case-insensitive).
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// connection.set_header("X-A", "1");
    /// connection.remove_header("x-a");
    /// assert!(connection.headers().is_empty());
    /// # }
    /// ```
    pub fn remove_header(&self, name: &str) {
        self.with_headers(|headers| headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name)));
    }

    /// The headers waiting for the next response, in the order set.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// connection.set_header("X-A", "1");
    /// assert_eq!(connection.headers(), [("X-A".to_string(), "1".to_string())]);
    /// # }
    /// ```
    pub fn headers(&self) -> Vec<(String, String)> {
        table::try_with(|table| {
            let connection = table.connection(self)?;
            let extras = connection.extras.as_ref()?;
            Some(
                extras
                    .headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
            )
        })
        .flatten()
        .unwrap_or_default()
    }

    fn with_headers(&self, f: impl FnOnce(&mut Vec<crate::protocols::http::Header>)) {
        table::try_with(|table| {
            if let Some(connection) = table.connection_mut(self) {
                f(&mut connection.extras().headers);
            }
        });
    }
}
