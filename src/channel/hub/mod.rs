//! [`SseHub`]: Server-Sent Events streams of channel topics, with exact replay by
//! `Last-Event-ID` on any node, a reset event for gaps, a slow-consumer policy, and events
//! encoded once and queued once per process under a process-wide bound.
//!
//! # The wire contract
//! - The head: `200`, `Content-Type: text/event-stream`, `Cache-Control: no-cache`,
//!   `X-Accel-Buffering: no`; then `retry: <ms>` (setting), then events.
//! - An event of topic `T`: `event: T`, `id: <position>`, `data: <the published data>`.
//! - The `id:` of a stream of one topic is that topic's [`EventId`]: with Redis the stream entry
//!   id (`<ms>-<seq>`), so a client reconnecting to any node resumes after it. A stream of
//!   several topics carries one position per topic, in the order of the request's topics,
//!   joined by `,` (a topic with no position yet is empty): `1700000000000-0,1700000000001-0`.
//! - Reconnecting with that id (`Last-Event-ID` header, or `?last_event_id=`) gives exactly the
//!   events after it, per topic, then live ones: no duplicate and no gap at the seam.
//! - A fresh stream (no `Last-Event-ID`) gets each topic's position from
//!   [`Channel::last_id`] once it is registered for live events (`0-0`, the start, for a topic
//!   with nothing kept), at once as an `id:` line with no data, then replays after it like a
//!   reconnect: a reconnect before its first event misses nothing.
//! - **`event: reset`**: when an asked-for id is older than the history, from another epoch
//!   (a restarted relay) or unreadable, or when the broker was down and a topic had no position
//!   to replay from, the stream says so before going on live:
//!   `event: reset` / `data: {"topic":"T","reason":"gap"}` (reasons: `gap`, `malformed`,
//!   `outage`), with an `id:` of the stream's position. A browser listens with
//!   `source.addEventListener("reset", ..)`.
//! - After a broker outage (the channel reports it down, then up), every stream catches up from
//!   its own position through the history, or gets a reset when that history is gone.
//! - A slow subscriber (its send queue past [`SseHub::set_max_send_buffer_size`]) is
//!   disconnected, never sent a stream with holes; it reconnects and replays.
//!
//! ```no_run
//! use workerman::channel::SseHub;
//! use workerman::protocols::http::{Request, Response};
//! use workerman::{TcpConnection, Worker};
//!
//! let hub = SseHub::new();
//! let mut worker = Worker::new("http://127.0.0.1:8091");
//! worker.on_message(move |connection: &TcpConnection, request: Request| {
//!     match request.path() {
//!         "/events" => {
//!             hub.subscribe(connection, &request, &["news"]);
//!         }
//!         "/publish" => {
//!             let connection = connection.clone();
//!             hub.publish("news", request.raw_body(), move |result| {
//!                 let response = match result {
//!                     Ok(id) => Response::ok(id.to_string()),
//!                     Err(error) => Response::new(503, [("Content-Type", "text/plain")], error.to_string()),
//!                 };
//!                 connection.send(response);
//!             });
//!         }
//!         _ => {
//!             connection.send(Response::new(404, [("Content-Type", "text/plain")], "not found"));
//!         }
//!     }
//! });
//! Worker::run_all();
//! ```

mod cursor;
mod queued_bytes;
mod replay;
mod settings;
mod state;
mod statistics;

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use crate::channel::{Channel, ChannelEvent, Error, EventId, History};
use crate::protocols::SharedMessage;
use crate::protocols::http::{Request, Response, ServerSentEvents};
use crate::{SendResult, TcpConnection, Timer};

use cursor::{ResetReason, Resume, format_cursor, parse_last_event_id, reset_event};
use settings::MAX_TOPIC_LEN;
pub use settings::SlowConsumerPolicy;
use state::{HubState, Position, Replay, SharedState, Subscriber, SubscriberRef, Topic};
pub use statistics::HubStatistics;

