//! What a full channel does with a new message.

/// The overflow policy of a channel: what `send` does when the buffer is full.
///
/// Every message a policy discards is counted in the channel's `dropped()`;
/// nothing is lost without being counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Overflow {
    /// `send` waits for room; `try_send` returns
    /// [`TrySendError::Full`](crate::TrySendError::Full). The default.
    #[default]
    Block,
    /// Nothing waits: the incoming message is discarded (and counted) and the
    /// send returns `Ok(())`.
    DropNewest,
    /// Nothing waits for room: the oldest buffered message is evicted (and
    /// counted) and the new one is enqueued.
    DropOldest,
}
