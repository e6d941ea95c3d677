//! The Redis transport: several machines sharing one Redis.
//!
//! A publish is one Lua script, so it is atomic: `XADD <prefix><event> MAXLEN ~ <history
//! size> * d <data>` then `PUBLISH <prefix><event> "<id> <data>"`. Scripts run one at a time, so the
//! order in which every subscriber sees events live is the order of the stream, whichever node
//! published them. Subscribers `SUBSCRIBE` to the same name (pub/sub channels and keys do not
//! share a namespace); the event's id is the stream entry id.
//!
//! History is a second script, so what it reads is one consistent moment: the stream's first
//! entry, how many entries it ever had and has, and `XRANGE key (<after> + COUNT <limit>`.
//! [`History::Gap`] when `after` is older than the first kept entry and entries were trimmed,
//! or older than the newest deleted one, or later than Redis's clock.
//!
//! The seam between history and live: a subscription takes effect when Redis runs the
//! `SUBSCRIBE`, which on RESP2 goes on another connection than the history read, and after a
//! (re)connect goes after the commands queued meanwhile. So a history or last-id read of an
//! event this process listens on waits until Redis confirmed the subscription on the current
//! connection ([`Client::is_subscribed`]): every event is then in what the read returns or
//! comes live after it (or both: the hub drops the second copy by id), never in neither.
//!
//! Redis down: requests fail with [`Error::Timeout`] after the client's reply timeout
//! ([`REPLY_TIMEOUT`]) or with [`Error::Disconnected`]; `on_connection_state(false)` is told
//! (the state is checked every [`STATE_CHECK_SECONDS`]), and `true` once the client has
//! reconnected and subscribed again.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use super::event::{ChannelEvent, EventId, History};
use super::{Error, HistoryDone, LastIdDone, PublishDone, registry};
use crate::reactor::call_user;
use crate::redis::{Client, Value};
use crate::timer::Timer;

/// Every stream key and pub/sub channel name starts with this.
pub(crate) const PREFIX: &str = "workerman:channel:";
/// How long a command to Redis may wait for its answer (queued while Redis is down included).
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the link's state is looked at (to tell `on_connection_state` it went down).
pub(crate) const STATE_CHECK_SECONDS: f64 = 0.1;

const PUBLISH_SCRIPT: &str = "\
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'd', ARGV[2])
redis.call('PUBLISH', KEYS[1], id .. ' ' .. ARGV[2])
return id";

const HISTORY_SCRIPT: &str = "\
local now = redis.call('TIME')
if redis.call('EXISTS', KEYS[1]) == 0 then return {now[1], '', 0, 0, '0-0', {}} end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local first, added, length, deleted = '', 0, 0, '0-0'
for i = 1, #info, 2 do
  local k, v = info[i], info[i + 1]
  if k == 'first-entry' and type(v) == 'table' then first = v[1]
  elseif k == 'entries-added' then added = v
  elseif k == 'length' then length = v
  elseif k == 'max-deleted-entry-id' then deleted = v end
end
local range = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
return {now[1], first, added, length, deleted, range}";

struct Link {
    client: Client,
    up: Cell<bool>,
    /// Reads waiting for the subscription to their event to be confirmed, by event.
    waiting: RefCell<HashMap<String, Vec<Rc<Waiting>>>>,
}

/// A read held until its event's subscription is in effect, or its timeout.
type Waiting = Cell<Option<Box<dyn FnOnce(Result<(), Error>)>>>;

thread_local! {
    static LINK: RefCell<Option<Rc<Link>>> = const { RefCell::new(None) };
}

fn link() -> Option<Rc<Link>> {
    LINK.with(|link| link.borrow().clone())
}

fn key(event: &str) -> String {
    format!("{PREFIX}{event}")
}

/// Starts this process's client for `url` (once).
pub(crate) fn start(url: &str) {
    let client = Client::new(url);
    client.set_reply_timeout(REPLY_TIMEOUT);
    client.set_connect_timeout(REPLY_TIMEOUT);
    client.set_client_name("workerman-channel");
    let link = Rc::new(Link {
        client: client.clone(),
        up: Cell::new(true),
        waiting: RefCell::new(HashMap::new()),
    });
    LINK.with(|cell| *cell.borrow_mut() = Some(link.clone()));
    client.on_subscribed(|channel| {
        if let Some(event) = channel.strip_prefix(PREFIX) {
            subscribed(event);
        }
    });
    let watched = link.clone();
    client.on_reconnect(move |_| {
        // Down and up again between two checks: still an outage to report.
        if watched.up.replace(true) {
            registry::tell_state(false);
        }
        registry::tell_state(true);
    });
    let watched = link;
    let seen_ready = Rc::new(Cell::new(false));
    Timer::add(STATE_CHECK_SECONDS, move |_| {
        let connected = watched.client.connected();
        if connected {
            seen_ready.set(true);
        } else if seen_ready.get() && watched.up.replace(false) {
            log::warn!(
                "workerman: the channel's Redis is unreachable; events are missed until it is back"
            );
            registry::tell_state(false);
        }
    });
}

