//! The plan's YAML, read by snapferry itself into a tree that remembers where everything is.
//!
//! serde_yaml stops at the first problem, points a duplicate key at the start of its mapping,
//! answers tags in its own vocabulary ("a YAML tag starting with '!'") and has no say on how
//! deep a document nests. Reading saphyr-parser's events into a [`Node`] tree here lets
//! [`read`] report, all at once and each at its own line and column: a key written twice (at
//! the second one), a tag, a key that is a list or mapping, a second document. It refuses,
//! fast and with a position, what would make any later pass slow or unbounded: nesting deeper
//! than [`MAX_DEPTH`] (saphyr caps flow nesting itself, at 255 levels) and aliases that copy
//! more than [`MAX_ALIAS_NODES`] nodes (a "billion laughs" document).
//!
//! The tree keeps every scalar's text and whether it was quoted; turning it into typed values
//! is [`crate::convert`]'s job, guided by the plan's schema.

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Tag};

use crate::error::{Finding, Located, Problem};
use crate::location::{ByteSpan, LineIndex};

/// Deepest nesting of mappings and sequences a plan may have. A plan needs about ten levels
/// (an access policy's condition inside a replication's target); the limit only stops
/// documents that would exhaust time or stack later on.
pub const MAX_DEPTH: usize = 64;

/// Most nodes that aliases may copy into the document, all aliases together.
pub const MAX_ALIAS_NODES: usize = 50_000;

/// One value of the document and where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: ByteSpan,
    pub value: Value,
}

/// The shape of a value as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar's text; `plain` when written without quotes or block style (so `1`, `true`
    /// and `null` may mean a number, a boolean or nothing).
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Mapping),
}

/// Entries in document order, each key once (a repeated key is a problem), found by key in
/// constant time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mapping {
    entries: Vec<Entry>,
    by_key: HashMap<String, usize>,
}

impl Mapping {
    /// The entry of `key`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.by_key.get(key).map(|&i| &self.entries[i])
    }

    /// Adds an entry, or returns the first one with the same key.
    fn insert(&mut self, entry: Entry) -> Result<(), &Entry> {
        match self.by_key.get(&entry.key) {
            Some(&first) => Err(&self.entries[first]),
            None => {
                self.by_key.insert(entry.key.clone(), self.entries.len());
                self.entries.push(entry);
                Ok(())
            }
        }
    }
}

impl std::ops::Deref for Mapping {
    type Target = [Entry];

    fn deref(&self) -> &[Entry] {
        &self.entries
    }
}

impl std::ops::DerefMut for Mapping {
    /// Entries may be changed in place (their spans), never their keys.
    fn deref_mut(&mut self) -> &mut [Entry] {
        &mut self.entries
    }
}

/// One key of a mapping and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_span: ByteSpan,
    pub value: Node,
}

impl Node {
    /// Nodes in this subtree, itself included.
    fn count(&self) -> usize {
        1 + match &self.value {
            Value::Scalar { .. } => 0,
            Value::Seq(items) => items.iter().map(Node::count).sum(),
            Value::Map(entries) => entries.iter().map(|e| e.value.count()).sum(),
        }
    }
}

/// What was read: the tree (absent when reading had to stop) and every problem found.
#[derive(Debug, Default)]
pub struct Read {
    pub root: Option<Node>,
    pub problems: Vec<Located>,
}

/// A collection being read.
enum Frame {
    Seq {
        start: usize,
        path: String,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        start: usize,
        path: String,
        anchor: usize,
        mapping: Mapping,
        /// The key whose value comes next; `Some(None)` for a key that is not a scalar
        /// (reported; its value is read and dropped).
        key: Option<Option<(String, ByteSpan)>>,
    },
}

impl Frame {
    /// The dotted path of the value about to be read in this collection.
    fn child_path(&self) -> String {
        match self {
            Frame::Seq { path, items, .. } => format!("{path}[{}]", items.len()),
            Frame::Map {
                path,
                key: Some(Some((key, _))),
                ..
            } => join(path, key),
            Frame::Map { path, .. } => path.clone(),
        }
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// Reads `text` into a tree, collecting every problem found on the way.
pub fn read(text: &str) -> Read {
    Reader::new(text).run()
}

struct Reader<'t> {
    text: &'t str,
    /// Byte offset of each character index, when the text is not ASCII.
    to_byte: Option<Vec<usize>>,
    lines: LineIndex<'t>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    /// Anchors (by id) whose node is still being read: an alias to one is a cycle.
    open_anchors: HashSet<usize>,
    copied: usize,
    out: Read,
}

/// Why reading stops before the end.
struct Stop;

impl<'t> Reader<'t> {
    fn new(text: &'t str) -> Self {
        let to_byte = (!text.is_ascii()).then(|| {
            let mut v: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
            v.push(text.len());
            v
        });
        Reader {
            text,
            to_byte,
            lines: LineIndex::new(text),
            stack: Vec::new(),
            anchors: HashMap::new(),
            open_anchors: HashSet::new(),
            copied: 0,
            out: Read::default(),
        }
    }

