//! An informer-style controller on the watch store.
//!
//! The informer watches one kind (`initial_replay`: the existing entries
//! arrive as `added`) and queues each event for a pool of workers. A
//! worker calls the handler's `added`, `updated` or `deleted` with the
//! event and a [`StatusSender`]: the event's own status channel (a rillet
//! `mpsc` channel of [`STATUS_BUFFER`] statuses; a handler that sends more
//! than the collector has taken blocks until it does). The handler reports
//! as it goes (`send`: `Processing`, `PartialCompleted`, ...) and ends the
//! event with `send_close` (its last status; `on_status` is called for it)
//! or `skip_close` (its last status; `on_status` is not called). Closing
//! twice never panics: the second close returns `false`.
//!
//! One collector thread follows every open status channel at once with a
//! dynamic [`rillet::Select`] and calls `on_status`. When an event ends
//! with `Retry`, the collector queues it again (after the delay given with
//! `with_retry`) until it has been tried `with_max_retry` times (default
//! [`DEFAULT_MAX_RETRY`]); then it reports `MaxRetryReached`. A handler
//! that panics gets its event reported as `Failure` (the panic message is
//! the error), and one that returns without closing as `Failure` too: no
//! event is ever lost.
//!
//! Shutdown ([`Controller::shutdown`]) cancels the watch, waits until every
//! event queued so far has ended (retries included), then stops the
//! workers and the collector and joins every thread.

use rillet::watch::{Event, EventType, Store, WatchHandle, WatchOptions};
use rillet::{mpsc, Select};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Statuses a handler may send per event.
pub const STATUS_BUFFER: usize = 5;
/// Attempts of an event that keeps asking for `Retry`.
pub const DEFAULT_MAX_RETRY: u32 = 3;

/// How an event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Skip,
    Retry,
    MaxRetryReached,
    Completed,
    Failure,
    Processing,
    PartialCompleted,
}

/// What `on_status` gets.
#[derive(Debug, Clone)]
pub struct StatusReport {
    pub status: Status,
    pub message: String,
    pub error: Option<String>,
    /// The event's name and type.
    pub name: String,
    pub event_type: EventType,
    /// 1 for the first try of the event.
    pub attempt: u32,
    /// This status ended the event.
    pub last: bool,
}

/// Builds a status: `StatusBuilder::new().with_status(..).with_message(..)`.
#[derive(Debug, Clone)]
pub struct StatusBuilder {
    status: Status,
    message: String,
    error: Option<String>,
    retry_after: Duration,
    max_retry: Option<u32>,
}

impl Default for StatusBuilder {
    fn default() -> Self {
        StatusBuilder::new()
    }
}

impl StatusBuilder {
    /// `Processing`, no message.
    pub fn new() -> Self {
        StatusBuilder {
            status: Status::Processing,
            message: String::new(),
            error: None,
            retry_after: Duration::ZERO,
            max_retry: None,
        }
    }

    pub fn with_status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// `Retry`, after `delay`.
    pub fn with_retry(mut self, delay: Duration) -> Self {
        self.status = Status::Retry;
        self.retry_after = delay;
        self
    }

    /// At most `attempts` tries of this event (counting the first).
    ///
    /// # Panics
    ///
    /// If `attempts` is 0.
    pub fn with_max_retry(mut self, attempts: u32) -> Self {
        assert!(attempts > 0, "with_max_retry: at least one attempt");
        self.max_retry = Some(attempts);
        self
    }

    /// `Failure`, with `error`.
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.status = Status::Failure;
        self.error = Some(error.into());
        self
    }
}

/// One status on the event's channel.
struct Sent {
    b: StatusBuilder,
    last: bool,
    /// `on_status` is called for it (`false` for `skip_close`).
    notify: bool,
}

/// The event's status channel, as its handler holds it.
pub struct StatusSender {
    tx: mpsc::Sender<Sent>,
    closed: AtomicBool,
}

impl StatusSender {
    /// Reports a status that does not end the event (blocks while
    /// [`STATUS_BUFFER`] statuses wait for the collector). `false` once the
    /// event has ended.
    pub fn send(&self, b: StatusBuilder) -> bool {
        !self.closed.load(Ordering::Acquire)
            && self
                .tx
                .send(Sent {
                    b,
                    last: false,
                    notify: true,
                })
                .is_ok()
    }

    /// Ends the event with `b`; `on_status` is called for it. `true` only
    /// for the first close.
    pub fn send_close(&self, b: StatusBuilder) -> bool {
        self.close(b, true)
    }

    /// Ends the event with `b`, without calling `on_status`. `true` only for
    /// the first close.
    pub fn skip_close(&self, b: StatusBuilder) -> bool {
        self.close(b, false)
    }

