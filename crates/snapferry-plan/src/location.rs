//! Where each key and value of the YAML document is, so that a rule broken by
//! a value (found after serde has already turned the text into structs) can
//! still point at its line and column. Built from the marker-carrying events of
//! `saphyr-parser`; paths look like `replications[1].target.domain`.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

/// A byte range in the plan text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSpan {
    pub offset: usize,
    pub len: usize,
}

/// Map from a dotted path to the spans of its key and value.
#[derive(Debug, Default)]
pub struct LocationIndex {
    values: HashMap<String, ByteSpan>,
    keys: HashMap<String, ByteSpan>,
    /// Every mapping key in document order: (path of its mapping, key, span).
    key_list: Vec<(String, String, ByteSpan)>,
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

fn child(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

impl LocationIndex {
    /// Indexes `text`. A document that does not parse yields what was seen
    /// before the error (serde reports the syntax error itself).
    pub fn build(text: &str) -> Self {
        let to_byte: Option<Vec<usize>> = if text.is_ascii() {
            None
        } else {
            let mut v: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
            v.push(text.len());
            Some(v)
        };
        let byte = |chars: usize| match &to_byte {
            None => chars.min(text.len()),
            Some(v) => v.get(chars).copied().unwrap_or(text.len()),
        };
        let mut index = LocationIndex::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut open: Vec<(String, usize)> = Vec::new();

        // The path of the value about to be read, and whether it is a mapping key.
        fn next_path(stack: &[Frame]) -> (String, bool) {
            match stack.last() {
                None => (String::new(), false),
                Some(Frame::Map { path, key: None }) => (path.clone(), true),
                Some(Frame::Map { path, key: Some(k) }) => (child(path, k), false),
                Some(Frame::Seq { path, index }) => (format!("{path}[{index}]"), false),
            }
        }
        fn advance(stack: &mut [Frame]) {
            match stack.last_mut() {
                Some(Frame::Map { key, .. }) => *key = None,
                Some(Frame::Seq { index, .. }) => *index += 1,
                None => {}
            }
        }

        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            let start = byte(span.start.index());
            let end = byte(span.end.index()).max(start);
            match event {
                Event::Scalar(value, ..) => {
                    let (path, is_key) = next_path(&stack);
                    if is_key {
                        let key_path = child(&path, &value);
                        let key_span = ByteSpan {
                            offset: start,
                            len: end - start,
                        };
                        index.keys.insert(key_path, key_span);
                        index
                            .key_list
                            .push((path.clone(), value.to_string(), key_span));
                        if let Some(Frame::Map { key, .. }) = stack.last_mut() {
                            *key = Some(value.into_owned());
                        }
                    } else {
                        index.values.insert(
                            path,
                            ByteSpan {
                                offset: start,
                                len: end - start,
                            },
                        );
                        advance(&mut stack);
                    }
                }
                Event::Alias(_) => {
                    let (path, is_key) = next_path(&stack);
                    if is_key {
                        if let Some(Frame::Map { key, .. }) = stack.last_mut() {
                            *key = Some("*".into());
                        }
                    } else {
                        index.values.insert(
                            path,
                            ByteSpan {
                                offset: start,
                                len: end - start,
                            },
                        );
                        advance(&mut stack);
                    }
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let (path, is_key) = next_path(&stack);
                    let path = if is_key { child(&path, "?") } else { path };
                    open.push((path.clone(), start));
                    if matches!(event, Event::MappingStart(..)) {
                        stack.push(Frame::Map { path, key: None });
                    } else {
                        stack.push(Frame::Seq { path, index: 0 });
                    }
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                    if let Some((path, begin)) = open.pop() {
                        index.values.insert(
                            path,
                            ByteSpan {
                                offset: begin,
                                len: end.max(begin) - begin,
                            },
                        );
                    }
                    advance(&mut stack);
                }
                _ => {}
            }
        }
        index
    }

    /// The span of the value at `path`, or of the nearest ancestor that is written.
    pub fn value(&self, path: &str) -> ByteSpan {
        let mut path = path;
        loop {
            if let Some(span) = self.values.get(path) {
                return *span;
            }
            if let Some(span) = self.keys.get(path) {
                return *span;
            }
            match parent(path) {
                Some(p) => path = p,
                None => return ByteSpan { offset: 0, len: 0 },
            }
        }
    }

    /// The span of the key at `path` (falls back to its value).
    pub fn key(&self, path: &str) -> ByteSpan {
        self.keys
            .get(path)
            .copied()
            .unwrap_or_else(|| self.value(path))
    }

    /// Every mapping key in document order: (path of its mapping, key, span of the key).
    pub fn keys(&self) -> impl Iterator<Item = (&str, &str, ByteSpan)> {
        self.key_list
            .iter()
            .map(|(parent, key, span)| (parent.as_str(), key.as_str(), *span))
    }

    /// Whether `path` is written in the document.
    pub fn contains(&self, path: &str) -> bool {
        self.values.contains_key(path) || self.keys.contains_key(path)
    }
}

fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Byte offset of a 1-based line and column (in characters).
pub fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let line_text = &text[start..];
    let within = line_text
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(line_text.len(), |(b, _)| b);
    start + within
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
    fn handles_non_ascii() {
        let doc = "name: é\nregion: x\n";
        let idx = LocationIndex::build(doc);
        let span = idx.value("region");
        assert_eq!(&doc[span.offset..span.offset + span.len], "x");
    }

    #[test]
    fn offsets_round_trip() {
        let off = offset_of(DOC, 3, 11);
        assert_eq!(&DOC[off..off + 2], "ab");
        assert_eq!(line_col(DOC, off), (3, 11));
    }
}
