//! Error types shared by every channel kind (broadcast has its own receive
//! errors in [`crate::broadcast`]).
//!
//! They mirror `std::sync::mpsc` and crossbeam-channel: a failed send hands the
//! message back, `Debug` never requires `T: Debug`, `Display` is lowercase.

use std::error::Error;
use std::fmt;

/// The channel is closed; the message could not be sent and is handed back.
///
/// ```
/// use rillet::SendError;
///
/// let (tx, rx) = rillet::mpsc::channel(4);
/// drop(rx);
/// let SendError(back) = tx.send(String::from("lost?")).unwrap_err();
/// assert_eq!(back, "lost?"); // no: here it is
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

/// Why [`try_send`](crate::spsc::Sender::try_send) failed; the message is handed back.
///
/// ```
/// use rillet::TrySendError;
///
/// let (tx, rx) = rillet::spsc::channel(1);
/// tx.try_send(1).unwrap();
/// match tx.try_send(2) {
///     Err(TrySendError::Full(back)) => assert_eq!(back, 2), // retry later
///     other => panic!("{other:?}"),
/// }
/// drop(rx);
/// let err = tx.try_send(3).unwrap_err();
/// assert!(err.is_closed());
/// assert_eq!(err.into_inner(), 3);
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// The channel is full (only under [`Overflow::Block`](crate::Overflow::Block)).
    Full(T),
    /// The channel is closed.
    Closed(T),
}

/// Why [`send_timeout`](crate::spsc::Sender::send_timeout) failed; the message is handed back.
///
/// ```
/// use rillet::SendTimeoutError;
/// use std::time::Duration;
///
/// let (tx, _rx) = rillet::mpsc::channel(1);
/// tx.send(1).unwrap();
/// match tx.send_timeout(2, Duration::from_millis(1)) {
///     Err(SendTimeoutError::Timeout(back)) => assert_eq!(back, 2),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendTimeoutError<T> {
    /// No room became free before the deadline.
    Timeout(T),
    /// The channel is closed.
    Closed(T),
}

/// The channel is closed and drained: no message will ever arrive.
///
/// ```
/// let (tx, rx) = rillet::spsc::channel(2);
/// tx.send(1).unwrap();
/// drop(tx);
/// assert_eq!(rx.recv(), Ok(1)); // buffered messages first
/// assert_eq!(rx.recv(), Err(rillet::RecvError));
/// ```
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub struct RecvError;

/// Why [`try_recv`](crate::spsc::Receiver::try_recv) failed.
///
/// ```
/// use rillet::TryRecvError;
///
/// let (tx, rx) = rillet::spsc::channel::<u8>(2);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// drop(tx);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
/// ```
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum TryRecvError {
    /// Nothing is buffered right now.
    Empty,
    /// The channel is closed and drained.
    Closed,
}

/// Why [`recv_timeout`](crate::spsc::Receiver::recv_timeout) failed.
///
/// ```
/// use rillet::RecvTimeoutError;
/// use std::time::Duration;
///
/// let (tx, rx) = rillet::spsc::channel::<u8>(2);
/// assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
/// drop(tx);
/// assert_eq!(rx.recv_timeout(Duration::MAX), Err(RecvTimeoutError::Closed)); // no wait
/// ```
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum RecvTimeoutError {
    /// No message arrived before the deadline.
    Timeout,
    /// The channel is closed and drained.
    Closed,
}

impl<T> SendError<T> {
    /// Returns the message that could not be sent.
    ///
    /// ```
    /// assert_eq!(rillet::SendError(5).into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed channel")
    }
}

impl<T> Error for SendError<T> {}

impl<T> TrySendError<T> {
    /// Returns the message that could not be sent.
    ///
    /// ```
    /// assert_eq!(rillet::TrySendError::Full(5).into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }

    /// `true` if the send failed because the channel was full.
    ///
    /// ```
    /// assert!(rillet::TrySendError::Full(()).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }

