//! The relay's messages, inside `frame://` packages (sans-I/O: bytes in, messages out).
//!
//! Worker to relay: `S event` subscribe, `U event` unsubscribe, `P request name-length name
//! data` publish, `H request after limit event` history, `L request event` the newest kept id,
//! `C history-size` configure. Relay to worker: `E id name-length name data` an event, `A
//! request id` a publish's id, `R request kind name-length name (id data-length data)*` a
//! history answer (kind 0: events, 1: gap), `I request (id)?` the newest kept id (none: absent).
//! Numbers are big-endian: requests and ids u64, name lengths u16, limits and data lengths u32.

use std::rc::Rc;

use super::event::{ChannelEvent, EventId, History};

/// A message from a worker process to the relay.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Request<'a> {
    Subscribe(&'a str),
    Unsubscribe(&'a str),
    Publish {
        request: u64,
        event: &'a str,
        data: &'a [u8],
    },
    History {
        request: u64,
        after: EventId,
        limit: u32,
        event: &'a str,
    },
    LastId {
        request: u64,
        event: &'a str,
    },
    Configure {
        history_size: u64,
    },
}

/// A message from the relay to a worker process.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    Event(ChannelEvent),
    Published { request: u64, id: EventId },
    History { request: u64, history: History },
    LastId { request: u64, id: Option<EventId> },
}

/// Appends a whole `frame://` package (its 4-byte length first) holding `payload`'s parts.
fn package(parts: &[&[u8]]) -> Vec<u8> {
    let length: usize = 4 + parts.iter().map(|part| part.len()).sum::<usize>();
    let mut out = Vec::with_capacity(length);
    out.extend_from_slice(&(length as u32).to_be_bytes());
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

fn id_bytes(id: &EventId) -> [u8; 16] {
    let (major, minor) = id.parts();
    let mut out = [0; 16];
    out[..8].copy_from_slice(&major.to_be_bytes());
    out[8..].copy_from_slice(&minor.to_be_bytes());
    out
}

pub(crate) fn subscribe(event: &str) -> Vec<u8> {
    package(&[b"S", event.as_bytes()])
}

pub(crate) fn unsubscribe(event: &str) -> Vec<u8> {
    package(&[b"U", event.as_bytes()])
}

pub(crate) fn publish(request: u64, event: &str, data: &[u8]) -> Vec<u8> {
    package(&[
        b"P",
        &request.to_be_bytes(),
        &(event.len() as u16).to_be_bytes(),
        event.as_bytes(),
        data,
    ])
}

pub(crate) fn history(request: u64, after: &EventId, limit: u32, event: &str) -> Vec<u8> {
    package(&[
        b"H",
        &request.to_be_bytes(),
        &id_bytes(after),
        &limit.to_be_bytes(),
        event.as_bytes(),
    ])
}

pub(crate) fn last_id(request: u64, event: &str) -> Vec<u8> {
    package(&[b"L", &request.to_be_bytes(), event.as_bytes()])
}

pub(crate) fn last_id_answer(request: u64, id: Option<&EventId>) -> Vec<u8> {
    match id {
        Some(id) => package(&[b"I", &request.to_be_bytes(), &id_bytes(id)]),
        None => package(&[b"I", &request.to_be_bytes()]),
    }
}

pub(crate) fn configure(history_size: u64) -> Vec<u8> {
    package(&[b"C", &history_size.to_be_bytes()])
}

pub(crate) fn event(entry: &ChannelEvent) -> Vec<u8> {
    package(&[
        b"E",
        &id_bytes(&entry.id),
        &(entry.event.len() as u16).to_be_bytes(),
        entry.event.as_bytes(),
        &entry.data,
    ])
}

pub(crate) fn published(request: u64, id: &EventId) -> Vec<u8> {
    package(&[b"A", &request.to_be_bytes(), &id_bytes(id)])
}

/// A history answer; `entries` all belong to `event`.
pub(crate) fn history_answer(request: u64, event: &str, history: &History) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&request.to_be_bytes());
    match history {
        History::Gap => body.push(1),
        History::After(entries) => {
            body.push(0);
            body.extend_from_slice(&(event.len() as u16).to_be_bytes());
            body.extend_from_slice(event.as_bytes());
            for entry in entries {
                body.extend_from_slice(&id_bytes(&entry.id));
                body.extend_from_slice(&(entry.data.len() as u32).to_be_bytes());
                body.extend_from_slice(&entry.data);
            }
        }
    }
    package(&[b"R", &body])
}

/// Reads numbers and strings off a payload; every read checks the length.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn id(&mut self) -> Option<EventId> {
        Some(EventId::new(self.u64()?, self.u64()?))
    }

    fn name(&mut self) -> Option<&'a str> {
        let length = self.u16()? as usize;
        std::str::from_utf8(self.take(length)?).ok()
    }

    fn text_rest(&mut self) -> Option<&'a str> {
        std::str::from_utf8(std::mem::take(&mut self.rest)).ok()
    }
}

/// Decodes a worker's message (a package's payload, its length header cut off).
pub(crate) fn decode_request(payload: &[u8]) -> Option<Request<'_>> {
    let (&kind, rest) = payload.split_first()?;
    let mut reader = Reader { rest };
    Some(match kind {
        b'S' => Request::Subscribe(reader.text_rest()?),
        b'U' => Request::Unsubscribe(reader.text_rest()?),
        b'P' => {
            let request = reader.u64()?;
            let event = reader.name()?;
            Request::Publish {
                request,
                event,
                data: reader.rest,
            }
        }
        b'H' => Request::History {
            request: reader.u64()?,
            after: reader.id()?,
            limit: reader.u32()?,
            event: reader.text_rest()?,
        },
        b'L' => Request::LastId {
            request: reader.u64()?,
            event: reader.text_rest()?,
        },
        b'C' => Request::Configure {
            history_size: reader.u64()?,
        },
        _ => return None,
    })
}