/// Server-Sent Events streams of [`Channel`] topics, for the connections of one worker process.
///
/// Create it before [`Worker::run_all`](crate::Worker::run_all) and move clones into the
/// callbacks: each worker process gets its own copy, which listens on a topic (through
/// [`Channel::on_event`]) once its first subscriber asks for it. A publish from any process
/// or node ([`SseHub::publish`], [`Channel::publish_with`]) reaches every subscriber of the
/// topic. Cloning is a reference count.
///
/// ```no_run
/// use workerman::channel::SseHub;
/// use workerman::protocols::http::Request;
/// use workerman::{TcpConnection, Worker};
///
/// let hub = SseHub::new();
/// hub.set_retry(2000);
/// let mut worker = Worker::new("http://127.0.0.1:8091");
/// worker.on_message(move |connection: &TcpConnection, request: Request| {
///     hub.subscribe_request(connection, &request);
/// });
/// Worker::run_all();
/// ```
#[derive(Clone, Default)]
pub struct SseHub {
    state: Rc<RefCell<HubState>>,
}

impl SseHub {
    /// A hub with the default settings: `retry: 1000`, a keep-alive comment on a stream silent
    /// for 15 s, a
    /// 1 MiB send-buffer limit per subscriber (disconnect past it), 64 MiB of queued event
    /// bytes per process, up to 16 topics per stream.
    ///
    /// ```
    /// let hub = workerman::channel::SseHub::new();
    /// assert_eq!(hub.statistics().subscribers, 0);
    /// ```
    pub fn new() -> SseHub {
        SseHub::default()
    }

    /// The `retry:` (milliseconds) every stream starts with: how long a browser waits before
    /// reconnecting; 0 sends none.
    ///
    /// ```
    /// workerman::channel::SseHub::new().set_retry(2000);
    /// ```
    pub fn set_retry(&self, milliseconds: u64) {
        self.state.borrow_mut().settings.retry_ms = milliseconds;
    }

    /// The longest a stream may stay silent, in seconds: a stream that has had no event for
    /// between 3/4 of that and all of it gets a `: keep-alive` comment (proxies close silent
    /// connections); a stream with an event at least every 3/4 period gets none. 0 sends none.
    /// Set it before the first subscriber.
    ///
    /// ```
    /// workerman::channel::SseHub::new().set_keep_alive(30.0);
    /// ```
    pub fn set_keep_alive(&self, seconds: f64) {
        self.state.borrow_mut().settings.keep_alive_secs = seconds;
    }

    /// A subscriber's send-queue limit in bytes (default 1 MiB): past it the
    /// [`SlowConsumerPolicy`] applies.
    ///
    /// ```
    /// workerman::channel::SseHub::new().set_max_send_buffer_size(256 * 1024);
    /// ```
    pub fn set_max_send_buffer_size(&self, bytes: usize) {
        let mut state = self.state.borrow_mut();
        state.settings.max_send_buffer_size = bytes;
        state.settings.max_catch_up_bytes = bytes;
    }

    /// What happens to a subscriber past its send-queue limit (default: disconnected).
    ///
    /// ```
    /// use workerman::channel::{SlowConsumerPolicy, SseHub};
    /// SseHub::new().set_slow_consumer_policy(SlowConsumerPolicy::ProcessBoundOnly);
    /// ```
    pub fn set_slow_consumer_policy(&self, policy: SlowConsumerPolicy) {
        self.state.borrow_mut().settings.slow_consumer_policy = policy;
    }

    /// The most bytes of shared events the send queues of this process may hold (default
    /// 64 MiB; each event's bytes counted once, plus 48 bytes for each queue's reference to
    /// it): past it, the subscribers furthest behind (the longest queues) are cut first,
    /// until the queues hold at most three quarters of it. They reconnect and replay.
    ///
    /// ```
    /// workerman::channel::SseHub::new().set_max_queued_bytes(16 * 1024 * 1024);
    /// ```
    pub fn set_max_queued_bytes(&self, bytes: usize) {
        self.state.borrow_mut().settings.max_queued_bytes = bytes;
    }

    /// How many topics one stream may ask for (default 16); more answers 400.
    ///
    /// ```
    /// workerman::channel::SseHub::new().set_max_topics_per_stream(4);
    /// ```
    pub fn set_max_topics_per_stream(&self, topics: usize) {
        self.state.borrow_mut().settings.max_topics_per_stream = topics.max(1);
    }

