//! The Mustache OpenSearch renders search templates and ingest values with: variables
//! (`{{a.b}}`, `{{{raw}}}`), sections and inverted sections over lists and values, comments, and
//! the server's own functions `{{#toJson}}x{{/toJson}}`, `{{#join}}x{{/join}}` and
//! `{{#url}}..{{/url}}`. Search templates escape values for JSON (the server's default
//! `application/json` content type); ingest templates do not escape at all. General Mustache crates
//! escape for HTML and know none of these functions, hence this small renderer.

use serde_json::Value;

/// How a `{{variable}}` is escaped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Escape {
    Json,
    None,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Var {
        name: String,
        raw: bool,
    },
    Section {
        name: String,
        inverted: bool,
        body: Vec<Node>,
        source: String,
    },
}

/// Parses a template; `Err` names the unclosed or mismatched section.
fn parse(text: &str) -> Result<Vec<Node>, String> {
    let mut stack: Vec<(String, bool, Vec<Node>, usize)> = Vec::new();
    let mut out: Vec<Node> = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    loop {
        let Some(start) = rest.find("{{") else {
            if !rest.is_empty() {
                out.push(Node::Text(rest.to_owned()));
            }
            break;
        };
        if start > 0 {
            out.push(Node::Text(rest[..start].to_owned()));
        }
        let after = &rest[start + 2..];
        let (tag, len, triple) = if let Some(inner) = after.strip_prefix('{') {
            let end = inner.find("}}}").ok_or("Improperly closed variable")?;
            (inner[..end].trim().to_owned(), 2 + 1 + end + 3, true)
        } else {
            let end = after.find("}}").ok_or("Improperly closed variable")?;
            (after[..end].trim().to_owned(), 2 + end + 2, false)
        };
        let tag_start = offset + start;
        let tag_end = tag_start + len;
        match tag.chars().next() {
            _ if triple => out.push(Node::Var {
                name: tag,
                raw: true,
            }),
            Some('!') => {}
            Some('&') => out.push(Node::Var {
                name: tag[1..].trim().to_owned(),
                raw: true,
            }),
            Some('#') | Some('^') => {
                let name = tag[1..].trim().to_owned();
                let parent = std::mem::take(&mut out);
                stack.push((name, tag.starts_with('^'), parent, tag_end));
            }
            Some('/') => {
                let name = tag[1..].trim().to_owned();
                let Some((open, inverted, parent, body_start)) = stack.pop() else {
                    return Err(format!("Mismatched start/end tags: {name} != "));
                };
                if open.split_whitespace().next() != name.split_whitespace().next() {
                    return Err(format!("Mismatched start/end tags: {open} != {name}"));
                }
                let body = std::mem::replace(&mut out, parent);
                let source = text[body_start..tag_start].to_owned();
                out.push(Node::Section {
                    name: open,
                    inverted,
                    body,
                    source,
                });
            }
            _ => out.push(Node::Var {
                name: tag,
                raw: false,
            }),
        }
        rest = &rest[start + len..];
        offset += start + len;
    }
    if let Some((name, ..)) = stack.pop() {
        return Err(format!("Failed to close '{name}' tag"));
    }
    Ok(out)
}

fn lookup<'a>(stack: &[&'a Value], name: &str) -> Option<&'a Value> {
    if name == "." {
        return stack.last().copied();
    }
    let mut parts = name.split('.');
    let first = parts.next()?;
    let mut value = stack.iter().rev().find_map(|ctx| ctx.get(first))?;
    for p in parts {
        value = match value {
            Value::Array(a) => a.get(p.parse::<usize>().ok()?)?,
            other => other.get(p)?,
        };
    }
    Some(value)
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text_of).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn escape(text: &str, mode: Escape) -> String {
    match mode {
        Escape::None => text.to_owned(),
        Escape::Json => {
            let quoted = serde_json::to_string(text).unwrap_or_default();
            quoted[1..quoted.len() - 1].to_owned()
        }
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::Array(a) => !a.is_empty(),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

fn render_nodes(nodes: &[Node], stack: &mut Vec<&Value>, mode: Escape, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Var { name, raw } => {
                let text = lookup(stack, name).map(text_of).unwrap_or_default();
                out.push_str(&if *raw { text } else { escape(&text, mode) });
            }
            Node::Section {
                name,
                inverted,
                body,
                source,
            } => {
                let word = name.split_whitespace().next().unwrap_or("");
                if !inverted && (word == "toJson" || word == "join" || word == "url") {
                    let key = source.trim();
                    let value = lookup(stack, key).cloned().unwrap_or(Value::Null);
                    let rendered = match word {
                        "toJson" => value.to_string(),
                        "join" => {
                            let delimiter = name
                                .split_once("delimiter=")
                                .map(|(_, d)| d.trim().trim_matches(['\'', '"']).to_owned())
                                .unwrap_or_else(|| ",".into());
                            match &value {
                                Value::Array(a) => {
                                    a.iter().map(text_of).collect::<Vec<_>>().join(&delimiter)
                                }
                                other => text_of(other),
                            }
                        }
                        _ => {
                            let mut inner = String::new();
                            render_nodes(body, stack, Escape::None, &mut inner);
                            percent_encoding::utf8_percent_encode(
                                &inner,
                                percent_encoding::NON_ALPHANUMERIC,
                            )
                            .to_string()
                        }
                    };
                    out.push_str(&rendered);
                    continue;
                }
                let value = lookup(stack, name);
                let on = value.is_some_and(truthy);
                if *inverted {
                    if !on {
                        render_nodes(body, stack, mode, out);
                    }
                    continue;
                }
                match value {
                    Some(Value::Array(items)) => {
                        for item in items {
                            stack.push(item);
                            render_nodes(body, stack, mode, out);
                            stack.pop();
                        }
                    }
                    Some(v) if on => {
                        stack.push(v);
                        render_nodes(body, stack, mode, out);
                        stack.pop();
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Renders `template` with `params` as the context.
pub fn render(template: &str, params: &Value, mode: Escape) -> Result<String, String> {
    let nodes = parse(template)?;
    let mut out = String::new();
    render_nodes(&nodes, &mut vec![params], mode, &mut out);
    Ok(out)
}

/// Whether a text holds any Mustache tag (values without one are used as they are).
pub fn is_template(text: &str) -> bool {
    text.contains("{{")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn variables_sections_and_functions() {
        let p = json!({"q": "a\"b", "tags": ["x", "y"], "on": true, "user": {"name": "ann"}});
        assert_eq!(render("{{q}}", &p, Escape::Json).unwrap(), "a\\\"b");
        assert_eq!(render("{{{q}}}", &p, Escape::Json).unwrap(), "a\"b");
        assert_eq!(render("{{user.name}}", &p, Escape::None).unwrap(), "ann");
        assert_eq!(
            render("{{#tags}}[{{.}}]{{/tags}}", &p, Escape::None).unwrap(),
            "[x][y]"
        );
        assert_eq!(
            render("{{^off}}no{{/off}}", &p, Escape::None).unwrap(),
            "no"
        );
        assert_eq!(
            render("{{#toJson}}tags{{/toJson}}", &p, Escape::Json).unwrap(),
            "[\"x\",\"y\"]"
        );
        assert_eq!(
            render("{{#join}}tags{{/join}}", &p, Escape::Json).unwrap(),
            "x,y"
        );
        assert!(render("{{#a}}x", &p, Escape::None).is_err());
    }
}
