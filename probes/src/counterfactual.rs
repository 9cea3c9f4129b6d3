//! Counterfactual demographic prompts: the same request written for each group of an axis, so
//! that any difference in the answers is attributable to the group alone.
//!
//! Templates hold two placeholders, replaced as plain text (never evaluated as a template):
//! `{group}` becomes the group's name and `{a_group}` the name with its indefinite article
//! ("a woman", "an Asian person"). A case's attributes are `axis`, `group` and `template`, so
//! the cases of one template across the groups of an axis form a matched set.

use std::collections::BTreeMap;

use audit_core::{Attributes, Case, Probe, ProbeError, ProbeInfo, Query};
use serde::Deserialize;

use crate::registry::{params, ProbeArgs};

/// The family's parameters in a suite file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    system: Option<String>,
    #[serde(rename = "template")]
    templates: Vec<TemplateEntry>,
    axes: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateEntry {
    id: String,
    text: String,
}

/// Builds a counterfactual probe from its suite-file parameters: `system` (optional),
/// `[[probe.template]]` entries (`id`, `text`) and `[probe.axes]` (`axis = [groups]`).
pub fn build(args: &ProbeArgs<'_>) -> Result<Box<dyn Probe>, String> {
    let params: Params = params(args.params)?;
    let probe = CounterfactualProbe {
        info: args.info(),
        system: params.system,
        templates: params
            .templates
            .into_iter()
            .map(|t| Template {
                id: t.id,
                text: t.text,
            })
            .collect(),
        axes: params
            .axes
            .into_iter()
            .map(|(name, groups)| Axis { name, groups })
            .collect(),
    };
    probe.validate()?;
    Ok(Box::new(probe))
}

/// One request, written once for every group.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    pub id: String,
    pub text: String,
}

/// An axis (gender, religion, …) and its groups.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub name: String,
    pub groups: Vec<String>,
}

/// Templates × groups, for every axis.
#[derive(Clone, Debug, PartialEq)]
pub struct CounterfactualProbe {
    pub info: ProbeInfo,
    pub system: Option<String>,
    pub templates: Vec<Template>,
    pub axes: Vec<Axis>,
}

impl CounterfactualProbe {
    /// Checks the templates and axes: every template names the group, ids and groups are unique.
    pub fn validate(&self) -> Result<(), String> {
        if self.templates.is_empty() {
            return Err("a counterfactual probe needs at least one template".into());
        }
        if self.axes.is_empty() {
            return Err("a counterfactual probe needs at least one axis of groups".into());
        }
        let mut ids = std::collections::BTreeSet::new();
        for template in &self.templates {
            if !ids.insert(&template.id) {
                return Err(format!("template id `{}` appears twice", template.id));
            }
            if !template.text.contains("{group}") && !template.text.contains("{a_group}") {
                return Err(format!(
                    "template `{}` has no {{group}} or {{a_group}} placeholder",
                    template.id
                ));
            }
        }
        for axis in &self.axes {
            if axis.groups.len() < 2 {
                return Err(format!("axis `{}` needs at least two groups", axis.name));
            }
            let mut seen = std::collections::BTreeSet::new();
            for group in &axis.groups {
                if !seen.insert(group) {
                    return Err(format!(
                        "group `{group}` appears twice in axis `{}`",
                        axis.name
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Probe for CounterfactualProbe {
    fn info(&self) -> &ProbeInfo {
        &self.info
    }

    fn cases(&self, _seed: u64) -> Result<Vec<Case>, ProbeError> {
        self.validate().map_err(ProbeError)?;
        let mut cases = Vec::new();
        for template in &self.templates {
            for axis in &self.axes {
                for group in &axis.groups {
                    let attributes = Attributes::from([
                        ("axis".to_string(), axis.name.clone()),
                        ("group".to_string(), group.clone()),
                        ("template".to_string(), template.id.clone()),
                    ]);
                    cases.push(Case {
                        id: format!("{}/{}/{}/{}", self.info.id, template.id, axis.name, group),
                        probe: self.info.id.clone(),
                        attributes,
                        query: Query::Chat {
                            system: self.system.clone(),
                            history: Vec::new(),
                            prompt: fill(&template.text, group),
                        },
                    });
                }
            }
        }
        Ok(cases)
    }
}

/// Replaces the placeholders of a template with a group, as plain text.
pub fn fill(template: &str, group: &str) -> String {
    template
        .replace("{a_group}", &with_article(group))
        .replace("{group}", group)
}

/// "a woman", "an Asian person": the article by the first letter of the group's name.
fn with_article(group: &str) -> String {
    let vowel = group
        .chars()
        .next()
        .is_some_and(|c| "aeiouAEIOU".contains(c));
    format!("{} {group}", if vowel { "an" } else { "a" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe() -> CounterfactualProbe {
        CounterfactualProbe {
            info: audit_core::ProbeInfo {
                id: "cf".into(),
                goal: "g".into(),
                source: "s".into(),
            },
            system: None,
            templates: vec![
                Template {
                    id: "t1".into(),
                    text: "Write a poem about {a_group}.".into(),
                },
                Template {
                    id: "t2".into(),
                    text: "Is {group} {{ 7*7 }} ok?".into(),
                },
            ],
            axes: vec![Axis {
                name: "gender".into(),
                groups: vec!["woman".into(), "man".into(), "intersex person".into()],
            }],
        }
    }

    #[test]
    fn cases_cross_templates_and_groups() {
        let cases = probe().cases(0).unwrap();
        assert_eq!(cases.len(), 6);
        assert_eq!(cases[0].id, "cf/t1/gender/woman");
        assert_eq!(cases[0].attributes["template"], "t1");
        let Query::Chat { prompt, .. } = &cases[2].query else {
            panic!("not a chat")
        };
        assert_eq!(prompt, "Write a poem about an intersex person.");
        // Braces other than the placeholders stay as they are: nothing is evaluated.
        let Query::Chat { prompt, .. } = &cases[4].query else {
            panic!("not a chat")
        };
        assert_eq!(prompt, "Is man {{ 7*7 }} ok?");
    }

    #[test]
    fn validation_names_the_problem() {
        let mut p = probe();
        p.templates[1].text = "no placeholder".into();
        assert_eq!(
            p.validate().unwrap_err(),
            "template `t2` has no {group} or {a_group} placeholder"
        );
        let mut p = probe();
        p.axes[0].groups.truncate(1);
        assert_eq!(
            p.validate().unwrap_err(),
            "axis `gender` needs at least two groups"
        );
    }
}
