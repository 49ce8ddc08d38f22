//! Test files of varied sizes, written once and described by size and MD5.

use std::io::Write;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use super::client::{Endpoint, UploadRequest};
use super::server::hex;

/// A file written for upload.
#[derive(Clone, Debug)]
pub struct TestFile {
    /// Request id (also the rollout key).
    pub id: String,
    /// Where it is.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// Its MD5, lowercase hex.
    pub md5: String,
}

impl TestFile {
    /// The upload request for this file.
    pub fn request(&self, endpoint: &Endpoint) -> UploadRequest {
        UploadRequest {
            id: self.id.clone(),
            path: self.path.clone(),
            size: self.size,
            md5: self.md5.clone(),
            endpoint: endpoint.clone(),
        }
    }
}

/// Writes `count` files of random content to `dir`, sizes spread
/// log-uniformly over `min..=max` bytes (the first file is `min` bytes, the
/// second `max`), ids `{prefix}-{index:05}`. Deterministic for a seed.
pub fn write_files(
    dir: &Path,
    prefix: &str,
    count: usize,
    min: u64,
    max: u64,
    seed: u64,
) -> std::io::Result<Vec<TestFile>> {
    std::fs::create_dir_all(dir)?;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut buf = Vec::new();
    let (low, high) = ((min.max(1) as f64).ln(), (max.max(min) as f64).ln());
    (0..count)
        .map(|index| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let size = match index {
                0 => min,
                1 => max,
                _ => (low + rng.f64() * (high - low)).exp().round() as u64,
            }
            .clamp(min, max);
            buf.resize(usize::try_from(size).expect("fits in memory"), 0);
            rng.fill(&mut buf);
            let id = format!("{prefix}-{index:05}");
            let path = dir.join(&id);
            std::fs::File::create(&path)?.write_all(&buf)?;
            Ok(TestFile {
                id,
                path,
                size,
                md5: hex(&Md5::digest(&buf)),
            })
        })
        .collect()
}
