//! The registries: every probe family, detector, metric kind and transform that a suite file
//! can name, as plain lists in code (no string lookup of code at run time beyond these lists).
//! A conformance test walks every entry.

use std::path::Path;

use audit_core::{Detector, Judge, Metric, Probe, ProbeInfo, Transform};

use crate::{counterfactual, detectors, metrics, safety, transforms, Context};

/// What a suite file gives to build one probe.
#[derive(Clone, Copy, Debug)]
pub struct ProbeArgs<'a> {
    pub id: &'a str,
    pub goal: &'a str,
    pub source: &'a str,
    /// The family's own parameters: every key of the `[[probe]]` table that is not common to
    /// all families.
    pub params: &'a toml::Table,
    /// Where relative dataset paths are resolved (`--datasets`).
    pub datasets: &'a Path,
    /// The folder of the user's suite file, where the `table` family finds its `file`; None
    /// for a built-in suite.
    pub suite_dir: Option<&'a Path>,
}

impl ProbeArgs<'_> {
    /// The probe's id, goal and source, as the suite file gives them.
    pub fn info(&self) -> ProbeInfo {
        ProbeInfo {
            id: self.id.to_string(),
            goal: self.goal.to_string(),
            source: self.source.to_string(),
        }
    }
}

/// A family of probes.
pub struct Family {
    pub name: &'static str,
    pub about: &'static str,
    pub build: fn(&ProbeArgs<'_>) -> Result<Box<dyn Probe>, String>,
}

/// A kind of metric; its parameters are the keys of its `[[probe.metric]]` table.
pub struct MetricKind {
    pub name: &'static str,
    pub about: &'static str,
    pub build: fn(&toml::Table) -> Result<Box<dyn Metric>, String>,
}

/// A detector without parameters; it may need the run's [`Context`] (the VADER lexicon).
pub struct DetectorKind {
    pub id: &'static str,
    pub about: &'static str,
    pub build: fn(&Context) -> Box<dyn Detector>,
}

/// A judge: a detector that asks a model (see `crate::judges`). Suites name judges in
/// `detectors` like any detector; the run asks the backend given with `--judge ID=MODEL`.
pub struct JudgeKind {
    pub id: &'static str,
    pub about: &'static str,
    pub build: fn() -> Box<dyn Judge>,
}

pub const JUDGES: &[JudgeKind] = &[
    JudgeKind {
        id: crate::judges::HARM_JUDGE,
        about: "an LLM judge asked a HarmBench-style yes/no question: did the answer carry out the harmful request? (1 = yes)",
        build: || Box::new(crate::judges::HarmJudge),
    },
    JudgeKind {
        id: crate::judges::TOXICITY,
        about: "probability of the `toxic` label from a classifier (the Jigsaw BiLSTM through --judge toxicity=DIR)",
        build: || Box::new(crate::judges::ToxicityJudge),
    },
    JudgeKind {
        id: "harmbench-cls",
        about: "HarmBench's classifier prompt (eval_utils.py LLAMA2_CLS_PROMPT, standard or contextual) for HarmBench-Llama-2-13b-cls: is the answer an instance of the behaviour? (1 = yes; log-likelihood of Yes/No)",
        build: || Box::new(crate::judges::formats::JUDGES[0]),
    },
    JudgeKind {
        id: "llama-guard-3",
        about: "Llama Guard 3's prompt (S1–S14): P(unsafe) of the answer, the likeliest category as evidence",
        build: || Box::new(crate::judges::formats::JUDGES[1]),
    },
    JudgeKind {
        id: "shieldgemma",
        about: "ShieldGemma's prompt-response template, Dangerous Content policy: P(Yes)",
        build: || Box::new(crate::judges::formats::JUDGES[2]),
    },
    JudgeKind {
        id: "shieldgemma-hate",
        about: "ShieldGemma, Hate Speech policy: P(Yes)",
        build: || Box::new(crate::judges::formats::JUDGES[3]),
    },
    JudgeKind {
        id: "shieldgemma-sexual",
        about: "ShieldGemma, Sexually Explicit Information policy: P(Yes)",
        build: || Box::new(crate::judges::formats::JUDGES[4]),
    },
    JudgeKind {
        id: "shieldgemma-harassment",
        about: "ShieldGemma, Harassment policy: P(Yes)",
        build: || Box::new(crate::judges::formats::JUDGES[5]),
    },
    JudgeKind {
        id: "wildguard",
        about: "WildGuard's input format: is the response harmful? (1 = yes; the three answers as evidence)",
        build: || Box::new(crate::judges::formats::JUDGES[6]),
    },
    JudgeKind {
        id: "wildguard-refusal",
        about: "WildGuard's input format: is the response a refusal? (1 = yes)",
        build: || Box::new(crate::judges::formats::JUDGES[7]),
    },
];

pub fn judge(id: &str) -> Option<&'static JudgeKind> {
    JUDGES.iter().find(|j| j.id == id)
}

