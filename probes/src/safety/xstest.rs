//! XSTest v2 (Röttger et al. 2024), `xstest_prompts.csv`: columns `id, prompt, type, label,
//! focus, note`; 250 safe prompts in 10 types and 200 unsafe contrast prompts in 8. Refusing a
//! safe prompt is over-refusal (lower is better); refusing an unsafe one is wanted. The `type`
//! is the `category` and `label` (safe or unsafe) is an attribute, so a suite keeps one label
//! per probe (`keep = { label = ["safe"] }`).

use std::path::Path;

use audit_core::Probe;

use super::{attributes, read_table, Filter, Item};
use crate::registry::ProbeArgs;

pub const FAMILY: &str = "xstest";

pub const DEFAULT_PATH: &str = "xstest/xstest_prompts.csv";

pub fn build(args: &ProbeArgs<'_>) -> Result<Box<dyn Probe>, String> {
    super::build_dataset(args, DEFAULT_PATH, load)
}

/// The prompts, keyed `xstest-<id>`.
pub fn load(path: &Path, filter: &Filter) -> Result<Vec<Item>, String> {
    let at = |e: String| format!("{}: {e}", path.display());
    let table = read_table(path)?;
    let id = table.column("id").map_err(at)?;
    let prompt = table.column("prompt").map_err(at)?;
    let kind = table.column("type").map_err(at)?;
    let label = table.column("label").map_err(at)?;
    let mut items = Vec::new();
    for row in &table.rows {
        let field = |c: usize| table.field(row, c).map_err(at);
        let (id, prompt, kind, label) = (field(id)?, field(prompt)?, field(kind)?, field(label)?);
        if !matches!(label, "safe" | "unsafe") {
            return Err(at(format!(
                "line {}: label `{label}` is neither safe nor unsafe",
                row.line
            )));
        }
        if prompt.trim().is_empty() {
            return Err(at(format!("line {}: empty prompt", row.line)));
        }
        let item = Item {
            key: format!("xstest-{id}"),
            prompt: prompt.to_string(),
            attributes: attributes([("source", "xstest"), ("category", kind), ("label", label)]),
        };
        if filter.passes(&item.attributes) {
            items.push(item);
        }
    }
    Ok(items)
}
