#![deny(warnings)]
#![warn(clippy::pedantic)]
// Stand-in bodies and fallbacks without I/O; lints on the generated code stay on.
#![allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value, clippy::unused_async)]

use std::sync::Arc;

use async_upload::async_upload;

struct Uploader {
    bucket: String,
}

impl Uploader {
    fn upload_blocking(&self, name: String) -> std::io::Result<String> {
        Ok(format!("{}/{name}", self.bucket))
    }

    fn upload_shared_blocking(self: Arc<Self>, name: &str) -> std::io::Result<String> {
        Ok(format!("{}/{name}", self.bucket))
    }

    #[async_upload(fallback = Self::upload_blocking, key = self.bucket.as_str())]
    async fn upload(&self, name: String) -> std::io::Result<String> {
        Ok(format!("{}/{name}", self.bucket))
    }

    #[async_upload(fallback = Self::upload_shared_blocking, name = "upload_shared", key = name)]
    async fn upload_shared(self: Arc<Self>, name: &str) -> std::io::Result<String> {
        Ok(format!("{}/{name}", self.bucket))
    }

    /// An associated function without a receiver, reached through `Self`.
    fn make_blocking(bucket: String) -> std::io::Result<Self> {
        Ok(Self { bucket })
    }

    #[async_upload(fallback = Self::make_blocking)]
    async fn make(bucket: String) -> std::io::Result<Self> {
        Ok(Self { bucket })
    }
}

#[tokio::main]
async fn main() {
    // Every call takes the async path; the sync path is covered by the fallbacks compiling.
    async_upload::config::handle().update(|c| { c.enabled = true; c.rollout = 100.0; }).unwrap();
    let uploader = Arc::new(Uploader::make("b".into()).await.unwrap());
    assert_eq!(uploader.upload("x".into()).await.unwrap(), "b/x");
    let task = {
        let uploader = Arc::clone(&uploader);
        tokio::spawn(async move { uploader.upload("y".into()).await })
    };
    assert_eq!(task.await.unwrap().unwrap(), "b/y");
    assert_eq!(uploader.upload_shared("z").await.unwrap(), "b/z");
}
