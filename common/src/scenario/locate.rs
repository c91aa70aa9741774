//! Maps a key path (`producers[1].rate`) to the line and column where it is
//! written, so every validation error can name its place in the file. Built
//! from yaml-rust2's event stream (which carries positions and never expands
//! aliases), independently of the serde model.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

#[derive(Debug, Default)]
pub struct LineIndex {
    positions: HashMap<String, (usize, usize)>,
}

enum Frame {
    Map { path: String, pending_key: Option<String>, expect_key: bool },
    Seq { path: String, next: usize },
}

struct Builder {
    stack: Vec<Frame>,
    positions: HashMap<String, (usize, usize)>,
    depth_limit_hit: bool,
}

const MAX_DEPTH: usize = 256;
const MAX_ENTRIES: usize = 200_000;

impl Builder {
    /// The path of the node that starts now, registering its position.
    fn node_path(&mut self, mark: Marker) -> Option<String> {
        let pos = (mark.line(), mark.col() + 1);
        let path = match self.stack.last_mut() {
            None => String::new(),
            Some(Frame::Seq { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                p
            }
            Some(Frame::Map { path, pending_key, expect_key }) => {
                if *expect_key {
                    return None; // a key, handled by the caller
                }
                *expect_key = true;
                let key = pending_key.take().unwrap_or_default();
                if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                }
            }
        };
        if self.positions.len() < MAX_ENTRIES {
            self.positions.entry(path.clone()).or_insert(pos);
        }
        Some(path)
    }

    fn key(&mut self, key: String, mark: Marker) -> bool {
        if let Some(Frame::Map { path, pending_key, expect_key }) = self.stack.last_mut() {
            if *expect_key {
                let full = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                if self.positions.len() < MAX_ENTRIES {
                    self.positions.entry(full).or_insert((mark.line(), mark.col() + 1));
                }
                *pending_key = Some(key);
                *expect_key = false;
                return true;
            }
        }
        false
    }
}

#[allow(clippy::collapsible_match)]
impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                if !self.key(value, mark) {
                    self.node_path(mark);
                }
            }
            Event::Alias(_) => {
                if !self.key(String::from("<alias>"), mark) {
                    self.node_path(mark);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                // A complex (mapping/sequence) key: index it under a placeholder.
                let path = if self.key(String::from("<complex>"), mark) {
                    String::from("<complex>")
                } else {
                    self.node_path(mark).unwrap_or_default()
                };
                if self.stack.len() >= MAX_DEPTH {
                    self.depth_limit_hit = true;
                }
                self.stack.push(if is_map {
                    Frame::Map { path, pending_key: None, expect_key: true }
                } else {
                    Frame::Seq { path, next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

impl LineIndex {
    /// Indexes `text`; a text that does not parse gives an empty index (the
    /// serde parse reports the syntax error with its own position).
    pub fn build(text: &str) -> LineIndex {
        let mut b = Builder { stack: Vec::new(), positions: HashMap::new(), depth_limit_hit: false };
        let mut parser = Parser::new_from_str(text);
        let _ = parser.load(&mut b, false);
        LineIndex { positions: b.positions }
    }

    /// Line and column (1-based) of `path`, or of its nearest indexed parent.
    pub fn find(&self, path: &str) -> Option<(usize, usize)> {
        let mut p = path;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys() {
        let text =
            "name: x\nbroker:\n  kind: memory\nproducers:\n  - name: a\n    rate: 5\n  - name: b\n    rate: -1\n";
        let idx = LineIndex::build(text);
        assert_eq!(idx.find("name"), Some((1, 1)));
        assert_eq!(idx.find("broker.kind"), Some((3, 3)));
        assert_eq!(idx.find("producers[1].rate"), Some((8, 5)));
        assert_eq!(idx.find("producers[1].missing").map(|p| p.0), Some(7));
        assert_eq!(idx.find("producers[0]").map(|p| p.0), Some(5));
    }

    #[test]
    fn survives_garbage() {
        let idx = LineIndex::build("a: [unclosed\n");
        let _ = idx.find("a");
        let deep = "[".repeat(10_000);
        let _ = LineIndex::build(&deep);
    }
}
