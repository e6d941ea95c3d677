//! [`Link`]: one connection of a Redis client and the commands on it.
//!
//! A link keeps the commands sent and not yet answered (`waiting`, answered in order: Redis
//! answers a connection's commands in the order sent), the commands made while it is not ready
//! (`queued`, sent once the handshake is done), and the commands made this turn (`outgoing`,
//! written together at its end). Replies are matched to the oldest waiting command here, for
//! the client's commands and its pub/sub confirmations alike; what a link is connected to and
//! when it reconnects is the client's (`client.rs`).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::protocol::Resp;
use super::{Error, Value};
use crate::TcpConnection;
use crate::connection::AsyncTcpConnection;
use crate::reactor::call_user;
use crate::timer::Timer;

/// What a command's callback receives.
pub(crate) type Callback = Box<dyn FnOnce(Result<Value, Error>)>;

/// Which of the client's connections a link is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Role {
    Main,
    Subscriber,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum LinkState {
    /// Not started (the subscriber link until the first subscription on RESP2).
    Idle,
    Connecting,
    Handshaking,
    Ready,
    /// Waiting to reconnect.
    Down,
    Closed,
}

/// What a sent command expects back.
pub(crate) enum Expect {
    /// One reply.
    Reply,
    /// `(P|S)(UN)SUBSCRIBE`: one confirmation of this kind per channel.
    Confirmations {
        kind: &'static str,
        remaining: usize,
    },
}

pub(crate) struct Pending {
    pub(crate) expect: Expect,
    pub(crate) callback: Option<Callback>,
    /// How long its answer may take once it is the oldest unanswered command (`None`: a
    /// blocking command without a timeout).
    pub(crate) allowance: Option<Duration>,
}

struct Queued {
    command: Vec<u8>,
    pending: Pending,
    deadline: Instant,
}

/// One connection of a client and its commands.
pub(crate) struct Link {
    pub(crate) role: Role,
    pub(super) connection: RefCell<Option<AsyncTcpConnection>>,
    pub(super) resp: Rc<Resp>,
    pub(crate) state: Cell<LinkState>,
    pub(super) handle: RefCell<Option<TcpConnection>>,
    waiting: RefCell<VecDeque<Pending>>,
    /// When the oldest waiting command became the oldest.
    front_since: Cell<Instant>,
    queued: RefCell<VecDeque<Queued>>,
    /// Commands made this turn, written together at its end (one write for a pipeline).
    outgoing: RefCell<Vec<u8>>,
    flush_scheduled: Cell<bool>,
    /// Connects in a row that did not reach `Ready`.
    pub(super) failures: Cell<u32>,
    pub(super) was_ready: Cell<bool>,
}

impl Link {
    pub(super) fn new(role: Role, target: &str) -> Link {
        Link {
            role,
            connection: RefCell::new(None),
            resp: Rc::new(Resp {
                resp3: Cell::new(false),
                max_reply_size: Cell::new(512 << 20),
                scan: Cell::new(Default::default()),
                target: target.to_owned(),
            }),
            state: Cell::new(LinkState::Idle),
            handle: RefCell::new(None),
            waiting: RefCell::new(VecDeque::new()),
            front_since: Cell::new(Instant::now()),
            queued: RefCell::new(VecDeque::new()),
            outgoing: RefCell::new(Vec::new()),
            flush_scheduled: Cell::new(false),
            failures: Cell::new(0),
            was_ready: Cell::new(false),
        }
    }

    /// Buffers a command for this turn's write when ready, else queues it (up to `max_queue`
    /// commands, each for at most `queue_timeout`). True when the caller must schedule
    /// [`flush`](Self::flush) at the end of the turn (the turn's first command).
    pub(super) fn submit(
        &self,
        command: Vec<u8>,
        pending: Pending,
        max_queue: usize,
        queue_timeout: Duration,
    ) -> bool {
        if self.state.get() == LinkState::Ready && self.handle.borrow().is_some() {
            self.push_waiting(pending);
            self.outgoing.borrow_mut().extend_from_slice(&command);
            return !self.flush_scheduled.replace(true);
        }
        if self.queued.borrow().len() >= max_queue {
            if let Some(callback) = pending.callback {
                defer(
                    callback,
                    Err(Error::Connection(format!(
                        "not connected, and {max_queue} commands are queued already"
                    ))),
                );
            }
            return false;
        }
        self.queued.borrow_mut().push_back(Queued {
            command,
            pending,
            deadline: Instant::now() + queue_timeout,
        });
        false
    }

    /// Writes the commands made this turn.
    pub(super) fn flush(&self) {
        self.flush_scheduled.set(false);
        let bytes = std::mem::take(&mut *self.outgoing.borrow_mut());
        let handle = self.handle.borrow().clone();
        let Some(handle) = handle.filter(|_| !bytes.is_empty()) else {
            return;
        };
        if handle.send(bytes) == crate::SendResult::Refused {
            // The connection is closing or its buffer is full: the replies will not come.
            log::warn!(
                "redis {}: commands were refused by the connection",
                self.resp.target
            );
            handle.destroy();
        }
    }

