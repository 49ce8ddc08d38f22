//! A loopback upload server: `PUT /upload/{id}` streams the body to a
//! temporary file, checks its size and MD5 against the request's headers,
//! and stores it under the request id. It deduplicates on the request's
//! `Idempotency-Key` (the client's call id), as a real API that honours
//! the header does: an upload whose key was stored already (a retry or the
//! fallback of an upload that did land) is acknowledged as a duplicate and
//! not stored again. An upload without the header is stored every time, as
//! a plain object-store PUT is: [`Counters::rewrites`] counts the stores of
//! an id already stored. Faults (delay, connection reset, HTTP 503, black
//! hole, an answer after the upload was stored) are injected per attempt by
//! a [`FaultFn`]; an [`Outage`] switches one fault on for every request of
//! a client, and off again, while the server runs.
//!
//! The server is axum's router on a hand-written hyper accept loop: a
//! connection reset needs the socket (`SO_LINGER` 0, then close), which
//! `axum::serve` does not expose.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::put;
use axum::{Extension, Router};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use md5::{Digest, Md5};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::ServiceExt;

use super::files::TestFile;

/// Header naming the client that sends a request (`async` or `sync`).
pub const CLIENT_HEADER: &str = "x-upload-client";
/// Header with the file's size in bytes.
pub const SIZE_HEADER: &str = "x-upload-size";
/// Header with the file's MD5, lowercase hex.
pub const MD5_HEADER: &str = "x-upload-md5";
/// The idempotency key (IETF draft `Idempotency-Key`): the call's id.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Which client sent a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Client {
    /// The new async path (`reqwest`).
    Async,
    /// The old blocking path (`ureq`).
    Sync,
}

impl Client {
    /// The header value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Client::Async => "async",
            Client::Sync => "sync",
        }
    }
}

/// A fault the server injects into one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Wait this long before reading the request.
    Delay(Duration),
    /// Reset the connection (RST) instead of answering.
    Reset,
    /// Answer `503 Service Unavailable`.
    Unavailable,
    /// Accept the request, read its body, and never answer: the connection
    /// stays open until the client gives up (its timeout) or the server stops.
    BlackHole,
    /// Store the upload as usual, then wait this long before answering: past
    /// the client's timeout, the attempt fails though its upload landed.
    LateAnswer(Duration),
}

/// One request as the fault policy sees it.
#[derive(Clone, Copy, Debug)]
pub struct Attempt<'a> {
    /// The request id.
    pub id: &'a str,
    /// The client that sent it.
    pub client: Client,
    /// 1-based count of requests for this id from this client, this one included.
    pub attempt: u32,
}

/// Decides the fault (if any) of each request.
pub type FaultFn = Arc<dyn Fn(&Attempt<'_>) -> Option<Fault> + Send + Sync>;

/// No faults.
pub fn no_faults() -> FaultFn {
    Arc::new(|_| None)
}

/// Which clients random faults hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Only the new async client: the old path is the known-good baseline.
    AsyncOnly,
    /// Every client.
    All,
}

/// A backend-wide outage switched on and off while the server runs: while
/// on, every request of the targeted clients gets the outage's fault; while
/// off, the policy it wraps ([`Outage::over`]) decides. Cheap to clone;
/// clones share the switch.
///
/// ```ignore
/// let outage = Outage::new(Fault::BlackHole, Target::AsyncOnly);
/// let server = Server::start(dir, outage.over(no_faults())).await?;
/// outage.start(); // t0: the async backend black-holes every request
/// outage.end();   // t1: healthy again
/// ```
#[derive(Clone, Debug)]
pub struct Outage {
    fault: Fault,
    target: Target,
    on: Arc<AtomicBool>,
}

impl Outage {
    /// An outage (off until [`start`](Outage::start)) that gives `fault` to
    /// every request of `target`.
    pub fn new(fault: Fault, target: Target) -> Outage {
        Outage {
            fault,
            target,
            on: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The outage begins: from now on, requests get its fault.
    pub fn start(&self) {
        self.on.store(true, Ordering::SeqCst);
    }

    /// The outage is over: requests are served (or faulted by the wrapped policy).
    pub fn end(&self) {
        self.on.store(false, Ordering::SeqCst);
    }

    /// Whether the outage is on.
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::SeqCst)
    }

