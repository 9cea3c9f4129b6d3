//! Tokenizers rebuilt from GGUF metadata (`tokenizer.ggml.*`), as llama.cpp does, so that token ids
//! equal the upstream `tokenizer.json`'s.
//!
//! Two families are handled: byte-level BPE (`tokenizer.ggml.model = "gpt2"`, SmolLM2, Llama 3,
//! Qwen 2) with the pre-tokenizer named by `tokenizer.ggml.pre`, and SentencePiece-style BPE with byte
//! fallback (`"llama"`, Gemma), whose merges are derived from the token scores.

use candle_core::quantized::gguf_file;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::replace::Replace;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

/// The special tokens a backend needs from its tokenizer.
#[derive(Clone, Debug, Default)]
pub(crate) struct Specials {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    /// Whether the model expects BOS in front of every text (Gemma), as `add_bos_token` says.
    pub add_bos: bool,
    /// Ids that end a generated answer (EOS, `<|im_end|>`, `<end_of_turn>`, …).
    pub stop_ids: Vec<u32>,
}

impl Specials {
    /// The token a whole sentence is conditioned on (lm-evaluation-harness: BOS, else EOS).
    pub fn prefix_id(&self) -> Option<u32> {
        self.bos.or(self.eos)
    }
}

fn get<'a>(ct: &'a gguf_file::Content, key: &str) -> Result<&'a gguf_file::Value, String> {
    ct.metadata
        .get(key)
        .ok_or_else(|| format!("missing metadata key `{key}`"))
}

fn as_u32(value: &gguf_file::Value) -> Option<u32> {
    use gguf_file::Value::*;
    match value {
        U8(v) => Some(u32::from(*v)),
        U16(v) => Some(u32::from(*v)),
        U32(v) => Some(*v),
        U64(v) => u32::try_from(*v).ok(),
        I8(v) => u32::try_from(*v).ok(),
        I16(v) => u32::try_from(*v).ok(),
        I32(v) => u32::try_from(*v).ok(),
        I64(v) => u32::try_from(*v).ok(),
        _ => None,
    }
}

fn opt_u32(ct: &gguf_file::Content, key: &str) -> Option<u32> {
    ct.metadata.get(key).and_then(as_u32)
}

fn opt_bool(ct: &gguf_file::Content, key: &str) -> Option<bool> {
    ct.metadata.get(key).and_then(|v| v.to_bool().ok())
}

fn strings(ct: &gguf_file::Content, key: &str) -> Result<Vec<String>, String> {
    let values = get(ct, key)?
        .to_vec()
        .map_err(|_| format!("metadata `{key}` is not an array"))?;
    values
        .iter()
        .map(|v| {
            v.to_string()
                .cloned()
                .map_err(|_| format!("metadata `{key}` holds a non-string"))
        })
        .collect()
}

fn numbers<T>(
    ct: &gguf_file::Content,
    key: &str,
    f: impl Fn(&gguf_file::Value) -> Option<T>,
) -> Result<Vec<T>, String> {
    let values = get(ct, key)?
        .to_vec()
        .map_err(|_| format!("metadata `{key}` is not an array"))?;
    values
        .iter()
        .map(|v| f(v).ok_or_else(|| format!("metadata `{key}` holds a non-number")))
        .collect()
}

