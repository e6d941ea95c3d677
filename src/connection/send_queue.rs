//! The part of a connection's send queue that holds shared messages by reference.
//!
//! A connection's queued bytes normally live in its `send_buffer` (one `Vec`). Once a
//! [`SharedMessage`](crate::protocols::SharedMessage) has to wait for a full socket, it is queued
//! here as a reference to its bytes, and whatever is sent after it queues behind it (still in
//! order): the `send_buffer` is written first, then this queue. It exists only while the kernel
//! pushes back (the connection waits for writable), so the common path never looks at it.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::rc::Rc;

use super::stream::Stream;

/// Owned bytes queued behind shared ones are gathered into pieces of up to this size.
const OWNED_PIECE: usize = 16 * 1024;

#[derive(Default)]
pub(crate) struct SendQueue {
    segments: VecDeque<Segment>,
    /// How much of the front segment is written.
    offset: usize,
    /// Bytes not yet written, over all segments.
    bytes: usize,
}

enum Segment {
    Shared(Rc<[u8]>),
    Owned(Vec<u8>),
}

impl Segment {
    fn bytes(&self) -> &[u8] {
        match self {
            Segment::Shared(bytes) => bytes,
            Segment::Owned(bytes) => bytes,
        }
    }
}

impl SendQueue {
    /// Bytes waiting.
    pub(crate) fn len(&self) -> usize {
        self.bytes
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Queues a reference to `bytes`, of which the first `written` already went out (only when
    /// the queue is empty).
    pub(crate) fn push_shared(&mut self, bytes: Rc<[u8]>, written: usize) {
        debug_assert!(written == 0 || self.segments.is_empty());
        if written >= bytes.len() {
            return;
        }
        if self.segments.is_empty() {
            self.offset = written;
        }
        self.bytes += bytes.len() - written;
        self.segments.push_back(Segment::Shared(bytes));
    }

    /// Queues a copy of `bytes` behind what is queued.
    pub(crate) fn push_owned(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.bytes += bytes.len();
        if let Some(Segment::Owned(last)) = self.segments.back_mut() {
            if last.len() + bytes.len() <= OWNED_PIECE {
                last.extend_from_slice(bytes);
                return;
            }
        }
        self.segments.push_back(Segment::Owned(bytes.to_vec()));
    }

    /// Writes from the front until the queue is empty (`Ok(true)`) or the kernel would block
    /// (`Ok(false)`); a written segment's reference is dropped at once.
    pub(crate) fn write_to(&mut self, stream: &Stream, written: &mut u64) -> io::Result<bool> {
        let mut stream = stream;
        while let Some(front) = self.segments.front() {
            let bytes = front.bytes();
            while self.offset < bytes.len() {
                match stream.write(&bytes[self.offset..]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(count) => {
                        self.offset += count;
                        self.bytes -= count;
                        *written += count as u64;
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => return Err(error),
                }
            }
            self.segments.pop_front();
            self.offset = 0;
        }
        Ok(true)
    }

    /// Drops everything queued.
    #[cfg(test)]
    pub(crate) fn clear(&mut self) {
        *self = SendQueue::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_and_owned_bytes_keep_their_order_and_count() {
        let mut queue = SendQueue::default();
        let shared: Rc<[u8]> = Rc::from(&b"shared"[..]);
        queue.push_shared(shared.clone(), 2);
        queue.push_owned(b"ab");
        queue.push_shared(shared.clone(), 0);
        assert_eq!(queue.len(), 4 + 2 + 6);
        assert_eq!(Rc::strong_count(&shared), 3);
        let order: Vec<u8> = queue
            .segments
            .iter()
            .enumerate()
            .flat_map(|(index, segment)| {
                let skip = if index == 0 { queue.offset } else { 0 };
                segment.bytes()[skip..].to_vec()
            })
            .collect();
        assert_eq!(order, b"aredabshared");
        queue.clear();
        assert!(queue.is_empty());
        assert_eq!(Rc::strong_count(&shared), 1);
    }
}