    /// The fault policy of a server under this outage: the outage's fault
    /// while it is on (for its target), `normal`'s otherwise.
    pub fn over(&self, normal: FaultFn) -> FaultFn {
        let outage = self.clone();
        Arc::new(move |attempt| {
            let hit = outage.target == Target::All || attempt.client == Client::Async;
            if hit && outage.is_on() {
                Some(outage.fault)
            } else {
                normal(attempt)
            }
        })
    }
}

/// Random faults, decided per request id: a fraction of ids gets a fault,
/// which then hits that id's first 1..=`max_streak` attempts (a transient
/// outage lasts a while), so some requests recover on a retry and some
/// exhaust their retries and fall back.
///
/// The draw is a hash of (seed, id): the same seed and ids give the same
/// faults whatever the scheduling.
#[derive(Clone, Copy, Debug)]
pub struct RandomFaults {
    /// Fraction of ids whose attempts are reset.
    pub reset: f64,
    /// Fraction of ids answered 503.
    pub unavailable: f64,
    /// Fraction of ids delayed by `delay`.
    pub delay_rate: f64,
    /// How long a delayed attempt waits.
    pub delay: Duration,
    /// Longest streak of faulted attempts for one id (at least 1).
    pub max_streak: u32,
    /// Who gets the faults.
    pub target: Target,
    /// Seed of the draw.
    pub seed: u64,
}

impl RandomFaults {
    /// The fault planned for `id` and how many of its first attempts it hits.
    pub fn plan(&self, id: &str) -> Option<(Fault, u32)> {
        let digest = Md5::new()
            .chain_update(self.seed.to_le_bytes())
            .chain_update(id.as_bytes())
            .finalize();
        let word = |i: usize| u64::from_le_bytes(digest[i..i + 8].try_into().unwrap());
        #[allow(clippy::cast_precision_loss)]
        let draw = (word(0) >> 11) as f64 / (1_u64 << 53) as f64;
        #[allow(clippy::cast_possible_truncation)]
        let streak = 1 + (word(8) % u64::from(self.max_streak.max(1))) as u32;
        let fault = if draw < self.reset {
            Fault::Reset
        } else if draw < self.reset + self.unavailable {
            Fault::Unavailable
        } else if draw < self.reset + self.unavailable + self.delay_rate {
            Fault::Delay(self.delay)
        } else {
            return None;
        };
        Some((fault, streak))
    }

    /// The policy as a [`FaultFn`].
    pub fn into_fn(self) -> FaultFn {
        Arc::new(move |attempt| {
            if self.target == Target::AsyncOnly && attempt.client != Client::Async {
                return None;
            }
            let (fault, streak) = self.plan(attempt.id)?;
            (attempt.attempt <= streak).then_some(fault)
        })
    }
}

/// A file the server stored.
#[derive(Clone, Debug)]
pub struct Stored {
    /// Where it is.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// Its MD5 (lowercase hex) as verified on arrival.
    pub md5: String,
    /// The client whose upload was stored.
    pub client: Client,
}

/// The server's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests received.
    pub requests: u64,
    /// Requests received from the async client (of `requests`).
    pub async_requests: u64,
    /// Uploads stored (complete, verified, and not a duplicate by key).
    pub stored: u64,
    /// Of `stored`, stores of an id that was stored already (no key, or a
    /// new one): a second copy of a file that one call may have sent twice.
    pub rewrites: u64,
    /// Complete, verified uploads whose idempotency key was stored already
    /// (acknowledged, not stored again).
    pub duplicates: u64,
    /// Uploads whose size or checksum did not match (answered 422).
    pub rejected: u64,
    /// Uploads cut off before their body was complete.
    pub incomplete: u64,
    /// Injected connection resets.
    pub resets: u64,
    /// Injected 503 answers.
    pub unavailable: u64,
    /// Injected delays.
    pub delays: u64,
    /// Requests black-holed (read, never answered).
    pub black_holes: u64,
    /// Uploads stored and then answered late.
    pub late_answers: u64,
}

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    async_requests: AtomicU64,
    stored: AtomicU64,
    rewrites: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    incomplete: AtomicU64,
    resets: AtomicU64,
    unavailable: AtomicU64,
    delays: AtomicU64,
    black_holes: AtomicU64,
    late_answers: AtomicU64,
}