    /// How many distinct topics this process listens on (default 10,000); a stream asking for
    /// a new one past it answers 503. Each topic is one channel subscription, kept for the life
    /// of the process.
    ///
    /// ```
    /// workerman::channel::SseHub::new().set_max_topics(100);
    /// ```
    pub fn set_max_topics(&self, topics: usize) {
        self.state.borrow_mut().settings.max_topics = topics;
    }

    /// Subscribes `connection` (an `http://` request's) to the topics of its `topic` query
    /// parameters (`/events?topic=a&topic=b`); see [`subscribe`](Self::subscribe).
    ///
    /// ```no_run
    /// # fn f(hub: &workerman::channel::SseHub, connection: &workerman::TcpConnection, request: &workerman::protocols::http::Request) {
    /// hub.subscribe_request(connection, request);
    /// # }
    /// ```
    pub fn subscribe_request(&self, connection: &TcpConnection, request: &Request) -> bool {
        let topics: Vec<&str> = request
            .get_all()
            .filter(|(name, _)| *name == "topic")
            .map(|(_, value)| value)
            .collect();
        self.subscribe(connection, request, &topics)
    }

    /// Starts an event stream of `topics` on `connection`, answering `request`: the head, the
    /// events after the request's `Last-Event-ID` (header, or `last_event_id` query parameter)
    /// per topic, then live events. Answers 400 (and returns `false`) for no topic, too many,
    /// or a name that is empty, longer than 200 bytes or holds a control character or `,`;
    /// 503 when the process listens on too many topics.
    ///
    /// ```no_run
    /// # fn f(hub: &workerman::channel::SseHub, connection: &workerman::TcpConnection, request: &workerman::protocols::http::Request) {
    /// hub.subscribe(connection, request, &["prices", "news"]);
    /// # }
    /// ```
    pub fn subscribe(
        &self,
        connection: &TcpConnection,
        request: &Request,
        topics: &[&str],
    ) -> bool {
        let mut names: Vec<Rc<str>> = Vec::new();
        for topic in topics {
            if !valid_topic(topic) {
                refuse(connection, 400, "invalid topic name\n");
                return false;
            }
            if !names.iter().any(|name| &**name == *topic) {
                names.push(Rc::from(*topic));
            }
        }
        let (max_topics_per_stream, max_topics, retry_ms) = {
            let state = self.state.borrow();
            let settings = &state.settings;
            (
                settings.max_topics_per_stream,
                settings.max_topics,
                settings.retry_ms,
            )
        };
        if names.is_empty() {
            refuse(connection, 400, "no topic asked for\n");
            return false;
        }
        if names.len() > max_topics_per_stream {
            refuse(connection, 400, "too many topics\n");
            return false;
        }
        {
            let state = self.state.borrow();
            let new_topics = names
                .iter()
                .filter(|name| !state.topics.contains_key(&***name))
                .count();
            if state.topics.len() + new_topics > max_topics {
                drop(state);
                refuse(connection, 503, "this server listens on too many topics\n");
                return false;
            }
        }
        let last_event_id = request
            .header("last-event-id")
            .or_else(|| request.get("last_event_id"));
        let resumes = parse_last_event_id(last_event_id, names.len());

        let first_bytes = if retry_ms > 0 {
            format!("retry: {retry_ms}\n\n")
        } else {
            String::new()
        };
        connection.send(Response::new(
            200,
            [
                ("Content-Type", "text/event-stream"),
                ("Cache-Control", "no-cache"),
                ("X-Accel-Buffering", "no"),
            ],
            first_bytes,
        ));
        // The hub applies its own limit (and never lets a send be refused for a full queue,
        // which would be a hole in the stream).
        connection.set_max_send_buffer_size(usize::MAX / 4);
        for name in &names {
            listen(&self.state, name);
        }
        ensure_keep_alive(&self.state);
        ensure_broker_watch(&self.state);

        let (reference, opening, replays, fresh) = {
            let mut state = self.state.borrow_mut();
            let mut positions = Vec::with_capacity(names.len());
            let mut resets = Vec::new();
            let mut replays = Vec::new();
            let mut fresh = Vec::new();
            for (index, (name, resume)) in names.iter().zip(&resumes).enumerate() {
                let last_seen = state.topics.get(name).and_then(|topic| topic.last_seen);
                let (last_sent, catching_up) = match resume {
                    Resume::Live => {
                        // Its position comes from the channel (asked once registered below),
                        // then it goes through the replay seam: live events wait meanwhile.
                        fresh.push(index);
                        (None, Some(Vec::new()))
                    }
                    Resume::After(id) => {
                        replays.push((index, *id));
                        (Some(*id), Some(Vec::new()))
                    }
                    Resume::Malformed => {
                        resets.push(index);
                        (last_seen, None)
                    }
                };
                positions.push(Position {
                    topic: name.clone(),
                    last_sent,
                    catching_up,
                });
            }
            let subscriber = Subscriber {
                connection: connection.clone(),
                positions,
                catch_up_bytes: 0,
                quiet_steps: 0,
            };
            let cursor = subscriber.cursor();
            let mut opening = Vec::new();
            for &index in &resets {
                opening.extend(reset_event(&names[index], ResetReason::Malformed, &cursor));
            }
            state.statistics.resets += resets.len() as u64;
            let reference = state.insert(subscriber);
            for name in &names {
                if let Some(topic) = state.topics.get_mut(name) {
                    topic.subscribers.push(reference);
                }
            }
            (reference, opening, replays, fresh)
        };
        if !opening.is_empty() {
            connection.send_raw(opening);
        }
        for index in fresh {
            replay::fetch_start(&self.state, reference, index, history_arrived);
        }
        for (index, after) in replays {
            fetch_history(&self.state, reference, index, after);
        }
        true
    }

