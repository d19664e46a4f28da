//! The `update_plan` tool: the model keeps a short visible plan, which the front-ends show.
//!
//! Invariants: a plan has 1 to [`MAX_STEPS`] non-empty steps, at most one `in_progress`; a call
//! that breaks this is refused and no `Plan` event is emitted; the model only gets a short ack,
//! since it already has the plan it sent.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::fs::{ToolError, tool_err};
use crate::event::Event;
use crate::llm::ToolSpec;

const MAX_STEPS: usize = 50;
const MAX_STEP_CHARS: usize = 300;

/// One step of a `Plan` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanStep {
    pub step: String,
    pub status: PlanStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    Pending,
    InProgress,
    Completed,
}

impl PlanStatus {
    /// A one-character mark for logs and the TUI: `[ ]`, `[>]`, `[x]`.
    pub fn mark(self) -> &'static str {
        match self {
            PlanStatus::Pending => "[ ]",
            PlanStatus::InProgress => "[>]",
            PlanStatus::Completed => "[x]",
        }
    }
}

/// A plan as lines (`[x] step`), its explanation first; raw text, for the caller to sanitize.
pub fn plan_lines(steps: &[PlanStep], explanation: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(e) = explanation.map(str::trim).filter(|e| !e.is_empty()) {
        out.push_str(e);
        out.push('\n');
    }
    for s in steps {
        out.push_str(&format!("{} {}\n", s.status.mark(), s.step.trim()));
    }
    out
}

pub fn spec() -> ToolSpec {
    ToolSpec {
        name: "update_plan",
        description: "Keep a short plan of the task visible to the user: send the whole plan \
            each time (every step with its status), with at most one step in_progress. Use it \
            for tasks of several steps; mark steps completed as you finish them.",
        input_schema: json!({"type": "object", "properties": {
            "plan": {"type": "array", "description": "All steps, in order",
                "items": {"type": "object", "properties": {
                    "step": {"type": "string"},
                    "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]}
                }, "required": ["step", "status"]}},
            "explanation": {"type": "string", "description": "Why the plan changed (optional)"}
        }, "required": ["plan"]}),
    }
}

/// Checks the plan and returns the ack for the model and the `Plan` event.
pub fn update(input: &Value, run_id: &str) -> Result<(String, Event), ToolError> {
    let Some(items) = input.get("plan").and_then(Value::as_array) else {
        return tool_err("plan must be an array of {step, status}");
    };
    if items.is_empty() || items.len() > MAX_STEPS {
        return tool_err(format!("plan must have 1 to {MAX_STEPS} steps"));
    }
    let mut steps = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let step = item.get("step").and_then(Value::as_str).map(str::trim);
        let Some(step) = step.filter(|s| !s.is_empty()) else {
            return tool_err(format!("plan[{i}]: step must be a non-empty string"));
        };
        let status: Option<PlanStatus> = item
            .get("status")
            .and_then(|s| serde_json::from_value(s.clone()).ok());
        let Some(status) = status else {
            return tool_err(format!(
                "plan[{i}]: status must be pending, in_progress or completed"
            ));
        };
        steps.push(PlanStep {
            step: step.chars().take(MAX_STEP_CHARS).collect(),
            status,
        });
    }
    let active = steps
        .iter()
        .filter(|s| s.status == PlanStatus::InProgress)
        .count();
    if active > 1 {
        return tool_err(format!(
            "{active} steps are in_progress; at most one step may be in_progress at a time"
        ));
    }
    let done = steps
        .iter()
        .filter(|s| s.status == PlanStatus::Completed)
        .count();
    let explanation = input
        .get("explanation")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string);
    Ok((
        format!("Plan updated ({done} of {} steps completed).", steps.len()),
        Event::Plan {
            run_id: run_id.to_string(),
            steps,
            explanation,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_plan_becomes_an_event() {
        let input = json!({"plan": [
            {"step": "Read calc.py", "status": "completed"},
            {"step": "Fix divide", "status": "in_progress"},
            {"step": "Run tests", "status": "pending"}
        ], "explanation": "found the bug"});
        let Ok((
            ack,
            Event::Plan {
                steps, explanation, ..
            },
        )) = update(&input, "r")
        else {
            panic!("refused");
        };
        assert_eq!(ack, "Plan updated (1 of 3 steps completed).");
        assert_eq!(steps[1].status, PlanStatus::InProgress);
        assert_eq!(explanation.as_deref(), Some("found the bug"));
    }

    #[test]
    fn invalid_plans_are_refused_with_the_reason() {
        let two = json!({"plan": [
            {"step": "a", "status": "in_progress"},
            {"step": "b", "status": "in_progress"}
        ]});
        let err = |v: Value| match update(&v, "r") {
            Err(ToolError(m)) => m,
            Ok(_) => panic!("accepted {v}"),
        };
        assert!(err(two).contains("at most one step may be in_progress"));
        assert!(err(json!({"plan": []})).contains("1 to 50"));
        assert!(
            err(json!({"plan": [{"step": "a", "status": "done"}]})).contains("plan[0]: status")
        );
        assert!(
            err(json!({"plan": [{"step": " ", "status": "pending"}]})).contains("plan[0]: step")
        );
    }
}