    fn close(&self, b: StatusBuilder, notify: bool) -> bool {
        if self.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.tx
            .clone()
            .close_with(Sent {
                b,
                last: true,
                notify,
            })
            .is_ok()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// What a controller calls. Every method runs on a worker thread, except
/// `on_status`, which runs on the collector thread.
pub trait Handler<T>: Send + Sync + 'static {
    fn added(&self, ev: &Event<T>, status: &StatusSender);
    fn updated(&self, ev: &Event<T>, status: &StatusSender);
    fn deleted(&self, ev: &Event<T>, status: &StatusSender);
    fn on_status(&self, report: &StatusReport);
}

/// An event to handle (again).
struct Work<T> {
    ev: Event<T>,
    attempt: u32,
    not_before: Instant,
}

/// An event being handled: its status channel, as the collector follows it.
struct Open<T> {
    work: Work<T>,
    rx: mpsc::Receiver<Sent>,
    last: Option<StatusBuilder>,
}

pub struct Controller<T> {
    watch: WatchHandle<T>,
    informer: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    collector: Option<JoinHandle<()>>,
}

impl<T: Send + Sync + 'static> Controller<T> {
    /// Starts the informer, `workers` workers and the collector on `kind`.
    ///
    /// # Panics
    ///
    /// If `workers` is 0.
    pub fn start(
        store: &Store<T>,
        kind: &str,
        workers: usize,
        handler: impl Handler<T>,
    ) -> Controller<T> {
        assert!(workers > 0, "Controller::start: at least one worker");
        let handler = Arc::new(handler);
        // A queue per worker; an entry's events all go to one worker (its
        // name's hash), so one entry is never handled twice at once.
        let (work_tx, work_rxs): (Vec<_>, Vec<_>) =
            (0..workers).map(|_| mpsc::channel::<Work<T>>(64)).unzip();
        let work_tx = Queues(Arc::new(work_tx));
        let (open_tx, open_rx) = mpsc::channel::<Open<T>>(64);
        // Events queued and not ended; the informer's own count keeps it
        // above 0 until the informer ends.
        let outstanding = Arc::new(AtomicUsize::new(1));
        // The informer runs before the watch starts: the replay waits for
        // room in its channel.
        let (events_tx, events) = mpsc::channel::<Event<T>>(1024);
        let informer = {
            let (work_tx, outstanding) = (work_tx.clone(), outstanding.clone());
            thread::spawn(move || inform(&events, &work_tx, &outstanding))
        };
        let watch = store.watch_into(kind, WatchOptions::new().initial_replay(), events_tx);
        let workers = work_rxs
            .into_iter()
            .map(|work_rx| {
                let (open_tx, handler) = (open_tx.clone(), handler.clone());
                thread::spawn(move || work(&work_rx, &open_tx, &*handler))
            })
            .collect();
        drop(open_tx);
        let collector = {
            let handler = handler.clone();
            thread::spawn(move || collect(open_rx, work_tx, &outstanding, &*handler))
        };
        Controller {
            watch,
            informer: Some(informer),
            workers,
            collector: Some(collector),
        }
    }

    /// Stops watching, lets every queued event end (retries included),
    /// then joins every thread.
    pub fn shutdown(mut self) {
        self.stop();
    }
}

impl<T> Controller<T> {
    fn stop(&mut self) {
        self.watch.cancel();
        if let Some(h) = self.informer.take() {
            h.join().expect("the informer does not panic");
        }
        if let Some(h) = self.collector.take() {
            h.join().expect("the collector does not panic");
        }
        for h in self.workers.drain(..) {
            h.join().expect("a worker does not panic");
        }
    }
}

impl<T> Drop for Controller<T> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Queues every event of the watch until it ends (cancelled, or the store
/// is gone), then gives up its own count.
fn inform<T: 'static>(
    events: &mpsc::Receiver<Event<T>>,
    work: &Queues<T>,
    outstanding: &AtomicUsize,
) {
    for ev in events.iter() {
        outstanding.fetch_add(1, Ordering::AcqRel);
        let item = Work {
            ev,
            attempt: 1,
            not_before: Instant::now(),
        };
        if work.send(item).is_err() {
            break;
        }
    }
    finish(outstanding, work);
}

/// A worker: one event at a time, through the handler.
fn work<T: 'static>(
    work: &mpsc::Receiver<Work<T>>,
    open: &mpsc::Sender<Open<T>>,
    handler: &dyn Handler<T>,
) {
    while let Ok(w) = work.recv() {
        let wait = w.not_before.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            thread::sleep(wait);
        }
        let (tx, rx) = mpsc::channel::<Sent>(STATUS_BUFFER);
        let status = StatusSender {
            tx,
            closed: AtomicBool::new(false),
        };
        let ev = w.ev.clone();
        if open
            .send(Open {
                work: w,
                rx,
                last: None,
            })
            .is_err()
        {
            return;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| match ev.event_type {
            EventType::Create => handler.added(&ev, &status),
            EventType::Update => handler.updated(&ev, &status),
            EventType::Delete => handler.deleted(&ev, &status),
        }));
        match outcome {
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                status.send_close(
                    StatusBuilder::new().with_error(format!("the handler panicked: {msg}")),
                );
            }
            Ok(()) => {
                status.send_close(
                    StatusBuilder::new()
                        .with_error("the handler returned without closing the event"),
                );
            }
        }
    }
}

