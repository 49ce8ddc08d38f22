#![deny(warnings)]
#![warn(clippy::pedantic)]
// Stand-in bodies and fallbacks without I/O; lints on the generated code stay on.
#![allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value, clippy::unused_async)]

use std::io;

use async_upload::async_upload;

fn parse_blocking(text: String) -> io::Result<u32> {
    text.parse().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[async_upload(fallback = parse_blocking)]
async fn parse(text: String) -> io::Result<u32> {
    if text.is_empty() {
        return Ok(0);
    }
    let n: u32 = text.parse().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(n)
}

#[tokio::main]
async fn main() {
    // Every call takes the async path; the sync path is covered by the fallbacks compiling.
    async_upload::config::handle().update(|c| { c.enabled = true; c.rollout = 100.0; }).unwrap();
    assert_eq!(parse(String::new()).await.unwrap(), 0);
    assert_eq!(parse("12".into()).await.unwrap(), 12);
    assert!(parse("x".into()).await.is_err());
}
