//! PEFT LoRA adapters (adapter_config.json + adapter_model.safetensors) applied to a decoder at
//! load: merged into dense weights (`W + scale·B·A`), or kept beside a quantized weight and
//! applied unmerged (`x·Wᵀ + scale·(x·Aᵀ)·Bᵀ`).
//!
//! Written here because candle has no PEFT reader. What PEFT does and we follow: the scale is
//! `lora_alpha / r`, or `lora_alpha / sqrt(r)` with `use_rslora`; `target_modules` is a list of
//! names (a module matches when its full name is the entry or ends with `.entry`) or a regex
//! string matched against the whole name, or `all-linear`; `fan_in_fan_out` is ignored for
//! `nn.Linear` layers (PEFT resets it to false there). Options that change the maths and are not
//! implemented (DoRA, per-module rank or alpha patterns, layer subsets, extra trainable modules,
//! LoRA biases) are refused with an error, never ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use super::gguf::one_line;
use super::model::{Config, Linear, Model};
use super::LoadError;

pub(crate) const CONFIG_FILE: &str = "adapter_config.json";
pub(crate) const WEIGHTS_FILE: &str = "adapter_model.safetensors";
/// The largest rank and |lora_alpha| an adapter config may declare (PEFT's are in the tens
/// to hundreds).
const MAX_RANK: u64 = 1 << 16;
const MAX_ALPHA: f64 = 1e6;

/// The linear maps of a decoder block that an adapter may adapt, in PEFT's (HF) names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Module {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl Module {
    const ALL: [Module; 7] = [
        Module::Q,
        Module::K,
        Module::V,
        Module::O,
        Module::Gate,
        Module::Up,
        Module::Down,
    ];

    fn name(self) -> &'static str {
        match self {
            Module::Q => "q_proj",
            Module::K => "k_proj",
            Module::V => "v_proj",
            Module::O => "o_proj",
            Module::Gate => "gate_proj",
            Module::Up => "up_proj",
            Module::Down => "down_proj",
        }
    }

    fn part(self) -> &'static str {
        match self {
            Module::Q | Module::K | Module::V | Module::O => "self_attn",
            _ => "mlp",
        }
    }

    /// The module's full name in the HF model, as PEFT matches it.
    fn full_name(self, layer: usize) -> String {
        format!("model.layers.{layer}.{}.{}", self.part(), self.name())
    }

    fn slot(self, layer: &mut super::model::Layer) -> &mut Linear {
        match self {
            Module::Q => &mut layer.q,
            Module::K => &mut layer.k,
            Module::V => &mut layer.v,
            Module::O => &mut layer.o,
            Module::Gate => &mut layer.gate,
            Module::Up => &mut layer.up,
            Module::Down => &mut layer.down,
        }
    }
}

/// Modules of the base outside the decoder blocks' linear maps: PEFT can adapt them (embedding
/// and head LoRA); we refuse them rather than drop them.
const OTHER_MODULES: [&str; 2] = ["model.embed_tokens", "lm_head"];

/// PEFT's `target_modules`.
#[derive(Debug)]
enum Targets {
    Names(Vec<String>),
    Regex(regex::Regex),
    AllLinear,
}

impl Targets {
    fn matches(&self, full_name: &str) -> bool {
        match self {
            Targets::Names(names) => names.iter().any(|t| name_matches(t, full_name)),
            Targets::Regex(re) => re.is_match(full_name),
            // PEFT's all-linear: every linear layer except the output head.
            Targets::AllLinear => full_name != "lm_head",
        }
    }

    fn describe(&self) -> String {
        match self {
            Targets::Names(names) => names.join(", "),
            Targets::Regex(re) => {
                let s = re.as_str();
                format!("regex {}", &s[4..s.len() - 2])
            }
            Targets::AllLinear => "all-linear".to_string(),
        }
    }
}

fn name_matches(target: &str, full_name: &str) -> bool {
    full_name == target || full_name.ends_with(&format!(".{target}"))
}

