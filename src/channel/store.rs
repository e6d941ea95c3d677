//! The bounded history of the in-process transport and of the relay: one ring per event, ids
//! from one counter, and the rule that says when a query is a [`History::Gap`].

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::event::{ChannelEvent, EventId, History};

/// The default ring length per event.
pub(crate) const DEFAULT_HISTORY_SIZE: usize = 1000;

/// Every event's ring, and the counter their ids come from.
pub(crate) struct Store {
    epoch: u64,
    last_sequence: u64,
    capacity: usize,
    rings: HashMap<Rc<str>, Ring>,
}

struct Ring {
    name: Rc<str>,
    entries: VecDeque<ChannelEvent>,
    /// The sequence of the newest entry dropped from this ring (0: none yet).
    evicted: u64,
}

/// Milliseconds since the Unix epoch: a new store's epoch.
pub(crate) fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |elapsed| elapsed.as_millis() as u64)
        .max(1)
}

impl Store {
    /// An empty store whose ids start with `epoch`.
    pub(crate) fn new(epoch: u64, capacity: usize) -> Store {
        Store {
            epoch,
            last_sequence: 0,
            capacity,
            rings: HashMap::new(),
        }
    }

    /// Sets the ring length per event; longer rings lose their oldest entries now.
    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        for ring in self.rings.values_mut() {
            ring.trim(capacity);
        }
    }

    /// Gives the next id to a new event of `event`, keeps it, and returns it.
    pub(crate) fn append(&mut self, event: &str, data: Rc<[u8]>) -> ChannelEvent {
        self.last_sequence += 1;
        let id = EventId::new(self.epoch, self.last_sequence);
        if !self.rings.contains_key(event) {
            self.rings
                .insert(Rc::from(event), Ring::new(Rc::from(event)));
        }
        let capacity = self.capacity;
        let ring = self.rings.get_mut(event).expect("inserted above");
        let entry = ChannelEvent {
            id,
            event: ring.name.clone(),
            data,
        };
        ring.entries.push_back(entry.clone());
        ring.trim(capacity);
        entry
    }

    /// The id of the newest kept event of `event`, if any.
    pub(crate) fn last_id(&self, event: &str) -> Option<EventId> {
        self.rings.get(event)?.entries.back().map(|entry| entry.id)
    }

    /// The kept events of `event` after `after` (at most `limit`), or `Gap`. `0-0` is before
    /// every event of every epoch: all of the ring, or `Gap` once the ring dropped one.
    pub(crate) fn history(&self, event: &str, after: &EventId, limit: usize) -> History {
        let (epoch, sequence) = after.parts();
        let from_start = (epoch, sequence) == (0, 0);
        if !from_start && (epoch != self.epoch || sequence > self.last_sequence) {
            return History::Gap;
        }
        let Some(ring) = self.rings.get(event) else {
            return History::After(Vec::new());
        };
        if sequence < ring.evicted || (from_start && ring.evicted > 0) {
            return History::Gap;
        }
        let start = ring.entries.partition_point(|entry| entry.id <= *after);
        History::After(
            ring.entries
                .iter()
                .skip(start)
                .take(limit)
                .cloned()
                .collect(),
        )
    }
}

impl Ring {
    fn new(name: Rc<str>) -> Ring {
        Ring {
            name,
            entries: VecDeque::new(),
            evicted: 0,
        }
    }

    fn trim(&mut self, capacity: usize) {
        while self.entries.len() > capacity {
            if let Some(dropped) = self.entries.pop_front() {
                self.evicted = dropped.id.parts().1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(text: &str) -> Rc<[u8]> {
        Rc::from(text.as_bytes())
    }

    #[test]
    fn ids_grow_across_events_and_history_is_per_event() {
        let mut store = Store::new(5, 10);
        let a1 = store.append("a", data("1"));
        let b1 = store.append("b", data("2"));
        let a2 = store.append("a", data("3"));
        assert!(a1.id < b1.id && b1.id < a2.id);
        assert_eq!(a1.id, EventId::new(5, 1));
        let History::After(after) = store.history("a", &a1.id, 10) else {
            panic!("gap")
        };
        assert_eq!(after, vec![a2.clone()]);
        // An id of another event orders them too.
        let History::After(after) = store.history("a", &b1.id, 10) else {
            panic!("gap")
        };
        assert_eq!(after, vec![a2]);
        assert_eq!(
            store.history("never", &a1.id, 10),
            History::After(Vec::new())
        );
    }

    #[test]
    fn evicted_other_epoch_and_future_ids_are_gaps() {
        // One kept: the second is evicted too, so after the first there is a hole; after the
        // second (evicted but seen) there is none.
        let mut store = Store::new(9, 1);
        let first = store.append("a", data("1"));
        let second = store.append("a", data("2"));
        let third = store.append("a", data("3"));
        assert_eq!(store.history("a", &first.id, 10), History::Gap);
        assert_eq!(
            store.history("a", &second.id, 10),
            History::After(vec![third.clone()])
        );
        assert_eq!(store.history("a", &third.id, 10), History::After(vec![]));
        assert_eq!(store.history("a", &EventId::new(8, 3), 10), History::Gap);
        assert_eq!(store.history("a", &EventId::new(9, 4), 10), History::Gap);
        assert_eq!(store.history("a", &EventId::new(9, 0), 10), History::Gap);
    }

    #[test]
    fn last_id_and_the_start_position() {
        let mut store = Store::new(3, 2);
        assert_eq!(store.last_id("a"), None);
        let start = EventId::new(0, 0);
        assert_eq!(store.history("a", &start, 10), History::After(vec![]));
        let first = store.append("a", data("1"));
        store.append("b", data("x"));
        assert_eq!(store.last_id("a"), Some(first.id));
        assert_eq!(store.history("a", &start, 10), History::After(vec![first]));
        store.append("a", data("2"));
        let third = store.append("a", data("3"));
        assert_eq!(store.last_id("a"), Some(third.id));
        // The first was dropped: from the start there is a hole.
        assert_eq!(store.history("a", &start, 10), History::Gap);
    }

    #[test]
    fn limit_and_shrinking_capacity() {
        let mut store = Store::new(1, 100);
        let ids: Vec<EventId> = (0..10)
            .map(|n| store.append("a", data(&n.to_string())).id)
            .collect();
        let History::After(page) = store.history("a", &ids[2], 3) else {
            panic!("gap")
        };
        assert_eq!(
            page.iter().map(|entry| entry.id).collect::<Vec<_>>(),
            ids[3..6].to_vec()
        );
        store.set_capacity(4);
        assert_eq!(store.history("a", &ids[4], 10), History::Gap);
        assert!(!store.history("a", &ids[5], 10).is_gap());
    }
}
