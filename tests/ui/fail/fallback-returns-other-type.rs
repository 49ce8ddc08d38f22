use async_upload::async_upload;

fn upload_blocking(req: String) -> std::io::Result<u64> {
    Ok(req.len() as u64)
}

#[async_upload(fallback = upload_blocking)]
async fn upload(req: String) -> std::io::Result<usize> {
    Ok(req.len())
}

fn main() {}
