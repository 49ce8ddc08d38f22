#![deny(warnings)]
#![warn(clippy::pedantic)]
// Stand-in bodies and fallbacks without I/O; lints on the generated code stay on.
#![allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value, clippy::unused_async)]
//! Methods of an `#[async_trait]` impl: `#[async_trait]` on the impl block,
//! `#[async_upload]` on the method. Callable through `Box<dyn Trait>` and
//! `Arc<dyn Trait>`, from a spawned task, with `?`, `return`, `mut` and
//! pattern arguments, and with `?Send` futures.

use std::sync::Arc;

use async_trait::async_trait;
use async_upload::async_upload;

#[async_trait]
trait Storage: Send + Sync {
    async fn put(&self, name: String, body: Vec<u8>) -> std::io::Result<usize>;
    async fn put_pair(self: Arc<Self>, pair: (String, u8), prefix: &str) -> std::io::Result<String>;
}

struct Disk {
    root: String,
}

impl Disk {
    fn put_blocking(&self, name: String, body: Vec<u8>) -> std::io::Result<usize> {
        Ok(self.root.len() + name.len() + body.len())
    }

    fn put_pair_blocking(self: Arc<Self>, pair: (String, u8), prefix: &str) -> std::io::Result<String> {
        Ok(format!("{prefix}{}/{}{}", self.root, pair.0, pair.1))
    }
}

#[async_trait]
impl Storage for Disk {
    #[async_upload(fallback = Self::put_blocking, key = name.as_str(), size = body.len())]
    async fn put(&self, mut name: String, body: Vec<u8>) -> std::io::Result<usize> {
        if body.is_empty() {
            return Err(std::io::Error::other("empty"));
        }
        name.push('!');
        let n: usize = "1".parse().map_err(std::io::Error::other)?;
        tokio::task::yield_now().await;
        Ok(self.root.len() + name.len() + body.len() * n)
    }

    #[async_upload(fallback = Self::put_pair_blocking, name = "disk.put_pair")]
    async fn put_pair(self: Arc<Self>, (name, n): (String, u8), prefix: &str) -> std::io::Result<String> {
        tokio::task::yield_now().await;
        Ok(format!("{prefix}{}/{name}{n}", self.root))
    }
}

#[async_trait(?Send)]
trait Local {
    async fn get(&self, id: u32) -> std::io::Result<u32>;
}

fn get_blocking(_disk: &Disk, id: u32) -> std::io::Result<u32> {
    Ok(id)
}

#[async_trait(?Send)]
impl Local for Disk {
    #[async_upload(fallback = get_blocking, name = "disk.get", key = id)]
    async fn get(&self, id: u32) -> std::io::Result<u32> {
        Ok(id)
    }
}

#[tokio::main]
async fn main() {
    async_upload::config::handle().update(|c| { c.enabled = true; c.rollout = 100.0; }).unwrap();
    let boxed: Box<dyn Storage> = Box::new(Disk { root: "r".into() });
    assert_eq!(boxed.put("ab".into(), vec![0; 3]).await.unwrap(), 1 + 3 + 3);
    let shared: Arc<dyn Storage> = Arc::new(Disk { root: "r".into() });
    let task = {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move { shared.put("a".into(), vec![1]).await })
    };
    assert_eq!(task.await.unwrap().unwrap(), 1 + 2 + 1);
    assert_eq!(shared.put_pair(("x".into(), 2), "/").await.unwrap(), "/r/x2");
    assert_eq!(Disk { root: "r".into() }.get(4).await.unwrap(), 4);
}