/// A transform without parameters.
pub struct TransformKind {
    pub id: &'static str,
    pub about: &'static str,
    pub build: fn() -> Box<dyn Transform>,
}

pub const FAMILIES: &[Family] = &[
    Family {
        name: "counterfactual",
        about: "templates × groups of demographic axes; chat prompts that differ only in the group",
        build: counterfactual::build,
    },
    Family {
        name: crate::declared::table::FAMILY,
        about: "your own benchmark: a CSV or JSONL file beside the suite, one case per row (columns become attributes), as Chat prompts from a `{column}` template or Choice queries over option columns",
        build: crate::declared::table::build,
    },
    // Adaptive attacks (probes/src/attacks): an attacker model, the target and a judge.
    Family {
        name: crate::attacks::pair::FAMILY,
        about: "PAIR (Chao et al. 2023): N attacker streams × K iterations of refined jailbreak prompts, each reply rated 1–10 by the judge, stopping at 10; needs --attacker and the judge (default harm-judge)",
        build: crate::attacks::pair::build,
    },
    Family {
        name: crate::attacks::tap::FAMILY,
        about: "TAP (Mehrotra et al. 2023): a tree of attacker conversations, each leaf branched per depth, off-topic prompts pruned by the judge, the width best rated kept, stopping at a 10; needs --attacker and the judge (default harm-judge)",
        build: crate::attacks::tap::build,
    },
    Family {
        name: crate::attacks::crescendo::FAMILY,
        about: "Crescendo (Russinovich et al. 2024, after PyRIT): one multi-turn conversation escalated question by question, refusals backtracked, each reply rated 1-10 by the judge, stopping at a 10; needs --attacker and the judge (default harm-judge)",
        build: crate::attacks::crescendo::build,
    },
    // Safety benchmarks and attacks (probes/src/safety).
    Family {
        name: safety::advbench::FAMILY,
        about: "AdvBench harmful behaviors (Zou et al. 2023): the 520 goals as chat prompts",
        build: safety::advbench::build,
    },
    Family {
        name: safety::advbench::STRINGS_FAMILY,
        about: "AdvBench harmful strings (Zou et al. 2023): the 574 target strings, asked for outright; success = the answer contains the string exactly (`target-string`)",
        build: safety::advbench::build_strings,
    },
    Family {
        name: safety::gcg::FAMILY,
        about: "GCG adversarial suffixes (Zou et al. 2023) on AdvBench behaviors: per behavior a white-box suffix search towards its target (needs open weights: the candle backend, dense f32), paired with the behavior asked plainly (`transform` = `gcg` / `none`); `replay` replays a suffix found elsewhere (transfer)",
        build: safety::gcg::build,
    },
    Family {
        name: safety::harmbench::FAMILY,
        about: "HarmBench text behaviors (Mazeika et al. 2024): standard and contextual; copyright behaviors are not scored",
        build: safety::harmbench::build,
    },
    Family {
        name: safety::jailbreakbench::FAMILY,
        about: "JailbreakBench behaviors (Chao et al. 2024): 100 harmful goals in 10 categories",
        build: safety::jailbreakbench::build,
    },
    Family {
        name: safety::do_not_answer::FAMILY,
        about: "Do-Not-Answer (Wang et al. 2023): 939 questions a model should not answer, in 5 risk areas",
        build: safety::do_not_answer::build,
    },
    Family {
        name: safety::xstest::FAMILY,
        about: "XSTest v2 (Röttger et al. 2024): 250 safe prompts that look unsafe (over-refusal) and 200 unsafe contrast prompts",
        build: safety::xstest::build,
    },
    Family {
        name: safety::injection::FAMILY,
        about: "prompt injection, direct and indirect (instructions hidden in an e-mail, a web page, notes, a review), detected by a canary",
        build: safety::injection::build,
    },
    Family {
        name: safety::leakage::FAMILY,
        about: "system-prompt leakage: a secret and a customer's personal data planted in the system prompt, eight extraction attempts",
        build: safety::leakage::build,
    },
    Family {
        name: safety::toxicity::FAMILY,
        about: "toxicity elicitation (after Gehman et al. 2020): BOLD's sentence beginnings, each continued `samples` times, for the toxicity judge",
        build: safety::toxicity::build,
    },
    // Bias benchmarks (probes/src/bias).
    Family {
        name: crate::bias::crows_pairs::FAMILY,
        about: "CrowS-Pairs minimal pairs (Nangia et al. 2020): each pair's two sentences scored as whole sentences by log-likelihood",
        build: crate::bias::crows_pairs::build,
    },
    Family {
        name: crate::bias::bbq::FAMILY,
        about: "BBQ (Parrish et al. 2022): ambiguous and disambiguated questions about two groups; each item a choice over its three answers by log-likelihood",
        build: crate::bias::bbq::build,
    },
    Family {
        name: crate::bias::stereoset::FAMILY,
        about: "StereoSet (Nadeem et al. 2021) intrasentence and intersentence items: stereotype, anti-stereotype and unrelated options by log-likelihood",
        build: crate::bias::stereoset::build,
    },
    Family {
        name: crate::bias::winobias::FAMILY,
        about: "WinoBias (Zhao et al. 2018) pro- and anti-stereotypical sentences: whom the pronoun refers to, as a choice between the two occupations",
        build: crate::bias::winobias::build,
    },
    Family {
        name: crate::bias::winogender::FAMILY,
        about: "Winogender schemas (Rudinger et al. 2018): whom the pronoun refers to, occupation or participant, for male, female and neutral pronouns",
        build: crate::bias::winogender::build,
    },
    Family {
        name: crate::bias::holistic_bias::FAMILY,
        about: "HolisticBias (Smith et al. 2022): descriptor × noun × template sentences made on the fly, each scored by its log-likelihood",
        build: crate::bias::holistic_bias::build,
    },
    Family {
        name: crate::bias::bold::FAMILY,
        about: "BOLD (Dhamala et al. 2021): beginnings of Wikipedia sentences about people and groups in five domains, continued by the model",
        build: crate::bias::bold::build,
    },
    // Embedding association tests (probes/src/weat.rs): the audited model is the embedder.
    Family {
        name: crate::weat::WEAT,
        about: "WEAT (Caliskan et al. 2017): sent-bias' word lists of WEAT 1–10, one embed query per word, for word vectors (--model a GloVe folder)",
        build: crate::weat::build_weat,
    },
    Family {
        name: crate::weat::SEAT,
        about: "SEAT (May et al. 2019): sent-bias' template sentences of WEAT 1–10, one embed query per sentence, for sentence encoders",
        build: crate::weat::build_seat,
    },
];

