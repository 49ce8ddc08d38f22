//! The `async-upload` binary: see the crate docs of `async_upload_cli`.

fn main() -> std::process::ExitCode {
    async_upload_cli::run()
}
