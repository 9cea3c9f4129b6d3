//! The one seeded sampler of every probe family: `sample = N` (with `sample_seed`, default 0)
//! keeps N items, overall or per group, drawn from the suite file alone.
//!
//! Decision (issue 17): which items a probe asks depends only on the suite's `sample_seed` and
//! the items' ids, never on the run's `--seed` or on the model. So every model, seed and shard
//! of an audit is asked the same items and two runs can always be paired item by item; `--seed`
//! only drives generation sampling and resampling. (The safety families used to draw with the
//! run's seed; with the default seed 0 they draw the same items as before.)

use std::collections::BTreeMap;

use audit_core::case_seed;

/// Which items a probe keeps: all of them, or a seeded random subset of `sample` items.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sampling {
    /// How many items to keep (overall, or per group with [`Sampling::select_per`]); all when
    /// None.
    pub sample: Option<usize>,
    /// The suite's `sample_seed`.
    pub seed: u64,
}

impl Sampling {
    /// Keeps `sample` of `items` (all when `sample` is absent or not smaller): those whose id
    /// hashes lowest with the seed, returned in their original order. An item's draw depends
    /// only on its id and the seed, so a sample does not change when other rows do.
    pub fn select<T>(&self, items: Vec<T>, id: impl Fn(&T) -> String) -> Vec<T> {
        self.select_per(items, id, |_| ())
    }

    /// Keeps `sample` items of each group (items with the same `group` key), each group drawn
    /// as [`Sampling::select`] draws, returned in their original order.
    pub fn select_per<T, G: Ord>(
        &self,
        items: Vec<T>,
        id: impl Fn(&T) -> String,
        group: impl Fn(&T) -> G,
    ) -> Vec<T> {
        let Some(n) = self.sample else {
            return items;
        };
        let mut groups: BTreeMap<G, Vec<(u64, usize)>> = BTreeMap::new();
        for (index, item) in items.iter().enumerate() {
            groups
                .entry(group(item))
                .or_default()
                .push((case_seed(self.seed, &id(item)), index));
        }
        let mut keep: Vec<usize> = groups
            .into_values()
            .flat_map(|mut draws| {
                draws.sort_unstable();
                draws.into_iter().take(n).map(|(_, index)| index)
            })
            .collect();
        keep.sort_unstable();
        let mut keep = keep.into_iter().peekable();
        items
            .into_iter()
            .enumerate()
            .filter_map(|(index, item)| {
                (keep.peek() == Some(&index)).then(|| {
                    keep.next();
                    item
                })
            })
            .collect()
    }
}

/// The keys every sampled family takes in its suite-file table.
pub const KEYS: [&str; 2] = ["sample", "sample_seed"];

/// A family's suite-file parameters and its sampling: `sample` and `sample_seed` (see
/// [`KEYS`]) are read here, once for every family; every other key by the family's own struct
/// `T`, which denies unknown keys, so a misspelled key is still a one-line error. (serde's
/// `flatten` would share the keys too, but it silently accepts unknown ones.)
pub fn params<T: serde::de::DeserializeOwned>(
    table: &toml::Table,
) -> Result<(Sampling, T), String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Keys {
        #[serde(default)]
        sample: Option<usize>,
        #[serde(default)]
        sample_seed: u64,
    }
    let mut own = table.clone();
    let mut shared = toml::Table::new();
    for key in KEYS {
        if let Some(value) = own.remove(key) {
            shared.insert(key.to_string(), value);
        }
    }
    let keys: Keys = crate::registry::params(&shared)?;
    if keys.sample == Some(0) {
        return Err("`sample` must be at least 1".to_string());
    }
    let params = crate::registry::params(&own).map_err(|e| {
        if e.starts_with("unknown field") {
            format!("{e}, or `sample`, `sample_seed`")
        } else {
            e
        }
    })?;
    let sampling = Sampling {
        sample: keys.sample,
        seed: keys.sample_seed,
    };
    Ok((sampling, params))
}