/// The upstream pre-tokenizer for each `tokenizer.ggml.pre` value we know.
fn byte_level_pre_tokenizer(pre: &str) -> Result<PreTokenizerWrapper, String> {
    const LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    const QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    let split = |regex: &str| -> Result<PreTokenizerWrapper, String> {
        let split = Split::new(
            SplitPattern::Regex(regex.to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| e.to_string())?;
        Ok(Sequence::new(vec![
            split.into(),
            ByteLevel::new(false, false, false).into(),
        ])
        .into())
    };
    Ok(match pre {
        // StarCoder-style (SmolLM, StarCoder 2): single digits, then GPT-2's byte-level split.
        "smollm" | "starcoder" | "refact" => Sequence::new(vec![
            Digits::new(true).into(),
            ByteLevel::new(false, true, true).into(),
        ])
        .into(),
        "llama3" | "llama-bpe" | "smaug-bpe" => split(LLAMA3)?,
        "qwen2" => split(QWEN2)?,
        "gpt2" | "default" => ByteLevel::new(false, true, true).into(),
        other => return Err(format!("unsupported pre-tokenizer `{other}`")),
    })
}

/// Control tokens (type 3) become special added tokens, matched whole in text (chat templates)
/// and skipped when decoding; user-defined tokens (type 4: Gemma's runs of spaces and newlines)
/// become plain added tokens, matched in the raw text and kept when decoding, as in the
/// upstream `tokenizer.json`.
fn add_specials(tokenizer: &mut Tokenizer, tokens: &[String], types: &[u32]) -> Result<(), String> {
    let added = |kind: u32, special: bool| -> Vec<AddedToken> {
        tokens
            .iter()
            .zip(types)
            .filter(|(_, ty)| **ty == kind)
            .map(|(token, _)| AddedToken::from(token.clone(), special).normalized(false))
            .collect()
    };
    let specials = added(3, true);
    if !specials.is_empty() {
        tokenizer
            .add_special_tokens(specials)
            .map_err(|e| e.to_string())?;
    }
    let user = added(4, false);
    if !user.is_empty() {
        tokenizer.add_tokens(user).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Builds the tokenizer and the special ids from GGUF metadata.
pub(crate) fn from_gguf(ct: &gguf_file::Content) -> Result<(Tokenizer, Specials), String> {
    let model = get(ct, "tokenizer.ggml.model")?
        .to_string()
        .map_err(|_| "metadata `tokenizer.ggml.model` is not a string".to_string())?
        .clone();
    let tokens = strings(ct, "tokenizer.ggml.tokens")?;
    let types =
        numbers(ct, "tokenizer.ggml.token_type", as_u32).unwrap_or_else(|_| vec![1; tokens.len()]);
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let mut tokenizer = match model.as_str() {
        "gpt2" => {
            let merges = strings(ct, "tokenizer.ggml.merges")?
                .into_iter()
                .map(|m| {
                    m.split_once(' ')
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .ok_or_else(|| format!("invalid merge `{m}`"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let bpe = BPE::builder()
                .vocab_and_merges(vocab, merges)
                .build()
                .map_err(|e| e.to_string())?;
            let pre = ct
                .metadata
                .get("tokenizer.ggml.pre")
                .and_then(|v| v.to_string().ok())
                .map_or("gpt2", String::as_str);
            let mut tokenizer = Tokenizer::new(bpe);
            tokenizer.with_pre_tokenizer(Some(byte_level_pre_tokenizer(pre)?));
            tokenizer.with_decoder(Some(ByteLevelDecoder::new(true, true, true)));
            tokenizer
        }
        "llama" => sentencepiece_bpe(ct, &tokens, &types, vocab)?,
        other => return Err(format!("unsupported tokenizer model `{other}`")),
    };
    add_specials(&mut tokenizer, &tokens, &types)?;

    let bos = opt_u32(ct, "tokenizer.ggml.bos_token_id");
    let eos = opt_u32(ct, "tokenizer.ggml.eos_token_id");
    let add_bos = opt_bool(ct, "tokenizer.ggml.add_bos_token").unwrap_or(model == "llama");
    let mut stop_ids: Vec<u32> = eos.into_iter().collect();
    for name in ["<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|endoftext|>"] {
        if let Some(id) = tokens.iter().position(|t| t == name) {
            let id = id as u32;
            if !stop_ids.contains(&id) {
                stop_ids.push(id);
            }
        }
    }
    Ok((
        tokenizer,
        Specials {
            bos,
            eos,
            add_bos,
            stop_ids,
        },
    ))
}

/// SentencePiece BPE (Gemma) in `tokenizers` terms: spaces become `▁`, merges are every pair of
/// vocabulary pieces that concatenates to another piece, ranked by that piece's score (higher
/// first), and unknown characters fall back to `<0xNN>` byte tokens.
fn sentencepiece_bpe(
    ct: &gguf_file::Content,
    tokens: &[String],
    types: &[u32],
    vocab: Vocab,
) -> Result<Tokenizer, String> {
    let scores = numbers(ct, "tokenizer.ggml.scores", |v| v.to_f32().ok())?;
    if scores.len() != tokens.len() {
        return Err("`tokenizer.ggml.scores` and `tokenizer.ggml.tokens` differ in length".into());
    }
    // Only normal pieces (type 1) take part in merges; byte, control and unused pieces do not.
    let normal = |id: usize| types.get(id).copied().unwrap_or(1) == 1;
    let mut merges: Vec<(f32, u32, u32, String, String)> = Vec::new();
    for (id, piece) in tokens.iter().enumerate() {
        if !normal(id) || piece.chars().count() < 2 {
            continue;
        }
        let boundaries: Vec<usize> = piece.char_indices().map(|(i, _)| i).skip(1).collect();
        for split in boundaries {
            let (left, right) = piece.split_at(split);
            if let (Some(&l), Some(&r)) = (vocab.get(left), vocab.get(right)) {
                if normal(l as usize) && normal(r as usize) {
                    merges.push((
                        scores[id],
                        id as u32,
                        l,
                        left.to_string(),
                        right.to_string(),
                    ));
                }
            }
        }
    }
    // Higher score first; ties by the merged piece's id, then by the left piece's id, as
    // transformers' SentencePiece extractor orders them.
    merges.sort_by(|a, b| {
        b.0.partial_cmp(&a.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
    });
    let merges = merges.into_iter().map(|m| (m.3, m.4)).collect();
    let unk = opt_u32(ct, "tokenizer.ggml.unknown_token_id")
        .and_then(|id| tokens.get(id as usize))
        .cloned();
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(true)
        .fuse_unk(true);
    if let Some(unk) = unk {
        builder = builder.unk_token(unk);
    }
    let bpe = builder.build().map_err(|e| e.to_string())?;
    let mut tokenizer = Tokenizer::new(bpe);
    let add_space_prefix = opt_bool(ct, "tokenizer.ggml.add_space_prefix").unwrap_or(false);
    let replace = Replace::new(" ", "▁").map_err(|e| e.to_string())?;
    let normalizer: NormalizerWrapper = if add_space_prefix {
        tokenizers::normalizers::Sequence::new(vec![
            tokenizers::normalizers::prepend::Prepend::new("▁".to_string()).into(),
            replace.into(),
        ])
        .into()
    } else {
        replace.into()
    };
    tokenizer
        .with_normalizer(Some(normalizer))
        .map_err(|e| e.to_string())?;
    let decoder: DecoderWrapper = DecoderSequence::new(vec![
        tokenizers::decoders::DecoderWrapper::Replace(
            Replace::new("▁", " ").map_err(|e| e.to_string())?,
        ),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ])
    .into();
    tokenizer.with_decoder(Some(decoder));
    Ok(tokenizer)
}