    /// `true` if the send failed because the channel was closed.
    ///
    /// ```
    /// assert!(rillet::TrySendError::Closed(()).is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, TrySendError::Closed(_))
    }

    /// Alias of [`is_closed`](Self::is_closed), named as in crossbeam-channel.
    ///
    /// ```
    /// assert!(rillet::TrySendError::Closed(()).is_disconnected());
    /// ```
    pub fn is_disconnected(&self) -> bool {
        self.is_closed()
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("sending on a full channel"),
            TrySendError::Closed(_) => f.write_str("sending on a closed channel"),
        }
    }
}

impl<T> Error for TrySendError<T> {}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(err: SendError<T>) -> Self {
        TrySendError::Closed(err.0)
    }
}

impl<T> SendTimeoutError<T> {
    /// Returns the message that could not be sent.
    ///
    /// ```
    /// assert_eq!(rillet::SendTimeoutError::Timeout(5).into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(v) | SendTimeoutError::Closed(v) => v,
        }
    }

    /// `true` if the send timed out.
    ///
    /// ```
    /// assert!(rillet::SendTimeoutError::Timeout(()).is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout(_))
    }

    /// `true` if the send failed because the channel was closed.
    ///
    /// ```
    /// assert!(rillet::SendTimeoutError::Closed(()).is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, SendTimeoutError::Closed(_))
    }

    /// Alias of [`is_closed`](Self::is_closed), named as in crossbeam-channel.
    ///
    /// ```
    /// assert!(rillet::SendTimeoutError::Closed(()).is_disconnected());
    /// ```
    pub fn is_disconnected(&self) -> bool {
        self.is_closed()
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("timed out waiting on send operation"),
            SendTimeoutError::Closed(_) => f.write_str("sending on a closed channel"),
        }
    }
}

impl<T> Error for SendTimeoutError<T> {}

impl<T> From<SendError<T>> for SendTimeoutError<T> {
    fn from(err: SendError<T>) -> Self {
        SendTimeoutError::Closed(err.0)
    }
}

/// Why a receive failed: the one set of messages that every receive error
/// type (here and in `broadcast`) displays.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reason {
    Empty,
    Timeout,
    Closed,
    Lagged(u64),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Empty => f.write_str("receiving on an empty channel"),
            Reason::Timeout => f.write_str("timed out waiting on receive operation"),
            Reason::Closed => f.write_str("receiving on a closed channel"),
            Reason::Lagged(n) => write!(f, "receiver lagged and missed {n} messages"),
        }
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Reason::Closed.fmt(f)
    }
}

impl Error for RecvError {}

impl TryRecvError {
    /// `true` if nothing was buffered.
    ///
    /// ```
    /// assert!(rillet::TryRecvError::Empty.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        matches!(self, TryRecvError::Empty)
    }

    /// `true` if the channel is closed and drained.
    ///
    /// ```
    /// assert!(rillet::TryRecvError::Closed.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, TryRecvError::Closed)
    }

    /// Alias of [`is_closed`](Self::is_closed), named as in crossbeam-channel.
    ///
    /// ```
    /// assert!(rillet::TryRecvError::Closed.is_disconnected());
    /// ```
    pub fn is_disconnected(&self) -> bool {
        self.is_closed()
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => Reason::Empty,
            TryRecvError::Closed => Reason::Closed,
        }
        .fmt(f)
    }
}

impl Error for TryRecvError {}

impl From<RecvError> for TryRecvError {
    fn from(_: RecvError) -> Self {
        TryRecvError::Closed
    }
}

impl RecvTimeoutError {
    /// `true` if the receive timed out.
    ///
    /// ```
    /// assert!(rillet::RecvTimeoutError::Timeout.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }

    /// `true` if the channel is closed and drained.
    ///
    /// ```
    /// assert!(rillet::RecvTimeoutError::Closed.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, RecvTimeoutError::Closed)
    }

    /// Alias of [`is_closed`](Self::is_closed), named as in crossbeam-channel.
    ///
    /// ```
    /// assert!(rillet::RecvTimeoutError::Closed.is_disconnected());
    /// ```
    pub fn is_disconnected(&self) -> bool {
        self.is_closed()
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => Reason::Timeout,
            RecvTimeoutError::Closed => Reason::Closed,
        }
        .fmt(f)
    }
}

impl Error for RecvTimeoutError {}

impl From<RecvError> for RecvTimeoutError {
    fn from(_: RecvError) -> Self {
        RecvTimeoutError::Closed
    }
}