pub(crate) fn subscribe(event: &str) {
    let Some(link) = link() else { return };
    let name: Rc<str> = Rc::from(event);
    link.client.subscribe([key(event)], move |_channel, message| {
        match parse_message(&name, message) {
            Some(event) => registry::deliver(&event),
            None => log::error!(
                "workerman: a malformed channel message on Redis for {name:?} (not \"<id> <data>\"); dropped"
            ),
        }
    });
}

/// Runs `then` once this process's subscription to `event` is in effect: at once when it is, or
/// when the process does not listen on `event`; `Err(Timeout)` when the confirmation does not
/// come within [`REPLY_TIMEOUT`].
fn when_subscribed(link: &Link, event: &str, then: impl FnOnce(Result<(), Error>) + 'static) {
    if !registry::has(event) || link.client.is_subscribed(key(event)) {
        then(Ok(()));
        return;
    }
    let waiting: Rc<Waiting> = Rc::new(Cell::new(Some(Box::new(then))));
    link.waiting
        .borrow_mut()
        .entry(event.to_owned())
        .or_default()
        .push(waiting.clone());
    let name = event.to_owned();
    Timer::once(REPLY_TIMEOUT.as_secs_f64(), move || {
        if let Some(then) = waiting.take() {
            if let Some(link) = self::link() {
                if let Some(list) = link.waiting.borrow_mut().get_mut(&name) {
                    list.retain(|other| !Rc::ptr_eq(other, &waiting));
                }
            }
            then(Err(Error::Timeout));
        }
    });
}

/// Redis confirmed the subscription to `event`: the reads waiting for it go.
fn subscribed(event: &str) {
    let Some(link) = link() else { return };
    let list = link.waiting.borrow_mut().remove(event).unwrap_or_default();
    for waiting in list {
        if let Some(then) = waiting.take() {
            then(Ok(()));
        }
    }
}

pub(crate) fn unsubscribe(event: &str) {
    if let Some(link) = link() {
        link.client.unsubscribe([key(event)]);
    }
}

/// `"<id> <data>"` as published by [`PUBLISH_SCRIPT`].
fn parse_message(event: &Rc<str>, message: &[u8]) -> Option<ChannelEvent> {
    let space = message.iter().position(|&byte| byte == b' ')?;
    let id: EventId = std::str::from_utf8(&message[..space]).ok()?.parse().ok()?;
    Some(ChannelEvent {
        id,
        event: event.clone(),
        data: Rc::from(&message[space + 1..]),
    })
}

pub(crate) fn publish(event: &str, data: &[u8], done: Option<PublishDone>) {
    let Some(link) = link() else { return };
    let size = super::Channel::history_size().max(1).to_string();
    let name = event.to_owned();
    link.client.command(
        [
            b"EVAL".as_slice(),
            PUBLISH_SCRIPT.as_bytes(),
            b"1",
            key(event).as_bytes(),
            size.as_bytes(),
            data,
        ],
        move |result| {
            let result = result.map_err(Error::from).and_then(|value| {
                value
                    .to_text()
                    .and_then(|text| text.parse::<EventId>().ok())
                    .ok_or_else(|| Error::Rejected(format!("XADD answered {value:?}")))
            });
            match done {
                Some(done) => {
                    call_user(&|| "Channel::publish_with's callback".into(), || {
                        done(result)
                    });
                }
                None => {
                    if let Err(error) = result {
                        super::publish_failed(&name, &error);
                    }
                }
            }
        },
    );
}

pub(crate) fn history(event: &str, after: EventId, limit: usize, done: HistoryDone) {
    let Some(link) = link() else { return };
    let name: Rc<str> = Rc::from(event);
    when_subscribed(&link, event, move |ready| match ready {
        Ok(()) => read_history_now(name, after, limit, done),
        Err(error) => {
            call_user(&|| "Channel::history's callback".into(), || {
                done(Err(error))
            });
        }
    });
}

