//! The `table` family: a benchmark declared in the suite file over the user's own CSV or JSONL
//! file. Each row is one case: its columns become the case's attributes (so metrics group by
//! them, `by = ["group"]`, and pair rows that differ in one column), an `id_column` names the
//! case (`<probe>/<id>`; default the row's number), and the query is either a Chat prompt
//! made from a template (`prompt`, optional `system`) or a Choice over option columns (`context`
//! template, `options = [columns]`, optional `answer` column giving the gold option as the
//! `label` attribute that `choice-correct` reads). Templates are filled by plain insertion
//! (`super::template`): nothing in the data is evaluated. The file is read, and every row
//! checked, when the suite is loaded; its sha256 goes to the manifest (`crate::provenance`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use audit_core::{Attributes, Case, Probe, ProbeError, ProbeInfo, Query};
use serde::Deserialize;

use super::template::Template;
use crate::registry::{params, ProbeArgs};

pub const FAMILY: &str = "table";

/// The attribute that holds the gold option's index (read by `choice-correct`).
pub const LABEL: &str = "label";

/// One row of a data file: the line it starts on and its values by column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub line: usize,
    pub values: BTreeMap<String, String>,
}

/// A data file's rows and its columns (CSV: the header; JSONL: every key, by first appearance,
/// the keys of one line in sorted order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Data {
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
}

impl Data {
    fn has(&self, column: &str) -> bool {
        self.columns.iter().any(|c| c == column)
    }

    /// An error naming a column that does not exist and those that do.
    fn check(&self, what: &str, column: &str) -> Result<(), String> {
        if self.has(column) {
            Ok(())
        } else {
            Err(format!(
                "{what}: no column `{column}` in the data (columns: {})",
                self.columns.join(", ")
            ))
        }
    }
}

/// Reads a `.csv` or `.jsonl` file (by its extension), recording its sha256 for the manifest.
/// Errors name the file and, for a bad row, its line.
pub fn load(path: &Path) -> Result<Data, String> {
    let shown = path.display();
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let parse: fn(&str) -> Result<Data, String> = match extension.as_str() {
        "csv" => parse_csv,
        "jsonl" | "ndjson" => parse_jsonl,
        _ => return Err(format!("{shown}: expected a .csv or .jsonl file")),
    };
    let bytes = crate::provenance::read(path).map_err(|e| format!("{shown}: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{shown}: not UTF-8 text"))?;
    parse(&text).map_err(|e| format!("{shown}: {e}"))
}

/// A CSV file with a header row (`crate::csv`: quotes, CRLF, a byte-order mark, blank lines).
pub fn parse_csv(text: &str) -> Result<Data, String> {
    let table = crate::csv::Table::parse(text)?;
    let mut seen = BTreeSet::new();
    for (index, name) in table.header.iter().enumerate() {
        if name.trim().is_empty() {
            return Err(format!("line 1: column {} has no name", index + 1));
        }
        if !seen.insert(name.as_str()) {
            return Err(format!("line 1: column `{name}` appears twice"));
        }
    }
    let mut rows = Vec::with_capacity(table.rows.len());
    for record in &table.rows {
        if record.fields.len() != table.header.len() {
            return Err(format!(
                "line {}: {} fields where the header has {}",
                record.line,
                record.fields.len(),
                table.header.len()
            ));
        }
        rows.push(Row {
            line: record.line,
            values: table
                .header
                .iter()
                .cloned()
                .zip(record.fields.iter().cloned())
                .collect(),
        });
    }
    Ok(Data {
        columns: table.header,
        rows,
    })
}

/// JSON Lines: one object per line; blank lines are skipped. Strings are taken as they are,
/// numbers and booleans as their JSON text, null as empty, arrays and objects as compact JSON.
pub fn parse_jsonl(text: &str) -> Result<Data, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut columns: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let line_no = index + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| format!("line {line_no}: not valid JSON: {e}"))?;
        let serde_json::Value::Object(object) = value else {
            return Err(format!("line {line_no}: expected a JSON object"));
        };
        let mut values = BTreeMap::new();
        for (key, value) in object {
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            if !columns.contains(&key) {
                columns.push(key.clone());
            }
            values.insert(key, text);
        }
        rows.push(Row {
            line: line_no,
            values,
        });
    }
    if rows.is_empty() {
        return Err("the file has no rows".to_string());
    }
    Ok(Data { columns, rows })
}

/// The family's parameters in a `[[probe]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    file: String,
    #[serde(default)]
    id_column: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    options: Option<Vec<String>>,
    #[serde(default)]
    answer: Option<String>,
}

