//! The timer queue of one worker thread: live timers in a slab, their deadlines in
//! per-interval lanes or a heap, due ones taken in deadline order, wake-ups coalesced within each
//! timer's slack. It is plain data: the thread's connection table holds one (see `table.rs`),
//! the reactor fires what is due, and [`Timer`](crate::Timer) is its public face.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use slab::Slab;

/// Identifies a timer; returned by [`Timer::add`](crate::Timer::add) and [`Timer::once`](crate::Timer::once), taken by [`Timer::del`](crate::Timer::del).
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

/// `seconds` as a `Duration`; panics, naming `caller`, when it is negative or not finite.
pub(crate) fn interval_from_seconds(seconds: f64, caller: &str) -> Duration {
    assert!(
        seconds.is_finite() && seconds >= 0.0,
        "{caller}: the interval must be a finite number of seconds, 0 or more (got {seconds})"
    );
    Duration::from_secs_f64(seconds)
}
pub(crate) type Callback = Box<dyn FnMut(TimerId)>;

pub(crate) enum TimerCallback {
    Repeat(Callback),
    /// A one-shot callback, wrapped so that it runs at most once (see [`TimerCallback::once`]):
    /// both kinds are then one fat pointer, which keeps a timer's slot at 32 bytes.
    Once(Callback),
}

impl TimerCallback {
    pub(crate) fn once(callback: impl FnOnce() + 'static) -> TimerCallback {
        let mut callback = Some(callback);
        TimerCallback::Once(Box::new(move |_| {
            if let Some(callback) = callback.take() {
                callback()
            }
        }))
    }
}

/// A due timer, taken out of the queue while its callback runs.
pub(crate) struct ScheduledTimer {
    pub(crate) id: TimerId,
    pub(crate) deadline: Instant,
    pub(crate) interval: Duration,
    pub(crate) callback: TimerCallback,
}

/// One live timer (32 bytes). Its callback is `None` while it runs. Its deadline is in its one
/// queued entry (a timer is queued once, or not at all while its callback runs), and the
/// generation tells a live entry from a deleted timer's.
struct Slot {
    generation: u32,
    once: bool,
    /// The interval in nanoseconds (584 years at most).
    interval: u64,
    callback: Option<Callback>,
}

/// A queued deadline: `(deadline, slot, generation)`. Deleting a timer frees its slot at once and
/// leaves its entry to be skipped when it comes up (or dropped by [`TimerQueue::compact`]).
type Entry = (Instant, u32, u32);

/// The most intervals that get a lane of their own; timers of further intervals use the heap.
const MAX_LANES: usize = 8;
/// The most a timer's firing is put off to share a wake-up with others (see the
/// module's documentation).
const MAX_SLACK: Duration = Duration::from_millis(5);

/// How late a timer of `interval` may fire: 1/200 of it, at most [`MAX_SLACK`].
fn slack(interval: Duration) -> Duration {
    (interval / 200).min(MAX_SLACK)
}
/// How far from its back a lane is searched for an entry's place. Timers of one interval are
/// re-armed in the order they fire, so a new deadline is almost always the lane's latest; one
/// that would go further in (after a stall, say) goes to the heap instead, and comes back to
/// the lane at a later re-arm.
const LANE_SLACK: usize = 32;

/// The entries of the timers of one interval, earliest first (deadlines never decrease front
/// to back). Arming at now + interval, and re-arming at the previous deadline + interval, keeps
/// them in arming order, so a firing costs a pop at the front and a push at the back: O(1), in
/// sequential memory, where a heap would touch about log2(n) scattered cache lines.
struct Lane {
    interval: Duration,
    entries: VecDeque<Entry>,
}

