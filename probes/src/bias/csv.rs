//! A small RFC 4180 CSV reader for the benchmark files: quoted fields with embedded commas,
//! quotes and newlines, CRLF or LF line endings, a missing final newline. Errors name the line.

/// One record: its fields and the 1-based line it starts on.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub line: usize,
    pub fields: Vec<String>,
}

/// Splits `text` into records. A quote inside an unquoted field is kept as text; an unclosed
/// quoted field is an error naming the line it opened on. Blank lines are skipped.
pub fn parse(text: &str) -> Result<Vec<Record>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut line = 1usize;
    let mut record_line = 1usize;
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    let mut quote_line = 0usize;
    let mut field_started = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if !field_started => {
                in_quotes = true;
                field_started = true;
                quote_line = line;
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                field_started = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                field_started = false;
                if !(fields.len() == 1 && fields[0].is_empty()) {
                    records.push(Record {
                        line: record_line,
                        fields: std::mem::take(&mut fields),
                    });
                }
                fields.clear();
                line += 1;
                record_line = line;
            }
            _ => {
                field_started = true;
                field.push(c);
            }
        }
    }
    if in_quotes {
        return Err(format!("line {quote_line}: a quoted field is never closed"));
    }
    if field_started || !fields.is_empty() || !field.is_empty() {
        fields.push(field);
        records.push(Record {
            line: record_line,
            fields,
        });
    }
    Ok(records)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(text: &str, expect: &[&[&str]]) {
        let records = parse(text).unwrap();
        let got: Vec<Vec<&str>> = records
            .iter()
            .map(|r| r.fields.iter().map(String::as_str).collect())
            .collect();
        let want: Vec<Vec<&str>> = expect.iter().map(|r| r.to_vec()).collect();
        assert_eq!(got, want, "{text:?}");
    }

    #[test]
    fn fields_quotes_and_line_endings() {
        check("a,b\n1,2\n", &[&["a", "b"], &["1", "2"]]);
        check("a,b\r\n1,2", &[&["a", "b"], &["1", "2"]]);
        check(",x\n", &[&["", "x"]]);
        check("\"a,b\",\"say \"\"hi\"\"\"\n", &[&["a,b", "say \"hi\""]]);
        check(
            "\"two\nlines\",z\n\n3,4\n",
            &[&["two\nlines", "z"], &["3", "4"]],
        );
        check("it's,5\" tall\n", &[&["it's", "5\" tall"]]);
        check("a,\n", &[&["a", ""]]);
    }

    #[test]
    fn record_lines_count_embedded_newlines() {
        let records = parse("h\n\"x\ny\"\nz\n").unwrap();
        assert_eq!(records[1].line, 2);
        assert_eq!(records[2].line, 4);
    }

    #[test]
    fn an_unclosed_quote_names_its_line() {
        assert_eq!(
            parse("a\n\"open,\nb\n").unwrap_err(),
            "line 2: a quoted field is never closed"
        );
    }
}