/// A and B of each adapted (layer, module).
type Weights = BTreeMap<(usize, Module), (Tensor, Tensor)>;

/// A parsed adapter: its options and its A and B matrices by (layer, module), in f32 on the CPU.
pub(crate) struct Adapter {
    pub dir: PathBuf,
    pub r: usize,
    pub alpha: f64,
    pub rslora: bool,
    pub scale: f64,
    targets: Targets,
    /// (A `(r, in)`, B `(out, r)`).
    weights: Weights,
}

fn err(path: &Path, reason: impl Into<String>) -> LoadError {
    LoadError::Adapter {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn unsupported(path: &Path, what: impl Into<String>) -> LoadError {
    LoadError::Unsupported {
        path: path.display().to_string(),
        what: what.into(),
    }
}

/// Whether a config value is absent or PEFT's "nothing" (null, false, empty list or object).
fn is_unset(v: Option<&serde_json::Value>) -> bool {
    match v {
        None | Some(serde_json::Value::Null) | Some(serde_json::Value::Bool(false)) => true,
        Some(serde_json::Value::Array(a)) => a.is_empty(),
        Some(serde_json::Value::Object(o)) => o.is_empty(),
        _ => false,
    }
}

impl Adapter {
    /// Reads and checks an adapter folder for a decoder of `n_layers` blocks.
    pub fn open(dir: &Path, n_layers: usize) -> Result<Adapter, LoadError> {
        if !dir.is_dir() {
            return Err(LoadError::Io {
                path: dir.display().to_string(),
                reason: if dir.exists() {
                    "not a folder (an adapter is a folder with adapter_config.json and adapter_model.safetensors)".into()
                } else {
                    "no such adapter folder".into()
                },
            });
        }
        let config_path = dir.join(CONFIG_FILE);
        let weights_path = dir.join(WEIGHTS_FILE);
        for path in [&config_path, &weights_path] {
            if !path.is_file() {
                return Err(LoadError::Io {
                    path: path.display().to_string(),
                    reason: "missing (a PEFT adapter folder holds adapter_config.json and adapter_model.safetensors)".into(),
                });
            }
        }
        let text = std::fs::read_to_string(&config_path).map_err(|e| LoadError::Io {
            path: config_path.display().to_string(),
            reason: one_line(e),
        })?;
        let config: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| err(&config_path, format!("not valid JSON ({})", one_line(e))))?;
        let Some(fields) = config.as_object() else {
            return Err(err(&config_path, "expected a JSON object"));
        };
        if let Some(kind) = fields.get("peft_type") {
            if kind.as_str() != Some("LORA") {
                return Err(unsupported(
                    &config_path,
                    format!("peft_type {kind} (only LORA)"),
                ));
            }
        }
        let r = fields
            .get("r")
            .and_then(serde_json::Value::as_u64)
            .filter(|&r| r > 0 && r <= MAX_RANK)
            .ok_or_else(|| {
                err(
                    &config_path,
                    format!("`r` must be a positive integer up to {MAX_RANK}"),
                )
            })? as usize;
        // A huge alpha overflows the merged weights to infinity (and every answer to NaN).
        let alpha = fields
            .get("lora_alpha")
            .and_then(serde_json::Value::as_f64)
            .filter(|a| a.is_finite() && a.abs() <= MAX_ALPHA)
            .ok_or_else(|| {
                err(
                    &config_path,
                    format!("`lora_alpha` must be a number of magnitude at most {MAX_ALPHA}"),
                )
            })?;
        let rslora = match fields.get("use_rslora") {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(_) => return Err(err(&config_path, "`use_rslora` must be true or false")),
        };
        match fields.get("bias").map(|b| b.as_str()) {
            None | Some(Some("none")) => {}
            Some(Some(other)) => {
                return Err(unsupported(
                    &config_path,
                    format!("bias \"{other}\" (only \"none\")"),
                ))
            }
            Some(None) => return Err(err(&config_path, "`bias` must be a string")),
        }
        for (key, what) in [
            ("use_dora", "use_dora (DoRA)"),
            ("rank_pattern", "rank_pattern (per-module ranks)"),
            ("alpha_pattern", "alpha_pattern (per-module alphas)"),
            ("layers_to_transform", "layers_to_transform"),
            ("modules_to_save", "modules_to_save"),
            ("exclude_modules", "exclude_modules"),
            ("lora_bias", "lora_bias"),
            ("layer_replication", "layer_replication"),
            ("target_parameters", "target_parameters"),
            ("trainable_token_indices", "trainable_token_indices"),
        ] {
            if !is_unset(fields.get(key)) {
                return Err(unsupported(&config_path, what));
            }
        }
        let targets = match fields.get("target_modules") {
            Some(serde_json::Value::String(s)) if s == "all-linear" => Targets::AllLinear,
            Some(serde_json::Value::String(s)) => {
                Targets::Regex(regex::Regex::new(&format!("^(?:{s})$")).map_err(|e| {
                    err(
                        &config_path,
                        format!(
                            "target_modules regex {s:?} does not compile ({})",
                            one_line(e)
                        ),
                    )
                })?)
            }
            Some(serde_json::Value::Array(items)) if !items.is_empty() => Targets::Names(
                items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| err(&config_path, "`target_modules` must list strings"))?,
            ),
            _ => {
                return Err(err(
                    &config_path,
                    "`target_modules` must be a list of module names or a regex string",
                ))
            }
        };
        // Every target must name something the base has, and nothing we cannot adapt.
        let linear: Vec<String> = (0..n_layers)
            .flat_map(|l| Module::ALL.map(|m| m.full_name(l)))
            .collect();
        for other in OTHER_MODULES {
            if targets.matches(other) && !matches!(targets, Targets::AllLinear) {
                return Err(unsupported(
                    &config_path,
                    format!("adapting `{other}` (only the decoder blocks' linear maps)"),
                ));
            }
        }
        let known = Module::ALL.map(Module::name).join(", ");
        match &targets {
            Targets::Names(names) => {
                for t in names {
                    if !linear.iter().any(|n| name_matches(t, n)) {
                        return Err(err(
                            &config_path,
                            format!("target module `{t}` is not a module of the base (its linear maps: {known})"),
                        ));
                    }
                }
            }
            Targets::Regex(_) => {
                if !linear.iter().any(|n| targets.matches(n)) {
                    return Err(err(
                        &config_path,
                        format!(
                            "target_modules {} matches no module of the base (its linear maps: {known})",
                            targets.describe()
                        ),
                    ));
                }
            }
            Targets::AllLinear => {}
        }
        let scale = if rslora {
            alpha / (r as f64).sqrt()
        } else {
            alpha / r as f64
        };
        let weights = read_weights(&weights_path, n_layers, r)?;
        // The file's modules must be exactly those the config selects.
        let selected: BTreeSet<(usize, Module)> = (0..n_layers)
            .flat_map(|l| Module::ALL.map(|m| (l, m)))
            .filter(|(l, m)| targets.matches(&m.full_name(*l)))
            .collect();
        for &(l, m) in &selected {
            if !weights.contains_key(&(l, m)) {
                return Err(err(
                    &weights_path,
                    format!(
                        "no lora_A/lora_B for `{}`, which target_modules selects",
                        m.full_name(l)
                    ),
                ));
            }
        }
        for &(l, m) in weights.keys() {
            if !selected.contains(&(l, m)) {
                return Err(err(
                    &weights_path,
                    format!(
                        "holds weights for `{}`, which target_modules ({}) does not select",
                        m.full_name(l),
                        targets.describe()
                    ),
                ));
            }
        }
        Ok(Adapter {
            dir: dir.to_path_buf(),
            r,
            alpha,
            rslora,
            scale,
            targets,
            weights,
        })
    }

    /// One line for the manifest.
    pub fn describe(&self, how: &str) -> String {
        format!(
            "PEFT LoRA {}: r {}, lora_alpha {}, scale {} ({}), {} modules ({}), {how}",
            self.dir.display(),
            self.r,
            self.alpha,
            self.scale,
            if self.rslora {
                "alpha/sqrt(r), rsLoRA"
            } else {
                "alpha/r"
            },
            self.weights.len(),
            self.targets.describe()
        )
    }

    /// The files whose hashes identify the adapter.
    pub fn files(&self) -> [PathBuf; 2] {
        [self.dir.join(CONFIG_FILE), self.dir.join(WEIGHTS_FILE)]
    }
}

