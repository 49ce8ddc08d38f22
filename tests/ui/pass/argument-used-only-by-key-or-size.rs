#![deny(warnings)]
#![warn(clippy::pedantic)]
// Stand-in bodies and fallbacks without I/O; lints on the generated code stay on.
#![allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value, clippy::unused_async)]
//! An argument that only `key` or `size` reads (a tenant id used for
//! routing) is used: no "unused variable" warning, in every shape.

use async_trait::async_trait;
use async_upload::async_upload;

fn put_blocking(tenant: String, len: usize, body: Vec<u8>) -> std::io::Result<usize> {
    Ok(tenant.len() + len + body.len())
}

#[async_upload(fallback = put_blocking, key = tenant.as_str(), size = len)]
async fn put(tenant: String, len: usize, body: Vec<u8>) -> std::io::Result<usize> {
    Ok(body.len())
}

trait Storage {
    async fn put(&self, tenant: String, body: Vec<u8>) -> std::io::Result<usize>;
}

#[async_trait]
trait BoxedStorage {
    async fn put(&self, tenant: String, body: Vec<u8>) -> std::io::Result<usize>;
}

struct Disk;

impl Disk {
    fn put_blocking(&self, tenant: String, body: Vec<u8>) -> std::io::Result<usize> {
        Ok(tenant.len() + body.len())
    }
}

impl Storage for Disk {
    #[async_upload(fallback = Self::put_blocking, name = "native.put", key = format!("t-{tenant}"))]
    async fn put(&self, tenant: String, body: Vec<u8>) -> std::io::Result<usize> {
        Ok(body.len())
    }
}

#[async_trait]
impl BoxedStorage for Disk {
    #[async_upload(fallback = Self::put_blocking, name = "boxed.put", key = tenant.as_str())]
    async fn put(&self, tenant: String, body: Vec<u8>) -> std::io::Result<usize> {
        Ok(body.len())
    }
}

#[tokio::main]
async fn main() {
    async_upload::config::handle().update(|c| { c.enabled = true; c.rollout = 100.0; }).unwrap();
    assert_eq!(put("t".into(), 9, vec![1, 2]).await.unwrap(), 2);
    assert_eq!(Storage::put(&Disk, "t".into(), vec![1]).await.unwrap(), 1);
    assert_eq!(BoxedStorage::put(&Disk, "t".into(), vec![1]).await.unwrap(), 1);
}
