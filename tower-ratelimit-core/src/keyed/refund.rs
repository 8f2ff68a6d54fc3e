//! Giving a booked slot back when the request that booked it is dropped before it
//! starts (a timeout around a keyed wait, a client that disconnected).

/// Gives a booked slot back to its store.
pub(super) type GiveBack = Box<dyn FnOnce() + Send>;

/// Calls its [`GiveBack`] on drop, unless disarmed.
pub(super) struct RefundOnDrop(Option<GiveBack>);

impl RefundOnDrop {
    pub(super) fn new(give_back: GiveBack) -> Self {
        RefundOnDrop(Some(give_back))
    }

    /// The slot was used: nothing goes back.
    pub(super) fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for RefundOnDrop {
    fn drop(&mut self) {
        if let Some(give_back) = self.0.take() {
            give_back();
        }
    }
}