/// The timers of one reactor: a slab of live timers; their deadlines in per-interval FIFO lanes
/// (see [`Lane`]), or in a binary heap, earliest first, for intervals without a lane (more than
/// [`MAX_LANES`] of them at once) and for entries that would not go near a lane's back.
///
/// A [`TimerId`] is the slot and its generation, so finding a timer costs no hashing and a stale
/// id never reaches a newer timer in the same slot. Due timers are taken in deadline order across
/// the lanes and the heap.
#[derive(Default)]
pub(crate) struct TimerQueue {
    slots: Slab<Slot>,
    lanes: Vec<Lane>,
    heap: BinaryHeap<Reverse<Entry>>,
    /// Entries in the lanes and the heap, live or stale.
    queued: usize,
    generation: u32,
}

/// Where the next due entry is.
#[derive(Clone, Copy)]
enum Source {
    Heap,
    Lane(usize),
}

impl TimerQueue {
    pub(crate) fn insert(&mut self, interval: Duration, callback: TimerCallback) -> TimerId {
        self.generation = self.generation.wrapping_add(1).max(1);
        let nanos = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
        let interval = Duration::from_nanos(nanos);
        let deadline = Instant::now() + interval;
        let (once, callback) = match callback {
            TimerCallback::Repeat(callback) => (false, callback),
            TimerCallback::Once(callback) => (true, callback),
        };
        let key = self.slots.insert(Slot {
            generation: self.generation,
            once,
            interval: nanos,
            callback: Some(callback),
        });
        let key = u32::try_from(key).expect("fewer than 2^32 timers");
        self.enqueue(interval, (deadline, key, self.generation));
        self.compact();
        TimerId::new(key, self.generation)
    }

    /// Queues an entry in its interval's lane if it can have one and fits near its back, else
    /// in the heap.
    fn enqueue(&mut self, interval: Duration, entry: Entry) {
        self.queued += 1;
        let Some(lane) = self.lane_for(interval) else {
            self.heap.push(Reverse(entry));
            return;
        };
        let entries = &mut self.lanes[lane].entries;
        let deadline = entry.0;
        if entries.back().is_none_or(|back| back.0 <= deadline) {
            entries.push_back(entry);
            return;
        }
        let len = entries.len();
        let place = (len.saturating_sub(LANE_SLACK)..len)
            .rev()
            .find(|&i| entries[i].0 <= deadline)
            .map(|i| i + 1);
        match place {
            Some(place) => entries.insert(place, entry),
            None if len <= LANE_SLACK => entries.push_front(entry),
            None => self.heap.push(Reverse(entry)),
        }
    }

