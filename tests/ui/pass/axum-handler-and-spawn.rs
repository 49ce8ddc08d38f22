#![deny(warnings)]
#![warn(clippy::pedantic)]
// Stand-in bodies and fallbacks without I/O; lints on the generated code stay on.
#![allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value, clippy::unused_async)]
//! The futures are `Send`: an axum handler (owned and `&self` calls) and a
//! spawned task compile.

use std::sync::Arc;

use async_upload::async_upload;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;

#[derive(Clone, Debug)]
struct UploadRequest {
    id: String,
    bytes: Vec<u8>,
}

fn upload_blocking(req: UploadRequest) -> std::io::Result<usize> {
    Ok(req.bytes.len())
}

#[async_upload(fallback = upload_blocking, key = req.id.as_str(), size = req.bytes.len())]
async fn upload(req: UploadRequest) -> std::io::Result<usize> {
    Ok(req.bytes.len())
}

struct Service {
    prefix: String,
}

impl Service {
    fn put_blocking(&self, body: &str) -> std::io::Result<String> {
        Ok(format!("{}{body}", self.prefix))
    }

    #[async_upload(fallback = Self::put_blocking)]
    async fn put(&self, body: &str) -> std::io::Result<String> {
        Ok(format!("{}{body}", self.prefix))
    }
}

async fn handler(State(service): State<Arc<Service>>, body: String) -> Result<String, StatusCode> {
    let req = UploadRequest { id: "h".into(), bytes: body.clone().into_bytes() };
    let n = upload(req).await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    let put = service.put(&body).await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    Ok(format!("{put}:{n}"))
}

#[tokio::main]
async fn main() {
    // Every call takes the async path; the sync path is covered by the fallbacks compiling.
    async_upload::config::handle().update(|c| { c.enabled = true; c.rollout = 100.0; }).unwrap();
    let service = Arc::new(Service { prefix: "p:".into() });
    let _app: Router = Router::new().route("/upload", post(handler)).with_state(Arc::clone(&service));
    let req = UploadRequest { id: "a".into(), bytes: vec![1] };
    assert_eq!(tokio::spawn(upload(req)).await.unwrap().unwrap(), 1);
    let body = handler(State(service), "x".into()).await.unwrap();
    assert_eq!(body, "p:x:1");
}
