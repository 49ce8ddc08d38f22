use async_upload::async_upload;

fn upload_blocking(req: String) -> std::io::Result<usize> {
    Ok(req.len())
}

#[async_upload(fallback = upload_blocking, probe_timeout = 0.5)]
async fn upload(req: String) -> std::io::Result<usize> {
    Ok(req.len())
}

fn main() {}
