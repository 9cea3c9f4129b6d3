//! Parsing the server's JSON replies: the echoed prompt's log-probabilities of a `/completions`
//! answer, and the judgement of the alignment probe.

use serde_json::Value;

/// How many echoed entries belong to the prompt: the server generates at least one token
/// (`max_tokens: 1`, as lm-evaluation-harness asks; llama-cpp-python reads 0 as "no limit") and
/// echoes it after the prompt, and `usage.completion_tokens` says how many it generated.
fn prompt_entries(value: &Value) -> Result<usize, String> {
    let logprobs = &value["choices"][0]["logprobs"];
    let n_echoed = logprobs["tokens"]
        .as_array()
        .or_else(|| logprobs["token_logprobs"].as_array())
        .map_or(0, Vec::len);
    let Some(generated) = value["usage"]["completion_tokens"].as_u64() else {
        return Err("the server's reply has no usage.completion_tokens, so the echoed prompt cannot be told from the generated token".to_string());
    };
    usize::try_from(generated)
        .ok()
        .and_then(|g| n_echoed.checked_sub(g))
        .filter(|&n| n > 0)
        .ok_or_else(|| "the server echoed no prompt tokens".to_string())
}

/// Where the echoed prompt ends, in `text_offset` units (characters): its last token's offset
/// plus its length. Counting from the end makes the boundary independent of whether the
/// server's offsets include a prefix it strips (llama-cpp-python drops a leading BOS token from
/// the echo and counts offsets after it).
fn echo_end(logprobs: &Value, n_prompt: usize) -> Option<u64> {
    let last = n_prompt.checked_sub(1)?;
    let last_offset = logprobs["text_offset"].as_array()?.get(last)?.as_u64()?;
    let last_token = logprobs["tokens"].as_array()?.get(last)?.as_str()?;
    Some(last_offset + last_token.chars().count() as u64)
}

/// The summed log-probability of the echoed prompt tokens that make up its last `tail_chars`
/// characters (the option, with the context's trailing whitespace, which lm-evaluation-harness
/// moves to the option). `text_offset` counts characters on OpenAI, vLLM and llama-cpp-python.
/// Tokens without a log-probability (the first token of the prompt, which nothing conditions)
/// are left out, which is why an empty context scores the sentence without its first token on
/// servers (the candle backend conditions it on BOS).
pub fn prompt_logprob(value: &Value, tail_chars: usize) -> Result<f64, String> {
    prompt_logprob_counted(value, tail_chars).map(|(total, _)| total)
}

/// `prompt_logprob` and the number of tokens it summed.
pub fn prompt_logprob_counted(value: &Value, tail_chars: usize) -> Result<(f64, u32), String> {
    let logprobs = &value["choices"][0]["logprobs"];
    let (Some(values), Some(offsets)) = (
        logprobs["token_logprobs"].as_array(),
        logprobs["text_offset"].as_array(),
    ) else {
        return Err(
            "the server returned no prompt log-probabilities (echo + logprobs unsupported): Choice queries cannot be scored on it"
                .to_string(),
        );
    };
    if values.len() != offsets.len() || values.is_empty() {
        return Err("the server's log-probabilities and offsets do not line up".to_string());
    }
    let n_prompt = prompt_entries(value)?;
    let Some(end) = echo_end(logprobs, n_prompt) else {
        return Err("the server's echo has no tokens with text offsets".to_string());
    };
    let boundary = end.saturating_sub(tail_chars as u64);
    let mut total = 0.0;
    let mut counted = 0;
    for (value, offset) in values.iter().zip(offsets).take(n_prompt) {
        let Some(offset) = offset.as_u64() else {
            return Err("a text_offset is not a number".to_string());
        };
        if offset < boundary {
            continue;
        }
        if let Some(lp) = value.as_f64() {
            total += lp;
            counted += 1;
        }
    }
    if counted == 0 || tail_chars == 0 {
        return Err("no scored token lies after the context".to_string());
    }
    Ok((total, counted))
}

/// A text whose every token after the first few is easy to predict: on it, a model's top
/// choice before each token is that token far more often than chance.
pub const ALIGNMENT_PROBE: &str = "one, two, three, four, five, six, seven, eight, nine, ten, eleven, twelve, thirteen, fourteen, fifteen, sixteen, seventeen, eighteen, nineteen, twenty";

