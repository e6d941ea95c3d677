//! Timers, driven by the worker's reactor: `Timer::add`, `Timer::once`, `Timer::del`, `Timer::del_all`.
//!
//! Timers run on the worker's thread, between I/O events, so a callback may freely use connections,
//! add timers, or delete any timer, its own included. A repeating timer keeps its cadence: the next
//! deadline is the previous deadline plus the interval (Workerman re-arms at now + interval and
//! drifts). If the reactor was held up for longer than a whole interval, the missed ticks are skipped
//! rather than fired in a burst.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use crate::reactor;

/// Identifies a timer; returned by [`Timer::add`] and [`Timer::once`], taken by [`Timer::del`].
///
/// Ids start at 1 and are unique within a worker thread (Workerman's int ids).
///
/// ```no_run
/// # use workerman::Timer;
/// let id = Timer::add(1.0, |_| {});
/// println!("timer {id}");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(u64);

impl TimerId {
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
                .insert(interval, TimerCallback::Repeat(Box::new(callback)), true)
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
                .insert(interval, TimerCallback::Once(Box::new(callback)), false)
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

pub(crate) struct ScheduledTimer {
    pub(crate) id: TimerId,
    pub(crate) deadline: Instant,
    pub(crate) interval: Duration,
    pub(crate) callback: TimerCallback,
}

/// The timers of one reactor, ordered by `(deadline, id)`.
///
/// `deadlines` indexes every live timer, including one whose callback is running right now (its
/// entry is then out of `by_deadline`); deleting a timer removes it from the index, and a timer
/// missing from the index is never run or re-armed.
#[derive(Default)]
pub(crate) struct TimerQueue {
    next_id: u64,
    by_deadline: BTreeMap<(Instant, TimerId), (Duration, TimerCallback)>,
    deadlines: HashMap<TimerId, Instant>,
}

impl TimerQueue {
    pub(crate) fn insert(
        &mut self,
        interval: Duration,
        callback: TimerCallback,
        _repeating: bool,
    ) -> TimerId {
        self.next_id += 1;
        let id = TimerId(self.next_id);
        let deadline = Instant::now() + interval;
        self.by_deadline
            .insert((deadline, id), (interval, callback));
        self.deadlines.insert(id, deadline);
        id
    }

    pub(crate) fn remove(&mut self, id: TimerId) -> bool {
        match self.deadlines.remove(&id) {
            Some(deadline) => {
                self.by_deadline.remove(&(deadline, id));
                true
            }
            None => false,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.by_deadline.clear();
        self.deadlines.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.deadlines.len()
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline
            .keys()
            .next()
            .map(|(deadline, _)| *deadline)
    }

    /// Moves every timer due at `now` into `batch`, in deadline order. They stay in the index, so
    /// one deleted by an earlier callback of the same batch can be skipped with [`Self::is_live`].
    pub(crate) fn take_due(&mut self, now: Instant, batch: &mut Vec<ScheduledTimer>) {
        while let Some(entry) = self.by_deadline.first_entry() {
            let (deadline, id) = *entry.key();
            if deadline > now {
                break;
            }
            let (interval, callback) = entry.remove();
            batch.push(ScheduledTimer {
                id,
                deadline,
                interval,
                callback,
            });
        }
    }

    pub(crate) fn is_live(&self, id: TimerId) -> bool {
        self.deadlines.contains_key(&id)
    }

    /// Puts a repeating timer back after its callback ran, unless it was deleted meanwhile.
    pub(crate) fn rearm(&mut self, timer: ScheduledTimer, now: Instant) {
        if !self.deadlines.contains_key(&timer.id) {
            return;
        }
        let deadline = next_deadline(timer.deadline, timer.interval, now);
        self.deadlines.insert(timer.id, deadline);
        self.by_deadline
            .insert((deadline, timer.id), (timer.interval, timer.callback));
    }

    /// Forgets a one-shot timer that has fired.
    pub(crate) fn finish(&mut self, id: TimerId) {
        self.deadlines.remove(&id);
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
            false,
        );
        let sooner = queue.insert(Duration::ZERO, TimerCallback::Once(Box::new(|| {})), false);
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
}