struct Shared {
    dir: PathBuf,
    faults: FaultFn,
    attempts: Mutex<HashMap<(String, Client), u32>>,
    files: Mutex<Files>,
    partial: AtomicU64,
    stats: Stats,
}

/// A running server; stopped (with its connections) when dropped.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Lets a handler reset its own connection.
struct ConnControl {
    /// A duplicate of the connection's socket, to set `SO_LINGER` 0 on it.
    socket: Mutex<Option<socket2::Socket>>,
    reset: Notify,
}

impl ConnControl {
    /// Makes the close an RST, then has the connection task drop the connection.
    fn reset(&self) {
        if let Some(socket) = lock(&self.socket).take() {
            let _ = socket.set_linger(Some(Duration::ZERO));
        }
        self.reset.notify_one();
    }
}

/// How many idempotency keys the server remembers. A real API keeps a key
/// for a limited time (the draft lets it expire; Stripe keeps 24 hours):
/// it matters while its call's retries and fallback run, seconds here.
/// Unbounded, a long staged run's keys grew the process that also runs the
/// controller, whose memory criterion then rolled the new path back.
const KEYS_KEPT: usize = 4096;

/// What the server holds: the latest copy of each id, how many times each
/// id was stored, and the idempotency keys of recent stored uploads.
#[derive(Default)]
struct Files {
    latest: HashMap<String, Stored>,
    stores: HashMap<String, u32>,
    keys: HashMap<String, String>,
    /// The keys in the order they were stored: the oldest is forgotten first.
    key_order: VecDeque<String>,
}

impl Files {
    fn remember(&mut self, key: String, id: &str) {
        if self.key_order.len() == KEYS_KEPT {
            if let Some(oldest) = self.key_order.pop_front() {
                self.keys.remove(&oldest);
            }
        }
        self.key_order.push_back(key.clone());
        self.keys.insert(key, id.to_owned());
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Server {
    /// Starts a server on `127.0.0.1:0` storing files in `dir`, on the
    /// current Tokio runtime.
    pub async fn start(dir: impl Into<PathBuf>, faults: FaultFn) -> std::io::Result<Server> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            dir,
            faults,
            attempts: Mutex::new(HashMap::new()),
            files: Mutex::new(Files::default()),
            partial: AtomicU64::new(0),
            stats: Stats::default(),
        });
        let router = Router::new()
            .route("/upload/{id}", put(upload))
            .with_state(Arc::clone(&shared));
        let accept = tokio::spawn(accept_loop(listener, router));
        Ok(Server {
            addr,
            shared,
            accept,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        let s = &self.shared.stats;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            requests: get(&s.requests),
            async_requests: get(&s.async_requests),
            stored: get(&s.stored),
            rewrites: get(&s.rewrites),
            duplicates: get(&s.duplicates),
            rejected: get(&s.rejected),
            incomplete: get(&s.incomplete),
            resets: get(&s.resets),
            unavailable: get(&s.unavailable),
            delays: get(&s.delays),
            black_holes: get(&s.black_holes),
            late_answers: get(&s.late_answers),
        }
    }

    /// The stored files by id (the latest copy of each).
    pub fn stored(&self) -> HashMap<String, Stored> {
        lock(&self.shared.files).latest.clone()
    }

    /// How many times `id` was stored.
    pub fn stores(&self, id: &str) -> u32 {
        lock(&self.shared.files)
            .stores
            .get(id)
            .copied()
            .unwrap_or(0)
    }

    /// Requests received for `id` from `client`.
    pub fn attempts(&self, id: &str, client: Client) -> u32 {
        lock(&self.shared.attempts)
            .get(&(id.to_owned(), client))
            .copied()
            .unwrap_or(0)
    }

