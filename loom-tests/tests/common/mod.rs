//! The model builders every loom test file uses.
#![allow(dead_code)]

mod stacks;

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;

/// Every interleaving (up to `LOOM_MAX_PREEMPTIONS`, from the environment).
/// Producers wait (with a yield) for a slot another producer claimed but
/// has not written yet, and waiters park and re-arm: the models need more
/// branches than loom's default.
pub fn model(f: impl Fn() + Sync + Send + 'static) {
    builder().check(f);
}

/// One preemption at most, whatever the environment says: for the larger
/// models (three or four threads taking locks and parking), where it keeps
/// them to seconds and already covers a thread preempted between any two
/// steps of its protocol (inside each claim, hand-over and re-arm).
pub fn model_bound_1(f: impl Fn() + Sync + Send + 'static) {
    model_bound(1, f);
}

/// `bound` preemptions at most, whatever the environment says: for a model
/// whose race needs more than the files' usual bound, or fewer.
pub fn model_bound(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut b = builder();
    b.preemption_bound = Some(bound);
    b.check(f);
}

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.max_branches = 100_000;
    b
}

/// A spawned thread that raises a flag as its last step, and the join
/// that waits for the flag.
pub struct Flagged<T> {
    done: Arc<AtomicBool>,
    handle: thread::JoinHandle<T>,
}

/// Spawns `f` on a thread that raises the flag of [`Flagged`] once `f`
/// has returned.
pub fn spawn_flagged<T: 'static>(f: impl FnOnce() -> T + 'static) -> Flagged<T> {
    let done = Arc::new(AtomicBool::new(false));
    let handle = thread::spawn({
        let done = done.clone();
        move || {
            let out = f();
            done.store(true, Ordering::Release);
            out
        }
    });
    Flagged { done, handle }
}

impl<T> Flagged<T> {
    /// Joins the thread once its flag is up. A channel's wake-up may reach
    /// a thread after it stopped waiting (std keeps it as a token for the
    /// next `park`); loom cannot take one while the thread is blocked in
    /// `join` (it fails its own assertion). So a model whose spawned thread
    /// may still unpark the joining one waits for that thread's last step
    /// first.
    pub fn join(self) -> T {
        while !self.done.load(Ordering::Acquire) {
            thread::yield_now();
        }
        self.handle.join().unwrap()
    }
}
