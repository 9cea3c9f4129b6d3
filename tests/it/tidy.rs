//! Tidy: the rules of ARCHITECTURE.md and the house style, checked on the source tree the way
//! rust-analyzer's tidy test does: crate dependencies point one way, every file opens with a
//! `//!` line, no `path` attributes on modules, no environment reads in library crates, no
//! significance or flag thresholds written by hand.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file of the workspace (build outputs excluded).
fn rust_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if name != "target" && name != ".git" && name != "dist" {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    for dir in [
        "src",
        "tests",
        "examples",
        "audit-core",
        "probes",
        "suites",
        "runners",
        "reports",
        "fixtures",
    ] {
        walk(&root().join(dir), &mut files);
    }
    files.sort();
    assert!(
        files.len() > 100,
        "the walk found only {} files",
        files.len()
    );
    files
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn shown(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn every_file_opens_with_a_doc_line() {
    let bad: Vec<String> = rust_files()
        .iter()
        .filter(|p| !text(p).starts_with("//!"))
        .map(|p| shown(p))
        .collect();
    assert!(
        bad.is_empty(),
        "files without a leading `//!` line: {bad:?}"
    );
}

#[test]
fn no_path_attributes() {
    let needle = concat!("#[", "path");
    let bad: Vec<String> = rust_files()
        .iter()
        .filter(|p| text(p).contains(needle))
        .map(|p| shown(p))
        .collect();
    assert!(bad.is_empty(), "`{needle}` module tricks in {bad:?}");
}

/// The production code of the library crates (before any `#[cfg(test)]` module).
fn library_code() -> Vec<(PathBuf, String)> {
    rust_files()
        .into_iter()
        .filter(|p| {
            let s = shown(p);
            [
                "audit-core/src",
                "probes/src",
                "suites/src",
                "runners/src",
                "reports/src",
            ]
            .iter()
            .any(|c| s.starts_with(c))
        })
        .map(|p| {
            let t = text(&p);
            let code = t.split("#[cfg(test)]").next().unwrap_or("").to_string();
            (p, code)
        })
        .collect()
}

#[test]
fn library_crates_read_no_environment() {
    let needles = [concat!("env::", "var"), concat!("env::", "var_os")];
    let bad: Vec<String> = library_code()
        .iter()
        .filter(|(_, code)| needles.iter().any(|n| code.contains(n)))
        .map(|(p, _)| shown(p))
        .collect();
    assert!(
        bad.is_empty(),
        "library code reads the environment (take it from the caller, as probes::Context does): {bad:?}"
    );
}

#[test]
fn thresholds_are_named_not_written() {
    let needles = [
        concat!("q_bh < ", "0.05"),
        concat!(">= ", "0.5)"),
        concat!("lit(", "0.5)"),
    ];
    let bad: Vec<String> = library_code()
        .iter()
        .filter(|(p, _)| !shown(p).starts_with("probes/src/bias/bold.rs"))
        .filter(|(_, code)| needles.iter().any(|n| code.contains(n)))
        .map(|(p, _)| shown(p))
        .collect();
    assert!(
        bad.is_empty(),
        "use audit_core::summary::FDR_LEVEL / Test::is_significant and audit_core::attempt::FLAGGED / flags: {bad:?}"
    );
}

/// The `[dependencies]` of a crate that are workspace crates.
fn workspace_dependencies(krate: &str) -> Vec<String> {
    let manifest: toml::Table = text(&root().join(krate).join("Cargo.toml"))
        .parse()
        .unwrap_or_else(|e| panic!("{krate}/Cargo.toml: {e}"));
    let members = [
        "audit-core",
        "probes",
        "suites",
        "runners",
        "reports",
        "fixtures",
    ];
    manifest
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|d| {
            d.keys()
                .filter(|k| members.contains(&k.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn crate_dependencies_point_one_way() {
    // ARCHITECTURE.md: audit-core at the bottom; probes and suites never see runners, runners
    // never see probes; reports render the run directory; fixtures is for tests only.
    let allowed: &[(&str, &[&str])] = &[
        ("audit-core", &[]),
        ("probes", &["audit-core"]),
        ("suites", &["audit-core", "probes"]),
        ("runners", &["audit-core"]),
        ("reports", &["audit-core"]),
        ("fixtures", &["audit-core"]),
    ];
    for (krate, may) in allowed {
        for dependency in workspace_dependencies(krate) {
            assert!(
                may.contains(&dependency.as_str()),
                "{krate} depends on {dependency}: ARCHITECTURE.md allows only {may:?}"
            );
        }
    }
    assert!(
        !workspace_dependencies(".").contains(&"fixtures".to_string()),
        "the probity binary depends on fixtures"
    );
}

/// A `major.minor[.patch]` version as numbers, for comparison (`1.88` is `1.88.0`).
fn version(text: &str) -> [u64; 3] {
    let mut parts = text.split('.').map(|part| part.parse().unwrap_or(0));
    [(); 3].map(|()| parts.next().unwrap_or(0))
}

#[test]
fn the_stated_msrv_covers_every_locked_dependency() {
    // The workspace's `rust-version` is the MSRV .ci/run builds with (`cargo +MSRV check`); it
    // must be at least every locked dependency's own `rust-version`, or the claim is false.
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    let ours = packages
        .iter()
        .find(|p| p["name"] == "probity")
        .and_then(|p| p["rust_version"].as_str())
        .expect("probity states a rust-version");
    let too_new: Vec<String> = packages
        .iter()
        .filter_map(|p| {
            let theirs = p["rust_version"].as_str()?;
            (version(theirs) > version(ours)).then(|| {
                format!(
                    "{} {} needs {theirs}",
                    p["name"].as_str().unwrap_or("?"),
                    p["version"].as_str().unwrap_or("?")
                )
            })
        })
        .collect();
    assert!(
        too_new.is_empty(),
        "rust-version = {ours} in Cargo.toml, but {}",
        too_new.join("; ")
    );
}

#[test]
fn audit_core_documents_every_public_item() {
    // audit-core is the API every other crate speaks: the lint keeps its public items
    // documented (clippy runs with -D warnings in .ci/run).
    let lib = text(&root().join("audit-core/src/lib.rs"));
    assert!(
        lib.lines()
            .any(|line| line.trim() == "#![warn(missing_docs)]"),
        "audit-core/src/lib.rs lost #![warn(missing_docs)]"
    );
}
