//! `cargo run --features cli -- report FILE.jsonl` (and, with `redis`,
//! `fleet`): the `async-upload` command of the `async-upload-cli` crate,
//! built from this crate for a workspace that already depends on it.

fn main() -> std::process::ExitCode {
    async_upload_cli::run()
}
