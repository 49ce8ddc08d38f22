use async_upload::async_upload;

#[derive(Clone)]
struct Req {
    id: (u8, u8),
}

fn upload_blocking(req: Req) -> std::io::Result<u8> {
    Ok(req.id.0)
}

#[async_upload(fallback = upload_blocking, key = req.id)]
async fn upload(req: Req) -> std::io::Result<u8> {
    Ok(req.id.0)
}

fn main() {}
