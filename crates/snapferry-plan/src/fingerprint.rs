//! Stable fingerprints: sha256 over canonical JSON (object keys sorted at every
//! depth, no whitespace). The state records the plan's fingerprint so a saved
//! plan applied later can tell that the plan file changed, and each node's
//! spec fingerprint so a resumed run can tell which nodes' desired state moved.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// `sha256:<hex>` of the canonical JSON of `value`.
pub fn fingerprint<T: Serialize>(value: &T) -> String {
    let value = serde_json::to_value(value).expect("plan types always serialize to JSON");
    let mut text = String::new();
    write_canonical(&value, &mut text);
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

/// Writes `value` as JSON with object keys sorted, whatever map type serde_json was built with.
pub fn write_canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_does_not_matter() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[1,2],"x":null}}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a":{"x":null,"y":[1,2]},"b":1}"#).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let mut text = String::new();
        write_canonical(&a, &mut text);
        assert_eq!(text, r#"{"a":{"x":null,"y":[1,2]},"b":1}"#);
        let c: serde_json::Value = serde_json::from_str(r#"{"b":2}"#).unwrap();
        assert_ne!(fingerprint(&a), fingerprint(&c));
        assert!(fingerprint(&a).starts_with("sha256:"));
        assert_eq!(fingerprint(&a).len(), 7 + 64);
    }
}
