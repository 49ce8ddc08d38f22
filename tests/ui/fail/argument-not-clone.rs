use async_upload::async_upload;

struct Req {
    bytes: Vec<u8>,
}

fn upload_blocking(req: Req) -> std::io::Result<usize> {
    Ok(req.bytes.len())
}

#[async_upload(fallback = upload_blocking)]
async fn upload(req: Req) -> std::io::Result<usize> {
    Ok(req.bytes.len())
}

fn main() {}
