//! The pipeline's stage logic as a pure state machine: inputs in, effects out, no IO.
//!
//! Stages: validate → clone → setup → agent → diff → gate → publish → cleanup; a setup that
//! fails ends the run like a failed clone (no diff: nothing of the agent's exists yet).
//!
//! Invariants: exactly one stage effect is outstanding at a time; every path ends in `CleanUp`
//! followed by exactly one `Finish`; an agent that stops for any reason still gets its diff computed
//! and saved before the run ends (nothing lost); cancellation while a stage runs first asks that
//! stage to stop and waits for it, so cleanup never races a running stage. With a person at the
//! gate, a publish that fails or is cancelled goes back to review (workspace kept, another approval
//! retries); rejecting after such a failure ends the run with that failure.

pub use crate::diff::Selection;
use crate::event::{ErrorCode, Stage};

/// What happens at the approval gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// A person decides (TUI, `serve` with review): wait for a command.
    Interactive,
    /// `--no-pr`: stop after the diff with the patch saved.
    NoPr,
    /// `--yes`: approve everything.
    AutoApprove,
}

/// What a front-end can ask of a running pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Approve {
        selection: Selection,
        title: Option<String>,
        body: Option<String>,
        draft: bool,
    },
    Reject,
    FollowUp(String),
    /// In review: the reviewer changed the work tree (the TUI's `E`): say so with this message
    /// and compute the diff again (the same hardened stage), then back to review.
    Rediff(String),
    Cancel,
    /// Cancel, saying why (e.g. a server's time limit). The machine treats it as `Cancel`; the
    /// driver keeps the reason for the run's final error.
    Stop(String),
}

/// How the status that sends a run back to review begins (front-ends show it as a failure).
pub const PUBLISH_FAILED: &str = "publishing failed: ";
pub const PUBLISH_CANCELLED: &str = "publishing cancelled";
pub const FOLLOW_UP_FAILED: &str = "the follow-up failed: ";
pub const FOLLOW_UP_CANCELLED: &str = "the follow-up was cancelled";

