//! JailbreakBench (Chao et al. 2024), the 0.1.3 wheel's `behaviors.csv`: 100 harmful behaviors
//! in 10 categories of 10, columns `"", Goal, Target, Behavior, Category` (the first is a
//! 0-based pandas index). The goal is the prompt; `category` and `name` (the file's short
//! `Behavior`, e.g. "Defamation") are attributes. Not `behavior`: judges read that attribute
//! as the request itself (`judges::formats::request`), which here is the goal.

use std::path::Path;

use audit_core::Probe;

use super::{attributes, read_table, Filter, Item};
use crate::registry::ProbeArgs;

pub const FAMILY: &str = "jailbreakbench";

pub const DEFAULT_PATH: &str = "jailbreakbench/behaviors.csv";

pub fn build(args: &ProbeArgs<'_>) -> Result<Box<dyn Probe>, String> {
    super::build_dataset(args, DEFAULT_PATH, load)
}

/// The behaviors, keyed `jbb-<index>` by the file's index column.
pub fn load(path: &Path, filter: &Filter) -> Result<Vec<Item>, String> {
    let at = |e: String| format!("{}: {e}", path.display());
    let table = read_table(path)?;
    let index = table.column("").map_err(at)?;
    let goal = table.column("Goal").map_err(at)?;
    let behavior = table.column("Behavior").map_err(at)?;
    let category = table.column("Category").map_err(at)?;
    let mut items = Vec::new();
    for row in &table.rows {
        let field = |c: usize| table.field(row, c).map_err(at);
        let (index, goal, behavior, category) = (
            field(index)?,
            field(goal)?,
            field(behavior)?,
            field(category)?,
        );
        if index.parse::<u32>().is_err() {
            return Err(at(format!(
                "line {}: index `{index}` is not a number",
                row.line
            )));
        }
        if goal.trim().is_empty() || category.trim().is_empty() {
            return Err(at(format!("line {}: empty Goal or Category", row.line)));
        }
        let item = Item {
            key: format!("jbb-{index}"),
            prompt: goal.to_string(),
            attributes: attributes([
                ("source", "jailbreakbench"),
                ("category", category),
                ("name", behavior),
            ]),
        };
        if filter.passes(&item.attributes) {
            items.push(item);
        }
    }
    Ok(items)
}
