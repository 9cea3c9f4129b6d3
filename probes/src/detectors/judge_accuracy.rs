//! A judge's accuracy measured when a run starts: every LLM judge is asked about human-labelled
//! answers through the same judge backend and the same batched questions as in the audit, and
//! its verdicts are counted against the labels. A judge's accuracy depends on the judge model,
//! so unlike the refusal detector's it cannot be stored with the code; the counts go into
//! summary.json (with Wilson intervals) and correct the judged rates (Rogan–Gladen,
//! `crate::metrics::asr`).
//!
//! Label sets (`sets`): JailbreakBench's 100 answers (`jailbreakbench/classifier_comparison.csv`:
//! goal, the attacked model's answer, `human_majority` 1 = jailbroken) for the judges of harmful
//! answers; XSTest's labelled completions (held-out split, full or partial refusal = 1) for
//! `wildguard-refusal`; and a user's own file (`user_labels`: CSV `prompt,response,label`) for
//! every judge. HarmBench's validation behaviours (`harmbench_behaviors_text_val.csv`) carry no
//! labelled completions, so they cannot measure a judge; none are staged.

use std::path::Path;

use audit_core::stats::DetectorAccuracy;
use audit_core::{Answer, Attempt, Attributes, Backend, BackendError, Case, Judge, Query};

use crate::safety::read_table;

/// The labelled file under `--datasets`.
pub const FILE: &str = "jailbreakbench/classifier_comparison.csv";

/// The labelled set's name in `DetectorAccuracy::dataset`.
pub const DATASET: &str = "jailbreakbench-classifier-comparison";

/// One labelled answer: the attempt the judge reads, and whether the humans put it in the
/// judge's positive class (a harmful compliance: the human majority called it jailbroken; a
/// refusal, for a refusal judge; what the user's label says).
#[derive(Clone, Debug, PartialEq)]
pub struct Labelled {
    pub attempt: Attempt,
    pub positive: bool,
}

/// The XSTest completion files' labelled set, held-out split (prompt numbers that are multiples
/// of 4, all five models; the same split the refusal detector is measured on).
pub const XSTEST_DATASET: &str = "xstest-completions-held-out";

/// A user's labelled file's name in `DetectorAccuracy::dataset`.
pub fn user_dataset(path: &Path) -> String {
    format!(
        "user:{}",
        path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned()
        )
    )
}

/// Which built-in label sets measure a judge: the harmful-answer judges on JailbreakBench, the
/// refusal judge on XSTest; none for a judge whose positive class no staged file labels (the
/// toxicity classifier, judges of other registries).
pub fn sets(judge: &str) -> &'static [&'static str] {
    match judge {
        "harm-judge" | "harmbench-cls" | "llama-guard-3" | "shieldgemma" | "wildguard" => {
            &[DATASET]
        }
        "wildguard-refusal" => &[XSTEST_DATASET],
        _ => &[],
    }
}

/// The file a built-in label set reads, under the datasets folder.
pub fn set_file(set: &str) -> &'static str {
    if set == XSTEST_DATASET {
        "xstest/model_completions"
    } else {
        FILE
    }
}

/// A built-in label set's items.
pub fn load_set(set: &str, datasets: &Path) -> Result<Vec<Labelled>, String> {
    if set == XSTEST_DATASET {
        xstest(datasets)
    } else {
        jailbreakbench(datasets)
    }
}

fn labelled(dataset: &str, id: &str, prompt: &str, response: &str, positive: bool) -> Labelled {
    let case = Case {
        id: format!("{dataset}/{id}"),
        probe: dataset.to_string(),
        attributes: Attributes::from([("behavior".to_string(), prompt.to_string())]),
        query: Query::Chat {
            system: None,
            history: Vec::new(),
            prompt: prompt.to_string(),
        },
    };
    Labelled {
        attempt: Attempt::new(dataset, &case, Answer::Response(response.to_string())),
        positive,
    }
}

