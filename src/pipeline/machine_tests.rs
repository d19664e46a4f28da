//! Unit tests of the pure pipeline state machine: every transition, no IO.

use super::*;

fn ok_through_diff(m: &mut Machine) {
    assert_eq!(m.handle(Input::Start), vec![Effect::Validate]);
    assert_eq!(m.handle(Input::StageOk), vec![Effect::Clone]);
    assert_eq!(m.handle(Input::StageOk), vec![Effect::Setup]);
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
    let mut m = Machine::new(Gate::NoPr);
    ok_through_diff(&mut m);
    assert_eq!(
        m.handle(Input::DiffReady { empty: false }),
        vec![Effect::CleanUp]
    );
    assert!(matches!(finish(&mut m), Outcome::Finished { .. }));
}

#[test]
fn auto_approve_publishes_everything() {
    let mut m = Machine::new(Gate::AutoApprove);
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
fn empty_diff_finishes_without_publishing() {
    for gate in [Gate::NoPr, Gate::AutoApprove] {
        let mut m = Machine::new(gate);
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
    let mut m = Machine::new(Gate::Interactive);
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
        ..Default::default()
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
    let mut m = Machine::new(Gate::Interactive);
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
    let mut m = Machine::new(Gate::Interactive);
    ok_through_diff(&mut m);
    m.handle(Input::DiffReady { empty: false });
    assert_eq!(
        m.handle(Input::Command(Command::Reject)),
        vec![Effect::CleanUp]
    );
    assert!(matches!(finish(&mut m), Outcome::Finished { .. }));

    let mut m = Machine::new(Gate::Interactive);
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
    for (ok_steps, stage) in [(0, Stage::Validate), (1, Stage::Clone), (2, Stage::Setup)] {
        let mut m = Machine::new(Gate::NoPr);
        m.handle(Input::Start);
        for _ in 0..ok_steps {
            m.handle(Input::StageOk);
        }
        let fx = m.handle(Input::StageFailed {
            message: "boom".into(),
            retryable: false,
            code: ErrorCode::Internal,
        });
        assert_eq!(fx, vec![Effect::CleanUp]);
        assert_eq!(
            finish(&mut m),
            Outcome::Failed {
                stage,
                message: "boom".into(),
                retryable: false,
                code: ErrorCode::Internal,
            }
        );
    }
}

#[test]
fn agent_failure_still_saves_the_diff() {
    let mut m = Machine::new(Gate::AutoApprove);
    m.handle(Input::Start);
    m.handle(Input::StageOk);
    m.handle(Input::StageOk);
    m.handle(Input::StageOk);
    let fx = m.handle(Input::StageFailed {
        message: "budget".into(),
        retryable: false,
        code: ErrorCode::ModelBudget,
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
            retryable: false,
            code: ErrorCode::ModelBudget,
        }
    );
}

#[test]
fn diff_failure_and_publish_failure() {
    let mut m = Machine::new(Gate::AutoApprove);
    ok_through_diff(&mut m);
    m.handle(Input::StageFailed {
        message: "git".into(),
        retryable: false,
        code: ErrorCode::Internal,
    });
    assert!(matches!(
        finish(&mut m),
        Outcome::Failed {
            stage: Stage::Diff,
            ..
        }
    ));

    let mut m = Machine::new(Gate::AutoApprove);
    ok_through_diff(&mut m);
    m.handle(Input::DiffReady { empty: false });
    m.handle(Input::StageFailed {
        message: "push rejected".into(),
        retryable: true,
        code: ErrorCode::Internal,
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
    let mut m = Machine::new(Gate::NoPr);
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
    let mut m = Machine::new(Gate::NoPr);
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
    let mut m = Machine::new(Gate::NoPr);
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
    let mut m = Machine::new(Gate::NoPr);
    m.handle(Input::Start);
    m.handle(Input::StageOk);
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
    let mut m = Machine::new(Gate::NoPr);
    assert!(matches!(
        m.handle(Input::Command(Command::Cancel)).as_slice(),
        [Effect::Finish(_)]
    ));
    let mut m = Machine::new(Gate::NoPr);
    ok_through_diff(&mut m);
    m.handle(Input::DiffReady { empty: false });
    finish(&mut m);
    assert_eq!(m.handle(Input::Command(Command::Cancel)), vec![]);
    assert_eq!(m.handle(Input::Start), vec![]);
}

#[test]
fn cancel_during_the_diff_ends_cancelled_without_review() {
    let mut m = Machine::new(Gate::Interactive);
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
    let mut m = Machine::new(Gate::NoPr);
    ok_through_diff(&mut m);
    m.handle(Input::DiffReady { empty: false });
    let fx = m.handle(Input::StageFailed {
        message: "rm failed".into(),
        retryable: false,
        code: ErrorCode::Internal,
    });
    assert!(
        matches!(fx.as_slice(), [Effect::Finish(Outcome::Finished { .. })]),
        "{fx:?}"
    );
}

#[test]
fn review_ignores_stage_reports_and_running_ignores_review_commands() {
    let mut m = Machine::new(Gate::Interactive);
    m.handle(Input::Start);
    assert_eq!(m.handle(Input::Command(Command::Reject)), vec![]);
    assert_eq!(
        m.handle(Input::Command(Command::FollowUp("x".into()))),
        vec![]
    );
    assert_eq!(m.phase, Phase::Running(Stage::Validate));
}

#[test]
fn effects_are_named_as_the_log_shows_them() {
    // The names the driver once took from `{effect:?}`: the log's `stage` field keeps them.
    let publish = Effect::Publish {
        selection: Selection::default(),
        title: None,
        body: None,
        draft: false,
    };
    for (effect, name) in [
        (Effect::Validate, "Validate"),
        (Effect::RunAgent { followup: None }, "RunAgent"),
        (Effect::ComputeDiff, "ComputeDiff"),
        (publish, "Publish"),
        (Effect::CleanUp, "CleanUp"),
        (Effect::Finish(Outcome::Published), "Finish"),
    ] {
        let debug = format!("{effect:?}");
        assert!(debug.starts_with(name), "{debug}");
        assert_eq!(effect.name(), name);
    }
}

fn in_review(m: &mut Machine) {
    ok_through_diff(m);
    m.handle(Input::DiffReady { empty: false });
    assert_eq!(m.phase, Phase::Review);
}

fn approve_all() -> Input {
    Input::Command(Command::Approve {
        selection: Selection::default(),
        title: None,
        body: None,
        draft: false,
    })
}

fn review_statuses(fx: &[Effect]) -> (String, String) {
    match fx {
        [
            Effect::Status {
                stage: Stage::Publish,
                message: why,
            },
            Effect::Status {
                stage: Stage::Review,
                message: next,
            },
        ] => (why.clone(), next.clone()),
        other => panic!("expected a publish note and a review status, got {other:?}"),
    }
}

#[test]
fn a_failed_publish_in_review_goes_back_to_review_and_a_retry_publishes() {
    let mut m = Machine::new(Gate::Interactive);
    in_review(&mut m);
    let sel = Selection {
        excluded_files: vec!["tests/a.py".into()],
        excluded_hunks: vec![],
        ..Default::default()
    };
    m.handle(Input::Command(Command::Approve {
        selection: sel.clone(),
        title: Some("t".into()),
        body: None,
        draft: false,
    }));
    assert_eq!(m.phase, Phase::Running(Stage::Publish));
    let fx = m.handle(Input::StageFailed {
        message: "401 Bad credentials".into(),
        retryable: false,
        code: ErrorCode::Internal,
    });
    let (why, next) = review_statuses(&fx);
    assert!(why.contains("publishing failed: 401"), "{why}");
    // The CLI's interactive gate asks again on a status that starts like the first one.
    assert!(next.starts_with("review the diff"), "{next}");
    assert_eq!(m.phase, Phase::Review, "no cleanup: the workspace stays");
    // Stage reports cannot end a review; a follow-up is still possible.
    assert_eq!(m.handle(Input::StageOk), vec![]);
    // The retry carries the selection it is given.
    let fx = m.handle(Input::Command(Command::Approve {
        selection: sel.clone(),
        title: Some("t".into()),
        body: None,
        draft: false,
    }));
    assert!(matches!(&fx[..], [Effect::Publish { selection, .. }] if *selection == sel));
    assert_eq!(m.handle(Input::StageOk), vec![Effect::CleanUp]);
    assert_eq!(finish(&mut m), Outcome::Published);
}

#[test]
fn rejecting_after_a_failed_publish_ends_with_that_failure() {
    let mut m = Machine::new(Gate::Interactive);
    in_review(&mut m);
    m.handle(approve_all());
    m.handle(Input::StageFailed {
        message: "push rejected".into(),
        retryable: true,
        code: ErrorCode::Internal,
    });
    assert_eq!(
        m.handle(Input::Command(Command::Reject)),
        vec![Effect::CleanUp]
    );
    assert_eq!(
        finish(&mut m),
        Outcome::Failed {
            stage: Stage::Publish,
            message: "push rejected".into(),
            retryable: true,
            code: ErrorCode::Internal,
        }
    );
}

#[test]
fn cancelling_a_publish_in_review_keeps_the_review() {
    let mut m = Machine::new(Gate::Interactive);
    in_review(&mut m);
    m.handle(approve_all());
    assert_eq!(
        m.handle(Input::Command(Command::Cancel)),
        vec![Effect::CancelStage]
    );
    let (why, _) = review_statuses(&m.handle(Input::StageCancelled));
    assert!(why.contains("cancelled"), "{why}");
    assert_eq!(m.phase, Phase::Review);
    // A cancel now (e.g. the app quits) ends the run as before; a fresh one is heard.
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
fn a_follow_up_after_a_failed_publish_reviews_again() {
    let mut m = Machine::new(Gate::Interactive);
    in_review(&mut m);
    m.handle(approve_all());
    m.handle(Input::StageFailed {
        message: "x".into(),
        retryable: false,
        code: ErrorCode::Internal,
    });
    assert_eq!(
        m.handle(Input::Command(Command::FollowUp("more".into()))),
        vec![Effect::RunAgent {
            followup: Some("more".into())
        }]
    );
    assert_eq!(m.handle(Input::StageOk), vec![Effect::ComputeDiff]);
    m.handle(Input::DiffReady { empty: false });
    assert_eq!(m.phase, Phase::Review);
}

#[test]
fn without_a_person_at_the_gate_a_failed_publish_still_ends_the_run() {
    let mut m = Machine::new(Gate::AutoApprove);
    ok_through_diff(&mut m);
    m.handle(Input::DiffReady { empty: false });
    assert_eq!(
        m.handle(Input::StageFailed {
            message: "401".into(),
            retryable: false,
            code: ErrorCode::Internal,
        }),
        vec![Effect::CleanUp]
    );
    let mut m = Machine::new(Gate::AutoApprove);
    ok_through_diff(&mut m);
    m.handle(Input::DiffReady { empty: false });
    m.handle(Input::Command(Command::Cancel));
    assert_eq!(m.handle(Input::StageCancelled), vec![Effect::CleanUp]);
    assert_eq!(
        finish(&mut m),
        Outcome::Cancelled {
            stage: Stage::Publish
        }
    );
}

#[test]
fn a_follow_up_that_fails_or_is_cancelled_keeps_the_review() {
    let mut m = Machine::new(Gate::Interactive);
    in_review(&mut m);
    m.handle(Input::Command(Command::FollowUp("more".into())));
    assert_eq!(
        m.handle(Input::StageFailed {
            message: "the model is out of turns".into(),
            retryable: false,
            code: ErrorCode::Internal,
        }),
        vec![Effect::ComputeDiff],
        "what it changed so far is diffed"
    );
    let fx = m.handle(Input::DiffReady { empty: false });
    match fx.as_slice() {
        [
            Effect::Status {
                stage: Stage::Agent,
                message,
            },
            Effect::Status {
                stage: Stage::Review,
                ..
            },
        ] => assert!(message.contains("follow-up failed: the model is out of turns")),
        other => panic!("{other:?}"),
    }
    assert_eq!(m.phase, Phase::Review);

    // Cancelled (Ctrl+C while it runs): the same.
    m.handle(Input::Command(Command::FollowUp("again".into())));
    assert_eq!(
        m.handle(Input::Command(Command::Cancel)),
        vec![Effect::CancelStage]
    );
    assert_eq!(m.handle(Input::StageCancelled), vec![Effect::ComputeDiff]);
    let fx = m.handle(Input::DiffReady { empty: false });
    assert!(
        matches!(&fx[..], [Effect::Status { stage: Stage::Agent, message }, _] if message.contains("cancelled")),
        "{fx:?}"
    );
    assert_eq!(m.phase, Phase::Review);
    // A cancel in review still ends the run.
    assert_eq!(
        m.handle(Input::Command(Command::Cancel)),
        vec![Effect::CleanUp]
    );
}

#[test]
fn the_first_agent_run_failing_still_ends_an_interactive_run() {
    let mut m = Machine::new(Gate::Interactive);
    m.handle(Input::Start);
    m.handle(Input::StageOk);
    m.handle(Input::StageOk);
    m.handle(Input::StageOk);
    m.handle(Input::StageFailed {
        message: "budget".into(),
        retryable: false,
        code: ErrorCode::Internal,
    });
    assert_eq!(
        m.handle(Input::DiffReady { empty: false }),
        vec![Effect::CleanUp]
    );
    assert!(matches!(
        finish(&mut m),
        Outcome::Failed {
            stage: Stage::Agent,
            ..
        }
    ));
}

#[test]
fn a_cancel_racing_a_finished_setup_does_not_start_the_agent() {
    let mut m = Machine::new(Gate::NoPr);
    m.handle(Input::Start);
    m.handle(Input::StageOk);
    assert_eq!(m.handle(Input::StageOk), vec![Effect::Setup]);
    m.handle(Input::Command(Command::Cancel));
    assert_eq!(m.handle(Input::StageOk), vec![Effect::CleanUp]);
    assert_eq!(
        finish(&mut m),
        Outcome::Cancelled {
            stage: Stage::Setup
        }
    );
}

#[test]
fn a_rediff_in_review_computes_the_diff_again_and_comes_back_to_review() {
    let mut m = Machine::new(Gate::Interactive);
    ok_through_diff(&mut m);
    m.handle(Input::DiffReady { empty: false });
    assert_eq!(m.phase, Phase::Review);
    assert_eq!(
        m.handle(Input::Command(Command::Rediff("you edited a.py".into()))),
        vec![
            Effect::Status {
                stage: Stage::Diff,
                message: "you edited a.py".into()
            },
            Effect::ComputeDiff
        ]
    );
    assert!(matches!(
        m.handle(Input::DiffReady { empty: false }).as_slice(),
        [Effect::Status {
            stage: Stage::Review,
            ..
        }]
    ));
    assert_eq!(m.phase, Phase::Review);
    // A re-diff that fails keeps the review.
    m.handle(Input::Command(Command::Rediff("you edited b.py".into())));
    let fx = m.handle(Input::StageFailed {
        message: "disk full".into(),
        retryable: false,
        code: ErrorCode::DiffFailed,
    });
    assert_eq!(m.phase, Phase::Review, "{fx:?}");
    // Only in review: while the agent runs, a re-diff request changes nothing.
    let mut busy = Machine::new(Gate::Interactive);
    busy.handle(Input::Start);
    assert!(
        busy.handle(Input::Command(Command::Rediff("x".into())))
            .is_empty()
    );
}
