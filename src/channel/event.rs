//! [`EventId`], [`ChannelEvent`] and [`History`]: what a publish is given and what a subscriber
//! and a history query get back.

use std::fmt;
use std::rc::Rc;
use std::str::FromStr;

/// The id a transport gave a published event: two numbers, written `A-B`.
///
/// In-process and through the relay, `A` is the transport's epoch (its start time in
/// milliseconds; a restarted relay has a new one) and `B` one counter for every event it
/// carried, so ids of different events are ordered too. With Redis it is the stream entry id
/// `<ms>-<seq>`. Ids order as the events were published (within one epoch / one stream).
///
/// ```
/// use workerman::channel::EventId;
/// let id: EventId = "1700000000000-42".parse().unwrap();
/// assert_eq!(id.to_string(), "1700000000000-42");
/// assert!(id < EventId::new(1700000000000, 43));
/// assert!("42".parse::<EventId>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct EventId {
    major: u64,
    minor: u64,
}

impl EventId {
    /// The id `major-minor`.
    ///
    /// ```
    /// let id = workerman::channel::EventId::new(7, 1);
    /// assert_eq!(id.parts(), (7, 1));
    /// ```
    pub const fn new(major: u64, minor: u64) -> EventId {
        EventId { major, minor }
    }

    /// Its two numbers: (epoch or milliseconds, sequence).
    ///
    /// ```
    /// assert_eq!(workerman::channel::EventId::new(3, 4).parts(), (3, 4));
    /// ```
    pub const fn parts(&self) -> (u64, u64) {
        (self.major, self.minor)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}-{}", self.major, self.minor)
    }
}

/// Why a text is not an [`EventId`].
///
/// ```
/// assert!("x-1".parse::<workerman::channel::EventId>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseEventIdError;

impl fmt::Display for ParseEventIdError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an event id is two decimal numbers joined by '-'")
    }
}

impl std::error::Error for ParseEventIdError {}

impl FromStr for EventId {
    type Err = ParseEventIdError;

    fn from_str(text: &str) -> Result<EventId, ParseEventIdError> {
        let (major, minor) = text.split_once('-').ok_or(ParseEventIdError)?;
        let number = |part: &str| {
            if part.is_empty() || part.len() > 20 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseEventIdError);
            }
            part.parse::<u64>().map_err(|_| ParseEventIdError)
        };
        Ok(EventId::new(number(major)?, number(minor)?))
    }
}

/// One published event as a subscriber gets it: its id, its name and its bytes. Cloning is
/// cheap (the name and bytes are shared).
///
/// ```
/// use workerman::channel::{ChannelEvent, EventId};
/// let event = ChannelEvent::new(EventId::new(1, 1), "news", b"hello".as_slice());
/// let copy = event.clone();
/// assert_eq!(&*copy.data, b"hello");
/// assert_eq!(&*copy.event, "news");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelEvent {
    /// The id its transport gave it.
    pub id: EventId,
    /// The event (topic) it was published to.
    pub event: Rc<str>,
    /// The published bytes.
    pub data: Rc<[u8]>,
}

impl ChannelEvent {
    /// An event from its parts.
    ///
    /// ```
    /// let event = workerman::channel::ChannelEvent::new(Default::default(), "e", vec![1u8]);
    /// assert_eq!(event.data.len(), 1);
    /// ```
    pub fn new(id: EventId, event: impl Into<Rc<str>>, data: impl Into<Rc<[u8]>>) -> ChannelEvent {
        ChannelEvent {
            id,
            event: event.into(),
            data: data.into(),
        }
    }
}

/// The answer to [`Channel::history`](super::Channel::history).
///
/// ```
/// use workerman::channel::History;
/// let history = History::After(Vec::new());
/// assert!(!history.is_gap());
/// assert!(History::Gap.is_gap());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum History {
    /// The kept events with an id after the one asked for, oldest first, at most `limit`
    /// (ask again after the last one for more).
    After(Vec<ChannelEvent>),
    /// The id asked for is older than what is kept (events after it were dropped), from another
    /// epoch (the relay restarted), newer than any id given, or malformed: events may have been
    /// missed and cannot be replayed.
    Gap,
}

impl History {
    /// Whether this is [`History::Gap`].
    ///
    /// ```
    /// assert!(workerman::channel::History::Gap.is_gap());
    /// ```
    pub fn is_gap(&self) -> bool {
        matches!(self, History::Gap)
    }
}