/// A user's labelled answers: a CSV file with the columns `prompt`, `response` and `label`
/// (1 = the judge should flag the response, 0 = not; `true`/`false` also read), in any order,
/// other columns ignored.
pub fn user_labels(path: &Path) -> Result<Vec<Labelled>, String> {
    let at = |e: String| format!("{}: {e}", path.display());
    let table = read_table(path)?;
    let prompt = table.column("prompt").map_err(at)?;
    let response = table.column("response").map_err(at)?;
    let label = table.column("label").map_err(at)?;
    let dataset = user_dataset(path);
    let mut items = Vec::new();
    for (n, row) in table.rows.iter().enumerate() {
        let field = |c: usize| table.field(row, c).map_err(at);
        let positive = match field(label)?.trim() {
            "1" | "true" => true,
            "0" | "false" => false,
            other => {
                return Err(at(format!(
                    "line {}: label `{other}` is not 1 or 0",
                    row.line
                )))
            }
        };
        items.push(labelled(
            &dataset,
            &(n + 1).to_string(),
            field(prompt)?,
            field(response)?,
            positive,
        ));
    }
    if items.is_empty() {
        return Err(at("no labelled rows".to_string()));
    }
    Ok(items)
}

/// XSTest's labelled completions of the held-out prompts (numbers that are multiples of 4),
/// positive = full or partial refusal.
pub fn xstest(datasets: &Path) -> Result<Vec<Labelled>, String> {
    let mut items = Vec::new();
    for model in crate::safety::labelled::XSTEST_MODELS {
        let path = datasets.join(format!(
            "xstest/model_completions/xstest_v2_completions_{model}.csv"
        ));
        let at = |e: String| format!("{}: {e}", path.display());
        let table = read_table(&path)?;
        let (id, prompt, completion, label) = (
            table.column("id").map_err(at)?,
            table.column("prompt").map_err(at)?,
            table.column("completion").map_err(at)?,
            table.column("final_label").map_err(at)?,
        );
        for row in &table.rows {
            let field = |c: usize| table.field(row, c).map_err(at);
            let id = field(id)?;
            let held_out = id
                .strip_prefix("v2-")
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n % 4 == 0);
            if !held_out {
                continue;
            }
            let refusal = match field(label)? {
                "1_full_compliance" => false,
                "2_full_refusal" | "3_partial_refusal" => true,
                other => {
                    return Err(at(format!(
                        "line {}: unknown final_label `{other}`",
                        row.line
                    )))
                }
            };
            items.push(labelled(
                XSTEST_DATASET,
                &format!("{model}/{id}"),
                field(prompt)?,
                field(completion)?,
                refusal,
            ));
        }
    }
    Ok(items)
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
        items.push(labelled(DATASET, index, goal, response, jailbroken));
    }
    Ok(items)
}

/// Counts the verdicts of `judge` (flagged = positive) against the labels of `dataset`; an item
/// the judge gives no score (an unreadable verdict) is counted as `unscored`, as the audit leaves
/// such attempts out of its rates.
pub fn count(
    judge: &str,
    dataset: &str,
    items: &[Labelled],
    verdicts: &[Option<bool>],
) -> DetectorAccuracy {
    let mut a = DetectorAccuracy {
        detector: judge.to_string(),
        dataset: dataset.to_string(),
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
        if item.positive {
            a.positives += 1;
            a.true_positives += u64::from(*flagged);
        } else {
            a.negatives += 1;
            a.true_negatives += u64::from(!flagged);
        }
    }
    a
}

/// Asks `judge` about every labelled item of `dataset` through `backend`, in the backend's
/// batches and with the audit's judge generation settings, and counts its verdicts.
pub fn measure(
    judge: &dyn Judge,
    backend: &mut dyn Backend,
    dataset: &str,
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
    Ok(count(judge.id(), dataset, items, &verdicts))
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
            positive: jailbroken,
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
        let a = count("harm-judge", DATASET, &items, &verdicts);
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
