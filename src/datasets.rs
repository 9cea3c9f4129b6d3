//! `probity datasets list | fetch NAME… | verify [NAME…]`: the benchmark files of the built-in
//! suites (the catalogue in `probes::catalogue`), downloaded into a cache folder from their pinned
//! upstream sources or from a mirror, resumed after a broken connection, and kept only when their
//! sha256 matches.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use probes::catalogue::{self, Dataset};
use sha2::{Digest, Sha256};

/// The environment variable naming a mirror (a URL under which `NAME/FILE` is served, laid out
/// like the datasets folder).
pub const MIRROR_VAR: &str = "PROBITY_DATASETS_MIRROR";

/// A download that fails this often in a row without receiving a byte is given up.
const ATTEMPTS: usize = 5;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The catalogue: each dataset's files, size, license (share-alike and non-commercial terms
    /// flagged), citation, and whether the datasets folder holds it
    List {
        /// The datasets folder (default: $PROBITY_DATASETS, else the cache)
        #[arg(long)]
        datasets: Option<PathBuf>,
    },
    /// Download datasets into the datasets folder, checking every file's sha256
    Fetch {
        /// Dataset names (see `probity datasets list`), or `all`
        #[arg(required = true)]
        names: Vec<String>,
        /// The datasets folder (default: $PROBITY_DATASETS, else the cache)
        #[arg(long)]
        datasets: Option<PathBuf>,
        /// Download from this mirror (NAME/FILE under the URL) instead of the pinned upstream
        /// sources (default: $PROBITY_DATASETS_MIRROR)
        #[arg(long)]
        mirror: Option<String>,
    },
    /// Check the sha256 of every file of a datasets folder (your own copy too)
    Verify {
        /// Dataset names (default: every dataset whose folder is there)
        names: Vec<String>,
        /// The datasets folder (default: $PROBITY_DATASETS, else the cache)
        #[arg(long)]
        datasets: Option<PathBuf>,
    },
}

/// The cache folder datasets are fetched into: `$PROBITY_CACHE/datasets`, else
/// `~/.cache/probity/datasets`.
pub fn cache_dir() -> PathBuf {
    let cache = std::env::var_os("PROBITY_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map_or_else(|| PathBuf::from("."), PathBuf::from)
                .join(".cache/probity")
        });
    cache.join("datasets")
}

/// The datasets folder: the flag, else `$PROBITY_DATASETS`, else the cache.
pub fn dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("PROBITY_DATASETS").map(PathBuf::from))
        .unwrap_or_else(cache_dir)
}

pub fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::List { datasets } => list(&dir(datasets.as_deref())),
        Command::Fetch {
            names,
            datasets,
            mirror,
        } => {
            let mirror = mirror.or_else(|| std::env::var(MIRROR_VAR).ok());
            fetch(
                &select(&names)?,
                &dir(datasets.as_deref()),
                mirror.as_deref(),
            )
        }
        Command::Verify { names, datasets } => verify(&names, &dir(datasets.as_deref())),
    }
}

/// The datasets named, in catalogue order; `all` is every one.
fn select(names: &[String]) -> Result<Vec<&'static Dataset>> {
    if names.iter().any(|n| n == "all") {
        return Ok(catalogue::datasets().iter().collect());
    }
    let mut chosen = Vec::new();
    for name in names {
        let Some(dataset) = catalogue::find(name) else {
            let known: Vec<&str> = catalogue::datasets()
                .iter()
                .map(|d| d.name.as_str())
                .collect();
            bail!(
                "no dataset named `{name}` (known: {}, or all)",
                known.join(", ")
            );
        };
        if !chosen.iter().any(|d: &&Dataset| d.name == dataset.name) {
            chosen.push(dataset);
        }
    }
    Ok(chosen)
}

/// "CC BY-SA 4.0 (share-alike)": the license with the terms to watch.
fn terms(dataset: &Dataset) -> String {
    if dataset.flags.is_empty() {
        dataset.license.clone()
    } else {
        format!(
            "{} [{}]",
            dataset.license,
            dataset.flags.join(", ").to_uppercase()
        )
    }
}

