//! The pipeline's stage logic as a pure state machine: inputs in, effects out, no IO.
//!
//! Invariants: exactly one stage effect is outstanding at a time; every path ends in `CleanUp`
//! followed by exactly one `Finish`; an agent that stops for any reason still gets its diff computed
//! and saved before the run ends (nothing lost); cancellation while a stage runs first asks that
//! stage to stop and waits for it, so cleanup never races a running stage.

use crate::event::Stage;

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

/// Which hunks go into the PR; the default is everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub excluded_files: Vec<String>,
    /// (file path, hunk index within that file).
    pub excluded_hunks: Vec<(String, usize)>,
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
    Cancel,
    /// Cancel, saying why (e.g. a server's time limit). The machine treats it as `Cancel`; the
    /// driver keeps the reason for the run's final error.
    Stop(String),
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
    },
    /// The running stage stopped because it was asked to.
    StageCancelled,
    Command(Command),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Validate,
    Clone,
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
    /// Effects that start a stage whose completion comes back as an `Input`.
    pub fn is_stage(&self) -> bool {
        matches!(
            self,
            Effect::Validate
                | Effect::Clone
                | Effect::RunAgent { .. }
                | Effect::ComputeDiff
                | Effect::Publish { .. }
                | Effect::CleanUp
        )
    }
}

#[derive(Debug, Clone)]
pub struct Machine {
    pub phase: Phase,
    gate: Gate,
    can_publish: bool,
    /// Why the agent stopped, held while its diff is salvaged.
    after_diff: Option<Outcome>,
    cancel_requested: bool,
}