/// What each row becomes.
enum Shape {
    Chat {
        prompt: Template,
        system: Option<Template>,
    },
    Choice {
        context: Template,
        options: Vec<String>,
        answer: Option<String>,
    },
}

/// Where `file` is: beside the suite file (a user's suite), else under `--datasets` (a built-in
/// suite). Suites refuse absolute paths and `..` before this.
pub fn resolve(args: &ProbeArgs<'_>, file: &str) -> PathBuf {
    args.suite_dir.unwrap_or(args.datasets).join(file)
}

/// Builds the probe from `file`, `id_column` and either `prompt` (+ `system`) or `options`
/// (+ `context`, `answer`); reads and checks every row now, so a bad row stops the suite
/// before any model time is spent. Errors about a parameter open with its name in backquotes.
pub fn build(args: &ProbeArgs<'_>) -> Result<Box<dyn Probe>, String> {
    let p: Params = params(args.params)?;
    let template =
        |key: &str, text: &str| Template::parse(text).map_err(|e| format!("`{key}`: {e}"));
    let shape = match (&p.prompt, &p.options) {
        (Some(prompt), None) => {
            for (key, given) in [("context", p.context.is_some()), ("answer", p.answer.is_some())] {
                if given {
                    return Err(format!(
                        "`{key}`: only for Choice probes (with `options`), not with `prompt`"
                    ));
                }
            }
            Shape::Chat {
                prompt: template("prompt", prompt)?,
                system: p.system.as_deref().map(|s| template("system", s)).transpose()?,
            }
        }
        (None, Some(options)) => {
            if p.system.is_some() {
                return Err("`system`: only for Chat probes (with `prompt`), not with `options`".to_string());
            }
            if options.len() < 2 {
                return Err("`options`: a Choice needs at least two option columns".to_string());
            }
            Shape::Choice {
                context: template("context", p.context.as_deref().unwrap_or(""))?,
                options: options.clone(),
                answer: p.answer.clone(),
            }
        }
        (Some(_), Some(_)) => {
            return Err("`prompt`: give either `prompt` (Chat) or `options` (Choice), not both".to_string())
        }
        (None, None) => {
            return Err("`file`: give `prompt = \"...{column}...\"` for Chat queries or `options = [columns]` for Choice queries".to_string())
        }
    };
    let path = resolve(args, &p.file);
    // Errors about the data name the data file and point at the `file` key.
    let data = load(&path).map_err(|e| format!("`file`: {e}"))?;
    let shown = path.display().to_string();
    // Every column a parameter names exists.
    if let Some(column) = &p.id_column {
        data.check("`id_column`", column)?;
    }
    match &shape {
        Shape::Chat { prompt, system } => {
            for (key, t) in [("prompt", Some(prompt)), ("system", system.as_ref())] {
                for field in t.into_iter().flat_map(Template::fields) {
                    if !data.has(field) {
                        return Err(format!(
                            "`{key}`: unknown placeholder `{{{field}}}` (columns: {})",
                            data.columns.join(", ")
                        ));
                    }
                }
            }
        }
        Shape::Choice {
            context,
            options,
            answer,
        } => {
            for field in context.fields() {
                if !data.has(field) {
                    return Err(format!(
                        "`context`: unknown placeholder `{{{field}}}` (columns: {})",
                        data.columns.join(", ")
                    ));
                }
            }
            for option in options {
                data.check("`options`", option)?;
            }
            if let Some(answer) = answer {
                data.check("`answer`", answer)?;
                if data.has(LABEL) {
                    return Err(format!("`answer`: the data has a column `{LABEL}`, the attribute that `answer` sets; rename the column"));
                }
            }
        }
    }
    let mut cases = Vec::with_capacity(data.rows.len());
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    for (index, row) in data.rows.iter().enumerate() {
        let at = |message: String| format!("`file`: {shown}: line {}: {message}", row.line);
        let value = |name: &str| row.values.get(name).map(String::as_str);
        let item = match &p.id_column {
            Some(column) => value(column).unwrap_or_default().trim().to_string(),
            None => (index + 1).to_string(),
        };
        if item.is_empty() {
            return Err(at("the id column is empty".to_string()));
        }
        if item.contains('/') {
            // A transform's variant is `<case id>/<transform>`: a `/` could make two cases one.
            return Err(at(format!(
                "the id `{item}` holds a `/`, which case ids keep for transforms"
            )));
        }
        if let Some(first) = ids.insert(item.clone(), row.line) {
            return Err(at(format!(
                "the id `{item}` is also the id of line {first}"
            )));
        }
        // Every column but the id (in the case id already, and unique per row, which would
        // keep paired metrics from matching rows) is an attribute.
        let mut attributes: Attributes = row.values.clone();
        if let Some(column) = &p.id_column {
            attributes.remove(column);
        }
        let query = match &shape {
            Shape::Chat { prompt, system } => {
                let prompt = prompt.render(value).map_err(&at)?;
                if prompt.trim().is_empty() {
                    return Err(at("the prompt is empty".to_string()));
                }
                Query::Chat {
                    system: system
                        .as_ref()
                        .map(|s| s.render(value))
                        .transpose()
                        .map_err(&at)?,
                    history: Vec::new(),
                    prompt,
                }
            }
            Shape::Choice {
                context,
                options,
                answer,
            } => {
                let context = context.render(value).map_err(&at)?;
                let mut texts = Vec::with_capacity(options.len());
                for column in options {
                    let text = value(column).unwrap_or_default();
                    if text.trim().is_empty() {
                        return Err(at(format!("the option column `{column}` is empty")));
                    }
                    // A continuation starts a new word, as lm-eval and BBQ score options.
                    let spaced = context.is_empty() || text.starts_with(char::is_whitespace);
                    texts.push(if spaced {
                        text.to_string()
                    } else {
                        format!(" {text}")
                    });
                }
                if let Some(column) = answer {
                    let gold = value(column).unwrap_or_default().trim();
                    let index = gold_index(gold, options, &texts).ok_or_else(|| {
                        at(format!(
                            "the answer `{gold}` is none of the options (give an option column's name, its 0-based index, or its text)"
                        ))
                    })?;
                    attributes.insert(LABEL.to_string(), index.to_string());
                }
                Query::Choice {
                    context,
                    options: texts,
                }
            }
        };
        cases.push(Case {
            id: format!("{}/{item}", args.id),
            probe: args.id.to_string(),
            attributes,
            query,
        });
    }
    Ok(Box::new(TableProbe {
        info: args.info(),
        cases,
    }))
}