    fn byte(&self, chars: usize) -> usize {
        match &self.to_byte {
            None => chars.min(self.text.len()),
            Some(v) => v.get(chars).copied().unwrap_or(self.text.len()),
        }
    }

    fn span(&self, span: &saphyr_parser::Span) -> ByteSpan {
        let start = self.byte(span.start.index());
        let end = self.byte(span.end.index()).max(start);
        ByteSpan {
            offset: start,
            len: end - start,
        }
    }

    fn problem(&mut self, problem: Problem, path: String, span: ByteSpan, at_key: bool) {
        self.out.problems.push(Located {
            finding: Finding::Ready(problem),
            path,
            span,
            at_key,
        });
    }

    fn run(mut self) -> Read {
        let mut documents = 0;
        let mut parser = Parser::new_from_str(self.text);
        while let Some(item) = parser.next_event() {
            let (event, span) = match item {
                Ok(pair) => pair,
                Err(e) => {
                    self.scan_error(&e);
                    self.out.root = None;
                    break;
                }
            };
            let span = self.span(&span);
            let step = match event {
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        self.problem(Problem::SecondDocument, String::new(), span, false);
                        break;
                    }
                    Ok(())
                }
                Event::Scalar(text, style, anchor, tag) => {
                    let quoted = !matches!(style, ScalarStyle::Plain);
                    let plain = !quoted && !self.string_tag(tag.as_deref(), span);
                    let node = Node {
                        span,
                        value: Value::Scalar {
                            text: text.into_owned(),
                            plain,
                        },
                    };
                    self.complete(node, anchor)
                }
                Event::Alias(id) => self.alias(id, span),
                Event::SequenceStart(anchor, tag) => self.start(span, anchor, tag.as_deref(), true),
                Event::MappingStart(anchor, tag) => self.start(span, anchor, tag.as_deref(), false),
                Event::SequenceEnd | Event::MappingEnd => {
                    let end = span.offset + span.len;
                    let (node, anchor) = match self.stack.pop().expect("an end has a start") {
                        Frame::Seq {
                            start,
                            anchor,
                            items,
                            ..
                        } => (
                            Node {
                                span: ByteSpan {
                                    offset: start,
                                    len: end.max(start) - start,
                                },
                                value: Value::Seq(items),
                            },
                            anchor,
                        ),
                        Frame::Map {
                            start,
                            anchor,
                            mapping,
                            ..
                        } => (
                            Node {
                                span: ByteSpan {
                                    offset: start,
                                    len: end.max(start) - start,
                                },
                                value: Value::Map(mapping),
                            },
                            anchor,
                        ),
                    };
                    self.complete(node, anchor)
                }
                Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {
                    Ok(())
                }
            };
            if step.is_err() {
                self.out.root = None;
                break;
            }
        }
        self.out
    }

    /// A mapping or sequence begins.
    fn start(
        &mut self,
        span: ByteSpan,
        anchor: usize,
        tag: Option<&Tag>,
        sequence: bool,
    ) -> Result<(), Stop> {
        let path = self.next_path();
        if let Some(tag) = tag {
            self.tag(tag, path.clone(), span);
        }
        if self.stack.len() >= MAX_DEPTH {
            let at = ByteSpan {
                offset: span.offset,
                len: 1,
            };
            self.problem(Problem::TooDeep { limit: MAX_DEPTH }, path, at, false);
            return Err(Stop);
        }
        if anchor != 0 {
            self.open_anchors.insert(anchor);
        }
        self.stack.push(if sequence {
            Frame::Seq {
                start: span.offset,
                path,
                anchor,
                items: Vec::new(),
            }
        } else {
            Frame::Map {
                start: span.offset,
                path,
                anchor,
                mapping: Mapping::default(),
                key: None,
            }
        });
        Ok(())
    }

    /// A syntax error, or saphyr's own nesting limit, at its position.
    fn scan_error(&mut self, e: &ScanError) {
        let mut offset = self.byte(e.marker().index());
        let problem = if e.info() == "recursion limit exceeded" {
            Problem::TooDeep { limit: MAX_DEPTH }
        } else {
            let mut message = e.info().to_owned();
            if message.contains("tab") && self.text[..offset].ends_with('\t') {
                // The parser stops after the tab; the tab is what to fix.
                offset -= 1;
            }
            // Inside brackets, the error is often far from the bracket left open.
            if let Some(start) = self.stack.last().map(|f| match f {
                Frame::Seq { start, .. } | Frame::Map { start, .. } => *start,
            }) && let Some(bracket @ ('[' | '{')) = self.text[start..].chars().next()
            {
                let (line, column) = self.lines.line_col(start);
                message.push_str(&format!(
                    " (inside the `{bracket}` opened on line {line}, column {column})"
                ));
            }
            Problem::Syntax { message }
        };
        let len = usize::from(offset < self.text.len());
        self.problem(problem, String::new(), ByteSpan { offset, len }, false);
    }

    /// The path of the value about to be read.
    fn next_path(&self) -> String {
        self.stack.last().map(Frame::child_path).unwrap_or_default()
    }

    /// `!!str` makes a scalar a string; any other tag is reported. Returns whether it was `!!str`.
    fn string_tag(&mut self, tag: Option<&Tag>, span: ByteSpan) -> bool {
        let Some(tag) = tag else { return false };
        if tag.is_yaml_core_schema() && tag.suffix == "str" {
            return true;
        }
        let path = self.next_path();
        self.tag(tag, path, span);
        false
    }

    fn tag(&mut self, tag: &Tag, path: String, span: ByteSpan) {
        let written = if tag.is_yaml_core_schema() {
            format!("!!{}", tag.suffix)
        } else if tag.handle == "!" {
            format!("!{}", tag.suffix)
        } else {
            format!("{}{}", tag.handle, tag.suffix)
        };
        let span = ByteSpan {
            offset: span.offset,
            len: 0,
        };
        self.problem(Problem::Tag { tag: written }, path, span, false);
    }

    fn alias(&mut self, id: usize, span: ByteSpan) -> Result<(), Stop> {
        let path = self.next_path();
        if self.open_anchors.contains(&id) {
            self.problem(Problem::RecursiveAlias, path, span, false);
            return Err(Stop);
        }
        // saphyr refuses an alias to an anchor it has not seen, so the anchor exists.
        let Some(target) = self.anchors.get(&id) else {
            self.problem(
                Problem::Syntax {
                    message: "alias to an unknown anchor".into(),
                },
                path,
                span,
                false,
            );
            return Err(Stop);
        };
        self.copied += target.count();
        if self.copied > MAX_ALIAS_NODES {
            self.problem(
                Problem::AliasExpansion {
                    limit: MAX_ALIAS_NODES,
                },
                path,
                span,
                false,
            );
            return Err(Stop);
        }
        // The copy is placed where the alias is written: problems in it point at the alias.
        let mut node = target.clone();
        relocate(&mut node, span);
        self.complete(node, 0)
    }

    /// A finished node: the root, an item, a key or a value.
    fn complete(&mut self, node: Node, anchor: usize) -> Result<(), Stop> {
        if anchor != 0 {
            self.open_anchors.remove(&anchor);
            self.anchors.insert(anchor, node.clone());
        }
        let duplicate = match self.stack.last_mut() {
            None => {
                self.out.root = Some(node);
                None
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                None
            }
            Some(Frame::Map {
                key: key @ None,
                path,
                ..
            }) => {
                if let Value::Scalar { text, .. } = node.value {
                    *key = Some(Some((text, node.span)));
                } else {
                    *key = Some(None);
                    let path = path.clone();
                    self.problem(Problem::ComplexKey, path, node.span, true);
                }
                None
            }
            Some(Frame::Map {
                key: key @ Some(_),
                mapping,
                path,
                ..
            }) => match key.take().flatten() {
                None => None,
                Some((name, key_span)) => {
                    let entry = Entry {
                        key: name,
                        key_span,
                        value: node,
                    };
                    match mapping.insert(entry) {
                        Ok(()) => None,
                        Err(first) => Some((
                            join(path, &first.key),
                            first.key.clone(),
                            key_span,
                            first.key_span,
                        )),
                    }
                }
            },
        };
        if let Some((path, key, span, first)) = duplicate {
            let first_line = self.lines.line_col(first.offset).0;
            self.problem(Problem::DuplicateKey { key, first_line }, path, span, true);
        }
        Ok(())
    }
}

