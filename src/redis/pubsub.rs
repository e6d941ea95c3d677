//! Pub/sub on a [`Client`]: `subscribe`, `psubscribe`, `ssubscribe`, their `unsubscribe`s, and
//! the dispatch of the messages that arrive.
//!
//! The client remembers every subscription with its callback (`subscriptions.rs`), so a
//! reconnect can restore them all. On RESP3 they ride on the command connection (messages come as push frames between
//! replies); on RESP2 a subscribed connection can take nothing else, so a second connection
//! carries them, opened with the first subscription.
//!
//! A subscription takes effect when Redis runs the `SUBSCRIBE`, not when it is asked for: the
//! client keeps which channels Redis confirmed on the current connection
//! ([`Client::is_subscribed`]) and says each confirmation ([`Client::on_subscribed`]), so a
//! reader of history can start after the point from which every message comes live.

use std::rc::Rc;

use super::client::Client;
use super::link::{Expect, Link, Pending, Role};
use super::protocol::encode_command;
use super::subscriptions::{Kind, MessageCallback, PatternCallback, Subscriptions};
use super::{Error, Value};
use crate::TcpConnection;
use crate::reactor::call_user;

impl Client {
    /// Subscribes to channels; `callback(channel, message)` runs for each message published on
    /// them. Subscriptions survive reconnects (they are made again before `on_reconnect`).
    /// Subscribing to a channel again replaces its callback.
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.subscribe(["news", "alerts"], |channel, message| {
    ///     println!("{channel}: {}", String::from_utf8_lossy(message));
    /// });
    /// # }
    /// ```
    pub fn subscribe<I, A>(&self, channels: I, callback: impl Fn(&str, &[u8]) + 'static)
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let callback: MessageCallback = Rc::new(callback);
        let names = self.remember(channels, |subscriptions, name| {
            subscriptions
                .channels
                .insert(name.to_vec(), callback.clone());
        });
        self.send_subscription(Kind::Channel.subscribe(), names);
    }

    /// Whether Redis confirmed the subscription to `channel` on the current connection: every
    /// message published on it from then on reaches this client. False until the confirmation
    /// comes, and again from a lost connection until the subscription is restored.
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.subscribe(["news"], |_channel, _message| {});
    /// assert!(!redis.is_subscribed("news")); // asked for, not yet confirmed
    /// # }
    /// ```
    pub fn is_subscribed(&self, channel: impl AsRef<[u8]>) -> bool {
        self.inner
            .subscriptions
            .borrow()
            .confirmed
            .contains(channel.as_ref())
    }

    /// Runs `callback(channel)` each time Redis confirms a [`subscribe`](Self::subscribe) to a
    /// channel: the first time and after each reconnect. From then on every message published on
    /// it reaches this client, so history read after this misses nothing live delivery does not
    /// bring. Setting it again replaces the callback.
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.on_subscribed(|channel| println!("{channel} is live"));
    /// redis.subscribe(["news"], |_channel, _message| {});
    /// # }
    /// ```
    pub fn on_subscribed(&self, callback: impl Fn(&str) + 'static) {
        self.inner.subscriptions.borrow_mut().on_subscribed = Some(Rc::new(callback));
    }

    /// Subscribes to glob patterns (`news.*`); `callback(pattern, channel, message)` runs for
    /// each message on a matching channel.
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.psubscribe(["news.*"], |pattern, channel, message| {
    ///     println!("{pattern} matched {channel}: {message:?}");
    /// });
    /// # }
    /// ```
    pub fn psubscribe<I, A>(&self, patterns: I, callback: impl Fn(&str, &str, &[u8]) + 'static)
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let callback: PatternCallback = Rc::new(callback);
        let names = self.remember(patterns, |subscriptions, name| {
            subscriptions
                .patterns
                .insert(name.to_vec(), callback.clone());
        });
        self.send_subscription(Kind::Pattern.subscribe(), names);
    }

    /// Subscribes to shard channels (`SSUBSCRIBE`, Redis 7); messages come from `spublish`.
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.ssubscribe(["orders:{eu}"], |channel, message| {
    ///     println!("{channel}: {message:?}");
    /// });
    /// # }
    /// ```
    pub fn ssubscribe<I, A>(&self, channels: I, callback: impl Fn(&str, &[u8]) + 'static)
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let callback: MessageCallback = Rc::new(callback);
        let names = self.remember(channels, |subscriptions, name| {
            subscriptions
                .shard_channels
                .insert(name.to_vec(), callback.clone());
        });
        // One command per shard channel: a cluster takes only one slot per SSUBSCRIBE.
        for name in names {
            self.send_subscription(Kind::Shard.subscribe(), vec![name]);
        }
    }

    /// Unsubscribes from channels (all of them for an empty list).
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.unsubscribe(["news"]);
    /// # }
    /// ```
    pub fn unsubscribe<I, A>(&self, channels: I)
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        self.forget(Kind::Channel, channels);
    }

    /// Unsubscribes from patterns (all of them for an empty list).
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.punsubscribe(["news.*"]);
    /// # }
    /// ```
    pub fn punsubscribe<I, A>(&self, patterns: I)
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        self.forget(Kind::Pattern, patterns);
    }

    /// Unsubscribes from shard channels (all of them for an empty list).
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.sunsubscribe(["orders:{eu}"]);
    /// # }
    /// ```
    pub fn sunsubscribe<I, A>(&self, channels: I)
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        self.forget(Kind::Shard, channels);
    }

    /// Publishes `message` on `channel`; the reply is how many subscribers received it.
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.publish("news", "hello", |result| {
    ///     println!("{:?} subscribers", result.ok().and_then(|v| v.as_int()));
    /// });
    /// # }
    /// ```
    pub fn publish(
        &self,
        channel: impl AsRef<[u8]>,
        message: impl AsRef<[u8]>,
        callback: impl FnOnce(Result<Value, Error>) + 'static,
    ) {
        self.send(
            &[b"PUBLISH".as_ref(), channel.as_ref(), message.as_ref()],
            Box::new(callback),
        );
    }

    /// Publishes on a shard channel (`SPUBLISH`, Redis 7).
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.spublish("orders:{eu}", "new", |_result| {});
    /// # }
    /// ```
    pub fn spublish(
        &self,
        channel: impl AsRef<[u8]>,
        message: impl AsRef<[u8]>,
        callback: impl FnOnce(Result<Value, Error>) + 'static,
    ) {
        self.send(
            &[b"SPUBLISH".as_ref(), channel.as_ref(), message.as_ref()],
            Box::new(callback),
        );
    }

    fn remember<I, A>(
        &self,
        names: I,
        mut insert: impl FnMut(&mut Subscriptions, &[u8]),
    ) -> Vec<Vec<u8>>
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let mut subscriptions = self.inner.subscriptions.borrow_mut();
        let names: Vec<Vec<u8>> = names.into_iter().map(|n| n.as_ref().to_vec()).collect();
        for name in &names {
            insert(&mut subscriptions, name);
        }
        names
    }

    fn forget<I, A>(&self, kind: Kind, names: I)
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let names: Vec<Vec<u8>> = names.into_iter().map(|n| n.as_ref().to_vec()).collect();
        let names = self.inner.subscriptions.borrow_mut().remove(kind, names);
        match kind {
            Kind::Shard => {
                for name in names {
                    self.send_subscription(kind.unsubscribe(), vec![name]);
                }
            }
            _ => self.send_subscription(kind.unsubscribe(), names),
        }
    }

    /// Sends a (un)subscribe command now if its link is ready; otherwise the subscriptions are
    /// sent as a whole once it is (see [`Client::resubscribe`]).
    fn send_subscription(&self, kind: &'static str, names: Vec<Vec<u8>>) {
        if names.is_empty() {
            return;
        }
        let Some(role) = self.inner.pubsub_role() else {
            return;
        };
        let link = self.inner.link(role);
        if role == Role::Subscriber && !link.is_ready() {
            self.start(Role::Subscriber);
        }
        if !link.is_ready() {
            return;
        }
        self.send_subscription_on(link, kind, names);
    }

    fn send_subscription_on(&self, link: &Link, kind: &'static str, names: Vec<Vec<u8>>) {
        let mut command: Vec<Vec<u8>> = Vec::with_capacity(names.len() + 1);
        command.push(kind.to_ascii_uppercase().into_bytes());
        let count = names.len();
        command.extend(names);
        let mut bytes = Vec::new();
        encode_command(&command, &mut bytes);
        self.submit(
            link.role,
            bytes,
            Pending {
                expect: Expect::Confirmations {
                    kind,
                    remaining: count,
                },
                callback: None,
                allowance: Some(self.inner.reply_timeout.get()),
            },
        );
    }

    /// Sends every subscription on a link that just became ready.
    pub(crate) fn resubscribe(&self, role: Role) {
        let link = self.inner.link(role);
        let (channels, patterns, shards) = {
            let subscriptions = self.inner.subscriptions.borrow();
            (
                subscriptions.names(Kind::Channel),
                subscriptions.names(Kind::Pattern),
                subscriptions.names(Kind::Shard),
            )
        };
        if !channels.is_empty() {
            self.send_subscription_on(link, Kind::Channel.subscribe(), channels);
        }
        if !patterns.is_empty() {
            self.send_subscription_on(link, Kind::Pattern.subscribe(), patterns);
        }
        for shard in shards {
            self.send_subscription_on(link, Kind::Shard.subscribe(), vec![shard]);
        }
    }

    /// A push frame (RESP3), or an array on the RESP2 subscriber connection.
    pub(crate) fn on_push(&self, link: &Link, handle: &TcpConnection, items: Vec<Value>) {
        let kind = items
            .first()
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let text = |index: usize| {
            items
                .get(index)
                .and_then(Value::as_bytes)
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
        };
        let bytes = |index: usize| {
            items
                .get(index)
                .and_then(Value::as_bytes)
                .unwrap_or_default()
        };
        match kind.as_str() {
            "message" | "smessage" => {
                let channel = bytes(1);
                let callback = {
                    let subscriptions = self.inner.subscriptions.borrow();
                    let map = if kind == "message" {
                        &subscriptions.channels
                    } else {
                        &subscriptions.shard_channels
                    };
                    map.get(channel).cloned()
                };
                if let Some(callback) = callback {
                    let name = text(1);
                    call_user(&|| format!("redis message callback ({name})"), || {
                        callback(&name, bytes(2))
                    });
                }
            }
            "pmessage" => {
                let callback = self
                    .inner
                    .subscriptions
                    .borrow()
                    .patterns
                    .get(bytes(1))
                    .cloned();
                if let Some(callback) = callback {
                    let (pattern, channel) = (text(1), text(2));
                    call_user(&|| format!("redis pmessage callback ({pattern})"), || {
                        callback(&pattern, &channel, bytes(3))
                    });
                }
            }
            "subscribe" => {
                link.confirm(&kind);
                let channel = bytes(1);
                let callback = {
                    let mut subscriptions = self.inner.subscriptions.borrow_mut();
                    // A confirmation after an unsubscribe asked meanwhile is no subscription.
                    if !subscriptions.channels.contains_key(channel) {
                        return;
                    }
                    subscriptions.confirmed.insert(channel.to_vec());
                    subscriptions.on_subscribed.clone()
                };
                if let Some(callback) = callback {
                    let name = text(1);
                    call_user(&|| format!("redis on_subscribed ({name})"), || {
                        callback(&name)
                    });
                }
            }
            "unsubscribe" => {
                link.confirm(&kind);
                // Until a later `SUBSCRIBE` is confirmed (one asked after this, if any).
                self.inner
                    .subscriptions
                    .borrow_mut()
                    .confirmed
                    .remove(bytes(1));
            }
            "psubscribe" | "ssubscribe" | "punsubscribe" | "sunsubscribe" => link.confirm(&kind),
            // PING on a RESP2 subscribed connection.
            "pong" if link.role == Role::Subscriber => link.answer(handle, Ok(Value::Nil)),
            _ if link.role == Role::Subscriber && self.inner.resp3.get() == Some(false) => {
                // Not pub/sub: an answer to a command on that connection.
                link.answer(handle, Ok(Value::Array(items)));
            }
            _ => log::debug!("redis: a push frame of kind {kind:?} ignored"),
        }
    }
}
