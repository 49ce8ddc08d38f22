use async_upload::async_upload;

struct Disk;

#[async_upload(fallback = Disk::put_blocking)]
impl Disk {
    fn put_blocking(&self) -> std::io::Result<()> {
        Ok(())
    }

    async fn put(&self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() {}
