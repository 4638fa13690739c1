//! `select!` and `select_biased!`: a token muncher that normalises the
//! cases, then one expansion that evaluates each handle once, selects over
//! a stack array of cases and completes the chosen one.

/// Waits on several channel operations and runs the one that completes
/// first; among cases ready at once, each wins with equal probability.
///
/// The syntax is crossbeam-channel's:
///
/// - `recv(rx) -> msg => body`: `msg` is what `rx.recv()` returns (for a
///   broadcast subscriber, `Result<T, broadcast::RecvError>`).
/// - `send(tx, value) -> res => body`: `res` is what `tx.send(value)`
///   returns; `value` is evaluated only if this case wins.
/// - `default => body`: runs if no case is ready now.
/// - `default(timeout) => body`: runs if no case is ready within `timeout`.
///
/// Handles may be spsc, mpsc (ring or rendezvous) and broadcast receivers
/// and senders, and the timers of [`select`](mod@crate::select); any mix, the
/// same handle in several cases included. A closed channel is ready. Each
/// handle expression is evaluated once, in order, before anything is
/// selected. Bodies may `return`, `break` or `continue` the enclosing code.
/// See the [`select` module](mod@crate::select) for how it works and what it
/// decides.
///
/// ```
/// use rillet::{mpsc, select, spsc};
/// use std::time::Duration;
///
/// let (tx, rx) = spsc::channel::<i32>(1);
/// let (out_tx, out_rx) = mpsc::channel::<i32>(1);
/// tx.send(1).unwrap();
/// let mut got = Vec::new();
/// loop {
///     select! {
///         recv(rx) -> msg => match msg {
///             Ok(n) => got.push(n),
///             Err(_) => break,
///         },
///         send(out_tx, 10) -> res => {
///             res.unwrap();
///             drop(tx); // closing is a way to end the loop
///             # break;
///         }
///         default(Duration::from_secs(1)) => panic!("something was ready"),
///     }
/// }
/// assert!(got.len() <= 1);
/// # drop(out_rx);
/// ```
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__select_start!(false; $($tokens)*)
    };
}

/// [`select!`](crate::select!) in which the first ready case, in source
/// order, wins (for priorities; a busy first case can starve the others).
///
/// ```
/// use rillet::{mpsc, select_biased};
///
/// let (tx1, rx1) = mpsc::channel::<u8>(1);
/// let (tx2, rx2) = mpsc::channel::<u8>(1);
/// tx1.send(1).unwrap();
/// tx2.send(2).unwrap();
/// let first = select_biased! {
///     recv(rx1) -> msg => msg.unwrap(),
///     recv(rx2) -> msg => msg.unwrap(),
/// };
/// assert_eq!(first, 1); // both were ready: the first case wins
/// ```
#[macro_export]
macro_rules! select_biased {
    ($($tokens:tt)*) => {
        $crate::__select_start!(true; $($tokens)*)
    };
}

