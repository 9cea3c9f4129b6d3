//! Where a judge's model comes from (`--judge ID=MODEL`, `--judge-option ID.KEY=VALUE`): a model
//! file or folder (candle, or the toxicity classifier), `scripted:PROFILE.toml`, or a served
//! model `openai:NAME@URL` on any OpenAI-compatible endpoint, with its own API-key variable,
//! concurrency, limits and response cache (the `runners::openai` backend, as for `--backend
//! openai`). The judges' identities go into the manifest, so `--resume` refuses another judge.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The model a judge asks.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum JudgeModel {
    Scripted(PathBuf),
    /// `openai:NAME@URL`.
    Served {
        model_name: String,
        base_url: String,
    },
    /// A GGUF file, an HF folder or a classifier folder.
    File(PathBuf),
}

/// `ID=MODEL` of `--judge`.
pub(crate) fn parse_spec(spec: &str) -> Result<(String, JudgeModel)> {
    let Some((id, model)) = spec.split_once('=') else {
        bail!("--judge {spec}: expected JUDGE=MODEL, e.g. toxicity=models/toxic-comment-classifier-bilstm or llama-guard-3=openai:meta-llama/Llama-Guard-3-8B@http://127.0.0.1:8000/v1");
    };
    let model = if let Some(profile) = model.strip_prefix("scripted:") {
        JudgeModel::Scripted(PathBuf::from(profile))
    } else if let Some(served) = model.strip_prefix("openai:") {
        // The URL is after the last `@http://` or `@https://` (a URL's user info may hold `@`,
        // a model name rarely does).
        let at = ["@http://", "@https://"]
            .iter()
            .filter_map(|p| served.rfind(p))
            .max();
        let Some(at) = at.filter(|&at| at > 0) else {
            bail!(
                "--judge {}: expected {id}=openai:MODEL_NAME@URL, e.g. openai:meta-llama/Llama-Guard-3-8B@http://127.0.0.1:8000/v1",
                audit_core::redact::url_userinfo(spec)
            );
        };
        JudgeModel::Served {
            model_name: served[..at].to_string(),
            base_url: served[at + 1..].to_string(),
        }
    } else {
        JudgeModel::File(PathBuf::from(model))
    };
    Ok((id.to_string(), model))
}

/// The keys `--judge-option` knows, for served judges.
pub(crate) const OPTION_KEYS: &[&str] = &[
    "api-key-env",
    "concurrency",
    "cache",
    "timeout",
    "max-retries",
    "requests-per-minute",
    "tokens-per-minute",
    "logprob-prefix",
    "logprob-alignment",
    "extra-body",
    "generate",
];

/// `--judge-option ID.KEY=VALUE`, by judge id: each key once.
pub(crate) fn parse_options(
    specs: &[String],
) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    let mut options: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for spec in specs {
        let parsed = spec
            .split_once('=')
            .and_then(|(key, value)| Some((key.split_once('.')?, value)));
        let Some(((id, key), value)) = parsed else {
            bail!(
                "--judge-option {spec}: expected JUDGE.KEY=VALUE, e.g. llama-guard-3.concurrency=8"
            );
        };
        if !OPTION_KEYS.contains(&key) {
            bail!(
                "--judge-option {spec}: unknown key `{key}` (known: {})",
                OPTION_KEYS.join(", ")
            );
        }
        if options
            .entry(id.to_string())
            .or_default()
            .insert(key.to_string(), value.to_string())
            .is_some()
        {
            bail!("--judge-option {id}.{key}: given twice");
        }
    }
    Ok(options)
}