/// What one select of the collector got.
enum Got<T> {
    Opened(Option<Open<T>>),
    /// A retry went back to the workers, or came back (no worker left).
    Retried(Option<Work<T>>),
    Status(usize, Option<Sent>),
}

/// The collector: every open status channel at once.
fn collect<T: 'static>(
    open: mpsc::Receiver<Open<T>>,
    work: Queues<T>,
    outstanding: &AtomicUsize,
    handler: &dyn Handler<T>,
) {
    let mut active: Vec<Open<T>> = Vec::new();
    let mut retries: std::collections::VecDeque<Work<T>> = Default::default();
    let mut open_closed = false;
    while !(open_closed && active.is_empty() && retries.is_empty()) {
        let got = {
            let mut sel = Select::new();
            let open_case = (!open_closed).then(|| sel.recv(&open));
            let retry_case = retries.front().map(|w| sel.send(work.of(w)));
            let first = usize::from(open_case.is_some()) + usize::from(retry_case.is_some());
            for a in &active {
                sel.recv(&a.rx);
            }
            let op = sel.select();
            let i = op.index();
            if Some(i) == open_case {
                Got::Opened(op.recv(&open).ok())
            } else if Some(i) == retry_case {
                let w = retries.pop_front().expect("a retry is queued");
                let to = work.of(&w);
                Got::Retried(op.send(to, w).err().map(|e| e.into_inner()))
            } else {
                Got::Status(i - first, op.recv(&active[i - first].rx).ok())
            }
        };
        match got {
            Got::Opened(Some(o)) => active.push(o),
            Got::Opened(None) => open_closed = true,
            Got::Retried(None) => {}
            Got::Retried(Some(w)) => {
                report_end(handler, &w, Status::Failure, "no worker left to retry it");
                finish(outstanding, &work);
            }
            Got::Status(i, Some(sent)) => {
                let a = &mut active[i];
                if sent.notify {
                    handler.on_status(&report(&a.work, &sent.b, sent.last));
                }
                if sent.last {
                    a.last = Some(sent.b);
                }
            }
            Got::Status(i, None) => {
                // The channel closed: the event ended.
                let a = active.swap_remove(i);
                let last = a
                    .last
                    .expect("a status channel closes with its last status");
                let max = last.max_retry.unwrap_or(DEFAULT_MAX_RETRY);
                if last.status != Status::Retry {
                    finish(outstanding, &work);
                } else if a.work.attempt < max {
                    retries.push_back(Work {
                        ev: a.work.ev,
                        attempt: a.work.attempt + 1,
                        not_before: Instant::now() + last.retry_after,
                    });
                } else {
                    let msg = format!("gave up after {max} attempts");
                    report_end(handler, &a.work, Status::MaxRetryReached, &msg);
                    finish(outstanding, &work);
                }
            }
        }
    }
}

fn report<T>(w: &Work<T>, b: &StatusBuilder, last: bool) -> StatusReport {
    StatusReport {
        status: b.status,
        message: b.message.clone(),
        error: b.error.clone(),
        name: w.ev.name.clone(),
        event_type: w.ev.event_type,
        attempt: w.attempt,
        last,
    }
}

/// An end the controller decides (not the handler).
fn report_end<T: 'static>(handler: &dyn Handler<T>, w: &Work<T>, status: Status, message: &str) {
    let b = StatusBuilder::new()
        .with_status(status)
        .with_message(message);
    handler.on_status(&report(w, &b, true));
}

/// The workers' queues.
struct Queues<T>(Arc<Vec<mpsc::Sender<Work<T>>>>);

impl<T> Clone for Queues<T> {
    fn clone(&self) -> Self {
        Queues(self.0.clone())
    }
}

impl<T> Queues<T> {
    /// The queue of `w`'s entry.
    fn of(&self, w: &Work<T>) -> &mpsc::Sender<Work<T>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&w.ev.name, &mut h);
        &self.0[(std::hash::Hasher::finish(&h) % self.0.len() as u64) as usize]
    }

    fn send(&self, w: Work<T>) -> Result<(), rillet::SendError<Work<T>>> {
        self.of(&w).send(w)
    }

    fn close(&self) {
        for q in self.0.iter() {
            q.close();
        }
    }
}

/// One event ended; the last one after the informer ended closes the
/// work queue (the workers end, then the collector).
fn finish<T: 'static>(outstanding: &AtomicUsize, work: &Queues<T>) {
    if outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
        work.close();
    }
}
