//! `async-upload fleet` against a real Redis (features `cli,redis`): what
//! operators type, what they read back, and the exit status.

mod fleet_support;

use std::process::Output;

use fleet_support::redis_server;

fn fleet(url: &str, args: &[&str]) -> Output {
    fleet_support::cli(url, args, &[])
}

fn status_json(url: &str) -> serde_json::Value {
    fleet_support::status_json(url, &[])
}

#[test]
fn set_roll_back_clear_and_advance_show_in_status() {
    let redis = redis_server();
    let url = redis.url();
    assert_eq!(status_json(&url)["defaults"], serde_json::Value::Null);

    assert!(fleet(&url, &["set", "--enabled", "true", "--rollout", "5"])
        .status
        .success());
    assert!(fleet(
        &url,
        &[
            "set",
            "--site",
            "upload_file",
            "--rollout",
            "12.5",
            "--max-retries",
            "3"
        ]
    )
    .status
    .success());
    assert!(fleet(&url, &["advance", "--site", "upload_file"])
        .status
        .success());
    let status = status_json(&url);
    assert_eq!(status["defaults"]["enabled"], true);
    let site = &status["sites"][0];
    assert_eq!(site["site"], "upload_file");
    assert_eq!(site["stage"], 1);
    assert_eq!(site["rollout"], 1.0, "stage 1 routes 1 %");

    let first = fleet(
        &url,
        &["roll-back", "--site", "upload_file", "--reason", "drill"],
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("rolled back (drill)"));
    let again = fleet(&url, &["roll-back", "--site", "upload_file"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("already rolled back"));
    let status = status_json(&url);
    assert_eq!(status["sites"][0]["rolled_back"], true);
    assert_eq!(status["sites"][0]["reason"], "drill");

    let refused = fleet(&url, &["advance", "--site", "upload_file"]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "no advance while rolled back"
    );
    assert!(fleet(&url, &["clear-rollback", "--site", "upload_file"])
        .status
        .success());
    assert!(fleet(&url, &["advance", "--site", "upload_file"])
        .status
        .success());
    let status = status_json(&url);
    assert_eq!(status["sites"][0]["rolled_back"], false);
    assert_eq!(status["sites"][0]["stage"], 2);

    let text = fleet(&url, &["status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("site upload_file: stage 2"), "{text}");
}

#[test]
fn bad_input_and_no_redis_exit_2_with_what_is_accepted() {
    let redis = redis_server();
    let url = redis.url();
    let bad = fleet(&url, &["set", "--site", "up", "--rollout", "150"]);
    assert_eq!(bad.status.code(), Some(2));
    let message = String::from_utf8_lossy(&bad.stderr);
    assert!(
        message.contains("--rollout") && message.contains("0 to 100"),
        "{message}"
    );

    let nothing = fleet(&url, &["set", "--site", "up"]);
    assert_eq!(nothing.status.code(), Some(2));

    let spaced = fleet(&url, &["roll-back", "--site", "a b"]);
    assert_eq!(spaced.status.code(), Some(2));

    let gone = fleet("redis://127.0.0.1:1", &["status"]);
    assert_eq!(gone.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("redis://127.0.0.1:1"));

    let not_redis = fleet("http://127.0.0.1:1", &["status"]);
    assert_eq!(not_redis.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&not_redis.stderr).contains("host:port"));
}
