//! A worker process's link to the embedded relay: a `frame://` client over the relay's Unix
//! socket on this process's reactor, re-attached with backoff when the relay goes away.
//!
//! The policy while detached: a publish or history request waits in a queue (at most
//! [`MAX_BACKLOG`] requests) until the link is up again, and fails with [`Error::Timeout`] when
//! it is not answered within the request timeout (5 s) from the call. A request already sent
//! when the link drops fails at once with [`Error::Disconnected`]: it may or may not have been
//! carried out. Subscriptions are sent again on each attach, and `on_connection_state` says
//! `false` on a drop and `true` on a re-attach (events published between the two are missed
//! here: ask [`Channel::history`](super::Channel::history)).
//!
//! The seam between history and live: a subscribe goes on the link before any later request
//! (on attach, the subscriptions before the backlog), and the relay handles one link's frames
//! in order on one thread, storing and fanning out each publish in one step. So a publish is
//! either stored before a later history or last-id request is read, or sent live to this
//! process: no window.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use super::event::EventId;
use super::wire::{self, Reply};
use super::{Error, HistoryDone, LastIdDone, PublishDone, REQUEST_TIMEOUT_SECONDS, registry};
use crate::connection::{AsyncTcpConnection, TcpConnection};
use crate::protocols::Frame;
use crate::reactor::call_user;
use crate::timer::{Timer, TimerId};

/// The most requests queued while detached.
pub(crate) const MAX_BACKLOG: usize = 10_000;

enum Waiting {
    Publish(Option<PublishDone>, String),
    History(HistoryDone),
    LastId(LastIdDone),
}

struct Request {
    waiting: Waiting,
    timer: TimerId,
    sent: bool,
}

struct Link {
    connection: AsyncTcpConnection,
    attached: bool,
    /// Attempts since the link was last up (the reconnect backoff grows with them).
    failures: u32,
    next_request: u64,
    requests: HashMap<u64, Request>,
    backlog: VecDeque<(u64, Vec<u8>)>,
}

thread_local! {
    static LINK: RefCell<Option<Link>> = const { RefCell::new(None) };
}

/// Starts the link to the relay at `path` (once per process).
pub(crate) fn start(path: &std::path::Path) {
    let mut connection =
        AsyncTcpConnection::with_protocol(&format!("unix://{}", path.display()), Frame);
    connection.set_max_package_size(super::relay::MAX_PACKAGE);
    connection.set_max_send_buffer_size(64 << 20);
    connection.set_connect_timeout(Duration::from_secs(2));
    connection.on_connect(|_connection: &TcpConnection| on_attach());
    connection.on_message(|_connection: &TcpConnection, payload: Vec<u8>| on_package(&payload));
    connection.on_close(|_connection: &TcpConnection| on_detach());
    LINK.with(|link| {
        *link.borrow_mut() = Some(Link {
            connection: connection.clone(),
            attached: false,
            failures: 0,
            next_request: 1,
            requests: HashMap::new(),
            backlog: VecDeque::new(),
        })
    });
    connection.connect();
}

/// Sends `package` now when attached; returns whether it went.
fn send_now(package: &[u8]) -> bool {
    let connection = LINK.with(|link| {
        link.borrow()
            .as_ref()
            .filter(|link| link.attached)
            .and_then(|link| link.connection.connection())
    });
    match connection {
        Some(connection) => connection.send_raw(package).is_accepted(),
        None => false,
    }
}

pub(crate) fn subscribe(event: &str) {
    send_now(&wire::subscribe(event));
}

pub(crate) fn unsubscribe(event: &str) {
    send_now(&wire::unsubscribe(event));
}

pub(crate) fn set_history_size(n: usize) {
    send_now(&wire::configure(n as u64));
}

pub(crate) fn publish(event: &str, data: &[u8], done: Option<PublishDone>) {
    submit(
        |request| wire::publish(request, event, data),
        Waiting::Publish(done, event.to_owned()),
    );
}

pub(crate) fn history(event: &str, after: EventId, limit: usize, done: HistoryDone) {
    let limit = u32::try_from(limit).unwrap_or(u32::MAX);
    submit(
        |request| wire::history(request, &after, limit, event),
        Waiting::History(done),
    );
}

pub(crate) fn last_id(event: &str, done: LastIdDone) {
    submit(
        |request| wire::last_id(request, event),
        Waiting::LastId(done),
    );
}

/// Gives the request an id and a timeout, and sends it (or queues it while detached).
fn submit(package: impl FnOnce(u64) -> Vec<u8>, waiting: Waiting) {
    let refused = LINK.with(|link| {
        let mut link = link.borrow_mut();
        let link = link.as_mut()?;
        if !link.attached && link.backlog.len() >= MAX_BACKLOG {
            return Some(waiting);
        }
        let request = link.next_request;
        link.next_request += 1;
        let timer = Timer::once(REQUEST_TIMEOUT_SECONDS, move || {
            fail(request, Error::Timeout)
        });
        // Sent by `flush` below once the link is released (at once when attached).
        link.backlog.push_back((request, package(request)));
        link.requests.insert(
            request,
            Request {
                waiting,
                timer,
                sent: false,
            },
        );
        None
    });
    match refused {
        Some(waiting) => answer_error(
            waiting,
            Error::Rejected(format!("{MAX_BACKLOG} requests already wait for the relay")),
        ),
        None => flush(),
    }
}

