//! Helpers shared by the error-type tests (`attribute_errors`, `attribute_anyhow`).

use std::error::Error;
use std::fmt;
use std::io;

use async_upload::config::{handle, SiteOverrides};
use async_upload::metrics::{self, ExecutionType, Summary};

/// Sends every call of `site` down the async path; `fallback` overrides the
/// site's fallback switch.
pub fn enroll(site: &str, fallback: Option<bool>) {
    handle().update(|c| c.enabled = true).unwrap();
    handle()
        .set_site(
            site,
            SiteOverrides {
                rollout: Some(100.0),
                fallback,
                ..SiteOverrides::default()
            },
        )
        .unwrap();
}

pub fn summary(site: &str, execution_type: ExecutionType) -> Summary {
    metrics::global().summary(site, execution_type)
}

/// An application error whose source is an `io::Error`, as a client
/// library's error wraps the socket's.
#[derive(Debug)]
pub struct Chained(io::Error);

impl Chained {
    pub fn new(kind: io::ErrorKind) -> Chained {
        Chained(kind.into())
    }
}

impl fmt::Display for Chained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("upload request failed")
    }
}

impl Error for Chained {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.0)
    }
}
