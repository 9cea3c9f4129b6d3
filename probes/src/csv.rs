//! The one CSV reader of the probes (RFC 4180 as the benchmark files use it): quoted fields with
//! doubled quotes, commas and newlines; CRLF or LF line endings; a byte-order mark; no final
//! newline. Rows carry their 1-based line numbers so that errors name the row; blank lines are
//! skipped. `Table` adds the header row.

/// One record of a CSV file and the line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub line: usize,
    pub fields: Vec<String>,
}

/// Splits `text` into records. A quote that never closes is an error naming its line.
pub fn parse(text: &str) -> Result<Vec<Record>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut line = 1;
    let mut start_line = 1;
    let mut chars = text.chars().peekable();
    let mut row_has_content = false;
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
                '\r' if chars.peek() == Some(&'\n') => {}
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => {
                in_quotes = true;
                row_has_content = true;
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                row_has_content = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if row_has_content || !field.is_empty() {
                    fields.push(std::mem::take(&mut field));
                    records.push(Record {
                        line: start_line,
                        fields: std::mem::take(&mut fields),
                    });
                }
                row_has_content = false;
                line += 1;
                start_line = line;
            }
            c => {
                field.push(c);
                row_has_content = true;
            }
        }
    }
    if in_quotes {
        return Err(format!("line {start_line}: a quoted field is never closed"));
    }
    if row_has_content || !field.is_empty() {
        fields.push(field);
        records.push(Record {
            line: start_line,
            fields,
        });
    }
    Ok(records)
}

/// A CSV table with a header row: the column index of each named column.
#[derive(Clone, Debug)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Record>,
}

impl Table {
    /// Parses `text` whose first record is the header.
    pub fn parse(text: &str) -> Result<Table, String> {
        let mut records = parse(text)?;
        if records.is_empty() {
            return Err("the file is empty".to_string());
        }
        let header = records.remove(0).fields;
        Ok(Table {
            header,
            rows: records,
        })
    }

    /// The index of a column, or an error naming the columns that exist.
    pub fn column(&self, name: &str) -> Result<usize, String> {
        self.header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("no column `{name}` (columns: {})", self.header.join(", ")))
    }

    /// The field of a row at a column, or an error naming the row.
    pub fn field<'a>(&self, row: &'a Record, column: usize) -> Result<&'a str, String> {
        row.fields.get(column).map(String::as_str).ok_or_else(|| {
            format!(
                "line {}: {} fields where the header has {}",
                row.line,
                row.fields.len(),
                self.header.len()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expect: &[(usize, &[&str])]) {
        let got = parse(text).expect("valid in this test");
        let got: Vec<(usize, Vec<&str>)> = got
            .iter()
            .map(|r| (r.line, r.fields.iter().map(String::as_str).collect()))
            .collect();
        let expect: Vec<(usize, Vec<&str>)> =
            expect.iter().map(|(l, f)| (*l, f.to_vec())).collect();
        assert_eq!(got, expect, "{text:?}");
    }

    #[test]
    fn records() {
        check("a,b\n1,2", &[(1, &["a", "b"]), (2, &["1", "2"])]);
        check("a,b\r\n1,2\r\n", &[(1, &["a", "b"]), (2, &["1", "2"])]);
        check(
            "a,\"x, \"\"y\"\"\r\nz\"\n3,4",
            &[(1, &["a", "x, \"y\"\nz"]), (3, &["3", "4"])],
        );
        check(",a\n,b", &[(1, &["", "a"]), (2, &["", "b"])]);
        check("a\n\nb", &[(1, &["a"]), (3, &["b"])]);
        check("", &[]);
        assert_eq!(
            parse("a\n\"open").expect_err("an error is expected"),
            "line 2: a quoted field is never closed"
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests_quotes {
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
    fn a_byte_order_mark_is_not_part_of_the_first_field() {
        check("\u{feff}a,b\n1,2\n", &[&["a", "b"], &["1", "2"]]);
    }

    #[test]
    fn an_unclosed_quote_names_its_line() {
        assert_eq!(
            parse("a\n\"open,\nb\n").unwrap_err(),
            "line 2: a quoted field is never closed"
        );
    }
}