impl Sampling {
    /// Keeps `sample` whole groups (the items sharing a `key`: a matched pair, a set of
    /// sentences), the groups drawn as [`Sampling::select`] draws ids, every item of a kept
    /// group returned in its original order.
    pub fn select_whole<T>(&self, items: Vec<T>, key: impl Fn(&T) -> String) -> Vec<T> {
        if self.sample.is_none() {
            return items;
        }
        let keys: std::collections::BTreeSet<String> = items.iter().map(&key).collect();
        let keep: std::collections::BTreeSet<String> = self
            .select(keys.into_iter().collect(), Clone::clone)
            .into_iter()
            .collect();
        items
            .into_iter()
            .filter(|item| keep.contains(&key(item)))
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pick(items: &[String], sample: usize, seed: u64) -> Vec<String> {
        Sampling {
            sample: Some(sample),
            seed,
        }
        .select(items.to_vec(), Clone::clone)
    }

    #[test]
    fn a_seeded_subset_in_order() {
        let items: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        assert_eq!(
            Sampling::default().select(items.clone(), Clone::clone),
            items
        );
        assert_eq!(pick(&items, 100, 0), items);
        assert_eq!(pick(&items, 500, 0), items);
        let a = pick(&items, 10, 0);
        assert_eq!(a.len(), 10);
        assert_eq!(a, pick(&items, 10, 0));
        assert_ne!(a, pick(&items, 10, 1));
        let positions: Vec<usize> = a.iter().map(|s| s.parse().unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn the_draw_is_the_lowest_hashes() {
        let items: Vec<String> = (0..50).map(|i| format!("item{i}")).collect();
        let mut by_hash = items.clone();
        by_hash.sort_by_key(|id| case_seed(3, id));
        let mut expected = by_hash[..7].to_vec();
        expected.sort_by_key(|id| items.iter().position(|i| i == id));
        assert_eq!(pick(&items, 7, 3), expected);
    }

    #[test]
    fn dropping_rows_that_were_not_drawn_changes_nothing() {
        let items: Vec<String> = (0..60).map(|i| i.to_string()).collect();
        let a = pick(&items, 5, 9);
        let fewer: Vec<String> = items
            .iter()
            .enumerate()
            .filter(|(k, id)| a.contains(id) || k % 2 == 0)
            .map(|(_, id)| id.clone())
            .collect();
        assert!(fewer.len() < items.len());
        assert_eq!(pick(&fewer, 5, 9), a);
    }

    #[test]
    fn whole_groups_are_kept_or_dropped_together() {
        let items: Vec<(String, u32)> = (0..30).map(|i| ((i / 3).to_string(), i)).collect();
        let s = Sampling {
            sample: Some(4),
            seed: 5,
        };
        let kept = s.select_whole(items.clone(), |i| i.0.clone());
        assert_eq!(kept.len(), 12);
        let keys: Vec<String> = (0..10).map(|k| k.to_string()).collect();
        let drawn = s.select(keys, Clone::clone);
        assert!(kept.iter().all(|i| drawn.contains(&i.0)));
        assert!(kept.windows(2).all(|w| w[0].1 < w[1].1));
        assert_eq!(
            Sampling::default().select_whole(items.clone(), |i| i.0.clone()),
            items
        );
    }

    #[test]
    fn per_group_sampling_keeps_n_of_each() {
        let items: Vec<(String, char)> = (0..20)
            .map(|i| (i.to_string(), if i % 2 == 0 { 'a' } else { 'b' }))
            .collect();
        let s = Sampling {
            sample: Some(3),
            seed: 1,
        };
        let kept = s.select_per(items.clone(), |i| i.0.clone(), |i| i.1);
        assert_eq!(kept.len(), 6);
        assert_eq!(kept.iter().filter(|i| i.1 == 'a').count(), 3);
        let evens: Vec<(String, char)> = items.iter().filter(|i| i.1 == 'a').cloned().collect();
        let alone = s.select(evens, |i| i.0.clone());
        let from_groups: Vec<(String, char)> = kept.into_iter().filter(|i| i.1 == 'a').collect();
        assert_eq!(alone, from_groups, "a group draws as if it were alone");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod params_tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Own {
        #[serde(default)]
        path: Option<String>,
    }

    fn parse(text: &str) -> Result<(super::Sampling, Own), String> {
        super::params(&toml::from_str(text).unwrap())
    }

    #[test]
    fn shared_and_own_keys_are_read() {
        let (sampling, own) = parse("path = 'x'\nsample = 3\nsample_seed = 2").unwrap();
        assert_eq!((sampling.sample, sampling.seed), (Some(3), 2));
        assert_eq!(own.path.as_deref(), Some("x"));
        let (sampling, _) = parse("").unwrap();
        assert_eq!(sampling, super::Sampling::default());
    }

    #[test]
    fn misspelled_and_mistyped_keys_are_one_line_errors() {
        let e = parse("path = 'x'\nsampel_seed = 2").unwrap_err();
        assert!(e.contains("unknown field `sampel_seed`"), "{e}");
        assert!(e.contains("`path`") && e.contains("`sample_seed`"), "{e}");
        assert!(!e.contains('\n'));
        let e = parse("sample = 'a'").unwrap_err();
        assert!(e.contains("invalid type"), "{e}");
        let e = parse("sample = 0").unwrap_err();
        assert_eq!(e, "`sample` must be at least 1");
    }
}
