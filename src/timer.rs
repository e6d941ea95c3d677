//! Timers, driven by the worker's reactor: `Timer::add`, `Timer::once`, `Timer::del`, `Timer::del_all`.
//!
//! Timers run on the worker's thread, between I/O events, so a callback may freely use connections,
//! add timers, or delete any timer, its own included. A repeating timer keeps its cadence: the next
//! deadline is the previous deadline plus the interval (Workerman re-arms at now + interval and
//! drifts). If the reactor was held up for longer than a whole interval, the missed ticks are skipped
//! rather than fired in a burst.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use slab::Slab;
use std::fmt;
use std::time::{Duration, Instant};

use crate::reactor;

/// Identifies a timer; returned by [`Timer::add`] and [`Timer::once`], taken by [`Timer::del`].
///
/// An opaque number (Workerman's int ids), unique within a worker thread: an id never names a
/// later timer, even after its own timer is gone.
///
/// ```no_run
/// # use workerman::Timer;
/// let id = Timer::add(1.0, |_| {});
/// println!("timer {id}");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(u64);

impl TimerId {
    fn new(key: u32, generation: u32) -> TimerId {
        TimerId(u64::from(generation) << 32 | u64::from(key))
    }

    /// The timer's slot and that slot's generation.
    fn parts(self) -> (u32, u32) {
        (self.0 as u32, (self.0 >> 32) as u32)
    }

    /// The id as a number.
    ///
    /// ```no_run
    /// # use workerman::Timer;
    /// assert!(Timer::add(1.0, |_| {}).as_u64() >= 1);
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Workerman's `Timer`: static functions that schedule callbacks on this worker's reactor.
///
/// They must be called on a thread that is running a worker (from `on_worker_start` or any other
/// callback); elsewhere they panic with a message that says so.
///
/// ```no_run
/// use workerman::{Timer, Worker};
///
/// let mut worker = Worker::new("text://0.0.0.0:8000");
/// worker.on_worker_start(|_worker| {
///     let mut ticks = 0;
///     Timer::add(1.0, move |timer_id| {
///         ticks += 1;
///         println!("tick {ticks}");
///         if ticks == 3 {
///             Timer::del(timer_id);
///         }
///     });
/// });
/// Worker::run_all();
/// ```
pub struct Timer;

impl Timer {
    /// Calls `callback` every `seconds` seconds until the timer is deleted; returns its id.
    ///
    /// `seconds` may be fractional; `0.0` fires on every turn of the event loop, as in Workerman.
    ///
    /// # Panics
    /// If `seconds` is negative or not finite, or no worker is running on this thread.
    ///
    /// ```no_run
    /// # use workerman::Timer;
    /// Timer::add(0.5, |timer_id| println!("timer {timer_id} fired"));
    /// ```
    pub fn add(seconds: f64, callback: impl FnMut(TimerId) + 'static) -> TimerId {
        let interval = interval_from_seconds(seconds, "Timer::add");
        reactor::with_running("Timer::add", |reactor| {
            reactor
                .timers
                .insert(interval, TimerCallback::Repeat(Box::new(callback)))
        })
    }

    /// Calls `callback` once, `seconds` seconds from now; returns its id (deleting it cancels it).
    ///
    /// # Panics
    /// If `seconds` is negative or not finite, or no worker is running on this thread.
    ///
    /// ```no_run
    /// # use workerman::Timer;
    /// Timer::once(2.5, || println!("two and a half seconds later"));
    /// ```
    pub fn once(seconds: f64, callback: impl FnOnce() + 'static) -> TimerId {
        let interval = interval_from_seconds(seconds, "Timer::once");
        reactor::with_running("Timer::once", |reactor| {
            reactor
                .timers
                .insert(interval, TimerCallback::Once(Box::new(callback)))
        })
    }

    /// Deletes a timer; `true` if it existed. A callback may delete its own timer.
    ///
    /// Returns `false` (rather than panicking) when no worker runs on this thread.
    ///
    /// ```no_run
    /// # use workerman::Timer;
    /// let id = Timer::add(1.0, |_| {});
    /// assert!(Timer::del(id));
    /// assert!(!Timer::del(id));
    /// ```
    pub fn del(timer_id: TimerId) -> bool {
        reactor::try_with(|reactor| reactor.timers.remove(timer_id)).unwrap_or(false)
    }

