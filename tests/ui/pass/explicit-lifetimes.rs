#![deny(warnings)]
#![warn(clippy::pedantic)]
// Stand-in bodies and fallbacks without I/O; lints on the generated code stay on.
#![allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value, clippy::unused_async)]

use std::borrow::Cow;

use async_upload::async_upload;

#[derive(Clone, Copy)]
struct Part<'a> {
    name: &'a str,
    bytes: &'a [u8],
}

fn put_blocking(part: Part<'_>, prefix: Cow<'_, str>) -> std::io::Result<usize> {
    Ok(prefix.len() + part.name.len() + part.bytes.len())
}

#[async_upload(fallback = put_blocking, key = part.name, size = part.bytes.len())]
async fn put<'a, 'b: 'a>(part: Part<'a>, prefix: Cow<'b, str>) -> std::io::Result<usize> {
    Ok(prefix.len() + part.name.len() + part.bytes.len())
}

#[tokio::main]
async fn main() {
    // Every call takes the async path; the sync path is covered by the fallbacks compiling.
    async_upload::config::handle().update(|c| { c.enabled = true; c.rollout = 100.0; }).unwrap();
    let name = String::from("n");
    let part = Part { name: &name, bytes: b"ab" };
    assert_eq!(put(part, Cow::Borrowed("p/")).await.unwrap(), 5);
}
