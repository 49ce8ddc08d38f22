//! The tables a user reads against the code they describe: each table is
//! written once (the README or a guide; the crate docs link to it), and
//! these tests keep it true.

use std::path::Path;
use std::time::Duration;

use async_upload::config::Config;
use async_upload::stages::DEFAULT_STAGES;
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

fn document(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

/// The cells (as text, code spans without their backticks) of the body
/// rows of the first table after the heading `heading`.
fn table_after(text: &str, heading: &str) -> Vec<Vec<String>> {
    let mut in_heading = false;
    let mut title = String::new();
    let mut found = false;
    let (mut rows, mut row, mut cell) = (Vec::new(), Vec::new(), None::<String>);
    let mut in_head = false;
    for event in Parser::new_ext(text, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Heading { .. }) => {
                in_heading = true;
                title.clear();
            }
            Event::End(TagEnd::Heading(_)) => {
                in_heading = false;
                if found && !rows.is_empty() {
                    break;
                }
                found = title == heading;
            }
            Event::Text(t) | Event::Code(t) if in_heading => title.push_str(&t),
            Event::Start(Tag::TableHead) if found => in_head = true,
            Event::End(TagEnd::TableHead) => in_head = false,
            Event::Start(Tag::TableCell) if found && !in_head => cell = Some(String::new()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(cell) = cell.as_mut() {
                    cell.push_str(&t);
                }
            }
            Event::End(TagEnd::TableCell) => row.extend(cell.take()),
            Event::End(TagEnd::TableRow) if found && !row.is_empty() => {
                rows.push(std::mem::take(&mut row));
            }
            Event::End(TagEnd::Table) if found => break,
            _ => {}
        }
    }
    assert!(!rows.is_empty(), "no table under the heading {heading:?}");
    rows
}

#[test]
fn the_configuration_table_names_every_variable_and_its_default() {
    let rows = table_after(&document("README.md"), "Configuration");
    // The variables the configuration reads, in the order it reads them.
    let read = std::cell::RefCell::new(Vec::new());
    Config::from_lookup(|name| {
        read.borrow_mut().push(name.to_owned());
        None
    })
    .unwrap();
    let documented: Vec<&str> = rows.iter().map(|row| row[0].as_str()).collect();
    assert_eq!(documented, *read.borrow());
    for row in &rows {
        let (variable, default) = (&row[0], &row[2]);
        if default.starts_with("unset") {
            let set = Config::from_lookup(|name| (name == variable).then(|| "/tmp/x".into()));
            assert_ne!(set.unwrap(), Config::default(), "{variable} is read");
            continue;
        }
        let config = Config::from_lookup(|name| (name == variable).then(|| default.clone()));
        assert_eq!(
            config.as_ref().ok(),
            Some(&Config::default()),
            "{variable}: the documented default {default:?} is not the code's"
        );
    }
}

fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

fn duration(d: Duration) -> String {
    let hours = d.as_secs() / 3600;
    if hours % 168 == 0 {
        match hours / 168 {
            1 => "1 week".to_owned(),
            weeks => format!("{weeks} weeks"),
        }
    } else {
        format!("{hours} h")
    }
}

#[test]
fn the_stage_table_is_default_stages() {
    let rows = table_after(&document("docs/staged-rollout.md"), "Stages");
    let code: Vec<Vec<String>> = DEFAULT_STAGES
        .iter()
        .map(|stage| {
            vec![
                stage.number.to_string(),
                format!("{}%", stage.rollout),
                percent(stage.min_success_rate),
                format!("{:.2}", stage.max_latency_ratio),
                percent(stage.max_error_rate),
                duration(stage.min_duration),
                stage.min_samples.to_string(),
            ]
        })
        .collect();
    assert_eq!(rows, code);
}

#[cfg(feature = "redis")]
#[test]
fn the_fleet_table_names_every_fleet_variable() {
    use async_upload::fleet::{INSTANCE, REDIS_CA, REDIS_STALE_AFTER, REDIS_URL};
    let rows = table_after(
        &document("docs/fleet.md"),
        "Fleet mode: one rollout and one kill switch for every replica (Redis)",
    );
    let mut documented: Vec<&str> = rows.iter().map(|row| row[0].as_str()).collect();
    documented.sort_unstable();
    let mut code = [REDIS_URL, REDIS_STALE_AFTER, INSTANCE, REDIS_CA];
    code.sort_unstable();
    assert_eq!(documented, code);
}
