//! The registries: every probe family, detector, metric kind and transform that a suite file
//! can name, as plain lists in code (no string lookup of code at run time beyond these lists).
//! A conformance test walks every entry.

use std::path::Path;

use audit_core::{Detector, Metric, Probe, Transform};

use crate::{counterfactual, detectors, metrics};

/// What a suite file gives to build one probe.
#[derive(Clone, Copy, Debug)]
pub struct ProbeArgs<'a> {
    pub id: &'a str,
    pub goal: &'a str,
    pub source: &'a str,
    /// The family's own parameters: every key of the `[[probe]]` table that is not common to
    /// all families.
    pub params: &'a toml::Table,
    /// Where relative dataset paths are resolved (`--datasets`).
    pub datasets: &'a Path,
}

/// A family of probes.
pub struct Family {
    pub name: &'static str,
    pub about: &'static str,
    pub build: fn(&ProbeArgs<'_>) -> Result<Box<dyn Probe>, String>,
}

/// A kind of metric; its parameters are the keys of its `[[probe.metric]]` table.
pub struct MetricKind {
    pub name: &'static str,
    pub about: &'static str,
    pub build: fn(&toml::Table) -> Result<Box<dyn Metric>, String>,
}

/// A detector without parameters.
pub struct DetectorKind {
    pub id: &'static str,
    pub about: &'static str,
    pub build: fn() -> Box<dyn Detector>,
}

/// A transform without parameters.
pub struct TransformKind {
    pub id: &'static str,
    pub about: &'static str,
    pub build: fn() -> Box<dyn Transform>,
}

pub const FAMILIES: &[Family] = &[Family {
    name: "counterfactual",
    about: "templates × groups of demographic axes; chat prompts that differ only in the group",
    build: counterfactual::build,
}];

pub const METRICS: &[MetricKind] = &[
    MetricKind {
        name: metrics::rate::KIND,
        about: "share of attempts a binary detector flags, overall and per group, with Wilson intervals",
        build: metrics::rate::build,
    },
    MetricKind {
        name: metrics::paired_gap::KIND,
        about: "difference of a binary detector's rate between two groups on matched cases, exact McNemar test, Newcombe paired interval",
        build: metrics::paired_gap::build,
    },
];

pub const DETECTORS: &[DetectorKind] = &[DetectorKind {
    id: detectors::refusal::ID,
    about: "1 when the answer opens with a refusal phrase (Probity's list, documented matching), else 0",
    build: || Box::new(detectors::refusal::RefusalDetector),
}];

pub const TRANSFORMS: &[TransformKind] = &[];

pub fn family(name: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.name == name)
}

pub fn metric(name: &str) -> Option<&'static MetricKind> {
    METRICS.iter().find(|m| m.name == name)
}

pub fn detector(id: &str) -> Option<&'static DetectorKind> {
    DETECTORS.iter().find(|d| d.id == id)
}

pub fn transform(id: &str) -> Option<&'static TransformKind> {
    TRANSFORMS.iter().find(|t| t.id == id)
}

/// Deserializes a parameter table into a family's or metric's own struct, with serde's
/// message (`unknown field`, `missing field`, `invalid type`) on one line.
pub fn params<T: serde::de::DeserializeOwned>(table: &toml::Table) -> Result<T, String> {
    toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| e.message().trim().replace('\n', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_unique_and_described() {
        let mut names: Vec<&str> = FAMILIES.iter().map(|f| f.name).collect();
        names.extend(METRICS.iter().map(|m| m.name));
        names.extend(DETECTORS.iter().map(|d| d.id));
        names.extend(TRANSFORMS.iter().map(|t| t.id));
        let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "a name is registered twice: {names:?}"
        );
        for about in FAMILIES
            .iter()
            .map(|f| f.about)
            .chain(METRICS.iter().map(|m| m.about))
            .chain(DETECTORS.iter().map(|d| d.about))
            .chain(TRANSFORMS.iter().map(|t| t.about))
        {
            assert!(!about.is_empty());
        }
        for kind in DETECTORS {
            assert_eq!((kind.build)().id(), kind.id);
        }
        for kind in TRANSFORMS {
            assert_eq!((kind.build)().id(), kind.id);
        }
    }
}
