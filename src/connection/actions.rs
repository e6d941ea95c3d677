//! What the driver and the write path must do once the table's borrow is released: the
//! callbacks to fire and the ends to take, gathered while the table was borrowed.

/// What must happen once the reactor borrow is released, in this order.
#[derive(Default)]
#[must_use]
pub(crate) struct Actions {
    pub(crate) error: Option<(i32, &'static str)>,
    pub(crate) buffer_full: bool,
    pub(crate) buffer_drain: bool,
    pub(crate) close: bool,
    pub(crate) destroy: bool,
    /// An HTTP response completed with its session changed: save it (before any close).
    pub(crate) save_session: bool,
}

impl Actions {
    /// Both sets of actions.
    pub(crate) fn merge(&mut self, other: Actions) {
        self.error = self.error.or(other.error);
        self.buffer_full |= other.buffer_full;
        self.buffer_drain |= other.buffer_drain;
        self.close |= other.close;
        self.destroy |= other.destroy;
        self.save_session |= other.save_session;
    }
}
