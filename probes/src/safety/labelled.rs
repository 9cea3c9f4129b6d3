//! Human-labelled answers for measuring refusal detectors: XSTest's model completions (five
//! models × 450 prompts; `final_label` full compliance, full refusal or partial refusal) and
//! JailbreakBench's `classifier_comparison.csv` (100 answers to attacks; `human_majority` 1 =
//! jailbroken).
//!
//! The positive class is a refusal: XSTest's full or partial refusals, and JailbreakBench's
//! answers the human majority did not call jailbroken (which also holds answers that comply
//! without helping, so it is a looser proxy for refusal). The held-out split is the XSTest
//! prompts whose number is a multiple of 4 (with all five models' completions of them) and the
//! whole JailbreakBench file; the detector's rules were written looking only at the rest.

use std::path::Path;

use audit_core::stats::DetectorAccuracy;

use super::read_table;

/// The XSTest completion files, by model.
pub const XSTEST_MODELS: &[&str] = &[
    "gpt4",
    "llama2new",
    "llama2orig",
    "mistralguard",
    "mistralinstruct",
];

/// One labelled answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelledAnswer {
    /// `xstest-<model>` or `jailbreakbench`.
    pub set: String,
    /// The row's id within its set.
    pub id: String,
    pub text: String,
    /// The human label: a refusal.
    pub refusal: bool,
    /// In the held-out split.
    pub held_out: bool,
}

/// Every completion of `xstest/model_completions/` under `datasets`.
pub fn xstest_completions(datasets: &Path) -> Result<Vec<LabelledAnswer>, String> {
    let mut answers = Vec::new();
    for model in XSTEST_MODELS {
        let path = datasets.join(format!(
            "xstest/model_completions/xstest_v2_completions_{model}.csv"
        ));
        let at = |e: String| format!("{}: {e}", path.display());
        let table = read_table(&path)?;
        let id = table.column("id").map_err(at)?;
        let completion = table.column("completion").map_err(at)?;
        let label = table.column("final_label").map_err(at)?;
        for row in &table.rows {
            let field = |c: usize| table.field(row, c).map_err(at);
            let (id, completion, label) = (field(id)?, field(completion)?, field(label)?);
            let refusal = match label {
                "1_full_compliance" => false,
                "2_full_refusal" | "3_partial_refusal" => true,
                other => {
                    return Err(at(format!(
                        "line {}: unknown final_label `{other}`",
                        row.line
                    )))
                }
            };
            let number: u32 = id
                .strip_prefix("v2-")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| at(format!("line {}: id `{id}` is not v2-<number>", row.line)))?;
            answers.push(LabelledAnswer {
                set: format!("xstest-{model}"),
                id: id.to_string(),
                text: completion.to_string(),
                refusal,
                held_out: number.is_multiple_of(4),
            });
        }
    }
    Ok(answers)
}

/// The 100 judged answers of `jailbreakbench/classifier_comparison.csv` under `datasets`.
pub fn jailbreakbench_judged(datasets: &Path) -> Result<Vec<LabelledAnswer>, String> {
    let path = datasets.join("jailbreakbench/classifier_comparison.csv");
    let at = |e: String| format!("{}: {e}", path.display());
    let table = read_table(&path)?;
    let index = table.column("").map_err(at)?;
    let response = table.column("target_response").map_err(at)?;
    let majority = table.column("human_majority").map_err(at)?;
    let mut answers = Vec::new();
    for row in &table.rows {
        let field = |c: usize| table.field(row, c).map_err(at);
        let (index, response, majority) = (field(index)?, field(response)?, field(majority)?);
        let refusal = match majority {
            "0" => true,
            "1" => false,
            other => {
                return Err(at(format!(
                    "line {}: human_majority `{other}` is not 0 or 1",
                    row.line
                )))
            }
        };
        answers.push(LabelledAnswer {
            set: "jailbreakbench".to_string(),
            id: index.to_string(),
            text: response.to_string(),
            refusal,
            held_out: true,
        });
    }
    Ok(answers)
}

/// The counts of `is_refusal` on `answers` (refusals are the positives), as the one accuracy
/// type (`audit_core::stats::DetectorAccuracy`) of `detector` on `dataset`.
pub fn confusion<'a>(
    detector: &str,
    dataset: &str,
    answers: impl IntoIterator<Item = &'a LabelledAnswer>,
    is_refusal: impl Fn(&str) -> bool,
) -> DetectorAccuracy {
    let mut c = DetectorAccuracy {
        detector: detector.to_string(),
        dataset: dataset.to_string(),
        ..DetectorAccuracy::default()
    };
    for answer in answers {
        let flagged = is_refusal(&answer.text);
        if answer.refusal {
            c.positives += 1;
            c.true_positives += u64::from(flagged);
        } else {
            c.negatives += 1;
            c.true_negatives += u64::from(!flagged);
        }
    }
    c
}
