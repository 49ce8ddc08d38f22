use async_upload::async_upload;

#[derive(Debug)]
struct UploadError;

fn upload_blocking(req: String) -> Result<usize, UploadError> {
    Ok(req.len())
}

#[async_upload(fallback = upload_blocking)]
async fn upload(req: String) -> Result<usize, UploadError> {
    Ok(req.len())
}

fn main() {}
