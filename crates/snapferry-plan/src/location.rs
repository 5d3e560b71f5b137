//! Where each key and value of the YAML document is, so that a rule broken by
//! a value (found after the text has become structs) can still point at its line
//! and column. Paths look like `replications[1].target.domain` and are followed
//! through the tree [`crate::document`] reads, a hash lookup per mapping, so
//! nothing is built per key of a large file. [`LineIndex`] turns byte offsets into
//! lines and columns in logarithmic time.

use crate::document::{self, Node, Value};

/// A byte range in the plan text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSpan {
    pub offset: usize,
    pub len: usize,
}

/// Finds the spans of the key and value at a dotted path.
#[derive(Debug, Default)]
pub struct LocationIndex {
    root: Option<Node>,
}

/// How far a path was followed: the deepest node reached, its key's span when it is the
/// value of a mapping entry, and whether the whole path was found.
struct Reached<'a> {
    node: &'a Node,
    key: Option<ByteSpan>,
    whole: bool,
}

impl LocationIndex {
    /// Indexes `text`. A document that does not read yields no positions.
    pub fn build(text: &str) -> Self {
        LocationIndex {
            root: document::read(text).root,
        }
    }

    /// Indexes a document already read.
    pub(crate) fn of(root: Node) -> Self {
        LocationIndex { root: Some(root) }
    }

    fn follow(&self, path: &str) -> Option<Reached<'_>> {
        let mut at = Reached {
            node: self.root.as_ref()?,
            key: None,
            whole: true,
        };
        let mut rest = path;
        while !rest.is_empty() {
            let next = if let Some(after) = rest.strip_prefix('[') {
                let Value::Seq(items) = &at.node.value else {
                    break;
                };
                let close = after.find(']').unwrap_or(after.len());
                let item = after[..close]
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i));
                item.map(|node| {
                    let tail = after.get(close + 1..).unwrap_or("");
                    (node, None, tail)
                })
            } else {
                let Value::Map(mapping) = &at.node.value else {
                    break;
                };
                let rest_key = rest.strip_prefix('.').unwrap_or(rest);
                // A key may hold dots (`rest.action.multi.allow_explicit_index`): the
                // longest written key that the path continues with wins.
                let mut ends: Vec<usize> =
                    rest_key.match_indices(['.', '[']).map(|(i, _)| i).collect();
                ends.push(rest_key.len());
                ends.iter().rev().find_map(|&end| {
                    mapping
                        .get(&rest_key[..end])
                        .map(|e| (&e.value, Some(e.key_span), &rest_key[end..]))
                })
            };
            match next {
                Some((node, key, tail)) => {
                    at = Reached {
                        node,
                        key,
                        whole: true,
                    };
                    rest = tail;
                }
                None => break,
            }
        }
        at.whole = rest.is_empty();
        Some(at)
    }

    /// The span of the value at `path`, or of the nearest ancestor that is written.
    pub fn value(&self, path: &str) -> ByteSpan {
        self.follow(path)
            .map_or(ByteSpan { offset: 0, len: 0 }, |r| r.node.span)
    }

    /// The span of the key at `path` (falls back to its value).
    pub fn key(&self, path: &str) -> ByteSpan {
        match self.follow(path) {
            Some(Reached {
                key: Some(key),
                whole: true,
                ..
            }) => key,
            Some(r) => r.node.span,
            None => ByteSpan { offset: 0, len: 0 },
        }
    }

    /// Whether `path` is written in the document.
    pub fn contains(&self, path: &str) -> bool {
        self.follow(path).is_some_and(|r| r.whole)
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    LineIndex::new(text).line_col(offset)
}

/// The start of every line of a text, for turning many offsets into lines and columns.
#[derive(Debug, Clone)]
pub struct LineIndex<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    pub fn new(text: &'t str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        (line, self.text[start..offset].chars().count() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str =
        "name: x\nsource:\n  domain: ab\nreplications:\n  - name: one\n    target: {domain: t1}\n";

    #[test]
    fn finds_values_and_keys() {
        let idx = LocationIndex::build(DOC);
        let span = idx.value("source.domain");
        assert_eq!(&DOC[span.offset..span.offset + span.len], "ab");
        assert_eq!(line_col(DOC, span.offset), (3, 11));
        let span = idx.value("replications[0].target.domain");
        assert_eq!(&DOC[span.offset..span.offset + span.len], "t1");
        let span = idx.key("replications[0].name");
        assert_eq!(&DOC[span.offset..span.offset + span.len], "name");
        // Missing paths fall back to the nearest written ancestor.
        assert_eq!(idx.value("source.region"), idx.value("source"));
    }

    #[test]
    fn keys_may_hold_dots() {
        let doc = "advanced_options:\n  rest.action.multi.allow_explicit_index: x\n  rest: { action: y }\n";
        let idx = LocationIndex::build(doc);
        let span = idx.value("advanced_options.rest.action.multi.allow_explicit_index");
        assert_eq!(&doc[span.offset..span.offset + span.len], "x");
        let span = idx.value("advanced_options.rest.action");
        assert_eq!(&doc[span.offset..span.offset + span.len], "y");
        assert!(!idx.contains("advanced_options.rest.other"));
    }

    #[test]
    fn handles_non_ascii() {
        let doc = "name: é\nregion: x\n";
        let idx = LocationIndex::build(doc);
        let span = idx.value("region");
        assert_eq!(&doc[span.offset..span.offset + span.len], "x");
    }

    #[test]
    fn lines_and_columns_count_characters() {
        let text = "a: é\nbé: x\n";
        let lines = LineIndex::new(text);
        assert_eq!(lines.line_col(0), (1, 1));
        assert_eq!(lines.line_col(text.find('x').unwrap()), (2, 5));
        assert_eq!(lines.line_col(text.len()), (3, 1));
        // Inside a character: the character's own column.
        assert_eq!(lines.line_col(4), (1, 4));
    }
}
