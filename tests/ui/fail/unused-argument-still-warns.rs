#![deny(unused_variables)]
// An argument neither the body nor `key`/`size` reads is reported at its
// name, as without the attribute (`tenant`, read by `key`, is not).

use async_upload::async_upload;

fn put_blocking(tenant: String, body: Vec<u8>, retry_hint: u8) -> std::io::Result<usize> {
    Ok(tenant.len() + body.len() + usize::from(retry_hint))
}

#[async_upload(fallback = put_blocking, key = tenant.as_str())]
async fn put(tenant: String, body: Vec<u8>, retry_hint: u8) -> std::io::Result<usize> {
    Ok(body.len())
}

fn main() {}
