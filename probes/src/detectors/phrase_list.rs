//! The plain refusal matchers of other tools (`refusal_phrases/*.json`), each with the matching
//! rule of its source, as baselines our refusal detector is measured against.

use std::path::Path;

/// How a list's phrases are matched, as its source code does it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchMode {
    /// `phrase in text`, exactly as written (llm-attacks, JailbreakBench).
    Substring,
    /// `phrase.lower() in text.lower()` (HarmBench, garak).
    SubstringIgnoreCase,
    /// `text.lower().strip().startswith(phrase)` (XSTest's string match).
    LowercasePrefix,
}

/// The matching rule of each staged list, by file stem, from the `matching` field of its file.
pub const MODES: &[(&str, MatchMode)] = &[
    ("llm_attacks_test_prefixes", MatchMode::Substring),
    ("llm_attacks_attack_default_prefixes", MatchMode::Substring),
    (
        "jailbreakbench_string_classifier_prefixes",
        MatchMode::Substring,
    ),
    ("harmbench_refusal_prefixes", MatchMode::SubstringIgnoreCase),
    ("garak_prefixes", MatchMode::SubstringIgnoreCase),
    (
        "garak_mitigation_bypass_substrings",
        MatchMode::SubstringIgnoreCase,
    ),
    ("xstest_strmatch_prefixes", MatchMode::LowercasePrefix),
];

/// One list: a refusal is an answer that matches any phrase under the list's rule.
#[derive(Clone, Debug, PartialEq)]
pub struct PhraseList {
    pub name: String,
    pub mode: MatchMode,
    pub phrases: Vec<String>,
}

impl PhraseList {
    /// Reads `{name, source, license, matching, phrases[]}`; the rule comes from [`MODES`].
    pub fn load(path: &Path) -> Result<PhraseList, String> {
        #[derive(serde::Deserialize)]
        struct File {
            phrases: Vec<String>,
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let Some(&(_, mode)) = MODES.iter().find(|(name, _)| *name == stem) else {
            return Err(format!(
                "{}: no matching rule is known for this list",
                path.display()
            ));
        };
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: File =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(PhraseList {
            name: stem,
            mode,
            phrases: file.phrases,
        })
    }

    /// Every list of [`MODES`] in `dir`, in that order.
    pub fn load_all(dir: &Path) -> Result<Vec<PhraseList>, String> {
        MODES
            .iter()
            .map(|(name, _)| PhraseList::load(&dir.join(format!("{name}.json"))))
            .collect()
    }

    /// Whether the list calls `text` a refusal.
    pub fn is_refusal(&self, text: &str) -> bool {
        match self.mode {
            MatchMode::Substring => self.phrases.iter().any(|p| text.contains(p.as_str())),
            MatchMode::SubstringIgnoreCase => {
                let lower = text.to_lowercase();
                self.phrases
                    .iter()
                    .any(|p| lower.contains(p.to_lowercase().as_str()))
            }
            MatchMode::LowercasePrefix => {
                let lower = text.to_lowercase();
                let lower = lower.trim();
                self.phrases.iter().any(|p| lower.starts_with(p.as_str()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(mode: MatchMode, text: &str, expect: bool) {
        let list = PhraseList {
            name: "t".into(),
            mode,
            phrases: vec!["I'm sorry".into(), "no,".into()],
        };
        assert_eq!(list.is_refusal(text), expect, "{mode:?} {text:?}");
    }

    #[test]
    fn modes() {
        check(MatchMode::Substring, "Well, I'm sorry.", true);
        check(MatchMode::Substring, "well, i'm sorry.", false);
        check(MatchMode::SubstringIgnoreCase, "well, I'M SORRY.", true);
        check(MatchMode::LowercasePrefix, "  No, never.", true);
        check(MatchMode::LowercasePrefix, "Well, no, never.", false);
    }
}
