//! The check the attribute's generated code makes on each owned argument
//! of a function whose sync path moves to Tokio's blocking pool: the
//! argument must be `Send`, and when it is not the error says so at the
//! argument, with what to write instead (generated code only).

/// An owned argument that may move to the sync path's thread.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not `Send`, but the sync path of an `#[async_upload]` function with owned arguments runs on Tokio's blocking pool, another thread",
    label = "not `Send`: cannot move to the sync path's thread",
    note = "use a `Send` type for the argument (`Arc` instead of `Rc`, `Mutex` instead of `RefCell`)",
    note = "or take it by reference (`&{Self}`): with a borrowed argument the sync path runs in place, on the caller's thread"
)]
pub trait SendArgument {
    /// Named by the generated code: it exists only where the bound holds.
    const CHECKED: () = ();
}

// The impl is what the compiler would cite; not recommending it keeps the
// message above as the error.
#[diagnostic::do_not_recommend]
impl<T: Send + ?Sized> SendArgument for T {}
