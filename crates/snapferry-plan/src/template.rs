//! Snapshot name templates: `{name}`, `{date}` and `{datetime}`. A template is
//! resolved once, with a time the caller passes in (never the clock), and the
//! result is pinned in the state so a resumed apply uses the same snapshot.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text copied as is.
    Literal(String),
    /// `{name}`: the replication's name.
    Name,
    /// `{date}`: `YYYY-MM-DD` in UTC.
    Date,
    /// `{datetime}`: `YYYYMMDDtHHMMSSz` in UTC, lowercase so it is a valid snapshot name.
    Datetime,
}

/// A parsed name template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

/// Why a template was refused; offsets are byte offsets into the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown placeholder {{{placeholder}}}")]
    UnknownPlaceholder { placeholder: String, offset: usize },
    #[error("`{{` at offset {offset} is never closed")]
    Unclosed { offset: usize },
    #[error("`}}` at offset {offset} closes nothing")]
    UnexpectedClose { offset: usize },
}

impl TemplateError {
    /// Byte offset of the problem inside the template text.
    pub fn offset(&self) -> usize {
        match self {
            TemplateError::UnknownPlaceholder { offset, .. }
            | TemplateError::Unclosed { offset }
            | TemplateError::UnexpectedClose { offset } => *offset,
        }
    }
}

impl Template {
    /// Parses a template; placeholders are `{name}`, `{date}` and `{datetime}`.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text.char_indices().peekable();
        while let Some((i, c)) = rest.next() {
            match c {
                '{' => {
                    let close = text[i..]
                        .find('}')
                        .ok_or(TemplateError::Unclosed { offset: i })?;
                    let inner = &text[i + 1..i + close];
                    if inner.contains('{') {
                        return Err(TemplateError::Unclosed { offset: i });
                    }
                    let part = match inner {
                        "name" => Part::Name,
                        "date" => Part::Date,
                        "datetime" => Part::Datetime,
                        other => {
                            return Err(TemplateError::UnknownPlaceholder {
                                placeholder: other.to_owned(),
                                offset: i,
                            });
                        }
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(part);
                    while rest.next_if(|(j, _)| *j <= i + close).is_some() {}
                }
                '}' => return Err(TemplateError::UnexpectedClose { offset: i }),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template {
            text: text.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed parts, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Whether the result depends on the time (and so must be pinned).
    pub fn is_time_dependent(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Date | Part::Datetime))
    }

    /// Resolves the template for replication `name` at time `at`.
    pub fn resolve(&self, name: &str, at: DateTime<Utc>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Name => out.push_str(name),
                Part::Date => out.push_str(&at.format("%Y-%m-%d").to_string()),
                Part::Datetime => out.push_str(&at.format("%Y%m%dt%H%M%Sz").to_string()),
            }
        }
        out
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn resolves_with_the_given_time() {
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 5, 42, 0).unwrap();
        let t = Template::parse("{name}-{datetime}").unwrap();
        assert_eq!(t.resolve("prod", at), "prod-20261125t054200z");
        let t = Template::parse("staging-{date}").unwrap();
        assert_eq!(t.resolve("x", at), "staging-2026-11-25");
        assert!(t.is_time_dependent());
        assert!(!Template::parse("fixed").unwrap().is_time_dependent());
    }

    #[test]
    fn refuses_bad_placeholders() {
        assert_eq!(
            Template::parse("a-{time}").unwrap_err(),
            TemplateError::UnknownPlaceholder {
                placeholder: "time".into(),
                offset: 2
            }
        );
        assert_eq!(
            Template::parse("a-{name").unwrap_err(),
            TemplateError::Unclosed { offset: 2 }
        );
        assert_eq!(
            Template::parse("a}").unwrap_err(),
            TemplateError::UnexpectedClose { offset: 1 }
        );
        assert_eq!(
            Template::parse("{na{me}").unwrap_err(),
            TemplateError::Unclosed { offset: 0 }
        );
    }
}
