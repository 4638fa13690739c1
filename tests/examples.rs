//! Runs the example programs that end by themselves, for real: each checks
//! its own promises as it goes (a broken one panics and the process fails),
//! and its output says what it showed.
#![cfg(not(miri))] // processes

mod common;

use common::run_example;

#[test]
fn pipelines_keep_their_promises() {
    let out = run_example("pipelines", &[]);
    for line in [
        "batching: 4 producers, 200000 messages in ",
        "none lost or repeated",
        "cache invalidation: 34 keys invalidated in 3 caches",
        "select with a timeout: gave up after ",
        "timeout by closing: 3 workers stopped by one close",
        "pipelines: all four patterns kept their promises",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }
}

#[test]
fn watch_tour_keeps_its_promises() {
    let out = run_example("watch_tour", &[]);
    for step in 1..=6 {
        assert!(
            out.contains(&format!("\n{step}. ")) || out.starts_with(&format!("{step}. ")),
            "no step {step} in:\n{out}"
        );
    }
    assert!(
        out.contains("watch tour: every step kept its promise"),
        "{out}"
    );
}

#[test]
fn controller_reports_every_event() {
    let out = run_example("controller", &[]);
    assert!(out.contains("none lost"), "{out}");
    // The program checks every status path itself; spot-check its table.
    for line in [
        "flaky added    Retry#1, Retry#2, Retry#3, MaxRetryReached#3 (gave up after 3 attempts)",
        "boom added    Failure#1 (the handler panicked: boom handler)",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }
}

#[test]
fn registrator_restarts_and_converges() {
    let out = run_example("registrator", &[]);
    for line in [
        "1. kube watch: ",
        " Error event(s) counting the other ",
        "cache of ",
        "equal to the store",
        "registrator: both clients kept their promises",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }
}
