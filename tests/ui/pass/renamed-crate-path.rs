#![deny(warnings)]
#![warn(clippy::pedantic)]
// Stand-in bodies and fallbacks without I/O; lints on the generated code stay on.
#![allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value, clippy::unused_async)]
//! `crate = path` for a dependency reached under another name.

use async_upload as uploads;

fn ping_blocking() -> std::io::Result<&'static str> {
    Ok("pong")
}

#[uploads::async_upload(fallback = ping_blocking, crate = uploads)]
async fn ping() -> std::io::Result<&'static str> {
    Ok("pong")
}

#[tokio::main]
async fn main() {
    // Every call takes the async path; the sync path is covered by the fallbacks compiling.
    async_upload::config::handle().update(|c| { c.enabled = true; c.rollout = 100.0; }).unwrap();
    assert_eq!(ping().await.unwrap(), "pong");
}
