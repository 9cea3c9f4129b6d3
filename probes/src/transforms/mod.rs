//! Transforms (garak's "buffs"): each rewrites a Chat case into one attack variant whose id is
//! the case id followed by `/<transform id>` and whose attributes record `transform`, so that
//! metrics pair every variant with its plain case (`transform = "none"`, set by the run loop).
//! Suites name transforms through `crate::registry::TRANSFORMS`, and chains of them
//! (`persona-unfiltered+base64`, [`chain`]) through `crate::registry::transform_chain`.
//!
//! Where an attack asks for an encoded answer (base64, ROT13, leetspeak), the transform decodes
//! it (`Transform::decode`, every stage of a chain), once per answer in the run loop, and every
//! detector reads the decoded text as well through `Attempt::readings`.

pub mod chain;
pub mod encoding;
pub mod persona;
pub mod priming;
pub mod split;
pub mod suppression;

use audit_core::{Case, Message, Query};

/// The variant of a Chat case made by `rewrite` (system, history, prompt → the new ones), with
/// the transform recorded; None for other query kinds.
pub(crate) fn chat_variant(
    case: &Case,
    transform: &str,
    rewrite: impl FnOnce(&Option<String>, &[Message], &str) -> (Option<String>, Vec<Message>, String),
) -> Option<Case> {
    let Query::Chat {
        system,
        history,
        prompt,
    } = &case.query
    else {
        return None;
    };
    let (system, history, prompt) = rewrite(system, history, prompt);
    let mut attributes = case.attributes.clone();
    attributes.insert("transform".to_string(), transform.to_string());
    Some(Case {
        id: format!("{}/{transform}", case.id),
        probe: case.probe.clone(),
        attributes,
        query: Query::Chat {
            system,
            history,
            prompt,
        },
    })
}

/// A transform that only rewrites the prompt.
pub(crate) fn prompt_variant(
    case: &Case,
    transform: &str,
    rewrite: impl FnOnce(&str) -> String,
) -> Option<Case> {
    chat_variant(case, transform, |system, history, prompt| {
        (system.clone(), history.to_vec(), rewrite(prompt))
    })
}

#[cfg(test)]
pub(crate) mod test_support {
    use audit_core::{Attributes, Case, Query};

    /// A plain Chat case with one attribute.
    pub fn case(prompt: &str) -> Case {
        Case {
            id: "p/1".into(),
            probe: "p".into(),
            attributes: Attributes::from([("transform".to_string(), "none".to_string())]),
            query: Query::Chat {
                system: None,
                history: Vec::new(),
                prompt: prompt.into(),
            },
        }
    }

    /// The prompt of a Chat case.
    pub fn prompt(case: &Case) -> &str {
        match &case.query {
            Query::Chat { prompt, .. } => prompt,
            _ => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use audit_core::{Answer, Attempt};
    use base64::Engine;

    /// The answer as the run loop reads it: the response, and the transform's decoding.
    fn attempt(transform: &str, response: &str) -> Attempt {
        let mut case = test_support::case("Do X.");
        case.attributes
            .insert("transform".to_string(), transform.to_string());
        let mut attempt = Attempt::new("s", &case, Answer::Response(response.into()));
        attempt.decoded = decoded_answers(&attempt);
        attempt
    }

    fn decoded_answers(attempt: &Attempt) -> Vec<String> {
        match attempt.attribute("transform") {
            "none" => Vec::new(),
            chain => crate::registry::transform_chain(chain)
                .expect("a known chain in this test")
                .decode(attempt.response().unwrap_or_default()),
        }
    }

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn plain_and_unencoded_answers_are_not_decoded() {
        assert!(decoded_answers(&attempt("none", "I cannot.")).is_empty());
        assert!(decoded_answers(&attempt("persona-unfiltered", "I cannot.")).is_empty());
        assert!(decoded_answers(&attempt("char-spacing", "I cannot.")).is_empty());
    }

    #[test]
    fn an_encoding_inside_a_chain_is_decoded() {
        let refusal = "I cannot help with that.";
        for chain in [
            "base64",
            "persona-unfiltered+base64",
            "base64+persona-unfiltered",
        ] {
            let a = attempt(chain, &format!("Sure: {}", b64(refusal)));
            assert_eq!(decoded_answers(&a), vec![refusal.to_string()], "{chain}");
        }
        let a = attempt("refusal-suppression+rot13", &encoding::rot13(refusal));
        assert_eq!(decoded_answers(&a), vec![refusal.to_string()]);
    }

    #[test]
    fn two_encodings_are_undone_from_the_last_step() {
        // rot13+base64: the model reads the base64 instruction first, decodes it, finds the ROT13
        // one; an answer honouring both is base64 of ROT13.
        let refusal = "I cannot help with that.";
        let both = attempt("rot13+base64", &b64(&encoding::rot13(refusal)));
        let stages = decoded_answers(&both);
        assert_eq!(stages.last(), Some(&refusal.to_string()));
        // Honouring only the ROT13 instruction: the base64 step finds nothing and is skipped.
        let inner = attempt("rot13+base64", &encoding::rot13(refusal));
        assert_eq!(decoded_answers(&inner), vec![refusal.to_string()]);
        // Honouring only the outer base64: the first stage is the answer.
        let outer = attempt("rot13+base64", &b64(refusal));
        assert_eq!(decoded_answers(&outer)[0], refusal);
    }

    #[test]
    fn the_refusal_detector_reads_a_chained_encoded_refusal() {
        use audit_core::Detector;
        let refusal = "I cannot help with that.";
        let a = attempt("persona-unfiltered+base64", &b64(refusal));
        let score = crate::detectors::refusal::RefusalDetector
            .score(&a)
            .expect("valid in this test");
        assert_eq!(score.value, 1.0);
    }
}
