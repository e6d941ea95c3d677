//! [`Subscriptions`]: what a client is subscribed to, with each callback, and which channels
//! Redis confirmed on the current pub/sub connection.
//!
//! The client keeps them so a reconnect can make them all again; the commands that make them
//! and the dispatch of the messages that arrive are in `pubsub.rs`.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

pub(crate) type MessageCallback = Rc<dyn Fn(&str, &[u8])>;
pub(crate) type PatternCallback = Rc<dyn Fn(&str, &str, &[u8])>;
pub(crate) type SubscribedCallback = Rc<dyn Fn(&str)>;

/// What the client is subscribed to, with each callback.
#[derive(Default)]
pub(crate) struct Subscriptions {
    pub(crate) channels: HashMap<Vec<u8>, MessageCallback>,
    pub(crate) patterns: HashMap<Vec<u8>, PatternCallback>,
    pub(crate) shard_channels: HashMap<Vec<u8>, MessageCallback>,
    /// The channels whose `SUBSCRIBE` Redis confirmed on the current pub/sub connection.
    pub(crate) confirmed: HashSet<Vec<u8>>,
    pub(crate) on_subscribed: Option<SubscribedCallback>,
}

/// The three kinds of subscription: channels, patterns, shard channels.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    /// The command that subscribes to this kind, in lowercase (as its confirmations name it).
    pub(crate) fn subscribe(self) -> &'static str {
        match self {
            Kind::Channel => "subscribe",
            Kind::Pattern => "psubscribe",
            Kind::Shard => "ssubscribe",
        }
    }

    /// The command that unsubscribes from this kind, in lowercase.
    pub(crate) fn unsubscribe(self) -> &'static str {
        match self {
            Kind::Channel => "unsubscribe",
            Kind::Pattern => "punsubscribe",
            Kind::Shard => "sunsubscribe",
        }
    }
}

impl Subscriptions {
    pub(crate) fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.patterns.is_empty() && self.shard_channels.is_empty()
    }

    /// Every name subscribed to of `kind`.
    pub(crate) fn names(&self, kind: Kind) -> Vec<Vec<u8>> {
        match kind {
            Kind::Channel => self.channels.keys().cloned().collect(),
            Kind::Pattern => self.patterns.keys().cloned().collect(),
            Kind::Shard => self.shard_channels.keys().cloned().collect(),
        }
    }

    /// Forgets `names` of `kind` (every one of that kind for an empty list); the names that
    /// were subscribed to, to unsubscribe from.
    pub(crate) fn remove(&mut self, kind: Kind, mut names: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let keys = self.names(kind);
        if names.is_empty() {
            names = keys;
        } else {
            names.retain(|name| keys.contains(name));
        }
        for name in &names {
            if let Kind::Channel = kind {
                self.confirmed.remove(name);
            }
            match kind {
                Kind::Channel => self.channels.remove(name).map(|_| ()),
                Kind::Pattern => self.patterns.remove(name).map(|_| ()),
                Kind::Shard => self.shard_channels.remove(name).map(|_| ()),
            };
        }
        names
    }

    /// The pub/sub connection closed: no subscription is in effect until restored.
    pub(crate) fn lost(&mut self) {
        self.confirmed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_channels(names: &[&str]) -> Subscriptions {
        let mut subscriptions = Subscriptions::default();
        for name in names {
            let callback: MessageCallback = Rc::new(|_, _| {});
            subscriptions
                .channels
                .insert(name.as_bytes().to_vec(), callback);
            subscriptions.confirmed.insert(name.as_bytes().to_vec());
        }
        subscriptions
    }

    #[test]
    fn removing_names_unsubscribes_only_those_subscribed_to() {
        let mut subscriptions = with_channels(&["a", "b"]);
        let removed = subscriptions.remove(Kind::Channel, vec![b"a".to_vec(), b"z".to_vec()]);
        assert_eq!(removed, [b"a".to_vec()]);
        assert_eq!(subscriptions.names(Kind::Channel), [b"b".to_vec()]);
        assert!(!subscriptions.confirmed.contains(b"a".as_slice()));
        assert!(subscriptions.confirmed.contains(b"b".as_slice()));
    }

    #[test]
    fn removing_no_names_unsubscribes_every_one_of_that_kind() {
        let mut subscriptions = with_channels(&["a", "b"]);
        let pattern: PatternCallback = Rc::new(|_, _, _| {});
        subscriptions.patterns.insert(b"p*".to_vec(), pattern);
        let mut removed = subscriptions.remove(Kind::Channel, Vec::new());
        removed.sort();
        assert_eq!(removed, [b"a".to_vec(), b"b".to_vec()]);
        assert!(subscriptions.confirmed.is_empty());
        assert!(!subscriptions.is_empty(), "the pattern is still there");
        assert_eq!(subscriptions.remove(Kind::Pattern, Vec::new()).len(), 1);
        assert!(subscriptions.is_empty());
    }
}