    /// Publishes `data` to `topic` through the [`Channel`] (every process, every node), and
    /// calls `done` with the new event's id (the SSE `id:` of a one-topic stream), or with the
    /// error: an invalid topic name, or a broker that is unreachable. Never silent.
    ///
    /// ```no_run
    /// # let hub = workerman::channel::SseHub::new();
    /// hub.publish("news", "hello", |result| match result {
    ///     Ok(id) => println!("published {id}"),
    ///     Err(error) => eprintln!("not published: {error}"),
    /// });
    /// ```
    pub fn publish(
        &self,
        topic: &str,
        data: impl AsRef<[u8]>,
        done: impl FnOnce(Result<EventId, Error>) + 'static,
    ) {
        if !valid_topic(topic) {
            done(Err(Error::Rejected(format!(
                "invalid topic name {topic:?}"
            ))));
            return;
        }
        Channel::publish_with(topic, data, done);
    }

    /// Closes every stream of this process (their clients reconnect after `retry:` and
    /// replay); returns how many.
    ///
    /// ```no_run
    /// # let hub = workerman::channel::SseHub::new();
    /// println!("closed {}", hub.disconnect_all());
    /// ```
    pub fn disconnect_all(&self) -> usize {
        let connections: Vec<TcpConnection> = {
            let mut state = self.state.borrow_mut();
            let all = state.all();
            for (reference, _) in &all {
                state.remove(*reference);
            }
            all.into_iter().map(|(_, connection)| connection).collect()
        };
        for connection in &connections {
            connection.close();
        }
        connections.len()
    }

    /// Forgets `connection`'s stream (call it from `on_close` to free its place at once; the
    /// hub also finds closed streams by itself, on their next event or keep-alive).
    ///
    /// ```no_run
    /// # fn f(hub: &workerman::channel::SseHub, connection: &workerman::TcpConnection) {
    /// hub.unsubscribe(connection);
    /// # }
    /// ```
    pub fn unsubscribe(&self, connection: &TcpConnection) {
        let mut state = self.state.borrow_mut();
        if let Some(&slot) = state.by_connection.get(&connection.id()) {
            state.remove(SubscriberRef {
                slot,
                connection_id: connection.id(),
            });
        }
    }

    /// What the hub did so far in this process, and what it holds now.
    ///
    /// ```
    /// let hub = workerman::channel::SseHub::new();
    /// assert_eq!(hub.statistics().queued_bytes, 0);
    /// ```
    pub fn statistics(&self) -> HubStatistics {
        let mut state = self.state.borrow_mut();
        state.queued.forget_written();
        HubStatistics {
            subscribers: state.subscriber_count,
            queued_bytes: state.queued.bytes(),
            ..state.statistics
        }
    }
}

