//! The crypto provider rustls uses: `ring` by default, `aws-lc-rs` with that feature.

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;

#[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
compile_error!("workerman's TLS needs a crypto provider: enable the `ring` or `aws-lc-rs` feature");

/// The process-wide provider, built once (`aws-lc-rs` when that feature is on, else `ring`).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(build())).clone()
}

#[cfg(feature = "aws-lc-rs")]
fn build() -> CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
fn build() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}
