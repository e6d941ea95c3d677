//! The hub's per-process state: topics and their subscribers, each subscriber's position per
//! topic, and its catch-up buffers while its history is fetched.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::TcpConnection;
use crate::channel::{ChannelEvent, EventId};

use super::queued_bytes::QueuedBytes;
use super::settings::HubSettings;
use super::statistics::HubStatistics;

/// The keep-alive timer's steps per period: a stream gets its comment after between 3/4 of a
/// period and a period of silence, and none while it has an event at least every 3/4 period.
pub(crate) const KEEP_ALIVE_STEPS: u8 = 4;

/// A subscriber as a topic lists it: its slot and its connection's id (a reused slot holds
/// another connection, which this reference then does not match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SubscriberRef {
    pub slot: usize,
    pub connection_id: u64,
}

pub(crate) struct Topic {
    pub subscribers: Vec<SubscriberRef>,
    /// The newest event this process delivered live for the topic.
    pub last_seen: Option<EventId>,
}

/// One topic of one subscriber.
pub(crate) struct Position {
    pub topic: Rc<str>,
    /// The id of the last event of this topic sent on the stream (or its starting point).
    pub last_sent: Option<EventId>,
    /// While its history is fetched: the live events that arrived meanwhile.
    pub catching_up: Option<Vec<ChannelEvent>>,
}

pub(crate) struct Subscriber {
    pub connection: TcpConnection,
    pub positions: Vec<Position>,
    /// Bytes of data in the catch-up buffers.
    pub catch_up_bytes: usize,
    /// Keep-alive steps (quarter periods) since an event was last sent on the stream: a
    /// keep-alive comment goes only to a stream that has been quiet for a whole period.
    pub quiet_steps: u8,
}

impl Subscriber {
    /// Its reference as the subscriber in `slot`, and its connection.
    fn listed_at(&self, slot: usize) -> (SubscriberRef, TcpConnection) {
        let reference = SubscriberRef {
            slot,
            connection_id: self.connection.id(),
        };
        (reference, self.connection.clone())
    }

    pub(crate) fn position_of(&self, topic: &str) -> Option<usize> {
        self.positions
            .iter()
            .position(|position| &*position.topic == topic)
    }

    pub(crate) fn cursor(&self) -> Vec<Option<EventId>> {
        self.positions
            .iter()
            .map(|position| position.last_sent)
            .collect()
    }
}

/// A hub's state, shared by its clones in one process.
pub(crate) type SharedState = Rc<RefCell<HubState>>;

/// One history request and the streams (subscriber, position index) waiting for it: streams at
/// the same position of a topic share one (see `replay.rs`).
pub(crate) struct Replay {
    pub topic: Rc<str>,
    pub after: EventId,
    pub members: Vec<(SubscriberRef, usize)>,
    /// Attempts that failed while the channel was up.
    pub failures: u32,
}

/// The fresh streams of one topic waiting for its position: one `last_id` request at a time
/// per topic; streams that come meanwhile wait for the next one.
#[derive(Default)]
pub(crate) struct StartBatch {
    pub in_flight: bool,
    pub waiting: Vec<(SubscriberRef, usize)>,
    /// Requests of this topic that failed in a row.
    pub failures: u32,
}

#[derive(Default)]
pub(crate) struct HubState {
    pub settings: HubSettings,
    pub topics: HashMap<Rc<str>, Topic>,
    pub slots: Vec<Option<Subscriber>>,
    pub free_slots: Vec<usize>,
    /// Connection id → slot.
    pub by_connection: HashMap<u64, usize>,
    pub subscriber_count: usize,
    pub queued: QueuedBytes,
    pub statistics: HubStatistics,
    pub keep_alive_started: bool,
    pub watching_broker: bool,
    pub broker_down: bool,
    /// Replays whose request failed while the channel was down: sent again when it is back.
    pub stalled: Vec<Replay>,
    /// Per topic: the fresh streams waiting for its position.
    pub starts: HashMap<Rc<str>, StartBatch>,
}

impl HubState {
    pub(crate) fn subscriber(&self, reference: SubscriberRef) -> Option<&Subscriber> {
        self.slots
            .get(reference.slot)?
            .as_ref()
            .filter(|subscriber| subscriber.connection.id() == reference.connection_id)
    }

    pub(crate) fn subscriber_mut(&mut self, reference: SubscriberRef) -> Option<&mut Subscriber> {
        self.slots
            .get_mut(reference.slot)?
            .as_mut()
            .filter(|subscriber| subscriber.connection.id() == reference.connection_id)
    }

    pub(crate) fn insert(&mut self, subscriber: Subscriber) -> SubscriberRef {
        let connection_id = subscriber.connection.id();
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slots[slot] = Some(subscriber);
                slot
            }
            None => {
                self.slots.push(Some(subscriber));
                self.slots.len() - 1
            }
        };
        self.subscriber_count += 1;
        self.by_connection.insert(connection_id, slot);
        SubscriberRef {
            slot,
            connection_id,
        }
    }

    /// Forgets a subscriber (topics drop their references lazily, on their next event).
    pub(crate) fn remove(&mut self, reference: SubscriberRef) -> Option<Subscriber> {
        self.subscriber(reference)?;
        let subscriber = self.slots[reference.slot].take();
        self.by_connection.remove(&reference.connection_id);
        self.free_slots.push(reference.slot);
        self.subscriber_count -= 1;
        subscriber
    }

    /// Forgets every subscriber whose connection is gone; returns how many.
    pub(crate) fn sweep_closed(&mut self) -> usize {
        let mut swept = 0;
        for slot in 0..self.slots.len() {
            let closed = self.slots[slot].as_ref().is_some_and(|subscriber| {
                subscriber.connection.status() != TcpConnection::STATUS_ESTABLISHED
            });
            if closed {
                if let Some(subscriber) = self.slots[slot].take() {
                    self.by_connection.remove(&subscriber.connection.id());
                }
                self.free_slots.push(slot);
                self.subscriber_count -= 1;
                swept += 1;
            }
        }
        if swept > 0 {
            for topic in self.topics.values_mut() {
                let slots = &self.slots;
                topic.subscribers.retain(|reference| {
                    slots[reference.slot].as_ref().is_some_and(|subscriber| {
                        subscriber.connection.id() == reference.connection_id
                    })
                });
            }
        }
        swept
    }

    /// Every subscriber's connection, with a reference to it.
    /// One keep-alive step has passed: the streams that have now been quiet for a whole period
    /// ([`KEEP_ALIVE_STEPS`] steps without an event), whose count starts again.
    pub(crate) fn quiet_for_a_period(&mut self) -> Vec<(SubscriberRef, TcpConnection)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(slot, subscriber)| {
                let subscriber = subscriber.as_mut()?;
                subscriber.quiet_steps = subscriber.quiet_steps.saturating_add(1);
                if subscriber.quiet_steps < KEEP_ALIVE_STEPS {
                    return None;
                }
                subscriber.quiet_steps = 0;
                Some(subscriber.listed_at(slot))
            })
            .collect()
    }

    pub(crate) fn all(&self) -> Vec<(SubscriberRef, TcpConnection)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, subscriber)| Some(subscriber.as_ref()?.listed_at(slot)))
            .collect()
    }
}
