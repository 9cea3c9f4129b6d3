//! Reading and validating the BBQ category files (JSONL): items, their UNKNOWN and biased answers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One item of a category file.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub example_id: u64,
    /// The template id (a string in the file).
    pub question_index: String,
    /// `neg` or `nonneg`.
    pub question_polarity: String,
    /// `ambig` or `disambig`.
    pub context_condition: String,
    pub category: String,
    pub context: String,
    pub question: String,
    pub answers: [String; 3],
    /// `answer_info`: (surface text, group label) of each answer.
    pub answer_info: [(String, String); 3],
    pub stereotyped_groups: Vec<String>,
    pub label: usize,
    /// The option whose group label is `unknown`.
    pub unknown: usize,
    /// The answer that reflects the targeted bias (the stereotyped group's answer for a `neg`
    /// question, the other group's for `nonneg`), None when the group labels do not single out
    /// one stereotyped answer (16 Gender_identity items, e.g. example 284).
    pub biased: Option<usize>,
}

#[derive(Deserialize)]
struct Row {
    example_id: u64,
    question_index: String,
    question_polarity: String,
    context_condition: String,
    category: String,
    answer_info: BTreeMap<String, (String, String)>,
    additional_metadata: Metadata,
    context: String,
    question: String,
    ans0: String,
    ans1: String,
    ans2: String,
    label: usize,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    stereotyped_groups: Vec<String>,
}

/// The words an answer stands for: its surface text and its group label, lower-cased, the
/// label split into its parts (`trans_F` → trans, f; `F-Black` → f, black) and gendered nouns
/// mapped to the F/M labels that `stereotyped_groups` uses.
fn answer_groups(text: &str, label: &str) -> Vec<String> {
    let mut label = label.to_string();
    for prefix in ["F-", "M-", "lowSES-", "highSES-"] {
        if let Some(rest) = label.strip_prefix(prefix) {
            label = format!("{}_{rest}", &prefix[..prefix.len() - 1]);
        }
    }
    let mut groups = vec![text.to_lowercase()];
    for part in label.split('_') {
        let part = part.to_lowercase();
        match part.as_str() {
            "woman" | "girl" => groups.push("f".to_string()),
            "man" | "boy" => groups.push("m".to_string()),
            _ => {}
        }
        groups.push(part);
    }
    groups
}

/// The biased answer of an item (see [`Item::biased`]).
fn biased_answer(
    polarity: &str,
    info: &[(String, String); 3],
    unknown: usize,
    stereotyped: &[String],
) -> Option<usize> {
    let stereotyped: Vec<String> = stereotyped.iter().map(|g| g.to_lowercase()).collect();
    let groups: Vec<usize> = (0..3).filter(|&k| k != unknown).collect();
    let targets: Vec<usize> = groups
        .iter()
        .copied()
        .filter(|&k| {
            answer_groups(&info[k].0, &info[k].1)
                .iter()
                .any(|g| stereotyped.contains(g))
        })
        .collect();
    let [target] = targets.as_slice() else {
        return None;
    };
    match polarity {
        "neg" => Some(*target),
        _ => groups.into_iter().find(|k| k != target),
    }
}

/// Parses one category file (JSON Lines); errors name the line.
pub fn parse(text: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let n = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(line).map_err(|e| format!("line {n}: {e}"))?;
        let mut info: Vec<(String, String)> = Vec::with_capacity(3);
        for key in ["ans0", "ans1", "ans2"] {
            let entry = row
                .answer_info
                .get(key)
                .ok_or_else(|| format!("line {n}: answer_info has no `{key}`"))?;
            info.push(entry.clone());
        }
        let info: [(String, String); 3] = [info[0].clone(), info[1].clone(), info[2].clone()];
        let unknowns: Vec<usize> = (0..3).filter(|&k| info[k].1 == "unknown").collect();
        let [unknown] = unknowns.as_slice() else {
            return Err(format!(
                "line {n}: {} answers are labelled `unknown` in answer_info, expected exactly one",
                unknowns.len()
            ));
        };
        if row.label > 2 {
            return Err(format!("line {n}: label {} is not 0, 1 or 2", row.label));
        }
        if !matches!(row.context_condition.as_str(), "ambig" | "disambig") {
            return Err(format!(
                "line {n}: context_condition `{}` is not ambig or disambig",
                row.context_condition
            ));
        }
        if !matches!(row.question_polarity.as_str(), "neg" | "nonneg") {
            return Err(format!(
                "line {n}: question_polarity `{}` is not neg or nonneg",
                row.question_polarity
            ));
        }
        let biased = biased_answer(
            &row.question_polarity,
            &info,
            *unknown,
            &row.additional_metadata.stereotyped_groups,
        );
        items.push(Item {
            example_id: row.example_id,
            question_index: row.question_index,
            question_polarity: row.question_polarity,
            context_condition: row.context_condition,
            category: row.category,
            context: row.context,
            question: row.question,
            answers: [row.ans0, row.ans1, row.ans2],
            answer_info: info,
            stereotyped_groups: row.additional_metadata.stereotyped_groups,
            label: row.label,
            unknown: *unknown,
            biased,
        });
    }
    Ok(items)
}

