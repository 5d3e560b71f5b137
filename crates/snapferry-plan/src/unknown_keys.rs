//! What to say about a key the plan does not allow ([`crate::convert`] finds them all, with
//! the keys allowed beside each): the nearest allowed key as a suggestion. Worked out only
//! for the keys a report lists, so a file of 100,000 unknown keys costs no more than 20
//! suggestions.

use crate::error::Problem;

/// The problem of `key` in the mapping at `parent`, where `allowed` are the keys allowed.
pub fn problem(key: String, parent: String, allowed: &[String]) -> Problem {
    Problem::UnknownKey {
        suggestion: suggestion(&key, allowed).map(str::to_owned),
        key,
        parent,
        allowed: allowed.to_vec(),
    }
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