/// The `runners::openai` settings of a served judge: the same defaults as `--backend openai`
/// (4 requests in flight, 120 s timeout, 5 retries, the default response cache, prompt log-probs
/// checked), changed by its `--judge-option`s. `cache=off` sends every request; `generate=N`
/// makes a server without prompt log-probs generate up to N tokens after the judge's prompt,
/// which the judge's parser reads (an unreadable reply is a judge error with the raw text).
pub(crate) fn served_options(
    id: &str,
    model_name: &str,
    base_url: &str,
    options: &BTreeMap<String, String>,
    default_cache: PathBuf,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<runners::openai::OpenAiOptions> {
    let number = |key: &str| -> Result<Option<u64>> {
        options
            .get(key)
            .map(|v| {
                v.parse::<u64>().with_context(|| {
                    format!("--judge-option {id}.{key}={v}: expected a whole number")
                })
            })
            .transpose()
    };
    let mut served = runners::openai::OpenAiOptions {
        base_url: base_url.to_string(),
        model_name: model_name.to_string(),
        cache: Some(default_cache),
        ..runners::openai::OpenAiOptions::default()
    };
    if let Some(variable) = options.get("api-key-env") {
        if base_url.starts_with("http://") {
            eprintln!(
                "warning: --judge-option {id}.api-key-env sends the key over plain http:// to {}: use https://",
                audit_core::redact::url_userinfo(base_url)
            );
        }
        served.api_key = Some(runners::openai::ApiKey::new(variable, env(variable)));
    }
    if let Some(n) = number("concurrency")? {
        if !(1..=1024).contains(&n) {
            bail!("--judge-option {id}.concurrency={n}: expected 1 to 1024");
        }
        served.concurrency = n as usize;
    }
    match options.get("cache").map(String::as_str) {
        Some("off") => served.cache = None,
        Some(dir) => served.cache = Some(PathBuf::from(dir)),
        None => {}
    }
    if let Some(seconds) = number("timeout")? {
        if !(1..=86_400).contains(&seconds) {
            bail!("--judge-option {id}.timeout={seconds}: expected 1 to 86400 seconds");
        }
        served.timeout = std::time::Duration::from_secs(seconds);
    }
    if let Some(n) = number("max-retries")? {
        served.max_retries = u32::try_from(n)
            .ok()
            .filter(|&n| n <= 100)
            .with_context(|| format!("--judge-option {id}.max-retries={n}: expected 0 to 100"))?;
    }
    for (key, slot) in [
        ("requests-per-minute", &mut served.requests_per_minute),
        ("tokens-per-minute", &mut served.tokens_per_minute),
    ] {
        if let Some(n) = number(key)? {
            *slot = Some(
                u32::try_from(n)
                    .with_context(|| format!("--judge-option {id}.{key}={n}: too large"))?,
            );
        }
    }
    if let Some(prefix) = options.get("logprob-prefix") {
        served.logprob_prefix = prefix.clone();
    }
    if let Some(alignment) = options.get("logprob-alignment") {
        served.logprob_alignment = alignment
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--judge-option {id}.logprob-alignment{e}"))?;
    }
    if let Some(n) = number("generate")? {
        if !(1..=4096).contains(&n) {
            bail!("--judge-option {id}.generate={n}: expected 1 to 4096 tokens");
        }
        served.choice_by_generation = Some(n as u32);
    }
    if let Some(text) = options.get("extra-body") {
        served.extra_body = match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(fields)) => fields,
            _ => bail!("--judge-option {id}.extra-body={text}: expected a JSON object"),
        };
    }
    Ok(served)
}

/// A judge's record in the manifest's model details: `judge:ID` names its backend, model and
/// where it runs (a served judge's endpoint); a served judge, which has no files to hash, adds
/// the settings that shape its answers (`judge:ID:KEY`).
pub(crate) fn identity(id: &str, info: &audit_core::ModelInfo) -> Vec<(String, String)> {
    let mut entries = vec![(
        format!("judge:{id}"),
        format!(
            "{} {} on {} ({})",
            info.backend, info.model, info.device, info.dtype
        ),
    )];
    if info.files.is_empty() {
        entries.extend(
            info.details
                .iter()
                .map(|(key, value)| (format!("judge:{id}:{key}"), value.clone())),
        );
    }
    entries
}

/// A judge model path for error messages.
pub(crate) fn describe(model: &JudgeModel) -> String {
    match model {
        JudgeModel::Scripted(p) => format!("scripted:{}", p.display()),
        JudgeModel::Served {
            model_name,
            base_url,
        } => format!(
            "openai:{model_name}@{}",
            audit_core::redact::url_userinfo(base_url)
        ),
        JudgeModel::File(p) => Path::new(p).display().to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_files_profiles_and_served_models() {
        assert_eq!(
            parse_spec("llama-guard-3=openai:meta-llama/Llama-Guard-3-8B@http://h:8000/v1")
                .unwrap(),
            (
                "llama-guard-3".to_string(),
                JudgeModel::Served {
                    model_name: "meta-llama/Llama-Guard-3-8B".to_string(),
                    base_url: "http://h:8000/v1".to_string()
                }
            )
        );
        let (_, m) = parse_spec("x=openai:org/m@v2@https://u:p@host/v1").unwrap();
        assert_eq!(
            m,
            JudgeModel::Served {
                model_name: "org/m@v2".to_string(),
                base_url: "https://u:p@host/v1".to_string()
            }
        );
        assert_eq!(
            parse_spec("harm-judge=scripted:a.toml").unwrap().1,
            JudgeModel::Scripted("a.toml".into())
        );
        assert_eq!(
            parse_spec("toxicity=dir").unwrap().1,
            JudgeModel::File("dir".into())
        );
        assert!(parse_spec("x=openai:model-without-url").is_err());
        assert!(parse_spec("x=openai:@http://h/v1").is_err());
        assert!(parse_spec("nothing").is_err());
    }

    #[test]
    fn options_are_checked() {
        let o = parse_options(&["j.concurrency=8".into(), "j.cache=off".into()]).unwrap();
        let served =
            served_options("j", "m", "http://h/v1", &o["j"], "c".into(), &|_| None).unwrap();
        assert_eq!((served.concurrency, served.cache), (8, None));
        assert!(parse_options(&["j.colour=red".into()]).is_err());
        assert!(parse_options(&["j.cache=a".into(), "j.cache=b".into()]).is_err());
        assert!(parse_options(&["nodot=1".into()]).is_err());
        let bad = parse_options(&["j.concurrency=0".into()]).unwrap();
        assert!(served_options("j", "m", "http://h/v1", &bad["j"], "c".into(), &|_| None).is_err());
        let key = parse_options(&["j.api-key-env=K".into()]).unwrap();
        let served = served_options("j", "m", "https://h/v1", &key["j"], "c".into(), &|v| {
            (v == "K").then(|| "secret".to_string())
        })
        .unwrap();
        assert_eq!(format!("{:?}", served.api_key), "Some(ApiKey($K))");
    }
}
