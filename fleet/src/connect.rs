//! Reaching Redis: the URLs accepted (`redis://`, `rediss://` with
//! rustls), the trusted roots, and what each way of failing to connect
//! means, said so that an operator can fix it.

use std::fmt;
use std::path::Path;
use std::sync::Once;
use std::time::Duration;

use redis::{Connection, ErrorKind, RedisError, ServerErrorKind};

use super::env::{REDIS_CA, REDIS_URL};
use async_upload_runtime::config::ConfigError;

/// What the URL accepts.
const URL_ACCEPTED: &str = "redis://[user:password@]host:port[/db] or rediss://… for TLS \
     (a standalone Redis: Sentinel and Cluster are not supported)";
/// What `ASYNC_UPLOAD_REDIS_CA` accepts.
const CA_ACCEPTED: &str = "a readable PEM file of CA certificates (-----BEGIN CERTIFICATE-----)";

/// Why Redis could not be used, for logs and for whoever handles a [`FleetError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContactCause {
    /// No answer: refused, unreachable, or a connection that died.
    Unreachable,
    /// No reply within the timeout.
    Timeout,
    /// Wrong or missing password, or an unknown ACL user.
    Authentication,
    /// The ACL user may not run a command, or use a key or channel.
    Permission,
    /// The TLS handshake failed, or TLS met a plain port (or the reverse).
    Tls,
    /// A Redis Sentinel or a Cluster node: not supported.
    Unsupported,
    /// Any other error Redis answered with.
    Server,
}

impl ContactCause {
    /// The cause as a word for logs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ContactCause::Unreachable => "unreachable",
            ContactCause::Timeout => "timeout",
            ContactCause::Authentication => "authentication",
            ContactCause::Permission => "permission",
            ContactCause::Tls => "tls",
            ContactCause::Unsupported => "unsupported",
            ContactCause::Server => "server",
        }
    }
}

impl fmt::Display for ContactCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The client of `url`, or an error saying what a Redis URL looks like.
/// `rediss://` trusts the system's roots plus those of `ca`.
pub(crate) fn client(url: &str, ca: Option<&Path>) -> Result<redis::Client, FleetError> {
    let refuse = |accepted| FleetError::from(ConfigError::new(REDIS_URL, redacted(url), accepted));
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    match scheme {
        "redis" | "rediss" => {}
        "redis+sentinel" | "rediss+sentinel" => {
            return Err(refuse(
                "a standalone Redis: Redis Sentinel is not supported (give the primary's address, \
                 or a managed Redis endpoint)",
            ))
        }
        _ => return Err(refuse(URL_ACCEPTED)),
    }
    if scheme == "redis" && ca.is_some() {
        tracing::warn!(
            url = %redacted(url),
            "async-upload fleet: {REDIS_CA} is set but the URL is redis:// (no TLS); use rediss:// for TLS"
        );
    }
    let client = if scheme == "rediss" {
        install_crypto();
        match ca {
            None => redis::Client::open(url),
            Some(path) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(trusted_roots(path)?),
                },
            ),
        }
    } else {
        redis::Client::open(url)
    };
    client.map_err(|_| refuse(URL_ACCEPTED))
}

/// rustls needs one crypto provider for the process; redis links rustls
/// without one. A provider the application installed first is kept.
fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The system's trusted roots plus those of the PEM file at `path`, as
/// PEM text (redis takes roots in no other form, and replaces the system's
/// with whatever it is given).
fn trusted_roots(path: &Path) -> Result<Vec<u8>, FleetError> {
    use base64::Engine as _;
    let refuse = || ConfigError::new(REDIS_CA, path.display().to_string(), CA_ACCEPTED);
    let extra = std::fs::read(path).map_err(|_| refuse())?;
    if !String::from_utf8_lossy(&extra).contains("-----BEGIN CERTIFICATE-----") {
        return Err(refuse().into());
    }
    let mut pem = Vec::new();
    for cert in rustls_native_certs::load_native_certs().certs {
        let text = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in text.as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem.extend_from_slice(&extra);
    pem.push(b'\n');
    Ok(pem)
}

/// A connection with read and write timeouts.
pub(crate) fn open(client: &redis::Client, timeout: Duration) -> redis::RedisResult<Connection> {
    let connection = client.get_connection_with_timeout(timeout)?;
    connection.set_read_timeout(Some(timeout))?;
    connection.set_write_timeout(Some(timeout))?;
    Ok(connection)
}

/// `url` without its password, for logs and errors (the user is kept).
pub(crate) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let userinfo = match rest[..at].split_once(':') {
        Some((user, _password)) => format!("{user}:***"),
        // `redis://secret@host`: some write the password alone.
        None => "***".to_owned(),
    };
    format!("{scheme}://{userinfo}{}", &rest[at..])
}

/// The fleet's error for `error` at `url`: the cause, and what to check.
pub(crate) fn error(url: &str, error: &RedisError) -> FleetError {
    let (cause, hint) = classify(error);
    let mut detail = error.to_string();
    if !hint.is_empty() {
        detail = format!("{detail} ({hint})");
    }
    FleetError::Redis {
        url: url.to_owned(),
        detail,
        cause,
    }
}