/// The gold option: an option column's name, a 0-based index, or an option's text.
fn gold_index(gold: &str, columns: &[String], texts: &[String]) -> Option<usize> {
    columns
        .iter()
        .position(|c| c == gold)
        .or_else(|| gold.parse::<usize>().ok().filter(|&i| i < columns.len()))
        .or_else(|| texts.iter().position(|t| t.trim() == gold))
}

/// The cases of a declared table, made when the suite was loaded.
struct TableProbe {
    info: ProbeInfo,
    cases: Vec<Case>,
}

impl Probe for TableProbe {
    fn info(&self) -> &ProbeInfo {
        &self.info
    }

    fn cases(&self, _seed: u64) -> Result<Vec<Case>, ProbeError> {
        Ok(self.cases.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn values(data: &Data) -> Vec<(usize, Vec<(&str, &str)>)> {
        data.rows
            .iter()
            .map(|r| {
                (
                    r.line,
                    r.values
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn csv_quirks() {
        let data =
            parse_csv("\u{feff}id,text\r\n1,\"two\r\nlines, \"\"quoted\"\"\"\r\n\r\n2,plain\r\n")
                .unwrap();
        assert_eq!(data.columns, ["id", "text"]);
        assert_eq!(
            values(&data),
            [
                (2, vec![("id", "1"), ("text", "two\nlines, \"quoted\"")]),
                (5, vec![("id", "2"), ("text", "plain")]),
            ]
        );
        assert_eq!(
            parse_csv("id,text\n1,a,b\n").unwrap_err(),
            "line 2: 3 fields where the header has 2"
        );
        assert_eq!(
            parse_csv("id,id\n1,2\n").unwrap_err(),
            "line 1: column `id` appears twice"
        );
        assert!(parse_csv("id,\"x\n").unwrap_err().contains("never closed"));
    }

    /// Builds a probe over `data` (written as `name` in a fresh folder) with `params`.
    fn build_over(name: &str, data: &str, params: &str) -> Result<Vec<Case>, String> {
        let dir = std::env::temp_dir().join(format!(
            "probity-table-{}-{}",
            std::process::id(),
            name.replace('.', "-")
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
        let table: toml::Table = toml::from_str(&format!("file = \"{name}\"\n{params}")).unwrap();
        let args = ProbeArgs {
            id: "p",
            goal: "g",
            source: "s",
            params: &table,
            datasets: Path::new("/nonexistent"),
            suite_dir: Some(&dir),
        };
        let result = build(&args).map(|probe| probe.cases(0).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        result
    }

    #[test]
    fn chat_rows_become_cases_with_literal_values() {
        let cases = build_over(
            "chat.csv",
            "id,group,text\nq1,nurse,\"Say {group} and {{ 7*7 }}\"\n",
            "id_column = \"id\"\nsystem = \"You help {group}s.\"\nprompt = \"[{group}] {text} {{ok}}\"",
        )
        .unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].id, "p/q1");
        assert_eq!(
            cases[0].attributes,
            Attributes::from([
                ("group".to_string(), "nurse".to_string()),
                ("text".to_string(), "Say {group} and {{ 7*7 }}".to_string()),
            ])
        );
        assert_eq!(
            cases[0].query,
            Query::Chat {
                system: Some("You help nurses.".into()),
                history: Vec::new(),
                prompt: "[nurse] Say {group} and {{ 7*7 }} {ok}".into(),
            }
        );
        let error = build_over(
            "slash.csv",
            "id,t\na/b,x\n",
            "id_column = \"id\"\nprompt = \"{t}\"",
        )
        .unwrap_err();
        assert!(
            error.contains("line 2: the id `a/b` holds a `/`"),
            "{error}"
        );
        // Without an id column, the row's number is the id.
        let cases = build_over("n.csv", "t\na\nb\n", "prompt = \"{t}\"").unwrap();
        let ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["p/1", "p/2"]);
    }

    #[test]
    fn choice_rows_name_their_gold_option_three_ways() {
        let data = "{\"c\": \"Who?\", \"a\": \"Ann\", \"b\": \" Bo\", \"gold\": \"b\"}\n{\"c\": \"Who?\", \"a\": \"Ann\", \"b\": \"Bo\", \"gold\": 0}\n{\"c\": \"Who?\", \"a\": \"Ann\", \"b\": \"Bo\", \"gold\": \"Bo\"}\n";
        let cases = build_over(
            "c.jsonl",
            data,
            "context = \"Q: {c}\\nA:\"\noptions = [\"a\", \"b\"]\nanswer = \"gold\"",
        )
        .unwrap();
        let labels: Vec<&str> = cases.iter().map(|c| c.attributes[LABEL].as_str()).collect();
        assert_eq!(labels, ["1", "0", "1"]);
        assert_eq!(
            cases[0].query,
            Query::Choice {
                context: "Q: Who?\nA:".into(),
                options: vec![" Ann".into(), " Bo".into()],
            }
        );
        let error = build_over(
            "bad.jsonl",
            "{\"a\": \"x\", \"b\": \"y\", \"gold\": \"z\"}\n",
            "options = [\"a\", \"b\"]\nanswer = \"gold\"",
        )
        .unwrap_err();
        assert!(
            error.starts_with("`file`: ")
                && error.contains("bad.jsonl: line 1: the answer `z` is none of the options"),
            "{error}"
        );
    }

    #[test]
    fn parameters_are_checked() {
        for (params, expect) in [
            ("", "`file`: give `prompt"),
            ("prompt = \"{t}\"\noptions = [\"t\", \"t\"]", "not both"),
            (
                "prompt = \"{t}\"\nanswer = \"t\"",
                "`answer`: only for Choice",
            ),
            ("options = [\"t\"]", "at least two"),
            (
                "prompt = \"{x}\"",
                "`prompt`: unknown placeholder `{x}` (columns: t)",
            ),
            (
                "prompt = \"{t}\"\nid_column = \"id\"",
                "`id_column`: no column `id`",
            ),
            ("promt = \"{t}\"", "unknown field `promt`"),
        ] {
            let error = build_over("p.csv", "t\na\n", params).unwrap_err();
            assert!(error.contains(expect), "{params}: {error}");
        }
        let error = build_over("x.txt", "t\na\n", "prompt = \"{t}\"").unwrap_err();
        assert!(error.contains("expected a .csv or .jsonl file"), "{error}");
    }

    #[test]
    fn jsonl_lines() {
        let data = parse_jsonl(
            "\u{feff}{\"id\": \"a\", \"n\": 3, \"ok\": true}\r\n\n  \n{\"id\": \"b\", \"x\": null, \"l\": [1, \"2\"]}\n",
        )
        .unwrap();
        assert_eq!(data.columns, ["id", "n", "ok", "l", "x"]);
        assert_eq!(
            values(&data),
            [
                (1, vec![("id", "a"), ("n", "3"), ("ok", "true")]),
                (4, vec![("id", "b"), ("l", "[1,\"2\"]"), ("x", "")]),
            ]
        );
        let error = parse_jsonl("{\"id\": 1}\n\n{\"id\": 2,}\n").unwrap_err();
        assert!(error.starts_with("line 3: not valid JSON"), "{error}");
        assert_eq!(
            parse_jsonl("{\"a\":1}\n[1]\n").unwrap_err(),
            "line 2: expected a JSON object"
        );
        assert_eq!(parse_jsonl("\n\n").unwrap_err(), "the file has no rows");
    }
}
