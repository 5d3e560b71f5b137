//! Every misspelt key at once. serde stops at the first unknown field; when it
//! does, this walks every key of the document against the plan's JSON Schema
//! (the same one editors use) and reports each key the schema does not allow,
//! with the nearest allowed key as a suggestion.

use serde_json::Value;

use crate::location::{ByteSpan, LocationIndex};

/// A key the schema does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    /// Dotted path of the mapping holding the key (empty for the top level).
    pub parent: String,
    pub key: String,
    pub span: ByteSpan,
    /// The keys allowed in that mapping, sorted.
    pub allowed: Vec<String>,
}

/// All keys of the document that `schema` does not allow.
pub fn unknown_keys(index: &LocationIndex, schema: &Value) -> Vec<UnknownKey> {
    let mut out = Vec::new();
    for (parent, key, span) in index.keys() {
        let Some(node) = resolve_path(schema, schema, parent) else {
            continue;
        };
        let Some(props) = node.get("properties").and_then(Value::as_object) else {
            continue;
        };
        if node.get("additionalProperties") != Some(&Value::Bool(false)) || props.contains_key(key)
        {
            continue;
        }
        let mut allowed: Vec<String> = props.keys().cloned().collect();
        allowed.sort();
        out.push(UnknownKey {
            parent: parent.to_owned(),
            key: key.to_owned(),
            span,
            allowed,
        });
    }
    out
}

/// Follows `$ref` and the `anyOf [X, null]` that optional fields become.
fn deref<'a>(root: &'a Value, mut node: &'a Value) -> &'a Value {
    for _ in 0..8 {
        if let Some(r) = node.get("$ref").and_then(Value::as_str) {
            match r
                .strip_prefix("#/$defs/")
                .and_then(|name| root.get("$defs")?.get(name))
            {
                Some(target) => node = target,
                None => return node,
            }
        } else if let Some(options) = node.get("anyOf").and_then(Value::as_array) {
            // `Option<T>` is `anyOf [T, null]`; `true | {enabled}` is `anyOf [bool, map]`:
            // keys can only belong to the alternative that is a mapping.
            let mut options = options
                .iter()
                .filter(|o| o.get("type") != Some(&Value::String("null".into())));
            let first = options.clone().next();
            match options
                .find(|o| deref(root, o).get("properties").is_some())
                .or(first)
            {
                Some(o) => node = o,
                None => return node,
            }
        } else {
            return node;
        }
    }
    node
}

/// The schema of the value at `path` (`a.b[0].c`), or `None` where the schema stops
/// constraining (free-form values such as repository settings) or the path is unknown.
fn resolve_path<'a>(root: &'a Value, start: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = deref(root, start);
    if path.is_empty() {
        return Some(node);
    }
    for segment in path.split('.') {
        let (key, indexes) = match segment.find('[') {
            Some(i) => (&segment[..i], segment[i..].matches('[').count()),
            None => (segment, 0),
        };
        node = match node.get("properties").and_then(|p| p.get(key)) {
            Some(child) => deref(root, child),
            None => match node.get("additionalProperties") {
                Some(extra @ Value::Object(_)) => deref(root, extra),
                _ => return None,
            },
        };
        for _ in 0..indexes {
            node = deref(root, node.get("items")?);
        }
    }
    Some(node)
}

/// The allowed key closest to `key`, if it is close enough to be a likely typo.
pub fn suggestion<'a>(key: &str, allowed: &'a [String]) -> Option<&'a str> {
    if key.chars().count() >= 4
        && let Some(longer) = allowed.iter().find(|a| a.starts_with(key))
    {
        return Some(longer.as_str());
    }
    let best = allowed
        .iter()
        .map(|a| (edit_distance(key, a), a))
        .min_by_key(|(d, _)| *d)?;
    let limit = (key.chars().count() / 3).max(2);
    (best.0 <= limit).then_some(best.1.as_str())
}

/// Levenshtein distance over characters (`_` and `-` count as equal: a common slip).
fn edit_distance(a: &str, b: &str) -> usize {
    let norm = |c: char| if c == '-' { '_' } else { c };
    let a: Vec<char> = a.chars().map(norm).collect();
    let b: Vec<char> = b.chars().map(norm).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_unknown_key_at_every_depth() {
        let text = "version: 1\nregoin: x\nbucket:\n  name: b\n  base-path: p\ntarget:\n  domain: d\n  overrides:\n    cluster_config:\n      instance_typ: t\n    tags: { any-key: ok }\nrepository:\n  settings: { whatever: 1 }\nreplications:\n  - name: a\n    verfiy: {}\n";
        let index = LocationIndex::build(text);
        let found: Vec<(String, String)> = unknown_keys(&index, &crate::json_schema())
            .into_iter()
            .map(|u| (u.parent, u.key))
            .collect();
        assert_eq!(
            found,
            [
                (String::new(), "regoin".to_owned()),
                ("bucket".into(), "base-path".into()),
                (
                    "target.overrides.cluster_config".into(),
                    "instance_typ".into()
                ),
                ("replications[0]".into(), "verfiy".into()),
            ]
        );
    }

    #[test]
    fn suggests_near_keys_only() {
        let allowed: Vec<String> = ["region", "replications", "restore"]
            .map(String::from)
            .to_vec();
        assert_eq!(suggestion("regoin", &allowed), Some("region"));
        assert_eq!(suggestion("restor", &allowed), Some("restore"));
        assert_eq!(suggestion("colour", &allowed), None);
        assert_eq!(
            suggestion("replica", &allowed),
            Some("replications"),
            "a truncated key"
        );
        assert_eq!(edit_distance("base-path", "base_path"), 0);
    }
}
