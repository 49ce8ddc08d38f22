//! The `#[async_upload]` attribute of [`async-upload`](https://docs.rs/async-upload).
//!
//! Use it through the `async-upload` crate, which re-exports it; the
//! generated code calls that crate's runtime.
//!
//! The crate is organised as thiserror's and tokio's macro crates are:
//! `attr` parses the arguments into a typed model, `valid` checks them
//! against the function, `expand` generates the code.
#![deny(missing_docs)]
#![warn(clippy::pedantic)]

mod attr;
mod expand;
mod receiver;
mod shape;
mod valid;

#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Routes each call of an `async fn` between the function (the new async
/// path) and a sync `fallback` (the old path), with retries, a per-attempt
/// timeout and a record of every call.
///
/// ```ignore
/// use async_upload::async_upload;
///
/// fn upload_blocking(req: UploadRequest) -> Result<Receipt, UploadError> { /* today's code */ }
///
/// #[async_upload(retries = 2, timeout = 30, fallback = upload_blocking,
///                key = req.id.as_str(), size = req.bytes.len())]
/// async fn upload(req: UploadRequest) -> Result<Receipt, UploadError> { /* the new code */ }
/// ```
///
/// Keys: `fallback` (required), `retries`, `timeout`, `backoff`, `key`,
/// `size`, `name`, `salt`, `classify`, `crate`. The README's section "The attribute"
/// documents each key, the precedence of configuration and the generated
/// code; the `async-upload` crate's tests compile the example above.
#[proc_macro_attribute]
pub fn async_upload(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::entry(args.into(), item.into()).into()
}
