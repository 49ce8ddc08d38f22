use async_upload::async_upload;

trait Storage {
    #[async_upload(fallback = put_blocking)]
    async fn put(&self, name: String) -> std::io::Result<()>;
}

fn main() {}
