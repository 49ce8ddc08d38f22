//! The error of a configuration value that is not accepted.

use core::fmt;

/// A configuration value that is not accepted.
///
/// The message names the variable (or field), the value as given and what
/// is accepted, so an operator can fix it without reading code:
///
/// ```
/// use async_upload::config::Config;
///
/// let err = Config::from_lookup(|name| (name == "ASYNC_UPLOAD_ROLLOUT").then(|| "150".to_string()))
///     .unwrap_err();
/// assert_eq!(err.variable(), "ASYNC_UPLOAD_ROLLOUT");
/// assert_eq!(err.value(), "150");
/// assert!(err.to_string().contains("0 to 100"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    variable: String,
    value: String,
    expected: &'static str,
}

impl ConfigError {
    /// The error of `value` given for `variable`, which accepts `expected`
    /// (a phrase: "a whole number of retries from 0 to 10").
    ///
    /// ```
    /// use async_upload_runtime::config::ConfigError;
    ///
    /// let error = ConfigError::new("ASYNC_UPLOAD_INSTANCE", "api 1", "an id without whitespace");
    /// assert_eq!(error.variable(), "ASYNC_UPLOAD_INSTANCE");
    /// ```
    pub fn new(
        variable: impl Into<String>,
        value: impl Into<String>,
        expected: &'static str,
    ) -> Self {
        ConfigError {
            variable: variable.into(),
            value: value.into(),
            expected,
        }
    }

    /// The environment variable or `Config` field that was wrong.
    #[must_use]
    pub fn variable(&self) -> &str {
        &self.variable
    }

    /// The value that was rejected, as given.
    #[must_use]
    pub fn value(&self) -> &str {
        &self.value
    }

    /// What is accepted instead.
    #[must_use]
    pub fn expected(&self) -> &'static str {
        self.expected
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={:?} is not accepted: expected {}",
            self.variable, self.value, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}