/// A topic name the hub accepts: 1 to 200 bytes, no control character, no `,`.
fn valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= MAX_TOPIC_LEN
        && !topic
            .chars()
            .any(|character| character.is_control() || character == ',')
}

fn refuse(connection: &TcpConnection, status: u16, body: &'static str) {
    connection.send(Response::new(
        status,
        [("Content-Type", "text/plain; charset=utf-8")],
        body,
    ));
}

/// Listens on `topic` in this process, once.
fn listen(hub: &SharedState, topic: &Rc<str>) {
    if hub.borrow().topics.contains_key(topic) {
        return;
    }
    hub.borrow_mut().topics.insert(
        topic.clone(),
        Topic {
            subscribers: Vec::new(),
            last_seen: None,
        },
    );
    let weak = Rc::downgrade(hub);
    Channel::on_event(topic, move |event| {
        if let Some(hub) = weak.upgrade() {
            deliver(&hub, event);
        }
    });
}

/// Tracks the broker: when it comes back after being down, every stream catches up.
fn ensure_broker_watch(hub: &SharedState) {
    if std::mem::replace(&mut hub.borrow_mut().watching_broker, true) {
        return;
    }
    let weak = Rc::downgrade(hub);
    Channel::on_connection_state(move |up| {
        let Some(hub) = weak.upgrade() else {
            return;
        };
        if !up {
            log::warn!(
                "sse hub: the channel is down; streams stay open and catch up when it is back"
            );
            hub.borrow_mut().broker_down = true;
            return;
        }
        if std::mem::replace(&mut hub.borrow_mut().broker_down, false) {
            replay::catch_up_after_outage(&hub, history_arrived);
        }
    });
}

/// One timer per process, every quarter keep-alive period: a keep-alive comment to every stream
/// that has had no event for a whole period (so no stream is silent for longer, and one with an
/// event at least every 3/4 period gets no comment at all), and closed streams forgotten.
fn ensure_keep_alive(hub: &SharedState) {
    let seconds = {
        let mut state = hub.borrow_mut();
        if std::mem::replace(&mut state.keep_alive_started, true) {
            return;
        }
        state.settings.keep_alive_secs
    };
    let weak: Weak<RefCell<HubState>> = Rc::downgrade(hub);
    let interval = if seconds > 0.0 {
        seconds / f64::from(state::KEEP_ALIVE_STEPS)
    } else {
        15.0
    };
    let comment = SharedMessage::event(&ServerSentEvents::new().comment("keep-alive"));
    Timer::add(interval, move |timer_id| {
        let Some(hub) = weak.upgrade() else {
            Timer::del(timer_id);
            return;
        };
        let connections = {
            let mut state = hub.borrow_mut();
            state.sweep_closed();
            if seconds <= 0.0 {
                return;
            }
            state.quiet_for_a_period()
        };
        let mut outcome = SendOutcome::default();
        for (reference, connection) in &connections {
            send_checked(&hub, *reference, connection, &comment, &mut outcome);
        }
        finish_sends(&hub, &comment, outcome);
    });
}

/// What a round of sends did, applied to the state after (no borrow is held across a send,
/// which may run `on_close`).
#[derive(Default)]
struct SendOutcome {
    gone: Vec<SubscriberRef>,
    cut_slow: u64,
}

/// Sends `message`; a refused send (a closed connection) or a queue past the limit ends the
/// stream: the subscriber never gets a stream with a hole in it.
fn send_checked(
    hub: &SharedState,
    reference: SubscriberRef,
    connection: &TcpConnection,
    message: &SharedMessage,
    outcome: &mut SendOutcome,
) -> bool {
    match connection.send(message) {
        SendResult::Written => true,
        SendResult::Queued => check_queue(hub, reference, connection, outcome),
        SendResult::Refused => {
            connection.destroy();
            outcome.gone.push(reference);
            false
        }
    }
}

