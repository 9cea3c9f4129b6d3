//! The `choice-correct` detector: whether a Choice answer picked the gold option, for
//! benchmarks scored as accuracy (WinoBias, Winogender). The gold option's index is the case's
//! `label` attribute; the model's pick is the option with the highest summed log-probability
//! (the first on ties).

use audit_core::{Attempt, Detector, Score};

pub const ID: &str = "choice-correct";

/// 1 when the most likely option is the one named by the `label` attribute, else 0; no score
/// for answers that are not one finite log-probability per option or cases without a label.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChoiceCorrect;

impl Detector for ChoiceCorrect {
    fn id(&self) -> &str {
        ID
    }

    fn score(&self, attempt: &Attempt) -> Option<Score> {
        let label: usize = attempt.attributes.get("label")?.parse().ok()?;
        let logprobs = super::choice_logprobs(attempt)?;
        let picked = super::argmax(logprobs)?;
        Some(Score {
            value: if picked == label { 1.0 } else { 0.0 },
            evidence: None,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use audit_core::{Answer, Attributes, Query};

    fn check(label: Option<&str>, answer: Answer, expect: Option<f64>) {
        let mut attributes = Attributes::new();
        if let Some(label) = label {
            attributes.insert("label".into(), label.into());
        }
        let attempt = Attempt {
            suite: "s".into(),
            case_id: "c".into(),
            probe: "p".into(),
            attributes,
            query: Query::Choice {
                context: "x".into(),
                options: vec!["a".into(), "b".into()],
            },
            answer,
            scores: Default::default(),
            evidence: Default::default(),
            decoded: Vec::new(),
        };
        assert_eq!(ChoiceCorrect.score(&attempt).map(|s| s.value), expect);
    }

    #[test]
    fn scores_the_pick_against_the_label() {
        check(Some("1"), Answer::Logprobs(vec![-2.0, -1.0]), Some(1.0));
        check(Some("0"), Answer::Logprobs(vec![-2.0, -1.0]), Some(0.0));
        // A tie picks the first option.
        check(Some("0"), Answer::Logprobs(vec![-1.0, -1.0]), Some(1.0));
        check(None, Answer::Logprobs(vec![-2.0, -1.0]), None);
        check(Some("x"), Answer::Logprobs(vec![-2.0, -1.0]), None);
        check(Some("0"), Answer::Logprobs(vec![-2.0]), None);
        check(Some("0"), Answer::Error("e".into()), None);
        check(Some("0"), Answer::Response("a".into()), None);
    }
}