/// Parses a PEFT tensor name: `base_model.model.model.layers.N.<part>.<module>.lora_{A,B}.weight`.
fn parse_key(key: &str) -> Option<(usize, Module, bool)> {
    let rest = key.strip_prefix("base_model.model.model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, is_a) = if let Some(m) = rest.strip_suffix(".lora_A.weight") {
        (m, true)
    } else {
        (rest.strip_suffix(".lora_B.weight")?, false)
    };
    let module = Module::ALL
        .into_iter()
        .find(|m| module == format!("{}.{}", m.part(), m.name()))?;
    Some((layer, module, is_a))
}

fn read_weights(path: &Path, n_layers: usize, r: usize) -> Result<Weights, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError::Io {
        path: path.display().to_string(),
        reason: one_line(e),
    })?;
    // Sorted by name, so that the first problem reported is the same on every run.
    let tensors: BTreeMap<String, Tensor> =
        candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .map_err(|e| {
                err(
                    path,
                    format!("not a readable safetensors file ({})", one_line(e)),
                )
            })?
            .into_iter()
            .collect();
    let mut a = BTreeMap::new();
    let mut b = BTreeMap::new();
    for (key, tensor) in tensors {
        let Some((layer, module, is_a)) = parse_key(&key) else {
            return Err(
                if key.contains("lora_embedding")
                    || key.contains("lm_head")
                    || key.contains("magnitude")
                    || key.contains(".bias")
                {
                    unsupported(path, format!("tensor `{key}`"))
                } else {
                    err(path, format!("tensor `{key}` is not a lora_A or lora_B of a decoder block's linear map (base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight, ...)"))
                },
            );
        };
        if layer >= n_layers {
            return Err(err(
                path,
                format!("tensor `{key}`: the base has {n_layers} layers, no layer {layer}"),
            ));
        }
        let dims = tensor.dims().to_vec();
        let rank_ok = dims.len() == 2 && if is_a { dims[0] == r } else { dims[1] == r };
        if !rank_ok {
            return Err(err(
                path,
                format!(
                    "tensor `{key}` has shape {dims:?}, expected {} with r = {r} from adapter_config.json",
                    if is_a { "[r, in]" } else { "[out, r]" }
                ),
            ));
        }
        let tensor = tensor
            .to_dtype(DType::F32)
            .map_err(|e| err(path, format!("tensor `{key}`: {}", one_line(e))))?;
        let finite = tensor
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| err(path, format!("tensor `{key}`: {}", one_line(e))))?
            .iter()
            .all(|v| v.is_finite());
        if !finite {
            return Err(err(
                path,
                format!("tensor `{key}` holds NaN or infinite values"),
            ));
        }
        if is_a { &mut a } else { &mut b }.insert((layer, module), tensor);
    }
    let mut out = BTreeMap::new();
    for (k, ta) in a {
        let tb = b.remove(&k).ok_or_else(|| {
            err(
                path,
                format!("`{}` has lora_A but no lora_B", k.1.full_name(k.0)),
            )
        })?;
        out.insert(k, (ta, tb));
    }
    if let Some(k) = b.keys().next() {
        return Err(err(
            path,
            format!("`{}` has lora_B but no lora_A", k.1.full_name(k.0)),
        ));
    }
    Ok(out)
}

