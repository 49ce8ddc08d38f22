#![deny(warnings)]
#![warn(clippy::pedantic)]
// Stand-in bodies and fallbacks without I/O; lints on the generated code stay on.
#![allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value, clippy::unused_async)]
//! A trait's default method: one site shared by every implementor (give
//! an implementor's override its own attribute, or a `name`, to tell them
//! apart); the fallback is a method of the trait.

use async_upload::async_upload;

trait Storage: Sync {
    fn root(&self) -> &str;

    fn put_blocking(&self, name: String) -> std::io::Result<String> {
        Ok(format!("{}/{name}", self.root()))
    }

    #[async_upload(fallback = Self::put_blocking, name = "storage.put", key = name.as_str())]
    async fn put(&self, name: String) -> std::io::Result<String> {
        tokio::task::yield_now().await;
        Ok(format!("{}/{name}", self.root()))
    }
}

struct Disk;

impl Storage for Disk {
    fn root(&self) -> &str {
        "disk"
    }
}

#[tokio::main]
async fn main() {
    async_upload::config::handle().update(|c| { c.enabled = true; c.rollout = 100.0; }).unwrap();
    assert_eq!(Disk.put("x".into()).await.unwrap(), "disk/x");
}