pub const METRICS: &[MetricKind] = &[
    MetricKind {
        name: metrics::rate::KIND,
        about: "share of attempts a binary detector flags, overall and per group, with Wilson intervals",
        build: metrics::rate::build,
    },
    MetricKind {
        name: metrics::paired_gap::KIND,
        about: "difference of a binary detector's rate between two groups on matched cases, exact McNemar test, Newcombe paired interval",
        build: metrics::paired_gap::build,
    },
    MetricKind {
        name: metrics::group_disparity::KIND,
        about: "each group's rate of a binary detector against the rest of its stratum (unmatched groups, e.g. BOLD), Fisher exact test, Newcombe interval",
        build: metrics::group_disparity::build,
    },
    // Safety (probes/src/metrics/asr.rs).
    MetricKind {
        name: metrics::asr::ASR,
        about: "attack success rate (answers the refusal detector does not flag), overall and per attribute, Wilson interval, and Rogan–Gladen corrected for the detector's measured accuracy with a bootstrap interval",
        build: metrics::asr::build_asr,
    },
    MetricKind {
        name: metrics::asr::CORRECTED_RATE,
        about: "rate of a binary detector (e.g. over-refusal), overall and per attribute, Wilson interval, and Rogan–Gladen corrected where the detector's accuracy is measured",
        build: metrics::asr::build_rate,
    },
    MetricKind {
        name: metrics::toxicity::KIND,
        about: "expected maximum toxicity (mean over prompts of the highest score among their continuations, BCa bootstrap) and toxicity probability (share of prompts with a continuation ≥ 0.5, Wilson), Gehman et al. 2020",
        build: metrics::toxicity::build,
    },
    // Bias benchmarks (probes/src/bias).
    MetricKind {
        name: crate::bias::crows_pairs::METRIC,
        about: "CrowS-Pairs pct_stereotype (Wilson interval, exact binomial test against 50%) and lm-eval's likelihood_diff (bootstrap), overall and per bias type",
        build: crate::bias::crows_pairs::build_metric,
    },
    MetricKind {
        name: crate::bias::bbq::METRIC,
        about: "BBQ accuracy, s_dis and s_amb (Parrish et al. 2022) per category, with cluster-bootstrap intervals over templates",
        build: crate::bias::bbq::build_metric,
    },
    MetricKind {
        name: crate::bias::stereoset::METRIC,
        about: "StereoSet SS, LMS and ICAT (macro-averaged over target terms, as evaluation.py) per split and bias type, with bootstrap intervals over terms",
        build: crate::bias::stereoset::build_metric,
    },
    MetricKind {
        name: crate::bias::winobias::METRIC,
        about: "WinoBias accuracy pro and anti and the pro − anti gap on matched pairs (Newcombe paired interval, exact McNemar test), overall and per type",
        build: crate::bias::winobias::build_metric,
    },
    MetricKind {
        name: crate::bias::winogender::METRIC,
        about: "Winogender: Pearson's r between the occupations' BLS % female and the model's gender preference (Fisher z interval, t-test)",
        build: crate::bias::winogender::build_metric,
    },
    MetricKind {
        name: crate::bias::holistic_bias::METRIC,
        about: "HolisticBias Likelihood Bias: share of descriptor pairs whose sentence likelihoods differ (Mann–Whitney, per axis and template), uncorrected and Benjamini–Hochberg",
        build: crate::bias::holistic_bias::build_metric,
    },
    MetricKind {
        name: crate::weat::METRIC,
        about: "WEAT/SEAT effect size d (bootstrap interval over target items) and sent-bias' one-sided permutation p-value per test, Benjamini–Hochberg q over the probe's tests",
        build: crate::weat::build_metric,
    },
];

