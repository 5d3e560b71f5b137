//! What the plan's bytes may hold, checked before any YAML is read: UTF-8 text without
//! control characters (YAML allows tab, line feed and carriage return, nothing else below
//! U+0020, nor DEL, the C1 controls or U+FFFE/U+FFFF). A stray byte from a copy in a terminal or
//! a file saved as Latin-1 is reported at its own line and column, every one of them, instead of
//! as "stream did not contain valid UTF-8" or "control characters are not allowed at position
//! 125". These are the only problems that stop reading: what a YAML parser would make of such
//! text is anybody's guess.

use crate::error::{Finding, Located, Problem};
use crate::location::ByteSpan;

/// The text to read, and where it is not what a plan may hold.
#[derive(Debug)]
pub struct Decoded {
    /// The text. When there are problems it is only for showing them: each invalid UTF-8
    /// sequence is replaced by U+FFFD and each control character by its visible picture
    /// (`␛` for ESC), so a snippet never sends a raw escape sequence to the terminal.
    pub text: String,
    pub problems: Vec<Located>,
}

/// Decodes `bytes` as UTF-8, placing each invalid sequence and each control character.
pub fn decode(bytes: &[u8]) -> Decoded {
    let mut text = String::with_capacity(bytes.len());
    let mut problems = Vec::new();
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        if valid.chars().any(forbidden) {
            for c in valid.chars() {
                if forbidden(c) {
                    let offset = text.len();
                    let shown = picture(c);
                    text.push(shown);
                    problems.push(located(
                        Problem::ControlCharacter { code: c as u32 },
                        ByteSpan {
                            offset,
                            len: shown.len_utf8(),
                        },
                    ));
                } else {
                    text.push(c);
                }
            }
        } else {
            text.push_str(valid);
        }
        let invalid = chunk.invalid();
        if !invalid.is_empty() {
            let offset = text.len();
            text.push(char::REPLACEMENT_CHARACTER);
            problems.push(located(
                Problem::InvalidUtf8 {
                    bytes: invalid
                        .iter()
                        .map(|b| format!("0x{b:02X}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                },
                ByteSpan {
                    offset,
                    len: char::REPLACEMENT_CHARACTER.len_utf8(),
                },
            ));
        }
    }
    Decoded { text, problems }
}

/// How a forbidden character is shown: its Unicode control picture (U+2400 block) when it
/// has one, else U+FFFD.
fn picture(c: char) -> char {
    match c as u32 {
        code @ 0..=0x1F => char::from_u32(0x2400 + code).unwrap_or(char::REPLACEMENT_CHARACTER),
        0x7F => '\u{2421}',
        _ => char::REPLACEMENT_CHARACTER,
    }
}

/// Outside YAML's printable set (tab, LF, CR, U+0020–U+007E, U+0085, U+00A0–U+D7FF,
/// U+E000–U+FFFD, U+10000 and up).
fn forbidden(c: char) -> bool {
    match c {
        '\t' | '\n' | '\r' => false,
        '\u{0}'..='\u{1F}' | '\u{7F}' => true,
        '\u{80}'..='\u{9F}' => c != '\u{85}',
        '\u{FFFE}' | '\u{FFFF}' => true,
        _ => false,
    }
}

fn located(problem: Problem, span: ByteSpan) -> Located {
    Located {
        finding: Finding::Ready(problem),
        path: String::new(),
        span,
        at_key: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(bytes: &[u8]) -> (String, Vec<(usize, String)>) {
        let d = decode(bytes);
        let list = d
            .problems
            .into_iter()
            .map(|p| {
                let Finding::Ready(problem) = p.finding else {
                    unreachable!()
                };
                (p.span.offset, problem.to_string())
            })
            .collect();
        (d.text, list)
    }

    #[test]
    fn every_invalid_sequence_is_placed_in_the_shown_text() {
        let (text, list) = found(b"name: caf\xE9\nregion: \xFF\xFEx\n");
        assert_eq!(text, "name: caf\u{FFFD}\nregion: \u{FFFD}\u{FFFD}x\n");
        assert_eq!(
            list,
            [
                (9, "the plan is not UTF-8 text: byte 0xE9".to_owned()),
                (21, "the plan is not UTF-8 text: byte 0xFF".to_owned()),
                (24, "the plan is not UTF-8 text: byte 0xFE".to_owned()),
            ]
        );
    }

    #[test]
    fn control_characters_are_found_and_tabs_and_line_ends_are_not() {
        let (text, list) = found("a:\tb\r\nc: \u{7}d\u{1B}[0m\u{85}\u{9B}\n".as_bytes());
        // Shown as pictures, never as raw escapes (offsets move: each picture is 3 bytes).
        assert_eq!(text, "a:\tb\r\nc: \u{2407}d\u{241B}[0m\u{85}\u{FFFD}\n");
        assert_eq!(
            list,
            [
                (9, "control character U+0007 (BEL) in the plan".to_owned()),
                (13, "control character U+001B (ESC) in the plan".to_owned()),
                (21, "control character U+009B in the plan".to_owned()),
            ]
        );
        assert!(found("plain text é ✓ 🦀\n".as_bytes()).1.is_empty());
    }
}
