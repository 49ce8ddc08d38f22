#![deny(warnings)]
#![warn(clippy::pedantic)]
// Stand-in bodies and fallbacks without I/O; lints on the generated code stay on.
#![allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value, clippy::unused_async)]

use async_upload::async_upload;

fn send_blocking(body: impl AsRef<[u8]>, label: impl Into<String>) -> std::io::Result<String> {
    Ok(format!("{}:{}", label.into(), body.as_ref().len()))
}

#[async_upload(fallback = send_blocking, size = body.as_ref().len())]
async fn send(
    body: impl AsRef<[u8]> + Clone + Send,
    label: impl Into<String> + Clone + Send,
) -> std::io::Result<String> {
    Ok(format!("{}:{}", label.into(), body.as_ref().len()))
}

#[tokio::main]
async fn main() {
    // Every call takes the async path; the sync path is covered by the fallbacks compiling.
    async_upload::config::handle().update(|c| { c.enabled = true; c.rollout = 100.0; }).unwrap();
    assert_eq!(send(vec![1_u8, 2], "v").await.unwrap(), "v:2");
    let task = tokio::spawn(send(b"xyz", String::from("s")));
    assert_eq!(task.await.unwrap().unwrap(), "s:3");
}