/// Cuts `connection` if its queue passed the per-subscriber limit (under that policy).
fn check_queue(
    hub: &SharedState,
    reference: SubscriberRef,
    connection: &TcpConnection,
    outcome: &mut SendOutcome,
) -> bool {
    let (policy, limit) = {
        let state = hub.borrow();
        (
            state.settings.slow_consumer_policy,
            state.settings.max_send_buffer_size,
        )
    };
    if policy == SlowConsumerPolicy::Disconnect && connection.send_buffer_queue_size() > limit {
        log::info!(
            "sse hub: connection {} is {} bytes behind (limit {limit}): disconnected, it will replay",
            connection.id(),
            connection.send_buffer_queue_size()
        );
        connection.destroy();
        outcome.gone.push(reference);
        outcome.cut_slow += 1;
        return false;
    }
    true
}

/// Says how many streams a round cut for their send-queue limit (one line, not one per stream).
fn log_cut_slow(state: &HubState, cut: u64) {
    if cut > 0 {
        log::warn!(
            "sse hub: {cut} streams passed their send-queue limit ({} bytes): disconnected, they \
             reconnect and replay",
            state.settings.max_send_buffer_size
        );
    }
}

/// Applies a round's outcome, counts what `message` left queued, and enforces the bound.
fn finish_sends(hub: &SharedState, message: &SharedMessage, outcome: SendOutcome) {
    let over = {
        let mut state = hub.borrow_mut();
        for reference in outcome.gone {
            state.remove(reference);
        }
        state.statistics.cut_slow += outcome.cut_slow;
        log_cut_slow(&state, outcome.cut_slow);
        state.queued.note(message);
        state.queued.bytes() > state.settings.max_queued_bytes
    };
    if over {
        cut_furthest_behind(hub);
    }
}

/// Cuts the subscribers with the longest queues until the shared bytes queued are back under
/// three quarters of the bound.
fn cut_furthest_behind(hub: &SharedState) {
    let (all, target) = {
        let state = hub.borrow();
        (state.all(), state.settings.max_queued_bytes / 4 * 3)
    };
    let mut behind: Vec<(usize, SubscriberRef, TcpConnection)> = all
        .into_iter()
        .map(|(reference, connection)| (connection.send_buffer_queue_size(), reference, connection))
        .filter(|(queued, _, _)| *queued > 0)
        .collect();
    behind.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    let mut cut = 0u64;
    for (queued, reference, connection) in behind {
        log::info!(
            "sse hub: connection {} cut ({queued} bytes behind): this process's queues passed their bound",
            connection.id()
        );
        connection.destroy();
        cut += 1;
        let mut state = hub.borrow_mut();
        state.remove(reference);
        state.queued.forget_written();
        if state.queued.bytes() <= target {
            break;
        }
    }
    let mut state = hub.borrow_mut();
    state.statistics.cut_for_queued_bytes += cut;
    log::warn!(
        "sse hub: this process's send queues passed their bound ({} bytes of shared events): {cut} \
         streams cut, furthest behind first; they reconnect and replay",
        state.settings.max_queued_bytes
    );
}

