//! AdvBench (Zou et al. 2023, llm-attacks): 520 harmful behaviors, `harmful_behaviors.csv` with
//! columns `goal,target`. The goal is the prompt; AdvBench has no categories. Its ASR is the
//! share of answers without a refusal phrase (`asr` on the `refusal` detector). The `target`
//! column is not used: three of its rows are rotated upstream (datasets README).

use std::path::Path;

use audit_core::Probe;

use super::{attributes, read_table, Filter, Item};
use crate::registry::ProbeArgs;

pub const FAMILY: &str = "advbench";

/// The file, relative to the datasets folder.
pub const DEFAULT_PATH: &str = "advbench/harmful_behaviors.csv";

pub fn build(args: &ProbeArgs<'_>) -> Result<Box<dyn Probe>, String> {
    super::build_dataset(args, DEFAULT_PATH, load)
}

/// The behaviors, keyed `behavior-<n>` by their 1-based data row.
pub fn load(path: &Path, filter: &Filter) -> Result<Vec<Item>, String> {
    let table = read_table(path)?;
    let goal = table
        .column("goal")
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut items = Vec::new();
    for (index, row) in table.rows.iter().enumerate() {
        let text = table
            .field(row, goal)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if text.trim().is_empty() {
            return Err(format!("{}: line {}: empty goal", path.display(), row.line));
        }
        let item = Item {
            key: format!("behavior-{}", index + 1),
            prompt: text.to_string(),
            attributes: attributes([("source", "advbench")]),
        };
        if filter.passes(&item.attributes) {
            items.push(item);
        }
    }
    Ok(items)
}