/// Judges an echoed `/completions` answer on `ALIGNMENT_PROBE` (after a prefix, if any): Ok when `token_logprobs[i]` and `top_logprobs[i]` are the distribution before
/// token i (OpenAI's meaning), Err with the reason when they are the one after it (shifted) or
/// when the answer cannot tell.
pub fn judge_alignment(value: &Value) -> Result<(), String> {
    let logprobs = &value["choices"][0]["logprobs"];
    let (Some(tokens), Some(tops), Some(offsets)) = (
        logprobs["tokens"].as_array(),
        logprobs["top_logprobs"].as_array(),
        logprobs["text_offset"].as_array(),
    ) else {
        return Err(
            "the server returned no prompt tokens with top log-probabilities, so their alignment cannot be checked: Choice queries are refused (--logprob-alignment trust uses them unchecked)"
                .to_string(),
        );
    };
    // The most likely token of a position's distribution, as the server spells it.
    let top = |i: usize| -> Option<&str> {
        tops.get(i)?
            .as_object()?
            .iter()
            .filter_map(|(token, lp)| Some((token.as_str(), lp.as_f64()?)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(token, _)| token)
    };
    let n_prompt = prompt_entries(value)?;
    let probe_start = echo_end(logprobs, n_prompt)
        .unwrap_or(0)
        .saturating_sub(ALIGNMENT_PROBE.chars().count() as u64);
    let (mut aligned, mut shifted, mut compared) = (0usize, 0usize, 0usize);
    for (i, token) in tokens.iter().enumerate().take(n_prompt).skip(1) {
        // Only the probe's own tokens are judged, not those of a prefix.
        if offsets.get(i - 1).and_then(Value::as_u64).unwrap_or(0) < probe_start {
            continue;
        }
        let (Some(token), Some(here), Some(before)) = (token.as_str(), top(i), top(i - 1)) else {
            continue;
        };
        compared += 1;
        aligned += usize::from(here == token);
        shifted += usize::from(before == token);
    }
    let detail = format!(
        "a probe on a counting sequence: of {compared} tokens, {aligned} are the top choice of the distribution reported at their own position, {shifted} of the one reported at the position before"
    );
    if compared >= 10 && aligned * 2 >= compared && aligned >= 3 * shifted.max(1) {
        return Ok(());
    }
    if compared >= 10 && shifted * 2 >= compared && shifted >= 3 * aligned.max(1) {
        return Err(format!(
            "the server's prompt log-probs are shifted by one token ({detail}), so Choice queries would be scored wrong and are refused; llama-cpp-python does this for models that add no BOS token: pass --logprob-prefix with the model's BOS text (\"<|im_start|>\" for SmolLM2), or score with the candle backend (--model FILE)"
        ));
    }
    Err(format!(
        "the alignment of the server's prompt log-probs is unclear ({detail}), so Choice queries are refused; --logprob-alignment trust uses them unchecked"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.
mod tests {
    use super::*;

    use serde_json::json;
    #[test]
    fn prompt_logprobs_after_the_context() {
        // The prompt "The cat sat", then one generated token (left out).
        let value = json!({"choices": [{"logprobs": {
            "tokens": ["The", " cat", " sat", " down"],
            "token_logprobs": [null, -2.0, -0.5, -9.0],
            "text_offset": [0, 3, 7, 11]
        }}], "usage": {"prompt_tokens": 3, "completion_tokens": 1}});
        assert_eq!(prompt_logprob(&value, " cat sat".len()), Ok(-2.5));
        assert_eq!(
            prompt_logprob_counted(&value, " cat sat".len()),
            Ok((-2.5, 2))
        );
        assert_eq!(prompt_logprob(&value, " sat".len()), Ok(-0.5));
        assert_eq!(prompt_logprob(&value, "t sat".len()), Ok(-0.5));
        assert_eq!(prompt_logprob(&value, 100), Ok(-2.5));
        assert!(prompt_logprob(&value, 0).is_err());
        let mut no_usage = value.clone();
        no_usage["usage"] = Value::Null;
        assert!(prompt_logprob(&no_usage, 4)
            .unwrap_err()
            .contains("usage.completion_tokens"));
        assert!(prompt_logprob(&json!({"choices": [{"text": "x"}]}), 0)
            .unwrap_err()
            .contains("no prompt log-probabilities"));
    }

    /// An echoed answer on `ALIGNMENT_PROBE`'s words: `shift` 0 reports each token's own
    /// distribution at its position (OpenAI's meaning), 1 the distribution after it.
    fn probe_answer(shift: usize) -> Value {
        let words: Vec<String> = ALIGNMENT_PROBE
            .split(", ")
            .enumerate()
            .flat_map(|(i, w)| {
                let w = if i == 0 {
                    w.to_string()
                } else {
                    format!(" {w}")
                };
                [w, ",".to_string()]
            })
            .collect();
        let mut offsets = Vec::new();
        let mut at = 0;
        for w in &words {
            offsets.push(at);
            at += w.chars().count();
        }
        let tops: Vec<Value> = (0..words.len())
            .map(|i| match words.get(i + shift) {
                Some(top) if i > 0 => json!({ top.as_str(): -0.1, "x": -5.0 }),
                _ => Value::Null,
            })
            .collect();
        json!({"choices": [{"logprobs": {
            "tokens": words,
            "text_offset": offsets,
            "token_logprobs": vec![-0.1; words.len()],
            "top_logprobs": tops,
        }}], "usage": {"completion_tokens": 0}})
    }

    #[test]
    fn the_alignment_probe_tells_shifted_from_aligned() {
        assert_eq!(judge_alignment(&probe_answer(0)), Ok(()));
        let shifted = judge_alignment(&probe_answer(1)).unwrap_err();
        assert!(shifted.contains("shifted by one token"), "{shifted}");
        assert!(shifted.contains("--logprob-prefix"), "{shifted}");
        let unclear = judge_alignment(&json!({"choices": [{"text": ""}]})).unwrap_err();
        assert!(unclear.contains("cannot be checked"), "{unclear}");
        let mut noise = probe_answer(0);
        noise["choices"][0]["logprobs"]["top_logprobs"] = json!(vec![json!({"x": -0.1}); 40]);
        let unclear = judge_alignment(&noise).unwrap_err();
        assert!(unclear.contains("unclear"), "{unclear}");
    }

    #[test]
    fn text_offsets_count_characters() {
        let value = json!({"choices": [{"logprobs": {
            "tokens": ["Café", " olé"],
            "token_logprobs": [null, -1.5],
            "text_offset": [0, 4]
        }}], "usage": {"completion_tokens": 0}});
        assert_eq!(prompt_logprob(&value, " olé".chars().count()), Ok(-1.5));
    }
}