    /// Checks the files on disk against what the clients meant to send:
    /// every expected `(id, size, md5)` must be stored once, with exactly
    /// that size and checksum, re-read from disk now.
    pub fn verify<'a>(
        &self,
        expected: impl IntoIterator<Item = (&'a str, u64, &'a str)>,
    ) -> Verification {
        let files = self.stored();
        let mut v = Verification::default();
        for (id, size, md5) in expected {
            v.expected += 1;
            let Some(stored) = files.get(id) else {
                v.missing.push(id.to_owned());
                continue;
            };
            if self.stores(id) > 1 {
                v.stored_again.push(id.to_owned());
            }
            match file_digest(&stored.path) {
                Ok((len, digest)) if len == size && digest == md5 => v.intact += 1,
                _ => v.corrupted.push(id.to_owned()),
            }
        }
        v.stored = files.len() as u64;
        v
    }

    /// [`Server::verify`] of `files`, each uploaded under its own id.
    pub fn verify_files(&self, files: &[TestFile]) -> Verification {
        self.verify(
            files
                .iter()
                .map(|f| (f.id.as_str(), f.size, f.md5.as_str())),
        )
    }
}

/// The result of [`Server::verify`].
#[derive(Clone, Debug, Default)]
pub struct Verification {
    /// Files the clients sent.
    pub expected: u64,
    /// Files on disk with the right size and checksum.
    pub intact: u64,
    /// Files the server holds in all (each id once).
    pub stored: u64,
    /// Ids the server never stored.
    pub missing: Vec<String>,
    /// Ids stored with another size or checksum.
    pub corrupted: Vec<String>,
    /// Ids stored more than once (a later call's upload, or one call's
    /// upload stored twice because it carried no idempotency key).
    pub stored_again: Vec<String>,
}

impl Verification {
    /// Every expected file is there, intact, and nothing else is.
    pub fn all_intact(&self) -> bool {
        self.intact == self.expected && self.stored == self.expected
    }

    /// [`all_intact`](Self::all_intact), and each file stored once: what a
    /// run that uploads each file in one call must show.
    pub fn each_stored_once(&self) -> bool {
        self.all_intact() && self.stored_again.is_empty()
    }
}

/// Size and MD5 (hex) of a file.
pub fn file_digest(path: &FsPath) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Md5::new();
    let mut buf = vec![0; 256 * 1024];
    let mut len = 0;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        len += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((len, hex(&hasher.finalize())))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

async fn accept_loop(listener: TcpListener, router: Router) {
    // Dropping the set (when the accept task is aborted) aborts every connection.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let socket = stream
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(socket2::Socket::from);
        let control = Arc::new(ConnControl {
            socket: Mutex::new(socket),
            reset: Notify::new(),
        });
        let router = router.clone();
        connections.spawn(async move {
            let service = {
                let control = Arc::clone(&control);
                hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(Arc::clone(&control));
                    router.clone().oneshot(request.map(Body::new))
                })
            };
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                () = control.reset.notified() => {} // dropped here: the socket closes with RST
            }
        });
    }
}

