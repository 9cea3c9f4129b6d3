//! Chains of transforms: `persona-unfiltered+base64` applies the persona wrapper, then encodes
//! the wrapped prompt in base64. The variant's id is the case id followed by `/<chain>` and its
//! `transform` attribute is the whole chain, so that metrics pair it with the plain case and
//! report it per chain like any single transform.

use audit_core::{Case, Transform};

/// The separator between the steps of a chain in a suite file and in the `transform` attribute.
pub const SEPARATOR: char = '+';

/// The steps of a chain in the order they are applied; a single transform is a chain of one.
pub fn steps(chain: &str) -> impl DoubleEndedIterator<Item = &str> {
    chain.split(SEPARATOR)
}

/// Transforms applied in order, each to the previous one's variant.
pub struct Chain {
    id: String,
    steps: Vec<Box<dyn Transform>>,
}

impl Chain {
    /// The chain of `steps`, at least two, applied in order; its id joins theirs with `+`.
    pub fn new(steps: Vec<Box<dyn Transform>>) -> Chain {
        let id = steps
            .iter()
            .map(|s| s.id())
            .collect::<Vec<_>>()
            .join(&SEPARATOR.to_string());
        Chain { id, steps }
    }
}

impl Transform for Chain {
    fn id(&self) -> &str {
        &self.id
    }

    /// None when any step does not apply to the (intermediate) case.
    fn apply(&self, case: &Case) -> Option<Case> {
        let mut variant = case.clone();
        for step in &self.steps {
            variant = step.apply(&variant)?;
        }
        // Each step appended its own id to the case id and overwrote `transform`: the variant
        // is named after the original case and the whole chain instead.
        variant.id = format!("{}/{}", case.id, self.id);
        variant
            .attributes
            .insert("transform".to_string(), self.id.clone());
        Some(variant)
    }

    /// The encodings undone from the last step to the first (the last step's instruction is
    /// the one the model reads first, so its encoding is the outermost), every stage returned:
    /// a model that honours only the outer instruction is read at the first stage, one that
    /// honours all of them at the last. A step that decodes nothing is skipped.
    fn decode(&self, response: &str) -> Vec<String> {
        let mut stages = Vec::new();
        let mut text = response.to_string();
        for step in self.steps.iter().rev() {
            if let Some(decoded) = step.decode(&text).pop() {
                stages.push(decoded.clone());
                text = decoded;
            }
        }
        stages
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::encoding::{Encoded, Encoding};
    use crate::transforms::persona::{Persona, PersonaWrapper};
    use crate::transforms::priming::{Priming, Shots};
    use crate::transforms::test_support::{case, prompt};
    use audit_core::Query;
    use base64::Engine;

    fn chain(steps: Vec<Box<dyn Transform>>) -> Chain {
        Chain::new(steps)
    }

    #[test]
    fn steps_apply_in_order_and_the_chain_is_recorded() {
        let persona = PersonaWrapper(Persona::Unfiltered);
        let base64 = Encoded(Encoding::Base64);
        let c = chain(vec![Box::new(persona), Box::new(base64)]);
        assert_eq!(c.id(), "persona-unfiltered+base64");
        let variant = c.apply(&case("Do X.")).expect("valid in this test");
        assert_eq!(variant.id, "p/1/persona-unfiltered+base64");
        assert_eq!(variant.attributes["transform"], "persona-unfiltered+base64");
        // The persona's text is what was encoded: the last line of the prompt decodes to it.
        let wrapped = persona.apply(&case("Do X.")).expect("valid in this test");
        let encoded = prompt(&variant).lines().last().unwrap_or_default();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("valid in this test");
        assert_eq!(
            String::from_utf8(decoded).ok().as_deref(),
            Some(prompt(&wrapped))
        );

        // The other order wraps the encoded request in the persona.
        let c = chain(vec![Box::new(base64), Box::new(persona)]);
        let variant = c.apply(&case("Do X.")).expect("valid in this test");
        assert!(prompt(&variant).starts_with("Let's play a game."));
        assert!(
            prompt(&variant).contains("RG8gWC4="),
            "{}",
            prompt(&variant)
        );
        assert_eq!(variant.attributes["transform"], "base64+persona-unfiltered");
    }

    #[test]
    fn priming_keeps_its_history_under_an_encoding() {
        let c = chain(vec![
            Box::new(Priming(Shots::Few)),
            Box::new(Encoded(Encoding::Rot13)),
        ]);
        let variant = c.apply(&case("Do X.")).expect("valid in this test");
        let Query::Chat { history, .. } = &variant.query else {
            panic!("not a chat")
        };
        assert_eq!(history.len(), 6);
        assert!(prompt(&variant).ends_with("Qb K."));
    }
}