    /// The lane of `interval`: its own, or a new one, or an empty one taken over.
    fn lane_for(&mut self, interval: Duration) -> Option<usize> {
        if let Some(index) = self.lanes.iter().position(|lane| lane.interval == interval) {
            return Some(index);
        }
        if self.lanes.len() < MAX_LANES {
            self.lanes.push(Lane {
                interval,
                entries: VecDeque::new(),
            });
            return Some(self.lanes.len() - 1);
        }
        let index = self.lanes.iter().position(|lane| lane.entries.is_empty())?;
        self.lanes[index].interval = interval;
        Some(index)
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
        self.lanes.clear();
        self.queued = 0;
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The earliest queued deadline (possibly a deleted timer's: then the loop wakes early and
    /// finds nothing due). The reactor sleeps until [`Self::next_wake`]; tests look at this.
    #[cfg(test)]
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.earliest().map(|(deadline, _)| deadline)
    }

    /// When the reactor must wake at the latest for every timer to fire within its slack: the
    /// earliest of each lane's front deadline plus the lane's [`slack`], and of the heap's
    /// earliest (without slack: the heap's intervals are mixed). Timers due by then fire
    /// together.
    pub(crate) fn next_wake(&self) -> Option<Instant> {
        let mut wake = self.heap.peek().map(|Reverse((deadline, _, _))| *deadline);
        for lane in &self.lanes {
            if let Some(&(deadline, _, _)) = lane.entries.front() {
                let latest = deadline + slack(lane.interval);
                wake = Some(wake.map_or(latest, |wake| wake.min(latest)));
            }
        }
        wake
    }

    /// The earliest entry's deadline and where it is.
    fn earliest(&self) -> Option<(Instant, Source)> {
        let mut earliest = self
            .heap
            .peek()
            .map(|Reverse((deadline, _, _))| (*deadline, Source::Heap));
        for (index, lane) in self.lanes.iter().enumerate() {
            if let Some(&(deadline, _, _)) = lane.entries.front() {
                if earliest.is_none_or(|(best, _)| deadline < best) {
                    earliest = Some((deadline, Source::Lane(index)));
                }
            }
        }
        earliest
    }

    /// Moves every timer due at `now` into `batch`, in deadline order. Their slots stay, so one
    /// deleted by an earlier callback of the same batch can be skipped with [`Self::is_live`].
    pub(crate) fn take_due(&mut self, now: Instant, batch: &mut Vec<ScheduledTimer>) {
        while let Some((deadline, source)) = self.earliest() {
            if deadline > now {
                break;
            }
            let entry = match source {
                Source::Heap => self.heap.pop().map(|Reverse(entry)| entry),
                Source::Lane(index) => self.lanes[index].entries.pop_front(),
            };
            let Some((deadline, key, generation)) = entry else {
                break;
            };
            self.queued -= 1;
            let Some(slot) = self.slots.get_mut(key as usize) else {
                continue;
            };
            if slot.generation != generation {
                continue;
            }
            let Some(callback) = slot.callback.take() else {
                continue;
            };
            batch.push(ScheduledTimer {
                id: TimerId::new(key, generation),
                deadline,
                interval: Duration::from_nanos(slot.interval),
                callback: if slot.once {
                    TimerCallback::Once(callback)
                } else {
                    TimerCallback::Repeat(callback)
                },
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
        let (TimerCallback::Repeat(callback) | TimerCallback::Once(callback)) = timer.callback;
        slot.callback = Some(callback);
        self.enqueue(timer.interval, (deadline, key, generation));
    }

    /// Forgets a one-shot timer that has fired.
    pub(crate) fn finish(&mut self, id: TimerId) {
        self.remove(id);
    }

    /// Drops the entries of deleted timers once they outnumber the live ones (say, after many
    /// streams with a timer each went away): amortized O(1) per insert.
    fn compact(&mut self) {
        if self.queued <= 2 * self.slots.len() + 1024 {
            return;
        }
        let slots = &self.slots;
        let live = |&(_, key, generation): &Entry| {
            slots
                .get(key as usize)
                .is_some_and(|slot| slot.generation == generation)
        };
        self.heap.retain(|Reverse(entry)| live(entry));
        for lane in &mut self.lanes {
            lane.entries.retain(live);
        }
        self.queued = self.heap.len() + self.lanes.iter().map(|l| l.entries.len()).sum::<usize>();
    }
}

/// The previous deadline plus the interval; ticks that are already in the past at `now` (the
/// clock after the callback) are skipped, so the next firing is the next future grid tick.
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
    fn a_timer_slot_is_32_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 32);
        // As in the slab (an entry is vacant or holds a slot): the tag fits in a niche.
        #[allow(dead_code)]
        enum Entry {
            Vacant(usize),
            Occupied(Slot),
        }
        assert_eq!(std::mem::size_of::<Entry>(), 32);
    }

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
        let later = queue.insert(Duration::from_millis(50), TimerCallback::once(|| {}));
        let sooner = queue.insert(Duration::ZERO, TimerCallback::once(|| {}));
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
        let first = queue.insert(Duration::from_secs(1), TimerCallback::once(|| {}));
        assert!(queue.remove(first));
        let second = queue.insert(Duration::from_secs(1), TimerCallback::once(|| {}));
        assert_eq!(first.parts().0, second.parts().0, "the slot is reused");
        assert_ne!(first, second);
        assert!(!queue.remove(first));
        assert!(queue.is_live(second));
    }

    #[test]
    fn deleted_timers_heap_entries_are_compacted() {
        let mut queue = TimerQueue::default();
        for _ in 0..10_000 {
            let id = queue.insert(Duration::from_secs(60), TimerCallback::once(|| {}));
            queue.remove(id);
        }
        assert_eq!(queue.len(), 0);
        assert!(queue.queued <= 1025, "{} stale entries kept", queue.queued);
    }
    fn once() -> TimerCallback {
        TimerCallback::once(|| {})
    }

