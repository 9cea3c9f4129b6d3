//! HarmBench (Mazeika et al. 2024), `harmbench_behaviors_text_all.csv`: columns `Behavior,
//! FunctionalCategory, SemanticCategory, Tags, ContextString, BehaviorID`; 200 standard, 100
//! contextual and 100 copyright behaviors.
//!
//! Standard behaviors are asked as they are; contextual ones as HarmBench formats them, the
//! context, a `---` line, then the behavior. Copyright behaviors are **not scored**: HarmBench
//! judges them by MinHash overlap with the reference texts (not staged here), and a refusal
//! detector cannot tell a reproduction from a refusal to reproduce, so the loader leaves them
//! out ([`COPYRIGHT_LEFT_OUT`] counts them).

use std::path::Path;

use audit_core::Probe;

use super::{attributes, read_table, Filter, Item};
use crate::registry::ProbeArgs;

pub const FAMILY: &str = "harmbench";

pub const DEFAULT_PATH: &str = "harmbench/harmbench_behaviors_text_all.csv";

/// Copyright behaviors of `text_all` the loader leaves out.
pub const COPYRIGHT_LEFT_OUT: usize = 100;

pub fn build(args: &ProbeArgs<'_>) -> Result<Box<dyn Probe>, String> {
    super::build_dataset(args, DEFAULT_PATH, load)
}

/// The standard and contextual behaviors, keyed by `BehaviorID`, with attributes `category`
/// (the semantic category) and `functional` (standard or contextual).
pub fn load(path: &Path, filter: &Filter) -> Result<Vec<Item>, String> {
    let at = |e: String| format!("{}: {e}", path.display());
    let table = read_table(path)?;
    let behavior = table.column("Behavior").map_err(at)?;
    let functional = table.column("FunctionalCategory").map_err(at)?;
    let semantic = table.column("SemanticCategory").map_err(at)?;
    let context = table.column("ContextString").map_err(at)?;
    let id = table.column("BehaviorID").map_err(at)?;
    let mut items = Vec::new();
    for row in &table.rows {
        let field = |c: usize| table.field(row, c).map_err(at);
        let (behavior, functional, semantic, context, id) = (
            field(behavior)?,
            field(functional)?,
            field(semantic)?,
            field(context)?,
            field(id)?,
        );
        if id.trim().is_empty() || behavior.trim().is_empty() {
            return Err(at(format!(
                "line {}: empty Behavior or BehaviorID",
                row.line
            )));
        }
        let prompt = match functional {
            "standard" => behavior.to_string(),
            "contextual" => {
                if context.trim().is_empty() {
                    return Err(at(format!(
                        "line {}: contextual behavior `{id}` has no ContextString",
                        row.line
                    )));
                }
                format!("{context}\n\n---\n\n{behavior}")
            }
            "copyright" => continue,
            other => {
                return Err(at(format!(
                    "line {}: unknown FunctionalCategory `{other}`",
                    row.line
                )))
            }
        };
        let item = Item {
            key: id.to_string(),
            prompt,
            attributes: attributes([
                ("source", "harmbench"),
                ("category", semantic),
                ("functional", functional),
            ]),
        };
        if filter.passes(&item.attributes) {
            items.push(item);
        }
    }
    Ok(items)
}
