//! The README and the guides in `docs/` as a Markdown renderer reads them:
//! no table broken by a paragraph, every relative link and anchor resolves,
//! and the README stays a front door (at most 300 lines).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = vec![root.join("README.md")];
    let mut guides: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    guides.sort();
    paths.extend(guides);
    // Each crate's README, as crates.io shows it.
    for krate in ["runtime", "macros", "control", "dashboard", "fleet", "cli"] {
        paths.push(root.join(krate).join("README.md"));
    }
    paths
}

/// GitHub's anchor of a heading: lower case, spaces to hyphens, other
/// punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// What one document holds: its headings' anchors, its links, and the
/// paragraphs that start like a table row.
#[derive(Default)]
struct Read {
    anchors: Vec<String>,
    links: Vec<String>,
    stray_rows: Vec<String>,
}

fn read(text: &str) -> Read {
    let mut out = Read::default();
    let mut heading: Option<String> = None;
    for (event, range) in Parser::new_ext(text, Options::ENABLE_TABLES).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::End(TagEnd::Heading(_)) => {
                if let Some(text) = heading.take() {
                    out.anchors.push(slug(&text));
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            // A row of a table a paragraph broke is read as text of that
            // paragraph, on any of its lines.
            Event::Start(Tag::Paragraph) => {
                let rows = text[range]
                    .lines()
                    .map(str::trim_start)
                    .filter(|line| line.starts_with('|'));
                out.stray_rows.extend(rows.map(str::to_owned));
            }
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                out.links.push(dest_url.to_string());
            }
            _ => {}
        }
    }
    out
}

#[test]
fn tables_are_whole_and_links_resolve() {
    let docs: Vec<(PathBuf, String)> = documents()
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (path, text)
        })
        .collect();
    let reads: HashMap<PathBuf, Read> = docs
        .iter()
        .map(|(path, text)| (path.canonicalize().unwrap(), read(text)))
        .collect();
    let mut problems = Vec::new();
    for (path, _) in &docs {
        let here = &reads[&path.canonicalize().unwrap()];
        for row in &here.stray_rows {
            problems.push(format!(
                "{}: a table row outside a table: {row}",
                path.display()
            ));
        }
        for link in &here.links {
            if link.starts_with("http://") || link.starts_with("https://") {
                continue;
            }
            let (file, anchor) = link.split_once('#').unwrap_or((link, ""));
            let target = if file.is_empty() {
                path.clone()
            } else {
                path.parent().unwrap().join(file)
            };
            let Ok(target) = target.canonicalize() else {
                problems.push(format!("{}: {link}: no such file", path.display()));
                continue;
            };
            if anchor.is_empty() {
                continue;
            }
            match reads.get(&target) {
                Some(read) if read.anchors.iter().any(|a| a == anchor) => {}
                Some(_) => problems.push(format!("{}: {link}: no such heading", path.display())),
                None => problems.push(format!(
                    "{}: {link}: an anchor into a file not checked",
                    path.display()
                )),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_readme_is_a_front_door() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 300,
        "README.md has {lines} lines; move detail into a guide in docs/"
    );
}

#[test]
fn a_table_broken_by_a_paragraph_is_found() {
    let broken = "| a | b |\n| --- | --- |\n| 1 | 2 |\n\nA paragraph inside.\n\n| 3 | 4 |\n";
    assert_eq!(read(broken).stray_rows, ["| 3 | 4 |"]);
    // The rows that follow a paragraph with no blank line are its text.
    let continued =
        "| a | b |\n| --- | --- |\n| 1 | 2 |\n\nA paragraph inside.\n| 3 | 4 |\n| 5 | 6 |\n";
    assert_eq!(read(continued).stray_rows, ["| 3 | 4 |", "| 5 | 6 |"]);
    let whole = "| a | b |\n| --- | --- |\n| 1 | 2 |\n| 3 | 4 |\n";
    assert!(read(whole).stray_rows.is_empty());
    assert_eq!(
        slug("Classifying 4xx answers: what the judge then sees"),
        "classifying-4xx-answers-what-the-judge-then-sees"
    );
}
