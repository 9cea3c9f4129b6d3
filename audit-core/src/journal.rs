//! attempts.jsonl: the append-only journal of finished attempts, one JSON object per line,
//! written as each batch completes so that a killed run loses at most the batch in flight.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::attempt::Attempt;

/// A journal open for appending.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    done: BTreeSet<(String, String)>,
    /// (target queries, tokens) of each journaled attack: what run budgets subtract.
    attacks: BTreeMap<(String, String), (u64, u64)>,
}

/// A journal that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path}: {source}")]
    /// The file cannot be read or written.
    Io {
        /// The journal's path.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    #[error("{path}: line {line} is not an attempt: {message}")]
    /// A line is not an attempt.
    Malformed {
        /// The journal's path.
        path: String,
        /// The 1-based line number.
        line: usize,
        /// Why it could not be read.
        message: String,
    },
    #[error("{path}: attempt {suite}/{case_id} cannot be journaled: {reason}")]
    /// An attempt holds a number JSON cannot write (NaN, infinity).
    NonFinite {
        /// The journal's path.
        path: String,
        /// The attempt's suite.
        suite: String,
        /// The attempt's case id.
        case_id: String,
        /// Which number, and where.
        reason: String,
    },
    #[error("{path}: attempt {suite}/{case_id} appears twice")]
    /// An attempt is journaled a second time.
    Duplicate {
        /// The journal's path.
        path: String,
        /// The attempt's suite.
        suite: String,
        /// The attempt's case id.
        case_id: String,
    },
}

impl Journal {
    /// Creates a new, empty journal. A file (or symlink) already at `path` is an error: a
    /// journal is never truncated, and never written through a link.
    pub fn create(path: &Path) -> Result<Journal, JournalError> {
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(path)
            .map_err(|e| io_error(path, e))?;
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::rundir::sync_dir(dir).map_err(|e| io_error(dir, e))?;
        }
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            done: BTreeSet::new(),
            attacks: BTreeMap::new(),
        })
    }

    /// Opens an existing journal to continue it, returning the attempts it holds. A last line
    /// cut short by a crash (no trailing newline) is dropped from the file: that attempt runs
    /// again.
    pub fn resume(path: &Path) -> Result<(Journal, Vec<Attempt>), JournalError> {
        let is_link = std::fs::symlink_metadata(path)
            .map_err(|e| io_error(path, e))?
            .file_type()
            .is_symlink();
        if is_link {
            return Err(io_error(
                path,
                std::io::Error::other("is a symbolic link: a journal is never written through one"),
            ));
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| io_error(path, e))?;
        let (attempts, complete_bytes) = read_lines(path, &file)?;
        file.set_len(complete_bytes)
            .map_err(|e| io_error(path, e))?;
        file.seek(SeekFrom::End(0)).map_err(|e| io_error(path, e))?;
        let mut done = BTreeSet::new();
        let mut attacks = BTreeMap::new();
        for attempt in &attempts {
            let key = (attempt.suite.clone(), attempt.case_id.clone());
            if let Some(spend) = attack_spend(attempt) {
                attacks.insert(key.clone(), spend);
            }
            if !done.insert(key) {
                return Err(JournalError::Duplicate {
                    path: path.display().to_string(),
                    suite: attempt.suite.clone(),
                    case_id: attempt.case_id.clone(),
                });
            }
        }
        Ok((
            Journal {
                path: path.to_path_buf(),
                file,
                done,
                attacks,
            },
            attempts,
        ))
    }

    /// Whether the attempt of this case is already journaled.
    pub fn contains(&self, suite: &str, case_id: &str) -> bool {
        self.done
            .contains(&(suite.to_string(), case_id.to_string()))
    }

    /// The target queries and tokens (every party's, 0 where uncounted) a journaled attack
    /// spent, for run budgets; None for another case, or one not journaled.
    pub fn attack_spend(&self, suite: &str, case_id: &str) -> Option<(u64, u64)> {
        self.attacks
            .get(&(suite.to_string(), case_id.to_string()))
            .copied()
    }

    /// Appends attempts and fsyncs them: once this returns, they survive a crash or a power
    /// loss. A failed write (a full disk) is cut back to the last complete line.
    pub fn append(&mut self, attempts: &[Attempt]) -> Result<(), JournalError> {
        let mut buffer = Vec::new();
        for attempt in attempts {
            // serde_json writes NaN and infinity as `null`, which no reader accepts back.
            if let Some(reason) = attempt.non_finite() {
                return Err(JournalError::NonFinite {
                    path: self.path.display().to_string(),
                    suite: attempt.suite.clone(),
                    case_id: attempt.case_id.clone(),
                    reason,
                });
            }
            serde_json::to_writer(&mut buffer, attempt).map_err(|e| {
                io_error(
                    &self.path,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                )
            })?;
            buffer.push(b'\n');
        }
        let before = self
            .file
            .metadata()
            .map_err(|e| io_error(&self.path, e))?
            .len();
        let written = self
            .file
            .write_all(&buffer)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Leave only whole lines: what was not written runs again on --resume.
            let _ = self.file.set_len(before);
            let _ = self.file.seek(SeekFrom::End(0));
            return Err(io_error(&self.path, e));
        }
        for attempt in attempts {
            let key = (attempt.suite.clone(), attempt.case_id.clone());
            if let Some(spend) = attack_spend(attempt) {
                self.attacks.insert(key.clone(), spend);
            }
            self.done.insert(key);
        }
        Ok(())
    }
}

/// (target queries, tokens) of an attack's attempt.
fn attack_spend(attempt: &Attempt) -> Option<(u64, u64)> {
    match &attempt.answer {
        crate::backend::Answer::Attack(record) => Some((
            u64::from(record.queries.target),
            record.tokens.as_ref().map_or(0, |t| t.total()),
        )),
        _ => None,
    }
}

/// Reads every attempt of a finished journal. Unlike `resume`, a cut-short last line is an error.
pub fn read(path: &Path) -> Result<Vec<Attempt>, JournalError> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let length = file.metadata().map_err(|e| io_error(path, e))?.len();
    let (attempts, complete_bytes) = read_lines(path, &file)?;
    if complete_bytes != length {
        return Err(JournalError::Malformed {
            path: path.display().to_string(),
            line: attempts.len() + 1,
            message: "the last line is cut short (the run was interrupted: use --resume)"
                .to_string(),
        });
    }
    Ok(attempts)
}

/// Parses the complete lines of a journal; returns them and the byte length they cover.
fn read_lines(path: &Path, file: &File) -> Result<(Vec<Attempt>, u64), JournalError> {
    let mut reader = BufReader::new(file);
    let mut attempts = Vec::new();
    let mut complete_bytes = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| io_error(path, e))?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        let attempt: Attempt =
            serde_json::from_slice(&line).map_err(|e| JournalError::Malformed {
                path: path.display().to_string(),
                line: attempts.len() + 1,
                message: e.to_string(),
            })?;
        attempts.push(attempt);
        complete_bytes += n as u64;
    }
    Ok((attempts, complete_bytes))
}

fn io_error(path: &Path, source: std::io::Error) -> JournalError {
    JournalError::Io {
        path: path.display().to_string(),
        source,
    }
}
