#![doc = include_str!("../README.md")]
//!
//! This crate holds the command and its argument parser (clap), so neither is linked into a
//! service that uses the library. Its one public item is [`run`], the whole command, which the
//! `async-upload` facade's own `cli` binary calls too.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[cfg(feature = "redis")]
mod fleet;
mod report;

#[derive(Parser)]
#[command(
    name = "async-upload",
    version,
    about = "Reports on async-upload rollouts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Summarise JSONL logs (several instances' files are merged) and print
    /// the stage verdict. Exit status: 0 advance or hold, 3 review,
    /// 4 rollback, 2 bad input.
    Report {
        /// JSONL log files written by the sink (`ASYNC_UPLOAD_LOG`).
        #[arg(required = true, value_name = "FILE.jsonl")]
        files: Vec<PathBuf>,
        /// Only this site.
        #[arg(long, value_name = "NAME")]
        site: Option<String>,
        /// Evaluate this stage (default: the last stage the log shows entered).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        stage: Option<u32>,
        /// Also write the upload records as CSV to this file.
        #[arg(long, value_name = "OUT.csv")]
        csv: Option<PathBuf>,
        /// Print the report as JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// Also write the report as one self-contained HTML page (charts,
        /// no network needed) to this file.
        #[arg(long, value_name = "OUT.html")]
        html: Option<PathBuf>,
    },
    /// Operate a fleet's shared state in Redis (built with the `redis` feature).
    /// Exit status: 0 success, 2 bad input or Redis unreachable.
    #[cfg(feature = "redis")]
    Fleet(fleet::FleetArgs),
}

/// Runs the command on this process's arguments and returns its exit
/// status (`main` of the `async-upload` binary).
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     async_upload_cli::run()
/// }
/// ```
#[must_use]
pub fn run() -> ExitCode {
    match Cli::parse().command {
        Command::Report {
            files,
            site,
            stage,
            csv,
            json,
            html,
        } => match report::run(&files, site, stage, csv, json, html) {
            Ok(code) => ExitCode::from(code),
            Err(message) => {
                eprintln!("async-upload report: {message}");
                ExitCode::from(report::BAD_INPUT)
            }
        },
        #[cfg(feature = "redis")]
        Command::Fleet(args) => fleet::run(args),
    }
}
