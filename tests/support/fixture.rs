//! What an end-to-end upload test starts from: test files in a temporary
//! directory, and a loopback server with faults storing into it.

use super::client::{Endpoint, UploadRequest};
use super::files::{write_files, TestFile};
use super::server::{FaultFn, Server};

pub struct Fixture {
    _dir: tempfile::TempDir,
    pub files: Vec<TestFile>,
    pub server: Server,
    pub endpoint: Endpoint,
    /// Files handed out by [`Fixture::next`] so far.
    pub used: usize,
}

impl Fixture {
    /// `count` files of `min` to `max` bytes (drawn from `seed`), and a
    /// server with `faults`.
    pub async fn new(
        prefix: &str,
        count: usize,
        (min, max): (u64, u64),
        seed: u64,
        faults: FaultFn,
    ) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let files = write_files(&dir.path().join("files"), prefix, count, min, max, seed).unwrap();
        let server = Server::start(dir.path().join("store"), faults)
            .await
            .unwrap();
        let endpoint = Endpoint::new(server.base_url());
        Fixture {
            _dir: dir,
            files,
            server,
            endpoint,
            used: 0,
        }
    }

    /// The request for the next file.
    pub fn next(&mut self) -> UploadRequest {
        let request = self.files[self.used].request(&self.endpoint);
        self.used += 1;
        request
    }

    /// Each of `files` is stored once, intact, and nothing else is.
    pub fn assert_stored(&self, files: &[TestFile]) {
        let check = self.server.verify_files(files);
        assert!(check.each_stored_once(), "{check:?}");
    }
}
