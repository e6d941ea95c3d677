//! What a hub counts: [`HubStatistics`].

/// What a hub did so far in this process ([`SseHub::statistics`](super::SseHub::statistics)).
///
/// ```
/// use workerman::channel::SseHub;
/// let statistics = SseHub::new().statistics();
/// assert_eq!(statistics.subscribers, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubStatistics {
    /// Streams open now.
    pub subscribers: usize,
    /// Streams cut for passing their send-buffer limit.
    pub cut_slow: u64,
    /// Streams cut, furthest behind first, for the process-wide bound on queued bytes.
    pub cut_for_queued_bytes: u64,
    /// Streams cut for holding too many live events back while catching up.
    pub cut_catching_up: u64,
    /// Reset events sent.
    pub resets: u64,
    /// Replays that failed (the channel's history was unreachable); those streams were closed,
    /// so their clients retry with the same `Last-Event-ID`.
    pub replay_failures: u64,
    /// History requests sent (streams at one position share one: a catch-up after an outage
    /// asks once per topic and position, not once per stream).
    pub history_requests: u64,
    /// Bytes of shared events held by send queues now.
    pub queued_bytes: usize,
}
