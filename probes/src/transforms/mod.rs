//! Transforms (garak's "buffs"): each rewrites a Chat case into one attack variant whose id is
//! the case id followed by `/<transform id>` and whose attributes record `transform`, so that
//! metrics pair every variant with its plain case (`transform = "none"`, set by the run loop).
//! Suites name transforms through `crate::registry::TRANSFORMS`.
//!
//! Where an attack asks for an encoded answer (base64, ROT13, leetspeak), [`decoded_answer`]
//! gives the detectors the decoded text as well, keyed by the case's `transform` attribute.

pub mod encoding;
pub mod persona;
pub mod priming;
pub mod split;
pub mod suppression;

use audit_core::{Attempt, Case, Message, Query};

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

/// The answer decoded as the attack asked the model to encode it, when the case's transform
/// asked for an encoded answer and something decodes: detectors match this text as well as
/// the answer as written. Base64: every run of at least 12 base64 characters that decodes to
/// UTF-8 text, joined by spaces. ROT13 and leetspeak: the whole answer mapped back.
pub fn decoded_answer(attempt: &Attempt) -> Option<String> {
    let response = attempt.response()?;
    match attempt.attribute("transform") {
        encoding::BASE64 => encoding::decode_base64_spans(response),
        encoding::ROT13 => Some(encoding::rot13(response)),
        encoding::LEETSPEAK => Some(encoding::unleet(response)),
        _ => None,
    }
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
