use async_upload::async_upload;

fn upload_blocking(req: String) -> std::io::Result<usize> {
    Ok(req.len())
}

#[async_upload(fallback = upload_blocking)]
async fn upload(req: String, attempt: u32) -> std::io::Result<usize> {
    Ok(req.len() + attempt as usize)
}

fn main() {}