impl Machine {
    pub fn new(gate: Gate, can_publish: bool) -> Self {
        Machine {
            phase: Phase::Idle,
            gate,
            can_publish,
            after_diff: None,
            cancel_requested: false,
        }
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
        if self.can_publish {
            self.run(
                Stage::Publish,
                Effect::Publish {
                    selection,
                    title,
                    body,
                    draft,
                },
            )
        } else {
            let mut fx = vec![Effect::Status {
                stage: Stage::Publish,
                message: "publishing is not available in this build; the patch is saved in the run folder".into(),
            }];
            fx.extend(self.clean_up(Outcome::Finished {
                reason: "approved; patch saved".into(),
            }));
            fx
        }
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
            (Phase::Running(Stage::Clone), Input::StageOk) => {
                self.run(Stage::Agent, Effect::RunAgent { followup: None })
            }
            (Phase::Running(Stage::Agent), Input::StageOk) => {
                self.run(Stage::Diff, Effect::ComputeDiff)
            }
            (Phase::Running(Stage::Agent), Input::StageFailed { message, retryable }) => {
                self.after_diff = Some(Outcome::Failed {
                    stage: Stage::Agent,
                    message,
                    retryable,
                });
                self.run(Stage::Diff, Effect::ComputeDiff)
            }
            (Phase::Running(Stage::Diff), Input::DiffReady { empty }) => {
                if let Some(outcome) = self.after_diff.take() {
                    return self.clean_up(outcome);
                }
                if self.cancel_requested {
                    return self.clean_up(Outcome::Cancelled { stage: Stage::Diff });
                }
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
            (Phase::Review, Input::Command(Command::Reject)) => self.clean_up(Outcome::Finished {
                reason: "rejected at review; patch saved".into(),
            }),
            (Phase::Review, Input::Command(Command::FollowUp(text))) => {
                self.cancel_requested = false;
                self.run(
                    Stage::Agent,
                    Effect::RunAgent {
                        followup: Some(text),
                    },
                )
            }

            (
                Phase::Running(Stage::Cleanup),
                Input::StageOk | Input::StageFailed { .. } | Input::StageCancelled,
            ) => {
                // Unreachable by construction; kept total.
                vec![]
            }
            (Phase::Running(stage), Input::StageFailed { message, retryable }) => {
                self.clean_up(Outcome::Failed {
                    stage,
                    message,
                    retryable,
                })
            }
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
mod tests {
    use super::*;

    fn ok_through_diff(m: &mut Machine) {
        assert_eq!(m.handle(Input::Start), vec![Effect::Validate]);
        assert_eq!(m.handle(Input::StageOk), vec![Effect::Clone]);
        assert_eq!(
            m.handle(Input::StageOk),
            vec![Effect::RunAgent { followup: None }]
        );
        assert_eq!(m.handle(Input::StageOk), vec![Effect::ComputeDiff]);
    }

    fn finish(m: &mut Machine) -> Outcome {
        match m.handle(Input::StageOk).as_slice() {
            [Effect::Finish(o)] => {
                assert_eq!(m.phase, Phase::Done(o.clone()));
                o.clone()
            }
            other => panic!("expected Finish, got {other:?}"),
        }
    }

    #[test]
    fn no_pr_stops_after_the_diff() {
        let mut m = Machine::new(Gate::NoPr, true);
        ok_through_diff(&mut m);
        assert_eq!(
            m.handle(Input::DiffReady { empty: false }),
            vec![Effect::CleanUp]
        );
        assert!(matches!(finish(&mut m), Outcome::Finished { .. }));
    }

    #[test]
    fn auto_approve_publishes_everything() {
        let mut m = Machine::new(Gate::AutoApprove, true);
        ok_through_diff(&mut m);
        assert_eq!(
            m.handle(Input::DiffReady { empty: false }),
            vec![Effect::Publish {
                selection: Selection::default(),
                title: None,
                body: None,
                draft: false
            }]
        );
        assert_eq!(m.phase, Phase::Running(Stage::Publish));
        assert_eq!(m.handle(Input::StageOk), vec![Effect::CleanUp]);
        assert_eq!(finish(&mut m), Outcome::Published);
    }

    #[test]
    fn auto_approve_without_publisher_saves_the_patch() {
        let mut m = Machine::new(Gate::AutoApprove, false);
        ok_through_diff(&mut m);
        let fx = m.handle(Input::DiffReady { empty: false });
        assert!(matches!(
            fx[0],
            Effect::Status {
                stage: Stage::Publish,
                ..
            }
        ));
        assert_eq!(fx[1], Effect::CleanUp);
        assert!(matches!(finish(&mut m), Outcome::Finished { .. }));
    }

    #[test]
    fn empty_diff_finishes_without_publishing() {
        for gate in [Gate::NoPr, Gate::AutoApprove] {
            let mut m = Machine::new(gate, true);
            ok_through_diff(&mut m);
            assert_eq!(
                m.handle(Input::DiffReady { empty: true }),
                vec![Effect::CleanUp]
            );
            assert!(
                matches!(finish(&mut m), Outcome::Finished { reason } if reason.contains("nothing"))
            );
        }
    }

    #[test]
    fn interactive_review_approve_with_selection() {
        let mut m = Machine::new(Gate::Interactive, true);
        ok_through_diff(&mut m);
        let fx = m.handle(Input::DiffReady { empty: false });
        assert!(matches!(
            fx.as_slice(),
            [Effect::Status {
                stage: Stage::Review,
                ..
            }]
        ));
        assert_eq!(m.phase, Phase::Review);
        // Commands that make no sense in review are ignored.
        assert_eq!(m.handle(Input::StageOk), vec![]);
        let sel = Selection {
            excluded_files: vec!["a".into()],
            excluded_hunks: vec![("b".into(), 1)],
        };
        let fx = m.handle(Input::Command(Command::Approve {
            selection: sel.clone(),
            title: Some("t".into()),
            body: None,
            draft: true,
        }));
        assert_eq!(
            fx,
            vec![Effect::Publish {
                selection: sel,
                title: Some("t".into()),
                body: None,
                draft: true
            }]
        );
    }

    #[test]
    fn interactive_follow_up_runs_the_agent_again() {
        let mut m = Machine::new(Gate::Interactive, true);
        ok_through_diff(&mut m);
        m.handle(Input::DiffReady { empty: true });
        let fx = m.handle(Input::Command(Command::FollowUp("also x".into())));
        assert_eq!(
            fx,
            vec![Effect::RunAgent {
                followup: Some("also x".into())
            }]
        );
        assert_eq!(m.handle(Input::StageOk), vec![Effect::ComputeDiff]);
        m.handle(Input::DiffReady { empty: false });
        assert_eq!(m.phase, Phase::Review);
    }

    #[test]
    fn interactive_reject_and_cancel_in_review() {
        let mut m = Machine::new(Gate::Interactive, true);
        ok_through_diff(&mut m);
        m.handle(Input::DiffReady { empty: false });
        assert_eq!(
            m.handle(Input::Command(Command::Reject)),
            vec![Effect::CleanUp]
        );
        assert!(matches!(finish(&mut m), Outcome::Finished { .. }));

        let mut m = Machine::new(Gate::Interactive, true);
        ok_through_diff(&mut m);
        m.handle(Input::DiffReady { empty: false });
        assert_eq!(
            m.handle(Input::Command(Command::Cancel)),
            vec![Effect::CleanUp]
        );
        assert_eq!(
            finish(&mut m),
            Outcome::Cancelled {
                stage: Stage::Review
            }
        );
    }

    #[test]
    fn failure_in_each_stage_cleans_up_then_finishes() {
        for (ok_steps, stage) in [(0, Stage::Validate), (1, Stage::Clone)] {
            let mut m = Machine::new(Gate::NoPr, true);
            m.handle(Input::Start);
            for _ in 0..ok_steps {
                m.handle(Input::StageOk);
            }
            let fx = m.handle(Input::StageFailed {
                message: "boom".into(),
                retryable: false,
            });
            assert_eq!(fx, vec![Effect::CleanUp]);
            assert_eq!(
                finish(&mut m),
                Outcome::Failed {
                    stage,
                    message: "boom".into(),
                    retryable: false
                }
            );
        }
    }

    #[test]
    fn agent_failure_still_saves_the_diff() {
        let mut m = Machine::new(Gate::AutoApprove, true);
        m.handle(Input::Start);
        m.handle(Input::StageOk);
        m.handle(Input::StageOk);
        let fx = m.handle(Input::StageFailed {
            message: "budget".into(),
            retryable: false,
        });
        assert_eq!(fx, vec![Effect::ComputeDiff]);
        // Even a non-empty diff is not published after a failure.
        assert_eq!(
            m.handle(Input::DiffReady { empty: false }),
            vec![Effect::CleanUp]
        );
        assert_eq!(
            finish(&mut m),
            Outcome::Failed {
                stage: Stage::Agent,
                message: "budget".into(),
                retryable: false
            }
        );
    }

    #[test]
    fn diff_failure_and_publish_failure() {
        let mut m = Machine::new(Gate::AutoApprove, true);
        ok_through_diff(&mut m);
        m.handle(Input::StageFailed {
            message: "git".into(),
            retryable: false,
        });
        assert!(matches!(
            finish(&mut m),
            Outcome::Failed {
                stage: Stage::Diff,
                ..
            }
        ));

        let mut m = Machine::new(Gate::AutoApprove, true);
        ok_through_diff(&mut m);
        m.handle(Input::DiffReady { empty: false });
        m.handle(Input::StageFailed {
            message: "push rejected".into(),
            retryable: true,
        });
        assert!(matches!(
            finish(&mut m),
            Outcome::Failed {
                stage: Stage::Publish,
                retryable: true,
                ..
            }
        ));
    }

    #[test]
    fn cancel_while_running_waits_for_the_stage() {
        let mut m = Machine::new(Gate::NoPr, true);
        m.handle(Input::Start);
        m.handle(Input::StageOk);
        assert_eq!(
            m.handle(Input::Command(Command::Cancel)),
            vec![Effect::CancelStage]
        );
        // A second cancel does not ask again.
        assert_eq!(m.handle(Input::Command(Command::Cancel)), vec![]);
        assert_eq!(m.phase, Phase::Running(Stage::Clone));
        assert_eq!(m.handle(Input::StageCancelled), vec![Effect::CleanUp]);
        assert_eq!(
            finish(&mut m),
            Outcome::Cancelled {
                stage: Stage::Clone
            }
        );
    }

    #[test]
    fn a_stop_with_a_reason_is_a_cancel_to_the_machine() {
        let mut m = Machine::new(Gate::NoPr, true);
        m.handle(Input::Start);
        m.handle(Input::StageOk);
        assert_eq!(
            m.handle(Input::Command(Command::Stop("time limit".into()))),
            vec![Effect::CancelStage]
        );
        assert_eq!(m.handle(Input::StageCancelled), vec![Effect::CleanUp]);
        assert_eq!(
            finish(&mut m),
            Outcome::Cancelled {
                stage: Stage::Clone
            }
        );
    }

    #[test]
    fn cancel_racing_a_finished_clone_does_not_start_the_agent() {
        let mut m = Machine::new(Gate::NoPr, true);
        m.handle(Input::Start);
        m.handle(Input::StageOk);
        m.handle(Input::Command(Command::Cancel));
        assert_eq!(m.handle(Input::StageOk), vec![Effect::CleanUp]);
        assert_eq!(
            finish(&mut m),
            Outcome::Cancelled {
                stage: Stage::Clone
            }
        );
    }

    #[test]
    fn cancel_during_agent_salvages_the_diff() {
        let mut m = Machine::new(Gate::NoPr, true);
        m.handle(Input::Start);
        m.handle(Input::StageOk);
        m.handle(Input::StageOk);
        assert_eq!(
            m.handle(Input::Command(Command::Cancel)),
            vec![Effect::CancelStage]
        );
        assert_eq!(m.handle(Input::StageCancelled), vec![Effect::ComputeDiff]);
        assert_eq!(
            m.handle(Input::DiffReady { empty: false }),
            vec![Effect::CleanUp]
        );
        assert_eq!(
            finish(&mut m),
            Outcome::Cancelled {
                stage: Stage::Agent
            }
        );
    }

    #[test]
    fn cancel_before_start_and_after_done() {
        let mut m = Machine::new(Gate::NoPr, true);
        assert!(matches!(
            m.handle(Input::Command(Command::Cancel)).as_slice(),
            [Effect::Finish(_)]
        ));
        let mut m = Machine::new(Gate::NoPr, true);
        ok_through_diff(&mut m);
        m.handle(Input::DiffReady { empty: false });
        finish(&mut m);
        assert_eq!(m.handle(Input::Command(Command::Cancel)), vec![]);
        assert_eq!(m.handle(Input::Start), vec![]);
    }

    #[test]
    fn cancel_during_the_diff_ends_cancelled_without_review() {
        let mut m = Machine::new(Gate::Interactive, true);
        ok_through_diff(&mut m);
        assert_eq!(
            m.handle(Input::Command(Command::Cancel)),
            vec![Effect::CancelStage]
        );
        assert_eq!(
            m.handle(Input::DiffReady { empty: false }),
            vec![Effect::CleanUp]
        );
        assert_eq!(finish(&mut m), Outcome::Cancelled { stage: Stage::Diff });
    }

    #[test]
    fn a_failing_cleanup_still_finishes_with_the_run_outcome() {
        let mut m = Machine::new(Gate::NoPr, true);
        ok_through_diff(&mut m);
        m.handle(Input::DiffReady { empty: false });
        let fx = m.handle(Input::StageFailed {
            message: "rm failed".into(),
            retryable: false,
        });
        assert!(
            matches!(fx.as_slice(), [Effect::Finish(Outcome::Finished { .. })]),
            "{fx:?}"
        );
    }

    #[test]
    fn review_ignores_stage_reports_and_running_ignores_review_commands() {
        let mut m = Machine::new(Gate::Interactive, true);
        m.handle(Input::Start);
        assert_eq!(m.handle(Input::Command(Command::Reject)), vec![]);
        assert_eq!(
            m.handle(Input::Command(Command::FollowUp("x".into()))),
            vec![]
        );
        assert_eq!(m.phase, Phase::Running(Stage::Validate));
    }

    #[test]
    fn stage_effects_are_marked() {
        assert!(Effect::Validate.is_stage());
        assert!(Effect::CleanUp.is_stage());
        assert!(!Effect::CancelStage.is_stage());
        assert!(!Effect::Finish(Outcome::Published).is_stage());
    }
}
