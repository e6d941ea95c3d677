//! Replays through the channel's history: one request per topic and position in this process
//! (streams at the same position share it), retried while the channel is up, and held until it
//! is back while it is down.
//!
//! After an outage every stream of a process that was live on a topic sits at the same
//! position (the last event the process delivered), so the catch-up asks the history once per
//! topic, not once per stream: 15,000 streams make one request, not 15,000 that the broker must
//! answer within the request timeout. A request that fails while the channel is up is tried
//! again [`ATTEMPTS`] times in all before its streams are closed (they reconnect and replay);
//! one that fails because the channel went down waits, with its streams still holding their
//! live events back, and goes again when the channel is back.
//!
//! Every member of a group is registered for live events before the group's request is sent,
//! so the seam between history and live holds for each of them as for a request of its own.

use std::collections::HashMap;
use std::rc::{Rc, Weak};

use super::cursor::{ResetReason, format_cursor, reset_event};
use super::state::{HubState, Replay, SharedState, SubscriberRef};
use crate::Timer;
use crate::channel::{Channel, Error, EventId, History};

/// How many times a history request is sent while the channel is up before its streams are
/// closed.
pub(crate) const ATTEMPTS: u32 = 3;
/// Seconds between two attempts.
const RETRY_SECONDS: f64 = 1.0;

/// The position before every event: where a topic with nothing kept starts.
const START: EventId = EventId::new(0, 0);

/// A fresh stream's topic `index` needs its position from the channel (asked after its live
/// registration, so whatever is published from then on is either in the history after that
/// position or held live). The fresh streams of a topic share one `last_id` request at a time:
/// those that come while one is on the way wait for the next, so every stream of a request was
/// registered before it was sent. Each is told its position at once with an `id:` line alone
/// (a browser sets lastEventId without dispatching an event), then replays from there, with
/// one history request for them all.
pub(crate) fn fetch_start(
    hub: &SharedState,
    reference: SubscriberRef,
    index: usize,
    arrived: Arrived,
) {
    let topic = {
        let mut state = hub.borrow_mut();
        let Some(subscriber) = state.subscriber(reference) else {
            return;
        };
        let topic = subscriber.positions[index].topic.clone();
        let batch = state.starts.entry(topic.clone()).or_default();
        batch.waiting.push((reference, index));
        if batch.in_flight {
            return;
        }
        topic
    };
    send_start(hub, topic, arrived);
}

/// Sends the `last_id` request of `topic` for the streams waiting for it.
fn send_start(hub: &SharedState, topic: Rc<str>, arrived: Arrived) {
    let members = {
        let mut state = hub.borrow_mut();
        let Some(batch) = state.starts.get_mut(&topic) else {
            return;
        };
        if batch.in_flight || batch.waiting.is_empty() {
            return;
        }
        batch.in_flight = true;
        std::mem::take(&mut batch.waiting)
    };
    hub.borrow_mut().statistics.history_requests += 1;
    let weak = Rc::downgrade(hub);
    let name = topic.clone();
    Channel::last_id(&name, move |result| {
        let Some(hub) = weak.upgrade() else { return };
        match result {
            Ok(id) => {
                let after = id.unwrap_or(START);
                let mut lines = Vec::with_capacity(members.len());
                let mut live = Vec::with_capacity(members.len());
                {
                    let mut state = hub.borrow_mut();
                    if let Some(batch) = state.starts.get_mut(&topic) {
                        batch.in_flight = false;
                        batch.failures = 0;
                    }
                    for &(reference, index) in &members {
                        let Some(subscriber) = state.subscriber_mut(reference) else {
                            continue;
                        };
                        subscriber.positions[index].last_sent = Some(after);
                        lines.push((
                            subscriber.connection.clone(),
                            format!("id: {}\n\n", format_cursor(&subscriber.cursor())),
                        ));
                        live.push((reference, index));
                    }
                }
                for (connection, line) in lines {
                    connection.send_raw(line);
                }
                if !live.is_empty() {
                    fetch(
                        &hub,
                        Replay {
                            topic: topic.clone(),
                            after,
                            members: live,
                            failures: 0,
                        },
                        arrived,
                    );
                }
                send_start(&hub, topic, arrived);
            }
            Err(error) => start_failed(&hub, topic, members, &error, arrived),
        }
    });
}