    /// Whether the link can take a command now (connected and through its handshake).
    pub(crate) fn is_ready(&self) -> bool {
        self.state.get() == LinkState::Ready
    }

    pub(super) fn push_waiting(&self, pending: Pending) {
        let mut waiting = self.waiting.borrow_mut();
        if waiting.is_empty() {
            self.front_since.set(Instant::now());
        }
        waiting.push_back(pending);
    }

    fn pop_waiting(&self) -> Option<Pending> {
        let mut waiting = self.waiting.borrow_mut();
        let pending = waiting.pop_front();
        self.front_since.set(Instant::now());
        pending
    }

    /// The oldest waiting command's answer.
    pub(super) fn answer(&self, handle: &TcpConnection, result: Result<Value, Error>) {
        let pending = self.pop_waiting();
        let Some(pending) = pending else {
            log::error!(
                "redis {}: a reply to no command ({result:?}), closing the connection",
                self.resp.target
            );
            handle.destroy();
            return;
        };
        if let Some(callback) = pending.callback {
            call_callback(callback, result);
        }
    }

    /// A pub/sub confirmation of `kind`: counts toward the oldest waiting subscription command.
    pub(super) fn confirm(&self, kind: &str) {
        let done = {
            let mut waiting = self.waiting.borrow_mut();
            match waiting.front_mut() {
                Some(Pending {
                    expect:
                        Expect::Confirmations {
                            kind: expected,
                            remaining,
                        },
                    ..
                }) if expected.eq_ignore_ascii_case(kind) => {
                    *remaining -= 1;
                    self.front_since.set(Instant::now());
                    *remaining == 0
                }
                _ => false,
            }
        };
        if done {
            if let Some(Pending {
                callback: Some(callback),
                ..
            }) = self.pop_waiting()
            {
                call_callback(callback, Ok(Value::Nil));
            }
        }
    }

    /// Whether the oldest waiting command has waited past its allowance at `now`.
    pub(super) fn is_overdue(&self, now: Instant) -> bool {
        self.waiting.borrow().front().is_some_and(|front| {
            front
                .allowance
                .is_some_and(|allowance| now >= self.front_since.get() + allowance)
        })
    }

    /// Every command sent and not yet answered (their replies will not be matched any more).
    pub(super) fn take_waiting(&self) -> VecDeque<Pending> {
        std::mem::take(&mut *self.waiting.borrow_mut())
    }

    /// The connection closed: the commands made this turn are not written, and every command
    /// sent and not yet answered is returned.
    pub(super) fn lost(&self) -> VecDeque<Pending> {
        self.outgoing.borrow_mut().clear();
        self.take_waiting()
    }

    /// The queued commands whose time in the queue is over at `now`.
    pub(super) fn take_expired(&self, now: Instant) -> Vec<Pending> {
        let mut queued = self.queued.borrow_mut();
        let mut expired = Vec::new();
        while queued.front().is_some_and(|entry| entry.deadline <= now) {
            if let Some(entry) = queued.pop_front() {
                expired.push(entry.pending);
            }
        }
        expired
    }

    /// Every queued command, unsent.
    pub(super) fn take_queued(&self) -> Vec<Pending> {
        self.queued
            .borrow_mut()
            .drain(..)
            .map(|entry| entry.pending)
            .collect()
    }

    /// Sends the queued commands on `handle`, now that the handshake is done.
    pub(super) fn send_queued(&self, handle: &TcpConnection) {
        let queued: Vec<Queued> = self.queued.borrow_mut().drain(..).collect();
        for entry in queued {
            self.push_waiting(entry.pending);
            handle.send(entry.command);
        }
    }

    /// Everything waiting or queued, for a close.
    pub(super) fn take_all(&self) -> Vec<Pending> {
        let mut all: Vec<Pending> = self.waiting.borrow_mut().drain(..).collect();
        all.extend(
            self.queued
                .borrow_mut()
                .drain(..)
                .map(|entry| entry.pending),
        );
        all
    }
}

/// Calls a command's callback, catching a panic.
pub(crate) fn call_callback(callback: Callback, result: Result<Value, Error>) {
    call_user(&|| "a redis command's callback".to_owned(), move || {
        callback(result)
    });
}

/// Calls a callback at the end of this turn: a refusal is never reported from inside the call
/// that made the command.
pub(super) fn defer(callback: Callback, result: Result<Value, Error>) {
    Timer::once(0.0, move || call_callback(callback, result));
}

/// Answers every command with `error`.
pub(super) fn fail_all(pendings: impl IntoIterator<Item = Pending>, error: impl Fn() -> Error) {
    for pending in pendings {
        if let Some(callback) = pending.callback {
            call_callback(callback, Err(error()));
        }
    }
}
