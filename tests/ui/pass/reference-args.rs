#![deny(warnings)]
#![warn(clippy::pedantic)]
// Stand-in bodies and fallbacks without I/O; lints on the generated code stay on.
#![allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value, clippy::unused_async)]
//! Borrowed arguments: the sync path runs in place, and the future stays
//! `Send`, so a spawned task can await it.

use std::sync::Arc;

use async_upload::async_upload;

fn store_blocking(name: &str, data: &[u8]) -> std::io::Result<String> {
    Ok(format!("{name}:{}", data.len()))
}

#[async_upload(fallback = store_blocking, key = name, size = data.len())]
async fn store(name: &str, data: &[u8]) -> std::io::Result<String> {
    tokio::task::yield_now().await;
    Ok(format!("{name}:{}", data.len()))
}

#[tokio::main]
async fn main() {
    // Every call takes the async path; the sync path is covered by the fallbacks compiling.
    async_upload::config::handle().update(|c| { c.enabled = true; c.rollout = 100.0; }).unwrap();
    let data: Arc<[u8]> = Arc::from(&b"abc"[..]);
    let task = tokio::spawn(async move { store("a", &data).await });
    assert_eq!(task.await.unwrap().unwrap(), "a:3");
}
