//! The documentation holds together: every relative link in README.md,
//! BENCHMARKS.md and docs/ points at a file that exists (and at a heading
//! that exists, for `file.md#anchor`), and no page cites a file the
//! repository does not have. The scenario reference's currency is checked
//! next to its renderer (`coordinator::schema_doc`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn pages() -> Vec<PathBuf> {
    let mut v = vec![repo().join("README.md"), repo().join("BENCHMARKS.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    v.extend(docs);
    v
}

/// GitHub's anchor for a heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '_' => Some(c),
            'A'..='Z' => Some(c.to_ascii_lowercase()),
            ' ' => Some('-'),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut in_code = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if !in_code && line.starts_with('#') {
            out.insert(slug(line.trim_start_matches('#')));
        }
    }
    out
}

/// `[text](target)` targets outside code blocks and code spans.
fn links(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn every_relative_link_resolves() {
    let mut broken = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).expect("read page");
        let dir = page.parent().expect("dir");
        for link in links(&text) {
            if link.starts_with("http://") || link.starts_with("https://") || link.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() { page.clone() } else { dir.join(file) };
            if !target.exists() {
                broken.push(format!("{}: {link}: no such file", page.display()));
                continue;
            }
            if !anchor.is_empty() && target.extension().is_some_and(|x| x == "md") {
                let t = std::fs::read_to_string(&target).expect("read target");
                if !anchors(&t).contains(anchor) {
                    broken.push(format!("{}: {link}: no heading #{anchor} in {}", page.display(), target.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn no_page_cites_a_file_the_repository_does_not_have() {
    for page in pages() {
        let text = std::fs::read_to_string(&page).expect("read page");
        assert!(!text.contains("DESIGN.md"), "{} cites DESIGN.md, which is not in the repository", page.display());
    }
}

#[test]
fn the_readme_is_the_front_door() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    for must in ["scripts/quickstart.sh", "scripts/test.sh", "docs/architecture.md", "docs/scenario-reference.md"] {
        assert!(readme.contains(must), "README.md does not mention {must}");
    }
    let lines = readme.lines().count();
    assert!(lines < 250, "README.md has {lines} lines: details belong in docs/");
}

/// The names under `[dependencies]` (and `[build-dependencies]`) of a
/// member's Cargo.toml.
fn dependencies(member: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join(member).join("Cargo.toml")).expect("Cargo.toml");
    let mut section = String::new();
    let mut out = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        if (section == "[dependencies]" || section == "[build-dependencies]") && !line.starts_with('#') {
            if let Some((name, _)) = line.split_once('=') {
                let name = name.trim().trim_end_matches(".workspace").trim();
                if !name.is_empty() {
                    out.insert(name.to_string());
                }
            }
        }
    }
    out
}

/// docs/architecture.md "Which crate may use which", held against the code.
#[test]
fn crates_depend_only_as_the_architecture_says() {
    let common = dependencies("common");
    for ours in ["agent", "coordinator", "testkit", "bench"] {
        assert!(!common.contains(ours), "common depends on {ours}");
    }
    assert!(!dependencies("agent").contains("coordinator"), "agent depends on coordinator");
    // Broker clients live in the crate that drives brokers (and in tools).
    for member in ["common", "coordinator"] {
        let deps = dependencies(member);
        for client in ["pulsar", "danube-client", "danube-core"] {
            assert!(!deps.contains(client), "{member} depends on the broker client {client}");
        }
    }
    assert!(dependencies("agent").contains("pulsar") && dependencies("agent").contains("danube-client"));
    let arch = std::fs::read_to_string(repo().join("docs/architecture.md")).expect("architecture");
    assert!(arch.contains("Which crate may use which"), "the rules are written down");
}
