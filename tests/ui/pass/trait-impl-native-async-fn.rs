#![deny(warnings)]
#![warn(clippy::pedantic)]
// Stand-in bodies and fallbacks without I/O; lints on the generated code stay on.
#![allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value, clippy::unused_async)]
//! Methods of `impl Trait for Type` with native `async fn`: `&self`,
//! `self: Arc<Self>`, generics with where-clauses, a `Self::` and a free
//! fallback; the futures are `Send`, so a generic caller bounded on `Send`
//! futures and `tokio::spawn` both take them.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;

use async_upload::async_upload;

trait Storage: Send + Sync + 'static {
    fn put(&self, name: String, body: Vec<u8>) -> impl Future<Output = std::io::Result<usize>> + Send;
    fn put_shared(self: Arc<Self>, name: String) -> impl Future<Output = std::io::Result<String>> + Send;
    fn tag<K>(&self, key: K) -> impl Future<Output = std::io::Result<String>> + Send
    where
        K: Display + Clone + Send + Sync + 'static;
}

struct Disk {
    root: String,
}

impl Disk {
    fn put_blocking(&self, name: String, body: Vec<u8>) -> std::io::Result<usize> {
        Ok(self.root.len() + name.len() + body.len())
    }
}

fn put_shared_blocking(disk: Arc<Disk>, name: String) -> std::io::Result<String> {
    Ok(format!("{}/{name}", disk.root))
}

fn tag_blocking<K: Display>(disk: &Disk, key: K) -> std::io::Result<String> {
    Ok(format!("{}:{key}", disk.root))
}

impl Storage for Disk {
    #[async_upload(fallback = Self::put_blocking, key = name.as_str(), size = body.len())]
    async fn put(&self, name: String, body: Vec<u8>) -> std::io::Result<usize> {
        tokio::task::yield_now().await;
        Ok(self.root.len() + name.len() + body.len())
    }

    #[async_upload(fallback = put_shared_blocking, name = "disk.put_shared", key = name.as_str())]
    async fn put_shared(self: Arc<Self>, name: String) -> std::io::Result<String> {
        tokio::task::yield_now().await;
        Ok(format!("{}/{name}", self.root))
    }

    #[async_upload(fallback = tag_blocking::<K>, name = "disk.tag")]
    async fn tag<K>(&self, key: K) -> std::io::Result<String>
    where
        K: Display + Clone + Send + Sync + 'static,
    {
        Ok(format!("{}:{key}", self.root))
    }
}

/// A generic caller that needs `Send` futures.
async fn store_all<S: Storage>(storage: Arc<S>) -> std::io::Result<usize> {
    let mut tasks = Vec::new();
    for name in ["a", "bb"] {
        let storage = Arc::clone(&storage);
        tasks.push(tokio::spawn(async move { storage.put(name.into(), vec![0; 3]).await }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap()?;
    }
    Ok(total)
}

#[tokio::main]
async fn main() {
    async_upload::config::handle().update(|c| { c.enabled = true; c.rollout = 100.0; }).unwrap();
    let disk = Arc::new(Disk { root: "r".into() });
    assert_eq!(store_all(Arc::clone(&disk)).await.unwrap(), (1 + 1 + 3) + (1 + 2 + 3));
    let shared = tokio::spawn(Arc::clone(&disk).put_shared("x".into()));
    assert_eq!(shared.await.unwrap().unwrap(), "r/x");
    assert_eq!(disk.tag(7).await.unwrap(), "r:7");
}
