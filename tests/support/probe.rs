//! A background probe for `#[async_upload(probe = support::probe::upload_probe)]`:
//! a 0-byte upload with the async client, so an outage of the async backend
//! black-holes (or resets) it like any async request, and the server counts
//! it as one.

use std::path::Path;
use std::sync::OnceLock;

use super::client::{send_async, Endpoint, UploadError, UploadRequest};

/// Where one probe function uploads: a test binary whose tests run their
/// own servers side by side gives each probed site a target of its own.
pub struct ProbeTarget(OnceLock<UploadRequest>);

impl ProbeTarget {
    pub const fn new() -> Self {
        ProbeTarget(OnceLock::new())
    }

    /// Points the probe at `endpoint`, with its empty file in `dir` (the
    /// first aim holds).
    pub fn aim(&self, dir: &Path, endpoint: &Endpoint) -> std::io::Result<()> {
        let path = dir.join("probe");
        std::fs::write(&path, b"")?;
        let _ = self.0.set(UploadRequest {
            id: "probe".into(),
            path,
            size: 0,
            md5: "d41d8cd98f00b204e9800998ecf8427e".into(),
            endpoint: endpoint.clone(),
        });
        Ok(())
    }

    /// `Ok` when the async backend stored the empty file.
    pub async fn upload(&self) -> Result<(), UploadError> {
        let Some(target) = self.0.get() else {
            return Err(UploadError::Transport(std::io::Error::other(
                "the probe is not aimed",
            )));
        };
        send_async(target).await.map(|_| ())
    }
}

static TARGET: ProbeTarget = ProbeTarget::new();

/// Points [`upload_probe`] at `endpoint`, with its empty file in `dir`.
pub fn aim(dir: &Path, endpoint: &Endpoint) -> std::io::Result<()> {
    TARGET.aim(dir, endpoint)
}

/// The probe: `Ok` when the async backend stored the empty file.
pub async fn upload_probe() -> Result<(), UploadError> {
    TARGET.upload().await
}