fn classify(error: &RedisError) -> (ContactCause, &'static str) {
    let text = error.to_string();
    let has = |needle: &str| text.contains(needle);
    match error.kind() {
        ErrorKind::AuthenticationFailed => (
            ContactCause::Authentication,
            "check the password and the ACL user in the URL",
        ),
        ErrorKind::Server(ServerErrorKind::NoPerm) => (
            ContactCause::Permission,
            "the ACL user lacks a right the fleet needs: see docs/fleet.md, ACL users",
        ),
        ErrorKind::Server(
            ServerErrorKind::Moved
            | ServerErrorKind::Ask
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::CrossSlot,
        ) => (
            ContactCause::Unsupported,
            "this is a Redis Cluster node: Cluster is not supported, use a standalone Redis",
        ),
        _ if has("WRONGPASS") || has("NOAUTH") || has("invalid username-password") => (
            ContactCause::Authentication,
            "check the password and the ACL user in the URL",
        ),
        _ if has("NOPERM") => (
            ContactCause::Permission,
            "the ACL user lacks a right the fleet needs: see docs/fleet.md, ACL users",
        ),
        _ if has("unknown command") => (
            ContactCause::Unsupported,
            "not a Redis data node (a Sentinel?): Sentinel is not supported, give the primary's address",
        ),
        _ if has("InvalidContentType")
            || has("CorruptMessage")
            || has("corrupt message")
            || has("invalid peer certificate")
            || has("InvalidCertificate")
            || has("certificate") =>
        {
            (
                ContactCause::Tls,
                "TLS failed: is it a TLS port, and is its certificate trusted? (rediss:// needs a TLS \
                 port; a private CA goes in ASYNC_UPLOAD_REDIS_CA)",
            )
        }
        _ if error.is_timeout() => (ContactCause::Timeout, "no reply within the timeout"),
        _ if error.is_connection_refusal() => {
            (ContactCause::Unreachable, "nothing listens there: is Redis up?")
        }
        _ if error.is_connection_dropped()
            || has("UnexpectedEof")
            || has("unexpected end")
            || has("Connection reset")
            || has("broken pipe")
            || has("Broken pipe") =>
        {
            (
                ContactCause::Unreachable,
                "the server closed the connection: Redis stopped, or a TLS port was reached with redis:// (use rediss://)",
            )
        }
        ErrorKind::Io => (ContactCause::Unreachable, ""),
        _ => (ContactCause::Server, ""),
    }
}

/// `INFO server`'s `redis_mode`: a Sentinel or a Cluster node is refused.
pub(crate) fn check_mode(url: &str, info: &str) -> Result<(), FleetError> {
    let mode = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_mode:"))
        .map(str::trim);
    let unsupported = |what: &str| FleetError::Redis {
        url: url.to_owned(),
        detail: format!(
            "this is a Redis {what}: not supported (the fleet needs a standalone Redis or a \
             managed endpoint in non-cluster mode)"
        ),
        cause: ContactCause::Unsupported,
    };
    match mode {
        Some("sentinel") => Err(unsupported("Sentinel")),
        Some("cluster") => Err(unsupported("Cluster node")),
        _ => Ok(()),
    }
}

/// What went wrong talking to the shared state.
#[derive(Debug)]
#[non_exhaustive]
pub enum FleetError {
    /// Redis could not be reached, or refused the command.
    Redis {
        /// The URL, without its password.
        url: String,
        /// What went wrong, with what to check.
        detail: String,
        /// The kind of failure.
        cause: ContactCause,
    },
    /// A value (given, or read from Redis) is not accepted.
    Invalid(ConfigError),
}

impl FleetError {
    /// The kind of contact failure, or `None` for a value not accepted.
    #[must_use]
    pub fn cause(&self) -> Option<ContactCause> {
        match self {
            FleetError::Redis { cause, .. } => Some(*cause),
            FleetError::Invalid(_) => None,
        }
    }
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetError::Redis { url, detail, .. } => write!(f, "Redis at {url}: {detail}"),
            FleetError::Invalid(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for FleetError {}

impl From<ConfigError> for FleetError {
    fn from(error: ConfigError) -> Self {
        FleetError::Invalid(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_logs_users_do() {
        assert_eq!(redacted("redis://:secret@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(
            redacted("rediss://replica:secret@h:1"),
            "rediss://replica:***@h:1"
        );
        assert_eq!(redacted("redis://secret@h:1"), "redis://***@h:1");
        assert_eq!(redacted("redis://h:1"), "redis://h:1");
    }

    #[test]
    fn a_url_that_is_not_redis_is_refused_with_what_is_accepted() {
        for url in ["http://localhost:6379", "redis+sentinel://h:26379/mymaster"] {
            let text = client(url, None).unwrap_err().to_string();
            assert!(text.contains("ASYNC_UPLOAD_REDIS_URL"), "{text}");
            assert!(text.contains("Sentinel"), "{text}");
        }
    }

    #[test]
    fn a_ca_file_that_is_not_pem_is_refused_naming_it() {
        let dir = std::env::temp_dir().join(format!("au-ca-{}", std::process::id()));
        std::fs::write(&dir, "not a certificate").unwrap();
        let error = client("rediss://127.0.0.1:1", Some(&dir)).unwrap_err();
        let _ = std::fs::remove_file(&dir);
        match error {
            FleetError::Invalid(error) => assert_eq!(error.variable(), REDIS_CA),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn sentinel_and_cluster_are_refused_by_their_info() {
        assert!(check_mode("u", "redis_mode:standalone\r\n").is_ok());
        let error = check_mode("u", "# Server\r\nredis_mode:sentinel\r\n").unwrap_err();
        assert_eq!(error.cause(), Some(ContactCause::Unsupported));
        assert!(check_mode("u", "redis_mode:cluster").is_err());
    }
}