/// The entry of both macros: the case names (one per case; hygienic, so
/// they never clash with the caller's), then the parse.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_start {
    ($biased:tt; $($tokens:tt)*) => {
        $crate::__select_parse!(
            $biased;
            [];
            [];
            (c0 c1 c2 c3 c4 c5 c6 c7 c8 c9 c10 c11 c12 c13 c14 c15 c16 c17 c18 c19 c20 c21
             c22 c23 c24 c25 c26 c27 c28 c29 c30 c31 c32 c33 c34 c35 c36 c37 c38 c39 c40
             c41 c42 c43 c44 c45 c46 c47 c48 c49 c50 c51 c52 c53 c54 c55 c56 c57 c58 c59
             c60 c61 c62 c63);
            $($tokens)*
        )
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    // All parsed.
    ($biased:tt; $cases:tt; $default:tt; $ids:tt;) => {
        $crate::__select_build!($biased; $cases; $default)
    };
    // Out of names.
    ($biased:tt; $cases:tt; $default:tt; (); $($rest:tt)+) => {
        compile_error!("select!: at most 64 cases")
    };

    // recv(r) -> pat => body
    ($biased:tt; [$($cases:tt)*]; $default:tt; ($id:ident $($ids:ident)*);
     recv($r:expr) -> $p:pat => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!($biased; [$($cases)* (recv $id ($r) () ($p) ($body))];
            $default; ($($ids)*); $($rest)*)
    };
    ($biased:tt; [$($cases:tt)*]; $default:tt; ($id:ident $($ids:ident)*);
     recv($r:expr) -> $p:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!($biased; [$($cases)* (recv $id ($r) () ($p) ($body))];
            $default; ($($ids)*); $($rest)*)
    };
    ($biased:tt; [$($cases:tt)*]; $default:tt; ($id:ident $($ids:ident)*);
     recv($r:expr) -> $p:pat => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!($biased; [$($cases)* (recv $id ($r) () ($p) ($body))];
            $default; ($($ids)*); $($rest)*)
    };
    ($biased:tt; [$($cases:tt)*]; $default:tt; ($id:ident $($ids:ident)*);
     recv($r:expr) -> $p:pat => $body:expr) => {
        $crate::__select_parse!($biased; [$($cases)* (recv $id ($r) () ($p) ($body))];
            $default; ($($ids)*);)
    };

    // send(s, value) -> pat => body
    ($biased:tt; [$($cases:tt)*]; $default:tt; ($id:ident $($ids:ident)*);
     send($s:expr, $v:expr) -> $p:pat => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!($biased; [$($cases)* (send $id ($s) ($v) ($p) ($body))];
            $default; ($($ids)*); $($rest)*)
    };
    ($biased:tt; [$($cases:tt)*]; $default:tt; ($id:ident $($ids:ident)*);
     send($s:expr, $v:expr) -> $p:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!($biased; [$($cases)* (send $id ($s) ($v) ($p) ($body))];
            $default; ($($ids)*); $($rest)*)
    };
    ($biased:tt; [$($cases:tt)*]; $default:tt; ($id:ident $($ids:ident)*);
     send($s:expr, $v:expr) -> $p:pat => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!($biased; [$($cases)* (send $id ($s) ($v) ($p) ($body))];
            $default; ($($ids)*); $($rest)*)
    };
    ($biased:tt; [$($cases:tt)*]; $default:tt; ($id:ident $($ids:ident)*);
     send($s:expr, $v:expr) -> $p:pat => $body:expr) => {
        $crate::__select_parse!($biased; [$($cases)* (send $id ($s) ($v) ($p) ($body))];
            $default; ($($ids)*);)
    };

    // default => body, default(timeout) => body: at most one.
    ($biased:tt; $cases:tt; [$($d:tt)+]; $ids:tt; default $($rest:tt)*) => {
        compile_error!("select!: more than one `default` case")
    };
    ($biased:tt; $cases:tt; []; $ids:tt; default => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!($biased; $cases; [() ($body)]; $ids; $($rest)*)
    };
    ($biased:tt; $cases:tt; []; $ids:tt; default => $body:block $($rest:tt)*) => {
        $crate::__select_parse!($biased; $cases; [() ($body)]; $ids; $($rest)*)
    };
    ($biased:tt; $cases:tt; []; $ids:tt; default => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!($biased; $cases; [() ($body)]; $ids; $($rest)*)
    };
    ($biased:tt; $cases:tt; []; $ids:tt; default => $body:expr) => {
        $crate::__select_parse!($biased; $cases; [() ($body)]; $ids;)
    };
    ($biased:tt; $cases:tt; []; $ids:tt; default($t:expr) => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!($biased; $cases; [($t) ($body)]; $ids; $($rest)*)
    };
    ($biased:tt; $cases:tt; []; $ids:tt; default($t:expr) => $body:block $($rest:tt)*) => {
        $crate::__select_parse!($biased; $cases; [($t) ($body)]; $ids; $($rest)*)
    };
    ($biased:tt; $cases:tt; []; $ids:tt; default($t:expr) => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!($biased; $cases; [($t) ($body)]; $ids; $($rest)*)
    };
    ($biased:tt; $cases:tt; []; $ids:tt; default($t:expr) => $body:expr) => {
        $crate::__select_parse!($biased; $cases; [($t) ($body)]; $ids;)
    };

    ($biased:tt; $cases:tt; $default:tt; $ids:tt; $($rest:tt)+) => {
        compile_error!(concat!(
            "select!: expected `recv(r) -> pat => body`, `send(s, value) -> pat => body`, ",
            "`default => body` or `default(timeout) => body`, found: ",
            stringify!($($rest)+)
        ))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_build {
    ($biased:tt;
     [$( ($kind:ident $id:ident ($h:expr) $v:tt $p:tt $body:tt) )*];
     $default:tt) => {{
        // Each handle once, in order; a temporary (`recv(after(d))`) lives
        // to the end of the select.
        $( let $id = &$h; )*
        let cases = $crate::select::__cases([$( $crate::__select_case!($kind $id) ),*]);
        $crate::__select_wait!($biased; cases; $default; __index => {
            let mut next = 0usize;
            $(
                if { let this = next; next += 1; this == __index } {
                    $crate::__select_complete!($kind $id $v $p $body)
                } else
            )* {
                let _ = next;
                unreachable!("select!: no case has index {}", __index)
            }
        })
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_case {
    (recv $id:ident) => {
        $crate::select::__recv_case($id)
    };
    (send $id:ident) => {
        $crate::select::__send_case($id)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_complete {
    (recv $id:ident () ($p:pat) ($body:expr)) => {{
        #[allow(unreachable_patterns)]
        let $p = $crate::select::__complete_recv($id);
        $body
    }};
    (send $id:ident ($v:expr) ($p:pat) ($body:expr)) => {{
        // The case is committed; if the value panics or leaves early, the
        // guard withdraws it (a rendezvous receiver may wait for it).
        let guard = $crate::select::__send_guard($id);
        let value = $v;
        #[allow(unreachable_patterns)]
        let $p = $crate::select::__complete_send(guard, value);
        $body
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_wait {
    // No default: wait as long as it takes.
    ($biased:tt; $cases:ident; []; $index:ident => $dispatch:block) => {{
        let $index = $crate::select::__select(&$cases, $biased, $crate::select::Wait::Until(None))
            .expect("select!: a select without a deadline returned without a case");
        $dispatch
    }};
    // default => body: do not wait.
    ($biased:tt; $cases:ident; [() ($body:expr)]; $index:ident => $dispatch:block) => {{
        match $crate::select::__select(&$cases, $biased, $crate::select::Wait::No) {
            Some($index) => $dispatch,
            None => $body,
        }
    }};
    // default(timeout) => body.
    ($biased:tt; $cases:ident; [($t:expr) ($body:expr)]; $index:ident => $dispatch:block) => {{
        let wait = $crate::select::Wait::For($t);
        match $crate::select::__select(&$cases, $biased, wait) {
            Some($index) => $dispatch,
            None => $body,
        }
    }};
}
