//! The control side of async-upload: the JSONL log of every call and event
//! ([`log`]), and the staged rollout that reads it ([`stages`]: the stage
//! table, the judge, the controller and the offline report). Users reach
//! both through the `async-upload` facade (`async_upload::log`,
//! `async_upload::stages`); the HTML report, fleet mode and the command
//! build on this crate.
//!
//! One crate for both because they are one concern seen from two sides: the
//! log's events embed the stage types, and the controller writes its
//! decisions to the log and the report replays them from it.
//!
//! The public names: in [`log`], [`log::Event`] and its line types, the
//! [`log::JsonlLog`] sink and its [`log::guard`], [`log::read_file`],
//! [`log::Reader`] and [`log::Merged`]; in [`stages`], [`stages::Stage`] and
//! [`stages::DEFAULT_STAGES`], [`stages::evaluate`] and its
//! [`stages::Verdict`], the [`stages::Triggers`], the
//! [`stages::Controller`] with its [`stages::Clock`], [`stages::Actuator`]
//! and [`stages::HealthSource`] seams; with the `report` feature, the
//! offline [`stages::Report`] and CSV export.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(clippy::pedantic)]
#![allow(clippy::module_name_repetitions)]

pub mod log;
pub mod stages;
