//! The TUI's step log shows each `Plan` the agent sets as an entry whose detail is the plan,
//! with control characters from the model made harmless.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tiny_backspace::event::{Event, PlanStatus, PlanStep};
use tiny_backspace::tui::steplog::{EntryKind, StepLog};

fn step(step: &str, status: PlanStatus) -> PlanStep {
    PlanStep {
        step: step.into(),
        status,
    }
}

#[test]
fn the_latest_plan_is_the_last_plan_entry() {
    let mut log = StepLog::default();
    for done in [false, true] {
        let second = if done {
            PlanStatus::Completed
        } else {
            PlanStatus::InProgress
        };
        log.ingest(
            &Event::Plan {
                run_id: "r".into(),
                steps: vec![
                    step("Read calc.py", PlanStatus::Completed),
                    step("Fix \u{1b}[31mdivide", second),
                ],
                explanation: Some("why".into()),
            },
            1,
        );
    }
    let plans: Vec<_> = log
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Plan)
        .collect();
    assert_eq!(plans.len(), 2);
    let last = plans[1];
    assert_eq!(last.title, "Plan · 2/2 steps done");
    assert!(
        last.detail.starts_with("why\n[x] Read calc.py\n[x] Fix"),
        "{}",
        last.detail
    );
    assert!(!last.detail.contains('\u{1b}'), "{:?}", last.detail);
}
