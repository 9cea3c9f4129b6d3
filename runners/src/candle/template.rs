//! Chat templates (the Jinja source in `tokenizer.chat_template` or `tokenizer_config.json`),
//! rendered with minijinja the way transformers' `apply_chat_template` renders them.
//!
//! transformers compiles templates with `trim_blocks` and `lstrip_blocks`, exposes
//! `raise_exception` and `strftime_now`, and Python string methods (`.strip()`, `.startswith()`),
//! which minijinja-contrib's `pycompat` supplies. Its `tojson` is Python's `json.dumps` with
//! `ensure_ascii=False`, which we reproduce instead of minijinja's HTML-safe variant.

use audit_core::{Message, Role};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Kwargs;
use minijinja::{Environment, Error, ErrorKind, Value};

/// A compiled chat template with the special-token strings it may refer to.
pub(crate) struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

fn raise_exception(message: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

/// Today's date, formatted by a small strftime subset (%Y, %m, %d, %B, %b, %%); templates use it
/// for "Today Date: 26 Jul 2024" lines. Days since the epoch are converted by the civil calendar.
fn strftime_now(format: String) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let (year, month, day) = civil_from_days(days);
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let name = MONTHS[((month - 1) as usize).min(11)];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&year.to_string()),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('B') => out.push_str(name),
            Some('b') => out.push_str(&name[..3]),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Python's `json.dumps(value, ensure_ascii=False, indent=indent)`.
fn tojson(value: &Value, indent: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let indent = match indent {
        Some(v) => Some(v),
        None => kwargs.get::<Option<Value>>("indent")?,
    };
    let _: Option<Value> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let indent = match indent {
        Some(v) if v.is_none() => None,
        Some(v) => Some(usize::try_from(v)?),
        None => None,
    };
    let mut out = String::new();
    write_json(value, indent, 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

/// Writes `value` as Python's `json.dumps` does, keeping the map order of the template's data.
fn write_json(
    value: &Value,
    indent: Option<usize>,
    depth: usize,
    out: &mut String,
) -> Result<(), Error> {
    use minijinja::value::ValueKind;
    let newline = |out: &mut String, depth: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * depth));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => out.push_str(&value.to_string()),
        ValueKind::String => out.push_str(
            &serde_json::Value::String(value.as_str().unwrap_or_default().to_string()).to_string(),
        ),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                write_json(item, indent, depth + 1, out)?;
            }
            if !items.is_empty() {
                newline(out, depth);
            }
            out.push(']');
        }
        ValueKind::Map => {
            let keys: Vec<Value> = value.try_iter()?.collect();
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                let name = key.as_str().map_or_else(|| key.to_string(), str::to_string);
                out.push_str(&serde_json::Value::String(name).to_string());
                out.push_str(": ");
                write_json(&value.get_item(key)?, indent, depth + 1, out)?;
            }
            if !keys.is_empty() {
                newline(out, depth);
            }
            out.push('}');
        }
        _ => out.push_str(&serde_json::Value::String(value.to_string()).to_string()),
    }
    Ok(())
}

/// Limits on a chat template, which comes from the model file and is not trusted: the
/// instructions one rendering may run (a real template spends a few thousand on a long
/// conversation), how deeply it may nest calls and includes, and how much text it may write.
pub const TEMPLATE_FUEL: u64 = 10_000_000;
pub const TEMPLATE_RECURSION: usize = 64;
pub const TEMPLATE_OUTPUT: usize = 16 << 20;

/// A writer that refuses to hold more than `limit` bytes.
struct Bounded {
    text: Vec<u8>,
    limit: usize,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.text.len() + buf.len() > self.limit {
            return Err(std::io::Error::other(format!(
                "the rendered prompt would exceed {} bytes",
                self.limit
            )));
        }
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ChatTemplate {
    /// Compiles `source`; the error is minijinja's one-line description.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<ChatTemplate, String> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| e.to_string())?;
        env.set_syntax(syntax);
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_recursion_limit(TEMPLATE_RECURSION);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson);
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| e.to_string().replace('\n', " "))?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
        })
    }

    /// Renders a conversation with `add_generation_prompt=True`.
    pub fn render(&self, messages: &[Message]) -> Result<String, String> {
        self.render_with_tools(messages, None)
    }

    /// Renders a conversation with `add_generation_prompt=True` and, where given, `tools` (the
    /// JSON list transformers' `apply_chat_template(tools=...)` takes). Object keys reach the
    /// template in sorted order (Python keeps insertion order: they agree for sorted input).
    pub fn render_with_tools(
        &self,
        messages: &[Message],
        tools: Option<&serde_json::Value>,
    ) -> Result<String, String> {
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| {
                minijinja::context! {
                    role => role_name(m.role),
                    content => m.content.clone(),
                }
            })
            .collect();
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| e.to_string().replace('\n', " "))?;
        let mut out = Bounded {
            text: Vec::new(),
            limit: TEMPLATE_OUTPUT,
        };
        template
            .render_captured_to(
                minijinja::context! {
                    messages => messages,
                    add_generation_prompt => true,
                    tools => minijinja::value::Serde(tools),
                    bos_token => self.bos_token.clone(),
                    eos_token => self.eos_token.clone(),
                },
                &mut out,
            )
            .map_err(|e| {
                // The cause of a failed write (the output limit) is the error's source.
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    text.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                format!("chat template: {}", text.replace('\n', " "))
            })?;
        String::from_utf8(out.text).map_err(|_| "chat template: the output is not UTF-8".into())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    }

    #[test]
    fn tojson_is_python_style() {
        let t = ChatTemplate::new("{{ messages[0] | tojson }}", "", "").unwrap();
        let out = t
            .render(&[Message {
                role: Role::User,
                content: "é <b>".into(),
            }])
            .unwrap();
        assert_eq!(out, r#"{"role": "user", "content": "é <b>"}"#);
    }

    fn user(text: &str) -> Message {
        Message {
            role: Role::User,
            content: text.to_string(),
        }
    }

    #[test]
    fn hostile_templates_hit_a_limit_not_the_machine() {
        // An endless loop (fuel), runaway recursion, and a prompt of gigabytes.
        let endless =
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
        let error = ChatTemplate::new(endless, "", "")
            .unwrap()
            .render(&[user("x")])
            .unwrap_err();
        assert!(error.contains("fuel"), "{error}");
        let recursive = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}";
        let error = ChatTemplate::new(recursive, "", "")
            .unwrap()
            .render(&[user("x")])
            .unwrap_err();
        assert!(error.contains("recursion"), "{error}");
        let huge = "{% for i in range(1000) %}{{ 'x' * 1000000 }}{% endfor %}";
        let error = ChatTemplate::new(huge, "", "")
            .unwrap()
            .render(&[user("x")])
            .unwrap_err();
        assert!(error.contains("exceed"), "{error}");
        // A real conversation stays far inside the limits.
        let plain = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}";
        let many: Vec<Message> = (0..2000).map(|i| user(&format!("shot {i}"))).collect();
        assert!(ChatTemplate::new(plain, "", "")
            .unwrap()
            .render(&many)
            .is_ok());
    }
}