/// Sends the backlog when attached.
fn flush() {
    loop {
        let next = LINK.with(|link| {
            let mut link = link.borrow_mut();
            let link = link.as_mut()?;
            if !link.attached {
                return None;
            }
            let (request, package) = link.backlog.pop_front()?;
            if let Some(waiting) = link.requests.get_mut(&request) {
                waiting.sent = true;
            } else {
                // Timed out while queued: not sent at all.
                return Some(None);
            }
            Some(Some((link.connection.connection()?, request, package)))
        });
        match next {
            None => return,
            Some(None) => continue,
            Some(Some((connection, request, package))) => {
                if !connection.send_raw(&package).is_accepted() {
                    fail(
                        request,
                        Error::Disconnected("the link to the relay refused the request".into()),
                    );
                }
            }
        }
    }
}

/// Ends request `request` with `error`, if it is still waiting.
fn fail(request: u64, error: Error) {
    let waiting = LINK.with(|link| {
        let mut link = link.borrow_mut();
        let link = link.as_mut()?;
        link.backlog.retain(|(queued, _)| *queued != request);
        link.requests.remove(&request)
    });
    if let Some(waiting) = waiting {
        Timer::del(waiting.timer);
        answer_error(waiting.waiting, error);
    }
}

fn answer_error(waiting: Waiting, error: Error) {
    match waiting {
        Waiting::Publish(Some(done), _) => {
            call_user(&|| "Channel::publish_with's callback".into(), || {
                done(Err(error))
            });
        }
        Waiting::Publish(None, event) => super::publish_failed(&event, &error),
        Waiting::History(done) => {
            call_user(&|| "Channel::history's callback".into(), || {
                done(Err(error))
            });
        }
        Waiting::LastId(done) => {
            call_user(&|| "Channel::last_id's callback".into(), || {
                done(Err(error))
            });
        }
    }
}

fn take(request: u64) -> Option<Waiting> {
    let waiting = LINK.with(|link| link.borrow_mut().as_mut()?.requests.remove(&request))?;
    Timer::del(waiting.timer);
    Some(waiting.waiting)
}

fn on_package(payload: &[u8]) {
    match wire::decode_reply(payload) {
        Some(Reply::Event(event)) => registry::deliver(&event),
        Some(Reply::Published { request, id }) => match take(request) {
            Some(Waiting::Publish(Some(done), _)) => {
                call_user(&|| "Channel::publish_with's callback".into(), || {
                    done(Ok(id))
                });
            }
            Some(Waiting::Publish(None, _)) | None => {}
            Some(other) => answer_error(
                other,
                Error::Rejected("the relay answered out of turn".into()),
            ),
        },
        Some(Reply::History { request, history }) => match take(request) {
            Some(Waiting::History(done)) => {
                call_user(&|| "Channel::history's callback".into(), || {
                    done(Ok(history))
                });
            }
            Some(other) => answer_error(
                other,
                Error::Rejected("the relay answered out of turn".into()),
            ),
            None => {}
        },
        Some(Reply::LastId { request, id }) => match take(request) {
            Some(Waiting::LastId(done)) => {
                call_user(&|| "Channel::last_id's callback".into(), || done(Ok(id)));
            }
            Some(other) => answer_error(
                other,
                Error::Rejected("the relay answered out of turn".into()),
            ),
            None => {}
        },
        None => {
            log::error!("workerman: a malformed message from the channel relay; re-attaching");
            let connection =
                LINK.with(|link| link.borrow().as_ref().map(|link| link.connection.clone()));
            if let Some(connection) = connection {
                connection.close();
            }
        }
    }
}

fn on_attach() {
    let history_size = super::Channel::history_size();
    LINK.with(|link| {
        if let Some(link) = link.borrow_mut().as_mut() {
            link.attached = true;
            link.failures = 0;
        }
    });
    send_now(&wire::configure(history_size as u64));
    for event in registry::events() {
        send_now(&wire::subscribe(&event));
    }
    flush();
    registry::tell_state(true);
}

fn on_detach() {
    let (was_attached, lost, connection, delay) = match LINK.with(|link| {
        let mut link = link.borrow_mut();
        let link = link.as_mut()?;
        let was_attached = std::mem::replace(&mut link.attached, false);
        let lost: Vec<u64> = link
            .requests
            .iter()
            .filter(|(_, request)| request.sent)
            .map(|(id, _)| *id)
            .collect();
        link.failures = link.failures.saturating_add(1);
        let delay = (0.05 * f64::from(1u32 << link.failures.min(6))).min(2.0);
        Some((was_attached, lost, link.connection.clone(), delay))
    }) {
        Some(state) => state,
        None => return,
    };
    let lost_count = lost.len();
    for request in lost {
        fail(
            request,
            Error::Disconnected("the link to the relay closed before its answer".into()),
        );
    }
    // While this process stops, the relay stops too (the master signals every process at once):
    // nothing to say, nothing to re-attach.
    let stopping = crate::reactor::try_with(|reactor| {
        reactor.stopping || reactor.stop.load(std::sync::atomic::Ordering::SeqCst)
    })
    .unwrap_or(false);
    if stopping {
        return;
    }
    if was_attached {
        log::warn!(
            "workerman: the channel relay went away ({lost_count} requests in flight fail); \
             re-attaching"
        );
        registry::tell_state(false);
    }
    connection.reconnect(delay);
}
