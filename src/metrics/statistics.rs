//! [`Statistics`]: what one worker thread counts, as in Workerman's `status` table (the reactor
//! keeps them; `Worker::statistics` reads them).

/// Counters for this worker thread, as in Workerman's `status` table.
///
/// ```no_run
/// let statistics = workerman::Worker::statistics();
/// println!("{} requests, {} panics", statistics.total_request, statistics.panics);
/// ```
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Statistics {
    /// Connections open now.
    pub connection_count: usize,
    /// Messages delivered to `on_message` (HTTP requests, lines, frames, reads).
    pub total_request: u64,
    /// Sends that failed: the peer was gone or the send buffer was full.
    pub send_fail: u64,
    /// Panics caught in user callbacks and timers.
    pub panics: u64,
    /// Submits [`Worker::spawn_blocking`](crate::Worker::spawn_blocking) refused because the pool's queue was full.
    pub blocking_refused: u64,
}
