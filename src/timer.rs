//! Timers, driven by the worker's reactor: `Timer::add`, `Timer::once`, `Timer::del`, `Timer::del_all`.
//!
//! Timers run on the worker's thread, between I/O events, so a callback may freely use connections,
//! add timers, or delete any timer, its own included. A repeating timer keeps its cadence: the next
//! deadline is the previous deadline plus the interval (Workerman re-arms at now + interval and
//! drifts).
//!
//! A repeating timer that missed ticks (the worker was held up by a slow callback, or by a long
//! batch of timers) fires **once**, as soon as the worker is free, and then on the next tick of
//! its grid that is still in the future: the missed ticks are skipped, never made up in a burst,
//! and the grid does not move. The next tick is reckoned from the clock after the callback ran,
//! so a batch that ran long cannot re-arm a tick that has already passed.
//!
//! Wake-ups are coalesced, as the kernel's timer slack does: a timer may fire up to 1/200 of its
//! interval late, at most 5 ms (a 2 s timer: 5 ms; a 50 ms timer: 0.25 ms), so the worker wakes
//! once for all the timers due in that window instead of once per millisecond. A repeating
//! timer's grid stays exact: lateness never adds up.

use crate::connection::table;
use crate::connection::timer_queue::TimerCallback;

pub use crate::connection::timer_queue::TimerId;

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
    /// The firings stay on the grid `start + k × seconds`; after a stall that missed ticks, the
    /// timer fires once, then on the next future grid tick (no burst, no drift).
    ///
    /// # Panics
    /// If `seconds` is negative or not finite, or no worker is running on this thread.
    ///
    /// ```no_run
    /// # use workerman::Timer;
    /// Timer::add(0.5, |timer_id| println!("timer {timer_id} fired"));
    /// ```
    pub fn add(seconds: f64, callback: impl FnMut(TimerId) + 'static) -> TimerId {
        table::add_timer(
            "Timer::add",
            seconds,
            TimerCallback::Repeat(Box::new(callback)),
        )
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
        table::add_timer("Timer::once", seconds, TimerCallback::once(callback))
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
        table::delete_timer(timer_id)
    }

    /// Deletes every timer of this worker thread.
    ///
    /// ```no_run
    /// # use workerman::Timer;
    /// Timer::del_all();
    /// assert_eq!(Timer::count(), 0);
    /// ```
    pub fn del_all() {
        table::try_with(|table| table.timers.clear());
    }

    /// How many timers are scheduled on this worker thread (0 when no worker runs here).
    ///
    /// ```no_run
    /// # use workerman::Timer;
    /// println!("{} timers", Timer::count());
    /// ```
    pub fn count() -> usize {
        table::try_with(|table| table.timers.len()).unwrap_or(0)
    }
}