    /// Deletes every timer of this worker thread.
    ///
    /// ```no_run
    /// # use workerman::Timer;
    /// Timer::del_all();
    /// assert_eq!(Timer::count(), 0);
    /// ```
    pub fn del_all() {
        reactor::try_with(|reactor| reactor.timers.clear());
    }

    /// How many timers are scheduled on this worker thread (0 when no worker runs here).
    ///
    /// ```no_run
    /// # use workerman::Timer;
    /// println!("{} timers", Timer::count());
    /// ```
    pub fn count() -> usize {
        reactor::try_with(|reactor| reactor.timers.len()).unwrap_or(0)
    }
}

fn interval_from_seconds(seconds: f64, caller: &str) -> Duration {
    assert!(
        seconds.is_finite() && seconds >= 0.0,
        "{caller}: the interval must be a finite number of seconds, 0 or more (got {seconds})"
    );
    Duration::from_secs_f64(seconds)
}

pub(crate) enum TimerCallback {
    Repeat(Box<dyn FnMut(TimerId)>),
    Once(Box<dyn FnOnce()>),
}

/// A due timer, taken out of the queue while its callback runs.
pub(crate) struct ScheduledTimer {
    pub(crate) id: TimerId,
    pub(crate) deadline: Instant,
    pub(crate) interval: Duration,
    pub(crate) callback: TimerCallback,
}

/// One live timer. Its callback is `None` while it runs.
struct Slot {
    generation: u32,
    deadline: Instant,
    interval: Duration,
    callback: Option<TimerCallback>,
}

/// The timers of one reactor: a slab of live timers and a binary heap of `(deadline, slot,
/// generation)`, earliest first.
///
/// A [`TimerId`] is the slot and its generation, so finding a timer costs no hashing and a stale
/// id never reaches a newer timer in the same slot. Deleting a timer frees its slot at once and
/// leaves its heap entry to be skipped when it comes up (or dropped by [`Self::compact`]); a
/// firing costs one heap pop and one push.
#[derive(Default)]
pub(crate) struct TimerQueue {
    slots: Slab<Slot>,
    heap: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    generation: u32,
}

impl TimerQueue {
    pub(crate) fn insert(&mut self, interval: Duration, callback: TimerCallback) -> TimerId {
        self.generation = self.generation.wrapping_add(1).max(1);
        let deadline = Instant::now() + interval;
        let key = self.slots.insert(Slot {
            generation: self.generation,
            deadline,
            interval,
            callback: Some(callback),
        });
        let key = u32::try_from(key).expect("fewer than 2^32 timers");
        self.heap.push(Reverse((deadline, key, self.generation)));
        self.compact();
        TimerId::new(key, self.generation)
    }

    fn slot(&self, id: TimerId) -> Option<&Slot> {
        let (key, generation) = id.parts();
        self.slots
            .get(key as usize)
            .filter(|slot| slot.generation == generation)
    }

    pub(crate) fn remove(&mut self, id: TimerId) -> bool {
        if self.slot(id).is_none() {
            return false;
        }
        self.slots.remove(id.parts().0 as usize);
        true
    }