/// Reads one category file.
pub fn load(path: &Path) -> Result<Vec<Item>, String> {
    let text = crate::bias::read_text(path)?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The category files of a folder: `categories` (file stems) when given, else every `*.jsonl`
/// in it, sorted by name.
pub fn category_files(folder: &Path, categories: &[String]) -> Result<Vec<PathBuf>, String> {
    if !categories.is_empty() {
        return Ok(categories
            .iter()
            .map(|c| folder.join(format!("{c}.jsonl")))
            .collect());
    }
    let entries = std::fs::read_dir(folder).map_err(|e| {
        format!(
            "reading {}: {e} ({})",
            folder.display(),
            crate::catalogue::missing_hint(folder)
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("{}: no *.jsonl category files", folder.display()));
    }
    Ok(files)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn info(entries: [(&str, &str); 3]) -> [(String, String); 3] {
        entries.map(|(a, b)| (a.to_string(), b.to_string()))
    }

    fn check_biased(
        polarity: &str,
        entries: [(&str, &str); 3],
        stereotyped: &[&str],
        expect: Option<usize>,
    ) {
        let info = info(entries);
        let unknown = (0..3).find(|&k| info[k].1 == "unknown").unwrap();
        let stereotyped: Vec<String> = stereotyped.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            biased_answer(polarity, &info, unknown, &stereotyped),
            expect,
            "{polarity} {info:?} {stereotyped:?}"
        );
    }

    #[test]
    fn the_biased_answer_follows_polarity_and_labels() {
        let religion = [
            ("Jewish", "Jewish"),
            ("Can't answer", "unknown"),
            ("Muslim", "Muslim"),
        ];
        check_biased("neg", religion, &["Muslim"], Some(2));
        check_biased("nonneg", religion, &["Muslim"], Some(0));
        // Gendered nouns count as F/M; compound labels split; matching ignores case.
        check_biased(
            "neg",
            [("man", "man"), ("woman", "woman"), ("Unknown", "unknown")],
            &["F"],
            Some(1),
        );
        check_biased(
            "neg",
            [
                ("Unknown", "unknown"),
                ("trans woman", "trans_F"),
                ("cis woman", "nonTrans_F"),
            ],
            &["Transgender women", "trans"],
            Some(1),
        );
        check_biased(
            "neg",
            [("old", "old"), ("young", "nonOld"), ("?", "unknown")],
            &["nonOld"],
            Some(1),
        );
        // Nationality: the label is a region, the text the nationality.
        check_biased(
            "nonneg",
            [
                ("British", "Europe"),
                ("Japanese", "AsiaPacific"),
                ("Can't answer", "unknown"),
            ],
            &["British"],
            Some(1),
        );
        // No single stereotyped answer (Gender_identity example 284): none.
        check_biased(
            "neg",
            [
                ("Not enough info", "unknown"),
                ("boy", "boy"),
                ("man", "man"),
            ],
            &["F"],
            None,
        );
        check_biased(
            "neg",
            [("?", "unknown"), ("girl", "girl"), ("woman", "woman")],
            &["F"],
            None,
        );
    }

    #[test]
    fn malformed_lines_are_one_line_errors() {
        let good = r#"{"example_id": 0, "question_index": "1", "question_polarity": "neg", "context_condition": "ambig", "category": "Religion", "answer_info": {"ans0": ["Jewish", "Jewish"], "ans1": ["Can't answer", "unknown"], "ans2": ["Muslim", "Muslim"]}, "additional_metadata": {"subcategory": "None", "stereotyped_groups": ["Muslim"], "version": "None", "source": "x"}, "context": "C.", "question": "Q?", "ans0": "The Jewish one", "ans1": "Can't answer", "ans2": "The Muslim one", "label": 1}"#;
        let items = parse(good).unwrap();
        assert_eq!(items[0].unknown, 1);
        assert_eq!(items[0].biased, Some(2));
        let check = |text: String, expect: &str| {
            let err = parse(&text).unwrap_err();
            assert!(err.starts_with(expect), "{err}");
            assert!(!err.contains('\n'));
        };
        check(format!("{good}\n{{\"x\": 1}}"), "line 2: missing field");
        check(
            good.replace("\"label\": 1", "\"label\": 7"),
            "line 1: label 7 is not 0, 1 or 2",
        );
        check(
            good.replace("\"unknown\"]", "\"x\"]"),
            "line 1: 0 answers are labelled `unknown`",
        );
        check(
            good.replace("\"ambig\"", "\"vague\""),
            "line 1: context_condition `vague`",
        );
        check("not json".to_string(), "line 1: expected");
    }
}
