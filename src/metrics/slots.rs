//! The figures of every worker process, in one region of memory they all share.
//!
//! Before forking, the master maps one anonymous `MAP_SHARED` region with a [`Slot`] per worker
//! process (per `(worker, id)` pair, in the master's order); every process it forks inherits the
//! mapping, so a slot written by one process is read by any other. Each slot has one writer, the
//! process that runs that `(worker, id)` now: it stores its figures with relaxed atomic stores
//! once per reactor turn (see `super::counters`). Readers (the metrics endpoint) load them with
//! relaxed loads: a figure may be one turn old, never torn, since every field is one atomic.
//!
//! A replacement process (after a crash or a `reload`) takes over its predecessor's slot: it
//! moves the counters into `retired` (so the totals over all processes never go down) and starts
//! its own from zero. That hand-over is guarded by a sequence number (a seqlock: odd while it is
//! under way), so a reader never sees a counter in both places or in neither.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering, fence};

/// The `protocol` label of a connection: its protocol, or for raw bytes its transport.
pub(crate) const PROTOCOLS: [&str; 8] = [
    "tcp",
    "text",
    "frame",
    "http",
    "websocket",
    "udp",
    "unix",
    "custom",
];

/// Upper bounds of the reactor-turn histogram's buckets, in seconds (`+Inf` comes last).
pub(crate) const TURN_BUCKETS: [f64; 14] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.1, 0.5, 1.0,
];
/// [`TURN_BUCKETS`] in nanoseconds, for the hot path.
pub(crate) const TURN_BUCKET_NANOS: [u64; 14] = [
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    100_000_000,
    500_000_000,
    1_000_000_000,
];
/// Buckets stored: one per bound, and one past the last (`+Inf`).
pub(crate) const TURN_BUCKET_COUNT: usize = TURN_BUCKETS.len() + 1;

/// Figures that only grow (Prometheus counters), as stored in a slot.
#[repr(C)]
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) send_fail: AtomicU64,
    pub(crate) panics: AtomicU64,
    pub(crate) bytes_read: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    /// Time spent in reactor turns, in nanoseconds.
    pub(crate) turn_nanos: AtomicU64,
    /// Reactor turns by duration, one count per bucket (not cumulative).
    pub(crate) turn_buckets: [AtomicU64; TURN_BUCKET_COUNT],
}

/// One worker process's figures. Cache-line aligned: two processes never write the same line.
#[repr(C, align(64))]
#[derive(Default)]
pub(crate) struct Slot {
    /// Odd while a replacement process hands its predecessor's counters over to `retired`.
    sequence: AtomicU64,
    /// The process writing this slot (0: none yet).
    pub(crate) pid: AtomicU64,
    /// When it started, in seconds since the Unix epoch.
    pub(crate) started_at: AtomicU64,
    /// Connections open now, by [`PROTOCOLS`].
    pub(crate) connections: [AtomicU64; PROTOCOLS.len()],
    pub(crate) timers: AtomicU64,
    pub(crate) send_buffer_bytes: AtomicU64,
    pub(crate) sse_streams: AtomicU64,
    pub(crate) counters: Counters,
    /// What the processes that ran this slot before counted.
    pub(crate) retired: Counters,
}

/// A plain copy of [`Counters`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CountersSnapshot {
    pub(crate) requests: u64,
    pub(crate) send_fail: u64,
    pub(crate) panics: u64,
    pub(crate) bytes_read: u64,
    pub(crate) bytes_written: u64,
    pub(crate) turn_nanos: u64,
    pub(crate) turn_buckets: [u64; TURN_BUCKET_COUNT],
}

impl CountersSnapshot {
    /// Adds `other` to these counters.
    pub(crate) fn add(&mut self, other: &CountersSnapshot) {
        self.requests += other.requests;
        self.send_fail += other.send_fail;
        self.panics += other.panics;
        self.bytes_read += other.bytes_read;
        self.bytes_written += other.bytes_written;
        self.turn_nanos += other.turn_nanos;
        for (mine, theirs) in self.turn_buckets.iter_mut().zip(other.turn_buckets) {
            *mine += theirs;
        }
    }

    /// Reactor turns counted (the histogram's `_count`).
    pub(crate) fn turns(&self) -> u64 {
        self.turn_buckets.iter().sum()
    }
}

/// A plain copy of a [`Slot`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotSnapshot {
    pub(crate) pid: u64,
    pub(crate) started_at: u64,
    pub(crate) connections: [u64; PROTOCOLS.len()],
    pub(crate) timers: u64,
    pub(crate) send_buffer_bytes: u64,
    pub(crate) sse_streams: u64,
    pub(crate) counters: CountersSnapshot,
    pub(crate) retired: CountersSnapshot,
}

impl Counters {
    fn load(&self) -> CountersSnapshot {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CountersSnapshot {
            requests: load(&self.requests),
            send_fail: load(&self.send_fail),
            panics: load(&self.panics),
            bytes_read: load(&self.bytes_read),
            bytes_written: load(&self.bytes_written),
            turn_nanos: load(&self.turn_nanos),
            turn_buckets: std::array::from_fn(|index| load(&self.turn_buckets[index])),
        }
    }

    /// Moves these counters into `retired` (the caller is the slot's only writer).
    fn retire_into(&self, retired: &Counters) {
        let pairs = [
            (&self.requests, &retired.requests),
            (&self.send_fail, &retired.send_fail),
            (&self.panics, &retired.panics),
            (&self.bytes_read, &retired.bytes_read),
            (&self.bytes_written, &retired.bytes_written),
            (&self.turn_nanos, &retired.turn_nanos),
        ];
        let buckets = self.turn_buckets.iter().zip(&retired.turn_buckets);
        for (current, retired) in pairs.into_iter().chain(buckets) {
            let value = current.swap(0, Ordering::Relaxed);
            retired.fetch_add(value, Ordering::Relaxed);
        }
    }
}

