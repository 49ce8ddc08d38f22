//! The one error of the HTML report.

/// The HTML report could not be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HtmlError {
    message: String,
}

impl HtmlError {
    pub(crate) fn new(message: String) -> Self {
        HtmlError { message }
    }
}

impl core::fmt::Display for HtmlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HtmlError {}
