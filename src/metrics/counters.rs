//! What a reactor counts for the metrics beyond its [`Statistics`], and the once-per-turn
//! publication of it all into the process's slot of the shared region.
//!
//! The counting is a plain add on fields the reactor owns (bytes, connections by protocol, SSE
//! streams, bytes queued), done whether metrics are on or not. Publishing is on only when the
//! thread has a slot ([`attach`]): at the end of each turn, the turn's duration goes into a local
//! histogram and every figure is stored into the slot with relaxed stores (one writer per slot:
//! no read-modify-write, no lock, no system call).

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::slots::{PROTOCOLS, Region, TURN_BUCKET_COUNT, TURN_BUCKET_NANOS};
use super::statistics::Statistics;

thread_local! {
    /// The slot the next reactor started on this thread publishes into.
    static ATTACHED: RefCell<Option<(Arc<Region>, usize)>> = const { RefCell::new(None) };
}

/// Makes the next reactor started on this thread publish into slot `index` of `region`, taking
/// the slot over from whichever process had it before.
pub(crate) fn attach(region: Arc<Region>, index: usize) {
    let Some(slot) = region.slot(index) else {
        return;
    };
    let started_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    slot.take_over(std::process::id(), started_at);
    ATTACHED.with(|cell| *cell.borrow_mut() = Some((region, index)));
}

/// The reactor's own counters for the metrics (see the module's documentation).
#[derive(Default)]
pub(crate) struct ReactorMetrics {
    pub(crate) bytes_read: u64,
    pub(crate) bytes_written: u64,
    /// Connections open now, by [`PROTOCOLS`] (see [`super::protocol_index`]).
    pub(crate) connections: [u64; PROTOCOLS.len()],
    /// HTTP connections whose response is an open event stream.
    pub(crate) sse_streams: u64,
    /// Bytes accepted by `send` and not yet taken by the kernel, over all connections; kept by
    /// the changes to each send buffer (see `connection::output::write_or_queue` and `flush`).
    pub(crate) send_buffer_bytes: i64,
    published: Option<Published>,
}

/// Where this reactor publishes, and its turn histogram so far.
struct Published {
    region: Arc<Region>,
    index: usize,
    turn_buckets: [u64; TURN_BUCKET_COUNT],
    turn_nanos: u64,
}

impl ReactorMetrics {
    /// Counters at zero, publishing into the slot [`attach`]ed to this thread, if any.
    pub(crate) fn new() -> ReactorMetrics {
        let published = ATTACHED
            .with(|cell| cell.borrow_mut().take())
            .map(|(region, index)| Published {
                region,
                index,
                turn_buckets: [0; TURN_BUCKET_COUNT],
                turn_nanos: 0,
            });
        ReactorMetrics {
            published,
            ..ReactorMetrics::default()
        }
    }

    /// A connection of protocol `index` (see [`super::protocol_index`]) opened.
    pub(crate) fn opened(&mut self, index: usize) {
        self.connections[index] += 1;
    }

    /// A connection closed, with `queued` bytes unsent, its event stream open or not.
    pub(crate) fn closed(&mut self, index: usize, queued: usize, streaming: bool) {
        self.connections[index] = self.connections[index].saturating_sub(1);
        self.send_buffer_bytes -= queued as i64;
        if streaming {
            self.sse_streams = self.sse_streams.saturating_sub(1);
        }
    }

    /// A send buffer went from `before` to `after` bytes queued.
    pub(crate) fn queued(&mut self, before: usize, after: usize) {
        self.send_buffer_bytes += after as i64 - before as i64;
    }

    /// The end of a reactor turn that began (after the wait) at `started`: with a slot, counts
    /// the turn and stores every figure into it (`timers` tells how many timers are pending).
    pub(crate) fn end_turn(
        &mut self,
        started: Instant,
        statistics: &Statistics,
        timers: impl FnOnce() -> usize,
    ) {
        let Some(published) = &mut self.published else {
            return;
        };
        let Some(slot) = published.region.slot(published.index) else {
            return;
        };
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let bucket = TURN_BUCKET_NANOS
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(TURN_BUCKET_NANOS.len());
        published.turn_buckets[bucket] += 1;
        published.turn_nanos = published.turn_nanos.saturating_add(nanos);
        let counters = &slot.counters;
        counters.turn_buckets[bucket].store(published.turn_buckets[bucket], Ordering::Relaxed);
        counters
            .turn_nanos
            .store(published.turn_nanos, Ordering::Relaxed);
        counters
            .requests
            .store(statistics.total_request, Ordering::Relaxed);
        counters
            .send_fail
            .store(statistics.send_fail, Ordering::Relaxed);
        counters.panics.store(statistics.panics, Ordering::Relaxed);
        counters
            .bytes_read
            .store(self.bytes_read, Ordering::Relaxed);
        counters
            .bytes_written
            .store(self.bytes_written, Ordering::Relaxed);
        for (gauge, &value) in slot.connections.iter().zip(&self.connections) {
            gauge.store(value, Ordering::Relaxed);
        }
        slot.timers.store(timers() as u64, Ordering::Relaxed);
        slot.send_buffer_bytes
            .store(self.send_buffer_bytes.max(0) as u64, Ordering::Relaxed);
        slot.sse_streams.store(self.sse_streams, Ordering::Relaxed);
    }
}