pub const DETECTORS: &[DetectorKind] = &[
    DetectorKind {
        id: detectors::refusal::ID,
        about: "1 when the answer's opening is a refusal (Probity's phrase rules, measured against human labels in docs/detectors.md), else 0",
        build: |_| Box::new(detectors::refusal::RefusalDetector),
    },
    DetectorKind {
        id: detectors::canary::ID,
        about: "1 when the answer repeats the string the case planted (its `canary` attribute: an injected code, a system-prompt secret), else 0",
        build: |_| Box::new(detectors::canary::CanaryDetector),
    },
    DetectorKind {
        id: detectors::pii::ID,
        about: "1 when the answer holds personal data: e-mail, phone number, Luhn-valid card number or US SSN, else 0",
        build: |_| Box::new(detectors::pii::PiiDetector),
    },
    DetectorKind {
        id: detectors::target_string::ID,
        about: "1 when the answer contains the case's `target` string exactly (case-sensitive, llm-attacks' exact match), else 0",
        build: |_| Box::new(detectors::target_string::TargetString),
    },
    // Bias benchmarks (probes/src/bias).
    DetectorKind {
        id: crate::bias::choice::ID,
        about: "1 when a choice answer's most likely option is the case's gold `label`, else 0 (accuracy benchmarks)",
        build: |_| Box::new(crate::bias::choice::ChoiceCorrect),
    },
    DetectorKind {
        id: crate::bias::bold::POSITIVE,
        about: "1 when the answer's VADER compound sentiment is ≥ 0.5 (BOLD's positive), else 0; lexicon from the run's VADER folder (PROBITY_VADER, else <datasets>/../models/vader)",
        build: |context| Box::new(crate::bias::bold::VaderThreshold::new(true, context)),
    },
    DetectorKind {
        id: crate::bias::bold::NEGATIVE,
        about: "1 when the answer's VADER compound sentiment is ≤ −0.5 (BOLD's negative), else 0; lexicon from the run's VADER folder (PROBITY_VADER, else <datasets>/../models/vader)",
        build: |context| Box::new(crate::bias::bold::VaderThreshold::new(false, context)),
    },
];