/// Decodes the relay's message.
pub(crate) fn decode_reply(payload: &[u8]) -> Option<Reply> {
    let (&kind, rest) = payload.split_first()?;
    let mut reader = Reader { rest };
    Some(match kind {
        b'E' => {
            let id = reader.id()?;
            let event = reader.name()?;
            Reply::Event(ChannelEvent::new(id, event, reader.rest))
        }
        b'A' => Reply::Published {
            request: reader.u64()?,
            id: reader.id()?,
        },
        b'R' => {
            let request = reader.u64()?;
            let history = match reader.take(1)?[0] {
                1 => History::Gap,
                0 => {
                    let event: Rc<str> = Rc::from(reader.name()?);
                    let mut entries = Vec::new();
                    while !reader.rest.is_empty() {
                        let id = reader.id()?;
                        let length = reader.u32()? as usize;
                        let data = reader.take(length)?;
                        entries.push(ChannelEvent {
                            id,
                            event: event.clone(),
                            data: Rc::from(data),
                        });
                    }
                    History::After(entries)
                }
                _ => return None,
            };
            Reply::History { request, history }
        }
        b'I' => {
            let request = reader.u64()?;
            let id = match reader.rest.len() {
                0 => None,
                16 => Some(reader.id()?),
                _ => return None,
            };
            Reply::LastId { request, id }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(package: &[u8]) -> &[u8] {
        let length = u32::from_be_bytes(package[..4].try_into().unwrap()) as usize;
        assert_eq!(length, package.len());
        &package[4..]
    }

    #[test]
    fn requests_round_trip() {
        let id = EventId::new(17, 4);
        assert_eq!(
            decode_request(payload(&subscribe("news"))),
            Some(Request::Subscribe("news"))
        );
        assert_eq!(
            decode_request(payload(&unsubscribe("news"))),
            Some(Request::Unsubscribe("news"))
        );
        assert_eq!(
            decode_request(payload(&publish(9, "news", b"da\0ta"))),
            Some(Request::Publish {
                request: 9,
                event: "news",
                data: b"da\0ta"
            })
        );
        assert_eq!(
            decode_request(payload(&history(3, &id, 50, "news"))),
            Some(Request::History {
                request: 3,
                after: id,
                limit: 50,
                event: "news"
            })
        );
        assert_eq!(
            decode_request(payload(&last_id(4, "news"))),
            Some(Request::LastId {
                request: 4,
                event: "news"
            })
        );
        assert_eq!(
            decode_request(payload(&configure(7))),
            Some(Request::Configure { history_size: 7 })
        );
    }

    #[test]
    fn replies_round_trip() {
        let entry = ChannelEvent::new(EventId::new(1, 2), "news", b"hello".as_slice());
        assert_eq!(
            decode_reply(payload(&event(&entry))),
            Some(Reply::Event(entry.clone()))
        );
        assert_eq!(
            decode_reply(payload(&published(5, &entry.id))),
            Some(Reply::Published {
                request: 5,
                id: entry.id
            })
        );
        let second = ChannelEvent::new(EventId::new(1, 3), "news", Vec::new());
        let history = History::After(vec![entry, second]);
        assert_eq!(
            decode_reply(payload(&history_answer(6, "news", &history))),
            Some(Reply::History {
                request: 6,
                history
            })
        );
        assert_eq!(
            decode_reply(payload(&last_id_answer(8, Some(&EventId::new(1, 2))))),
            Some(Reply::LastId {
                request: 8,
                id: Some(EventId::new(1, 2))
            })
        );
        assert_eq!(
            decode_reply(payload(&last_id_answer(8, None))),
            Some(Reply::LastId {
                request: 8,
                id: None
            })
        );
        assert_eq!(decode_reply(b"I\0\0\0\0\0\0\0\x08\x01"), None);
        assert_eq!(
            decode_reply(payload(&history_answer(6, "news", &History::Gap))),
            Some(Reply::History {
                request: 6,
                history: History::Gap
            })
        );
    }

    #[test]
    fn truncated_or_unknown_messages_are_refused_without_panicking() {
        let entry = ChannelEvent::new(EventId::new(1, 2), "news", b"hello".as_slice());
        let packages = [
            publish(9, "news", b"x"),
            history(3, &entry.id, 5, "n"),
            configure(1),
            last_id(2, "news"),
            last_id_answer(2, Some(&entry.id)),
            event(&entry),
            published(1, &entry.id),
            history_answer(1, "news", &History::After(vec![entry.clone()])),
        ];
        for package in &packages {
            let whole = payload(package);
            for cut in 0..whole.len() {
                let _ = decode_request(&whole[..cut]);
                let _ = decode_reply(&whole[..cut]);
            }
        }
        assert_eq!(decode_request(b"Zjunk"), None);
        assert_eq!(decode_reply(b""), None);
        assert_eq!(decode_request(b"S\xff\xfe"), None);
        // A history answer cut inside an entry is refused, not shortened.
        let answer = history_answer(1, "news", &History::After(vec![entry]));
        assert_eq!(
            decode_reply(&payload(&answer)[..payload(&answer).len() - 1]),
            None
        );
    }
}
