use std::rc::Rc;

use async_upload::async_upload;

#[derive(Clone)]
struct Req {
    bytes: Vec<u8>,
}

fn upload_blocking(req: Rc<Req>) -> std::io::Result<usize> {
    Ok(req.bytes.len())
}

#[async_upload(fallback = upload_blocking)]
async fn upload(req: Rc<Req>) -> std::io::Result<usize> {
    Ok(req.bytes.len())
}

fn main() {}