/// A live event of a topic this process listens on: encoded once, sent to every subscriber
/// that is live on it, held back for those still catching up.
fn deliver(hub: &SharedState, event: &ChannelEvent) {
    let mut single: Vec<(SubscriberRef, TcpConnection)> = Vec::new();
    let mut several: Vec<(SubscriberRef, TcpConnection, String)> = Vec::new();
    let mut overflowing: Vec<(SubscriberRef, TcpConnection)> = Vec::new();
    {
        let mut guard = hub.borrow_mut();
        let state = &mut *guard;
        let max_catch_up = state.settings.max_catch_up_bytes;
        let Some(topic) = state.topics.get_mut(&*event.event) else {
            return;
        };
        if topic.last_seen.is_none_or(|seen| seen < event.id) {
            topic.last_seen = Some(event.id);
        }
        let slots = &mut state.slots;
        topic.subscribers.retain(|reference| {
            let Some(subscriber) = slots
                .get_mut(reference.slot)
                .and_then(Option::as_mut)
                .filter(|subscriber| subscriber.connection.id() == reference.connection_id)
            else {
                return false;
            };
            let Some(index) = subscriber.position_of(&event.event) else {
                return false;
            };
            let catch_up_bytes = &mut subscriber.catch_up_bytes;
            let position = &mut subscriber.positions[index];
            if let Some(held) = position.catching_up.as_mut() {
                if *catch_up_bytes + event.data.len() > max_catch_up {
                    overflowing.push((*reference, subscriber.connection.clone()));
                } else {
                    *catch_up_bytes += event.data.len();
                    held.push(event.clone());
                }
                return true;
            }
            if position.last_sent.is_some_and(|sent| sent >= event.id) {
                return true;
            }
            position.last_sent = Some(event.id);
            subscriber.quiet_steps = 0;
            if subscriber.positions.len() == 1 {
                single.push((*reference, subscriber.connection.clone()));
            } else {
                several.push((
                    *reference,
                    subscriber.connection.clone(),
                    format_cursor(&subscriber.cursor()),
                ));
            }
            true
        });
    }
    let data = String::from_utf8_lossy(&event.data).into_owned();
    if !single.is_empty() {
        // Encoded once for everyone on this topic alone.
        let message = SharedMessage::event(
            &ServerSentEvents::new()
                .event(event.event.to_string())
                .id(event.id)
                .data(data.clone()),
        );
        let mut outcome = SendOutcome::default();
        for (reference, connection) in &single {
            send_checked(hub, *reference, connection, &message, &mut outcome);
        }
        finish_sends(hub, &message, outcome);
    }
    if !several.is_empty() {
        // The fields but the id, encoded once; each stream's own `id:` line ends the event.
        let mut fields = ServerSentEvents::new()
            .event(event.event.to_string())
            .data(data)
            .to_bytes();
        fields.pop();
        let message = SharedMessage::raw(fields);
        let mut outcome = SendOutcome::default();
        for (reference, connection, cursor) in &several {
            if send_checked(hub, *reference, connection, &message, &mut outcome) {
                let result = connection.send_raw(format!("id: {cursor}\n\n"));
                match result {
                    SendResult::Written => {}
                    SendResult::Queued => {
                        check_queue(hub, *reference, connection, &mut outcome);
                    }
                    SendResult::Refused => {
                        connection.destroy();
                        outcome.gone.push(*reference);
                    }
                }
            }
        }
        finish_sends(hub, &message, outcome);
    }
    if !overflowing.is_empty() {
        let mut state = hub.borrow_mut();
        state.statistics.cut_catching_up += overflowing.len() as u64;
        log::warn!(
            "sse hub: {} streams held more than {} bytes of live events back while catching up: \
             disconnected, they reconnect and replay",
            overflowing.len(),
            state.settings.max_catch_up_bytes
        );
        for (reference, _) in &overflowing {
            state.remove(*reference);
        }
        drop(state);
        for (_, connection) in &overflowing {
            log::info!(
                "sse hub: connection {} held too many live events back while catching up: disconnected",
                connection.id()
            );
            connection.destroy();
        }
    }
}

/// One event as a stream's bytes (for replays, which are each stream's own).
fn encode_event(topic: &str, event: &ChannelEvent, cursor: &str, into: &mut Vec<u8>) {
    let data = String::from_utf8_lossy(&event.data).into_owned();
    into.extend(
        ServerSentEvents::new()
            .event(topic.to_string())
            .id(cursor.to_string())
            .data(data)
            .to_bytes(),
    );
}

/// Asks the channel for a subscriber's history of one topic after `after` (see [`replay`]:
/// retried while the channel is up, held while it is down).
fn fetch_history(hub: &SharedState, reference: SubscriberRef, index: usize, after: EventId) {
    let topic = {
        let state = hub.borrow();
        let Some(subscriber) = state.subscriber(reference) else {
            return;
        };
        subscriber.positions[index].topic.clone()
    };
    replay::fetch(
        hub,
        Replay {
            topic,
            after,
            members: vec![(reference, index)],
            failures: 0,
        },
        history_arrived,
    );
}

/// What to do once a page of history was sent.
enum Next {
    /// More history may follow: ask for the page after this id.
    Page(EventId),
    /// Caught up: live from now on.
    Live,
}

