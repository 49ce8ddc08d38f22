use async_upload::async_upload;

fn upload_blocking(req: String) -> Option<usize> {
    Some(req.len())
}

#[async_upload(fallback = upload_blocking)]
async fn upload(req: String) -> Option<usize> {
    Some(req.len())
}

fn main() {}
