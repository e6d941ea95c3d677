//! The in-process transport: no I/O. A publish gets its id from this process's [`Store`] and
//! is delivered to this process's handlers on the next reactor turn, in publish order.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use super::event::{EventId, History};
use super::store::{self, Store};
use super::{ChannelEvent, HistoryDone, LastIdDone, PublishDone, registry};

enum Pending {
    Deliver(ChannelEvent, Option<PublishDone>),
    Answer(HistoryDone, History),
    LastId(LastIdDone, Option<EventId>),
}

thread_local! {
    static QUEUE: RefCell<VecDeque<Pending>> = const { RefCell::new(VecDeque::new()) };
    static SCHEDULED: Cell<bool> = const { Cell::new(false) };
}

/// The in-process transport's state.
pub(crate) struct Local {
    store: Store,
}

impl Local {
    pub(crate) fn new(history_size: usize) -> Local {
        Local {
            store: Store::new(store::now_epoch(), history_size),
        }
    }

    pub(crate) fn publish(&mut self, event: &str, data: &[u8], done: Option<PublishDone>) {
        let entry = self.store.append(event, Rc::from(data));
        push(Pending::Deliver(entry, done));
    }

    pub(crate) fn history(&mut self, event: &str, after: EventId, limit: usize, done: HistoryDone) {
        let answer = self.store.history(event, &after, limit);
        push(Pending::Answer(done, answer));
    }

    pub(crate) fn last_id(&mut self, event: &str, done: LastIdDone) {
        push(Pending::LastId(done, self.store.last_id(event)));
    }

    pub(crate) fn set_history_size(&mut self, n: usize) {
        self.store.set_capacity(n);
    }
}

fn push(pending: Pending) {
    QUEUE.with(|queue| queue.borrow_mut().push_back(pending));
    if crate::reactor::try_with(|_| ()).is_some()
        && !SCHEDULED.with(|scheduled| scheduled.replace(true))
    {
        crate::timer::Timer::once(0.0, drain);
    }
}

/// Delivers what is queued, in order (what handlers publish meanwhile included).
pub(crate) fn drain() {
    while let Some(pending) = QUEUE.with(|queue| queue.borrow_mut().pop_front()) {
        match pending {
            Pending::Deliver(entry, done) => {
                registry::deliver(&entry);
                if let Some(done) = done {
                    let id = entry.id;
                    crate::reactor::call_user(
                        &|| "Channel::publish_with's callback".into(),
                        || done(Ok(id)),
                    );
                }
            }
            Pending::Answer(done, answer) => {
                crate::reactor::call_user(&|| "Channel::history's callback".into(), || {
                    done(Ok(answer))
                });
            }
            Pending::LastId(done, id) => {
                crate::reactor::call_user(&|| "Channel::last_id's callback".into(), || {
                    done(Ok(id))
                });
            }
        }
    }
    SCHEDULED.with(|scheduled| scheduled.set(false));
}

/// Outside a reactor nothing runs later: deliver at once, after the caller released the state.
pub(crate) fn drain_outside_reactor() {
    if crate::reactor::try_with(|_| ()).is_none() && !SCHEDULED.with(Cell::get) {
        SCHEDULED.with(|scheduled| scheduled.set(true));
        drain();
    }
}
