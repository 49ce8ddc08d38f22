//! `probe = path` and `probe_timeout`: a free function and an associated
//! function as the background probe.
use async_upload::async_upload;

fn upload_blocking(req: String) -> std::io::Result<usize> {
    Ok(req.len())
}

async fn bucket_reachable() -> std::io::Result<()> {
    Ok(())
}

struct Health;

impl Health {
    async fn check() -> Result<(), String> {
        Ok(())
    }
}

#[async_upload(fallback = upload_blocking, probe = bucket_reachable, probe_timeout = 0.5)]
async fn upload(req: String) -> std::io::Result<usize> {
    Ok(req.len())
}

#[async_upload(fallback = upload_blocking, probe = Health::check)]
async fn upload_checked(req: String) -> std::io::Result<usize> {
    Ok(req.len())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(upload("abc".into()).await.unwrap(), 3);
    assert_eq!(upload_checked("ab".into()).await.unwrap(), 2);
}
