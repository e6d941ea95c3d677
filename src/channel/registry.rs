//! This process's handlers: per event, the `on` / `on_event` callbacks, and the
//! `on_connection_state` callbacks. Delivery clones the list first, so a handler may add or
//! remove handlers (or publish) while it runs.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::event::ChannelEvent;
use crate::reactor::call_user;

/// One `on` / `on_event` callback.
#[derive(Clone)]
pub(crate) struct Handler(Rc<RefCell<EventCallback>>);

type EventCallback = dyn FnMut(&ChannelEvent);

impl Handler {
    pub(crate) fn new(callback: impl FnMut(&ChannelEvent) + 'static) -> Handler {
        Handler(Rc::new(RefCell::new(callback)))
    }
}

type StateCallback = Rc<RefCell<dyn FnMut(bool)>>;

thread_local! {
    static HANDLERS: RefCell<HashMap<String, Vec<Handler>>> = RefCell::new(HashMap::new());
    static STATE_CALLBACKS: RefCell<Vec<StateCallback>> = const { RefCell::new(Vec::new()) };
}

/// Adds `handler` for `event`; true when it is the event's first (the transport subscribes).
pub(crate) fn add(event: &str, handler: Handler) -> bool {
    HANDLERS.with(|handlers| {
        let mut handlers = handlers.borrow_mut();
        let list = handlers.entry(event.to_owned()).or_default();
        list.push(handler);
        list.len() == 1
    })
}

/// Removes every handler of `event`; true when there was one (the transport unsubscribes).
pub(crate) fn remove(event: &str) -> bool {
    HANDLERS.with(|handlers| handlers.borrow_mut().remove(event).is_some())
}

/// Whether `event` has a handler in this process.
pub(crate) fn has(event: &str) -> bool {
    HANDLERS.with(|handlers| handlers.borrow().contains_key(event))
}

/// Every event with a handler (to subscribe again after a reconnect).
pub(crate) fn events() -> Vec<String> {
    HANDLERS.with(|handlers| handlers.borrow().keys().cloned().collect())
}

/// Calls every handler of `event.event` with it; a panic in one is caught and logged.
pub(crate) fn deliver(event: &ChannelEvent) {
    let list = HANDLERS.with(|handlers| handlers.borrow().get(&*event.event).cloned());
    for handler in list.into_iter().flatten() {
        // A handler running already (it published to its own event outside a reactor) is
        // not entered twice.
        let Ok(mut callback) = handler.0.try_borrow_mut() else {
            continue;
        };
        call_user(
            &|| format!("a Channel handler of {:?}", event.event),
            || callback(event),
        );
    }
}

pub(crate) fn add_state_callback(callback: impl FnMut(bool) + 'static) {
    STATE_CALLBACKS.with(|callbacks| callbacks.borrow_mut().push(Rc::new(RefCell::new(callback))));
}

/// Tells every `on_connection_state` callback that the transport is `up` (or down).
pub(crate) fn tell_state(up: bool) {
    let list = STATE_CALLBACKS.with(|callbacks| callbacks.borrow().clone());
    for callback in list {
        let Ok(mut callback) = callback.try_borrow_mut() else {
            continue;
        };
        call_user(&|| "Channel::on_connection_state".to_owned(), || {
            callback(up)
        });
    }
}
