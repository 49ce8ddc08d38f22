#![deny(warnings)]
#![warn(clippy::pedantic)]
// Stand-in bodies and fallbacks without I/O; lints on the generated code stay on.
#![allow(clippy::unnecessary_wraps, clippy::unused_async)]
//! A `&mut` argument with `retries = 0`: lent to the one async attempt, then
//! (after a timeout here) handed to the fallback; the future stays `Send`.

use async_upload::async_upload;

fn fill_blocking(buffer: &mut Vec<u8>, byte: u8) -> std::io::Result<usize> {
    buffer.push(byte + 1);
    Ok(buffer.len())
}

#[async_upload(fallback = fill_blocking, retries = 0, timeout = 0.05)]
async fn fill(buffer: &mut Vec<u8>, byte: u8) -> std::io::Result<usize> {
    buffer.push(byte);
    if byte == 0 {
        // Never finishes: the attempt times out and the fallback runs.
        std::future::pending::<()>().await;
    }
    Ok(buffer.len())
}

struct Buffer(Vec<u8>);

impl Buffer {
    fn push_blocking(&mut self, byte: u8) -> std::io::Result<usize> {
        self.0.push(byte + 1);
        Ok(self.0.len())
    }

    #[async_upload(fallback = Self::push_blocking, retries = 0)]
    async fn push(&mut self, byte: u8) -> std::io::Result<usize> {
        self.0.push(byte);
        Ok(self.0.len())
    }
}

#[tokio::main]
async fn main() {
    async_upload::config::handle().update(|c| { c.enabled = true; c.rollout = 100.0; }).unwrap();
    let task = tokio::spawn(async {
        let mut buffer = Vec::new();
        assert_eq!(fill(&mut buffer, 7).await.unwrap(), 1);
        assert_eq!(fill(&mut buffer, 0).await.unwrap(), 3);
        buffer
    });
    // 7 by the async path; 0 by the attempt that timed out, then 1 by the fallback.
    assert_eq!(task.await.unwrap(), [7, 0, 1]);

    let mut buffer = Buffer(Vec::new());
    assert_eq!(buffer.push(5).await.unwrap(), 1);
    assert_eq!(buffer.0, [5]);
}