fn list(root: &Path) -> Result<ExitCode> {
    println!("datasets folder: {}", root.display());
    for dataset in catalogue::datasets() {
        let bytes: u64 = dataset.files.iter().map(|f| f.bytes).sum();
        let present = dataset
            .files
            .iter()
            .filter(|f| root.join(&dataset.name).join(&f.file).is_file())
            .count();
        let state = match present {
            0 => "not fetched".to_string(),
            n if n == dataset.files.len() => "present".to_string(),
            n => format!("{n} of {} files present", dataset.files.len()),
        };
        println!(
            "{}  {}: {} files, {:.1} MB, {state}",
            dataset.name,
            dataset.title,
            dataset.files.len(),
            bytes as f64 / 1e6
        );
        println!("    license: {}", terms(dataset));
        println!("    cite: {}", dataset.citation);
    }
    println!("SHARE-ALIKE data may only be redistributed under the same license; NON-COMMERCIAL data may not be used commercially.");
    Ok(ExitCode::SUCCESS)
}

fn fetch(datasets: &[&Dataset], root: &Path, mirror: Option<&str>) -> Result<ExitCode> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(20))
        .timeout_read(Duration::from_secs(60))
        .try_proxy_from_env(true)
        .build();
    for dataset in datasets {
        let folder = root.join(&dataset.name);
        let (mut fetched, mut cached) = (0, 0);
        for file in &dataset.files {
            let dest = folder.join(&file.file);
            if dest.is_file() && sha256_of(&dest)? == file.sha256 {
                cached += 1;
                continue;
            }
            let url = match mirror {
                Some(base) => format!(
                    "{}/{}/{}",
                    base.trim_end_matches('/'),
                    dataset.name,
                    file.file
                ),
                None => file.upstream_url().with_context(|| {
                    format!(
                        "{}/{}: no single upstream file ({}); fetch it from a mirror with --mirror URL or {MIRROR_VAR}",
                        dataset.name, file.file, file.source
                    )
                })?,
            };
            download(&agent, &url, &dest, file.sha256.as_str(), file.bytes)?;
            fetched += 1;
        }
        println!(
            "{}: {} files in {} ({fetched} downloaded, {cached} already there, sha256 checked); license: {}",
            dataset.name,
            dataset.files.len(),
            folder.display(),
            terms(dataset)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Downloads `url` into `dest` through `dest.part`, resuming the part left by a broken
/// connection with a Range request, and keeps the file only when its sha256 is `sha256`.
fn download(agent: &ureq::Agent, url: &str, dest: &Path, sha256: &str, bytes: u64) -> Result<()> {
    let part = part_path(dest);
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut failures = 0;
    loop {
        let have = fs::metadata(&part).map_or(0, |m| m.len());
        match attempt(agent, url, &part, have, bytes) {
            Ok(()) => break,
            Err(Attempt::Fatal(error)) => {
                discard(&part);
                return Err(error);
            }
            Err(Attempt::Broken { error, progressed }) => {
                // A connection that never carried a byte of a new file is no network: say so at
                // once. One that broke mid-way is resumed, up to ATTEMPTS times in a row
                // without progress.
                failures = if progressed { 0 } else { failures + 1 };
                if failures >= ATTEMPTS || (have == 0 && !progressed) {
                    return Err(error.context(format!(
                        "downloading {url} (no network? behind a proxy, set HTTPS_PROXY, or fetch from a mirror with --mirror URL or {MIRROR_VAR}; what was received is resumed next time)"
                    )));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    let got = sha256_of(&part)?;
    if got != sha256 {
        discard(&part);
        bail!(
            "{url}: sha256 {got}, expected {sha256}: the download is not the catalogued file and was deleted"
        );
    }
    fs::rename(&part, dest).with_context(|| format!("moving the download to {}", dest.display()))
}

enum Attempt {
    /// The server answered what cannot be the file: give up and keep nothing.
    Fatal(anyhow::Error),
    /// The connection failed or broke: retry, resuming what was received.
    Broken {
        error: anyhow::Error,
        progressed: bool,
    },
}

/// One request for the rest of the file after the `have` bytes of `part`.
fn attempt(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    have: u64,
    bytes: u64,
) -> std::result::Result<(), Attempt> {
    let mut request = agent.get(url).set("Accept-Encoding", "identity");
    if have > 0 {
        request = request.set("Range", &format!("bytes={have}-"));
    }
    let response = match request.call() {
        Ok(response) => response,
        // A part as long as the file: the range is past its end.
        Err(ureq::Error::Status(416, _)) if have == bytes => return Ok(()),
        Err(ureq::Error::Status(code, response)) => {
            return Err(Attempt::Fatal(anyhow::anyhow!(
                "{url}: HTTP {code} {}",
                response.status_text()
            )))
        }
        Err(ureq::Error::Transport(error)) => {
            return Err(Attempt::Broken {
                error: anyhow::anyhow!("{error}"),
                progressed: false,
            })
        }
    };
    let resumed = have > 0 && response.status() == 206;
    let mut out = OpenOptions::new()
        .create(true)
        .append(resumed)
        .write(true)
        .truncate(!resumed)
        .open(part)
        .map_err(|e| Attempt::Fatal(anyhow::anyhow!("opening {}: {e}", part.display())))?;
    let mut written = if resumed { have } else { 0 };
    let mut reader = response.into_reader();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut progressed = false;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                return Err(Attempt::Broken {
                    error: anyhow::anyhow!(
                        "{url}: the connection broke after {written} bytes: {error}"
                    ),
                    progressed,
                })
            }
        };
        written += n as u64;
        if written > bytes {
            return Err(Attempt::Fatal(anyhow::anyhow!(
                "{url}: more than the catalogued {bytes} bytes: not the catalogued file, deleted"
            )));
        }
        out.write_all(&buffer[..n])
            .map_err(|e| Attempt::Fatal(anyhow::anyhow!("writing {}: {e}", part.display())))?;
        progressed = true;
    }
    if written < bytes {
        // The body ended early without an error (a server that closed the connection).
        return Err(Attempt::Broken {
            error: anyhow::anyhow!("{url}: the connection closed after {written} of {bytes} bytes"),
            progressed,
        });
    }
    Ok(())
}

fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

fn discard(part: &Path) {
    // Nothing to keep; a part that is already gone is fine.
    let _ = fs::remove_file(part);
}

/// The lowercase hex sha256 of a file.
fn sha256_of(path: &Path) -> Result<String> {
    let mut file = fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(hasher.finalize()))
}

fn verify(names: &[String], root: &Path) -> Result<ExitCode> {
    let datasets = if names.is_empty() {
        let present: Vec<&Dataset> = catalogue::datasets()
            .iter()
            .filter(|d| root.join(&d.name).is_dir())
            .collect();
        if present.is_empty() {
            bail!(
                "{}: holds no dataset of the catalogue (fetch them with `probity datasets fetch NAME`)",
                root.display()
            );
        }
        present
    } else {
        select(names)?
    };
    let mut problems = 0;
    for dataset in datasets {
        let mut bad = 0;
        for file in &dataset.files {
            let path = root.join(&dataset.name).join(&file.file);
            if !path.is_file() {
                println!("{}: missing", path.display());
                bad += 1;
                continue;
            }
            let got = sha256_of(&path)?;
            if got != file.sha256 {
                println!("{}: sha256 {got}, expected {}", path.display(), file.sha256);
                bad += 1;
            }
        }
        if bad == 0 {
            println!("{}: {} files verified", dataset.name, dataset.files.len());
        }
        problems += bad;
    }
    if problems > 0 {
        bail!(
            "{problems} files of {} are missing or differ from the catalogue (`probity datasets fetch NAME` replaces them)",
            root.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