/// `(in, out)` of a linear map.
fn linear_shape(linear: &Linear) -> candle_core::Result<(usize, usize)> {
    match linear {
        Linear::Dense(wt) => wt.dims2(),
        Linear::Blocks(b) => b.dims().map(|(o, i)| (i, o)),
        Linear::LowRank { base, .. } => linear_shape(base),
    }
}

/// How the adapter was applied, for the manifest.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    pub merged: usize,
    pub unmerged: usize,
}

/// Applies the adapter to `model`: merged into dense weights, unmerged beside quantized ones
/// (or everywhere when `unmerged` is set: slower, used to check the merge).
pub(crate) fn apply(
    model: &mut Model,
    adapter: &Adapter,
    unmerged: bool,
) -> Result<Applied, LoadError> {
    let weights_path = adapter.dir.join(WEIGHTS_FILE);
    let cfg = model.cfg.clone();
    let device = model.device.clone();
    let dtype = model.dtype;
    let mut applied = Applied::default();
    for (&(layer, module), (a, b)) in &adapter.weights {
        let slot = module.slot(&mut model.layers[layer]);
        let fail = |e: candle_core::Error| {
            err(
                &weights_path,
                format!("`{}`: {}", module.full_name(layer), one_line(e)),
            )
        };
        let (fan_in, fan_out) = linear_shape(slot).map_err(fail)?;
        let (_, a_in) = a.dims2().map_err(fail)?;
        let (b_out, _) = b.dims2().map_err(fail)?;
        if (a_in, b_out) != (fan_in, fan_out) {
            return Err(err(
                &weights_path,
                format!(
                    "`{}`: lora_A is [{}, {a_in}] and lora_B [{b_out}, {}], but the base's map is {fan_in} → {fan_out} (expected [r, {fan_in}] and [{fan_out}, r])",
                    module.full_name(layer), adapter.r, adapter.r
                ),
            ));
        }
        let b = permute_rows(b, module, &cfg).map_err(fail)?;
        // (in, r) and (r, out), scale folded into the second.
        let a_t = a.t().and_then(|t| t.contiguous()).map_err(fail)?;
        let b_t = (b.t().map_err(fail)? * adapter.scale)
            .and_then(|t| t.contiguous())
            .map_err(fail)?;
        let old = std::mem::replace(
            slot,
            Linear::Dense(Tensor::zeros(1, DType::F32, &Device::Cpu).map_err(fail)?),
        );
        *slot = match old {
            Linear::Dense(wt) if !unmerged => {
                applied.merged += 1;
                let delta = a_t
                    .matmul(&b_t)
                    .and_then(|d| d.to_device(&device))
                    .map_err(fail)?;
                let merged = wt
                    .to_dtype(DType::F32)
                    .and_then(|w| w + delta)
                    .and_then(|w| w.to_dtype(dtype))
                    .map_err(fail)?;
                Linear::Dense(merged)
            }
            base => {
                applied.unmerged += 1;
                let place = |t: Tensor| t.to_device(&device).and_then(|t| t.to_dtype(dtype));
                Linear::LowRank {
                    base: Box::new(base),
                    a_t: place(a_t).map_err(fail)?,
                    b_t: place(b_t).map_err(fail)?,
                }
            }
        };
    }
    Ok(applied)
}

