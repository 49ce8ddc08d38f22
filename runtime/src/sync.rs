//! The atomics of the call path's lock-free protocols (the site cache's
//! route and generation, the breaker's gate), in one place, so that a
//! `cfg(loom)` build model-checks them with loom's atomics instead of the
//! standard ones.
//!
//! Only the small protocol types use these; everything else keeps
//! `std::sync::atomic`. loom's atomics have no `const` constructor, so a
//! protocol type that a `static` holds (every [`Site`](crate::Site) is one)
//! writes its constructor through [`maybe_const_fn!`]: `const` in a normal
//! build, plain under loom (where no `static` holds it).
//!
//! The models run with `.ci/loom`: `cargo rustc --lib --profile test --
//! --cfg loom` passes the cfg to this crate alone (tokio does not build
//! under a global `--cfg loom`), then runs the tests named `loom_`.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(loom)]
pub(crate) use loom::thread::yield_now;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
/// Lets another thread run while a protocol waits on it (under loom, lets
/// the model schedule it).
#[cfg(not(loom))]
pub(crate) use std::thread::yield_now;

/// A constructor that is `const` except under `cfg(loom)`.
macro_rules! maybe_const_fn {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$meta])*
        #[cfg(not(loom))]
        $vis const fn $name($($arg: $ty),*) -> $ret $body

        $(#[$meta])*
        #[cfg(loom)]
        $vis fn $name($($arg: $ty),*) -> $ret $body
    };
}
pub(crate) use maybe_const_fn;