fn history_arrived(
    hub: &SharedState,
    reference: SubscriberRef,
    index: usize,
    page: usize,
    history: History,
) {
    let mut bytes = Vec::new();
    let connection;
    let next;
    {
        let mut guard = hub.borrow_mut();
        let state = &mut *guard;
        let Some(subscriber) = state.subscriber_mut(reference) else {
            return;
        };
        connection = subscriber.connection.clone();
        let several = subscriber.positions.len() > 1;
        match history {
            History::Gap => {
                let held = subscriber.positions[index]
                    .catching_up
                    .take()
                    .unwrap_or_default();
                let topic = subscriber.positions[index].topic.clone();
                let last_seen = state.topics.get(&topic).and_then(|topic| topic.last_seen);
                let subscriber = state.subscriber_mut(reference).expect("looked up above");
                subscriber.positions[index].last_sent =
                    if held.is_empty() { last_seen } else { None };
                bytes.extend(reset_event(&topic, ResetReason::Gap, &subscriber.cursor()));
                emit(subscriber, index, &held, several, &mut bytes);
                subscriber.catch_up_bytes =
                    subscriber.catch_up_bytes.saturating_sub(held_bytes(&held));
                state.statistics.resets += 1;
                next = Next::Live;
            }
            History::After(events) => {
                let full_page = events.len() >= page;
                emit(subscriber, index, &events, several, &mut bytes);
                if full_page {
                    next = match subscriber.positions[index].last_sent {
                        Some(last) => Next::Page(last),
                        None => Next::Live,
                    };
                } else {
                    let held = subscriber.positions[index]
                        .catching_up
                        .take()
                        .unwrap_or_default();
                    emit(subscriber, index, &held, several, &mut bytes);
                    subscriber.catch_up_bytes =
                        subscriber.catch_up_bytes.saturating_sub(held_bytes(&held));
                    next = Next::Live;
                }
            }
        }
    }
    if !bytes.is_empty() {
        let mut outcome = SendOutcome::default();
        let kept = match connection.send_raw(bytes) {
            SendResult::Written => true,
            SendResult::Queued => check_queue(hub, reference, &connection, &mut outcome),
            SendResult::Refused => {
                connection.destroy();
                outcome.gone.push(reference);
                false
            }
        };
        {
            let mut state = hub.borrow_mut();
            for reference in outcome.gone {
                state.remove(reference);
            }
            state.statistics.cut_slow += outcome.cut_slow;
            log_cut_slow(&state, outcome.cut_slow);
        }
        if !kept {
            return;
        }
    }
    if let Next::Page(after) = next {
        next_page_when_drained(hub, reference, index, after);
    }
}

/// Asks for the next page once the stream's queue is under half its limit (a replay never
/// outruns its reader by more than that).
fn next_page_when_drained(
    hub: &SharedState,
    reference: SubscriberRef,
    index: usize,
    after: EventId,
) {
    let (connection, limit) = {
        let state = hub.borrow();
        let Some(subscriber) = state.subscriber(reference) else {
            return;
        };
        (
            subscriber.connection.clone(),
            state.settings.max_send_buffer_size,
        )
    };
    if connection.send_buffer_queue_size() <= limit / 2 {
        fetch_history(hub, reference, index, after);
        return;
    }
    let weak = Rc::downgrade(hub);
    connection.add_timer(0.05, move |connection, timer_id| {
        let Some(hub) = weak.upgrade() else {
            Timer::del(timer_id);
            return;
        };
        if hub.borrow().subscriber(reference).is_none() {
            Timer::del(timer_id);
            return;
        }
        if connection.send_buffer_queue_size() <= limit / 2 {
            Timer::del(timer_id);
            fetch_history(&hub, reference, index, after);
        }
    });
}

fn held_bytes(events: &[ChannelEvent]) -> usize {
    events.iter().map(|event| event.data.len()).sum()
}

/// Appends the events of position `index` newer than what the stream has, advancing it.
fn emit(
    subscriber: &mut Subscriber,
    index: usize,
    events: &[ChannelEvent],
    several: bool,
    bytes: &mut Vec<u8>,
) {
    for event in events {
        let position = &mut subscriber.positions[index];
        if position.last_sent.is_some_and(|sent| sent >= event.id) {
            continue;
        }
        position.last_sent = Some(event.id);
        let topic = position.topic.clone();
        let cursor = if several {
            format_cursor(&subscriber.cursor())
        } else {
            event.id.to_string()
        };
        encode_event(&topic, event, &cursor, bytes);
    }
}
