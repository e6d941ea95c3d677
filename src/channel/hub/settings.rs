//! The hub's settings: the stream's `retry:` and keep-alive, the slow-consumer policy and its
//! limit, the process-wide bound on queued bytes, and the limits on what a request may ask for.

/// What the hub does with a subscriber whose send queue passes
/// [`SseHub::set_max_send_buffer_size`](super::SseHub::set_max_send_buffer_size).
///
/// Whatever the policy, a subscriber is never sent a stream with holes: an event it cannot be
/// sent ends its stream, and it reconnects with `Last-Event-ID` and replays.
///
/// ```
/// use workerman::channel::{SlowConsumerPolicy, SseHub};
/// let hub = SseHub::new();
/// hub.set_slow_consumer_policy(SlowConsumerPolicy::Disconnect);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowConsumerPolicy {
    /// Past its limit a subscriber is disconnected at once, its queue dropped (the default).
    Disconnect,
    /// No per-subscriber limit: a slow subscriber is cut only by the process-wide bound
    /// ([`SseHub::set_max_queued_bytes`](super::SseHub::set_max_queued_bytes)), furthest
    /// behind first.
    ProcessBoundOnly,
}

/// The settings of one hub (per worker process).
#[derive(Debug, Clone)]
pub(crate) struct HubSettings {
    /// `retry:` sent first on every stream, in milliseconds (0: none).
    pub retry_ms: u64,
    /// Seconds of silence after which a stream gets a `: keep-alive` comment (0: none).
    pub keep_alive_secs: f64,
    /// A subscriber's send queue limit, in bytes.
    pub max_send_buffer_size: usize,
    /// What passing it does.
    pub slow_consumer_policy: SlowConsumerPolicy,
    /// Bytes of shared events held by the send queues of this process, at most.
    pub max_queued_bytes: usize,
    /// Topics one stream may ask for.
    pub max_topics_per_stream: usize,
    /// Distinct topics this process listens on (each is a channel subscription).
    pub max_topics: usize,
    /// Events asked from the history per request while a subscriber catches up.
    pub replay_page: usize,
    /// Live events a subscriber may hold back while it catches up, in bytes; past it, it is cut.
    pub max_catch_up_bytes: usize,
}

impl Default for HubSettings {
    fn default() -> HubSettings {
        HubSettings {
            retry_ms: 1000,
            keep_alive_secs: 15.0,
            max_send_buffer_size: 1024 * 1024,
            slow_consumer_policy: SlowConsumerPolicy::Disconnect,
            max_queued_bytes: 64 * 1024 * 1024,
            max_topics_per_stream: 16,
            max_topics: 10_000,
            replay_page: 200,
            max_catch_up_bytes: 1024 * 1024,
        }
    }
}

/// The longest topic name a request may use, in bytes.
pub(crate) const MAX_TOPIC_LEN: usize = 200;

/// The longest `Last-Event-ID` the hub reads, in bytes.
pub(crate) const MAX_LAST_EVENT_ID_LEN: usize = 4096;
