//! How a plan is shown: the text form is the engine's ([`snapferry_engine::render`], so the
//! planner's golden tests pin exactly what a user reads); this adds the `--json` form of the
//! same proposal.

use serde_json::{Value, json};
use snapferry_engine::Proposal;
use snapferry_engine::render::symbol;
pub use snapferry_engine::render::{Tally, text};

/// The plan as a stable JSON document (`format_version` 1).
pub fn json(proposal: &Proposal, plan_name: &str) -> Value {
    let nodes: Vec<Value> = proposal
        .order
        .iter()
        .map(|id| {
            let node = &proposal.nodes[id];
            json!({
                "id": id.to_string(),
                "kind": node.kind,
                "symbol": symbol(&node.change),
                "change": node.change,
                "recorded": node.recorded.map(|s| format!("{s:?}").to_lowercase()),
            })
        })
        .collect();
    let tally = Tally::of(proposal);
    json!({
        "format_version": 1,
        "plan": plan_name,
        "nodes": nodes,
        "summary": {
            "create": tally.create,
            "update": tally.update,
            "replace": tally.replace,
            "unchanged": tally.unchanged,
            "in_progress": tally.waiting,
            "blocked": tally.blocked,
        },
        "state": proposal.state.as_ref().map(|d| json!({
            "plan_changed": d.plan_fingerprint_changed,
            "changed": d.changed.iter().map(|(id, how)| json!({"id": id.to_string(), "how": how})).collect::<Vec<_>>(),
            "drifted": d.drifted.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "removed": d.removed.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })),
    })
}
