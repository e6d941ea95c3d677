//! What a stream's SSE `id:` holds, and how a `Last-Event-ID` is read back (no I/O).
//!
//! A stream of one topic: the `id:` is that topic's [`EventId`] as it is (with Redis, the stream
//! entry id `<ms>-<seq>`). A stream of several topics: one position per topic, in the order of
//! the request's `topic` parameters, joined by `,`; a topic with no position yet is empty
//! (`1700000000000-0,,1700000000000-3`). A client reconnecting with the same topics sends it
//! back, and each topic resumes after its own id.

use crate::channel::EventId;
use crate::protocols::http::ServerSentEvents;

use super::settings::MAX_LAST_EVENT_ID_LEN;

/// Where one topic of a new stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    /// No position: live events only.
    Live,
    /// After this id: the history after it, then live.
    After(EventId),
    /// A `Last-Event-ID` the hub cannot read: a reset, then live.
    Malformed,
}

/// Reads a `Last-Event-ID` (or `last_event_id` parameter) for a stream of `topics` topics.
pub(crate) fn parse_last_event_id(value: Option<&str>, topics: usize) -> Vec<Resume> {
    let value = value.map(str::trim).unwrap_or("");
    if value.is_empty() {
        return vec![Resume::Live; topics];
    }
    if value.len() > MAX_LAST_EVENT_ID_LEN {
        return vec![Resume::Malformed; topics];
    }
    let parts: Vec<&str> = value.split(',').collect();
    if parts.len() != topics {
        return vec![Resume::Malformed; topics];
    }
    parts
        .iter()
        .map(|part| {
            let part = part.trim();
            if part.is_empty() {
                Resume::Live
            } else {
                part.parse::<EventId>()
                    .map(Resume::After)
                    .unwrap_or(Resume::Malformed)
            }
        })
        .collect()
}

/// The `id:` of a stream whose topics are at `positions`.
pub(crate) fn format_cursor(positions: &[Option<EventId>]) -> String {
    let mut text = String::new();
    for (index, position) in positions.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        if let Some(id) = position {
            text.push_str(&id.to_string());
        }
    }
    text
}

/// Why a stream got a reset event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResetReason {
    /// The asked-for id is older than the history, from another epoch, or unknown.
    Gap,
    /// The `Last-Event-ID` could not be read.
    Malformed,
    /// The broker was unreachable and the topic had no position to replay from.
    Outage,
}

impl ResetReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ResetReason::Gap => "gap",
            ResetReason::Malformed => "malformed",
            ResetReason::Outage => "outage",
        }
    }
}

/// The data of a reset event: `{"topic":"news","reason":"gap"}`.
pub(crate) fn reset_data(topic: &str, reason: ResetReason) -> String {
    let mut text = String::from("{\"topic\":\"");
    for character in topic.chars() {
        match character {
            '"' => text.push_str("\\\""),
            '\\' => text.push_str("\\\\"),
            character if (character as u32) < 0x20 => {
                text.push_str(&format!("\\u{:04x}", character as u32))
            }
            character => text.push(character),
        }
    }
    text.push_str("\",\"reason\":\"");
    text.push_str(reason.as_str());
    text.push_str("\"}");
    text
}

/// A reset event: `event: reset`, its data, and the stream's position as its `id:`.
pub(crate) fn reset_event(topic: &str, reason: ResetReason, cursor: &[Option<EventId>]) -> Vec<u8> {
    let mut bytes = ServerSentEvents::new()
        .event("reset")
        .data(reset_data(topic, reason))
        .to_bytes();
    bytes.pop();
    bytes.extend_from_slice(format!("id: {}\n\n", format_cursor(cursor)).as_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(a: u64, b: u64) -> EventId {
        EventId::new(a, b)
    }

    #[test]
    fn no_last_event_id_means_live_for_every_topic() {
        assert_eq!(parse_last_event_id(None, 2), vec![Resume::Live; 2]);
        assert_eq!(parse_last_event_id(Some("  "), 1), vec![Resume::Live]);
    }

    #[test]
    fn one_topic_reads_the_id_as_it_is() {
        assert_eq!(
            parse_last_event_id(Some("1700-3"), 1),
            vec![Resume::After(id(1700, 3))]
        );
        assert_eq!(
            parse_last_event_id(Some("bogus"), 1),
            vec![Resume::Malformed]
        );
    }

    #[test]
    fn several_topics_read_one_position_each_and_empty_is_live() {
        assert_eq!(
            parse_last_event_id(Some("5-1,,7-0"), 3),
            vec![
                Resume::After(id(5, 1)),
                Resume::Live,
                Resume::After(id(7, 0))
            ]
        );
    }

    #[test]
    fn a_wrong_number_of_positions_is_malformed_for_all() {
        assert_eq!(
            parse_last_event_id(Some("5-1"), 2),
            vec![Resume::Malformed; 2]
        );
        let long = "1-1,".repeat(2000);
        assert_eq!(parse_last_event_id(Some(&long), 1), vec![Resume::Malformed]);
    }

    #[test]
    fn a_cursor_reads_back_as_it_was_written() {
        let positions = [Some(id(1, 2)), None, Some(id(3, 4))];
        let text = format_cursor(&positions);
        assert_eq!(text, "1-2,,3-4");
        assert_eq!(
            parse_last_event_id(Some(&text), 3),
            vec![
                Resume::After(id(1, 2)),
                Resume::Live,
                Resume::After(id(3, 4))
            ]
        );
        assert_eq!(format_cursor(&[Some(id(9, 9))]), "9-9");
    }

    #[test]
    fn reset_data_escapes_the_topic() {
        assert_eq!(
            reset_data("a\"b\\c", ResetReason::Gap),
            r#"{"topic":"a\"b\\c","reason":"gap"}"#
        );
    }
}
