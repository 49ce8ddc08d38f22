#![deny(warnings)]
#![warn(clippy::pedantic)]
// Stand-in bodies and fallbacks without I/O; lints on the generated code stay on.
#![allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value, clippy::unused_async)]
//! `#[tracing::instrument]` works above and below the attribute.

use async_upload::async_upload;

fn upload_blocking(id: u64) -> std::io::Result<u64> {
    Ok(id)
}

#[tracing::instrument(level = "info")]
#[async_upload(fallback = upload_blocking, key = id, name = "instrumented_above")]
async fn above(id: u64) -> std::io::Result<u64> {
    tracing::info!("inside");
    Ok(id)
}

#[async_upload(fallback = upload_blocking, key = id, name = "instrumented_below")]
#[tracing::instrument(level = "info", err)]
async fn below(id: u64) -> std::io::Result<u64> {
    tracing::info!("inside");
    Ok(id)
}

#[tokio::main]
async fn main() {
    // Every call takes the async path; the sync path is covered by the fallbacks compiling.
    async_upload::config::handle().update(|c| { c.enabled = true; c.rollout = 100.0; }).unwrap();
    assert_eq!(above(1).await.unwrap(), 1);
    assert_eq!(below(2).await.unwrap(), 2);
    assert_eq!(tokio::spawn(below(3)).await.unwrap().unwrap(), 3);
}
