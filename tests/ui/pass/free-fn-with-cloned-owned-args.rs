#![deny(warnings)]
#![warn(clippy::pedantic)]
// Stand-in bodies and fallbacks without I/O; lints on the generated code stay on.
#![allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value, clippy::unused_async)]
//! Owned `Clone` arguments: the sync path moves to the blocking pool and the
//! returned future is `Send + 'static`, so it can be spawned.

use async_upload::async_upload;

#[derive(Clone, Debug)]
struct UploadRequest {
    id: String,
    bytes: Vec<u8>,
}

fn upload_blocking(req: UploadRequest, attempt: u32) -> std::io::Result<usize> {
    Ok(req.bytes.len() + attempt as usize)
}

#[async_upload(retries = 2, timeout = 30, backoff = 0.1, fallback = upload_blocking,
               key = req.id.as_str(), size = req.bytes.len())]
async fn upload(req: UploadRequest, attempt: u32) -> std::io::Result<usize> {
    Ok(req.bytes.len() + attempt as usize)
}

#[tokio::main]
async fn main() {
    // Every call takes the async path; the sync path is covered by the fallbacks compiling.
    async_upload::config::handle().update(|c| { c.enabled = true; c.rollout = 100.0; }).unwrap();
    let req = UploadRequest { id: "file-1".into(), bytes: vec![1, 2, 3] };
    let spawned = tokio::spawn(upload(req.clone(), 1));
    assert_eq!(spawned.await.unwrap().unwrap(), 4);
    assert_eq!(upload(req, 0).await.unwrap(), 3);
}
