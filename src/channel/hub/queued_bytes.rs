//! The process-wide count of shared event bytes still held by some subscriber's send queue.
//!
//! Every event the hub fans out is one [`SharedMessage`]; a subscriber whose socket is full
//! queues a reference to it. The hub keeps one more reference to each message that was queued
//! by someone, oldest first, and forgets it once the hub is its only holder (every queue wrote
//! it out or was dropped). What is left is the memory the stuck subscribers hold, counted once.

use std::collections::VecDeque;

use crate::protocols::SharedMessage;

#[derive(Default)]
pub(crate) struct QueuedBytes {
    held: VecDeque<SharedMessage>,
    bytes: usize,
}

impl QueuedBytes {
    /// Notes `message` after it was sent to everyone: kept if some queue holds it.
    pub(crate) fn note(&mut self, message: &SharedMessage) {
        // The caller's handle and ours: more than that means a send queue holds it.
        if message.holders() > 1 {
            self.bytes += message.as_bytes().len();
            self.held.push_back(message.clone());
        }
        self.forget_written();
    }

    /// Forgets the oldest messages that no queue holds any more.
    pub(crate) fn forget_written(&mut self) {
        while let Some(front) = self.held.front() {
            if front.holders() > 1 {
                break;
            }
            self.bytes -= front.as_bytes().len();
            self.held.pop_front();
        }
    }

    /// Bytes held by send queues (an upper bound: a message is counted from the oldest one
    /// still held on).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_nobody_queued_is_not_counted() {
        let mut queued = QueuedBytes::default();
        let message = SharedMessage::raw([0u8; 100]);
        queued.note(&message);
        // Only the caller and the hub's own handle... the hub took none.
        assert_eq!(queued.bytes(), 0);
    }

    #[test]
    fn a_held_message_is_counted_until_its_holder_lets_go() {
        let mut queued = QueuedBytes::default();
        let message = SharedMessage::raw([0u8; 100]);
        let queue_holds = message.clone();
        queued.note(&message);
        drop(message);
        assert_eq!(queued.bytes(), 100);
        drop(queue_holds);
        queued.forget_written();
        assert_eq!(queued.bytes(), 0);
    }
}
