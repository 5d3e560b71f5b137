//! The live view of an apply: on a terminal, one indicatif line per node (spinner, or a bar
//! once shards are counted) with its elapsed time; otherwise plain timestamped lines, one per
//! event worth reading in a CI log (progress only when it moves).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use snapferry_engine::{Event, EventSink, NodeId};

/// Where the events go.
pub enum Display {
    Terminal(Terminal),
    Plain(Plain),
    /// One JSON object per line on stdout (`apply --json`), for bots and CI logs.
    Json(JsonLines),
}

impl Display {
    /// A live display on a terminal, plain lines otherwise.
    pub fn new(terminal: bool) -> Self {
        if terminal {
            Display::Terminal(Terminal {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: Mutex::default(),
            })
        } else {
            Display::Plain(Plain {
                nodes: Mutex::default(),
            })
        }
    }
}

impl Display {
    /// Prints a line on stderr for the person at the terminal (the Ctrl-C notice). On a
    /// terminal it goes above the live view through indicatif, which would otherwise draw its
    /// lines over it at the next tick.
    pub fn notice(&self, text: &str) {
        match self {
            Display::Terminal(t) => {
                if t.multi.println(text).is_err() {
                    eprintln!("{text}");
                }
            }
            Display::Plain(_) | Display::Json(_) => eprintln!("{text}"),
        }
    }
}

impl EventSink for Display {
    fn emit(&self, event: Event) {
        match self {
            Display::Terminal(t) => t.emit(event),
            Display::Plain(p) => p.emit(event),
            Display::Json(j) => j.emit(&event),
        }
    }
}

fn elapsed(since: Instant) -> String {
    let secs = since.elapsed().as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        format!("{}m{:02}s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    }
}

/// Plain lines for logs.
pub struct Plain {
    nodes: Mutex<HashMap<NodeId, (Instant, String)>>,
}

impl Plain {
    fn line(&self, node: &NodeId, text: &str) {
        println!(
            "{} {node}: {text}",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
        );
    }

    fn emit(&self, event: Event) {
        let mut nodes = self.nodes.lock().expect("display lock");
        match event {
            Event::Started { node } => {
                nodes.insert(node.clone(), (Instant::now(), String::new()));
                self.line(&node, "started");
            }
            Event::Progress {
                node,
                done,
                total,
                message,
            } => {
                let text = match (done * 100).checked_div(total) {
                    Some(percent) => format!("{message} ({percent}%)"),
                    None => message,
                };
                if let Some((_, last)) = nodes.get_mut(&node)
                    && *last != text
                {
                    last.clone_from(&text);
                    self.line(&node, &text);
                }
            }
            Event::Finished { node } => {
                let took = nodes
                    .get(&node)
                    .map(|(t, _)| elapsed(*t))
                    .unwrap_or_default();
                self.line(&node, &format!("done in {took}"));
            }
            Event::Skipped { node } => self.line(&node, "unchanged"),
            Event::Failed { node, error } => {
                self.line(&node, &format!("FAILED: {}", error.message));
            }
            Event::Retrying {
                node,
                attempt,
                delay,
                error,
            } => self.line(
                &node,
                &format!(
                    "retrying in {:.1}s (attempt {attempt}): {}",
                    delay.as_secs_f64(),
                    error.message
                ),
            ),
            Event::Interrupted { node } => {
                self.line(
                    &node,
                    "interrupted; still running on AWS, `apply` again resumes",
                );
            }
            Event::Stale { node, moved } => {
                self.line(
                    &node,
                    &format!("STALE, not applied: {}", moved_text(&moved)),
                );
            }
        }
    }
}

/// indicatif lines for a terminal.
pub struct Terminal {
    multi: MultiProgress,
    bars: Mutex<HashMap<NodeId, ProgressBar>>,
}

impl Terminal {
    fn emit(&self, event: Event) {
        let mut bars = self.bars.lock().expect("display lock");
        let spinner = ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed}]")
            .expect("template is valid");
        let bar = ProgressStyle::with_template(
            "{spinner} {prefix} [{bar:30}] {pos}/{len} {msg} [{elapsed}]",
        )
        .expect("template is valid")
        .progress_chars("=> ");
        let done = ProgressStyle::with_template("{prefix} {msg}").expect("template is valid");
        match event {
            Event::Started { node } => {
                let pb = self.multi.add(ProgressBar::new_spinner());
                pb.set_style(spinner);
                pb.set_prefix(node.to_string());
                pb.enable_steady_tick(Duration::from_millis(120));
                bars.insert(node, pb);
            }
            Event::Progress {
                node,
                done: d,
                total,
                message,
            } => {
                if let Some(pb) = bars.get(&node) {
                    if total > 0 {
                        if pb.length() != Some(total) {
                            pb.set_style(bar);
                            pb.set_length(total);
                        }
                        pb.set_position(d);
                    }
                    pb.set_message(message);
                }
            }
            Event::Finished { node } => {
                if let Some(pb) = bars.get(&node) {
                    pb.set_style(done);
                    let took = elapsed(Instant::now() - pb.elapsed());
                    pb.finish_with_message(format!("✓ done in {took}"));
                }
            }
            Event::Skipped { node } => {
                if let Some(pb) = bars.get(&node) {
                    pb.set_style(done);
                    pb.finish_with_message("= unchanged");
                }
            }
            Event::Failed { node, error } => {
                if let Some(pb) = bars.get(&node) {
                    pb.set_style(done);
                    pb.abandon_with_message(format!("✗ failed: {}", error.message));
                }
            }
            Event::Retrying {
                node,
                attempt,
                delay,
                error,
            } => {
                if let Some(pb) = bars.get(&node) {
                    pb.set_message(format!(
                        "retrying in {:.1}s (attempt {attempt}): {}",
                        delay.as_secs_f64(),
                        error.message
                    ));
                }
            }
            Event::Interrupted { node } => {
                if let Some(pb) = bars.get(&node) {
                    pb.set_style(done);
                    pb.abandon_with_message("⏸ interrupted (still running on AWS)");
                }
            }
            Event::Stale { node, moved } => {
                if let Some(pb) = bars.get(&node) {
                    pb.set_style(done);
                    pb.abandon_with_message(format!(
                        "✗ stale, not applied: {}",
                        moved_text(&moved)
                    ));
                }
            }
        }
    }
}

