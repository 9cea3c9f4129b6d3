//! Prompt templates of declared benchmarks: text with `{column}` placeholders, filled by plain
//! string insertion of a row's values. Nothing is evaluated: the template is split once into
//! text and placeholders, and a row's value is copied in as it is, never read again, so a value
//! holding `{other}` or `{{ 7*7 }}` stays literal. `{{` and `}}` write a literal brace.

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(String),
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Splits `text` into text and `{name}` placeholders; an unclosed `{`, a lone `}` or an
    /// empty `{}` is an error.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') | None => {
                                return Err(format!(
                                    "a placeholder `{{{name}` is not closed with `}}` (write `{{{{` for a literal brace)"
                                ))
                            }
                            Some(c) => name.push(c),
                        }
                    }
                    if name.trim().is_empty() {
                        return Err(
                            "an empty placeholder `{}` (write `{{}}` for literal braces)"
                                .to_string(),
                        );
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(name.trim().to_string()));
                }
                '}' => {
                    return Err(
                        "a `}` that closes no placeholder (write `}}` for a literal brace)"
                            .to_string(),
                    )
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// The placeholders' names, in order of appearance (repeats included).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(name) => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// The text with every placeholder replaced by `value(name)`; the first name without a
    /// value is the error.
    pub fn render<'a>(&self, value: impl Fn(&str) -> Option<&'a str>) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(name) => match value(name) {
                    Some(v) => out.push_str(v),
                    None => return Err(format!("no value for the placeholder `{{{name}}}`")),
                },
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn render(template: &str, row: &[(&str, &str)]) -> Result<String, String> {
        let row: BTreeMap<&str, &str> = row.iter().copied().collect();
        Template::parse(template)?.render(|name| row.get(name).copied())
    }

    #[test]
    fn placeholders_are_filled_with_plain_values() {
        assert_eq!(
            render(
                "Ask {name} about {topic}.",
                &[("name", "Ann"), ("topic", "tea")]
            )
            .unwrap(),
            "Ask Ann about tea."
        );
        assert_eq!(render("{ x }{x}", &[("x", "1")]).unwrap(), "11");
        assert_eq!(render("no placeholders", &[]).unwrap(), "no placeholders");
    }

    #[test]
    fn values_are_never_read_as_templates() {
        let row = [("a", "{b} and {{ 7*7 }} and {% if x %}"), ("b", "B")];
        assert_eq!(
            render("<{a}>", &row).unwrap(),
            "<{b} and {{ 7*7 }} and {% if x %}>"
        );
    }

    #[test]
    fn doubled_braces_are_literal() {
        assert_eq!(render("{{x}} = {x}", &[("x", "1")]).unwrap(), "{x} = 1");
        assert_eq!(render("{{ 7*7 }}", &[]).unwrap(), "{ 7*7 }");
    }

    #[test]
    fn malformed_templates_and_missing_values_are_errors() {
        for bad in ["{open", "close}", "{}", "a {b {c}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            render("{nmae}", &[("name", "x")]).unwrap_err(),
            "no value for the placeholder `{nmae}`"
        );
        let t = Template::parse("{a}{b}{a}").unwrap();
        assert_eq!(t.fields().collect::<Vec<_>>(), ["a", "b", "a"]);
    }
}
