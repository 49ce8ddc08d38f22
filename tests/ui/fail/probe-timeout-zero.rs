use async_upload::async_upload;

fn upload_blocking(req: String) -> std::io::Result<usize> {
    Ok(req.len())
}

async fn bucket_reachable() -> std::io::Result<()> {
    Ok(())
}

#[async_upload(fallback = upload_blocking, probe = bucket_reachable, probe_timeout = 0)]
async fn upload(req: String) -> std::io::Result<usize> {
    Ok(req.len())
}

fn main() {}