/// What moved since the plan was made, on one line.
pub fn moved_text(moved: &[snapferry_engine::Moved]) -> String {
    moved
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The `format_version` of the JSON lines `apply --json` prints (plan, events, summary).
pub const JSON_FORMAT_VERSION: u32 = 1;

/// `apply --json`: every engine event as one JSON object on its own line of stdout, so a
/// bot can follow a run with a line reader. Each object has `type: "event"`, the `event`
/// name, the `node` and the time `at` (RFC 3339, UTC, milliseconds); the rest depends on the
/// event (`done`/`total`/`message` for progress, `error` and `class` for a failure, `attempt`
/// and `delay_seconds` for a retry). Nothing else is written to stdout meanwhile.
#[derive(Debug, Default)]
pub struct JsonLines {
    out: Mutex<()>,
}

impl JsonLines {
    fn emit(&self, event: &Event) {
        let line = event_json(event, chrono::Utc::now()).to_string();
        let _guard = self.out.lock().expect("display lock");
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }
}

/// One event as its JSON line.
pub fn event_json(event: &Event, at: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let base = |name: &str, node: &NodeId| {
        serde_json::json!({
            "type": "event",
            "event": name,
            "node": node.to_string(),
            "at": at,
        })
    };
    let error_class = |class: &snapferry_engine::ErrorClass| match class {
        snapferry_engine::ErrorClass::Permanent => "permanent",
        snapferry_engine::ErrorClass::Transient { .. } => "transient",
        snapferry_engine::ErrorClass::Interrupted => "interrupted",
    };
    match event {
        Event::Started { node } => base("started", node),
        Event::Progress {
            node,
            done,
            total,
            message,
        } => {
            let mut v = base("progress", node);
            v["done"] = (*done).into();
            v["total"] = (*total).into();
            v["message"] = message.as_str().into();
            v
        }
        Event::Finished { node } => base("finished", node),
        Event::Skipped { node } => base("skipped", node),
        Event::Failed { node, error } => {
            let mut v = base("failed", node);
            v["error"] = error.message.as_str().into();
            v["class"] = error_class(&error.class).into();
            v
        }
        Event::Retrying {
            node,
            attempt,
            delay,
            error,
        } => {
            let mut v = base("retrying", node);
            v["attempt"] = (*attempt).into();
            v["delay_seconds"] = delay.as_secs_f64().into();
            v["error"] = error.message.as_str().into();
            v
        }
        Event::Interrupted { node } => base("interrupted", node),
        Event::Stale { node, moved } => {
            let mut v = base("stale", node);
            v["moved"] = moved
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .into();
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_is_one_json_object_naming_its_node_and_time() {
        let node = NodeId::new("snapshot", "shop");
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-01T03:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let progress = event_json(
            &Event::Progress {
                node: node.clone(),
                done: 3,
                total: 10,
                message: "3 of 10 shards".into(),
            },
            at,
        );
        assert_eq!(
            progress,
            serde_json::json!({
                "type": "event", "event": "progress", "node": "snapshot/shop",
                "at": "2026-11-01T03:00:00.000Z", "done": 3, "total": 10,
                "message": "3 of 10 shards",
            })
        );
        let failed = event_json(
            &Event::Failed {
                node: node.clone(),
                error: snapferry_engine::ResourceError::permanent(&node, "boom"),
            },
            at,
        );
        assert_eq!(failed["event"], "failed");
        assert_eq!(failed["error"], "boom");
        assert_eq!(failed["class"], "permanent");
        let retrying = event_json(
            &Event::Retrying {
                node: node.clone(),
                attempt: 2,
                delay: Duration::from_millis(1500),
                error: snapferry_engine::ResourceError::transient(&node, "slow down"),
            },
            at,
        );
        assert_eq!(retrying["delay_seconds"], 1.5);
        assert_eq!(retrying["attempt"], 2);
        for event in [
            Event::Started { node: node.clone() },
            Event::Finished { node: node.clone() },
            Event::Skipped { node: node.clone() },
            Event::Interrupted { node: node.clone() },
        ] {
            let v = event_json(&event, at);
            assert_eq!(v["node"], "snapshot/shop");
            assert!(!v.to_string().contains('\n'));
        }
    }
}
