//! The two upload clients a service migrating to async has: the new one
//! streams the file with `reqwest`, the old one sends it with blocking
//! `ureq`. Both return the same [`Receipt`] and [`UploadError`], which
//! implements [`Classify`] so the runtime knows what to retry. Inside a call
//! both send `Idempotency-Key: <async_upload::call_id()>`, so a retry or the
//! fallback of an upload that did land is not stored twice.

use std::error::Error as _;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_upload::{Classify, ErrorClass, Fault};
use tokio_util::io::ReaderStream;

use super::server::{Client, CLIENT_HEADER, IDEMPOTENCY_HEADER, MD5_HEADER, SIZE_HEADER};

/// Where uploads go, and the clients that take them there (cheap to clone).
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<EndpointInner>,
}

struct EndpointInner {
    base: String,
    http: reqwest::Client,
    agent: ureq::Agent,
    /// Whether requests carry `Idempotency-Key: <call id>`.
    keyed: bool,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("base", &self.inner.base)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Clients for the server at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            // Bounds a request even if the runtime's timeout is set very high.
            .timeout(Duration::from_secs(60))
            .build()
            .expect("a plain-HTTP client builds");
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .max_idle_connections_per_host(64)
            .build();
        Endpoint {
            inner: Arc::new(EndpointInner {
                base: base.into(),
                http,
                agent: ureq::Agent::new_with_config(config),
                keyed: true,
            }),
        }
    }

    /// The same clients without the `Idempotency-Key` header: what an
    /// application that does not pass its call id sends.
    pub fn without_idempotency_key(&self) -> Self {
        let inner = &self.inner;
        Endpoint {
            inner: Arc::new(EndpointInner {
                base: inner.base.clone(),
                http: inner.http.clone(),
                agent: inner.agent.clone(),
                keyed: false,
            }),
        }
    }

    fn url(&self, id: &str) -> String {
        format!("{}/upload/{id}", self.inner.base)
    }

    /// The call's idempotency key: its id, the same for every attempt and
    /// the fallback (`None` outside a call, or when the endpoint omits it).
    fn key(&self) -> Option<String> {
        self.inner
            .keyed
            .then(async_upload::call_id)
            .flatten()
            .map(|id| id.to_string())
    }
}

/// One file to upload. Cheap to clone: each attempt re-opens the file.
#[derive(Clone, Debug)]
pub struct UploadRequest {
    /// The request id: the file's name on the server and the rollout key.
    /// (The idempotency key is the call's id, sent by the clients.)
    pub id: String,
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its MD5, lowercase hex.
    pub md5: String,
    /// Where to send it.
    pub endpoint: Endpoint,
}

/// What the server acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The request id.
    pub id: String,
    /// `true` if this upload was stored, `false` if the server had stored
    /// one with the same idempotency key (this call's earlier attempt).
    pub stored: bool,
    /// The client that got the acknowledgement.
    pub via: Client,
}

/// Why an upload failed.
#[derive(Debug)]
pub enum UploadError {
    /// The connection failed (refused, reset, broken, timed out).
    Transport(io::Error),
    /// The server answered 503.
    Unavailable,
    /// The server refused the request itself (4xx): sending it again cannot help.
    Rejected {
        /// The status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// Another server error.
    Server {
        /// The status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The local file could not be read.
    File(io::Error),
    /// The async path timed out or panicked and fallback is off.
    Fault(Fault),
}

impl fmt::Display for UploadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UploadError::Transport(e) => write!(f, "transport: {e}"),
            UploadError::Unavailable => f.write_str("server unavailable (503)"),
            UploadError::Rejected { status, message } => {
                write!(f, "rejected ({status}): {message}")
            }
            UploadError::Server { status, message } => {
                write!(f, "server error ({status}): {message}")
            }
            UploadError::File(e) => write!(f, "reading the file: {e}"),
            UploadError::Fault(fault) => fault.fmt(f),
        }
    }
}

impl std::error::Error for UploadError {}

impl Classify for UploadError {
    fn classify(&self) -> ErrorClass {
        match self {
            // Reset, refused, broken pipe, timed out → Retry; other I/O → Fallback.
            UploadError::Transport(e) => e.classify(),
            UploadError::Unavailable => ErrorClass::Retry,
            UploadError::Server { .. } | UploadError::Fault(_) => ErrorClass::Fallback,
            // The old path would fail the same way.
            UploadError::Rejected { .. } | UploadError::File(_) => ErrorClass::Fail,
        }
    }