/// A `last_id` request failed: its streams wait for the next one (after a second), up to
/// [`ATTEMPTS`] requests in a row; then they are closed (they reconnect and start again).
fn start_failed(
    hub: &SharedState,
    topic: Rc<str>,
    mut members: Vec<(SubscriberRef, usize)>,
    error: &Error,
    arrived: Arrived,
) {
    let closed = {
        let mut state = hub.borrow_mut();
        members.retain(|&(reference, _)| state.subscriber(reference).is_some());
        let Some(batch) = state.starts.get_mut(&topic) else {
            return;
        };
        batch.in_flight = false;
        batch.failures += 1;
        if batch.failures < ATTEMPTS {
            let waiting = members.len() + batch.waiting.len();
            log::warn!(
                "sse hub: the position of {topic:?} is unreachable ({error}); asking again in \
                 {RETRY_SECONDS} s for {waiting} fresh streams (attempt {} of {ATTEMPTS})",
                batch.failures + 1
            );
            members.append(&mut batch.waiting);
            batch.waiting = members;
            batch.in_flight = true;
            None
        } else {
            batch.failures = 0;
            state.statistics.replay_failures += members.len() as u64;
            let connections: Vec<_> = members
                .iter()
                .filter_map(|&(reference, _)| state.remove(reference))
                .map(|subscriber| subscriber.connection)
                .collect();
            Some(connections)
        }
    };
    match closed {
        None => {
            let weak = Rc::downgrade(hub);
            Timer::once(RETRY_SECONDS, move || {
                let Some(hub) = weak.upgrade() else { return };
                if let Some(batch) = hub.borrow_mut().starts.get_mut(&topic) {
                    batch.in_flight = false;
                }
                send_start(&hub, topic, arrived);
            });
        }
        Some(connections) => {
            log::warn!(
                "sse hub: the position of {topic:?} is unreachable after {ATTEMPTS} attempts \
                 ({error}): {} fresh streams closed, their clients retry",
                connections.len()
            );
            for connection in connections {
                connection.close();
            }
            send_start(hub, topic, arrived);
        }
    }
}

/// What to do with a page of history for one member: the hub's `history_arrived`.
pub(crate) type Arrived = fn(&SharedState, SubscriberRef, usize, usize, History);

/// Asks the history of `replay.topic` after `replay.after` for every member.
pub(crate) fn fetch(hub: &SharedState, replay: Replay, arrived: Arrived) {
    let page = hub.borrow().settings.replay_page;
    let weak: Weak<_> = Rc::downgrade(hub);
    let topic = replay.topic.clone();
    let after = replay.after;
    hub.borrow_mut().statistics.history_requests += 1;
    Channel::history(&topic, &after, page, move |result| {
        let Some(hub) = weak.upgrade() else { return };
        match result {
            Ok(history) => {
                for &(reference, index) in &replay.members {
                    arrived(&hub, reference, index, page, history.clone());
                }
            }
            Err(error) => failed(&hub, replay, &error, arrived),
        }
    });
}

/// The members still waiting: open, and still catching up on that position.
fn waiting(state: &HubState, replay: &mut Replay) {
    replay.members.retain(|&(reference, index)| {
        state.subscriber(reference).is_some_and(|subscriber| {
            subscriber
                .positions
                .get(index)
                .is_some_and(|position| position.catching_up.is_some())
        })
    });
}

