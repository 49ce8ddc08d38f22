//! A bad per-site value is as visible as a bad global one: said on stderr
//! once (no tracing subscriber installed), listed by `site_errors`, and
//! the site runs the sync path. The configuration is read once per
//! process, so the test re-runs this binary as a child with the variables
//! set.

use async_upload_runtime::config::handle;
use async_upload_runtime::Site;

const CHILD: &str = "CONFIG_SITE_ERRORS_CHILD";
const TEST: &str = "a_bad_per_site_value_is_said_once_and_listed";

static NGINX: Site = Site::new("nginx_upload");

fn child() {
    let errors = handle().site_errors();
    let names: Vec<&str> = errors.iter().map(|e| e.variable()).collect();
    assert_eq!(names, ["ASYNC_UPLOAD_TIMEOUT__NGINX_UPLOAD"]);
    assert_eq!(errors[0].value(), "abc");
    assert!(
        handle().init_error().is_none(),
        "the global values are fine"
    );
    // The site's first use reads the value again: the site runs the sync
    // path, and the line is not said twice.
    assert!(!NGINX.settings().enabled);
    assert_eq!(handle().site_errors().len(), 1);
}

#[test]
fn a_bad_per_site_value_is_said_once_and_listed() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("ASYNC_UPLOAD_ENABLED", "true")
        .env("ASYNC_UPLOAD_ROLLOUT", "100")
        .env("ASYNC_UPLOAD_TIMEOUT__NGINX_UPLOAD", "abc")
        .env_remove("ASYNC_UPLOAD_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("ASYNC_UPLOAD_TIMEOUT__NGINX_UPLOAD"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(
        said[0].starts_with(
            "async-upload: ASYNC_UPLOAD_TIMEOUT__NGINX_UPLOAD=\"abc\" is not accepted"
        ),
        "{stderr}"
    );
    assert!(said[0].contains("sync path"), "{stderr}");
}
