//! Timer channels: receivers whose message is the `Instant` they fired at.

use super::case::Case;
use super::SelectRecv;
use crate::park::WaitQueue;
use crate::{RecvError, RecvTimeoutError, TryRecvError};
use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

/// A timer channel: [`after`], [`tick`] or [`never`](never()). A receiver in every
/// respect a select cares about: use it in a `recv` case, or call its
/// `recv` methods directly. `Send`, not `Sync` (one thread receives).
pub struct Timer {
    /// When the next message is due (`None`: never, or already delivered
    /// for an `after`).
    next: Cell<Option<Instant>>,
    /// `tick`'s period.
    period: Option<Duration>,
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("next", &self.next.get())
            .field("period", &self.period)
            .finish()
    }
}

/// A timer that delivers one message, `duration` from now (Go's
/// `time.After`); after that it never delivers again (and never closes).
///
/// ```
/// use rillet::{mpsc, select, select::after};
/// use std::time::Duration;
///
/// let (_tx, rx) = mpsc::channel::<u8>(1);
/// let timeout = after(Duration::from_millis(10));
/// let fired = select! {
///     recv(rx) -> _ => panic!("nothing is sent"),
///     recv(timeout) -> at => at.unwrap(),
/// };
/// assert!(timeout.try_recv().is_err()); // it fired once
/// # let _ = fired;
/// ```
pub fn after(duration: Duration) -> Timer {
    Timer {
        // A duration too long to represent never fires.
        next: Cell::new(Instant::now().checked_add(duration)),
        period: None,
    }
}

/// A timer that delivers a message every `period` (Go's `time.Tick`),
/// first `period` from now. Ticks a slow receiver misses are dropped and
/// the phase is kept: the next message is due at the first multiple of
/// `period` (from the start) after the receive.
///
/// # Panics
///
/// If `period` is zero.
///
/// ```
/// use std::time::Duration;
///
/// let tick = rillet::select::tick(Duration::from_millis(1));
/// let first = tick.recv().unwrap();
/// let second = tick.recv().unwrap();
/// assert!(second >= first + Duration::from_millis(1));
/// ```
pub fn tick(period: Duration) -> Timer {
    assert!(
        !period.is_zero(),
        "select::tick: a period of zero would fire without end"
    );
    Timer {
        next: Cell::new(Instant::now().checked_add(period)),
        period: Some(period),
    }
}

/// A timer that never delivers: a `recv` case that is never ready (for a
/// case that is switched off conditionally).
///
/// ```
/// use rillet::{select, select::never};
/// use std::time::Duration;
///
/// let r = never();
/// select! {
///     recv(r) -> _ => panic!("never fires"),
///     default(Duration::from_millis(1)) => {}
/// }
/// ```
pub fn never() -> Timer {
    Timer {
        next: Cell::new(None),
        period: None,
    }
}

impl Timer {
    /// The message if the timer is due now.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let t = rillet::select::after(Duration::ZERO);
    /// assert!(t.try_recv().is_ok());
    /// assert_eq!(t.try_recv(), Err(rillet::TryRecvError::Empty));
    /// ```
    pub fn try_recv(&self) -> Result<Instant, TryRecvError> {
        match self.next.get() {
            Some(due) if Instant::now() >= due => Ok(self.fire(due)),
            _ => Err(TryRecvError::Empty),
        }
    }

    /// Waits for the next message. On a timer that will never fire again
    /// ([`never`](never()), or an [`after`] that already fired) this waits forever,
    /// as a receive on a channel nobody sends on would.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let start = Instant::now();
    /// let t = rillet::select::after(Duration::from_millis(2));
    /// let at = t.recv().unwrap();
    /// assert!(at >= start + Duration::from_millis(2));
    /// ```
    pub fn recv(&self) -> Result<Instant, RecvError> {
        loop {
            match self.recv_deadline(Instant::now() + Duration::from_secs(3600)) {
                Ok(at) => return Ok(at),
                Err(_) => continue,
            }
        }
    }

    /// Waits at most `timeout` for the next message.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let t = rillet::select::after(Duration::from_secs(60));
    /// let err = t.recv_timeout(Duration::from_millis(1)).unwrap_err();
    /// assert_eq!(err, rillet::RecvTimeoutError::Timeout);
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Instant, RecvTimeoutError> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.recv_deadline(deadline),
            None => self.recv().map_err(|_| RecvTimeoutError::Closed),
        }
    }

    /// Waits until `deadline` at most for the next message.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let t = rillet::select::never();
    /// let deadline = Instant::now() + Duration::from_millis(1);
    /// assert!(t.recv_deadline(deadline).is_err());
    /// ```
    pub fn recv_deadline(&self, deadline: Instant) -> Result<Instant, RecvTimeoutError> {
        loop {
            let now = Instant::now();
            match self.next.get() {
                Some(due) if now >= due => return Ok(self.fire(due)),
                Some(due) if due <= deadline => std::thread::sleep(due - now),
                _ if now >= deadline => return Err(RecvTimeoutError::Timeout),
                _ => std::thread::sleep(deadline - now),
            }
        }
    }

    /// Delivers the message due at `due` and schedules the next one.
    fn fire(&self, due: Instant) -> Instant {
        let next = self.period.and_then(|p| {
            let now = Instant::now();
            let mut next = due.checked_add(p)?;
            if next <= now {
                // Missed ticks: skip them, keeping the phase.
                let behind = (now - next).as_nanos() / p.as_nanos() + 1;
                let skip = u32::try_from(behind).ok()?;
                next = next.checked_add(p.checked_mul(skip)?)?;
            }
            Some(next)
        });
        self.next.set(next);
        due
    }
}

impl Case for Timer {
    fn ready(&self) -> bool {
        self.next.get().is_some_and(|due| Instant::now() >= due)
    }

    fn queue(&self) -> Option<&WaitQueue> {
        None
    }

    fn deadline(&self) -> Option<Instant> {
        self.next.get()
    }

    fn addr(&self) -> *const () {
        self as *const Timer as *const ()
    }
}

impl SelectRecv for Timer {
    type Output = Result<Instant, RecvError>;

    fn complete_recv(&self) -> Result<Instant, RecvError> {
        self.recv()
    }
}
