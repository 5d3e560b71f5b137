//! The live view of an apply: on a terminal, one indicatif line per node (spinner, or a bar
//! once shards are counted) with its elapsed time; otherwise plain timestamped lines, one per
//! event worth reading in a CI log (progress only when it moves).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use snapferry_engine::{Event, EventSink, NodeId};

/// Where the events go.
pub enum Display {
    Terminal(Terminal),
    Plain(Plain),
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

impl EventSink for Display {
    fn emit(&self, event: Event) {
        match self {
            Display::Terminal(t) => t.emit(event),
            Display::Plain(p) => p.emit(event),
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
        }
    }
}