impl Slot {
    /// A new process takes this slot over: its predecessor's counters go to `retired`, its
    /// gauges (the predecessor's connections and timers are gone with it) to zero.
    pub(crate) fn take_over(&self, pid: u32, started_at: u64) {
        let sequence = self.sequence.load(Ordering::Relaxed);
        self.sequence
            .store(sequence.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.counters.retire_into(&self.retired);
        for gauge in self.connections.iter().chain([
            &self.timers,
            &self.send_buffer_bytes,
            &self.sse_streams,
        ]) {
            gauge.store(0, Ordering::Relaxed);
        }
        self.pid.store(u64::from(pid), Ordering::Relaxed);
        self.started_at.store(started_at, Ordering::Relaxed);
        self.sequence
            .store(sequence.wrapping_add(2), Ordering::Release);
    }

    /// A copy of the slot. Retries (a bounded number of times, never blocking) while a take-over
    /// is under way; a writer that died in the middle of one leaves the figures as they are.
    pub(crate) fn snapshot(&self) -> SlotSnapshot {
        let mut copy = SlotSnapshot::default();
        for _ in 0..1000 {
            let before = self.sequence.load(Ordering::Acquire);
            copy = self.load();
            fence(Ordering::Acquire);
            let after = self.sequence.load(Ordering::Relaxed);
            if before == after && before % 2 == 0 {
                break;
            }
            std::hint::spin_loop();
        }
        copy
    }

    fn load(&self) -> SlotSnapshot {
        let load = |gauge: &AtomicU64| gauge.load(Ordering::Relaxed);
        SlotSnapshot {
            pid: load(&self.pid),
            started_at: load(&self.started_at),
            connections: std::array::from_fn(|index| load(&self.connections[index])),
            timers: load(&self.timers),
            send_buffer_bytes: load(&self.send_buffer_bytes),
            sse_streams: load(&self.sse_streams),
            counters: self.counters.load(),
            retired: self.retired.load(),
        }
    }
}

/// A shared anonymous mapping holding `len` slots, unmapped when the last handle goes.
pub(crate) struct Region {
    base: NonNull<Slot>,
    len: usize,
    bytes: usize,
}

// SAFETY: the region is plain shared memory holding only atomics (`Slot` is all `AtomicU64`),
// which any thread (or process) may read and write concurrently; the pointer is valid until
// `Drop`, which runs once no handle is left.
unsafe impl Send for Region {}
// SAFETY: as above: every access through `&Region` is an atomic operation.
unsafe impl Sync for Region {}

impl Region {
    /// Maps a region for `len` slots (at least one), zeroed (a zeroed `Slot` is a valid one).
    pub(crate) fn new(len: usize) -> io::Result<Region> {
        let bytes = std::mem::size_of::<Slot>() * len.max(1);
        // SAFETY: an anonymous mapping of `bytes` bytes, asking for no fixed address: it touches
        // no existing memory. `MAP_SHARED` makes forked children see the same pages.
        let pointer = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if pointer == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(pointer.cast::<Slot>()).ok_or_else(|| io::Error::other("mmap"))?;
        Ok(Region { base, len, bytes })
    }

    /// How many slots it has.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Slot `index`, if there is one.
    pub(crate) fn slot(&self, index: usize) -> Option<&Slot> {
        if index >= self.len {
            return None;
        }
        // SAFETY: `index < len`, so the slot lies inside the mapping, which is page-aligned
        // (so 64-byte aligned for `Slot`), zero-filled by the kernel (a valid `Slot`: all
        // atomics) and lives as long as `self`. Only shared references are made, and every
        // access through them is atomic.
        Some(unsafe { &*self.base.as_ptr().add(index) })
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `base` and `bytes` are exactly what `mmap` returned and was asked for; no
        // reference into the region outlives `self` (they all borrow it).
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_take_over_keeps_the_totals_and_zeroes_the_gauges() {
        let region = Region::new(2).expect("mmap");
        let slot = region.slot(1).expect("slot 1");
        assert!(region.slot(2).is_none());
        slot.take_over(100, 1);
        slot.counters.requests.store(7, Ordering::Relaxed);
        slot.counters.turn_buckets[3].store(2, Ordering::Relaxed);
        slot.connections[3].store(5, Ordering::Relaxed);
        slot.take_over(200, 2);
        slot.counters.requests.store(1, Ordering::Relaxed);
        let copy = slot.snapshot();
        assert_eq!(copy.pid, 200);
        assert_eq!(copy.connections[3], 0);
        assert_eq!(copy.counters.requests, 1);
        assert_eq!(copy.retired.requests, 7);
        assert_eq!(copy.retired.turns(), 2);
    }

    #[test]
    fn a_forked_child_writes_what_the_parent_reads() {
        let region = Region::new(1).expect("mmap");
        // SAFETY: the child only stores to the shared slot and calls `_exit` (async-signal-safe),
        // so forking this multi-threaded test process is sound.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            if let Some(slot) = region.slot(0) {
                slot.counters.requests.store(42, Ordering::Relaxed);
            }
            // SAFETY: ends the child at once, running nothing of the parent's.
            unsafe { libc::_exit(0) };
        }
        assert!(pid > 0, "fork failed");
        let mut status = 0;
        // SAFETY: waits for our own child, writing its status into a local.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(
            region.slot(0).map(|slot| slot.snapshot().counters.requests),
            Some(42)
        );
    }
}
