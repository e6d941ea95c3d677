//! TLS (`transport = 'ssl'`, `https://`, `wss://`, `ssl://`) through rustls: the
//! [`SslContext`] a worker or client is given, the configurations made from its files, and the
//! sans-I/O session that sits between the socket and the codecs, which never see it.
//!
//! Nothing here touches the reactor, a worker or a process: the driver in `connection` reads
//! ciphertext from the socket into a session, hands the plaintext to the codec, and writes the
//! session's ciphertext back.

mod certificates;
mod context;
mod error;
mod insecure;
mod layer;
#[cfg(test)]
mod openssl_tests;
mod provider;
mod session;
mod sni;
#[cfg(test)]
mod tests;

pub use context::SslContext;
pub use error::SslContextError;
#[cfg(test)]
use layer::TlsLayer;
pub(crate) use layer::{client_layer_factory, server_layer_factory};
pub(crate) use session::looks_like_tls_client_hello;
#[cfg(test)]
use session::{CIPHERTEXT_BUFFER_LIMIT, PLAIN_HTTP_ON_TLS_PORT, TlsError, TlsSession};
