//! TLS (`transport = 'ssl'`, `https://`, `wss://`, `ssl://`) through rustls: the
//! [`SslContext`] a worker or client is given, the configurations made from its files, and the
//! sans-I/O session that sits between the socket and the codecs, which never see it.
//!
//! Nothing here touches the reactor, a worker or a process: the driver in `connection` reads
//! ciphertext from the socket into a session, hands the plaintext to the codec, and writes the
//! session's ciphertext back.

// Until the driver's TLS transport uses the session and the client configuration, only the
// tests do.
#![allow(dead_code)]

mod certificates;
mod context;
mod error;
mod insecure;
#[cfg(test)]
mod openssl_tests;
mod provider;
mod session;
mod sni;
#[cfg(test)]
mod tests;

pub use context::SslContext;
pub use error::SslContextError;
#[allow(unused_imports)]
pub(crate) use session::{
    CIPHERTEXT_BUFFER_LIMIT, PLAIN_HTTP_ON_TLS_PORT, Received, TlsError, TlsSession,
    looks_like_tls_client_hello,
};