    pub(crate) fn clear(&mut self) {
        self.slots.clear();
        self.heap.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The earliest deadline in the heap (possibly a deleted timer's: then the loop wakes early
    /// and finds nothing due).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((deadline, _, _))| *deadline)
    }

    /// Moves every timer due at `now` into `batch`, in deadline order. Their slots stay, so one
    /// deleted by an earlier callback of the same batch can be skipped with [`Self::is_live`].
    pub(crate) fn take_due(&mut self, now: Instant, batch: &mut Vec<ScheduledTimer>) {
        while let Some(&Reverse((deadline, key, generation))) = self.heap.peek() {
            if deadline > now {
                break;
            }
            self.heap.pop();
            let Some(slot) = self.slots.get_mut(key as usize) else {
                continue;
            };
            if slot.generation != generation || slot.deadline != deadline {
                continue;
            }
            let Some(callback) = slot.callback.take() else {
                continue;
            };
            batch.push(ScheduledTimer {
                id: TimerId::new(key, generation),
                deadline,
                interval: slot.interval,
                callback,
            });
        }
    }

    pub(crate) fn is_live(&self, id: TimerId) -> bool {
        self.slot(id).is_some()
    }

    /// Puts a repeating timer back after its callback ran, unless it was deleted meanwhile.
    pub(crate) fn rearm(&mut self, timer: ScheduledTimer, now: Instant) {
        let (key, generation) = timer.id.parts();
        let Some(slot) = self
            .slots
            .get_mut(key as usize)
            .filter(|slot| slot.generation == generation)
        else {
            return;
        };
        let deadline = next_deadline(timer.deadline, timer.interval, now);
        slot.deadline = deadline;
        slot.callback = Some(timer.callback);
        self.heap.push(Reverse((deadline, key, generation)));
    }

    /// Forgets a one-shot timer that has fired.
    pub(crate) fn finish(&mut self, id: TimerId) {
        self.remove(id);
    }

    /// Drops the heap entries of deleted timers once they outnumber the live ones (say, after
    /// many streams with a timer each went away): amortized O(1) per insert.
    fn compact(&mut self) {
        if self.heap.len() <= 2 * self.slots.len() + 1024 {
            return;
        }
        let slots = &self.slots;
        self.heap.retain(|&Reverse((deadline, key, generation))| {
            slots
                .get(key as usize)
                .is_some_and(|slot| slot.generation == generation && slot.deadline == deadline)
        });
    }
}

/// The previous deadline plus the interval; ticks that are already wholly in the past are skipped.
fn next_deadline(previous: Instant, interval: Duration, now: Instant) -> Instant {
    let next = previous + interval;
    if next > now || interval.is_zero() {
        return next.max(previous);
    }
    let behind = now.duration_since(next).as_nanos();
    let skipped = behind / interval.as_nanos() + 1;
    let skipped = u32::try_from(skipped).unwrap_or(u32::MAX);
    next + interval.saturating_mul(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_deadline_keeps_cadence_and_skips_whole_missed_ticks() {
        let start = Instant::now();
        let second = Duration::from_secs(1);
        // Fired a little late: the next tick stays on the original grid.
        assert_eq!(
            next_deadline(start, second, start + Duration::from_millis(30)),
            start + second
        );
        // Held up for 3.5 intervals: skip to the next grid point after now.
        assert_eq!(
            next_deadline(start, second, start + Duration::from_millis(3500)),
            start + 4 * second
        );
        // A zero interval fires again on the next turn.
        assert_eq!(next_deadline(start, Duration::ZERO, start), start);
    }

    #[test]
    fn queue_orders_by_deadline_and_skips_deleted() {
        let mut queue = TimerQueue::default();
        let later = queue.insert(
            Duration::from_millis(50),
            TimerCallback::Once(Box::new(|| {})),
        );
        let sooner = queue.insert(Duration::ZERO, TimerCallback::Once(Box::new(|| {})));
        assert_eq!(queue.len(), 2);
        let mut batch = Vec::new();
        queue.take_due(Instant::now(), &mut batch);
        assert_eq!(batch.iter().map(|t| t.id).collect::<Vec<_>>(), [sooner]);
        assert!(queue.remove(later));
        assert!(!queue.remove(later));
        queue.take_due(Instant::now() + Duration::from_secs(1), &mut batch);
        assert_eq!(batch.len(), 1);
        queue.finish(sooner);
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn a_stale_id_never_reaches_a_later_timer_in_the_same_slot() {
        let mut queue = TimerQueue::default();
        let first = queue.insert(Duration::from_secs(1), TimerCallback::Once(Box::new(|| {})));
        assert!(queue.remove(first));
        let second = queue.insert(Duration::from_secs(1), TimerCallback::Once(Box::new(|| {})));
        assert_eq!(first.parts().0, second.parts().0, "the slot is reused");
        assert_ne!(first, second);
        assert!(!queue.remove(first));
        assert!(queue.is_live(second));
    }

    #[test]
    fn deleted_timers_heap_entries_are_compacted() {
        let mut queue = TimerQueue::default();
        for _ in 0..10_000 {
            let id = queue.insert(
                Duration::from_secs(60),
                TimerCallback::Once(Box::new(|| {})),
            );
            queue.remove(id);
        }
        assert_eq!(queue.len(), 0);
        assert!(
            queue.heap.len() <= 1025,
            "{} stale entries kept",
            queue.heap.len()
        );
    }
}
