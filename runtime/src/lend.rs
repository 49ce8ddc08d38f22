//! Lending a `&mut` argument to the async attempt and then to the fallback.

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, PoisonError};

/// Holds a `&mut` borrow so that an attempt's future can use it and, when
/// that future ends or is dropped (a timeout, a panic), give it back for the
/// sync fallback.
///
/// An attempt's future cannot borrow from the argument tuple the runtime
/// keeps, so a `&mut` argument is kept here, outside it, and the tuple holds
/// `&Lend`. The attribute does this for `&mut` arguments, which it accepts
/// only with `retries = 0`: a failed attempt may have half-consumed the
/// borrowed value, and a retry would start from that.
///
/// ```
/// use async_upload_runtime::execute::{execute_in_place, Lend};
/// use async_upload_runtime::Site;
///
/// static APPEND: Site = Site::new("docs_lend");
///
/// async fn append_async(out: &mut Vec<u8>) -> std::io::Result<usize> { out.push(1); Ok(out.len()) }
/// fn append_blocking(out: &mut Vec<u8>) -> std::io::Result<usize> { out.push(2); Ok(out.len()) }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let mut out = Vec::new();
/// let lend = Lend::new(&mut out);
/// let written = execute_in_place(
///     APPEND.call_unkeyed(),
///     (&lend,),
///     |(lend,)| {
///         let lend: &Lend<'_, Vec<u8>> = lend;
///         async move { append_async(&mut lend.lend()).await }
///     },
///     |(lend,)| append_blocking(lend.take()),
/// )
/// .await;
/// assert_eq!(written.unwrap(), 1); // async is disabled by default: the sync path ran
/// assert_eq!(out, [2]);
/// # }
/// ```
#[derive(Debug)]
pub struct Lend<'a, T: ?Sized> {
    slot: Mutex<Option<&'a mut T>>,
}

impl<'a, T: ?Sized> Lend<'a, T> {
    /// Keeps `value` until it is lent or taken.
    pub fn new(value: &'a mut T) -> Self {
        Lend {
            slot: Mutex::new(Some(value)),
        }
    }

    /// Lends the borrow until the returned guard drops.
    ///
    /// # Panics
    ///
    /// If it is already lent or taken. The runtime runs one attempt at a
    /// time and drops each attempt's future before the next step, so
    /// generated code never does this.
    #[must_use]
    pub fn lend(&self) -> Lent<'_, 'a, T> {
        Lent {
            value: Some(self.take()),
            home: self,
        }
    }

    /// Takes the borrow back for good (for the fallback).
    ///
    /// # Panics
    ///
    /// As [`Lend::lend`].
    #[must_use]
    pub fn take(&self) -> &'a mut T {
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .expect("a `&mut` argument was used while an attempt still held it")
    }
}

/// The borrow lent to one attempt; goes home when dropped.
#[derive(Debug)]
pub struct Lent<'l, 'a, T: ?Sized> {
    home: &'l Lend<'a, T>,
    /// `Some` until dropped.
    value: Option<&'a mut T>,
}

impl<T: ?Sized> Deref for Lent<'_, '_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value.as_deref().expect("present until dropped")
    }
}

impl<T: ?Sized> DerefMut for Lent<'_, '_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value.as_deref_mut().expect("present until dropped")
    }
}

impl<T: ?Sized> Drop for Lent<'_, '_, T> {
    fn drop(&mut self) {
        *self
            .home
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = self.value.take();
    }
}