/// Whether a status message says a publish or a follow-up did not go through (the run went back
/// to review).
pub fn is_setback(message: &str) -> bool {
    [
        PUBLISH_FAILED,
        PUBLISH_CANCELLED,
        FOLLOW_UP_FAILED,
        FOLLOW_UP_CANCELLED,
    ]
    .iter()
    .any(|p| message.starts_with(p))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Ended without publishing (no PR asked for, rejected, or nothing changed).
    Finished {
        reason: String,
    },
    Published,
    Failed {
        stage: Stage,
        message: String,
        retryable: bool,
        code: ErrorCode,
    },
    Cancelled {
        stage: Stage,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Idle,
    Running(Stage),
    Review,
    CleaningUp(Outcome),
    Done(Outcome),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Start,
    /// The running stage finished successfully.
    StageOk,
    /// The diff stage finished; `empty` when the agent changed nothing.
    DiffReady {
        empty: bool,
    },
    StageFailed {
        message: String,
        retryable: bool,
        code: ErrorCode,
    },
    /// The running stage stopped because it was asked to.
    StageCancelled,
    Command(Command),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Validate,
    Clone,
    /// The setup command, if any, and the environment probe, before the agent's first turn.
    Setup,
    RunAgent {
        followup: Option<String>,
    },
    ComputeDiff,
    Publish {
        selection: Selection,
        title: Option<String>,
        body: Option<String>,
        draft: bool,
    },
    /// Ask the running stage to stop.
    CancelStage,
    Status {
        stage: Stage,
        message: String,
    },
    CleanUp,
    Finish(Outcome),
}

impl Effect {
    /// The effect's name, as the log's `stage` field shows it (`RunAgent`, `CleanUp`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Effect::Validate => "Validate",
            Effect::Clone => "Clone",
            Effect::Setup => "Setup",
            Effect::RunAgent { .. } => "RunAgent",
            Effect::ComputeDiff => "ComputeDiff",
            Effect::Publish { .. } => "Publish",
            Effect::CancelStage => "CancelStage",
            Effect::Status { .. } => "Status",
            Effect::CleanUp => "CleanUp",
            Effect::Finish(_) => "Finish",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Machine {
    pub phase: Phase,
    gate: Gate,
    /// Why the agent stopped, held while its diff is salvaged.
    after_diff: Option<Outcome>,
    /// The last failed publish of this review, the run's outcome unless a retry succeeds.
    failed_publish: Option<Outcome>,
    /// The agent is running a follow-up (the review it came from is worth keeping).
    following_up: bool,
    /// The diff is computed again after the reviewer's edit (`Command::Rediff`): a failure goes
    /// back to review instead of ending the run.
    rediffing: bool,
    cancel_requested: bool,
}

impl Machine {
    pub fn new(gate: Gate) -> Self {
        Machine {
            phase: Phase::Idle,
            gate,
            after_diff: None,
            failed_publish: None,
            following_up: false,
            rediffing: false,
            cancel_requested: false,
        }
    }

    /// Back at the gate after a publish (or a follow-up) that did not go through: say why, then
    /// wait for the person.
    fn back_to_review(&mut self, stage: Stage, why: String) -> Vec<Effect> {
        self.phase = Phase::Review;
        self.cancel_requested = false;
        self.following_up = false;
        vec![
            Effect::Status {
                stage,
                message: why,
            },
            Effect::Status {
                stage: Stage::Review,
                message:
                    "review the diff; approve to publish, or reject to end the run (the review \
                          is kept)"
                        .into(),
            },
        ]
    }

    fn run(&mut self, stage: Stage, effect: Effect) -> Vec<Effect> {
        self.phase = Phase::Running(stage);
        vec![effect]
    }

    fn clean_up(&mut self, outcome: Outcome) -> Vec<Effect> {
        self.phase = Phase::CleaningUp(outcome);
        vec![Effect::CleanUp]
    }

    fn approve(
        &mut self,
        selection: Selection,
        title: Option<String>,
        body: Option<String>,
        draft: bool,
    ) -> Vec<Effect> {
        self.run(
            Stage::Publish,
            Effect::Publish {
                selection,
                title,
                body,
                draft,
            },
        )
    }

    pub fn handle(&mut self, input: Input) -> Vec<Effect> {
        let phase = self.phase.clone();
        // The reason is the driver's business; here a stop is a cancel.
        let input = match input {
            Input::Command(Command::Stop(_)) => Input::Command(Command::Cancel),
            other => other,
        };
        match (phase, input) {
            (Phase::Idle, Input::Start) => self.run(Stage::Validate, Effect::Validate),
            (Phase::Idle, Input::Command(Command::Cancel)) => {
                self.phase = Phase::Done(Outcome::Cancelled {
                    stage: Stage::Validate,
                });
                vec![Effect::Finish(Outcome::Cancelled {
                    stage: Stage::Validate,
                })]
            }

            // Cancellation: ask the running stage to stop, then wait for it to say so.
            (Phase::Running(_), Input::Command(Command::Cancel)) => {
                if self.cancel_requested {
                    return vec![];
                }
                self.cancel_requested = true;
                vec![Effect::CancelStage]
            }
            (Phase::Review, Input::Command(Command::Cancel)) => self.clean_up(Outcome::Cancelled {
                stage: Stage::Review,
            }),
            (Phase::Running(Stage::Agent), Input::StageCancelled) => {
                // Salvage what the agent did before computing the end.
                self.after_diff = Some(Outcome::Cancelled {
                    stage: Stage::Agent,
                });
                self.run(Stage::Diff, Effect::ComputeDiff)
            }
            (
                Phase::Running(Stage::Publish),
                Input::StageFailed {
                    message,
                    retryable,
                    code,
                },
            ) if self.gate == Gate::Interactive => {
                let why = format!("{PUBLISH_FAILED}{message}");
                self.failed_publish = Some(Outcome::Failed {
                    stage: Stage::Publish,
                    message,
                    retryable,
                    code,
                });
                self.back_to_review(Stage::Publish, why)
            }
            (Phase::Running(Stage::Publish), Input::StageCancelled)
                if self.gate == Gate::Interactive =>
            {
                self.back_to_review(
                    Stage::Publish,
                    format!("{PUBLISH_CANCELLED}; nothing was published"),
                )
            }
            (Phase::Running(stage), Input::StageCancelled) if stage != Stage::Cleanup => {
                self.clean_up(Outcome::Cancelled { stage })
            }

            (Phase::Running(Stage::Validate), Input::StageOk) => {
                self.run(Stage::Clone, Effect::Clone)
            }
            (Phase::Running(Stage::Clone), Input::StageOk) if self.cancel_requested => self
                .clean_up(Outcome::Cancelled {
                    stage: Stage::Clone,
                }),
            (Phase::Running(Stage::Clone), Input::StageOk) => self.run(Stage::Setup, Effect::Setup),
            (Phase::Running(Stage::Setup), Input::StageOk) if self.cancel_requested => self
                .clean_up(Outcome::Cancelled {
                    stage: Stage::Setup,
                }),
            (Phase::Running(Stage::Setup), Input::StageOk) => {
                self.run(Stage::Agent, Effect::RunAgent { followup: None })
            }
            (Phase::Running(Stage::Agent), Input::StageOk) => {
                self.run(Stage::Diff, Effect::ComputeDiff)
            }
            (
                Phase::Running(Stage::Agent),
                Input::StageFailed {
                    message,
                    retryable,
                    code,
                },
            ) => {
                self.after_diff = Some(Outcome::Failed {
                    stage: Stage::Agent,
                    message,
                    retryable,
                    code,
                });
                self.run(Stage::Diff, Effect::ComputeDiff)
            }
            (Phase::Running(Stage::Diff), Input::StageFailed { message, .. })
                if std::mem::take(&mut self.rediffing) =>
            {
                self.back_to_review(
                    Stage::Diff,
                    format!("computing the diff again failed: {message}; the review is as it was"),
                )
            }
            (Phase::Running(Stage::Diff), Input::DiffReady { empty }) => {
                self.rediffing = false;
                let stopped = self.after_diff.take().or_else(|| {
                    self.cancel_requested
                        .then_some(Outcome::Cancelled { stage: Stage::Diff })
                });
                if let Some(outcome) = stopped {
                    // A follow-up that failed or was cancelled keeps the review it came from,
                    // with whatever it changed so far in the new diff.
                    if self.gate == Gate::Interactive && self.following_up {
                        let why = match outcome {
                            Outcome::Failed { message, .. } => format!(
                                "the follow-up failed: {message}; what it changed so far is in the diff"
                            ),
                            _ => {
                                "the follow-up was cancelled; what it changed so far is in the diff"
                                    .into()
                            }
                        };
                        return self.back_to_review(Stage::Agent, why);
                    }
                    return self.clean_up(outcome);
                }
                self.following_up = false;
                match (self.gate, empty) {
                    (Gate::Interactive, _) => {
                        self.phase = Phase::Review;
                        let message = if empty {
                            "the agent changed nothing; send a follow-up or start over"
                        } else {
                            "review the diff; approve to publish"
                        };
                        vec![Effect::Status {
                            stage: Stage::Review,
                            message: message.into(),
                        }]
                    }
                    (_, true) => self.clean_up(Outcome::Finished {
                        reason: "the agent changed nothing; there is nothing to publish".into(),
                    }),
                    (Gate::NoPr, false) => self.clean_up(Outcome::Finished {
                        reason: "--no-pr: patch saved".into(),
                    }),
                    (Gate::AutoApprove, false) => {
                        self.approve(Selection::default(), None, None, false)
                    }
                }
            }
            (Phase::Running(Stage::Publish), Input::StageOk) => self.clean_up(Outcome::Published),

            (
                Phase::Review,
                Input::Command(Command::Approve {
                    selection,
                    title,
                    body,
                    draft,
                }),
            ) => self.approve(selection, title, body, draft),
            (Phase::Review, Input::Command(Command::Reject)) => {
                let outcome = self.failed_publish.take().unwrap_or(Outcome::Finished {
                    reason: "rejected at review; patch saved".into(),
                });
                self.clean_up(outcome)
            }
            (Phase::Review, Input::Command(Command::FollowUp(text))) => {
                self.cancel_requested = false;
                self.following_up = true;
                self.run(
                    Stage::Agent,
                    Effect::RunAgent {
                        followup: Some(text),
                    },
                )
            }

            (Phase::Review, Input::Command(Command::Rediff(message))) => {
                self.cancel_requested = false;
                self.rediffing = true;
                let mut fx = vec![Effect::Status {
                    stage: Stage::Diff,
                    message,
                }];
                fx.extend(self.run(Stage::Diff, Effect::ComputeDiff));
                fx
            }

            (
                Phase::Running(Stage::Cleanup),
                Input::StageOk | Input::StageFailed { .. } | Input::StageCancelled,
            ) => {
                // Unreachable by construction; kept total.
                vec![]
            }
            (
                Phase::Running(stage),
                Input::StageFailed {
                    message,
                    retryable,
                    code,
                },
            ) => self.clean_up(Outcome::Failed {
                stage,
                message,
                retryable,
                code,
            }),
            (
                Phase::CleaningUp(outcome),
                Input::StageOk | Input::StageFailed { .. } | Input::StageCancelled,
            ) => {
                self.phase = Phase::Done(outcome.clone());
                vec![Effect::Finish(outcome)]
            }
            // Anything else (a command that makes no sense now, a late report) changes nothing.
            _ => vec![],
        }
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
