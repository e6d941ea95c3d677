//! The process-wide count of shared event bytes still held by some subscriber's send queue.
//!
//! Every event the hub fans out is one [`SharedMessage`]; a subscriber whose socket is full
//! queues a reference to it. The hub keeps one more reference to each message that was queued
//! by someone, oldest first, and forgets it once the hub is its only holder (every queue wrote
//! it out or was dropped). What is left is the memory the stuck subscribers hold: each message's
//! bytes once, plus what each queue's reference to it costs ([`PER_REFERENCE`]), which for
//! thousands of stuck subscribers is the larger part.

use std::collections::VecDeque;

use crate::protocols::SharedMessage;

/// What one queued reference costs a send queue, in bytes: its segment (a tag and a fat
/// pointer) with the queue's spare capacity (it grows by doubling).
pub(crate) const PER_REFERENCE: usize = 48;

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

    /// Bytes held by send queues: the messages' bytes (from the oldest one still held on),
    /// and [`PER_REFERENCE`] for each queue's reference to them.
    pub(crate) fn bytes(&self) -> usize {
        let references: usize = self
            .held
            .iter()
            .map(|message| message.holders().saturating_sub(1))
            .sum();
        self.bytes + references * PER_REFERENCE
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
        assert_eq!(queued.bytes(), 100 + PER_REFERENCE);
        drop(queue_holds);
        queued.forget_written();
        assert_eq!(queued.bytes(), 0);
    }
}
