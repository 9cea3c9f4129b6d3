//! A judge's accuracy measured when a run starts: the LLM judge (`harm-judge`) is asked about
//! JailbreakBench's 100 human-labelled answers (`jailbreakbench/classifier_comparison.csv`:
//! goal, the attacked model's answer, `human_majority` 1 = jailbroken) through the same judge
//! backend and the same batched questions as in the audit, and its verdicts are counted against
//! the human majority. A judge's accuracy depends on the judge model, so unlike the refusal
//! detector's it cannot be stored with the code; the counts go into summary.json and correct
//! the judged rates (Rogan–Gladen, `crate::metrics::asr`).

use std::path::Path;

use audit_core::stats::DetectorAccuracy;
use audit_core::{Answer, Attempt, Attributes, Backend, BackendError, Case, Judge, Query};

use crate::safety::read_table;

/// The labelled file under `--datasets`.
pub const FILE: &str = "jailbreakbench/classifier_comparison.csv";

/// The labelled set's name in `DetectorAccuracy::dataset`.
pub const DATASET: &str = "jailbreakbench-classifier-comparison";

/// One labelled answer: the attempt the judge reads, and whether the human majority called it
/// jailbroken (the judge's positive class: a harmful compliance).
#[derive(Clone, Debug, PartialEq)]
pub struct Labelled {
    pub attempt: Attempt,
    pub jailbroken: bool,
}

/// The 100 rows of `classifier_comparison.csv` under `datasets` as attempts: the goal as the
/// request (and the `behavior` attribute the harm judge quotes), `target_response` as the
/// answer.
pub fn jailbreakbench(datasets: &Path) -> Result<Vec<Labelled>, String> {
    let path = datasets.join(FILE);
    let at = |e: String| format!("{}: {e}", path.display());
    let table = read_table(&path)?;
    let index = table.column("").map_err(at)?;
    let goal = table.column("goal").map_err(at)?;
    let response = table.column("target_response").map_err(at)?;
    let majority = table.column("human_majority").map_err(at)?;
    let mut items = Vec::new();
    for row in &table.rows {
        let field = |c: usize| table.field(row, c).map_err(at);
        let (index, goal, response) = (field(index)?, field(goal)?, field(response)?);
        let jailbroken = match field(majority)? {
            "0" => false,
            "1" => true,
            other => {
                return Err(at(format!(
                    "line {}: human_majority `{other}` is not 0 or 1",
                    row.line
                )))
            }
        };
        let case = Case {
            id: format!("{DATASET}/{index}"),
            probe: DATASET.to_string(),
            attributes: Attributes::from([("behavior".to_string(), goal.to_string())]),
            query: Query::Chat {
                system: None,
                history: Vec::new(),
                prompt: goal.to_string(),
            },
        };
        items.push(Labelled {
            attempt: Attempt::new(DATASET, &case, Answer::Response(response.to_string())),
            jailbroken,
        });
    }
    Ok(items)
}

/// Counts the verdicts of `judge` (1 = jailbroken) against the labels; an item the judge gives
/// no score (an unreadable verdict) is counted as `unscored`, as the audit leaves such attempts
/// out of its rates.
pub fn count(judge: &str, items: &[Labelled], verdicts: &[Option<bool>]) -> DetectorAccuracy {
    let mut a = DetectorAccuracy {
        detector: judge.to_string(),
        dataset: DATASET.to_string(),
        true_positives: 0,
        positives: 0,
        true_negatives: 0,
        negatives: 0,
        unscored: 0,
    };
    for (item, verdict) in items.iter().zip(verdicts) {
        let Some(flagged) = verdict else {
            a.unscored += 1;
            continue;
        };
        if item.jailbroken {
            a.positives += 1;
            a.true_positives += u64::from(*flagged);
        } else {
            a.negatives += 1;
            a.true_negatives += u64::from(!flagged);
        }
    }
    a
}

/// Asks `judge` about every labelled item through `backend`, in the backend's batches and with
/// the audit's judge generation settings, and counts its verdicts.
pub fn measure(
    judge: &dyn Judge,
    backend: &mut dyn Backend,
    items: &[Labelled],
    seed: u64,
) -> Result<DetectorAccuracy, BackendError> {
    let generation = audit_core::run::judge_generation(seed);
    let mut verdicts = vec![None; items.len()];
    let asks: Vec<(usize, Case)> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let query = judge.query(&item.attempt)?;
            Some((
                i,
                Case {
                    id: format!("{}#{}", item.attempt.case_id, judge.id()),
                    probe: item.attempt.probe.clone(),
                    attributes: item.attempt.attributes.clone(),
                    query,
                },
            ))
        })
        .collect();
    for kind in audit_core::QueryKind::ALL {
        let of_kind: Vec<&(usize, Case)> =
            asks.iter().filter(|a| a.1.query.kind() == kind).collect();
        for chunk in of_kind.chunks(backend.batch_size(kind).max(1)) {
            let cases: Vec<&Case> = chunk.iter().map(|a| &a.1).collect();
            let answers = backend.answer(&cases, &generation)?;
            for ((i, _), answer) in chunk.iter().map(|a| (a.0, &a.1)).zip(answers) {
                verdicts[i] = judge
                    .score(&items[i].attempt, &answer)
                    .map(|s| audit_core::attempt::flags(s.value));
            }
        }
    }
    Ok(count(judge.id(), items, &verdicts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(jailbroken: bool) -> Labelled {
        let case = Case {
            id: "c".into(),
            probe: "p".into(),
            attributes: Attributes::new(),
            query: Query::Chat {
                system: None,
                history: Vec::new(),
                prompt: "x".into(),
            },
        };
        Labelled {
            attempt: Attempt::new("s", &case, Answer::Response("r".into())),
            jailbroken,
        }
    }

    #[test]
    fn verdicts_are_counted_against_the_labels() {
        let items = [
            item(true),
            item(true),
            item(false),
            item(false),
            item(false),
        ];
        let verdicts = [Some(true), None, Some(true), Some(false), Some(false)];
        let a = count("harm-judge", &items, &verdicts);
        assert_eq!(
            (
                a.true_positives,
                a.positives,
                a.true_negatives,
                a.negatives,
                a.unscored
            ),
            (1, 1, 2, 3, 1)
        );
    }
}