    fn error_type(&self) -> &'static str {
        match self {
            UploadError::Transport(e) => e.error_type(),
            UploadError::Unavailable => "unavailable",
            UploadError::Rejected { .. } => "rejected",
            UploadError::Server { .. } => "server_error",
            UploadError::File(_) => "file",
            UploadError::Fault(fault) => fault.error_type(),
        }
    }

    fn from_fault(fault: Fault) -> Self {
        UploadError::Fault(fault)
    }

    /// A connection lost after sending (reset, aborted, timed out) may
    /// have delivered the file; a refused one did not.
    fn outcome_unknown(&self) -> bool {
        matches!(self, UploadError::Transport(e) if e.outcome_unknown())
    }
}

fn from_status(
    status: u16,
    message: String,
    id: &str,
    via: Client,
) -> Result<Receipt, UploadError> {
    match status {
        200..=299 => Ok(Receipt {
            id: id.to_owned(),
            stored: message.starts_with("stored"),
            via,
        }),
        503 => Err(UploadError::Unavailable),
        400..=499 => Err(UploadError::Rejected { status, message }),
        _ => Err(UploadError::Server { status, message }),
    }
}

/// The `io::Error` under a `reqwest` error, so a reset is a `ConnectionReset`.
fn transport(error: &reqwest::Error) -> UploadError {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return UploadError::Transport(io::Error::new(io.kind(), error.to_string()));
        }
        source = cause.source();
    }
    let kind = if error.is_timeout() {
        io::ErrorKind::TimedOut
    } else if error.is_connect() {
        io::ErrorKind::ConnectionRefused
    } else if error.is_request() || error.is_body() {
        // hyper's "connection closed before message completed".
        io::ErrorKind::ConnectionAborted
    } else {
        io::ErrorKind::Other
    };
    UploadError::Transport(io::Error::new(kind, error.to_string()))
}

/// Files above this size are streamed from disk, in chunks of this size.
const STREAM_CHUNK: u64 = 1024 * 1024;

/// The new path: streams the file from disk with `reqwest`.
pub async fn send_async(req: &UploadRequest) -> Result<Receipt, UploadError> {
    // Each tokio::fs operation is a hop to the blocking pool: read a small
    // file in one, stream a large one in 1 MiB chunks (memory stays bounded).
    let body = if req.size <= STREAM_CHUNK {
        reqwest::Body::from(
            tokio::fs::read(&req.path)
                .await
                .map_err(UploadError::File)?,
        )
    } else {
        let file = tokio::fs::File::open(&req.path)
            .await
            .map_err(UploadError::File)?;
        reqwest::Body::wrap_stream(ReaderStream::with_capacity(file, STREAM_CHUNK as usize))
    };
    let mut request = req.endpoint.inner.http.put(req.endpoint.url(&req.id));
    if let Some(key) = req.endpoint.key() {
        request = request.header(IDEMPOTENCY_HEADER, key);
    }
    let response = request
        .header(CLIENT_HEADER, Client::Async.as_str())
        .header(SIZE_HEADER, req.size)
        .header(MD5_HEADER, &req.md5)
        .header(reqwest::header::CONTENT_LENGTH, req.size)
        .body(body)
        .send()
        .await
        .map_err(|e| transport(&e))?;
    let status = response.status().as_u16();
    let message = response.text().await.map_err(|e| transport(&e))?;
    from_status(status, message, &req.id, Client::Async)
}

/// The old path: sends the file with blocking `ureq`.
pub fn send_blocking(req: &UploadRequest) -> Result<Receipt, UploadError> {
    let file = std::fs::File::open(&req.path).map_err(UploadError::File)?;
    let mut request = req.endpoint.inner.agent.put(&req.endpoint.url(&req.id));
    if let Some(key) = req.endpoint.key() {
        request = request.header(IDEMPOTENCY_HEADER, key);
    }
    let result = request
        .header(CLIENT_HEADER, Client::Sync.as_str())
        .header(SIZE_HEADER, req.size.to_string())
        .header(MD5_HEADER, &req.md5)
        .send(file);
    let mut response = match result {
        Ok(response) => response,
        Err(ureq::Error::Io(e)) => return Err(UploadError::Transport(e)),
        Err(ureq::Error::Timeout(t)) => {
            return Err(UploadError::Transport(io::Error::new(
                io::ErrorKind::TimedOut,
                t.to_string(),
            )))
        }
        Err(other) => return Err(UploadError::Transport(io::Error::other(other.to_string()))),
    };
    let status = response.status().as_u16();
    let message = response
        .body_mut()
        .read_to_string()
        .map_err(|e| UploadError::Transport(io::Error::other(e.to_string())))?;
    from_status(status, message, &req.id, Client::Sync)
}
