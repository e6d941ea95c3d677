//! Client connections' resolved host names, handed from the resolver threads to the reactor.

use std::io;
use std::net::SocketAddr;

/// Hands resolved addresses from the resolver threads to the reactor, and wakes it.
#[derive(Clone)]
pub(crate) struct Resolutions {
    results: std::sync::Arc<std::sync::Mutex<Vec<Resolution>>>,
    waker: std::sync::Arc<mio::Waker>,
}

pub(crate) type Resolution = (usize, u64, io::Result<Vec<SocketAddr>>);

impl Resolutions {
    pub(crate) fn new(waker: std::sync::Arc<mio::Waker>) -> Resolutions {
        Resolutions {
            results: Default::default(),
            waker,
        }
    }

    pub(crate) fn deliver(&self, key: usize, id: u64, result: io::Result<Vec<SocketAddr>>) {
        if let Ok(mut results) = self.results.lock() {
            results.push((key, id, result));
        }
        if let Err(error) = self.waker.wake() {
            log::error!("could not wake the worker after resolving a name: {error}");
        }
    }

    pub(crate) fn take(&self) -> Vec<Resolution> {
        self.results
            .lock()
            .map(|mut results| std::mem::take(&mut *results))
            .unwrap_or_default()
    }
}