    fn repeat() -> TimerCallback {
        TimerCallback::Repeat(Box::new(|_| {}))
    }

    /// Takes everything due by `at`; returns the ids in the order taken, and checks that the
    /// deadlines never decrease.
    fn due(queue: &mut TimerQueue, at: Instant) -> Vec<ScheduledTimer> {
        let mut batch = Vec::new();
        queue.take_due(at, &mut batch);
        assert!(batch.windows(2).all(|w| w[0].deadline <= w[1].deadline));
        batch
    }

    #[test]
    fn lanes_and_heap_fire_in_one_deadline_order() {
        let mut queue = TimerQueue::default();
        // More distinct intervals than lanes: the last ones use the heap.
        let mut ids = Vec::new();
        for round in 0..3 {
            for step in 0..(MAX_LANES as u64 + 4) {
                let interval = Duration::from_millis(10 + 7 * step + round);
                ids.push(queue.insert(interval, repeat()));
            }
        }
        assert_eq!(queue.lanes.len(), MAX_LANES);
        assert!(!queue.heap.is_empty());
        let start = Instant::now();
        let mut fired = 0;
        for tick in 1..=40 {
            let now = start + Duration::from_millis(5 * tick);
            for timer in due(&mut queue, now) {
                fired += 1;
                queue.rearm(timer, now);
            }
        }
        assert!(fired > 3 * 40, "{fired}");
        assert_eq!(queue.len(), ids.len());
        assert!(queue.next_deadline().unwrap() > start + Duration::from_millis(200));
    }

    #[test]
    fn a_late_rearm_keeps_the_lane_in_order() {
        let mut queue = TimerQueue::default();
        let second = Duration::from_secs(1);
        let start = Instant::now();
        // 100 timers of one interval, their phases 10 ms apart.
        for i in 0..100u32 {
            let deadline = start + Duration::from_millis(10 * u64::from(i));
            let key = queue.slots.insert(Slot {
                generation: 1,
                once: false,
                interval: 1_000_000_000,
                callback: Some(Box::new(|_| {})),
            }) as u32;
            queue.enqueue(second, (deadline, key, 1));
        }
        // Held up for 2.5 intervals: every timer is due; re-armed on its own grid past now, the
        // first half lands after the second half, which no longer fits near the lane's back.
        let now = start + second * 5 / 2;
        let batch = due(&mut queue, now);
        assert_eq!(batch.len(), 100);
        for timer in batch {
            queue.rearm(timer, now);
        }
        assert_eq!(queue.heap.len(), 49, "phases 0.51 s to 0.99 s");
        let lane = &queue.lanes[0].entries;
        assert!(
            lane.iter()
                .zip(lane.iter().skip(1))
                .all(|(a, b)| a.0 <= b.0)
        );
        // The next round comes out in deadline order (checked by `due`), each timer once, and
        // the heap's timers go back to the lane as they are re-armed in order.
        let later = now + second;
        let batch = due(&mut queue, later);
        assert_eq!(batch.len(), 100);
        assert!(batch.iter().all(|timer| timer.deadline > now));
        for timer in batch {
            queue.rearm(timer, later);
        }
        assert!(queue.heap.is_empty());
        assert_eq!(queue.lanes[0].entries.len(), 100);
    }

