#![deny(warnings, missing_docs)]
#![warn(clippy::pedantic)]
// Stand-in bodies and fallbacks without I/O; lints on the generated code stay on.
#![allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value, clippy::unused_async)]
//! Visibility, docs and other attributes stay on the function callers see.

mod storage {
    use async_upload::async_upload;

    fn save_blocking(mut data: Vec<u8>) -> std::io::Result<usize> {
        data.push(0);
        Ok(data.len())
    }

    /// Saves `data`; documented, so `missing_docs` is satisfied.
    ///
    /// # Errors
    ///
    /// When storage fails.
    #[async_upload(fallback = save_blocking, name = "save")]
    #[must_use = "the result says whether the data was saved"]
    #[allow(clippy::needless_pass_by_value)]
    pub(crate) async fn save(mut data: Vec<u8>) -> std::io::Result<usize> {
        data.push(0);
        Ok(data.len())
    }

    #[cfg(any())]
    #[async_upload(fallback = does_not_exist)]
    pub(crate) async fn configured_out() -> std::io::Result<()> {
        compile_error!("a `cfg` that is false removes the function")
    }
}

/// Uses the re-exported function.
#[tokio::main]
pub async fn main() {
    // Every call takes the async path; the sync path is covered by the fallbacks compiling.
    async_upload::config::handle().update(|c| { c.enabled = true; c.rollout = 100.0; }).unwrap();
    assert_eq!(storage::save(vec![1]).await.unwrap(), 2);
}