/// GGUF Llama files hold q and k with the rows of each head permuted (llama.cpp's
/// `permute(w, n_head)`: halves interleaved, for its adjacent-pair RoPE). B's rows are output
/// rows, so they take the same permutation; A and every other map are unchanged.
fn permute_rows(b: &Tensor, module: Module, cfg: &Config) -> candle_core::Result<Tensor> {
    let heads = match module {
        Module::Q => cfg.n_heads,
        Module::K => cfg.n_kv_heads,
        _ => return Ok(b.clone()),
    };
    if !cfg.rope_interleaved {
        return Ok(b.clone());
    }
    let (out, r) = b.dims2()?;
    b.reshape((heads, 2, out / heads / 2, r))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((out, r))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use candle_core::quantized::{GgmlDType, QTensor};

    #[test]
    fn keys_parse_as_peft_names_them() {
        assert_eq!(
            parse_key("base_model.model.model.layers.12.self_attn.q_proj.lora_A.weight"),
            Some((12, Module::Q, true))
        );
        assert_eq!(
            parse_key("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight"),
            Some((0, Module::Down, false))
        );
        assert_eq!(
            parse_key("base_model.model.model.layers.0.mlp.q_proj.lora_B.weight"),
            None
        );
        assert_eq!(parse_key("base_model.model.lm_head.lora_A.weight"), None);
    }

    #[test]
    fn list_targets_match_by_suffix() {
        assert!(name_matches("q_proj", "model.layers.3.self_attn.q_proj"));
        assert!(name_matches(
            "self_attn.q_proj",
            "model.layers.3.self_attn.q_proj"
        ));
        assert!(!name_matches("proj", "model.layers.3.self_attn.q_proj"));
    }

    /// The permutation of B equals permuting the rows of the merged delta B·A.
    #[test]
    fn head_permutation_moves_output_rows() {
        let (heads, hd, r) = (3, 4, 2);
        let out = heads * hd;
        let b = Tensor::arange(0f32, (out * r) as f32, &Device::Cpu)
            .unwrap()
            .reshape((out, r))
            .unwrap();
        let cfg = Config {
            family: super::super::model::Family::Llama,
            n_layers: 1,
            d_model: out,
            n_heads: heads,
            n_kv_heads: heads,
            head_dim: hd,
            vocab: 1,
            rms_eps: 1e-6,
            rope_theta: 1e4,
            rope_local_theta: 1e4,
            rope_scale: 1.0,
            rope_interleaved: true,
            context_len: 8,
            sliding_window: None,
            sliding_pattern: 0,
            attn_scale: 1.0,
            rope_freq_factors: None,
            attn_softcap: None,
            final_softcap: None,
        };
        let p = permute_rows(&b, Module::Q, &cfg)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let same = permute_rows(&b, Module::V, &cfg)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let b = b.to_vec2::<f32>().unwrap();
        assert_eq!(same, b);
        // llama.cpp: GGUF row h*hd + 2i + j holds HF row h*hd + j*hd/2 + i.
        for h in 0..heads {
            for i in 0..hd / 2 {
                for j in 0..2 {
                    assert_eq!(p[h * hd + 2 * i + j], b[h * hd + j * hd / 2 + i]);
                }
            }
        }
    }

    /// A seeded N(0, sd²) tensor (candle's CPU `randn` cannot be seeded).
    fn normal(rng: &mut rand_chacha::ChaCha8Rng, sd: f32, shape: (usize, usize)) -> Tensor {
        use rand::Rng;
        let values: Vec<f32> = (0..shape.0 * shape.1)
            .map(|_| {
                // Box–Muller; 1 − u keeps the logarithm finite.
                let (u, v): (f64, f64) = (rng.gen(), rng.gen());
                let z = (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos();
                sd * z as f32
            })
            .collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    /// The unmerged path on a kept-quantized weight (Q8_0 blocks, as QMatMul runs them) against
    /// the same weight dequantized with the update merged. The two differ by what QMatMul does
    /// to the activations and by float32 rounding, and the bound is derived from both, per
    /// output, on the test's own data; it holds whatever SIMD kernel the CPU runs:
    ///
    /// - QMatMul multiplies the weight's int8 values by the activations quantized to Q8_0 too
    ///   (blocks of 32, scale amax/127 in f16), then takes exact integer block sums. With x̂ the
    ///   activations after that round trip (`QTensor::quantize` + `dequantize`, the same
    ///   `from_float`), y_quant = Σ_i ŵ_ji x̂_i, while the dense product is Σ_i ŵ_ji x_i: they
    ///   differ by Σ_i ŵ_ji (x̂_i − x_i), at most Σ_i |ŵ_ji| |x̂_i − x_i| (which is why the
    ///   kernels of different instruction sets agree: they only sum those terms in another order).
    /// - Every float32 sum of n products is off by at most γ_n Σ|products| (γ_n = nu/(1 − nu),
    ///   u = 2⁻²⁴, Higham's bound, any summation order): n = fan_in for the weight products,
    ///   fan_in + r for the low-rank path, counted once per side.
    ///
    /// The data are seeded, so the gap is the same on every run and every machine.
    #[test]
    fn unmerged_on_quantized_weight_equals_merged_dequantized() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let dev = Device::Cpu;
        let (fan_in, fan_out, r) = (64, 32, 4);
        let w = normal(&mut rng, 0.05, (fan_out, fan_in));
        let a = normal(&mut rng, 0.1, (r, fan_in));
        let b = normal(&mut rng, 0.1, (fan_out, r));
        let scale = 2.0;
        let x = normal(&mut rng, 1.0, (5, fan_in));
        let q = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
        let wq = q.dequantize(&dev).unwrap();
        let low = Linear::LowRank {
            base: Box::new(Linear::Blocks(
                crate::candle::model::Blocks::new(q).unwrap(),
            )),
            a_t: a.t().unwrap().contiguous().unwrap(),
            b_t: (b.t().unwrap() * scale).unwrap().contiguous().unwrap(),
        };
        let delta = (b.matmul(&a).unwrap() * scale).unwrap();
        let merged = Linear::dense(&(wq.clone() + &delta).unwrap()).unwrap();
        let base = Linear::dense(&wq).unwrap();
        let y_low = low.forward(&x).unwrap();
        let y_merged = merged.forward(&x).unwrap();
        let y_base = base.forward(&x).unwrap();

        let abs_t = |t: &Tensor| t.abs().unwrap().t().unwrap().contiguous().unwrap();
        let x_hat = QTensor::quantize(&x, GgmlDType::Q8_0)
            .unwrap()
            .dequantize(&dev)
            .unwrap();
        let activation_error = (&x_hat - &x).unwrap().abs().unwrap();
        let quantization = activation_error.matmul(&abs_t(&wq)).unwrap();
        let gamma = |n: usize| {
            let nu = n as f64 * f64::powi(2.0, -24);
            (nu / (1.0 - nu)) as f32
        };
        let x_abs = x.abs().unwrap();
        let magnitudes = [
            (
                x_hat.abs().unwrap().matmul(&abs_t(&wq)).unwrap(),
                gamma(fan_in),
            ),
            (
                x_abs
                    .matmul(&abs_t(&a))
                    .unwrap()
                    .matmul(&abs_t(&(b.clone() * scale).unwrap()))
                    .unwrap(),
                gamma(fan_in + r),
            ),
            (
                x_abs
                    .matmul(&abs_t(&(wq.clone() + &delta).unwrap()))
                    .unwrap(),
                gamma(fan_in),
            ),
        ];
        let mut bound = quantization.clone();
        for (magnitude, g) in magnitudes {
            bound = (bound + (magnitude * f64::from(g)).unwrap()).unwrap();
        }
        let gap = (&y_low - &y_merged).unwrap().abs().unwrap();
        let over = (&gap - &bound)
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let max = |t: &Tensor| t.max_all().unwrap().to_scalar::<f32>().unwrap();
        let update = max(&(&y_merged - &y_base).unwrap().abs().unwrap());
        println!(
            "largest gap {}, largest bound {}, largest update {update}",
            max(&gap),
            max(&bound)
        );
        assert!(
            over <= 0.0,
            "a gap exceeds its bound by {over}: gap {}, bound {}",
            max(&gap),
            max(&bound)
        );
        // The test can tell an adapter applied from one left out: the bound is a small part
        // of the update, and the gap is not zero (the activations were quantized).
        assert!(update > 0.1, "the update is too small to test: {update}");
        assert!(
            max(&bound) < 0.05 * update,
            "bound {} vs update {update}",
            max(&bound)
        );
        assert!(max(&gap) > 0.0);
    }
}
