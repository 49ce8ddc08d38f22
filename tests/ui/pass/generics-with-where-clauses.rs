#![deny(warnings)]
#![warn(clippy::pedantic)]
// Stand-in bodies and fallbacks without I/O; lints on the generated code stay on.
#![allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value, clippy::unused_async)]

use std::fmt::Display;

use async_upload::async_upload;

fn tag_blocking<K, B, const N: usize>(key: K, body: &B) -> std::io::Result<String>
where
    K: Display,
    B: AsRef<[u8]> + ?Sized,
{
    Ok(format!("{key}:{}:{N}", body.as_ref().len()))
}

#[async_upload(fallback = tag_blocking::<K, B, N>, key = key.to_string(), name = "tag")]
async fn tag<K, B, const N: usize>(key: K, body: &B) -> std::io::Result<String>
where
    K: Display + Clone + Send + Sync,
    B: AsRef<[u8]> + Sync + ?Sized,
{
    Ok(format!("{key}:{}:{N}", body.as_ref().len()))
}

/// A type parameter that only the return type mentions is still inferred.
fn parse_blocking<T: std::str::FromStr>(text: String) -> std::io::Result<Option<T>> {
    Ok(text.parse().ok())
}

#[async_upload(fallback = parse_blocking)]
async fn parse<T>(text: String) -> std::io::Result<Option<T>>
where
    T: std::str::FromStr,
{
    Ok(text.parse().ok())
}

#[tokio::main]
async fn main() {
    // Every call takes the async path; the sync path is covered by the fallbacks compiling.
    async_upload::config::handle().update(|c| { c.enabled = true; c.rollout = 100.0; }).unwrap();
    assert_eq!(tag::<_, _, 7>(42_u32, "abc").await.unwrap(), "42:3:7");
    assert_eq!(parse::<u8>("7".into()).await.unwrap(), Some(7));
}