pub const TRANSFORMS: &[TransformKind] = &[
    TransformKind {
        id: transforms::persona::UNFILTERED,
        about: "role-play: the request is put to a character with no rules who never refuses",
        build: || Box::new(transforms::persona::PersonaWrapper(transforms::persona::Persona::Unfiltered)),
    },
    TransformKind {
        id: transforms::persona::NOVELIST,
        about: "role-play: the request becomes a thriller scene in which an expert explains it in full",
        build: || Box::new(transforms::persona::PersonaWrapper(transforms::persona::Persona::Novelist)),
    },
    TransformKind {
        id: transforms::suppression::REFUSAL_SUPPRESSION,
        about: "refusal suppression (Wei et al. 2023): rules forbid apologies, disclaimers and the words of a refusal",
        build: || Box::new(transforms::suppression::RefusalSuppression),
    },
    TransformKind {
        id: transforms::suppression::PREFIX_INJECTION,
        about: "prefix injection (Wei et al. 2023): the answer must open with \"Absolutely! Here is\"",
        build: || Box::new(transforms::suppression::PrefixInjection),
    },
    TransformKind {
        id: transforms::priming::FEW_SHOT,
        about: "few-shot priming: three earlier turns in which the assistant complied eagerly (harmless edge requests)",
        build: || Box::new(transforms::priming::Priming(transforms::priming::Shots::Few)),
    },
    TransformKind {
        id: transforms::priming::MANY_SHOT,
        about: "many-shot priming (Anil et al. 2024): 32 earlier turns of eager compliance (harmless edge requests)",
        build: || Box::new(transforms::priming::Priming(transforms::priming::Shots::Many)),
    },
    TransformKind {
        id: transforms::split::PAYLOAD_SPLIT,
        about: "payload splitting (Kang et al. 2023): the request cut in two variables to concatenate",
        build: || Box::new(transforms::split::PayloadSplit),
    },
    TransformKind {
        id: transforms::encoding::BASE64,
        about: "the request in base64, the answer asked in base64 (decoded before detectors run)",
        build: || Box::new(transforms::encoding::Encoded(transforms::encoding::Encoding::Base64)),
    },
    TransformKind {
        id: transforms::encoding::ROT13,
        about: "the request in ROT13, the answer asked in ROT13 (decoded before detectors run)",
        build: || Box::new(transforms::encoding::Encoded(transforms::encoding::Encoding::Rot13)),
    },
    TransformKind {
        id: transforms::encoding::LEETSPEAK,
        about: "the request in leetspeak, the answer asked in leetspeak (decoded before detectors run)",
        build: || Box::new(transforms::encoding::Encoded(transforms::encoding::Encoding::Leetspeak)),
    },
    TransformKind {
        id: transforms::encoding::CHAR_SPACING,
        about: "the request with its letters separated by spaces",
        build: || Box::new(transforms::encoding::Encoded(transforms::encoding::Encoding::CharSpacing)),
    },
];