async fn upload(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Extension(control): Extension<Arc<ConnControl>>,
    headers: HeaderMap,
    body: Body,
) -> (StatusCode, String) {
    let stats = &shared.stats;
    stats.requests.fetch_add(1, Ordering::Relaxed);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let client = match header(CLIENT_HEADER) {
        Some("sync") => Client::Sync,
        _ => Client::Async,
    };
    if client == Client::Async {
        stats.async_requests.fetch_add(1, Ordering::Relaxed);
    }
    let (Some(size), Some(md5)) = (
        header(SIZE_HEADER).and_then(|s| s.parse::<u64>().ok()),
        header(MD5_HEADER),
    ) else {
        return (StatusCode::BAD_REQUEST, "missing size or md5 header".into());
    };
    let md5 = md5.to_ascii_lowercase();
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return (StatusCode::BAD_REQUEST, "bad id".into());
    }
    let attempt = {
        let mut attempts = lock(&shared.attempts);
        let n = attempts.entry((id.clone(), client)).or_insert(0);
        *n += 1;
        *n
    };
    let faulted = (shared.faults)(&Attempt {
        id: &id,
        client,
        attempt,
    });
    match faulted {
        Some(Fault::Unavailable) => {
            stats.unavailable.fetch_add(1, Ordering::Relaxed);
            // Read the body first: answering early makes hyper close the
            // connection under a client still sending (a broken pipe, not a 503).
            let mut body = body;
            while let Some(Ok(_)) = body.frame().await {}
            return (StatusCode::SERVICE_UNAVAILABLE, "injected 503".into());
        }
        Some(Fault::Reset) => {
            stats.resets.fetch_add(1, Ordering::Relaxed);
            control.reset();
            // The connection task drops this handler with the connection.
            std::future::pending::<()>().await;
        }
        Some(Fault::BlackHole) => {
            stats.black_holes.fetch_add(1, Ordering::Relaxed);
            let mut body = body;
            while let Some(Ok(_)) = body.frame().await {}
            // Never answers; dropped with the connection (or the server).
            return std::future::pending().await;
        }
        Some(Fault::Delay(delay)) => {
            stats.delays.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
        }
        Some(Fault::LateAnswer(_)) | None => {}
    }
    let late = match faulted {
        Some(Fault::LateAnswer(delay)) => Some(delay),
        _ => None,
    };
    let key = header(IDEMPOTENCY_HEADER).map(str::to_owned);

    let n = shared.partial.fetch_add(1, Ordering::Relaxed);
    let partial = shared.dir.join(format!(".partial-{n}"));
    let received = receive(body, &partial).await;
    let (len, digest) = match received {
        Ok(done) => done,
        Err(error) => {
            stats.incomplete.fetch_add(1, Ordering::Relaxed);
            let _ = tokio::fs::remove_file(&partial).await;
            return (StatusCode::BAD_REQUEST, format!("incomplete body: {error}"));
        }
    };
    if len != size || digest != md5 {
        stats.rejected.fetch_add(1, Ordering::Relaxed);
        let _ = tokio::fs::remove_file(&partial).await;
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("got {len} bytes md5 {digest}, expected {size} bytes md5 {md5}"),
        );
    }
    let answer = store(&shared, &id, key, &partial, len, digest, client);
    if let Some(delay) = late {
        stats.late_answers.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(delay).await;
    }
    answer
}

/// Stores a verified upload under `id`, unless its idempotency key was
/// stored already (then it is acknowledged as a duplicate).
fn store(
    shared: &Shared,
    id: &str,
    key: Option<String>,
    partial: &FsPath,
    len: u64,
    digest: String,
    client: Client,
) -> (StatusCode, String) {
    let stats = &shared.stats;
    let mut files = lock(&shared.files);
    if let Some(stored_id) = key.as_ref().and_then(|key| files.keys.get(key)) {
        let same = stored_id == id
            && files
                .latest
                .get(id)
                .is_some_and(|f| f.md5 == digest && f.size == len);
        drop(files);
        let _ = std::fs::remove_file(partial);
        stats.duplicates.fetch_add(1, Ordering::Relaxed);
        return if same {
            (StatusCode::OK, format!("duplicate {id} {len} {digest}"))
        } else {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency key reused for another upload".into(),
            )
        };
    }
    let path = shared.dir.join(id);
    if let Err(error) = std::fs::rename(partial, &path) {
        return (StatusCode::INTERNAL_SERVER_ERROR, error.to_string());
    }
    let stores = files.stores.entry(id.to_owned()).or_insert(0);
    *stores += 1;
    if *stores > 1 {
        stats.rewrites.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(key) = key {
        files.remember(key, id);
    }
    files.latest.insert(
        id.to_owned(),
        Stored {
            path,
            size: len,
            md5: digest.clone(),
            client,
        },
    );
    stats.stored.fetch_add(1, Ordering::Relaxed);
    (StatusCode::OK, format!("stored {id} {len} {digest}"))
}

/// Streams `body` into `path`, hashing it on the way.
async fn receive(body: Body, path: &FsPath) -> Result<(u64, String), String> {
    let file = tokio::fs::File::create(path)
        .await
        .map_err(|e| e.to_string())?;
    let mut file = tokio::io::BufWriter::with_capacity(256 * 1024, file);
    let mut body = body;
    let mut hasher = Md5::new();
    let mut len = 0_u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Ok(data) = frame.into_data() {
            hasher.update(&data);
            len += data.len() as u64;
            file.write_all(&data).await.map_err(|e| e.to_string())?;
        }
    }
    file.flush().await.map_err(|e| e.to_string())?;
    Ok((len, hex(&hasher.finalize())))
}