fn failed(hub: &SharedState, mut replay: Replay, error: &Error, arrived: Arrived) {
    let down = {
        let state = hub.borrow();
        waiting(&state, &mut replay);
        state.broker_down
    };
    if replay.members.is_empty() {
        return;
    }
    let streams = replay.members.len();
    let topic = replay.topic.clone();
    if down {
        log::warn!(
            "sse hub: the history of {topic:?} is unreachable ({error}); {streams} streams keep \
             holding their live events and replay when the channel is back"
        );
        hub.borrow_mut().stalled.push(replay);
        return;
    }
    replay.failures += 1;
    if replay.failures < ATTEMPTS {
        log::warn!(
            "sse hub: the history of {topic:?} is unreachable ({error}); asking again in \
             {RETRY_SECONDS} s for {streams} streams (attempt {} of {ATTEMPTS})",
            replay.failures + 1
        );
        let weak = Rc::downgrade(hub);
        Timer::once(RETRY_SECONDS, move || {
            let Some(hub) = weak.upgrade() else { return };
            let mut replay = replay;
            if hub.borrow().broker_down {
                waiting(&hub.borrow(), &mut replay);
                hub.borrow_mut().stalled.push(replay);
                return;
            }
            fetch(&hub, replay, arrived);
        });
        return;
    }
    log::warn!(
        "sse hub: the history of {topic:?} is unreachable after {ATTEMPTS} attempts ({error}): \
         {streams} streams closed, their clients retry with their Last-Event-ID"
    );
    let connections: Vec<_> = {
        let mut state = hub.borrow_mut();
        state.statistics.replay_failures += streams as u64;
        replay
            .members
            .iter()
            .filter_map(|&(reference, _)| state.remove(reference))
            .map(|subscriber| subscriber.connection)
            .collect()
    };
    for connection in connections {
        connection.close();
    }
}

/// After an outage: every live position replays what it may have missed, one request per topic
/// and position (or gets a reset when it has no position), and the replays the outage held
/// back go again.
pub(crate) fn catch_up_after_outage(hub: &SharedState, arrived: Arrived) {
    let mut groups: Vec<Replay> = Vec::new();
    let mut resets = Vec::new();
    {
        let mut guard = hub.borrow_mut();
        let state = &mut *guard;
        let mut by_position: HashMap<(Rc<str>, EventId), usize> = HashMap::new();
        for (slot, subscriber) in state.slots.iter_mut().enumerate() {
            let Some(subscriber) = subscriber.as_mut() else {
                continue;
            };
            let reference = SubscriberRef {
                slot,
                connection_id: subscriber.connection.id(),
            };
            let mut bytes = Vec::new();
            for index in 0..subscriber.positions.len() {
                let position = &mut subscriber.positions[index];
                if position.catching_up.is_some() {
                    continue;
                }
                match position.last_sent {
                    Some(after) => {
                        position.catching_up = Some(Vec::new());
                        let group = *by_position
                            .entry((position.topic.clone(), after))
                            .or_insert_with(|| {
                                groups.push(Replay {
                                    topic: position.topic.clone(),
                                    after,
                                    members: Vec::new(),
                                    failures: 0,
                                });
                                groups.len() - 1
                            });
                        groups[group].members.push((reference, index));
                    }
                    None => {
                        let topic = position.topic.clone();
                        bytes.extend(reset_event(
                            &topic,
                            ResetReason::Outage,
                            &subscriber.cursor(),
                        ));
                    }
                }
            }
            if !bytes.is_empty() {
                resets.push((subscriber.connection.clone(), bytes));
            }
        }
        state.statistics.resets += resets.len() as u64;
        let stalled = std::mem::take(&mut state.stalled);
        groups.extend(stalled);
    }
    let streams: usize = groups.iter().map(|group| group.members.len()).sum();
    if streams > 0 {
        log::warn!(
            "sse hub: the channel is back: {streams} stream positions catch up with {} history \
             requests",
            groups.len()
        );
    }
    for (connection, bytes) in resets {
        connection.send_raw(bytes);
    }
    for group in groups {
        fetch(hub, group, arrived);
    }
}