    #[test]
    fn an_entry_far_from_a_lanes_back_goes_to_the_heap() {
        let mut queue = TimerQueue::default();
        let interval = Duration::from_secs(10);
        let start = Instant::now();
        for i in 0..(LANE_SLACK as u32 + 10) {
            queue.enqueue(
                interval,
                (start + Duration::from_millis(100 + u64::from(i)), i, 1),
            );
        }
        // Earlier than every lane entry: near the front, beyond the slack.
        queue.enqueue(interval, (start, 999, 1));
        assert_eq!(queue.heap.len(), 1);
        // A few from the back: inserted in place.
        queue.enqueue(interval, (start + Duration::from_millis(100 + 38), 998, 1));
        let lane = &queue.lanes[0].entries;
        assert_eq!(lane.len(), LANE_SLACK + 11);
        assert!(
            lane.iter()
                .zip(lane.iter().skip(1))
                .all(|(a, b)| a.0 <= b.0)
        );
        // A short lane takes an earliest entry at its front.
        queue.enqueue(
            Duration::from_secs(3),
            (start + Duration::from_secs(1), 5, 1),
        );
        queue.enqueue(Duration::from_secs(3), (start, 6, 1));
        assert_eq!(queue.lanes[1].entries.front().map(|e| e.1), Some(6));
        assert_eq!(queue.earliest().map(|(deadline, _)| deadline), Some(start));
    }

    #[test]
    fn an_empty_lane_is_taken_over_by_another_interval() {
        let mut queue = TimerQueue::default();
        let mut ids = Vec::new();
        for step in 0..MAX_LANES as u64 {
            ids.push(queue.insert(Duration::from_millis(100 + step), once()));
        }
        assert!(queue.remove(ids[3]));
        // The deleted timer's entry is still there until it comes up.
        let batch = due(&mut queue, Instant::now() + Duration::from_millis(103));
        assert_eq!(batch.len(), 3);
        for timer in batch {
            queue.finish(timer.id);
        }
        queue.insert(Duration::from_secs(7), once());
        assert!(queue.heap.is_empty(), "a lane emptied and was reused");
        assert!(
            queue
                .lanes
                .iter()
                .any(|lane| lane.interval == Duration::from_secs(7))
        );
    }

    #[test]
    fn deleted_timers_lane_entries_are_compacted() {
        let mut queue = TimerQueue::default();
        let keep = queue.insert(Duration::from_secs(60), repeat());
        for _ in 0..10_000 {
            let id = queue.insert(Duration::from_secs(60), repeat());
            queue.remove(id);
        }
        assert!(queue.queued <= 1025, "{} stale entries kept", queue.queued);
        assert!(queue.is_live(keep));
        let batch = due(&mut queue, Instant::now() + Duration::from_secs(61));
        assert_eq!(batch.iter().map(|t| t.id).collect::<Vec<_>>(), [keep]);
    }

    #[test]
    fn a_wake_up_serves_every_timer_due_within_the_slack() {
        // Two timers of a 2 s lane, inserted 1 to 4 ms apart (again, if a preempted thread
        // took longer between them).
        let (mut queue, first, second) = loop {
            let mut queue = TimerQueue::default();
            let start = Instant::now();
            let first = queue.insert(Duration::from_secs(2), repeat());
            while start.elapsed() < Duration::from_millis(1) {}
            let second = queue.insert(Duration::from_secs(2), repeat());
            if start.elapsed() < Duration::from_millis(4) {
                break (queue, first, second);
            }
        };
        let earliest = queue.next_deadline().unwrap();
        // A 2 s lane may wait 5 ms past its first deadline: the second timer, under 4 ms
        // later, is due by then, and both fire on one wake-up.
        let wake = queue.next_wake().unwrap();
        assert_eq!(wake, earliest + Duration::from_millis(5));
        let batch = due(&mut queue, wake);
        assert_eq!(
            batch.iter().map(|t| t.id).collect::<Vec<_>>(),
            [first, second]
        );
        // Short intervals get a short slack, and the heap none.
        let mut queue = TimerQueue::default();
        queue.insert(Duration::from_millis(50), repeat());
        let deadline = queue.next_deadline().unwrap();
        assert_eq!(
            queue.next_wake().unwrap() - deadline,
            Duration::from_micros(250)
        );
        for lane in 1..MAX_LANES as u64 {
            queue.insert(Duration::from_secs(100 + lane), repeat());
        }
        queue.insert(Duration::from_millis(1), repeat());
        assert!(queue.heap.len() == 1, "a ninth interval goes to the heap");
        let deadline = queue.next_deadline().unwrap();
        assert_eq!(queue.next_wake().unwrap(), deadline);
    }
}
