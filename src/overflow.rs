//! What a full channel does with a new message.

/// The overflow policy of a channel: what `send` does when the buffer is full.
///
/// Every message a policy discards is counted in the channel's `dropped()`;
/// nothing is lost without being counted. The policy is chosen with a
/// kind's `Builder` ([`spsc::Builder`](crate::spsc::Builder),
/// [`mpsc::Builder`](crate::mpsc::Builder),
/// [`broadcast::Builder`](crate::broadcast::Builder)).
///
/// ```
/// use rillet::{mpsc, Overflow, TrySendError};
///
/// // Block (the default): a full channel makes `send` wait, `try_send` fail.
/// let (tx, rx) = mpsc::channel(2);
/// tx.send(1).unwrap();
/// tx.send(2).unwrap();
/// assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
/// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
///
/// // DropNewest: the incoming message is discarded; what is buffered stays.
/// let (tx, rx) = mpsc::Builder::new(2).overflow(Overflow::DropNewest).build();
/// for i in 1..=4 {
///     tx.send(i).unwrap(); // never waits
/// }
/// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
/// assert_eq!(rx.dropped(), 2);
///
/// // DropOldest: the oldest buffered message makes room for the new one.
/// let (tx, rx) = mpsc::Builder::new(2).overflow(Overflow::DropOldest).build();
/// for i in 1..=4 {
///     tx.send(i).unwrap(); // never waits
/// }
/// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [3, 4]);
/// assert_eq!(rx.dropped(), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Overflow {
    /// `send` waits for room; `try_send` returns
    /// [`TrySendError::Full`](crate::TrySendError::Full). The default.
    #[default]
    Block,
    /// Nothing waits: the incoming message is discarded (and counted) and the
    /// send returns `Ok(())`. Not supported by broadcast channels (a
    /// discarded message would be missing for some subscribers only).
    DropNewest,
    /// Nothing waits for room: the oldest buffered message is evicted (and
    /// counted) and the new one is enqueued. A broadcast subscriber that
    /// missed messages this way is told so by its next receive
    /// (`Lagged(n)`).
    DropOldest,
}
