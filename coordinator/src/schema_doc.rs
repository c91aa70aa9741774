//! The scenario reference (`docs/scenario-reference.md`), rendered from the
//! scenario's JSON Schema (`coordinator schema`), which schemars builds from
//! the doc comments on the raw scenario types: one source for the editor
//! schema, `coordinator schema --markdown` and the docs, so they cannot
//! drift (a test compares the committed file with this rendering).
//!
//! Layout: one section per object, named by its path in a scenario file
//! (`broker`, `broker.tls`, `producers[]`, `producers[].batching`, …), each a
//! table of its keys; then the value types (durations, sizes, rates, …).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// The command that writes the reference, named in its header and by the test.
pub const REGENERATE: &str = "cargo run -p coordinator -- schema --markdown > docs/scenario-reference.md";

/// Renders the reference from a JSON Schema as `coordinator schema` prints it.
pub fn render(schema: &Value) -> String {
    let empty = Map::new();
    let defs = schema.get("$defs").and_then(Value::as_object).unwrap_or(&empty);
    let mut doc = Doc { defs, out: String::new(), queue: Vec::new(), done: BTreeMap::new(), values: BTreeSet::new() };
    doc.header(schema);
    doc.queue.push(("(top level)".to_string(), schema.clone()));
    while !doc.queue.is_empty() {
        let (path, node) = doc.queue.remove(0);
        doc.object_section(&path, &node);
    }
    doc.value_types();
    doc.out
}

struct Doc<'a> {
    defs: &'a Map<String, Value>,
    out: String,
    /// Objects still to describe: (path in a scenario file, schema).
    queue: Vec<(String, Value)>,
    /// Object definitions given a section, by the path of that section.
    done: BTreeMap<String, String>,
    /// Non-object definitions referenced (listed under "Value types").
    values: BTreeSet<String>,
}

/// What a key's value is, as the table shows it.
struct Shape {
    label: String,
    optional: bool,
}

impl Doc<'_> {
    fn header(&mut self, schema: &Value) {
        let title = schema.get("title").and_then(Value::as_str).unwrap_or("Scenario");
        let _ = writeln!(self.out, "# Scenario reference: `{title}`\n");
        let _ = writeln!(
            self.out,
            "Generated from the scenario's JSON Schema (`coordinator schema`, built from the doc \
             comments of the scenario types); do not edit by hand. Regenerate with:\n\n```sh\n{REGENERATE}\n```\n"
        );
        if let Some(d) = description(schema) {
            let _ = writeln!(self.out, "{}\n", one_paragraph(d));
        }
        let _ = writeln!(
            self.out,
            "Every key is checked: an unknown key is an error. Durations carry a unit (`30s`, `250ms`).\n"
        );
    }

    fn object_section(&mut self, path: &str, node: &Value) {
        let Some(props) = node.get("properties").and_then(Value::as_object) else { return };
        let required: BTreeSet<&str> =
            node.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let _ = writeln!(self.out, "## `{path}`\n");
        if path != "(top level)" {
            if let Some(d) = description(node) {
                let _ = writeln!(self.out, "{}\n", one_paragraph(d));
            }
        }
        let _ = writeln!(self.out, "| key | type | required | description |\n|---|---|---|---|");
        for (key, prop) in props {
            let child = if path == "(top level)" { key.clone() } else { format!("{path}.{key}") };
            let shape = self.shape(prop, &child);
            let req = if required.contains(key.as_str()) && !shape.optional { "yes" } else { "no" };
            let desc = description(prop).map(cell).unwrap_or_default();
            let _ = writeln!(self.out, "| `{key}` | {} | {req} | {desc} |", shape.label);
        }
        self.out.push('\n');
    }

    /// The label of a property's type; objects met on the way are queued for
    /// their own section under `path`.
    fn shape(&mut self, node: &Value, path: &str) -> Shape {
        if let Some(r) = node.get("$ref").and_then(Value::as_str) {
            return Shape { label: self.reference(r, path), optional: false };
        }
        if let Some(alts) = node.get("anyOf").and_then(Value::as_array) {
            let non_null: Vec<&Value> = alts.iter().filter(|a| !is_null(a)).collect();
            let optional = non_null.len() < alts.len();
            if non_null.len() == 1 {
                let inner = self.shape(non_null[0], path);
                return Shape { label: inner.label, optional: optional || inner.optional };
            }
            let labels: Vec<String> = non_null.iter().map(|a| self.shape(a, path).label).collect();
            return Shape { label: labels.join(" or "), optional };
        }
        if let Some(c) = node.get("const") {
            return Shape { label: format!("`{}`", scalar(c)), optional: false };
        }
        if let Some(values) = node.get("enum").and_then(Value::as_array) {
            let v: Vec<String> = values.iter().map(|v| format!("`{}`", scalar(v))).collect();
            return Shape { label: v.join(" \\| "), optional: false };
        }
        let (ty, optional) = type_of(node);
        match ty.as_str() {
            "array" => {
                let items = node.get("items").cloned().unwrap_or(Value::Null);
                let inner = self.shape(&items, &format!("{path}[]"));
                Shape { label: format!("list of {}", inner.label), optional }
            }
            "object" if node.get("properties").is_some() => {
                self.queue.push((path.to_string(), node.clone()));
                Shape { label: format!("object ([`{path}`](#{}))", anchor(path)), optional }
            }
            "object" => Shape { label: "map".into(), optional },
            _ => Shape { label: bounds(&ty, node), optional },
        }
    }

    fn reference(&mut self, r: &str, path: &str) -> String {
        let name = r.rsplit('/').next().unwrap_or(r).to_string();
        let Some(def) = self.defs.get(&name) else { return name };
        let is_object = def.get("properties").is_some();
        if is_object {
            let first = self.done.entry(name).or_insert_with(|| path.to_string()).clone();
            if first == path {
                self.queue.push((path.to_string(), def.clone()));
            }
            return format!("object ([`{first}`](#{}))", anchor(&first));
        }
        if let Some(values) = def.get("enum").and_then(Value::as_array) {
            let v: Vec<String> = values.iter().map(|v| format!("`{}`", scalar(v))).collect();
            return v.join(" \\| ");
        }
        self.values.insert(name.clone());
        format!("[{}](#{})", value_type_name(&name), anchor(&value_type_name(&name)))
    }

    fn value_types(&mut self) {
        if self.values.is_empty() {
            return;
        }
        let _ = writeln!(self.out, "## Value types\n");
        let names: Vec<String> = self.values.iter().cloned().collect();
        for name in names {
            let Some(def) = self.defs.get(&name) else { continue };
            let _ = writeln!(self.out, "### {}\n", value_type_name(&name));
            if let Some(d) = description(def) {
                let _ = writeln!(self.out, "{}\n", one_paragraph(d));
            }
            if let Some(alts) = def.get("anyOf").and_then(Value::as_array) {
                for a in alts {
                    let form = self.form(a);
                    match description(a) {
                        Some(d) => {
                            let _ = writeln!(self.out, "- {form}: {}", one_paragraph(d));
                        }
                        None => {
                            let _ = writeln!(self.out, "- {form}");
                        }
                    }
                }
                self.out.push('\n');
            }
            if let Some(ex) = def.get("examples").and_then(Value::as_array) {
                let v: Vec<String> = ex.iter().map(|v| format!("`{}`", scalar(v))).collect();
                let _ = writeln!(self.out, "Examples: {}\n", v.join(", "));
            }
        }
    }

    /// One alternative of a value type, in YAML-ish words.
    fn form(&mut self, node: &Value) -> String {
        if let Some(props) = node.get("properties").and_then(Value::as_object) {
            let keys: Vec<String> = props.keys().map(|k| format!("`{k}: …`")).collect();
            return format!("{{{}}}", keys.join(", "));
        }
        self.shape(node, "").label
    }
}