fn read_history_now(name: Rc<str>, after: EventId, limit: usize, done: HistoryDone) {
    let Some(link) = link() else { return };
    let event = &*name;
    link.client.command(
        [
            "EVAL".to_owned(),
            HISTORY_SCRIPT.to_owned(),
            "1".to_owned(),
            key(event),
            after.to_string(),
            limit.max(1).to_string(),
        ],
        move |result| {
            let result = result
                .map_err(Error::from)
                .and_then(|value| read_history(&name, &after, limit, value));
            call_user(&|| "Channel::history's callback".into(), || done(result));
        },
    );
}

/// `XREVRANGE key + - COUNT 1`: the newest kept entry's id (an empty answer: none).
pub(crate) fn last_id(event: &str, done: LastIdDone) {
    let Some(link) = link() else { return };
    let name = event.to_owned();
    when_subscribed(&link, event, move |ready| match ready {
        Ok(()) => read_last_id_now(&name, done),
        Err(error) => {
            call_user(&|| "Channel::last_id's callback".into(), || {
                done(Err(error))
            });
        }
    });
}

fn read_last_id_now(event: &str, done: LastIdDone) {
    let Some(link) = link() else { return };
    link.client.command(
        [
            "XREVRANGE".to_owned(),
            key(event),
            "+".to_owned(),
            "-".to_owned(),
            "COUNT".to_owned(),
            "1".to_owned(),
        ],
        move |result| {
            let result = result.map_err(Error::from).and_then(|value| {
                let malformed = || Error::Rejected(format!("XREVRANGE answered {value:?}"));
                let entries = value.clone().into_array().ok_or_else(malformed)?;
                match entries.into_iter().next() {
                    None => Ok(None),
                    Some(entry) => entry
                        .into_array()
                        .and_then(|fields| fields.first().and_then(id_of))
                        .map(Some)
                        .ok_or_else(malformed),
                }
            });
            call_user(&|| "Channel::last_id's callback".into(), || done(result));
        },
    );
}

fn id_of(value: &Value) -> Option<EventId> {
    value.to_text()?.parse().ok()
}

/// Reads [`HISTORY_SCRIPT`]'s answer.
fn read_history(
    event: &Rc<str>,
    after: &EventId,
    limit: usize,
    value: Value,
) -> Result<History, Error> {
    let malformed = || Error::Rejected("Redis answered the history script oddly".into());
    let parts = value.into_array().ok_or_else(malformed)?;
    let [now, first, added, length, deleted, range]: [Value; 6] =
        parts.try_into().map_err(|_| malformed())?;
    let now_ms = now
        .to_text()
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or_else(malformed)?
        .saturating_add(1)
        .saturating_mul(1000);
    if after.parts().0 > now_ms {
        return Ok(History::Gap);
    }
    let trimmed = added.as_int().unwrap_or(0) > length.as_int().unwrap_or(0);
    if let Some(first) = id_of(&first) {
        if *after < first && trimmed {
            return Ok(History::Gap);
        }
    }
    if id_of(&deleted).is_some_and(|deleted| *after < deleted) {
        return Ok(History::Gap);
    }
    let mut events = Vec::new();
    for entry in range.into_array().ok_or_else(malformed)? {
        let mut entry = entry.into_array().ok_or_else(malformed)?.into_iter();
        let id = entry
            .next()
            .as_ref()
            .and_then(id_of)
            .ok_or_else(malformed)?;
        let fields = entry
            .next()
            .and_then(Value::into_array)
            .ok_or_else(malformed)?;
        let data = fields
            .chunks(2)
            .find(|pair| pair[0].as_bytes() == Some(b"d"))
            .and_then(|pair| pair.get(1))
            .and_then(Value::as_bytes)
            .unwrap_or_default();
        events.push(ChannelEvent {
            id,
            event: event.clone(),
            data: Rc::from(data),
        });
        if events.len() == limit {
            break;
        }
    }
    Ok(History::After(events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_messages_are_an_id_a_space_and_the_data() {
        let name: Rc<str> = Rc::from("news");
        let event = parse_message(&name, b"1700000000000-3 hello world").unwrap();
        assert_eq!(event.id, EventId::new(1700000000000, 3));
        assert_eq!(&*event.data, b"hello world");
        assert_eq!(&*parse_message(&name, b"1-0 ").unwrap().data, b"");
        assert!(parse_message(&name, b"garbage").is_none());
        assert!(parse_message(&name, b"x-1 data").is_none());
    }
}