/// Points every span of a copied subtree at the alias that copied it.
fn relocate(node: &mut Node, at: ByteSpan) {
    node.span = at;
    match &mut node.value {
        Value::Scalar { .. } => {}
        Value::Seq(items) => items.iter_mut().for_each(|n| relocate(n, at)),
        Value::Map(entries) => entries.iter_mut().for_each(|e| {
            e.key_span = at;
            relocate(&mut e.value, at);
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<(String, String, (usize, usize))> {
        let lines = LineIndex::new(text);
        read(text)
            .problems
            .into_iter()
            .map(|p| {
                let Finding::Ready(problem) = p.finding else {
                    unreachable!()
                };
                (p.path, problem.to_string(), lines.line_col(p.span.offset))
            })
            .collect()
    }

    fn scalar(text: &str, plain: bool) -> Value {
        Value::Scalar {
            text: text.into(),
            plain,
        }
    }

    #[test]
    fn reads_keys_values_and_their_positions() {
        let text = "a: 1\nb:\n  - 'x'\n  - y\n";
        let root = read(text).root.unwrap();
        let Value::Map(entries) = root.value else {
            panic!()
        };
        assert_eq!(entries[0].key, "a");
        assert_eq!(entries[0].value.value, scalar("1", true));
        let Value::Seq(items) = &entries[1].value.value else {
            panic!()
        };
        assert_eq!(items[0].value, scalar("x", false));
        assert_eq!(&text[items[1].span.offset..][..1], "y");
    }

    #[test]
    fn a_duplicate_key_points_at_its_second_occurrence() {
        let text = "source:\n  domain: a\n  region: r\n  domain: b\n";
        assert_eq!(
            problems(text),
            [(
                "source.domain".into(),
                "`domain` is written twice in this mapping (first on line 2)".into(),
                (4, 3)
            )]
        );
        // The first value is kept.
        let root = read(text).root.unwrap();
        let Value::Map(top) = root.value else {
            panic!()
        };
        let Value::Map(source) = &top[0].value.value else {
            panic!()
        };
        assert_eq!(source.len(), 2);
        assert_eq!(source[0].value.value, scalar("a", true));
    }

    #[test]
    fn tags_other_than_str_are_reported_in_the_plans_words() {
        let text = "bucket: !RawBucket {name: x}\nname: !!str 123\nversion: !!int 1\n";
        let found = problems(text);
        assert_eq!(
            found,
            [
                (
                    "bucket".into(),
                    "a YAML tag (`!RawBucket`) has no meaning in a plan".into(),
                    (1, 9)
                ),
                (
                    "version".into(),
                    "a YAML tag (`!!int`) has no meaning in a plan".into(),
                    (3, 10)
                ),
            ]
        );
        let Value::Map(top) = read(text).root.unwrap().value else {
            panic!()
        };
        assert_eq!(top[1].value.value, scalar("123", false), "!!str quotes");
    }

    #[test]
    fn nesting_is_limited_in_block_and_flow_style() {
        let block = "a:\n".to_owned() + &"- ".repeat(10_000) + "x\n";
        let read_block = read(&block);
        assert!(read_block.root.is_none());
        assert_eq!(read_block.problems.len(), 1);
        assert_eq!(read_block.problems[0].span.offset, 3 + 2 * (MAX_DEPTH - 1));

        let flow = "a: ".to_owned() + &"[".repeat(100_000) + &"]".repeat(100_000);
        let found = problems(&flow);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].1.contains("nested more than 64 levels"),
            "{found:?}"
        );
    }

    #[test]
    fn aliases_are_copied_within_a_budget() {
        let text = "a: &x {k: v}\nb: *x\n";
        let Value::Map(top) = read(text).root.unwrap().value else {
            panic!()
        };
        let Value::Map(copy) = &top[1].value.value else {
            panic!()
        };
        assert_eq!(
            (copy[0].key.as_str(), &copy[0].value.value),
            ("k", &scalar("v", true))
        );
        // The copy is placed at the alias.
        assert_eq!(copy[0].value.span, top[1].value.span);
        assert_eq!(&text[top[1].value.span.offset..][..2], "*x");

        // Ten levels of ten aliases each: 10^10 nodes if expanded.
        let mut bomb = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            bomb.push_str(&format!(
                "l{i}: &l{i} [*l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}]\n"
            ));
        }
        let read_bomb = read(&bomb);
        assert!(read_bomb.root.is_none());
        let found = problems(&bomb);
        assert_eq!(found.len(), 1);
        assert!(found[0].1.contains("aliases copy more than"), "{found:?}");
    }

    #[test]
    fn keys_that_are_collections_and_second_documents_are_reported() {
        assert_eq!(
            problems("? [a]\n: 1\nb: 2\n---\nc: 3\n")
                .into_iter()
                .map(|p| p.2)
                .collect::<Vec<_>>(),
            [(1, 3), (4, 1)]
        );
    }

    #[test]
    fn a_syntax_error_stops_reading_at_its_position() {
        let found = problems("a: [1, 2\nb: 3\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "");
    }
}