fn is_null(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("null")
}

/// The JSON type of a node, and whether `null` is allowed too.
fn type_of(node: &Value) -> (String, bool) {
    match node.get("type") {
        Some(Value::String(t)) => (t.clone(), false),
        Some(Value::Array(ts)) => {
            let non_null: Vec<&str> = ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect();
            (non_null.join(" or "), non_null.len() < ts.len())
        }
        _ => ("any".into(), false),
    }
}

/// A scalar type with its bounds: `integer (1–100000000)`.
fn bounds(ty: &str, node: &Value) -> String {
    let lo = node.get("minimum").map(|v| format!("≥ {}", scalar(v)));
    let lo_x = node.get("exclusiveMinimum").map(|v| format!("> {}", scalar(v)));
    let hi = node.get("maximum").map(|v| format!("≤ {}", scalar(v)));
    let hi_x = node.get("exclusiveMaximum").map(|v| format!("< {}", scalar(v)));
    let b: Vec<String> = [lo, lo_x, hi, hi_x].into_iter().flatten().collect();
    if b.is_empty() {
        ty.to_string()
    } else {
        format!("{ty} ({})", b.join(", "))
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn description(node: &Value) -> Option<&str> {
    node.get("description").and_then(Value::as_str)
}

/// Doc comments wrap at ~100 columns: one line per paragraph.
fn one_paragraph(d: &str) -> String {
    d.split("\n\n").map(|p| p.split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>().join("\n\n")
}

/// A description inside a table cell: one line, pipes escaped.
fn cell(d: &str) -> String {
    one_paragraph(d).replace("\n\n", "<br>").replace('|', "\\|")
}

/// `RawBroker` -> `broker`-ish names are paths; value types keep their name.
fn value_type_name(def: &str) -> String {
    def.strip_prefix("Raw").unwrap_or(def).to_string()
}

/// GitHub's heading anchor for a heading whose text is `text` in backticks.
fn anchor(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '_' => Some(c),
            'A'..='Z' => Some(c.to_ascii_lowercase()),
            ' ' => Some('-'),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed reference is the rendering of today's schema.
    #[test]
    fn docs_scenario_reference_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/scenario-reference.md");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        let now = render(common::scenario::raw::json_schema().as_value());
        assert!(committed == now, "{} is stale: regenerate it with `{REGENERATE}`", path.display());
    }

    #[test]
    fn every_key_of_the_schema_is_in_the_reference() {
        let schema = common::scenario::raw::json_schema();
        let doc = render(schema.as_value());
        let defs = schema.as_value()["$defs"].as_object().expect("defs");
        for (name, def) in defs {
            for key in def.get("properties").and_then(Value::as_object).into_iter().flat_map(|p| p.keys()) {
                // Keys of objects inside value types (e.g. `zipf`) appear in their forms.
                assert!(doc.contains(&format!("`{key}")), "{name}.{key} missing from the reference");
            }
        }
        for section in ["## `broker`", "## `producers[]`", "## `consumers[]`", "## `phases`", "## Value types"] {
            assert!(doc.contains(section), "no section {section}");
        }
    }
}
