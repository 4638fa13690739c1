//! The model builders every loom test file uses.
#![allow(dead_code)]

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
    let mut b = builder();
    b.preemption_bound = Some(1);
    b.check(f);
}

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.max_branches = 100_000;
    b
}
