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

/// The date a chat template's `strftime_now` prints ("Today Date: 26 Jul 2024" in the Llama 3
/// family's templates). It is an input of the run (`probity run --date`, recorded in the
/// manifest), never the clock, so that the same run renders the same prompts on any day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TemplateDate {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl TemplateDate {
    /// The date the Llama 3.1 templates print when `strftime_now` is not defined: 26 Jul 2024.
    pub const DEFAULT: TemplateDate = TemplateDate {
        year: 2024,
        month: 7,
        day: 26,
    };
}

impl Default for TemplateDate {
    fn default() -> Self {
        TemplateDate::DEFAULT
    }
}

impl std::fmt::Display for TemplateDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl std::str::FromStr for TemplateDate {
    type Err = String;

    /// `YYYY-MM-DD`, a real day of the Gregorian calendar.
    fn from_str(text: &str) -> Result<TemplateDate, String> {
        let bad = || format!("`{text}`: expected a date as YYYY-MM-DD");
        let mut parts = text.split('-');
        let (Some(y), Some(m), Some(d), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return Err(bad());
        }
        let (year, month, day): (u16, u8, u8) = (
            y.parse().map_err(|_| bad())?,
            m.parse().map_err(|_| bad())?,
            d.parse().map_err(|_| bad())?,
        );
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return Err(format!("`{text}`: there is no month {month}")),
        };
        if day == 0 || day > days_in_month {
            return Err(format!("`{text}`: that month has no day {day}"));
        }
        Ok(TemplateDate { year, month, day })
    }
}

/// `date` formatted by a small strftime subset (%Y, %m, %d, %B, %b, %%), as Python's
/// `datetime.strftime` does for these directives.
fn strftime(date: TemplateDate, format: &str) -> String {
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
    let name = MONTHS[usize::from(date.month.clamp(1, 12) - 1)];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&format!("{:04}", date.year)),
            Some('m') => out.push_str(&format!("{:02}", date.month)),
            Some('d') => out.push_str(&format!("{:02}", date.day)),
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
    /// Compiles `source`, whose `strftime_now` prints `date`; the error is minijinja's one-line
    /// description.
    pub fn new(
        source: &str,
        bos_token: &str,
        eos_token: &str,
        date: TemplateDate,
    ) -> Result<ChatTemplate, String> {
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
        env.add_function("strftime_now", move |format: String| {
            strftime(date, &format)
        });
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
    fn dates_are_read_checked_and_printed_as_strftime_does() {
        let date: TemplateDate = "2024-02-29".parse().unwrap();
        assert_eq!(date.to_string(), "2024-02-29");
        // Python: datetime.date(2024, 2, 29).strftime("%d %b %Y|%B|%m|%%|%q")
        assert_eq!(
            strftime(date, "%d %b %Y|%B|%m|%%|%q"),
            "29 Feb 2024|February|02|%|%q"
        );
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-04-31",
            "2024-1-01",
            "24-01-01",
            "x",
            "2024-01-01-01",
        ] {
            assert!(bad.parse::<TemplateDate>().is_err(), "{bad}");
        }
        // The template sees the run's date, not the clock.
        let source = "{{ strftime_now('%d %b %Y') }}";
        let t = ChatTemplate::new(source, "", "", TemplateDate::DEFAULT).unwrap();
        assert_eq!(t.render(&[]).unwrap(), "26 Jul 2024");
        let t = ChatTemplate::new(source, "", "", "2030-01-05".parse().unwrap()).unwrap();
        assert_eq!(t.render(&[]).unwrap(), "05 Jan 2030");
    }

    #[test]
    fn tojson_is_python_style() {
        let t =
            ChatTemplate::new("{{ messages[0] | tojson }}", "", "", TemplateDate::DEFAULT).unwrap();
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
        let error = ChatTemplate::new(endless, "", "", TemplateDate::DEFAULT)
            .unwrap()
            .render(&[user("x")])
            .unwrap_err();
        assert!(error.contains("fuel"), "{error}");
        let recursive = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}";
        let error = ChatTemplate::new(recursive, "", "", TemplateDate::DEFAULT)
            .unwrap()
            .render(&[user("x")])
            .unwrap_err();
        assert!(error.contains("recursion"), "{error}");
        let huge = "{% for i in range(1000) %}{{ 'x' * 1000000 }}{% endfor %}";
        let error = ChatTemplate::new(huge, "", "", TemplateDate::DEFAULT)
            .unwrap()
            .render(&[user("x")])
            .unwrap_err();
        assert!(error.contains("exceed"), "{error}");
        // A real conversation stays far inside the limits.
        let plain = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}";
        let many: Vec<Message> = (0..2000).map(|i| user(&format!("shot {i}"))).collect();
        assert!(ChatTemplate::new(plain, "", "", TemplateDate::DEFAULT)
            .unwrap()
            .render(&many)
            .is_ok());
    }
}