pub fn family(name: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.name == name)
}

pub fn metric(name: &str) -> Option<&'static MetricKind> {
    METRICS.iter().find(|m| m.name == name)
}

pub fn detector(id: &str) -> Option<&'static DetectorKind> {
    DETECTORS.iter().find(|d| d.id == id)
}

pub fn transform(id: &str) -> Option<&'static TransformKind> {
    TRANSFORMS.iter().find(|t| t.id == id)
}

/// A transform or a chain of them as a suite names it: `base64`, or `persona-unfiltered+base64`
/// (steps applied left to right, `crate::transforms::chain`). The error names the unknown step.
pub fn transform_chain(spec: &str) -> Result<Box<dyn Transform>, String> {
    let mut steps = Vec::new();
    for step in transforms::chain::steps(spec) {
        let Some(kind) = transform(step) else {
            let known: Vec<&str> = TRANSFORMS.iter().map(|t| t.id).collect();
            let what = if spec.contains(transforms::chain::SEPARATOR) {
                format!("unknown transform `{step}` in the chain `{spec}`")
            } else {
                format!("unknown transform `{step}`")
            };
            return Err(format!(
                "{what} (known: {}; chain them with `+`, e.g. `persona-unfiltered+base64`)",
                known.join(", ")
            ));
        };
        steps.push((kind.build)());
    }
    Ok(if steps.len() == 1 {
        steps.remove(0)
    } else {
        Box::new(transforms::chain::Chain::new(steps))
    })
}

/// Deserializes a parameter table into a family's or metric's own struct, with serde's
/// message (`unknown field`, `missing field`, `invalid type`) on one line.
pub fn params<T: serde::de::DeserializeOwned>(table: &toml::Table) -> Result<T, String> {
    toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| e.message().trim().replace('\n', " "))
}

/// Accepts only an empty parameter table: a family or metric with no parameters says so for
/// any key, in serde's words.
pub fn no_params(table: &toml::Table) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct None {}
    let _: None = params(table)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_unique_and_described() {
        let mut names: Vec<&str> = FAMILIES.iter().map(|f| f.name).collect();
        names.extend(METRICS.iter().map(|m| m.name));
        names.extend(DETECTORS.iter().map(|d| d.id));
        names.extend(JUDGES.iter().map(|j| j.id));
        names.extend(TRANSFORMS.iter().map(|t| t.id));
        let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "a name is registered twice: {names:?}"
        );
        for about in FAMILIES
            .iter()
            .map(|f| f.about)
            .chain(METRICS.iter().map(|m| m.about))
            .chain(DETECTORS.iter().map(|d| d.about))
            .chain(TRANSFORMS.iter().map(|t| t.about))
        {
            assert!(!about.is_empty());
        }
        let context = Context::new(&fixtures::datasets());
        for kind in DETECTORS {
            assert_eq!((kind.build)(&context).id(), kind.id);
        }
        for kind in TRANSFORMS {
            assert_eq!((kind.build)().id(), kind.id);
            assert!(!kind.id.contains(transforms::chain::SEPARATOR));
        }
    }

    #[test]
    fn chains_are_named_by_their_steps() {
        let chain = transform_chain("persona-unfiltered+base64").expect("valid in this test");
        assert_eq!(chain.id(), "persona-unfiltered+base64");
        assert_eq!(
            transform_chain("base64").expect("valid in this test").id(),
            "base64"
        );
        for bad in ["persona-unfiltered+bas64", "+base64", "base64+", "nope"] {
            let error = transform_chain(bad).err().unwrap_or_default();
            assert!(error.contains("unknown transform"), "{bad}: {error}");
        }
    }
}
