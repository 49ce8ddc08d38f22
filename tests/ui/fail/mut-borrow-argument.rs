use async_upload::async_upload;

fn fill_blocking(buffer: &mut Vec<u8>) -> std::io::Result<usize> {
    buffer.push(1);
    Ok(buffer.len())
}

#[async_upload(fallback = fill_blocking)]
async fn fill(buffer: &mut Vec<u8>) -> std::io::Result<usize> {
    buffer.push(1);
    Ok(buffer.len())
}

fn main() {}
