//! A GGUF header checked against the file's size and sane bounds before candle parses it or
//! anything is allocated: a GGUF file may come from a pull request, and its header decides how
//! much memory a loader reserves (string and array lengths, tensor counts and shapes, the data
//! alignment, the layer count).
//!
//! The walk reads every metadata entry and tensor description without keeping them, so it
//! costs one pass over the header (a few megabytes for a tokenizer's vocabulary).

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use candle_core::quantized::GgmlDType;

/// Limits on what a GGUF header may declare. Real models stay far below them: Llama 3 70B has
/// 724 tensors and 80 layers; the largest vocabulary arrays hold about 260,000 strings.
pub const MAX_TENSORS: u64 = 1 << 16;
pub const MAX_METADATA: u64 = 1 << 16;
/// The longest string (key, value or array element), in bytes.
pub const MAX_STRING: u64 = 1 << 24;
/// The most elements of one metadata array.
pub const MAX_ARRAY: u64 = 1 << 24;
/// Arrays of arrays: no more deeply nested than this.
pub const MAX_NESTING: u32 = 2;
/// Tensor dimensions (GGML tensors have at most 4).
pub const MAX_DIMS: u32 = 4;
/// The most elements of one tensor (2^40: a terabyte of f8).
pub const MAX_ELEMENTS: u64 = 1 << 40;
/// The largest data alignment, in bytes.
pub const MAX_ALIGNMENT: u64 = 1 << 20;
/// The longest context a model may declare, and the widest hidden size.
pub const MAX_CONTEXT: u64 = 1 << 24;
pub const MAX_WIDTH: u64 = 1 << 20;

const MAGIC: u32 = 0x4655_4747;

/// Checks the header of the GGUF file at `path`; the error says what is wrong (one line).
pub fn check_file(path: &Path) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    check(&mut BufReader::new(file), size)
}

/// Checks a GGUF header read from `reader` (positioned at the start of the file), whose whole
/// length is `size` bytes.
pub fn check<R: Read + Seek>(reader: &mut R, size: u64) -> Result<(), String> {
    let mut r = Walker {
        reader,
        size,
        position: 0,
        wide: true,
    };
    if r.u32()? != MAGIC {
        return Err("not a GGUF file (bad magic number)".into());
    }
    let version = r.u32()?;
    r.wide = match version {
        1 => false,
        2 | 3 => true,
        v => return Err(format!("GGUF version {v} is not supported (1 to 3)")),
    };
    let tensors = r.length()?;
    let entries = r.length()?;
    if tensors > MAX_TENSORS {
        return Err(format!(
            "declares {tensors} tensors (at most {MAX_TENSORS})"
        ));
    }
    if entries > MAX_METADATA {
        return Err(format!(
            "declares {entries} metadata entries (at most {MAX_METADATA})"
        ));
    }
    let mut alignment = 32;
    let mut architecture = None;
    let mut integers: Vec<(String, u64)> = Vec::new();
    for _ in 0..entries {
        let key = r.string()?;
        let kind = r.u32()?;
        match (key.as_str(), kind) {
            ("general.alignment", 0 | 2 | 4 | 10) => {
                let value = r.unsigned(kind)?;
                if value == 0 || !value.is_power_of_two() || value > MAX_ALIGNMENT {
                    return Err(format!(
                        "general.alignment = {value}: expected a power of two up to {MAX_ALIGNMENT}"
                    ));
                }
                alignment = value;
            }
            ("general.alignment", _) => {
                return Err("general.alignment is not an unsigned integer".into());
            }
            ("general.architecture", 8) => architecture = Some(r.string()?),
            (_, 0 | 2 | 4 | 10) => {
                let value = r.unsigned(kind)?;
                integers.push((key, value));
            }
            _ => r.skip_value(kind, 0)?,
        }
    }
    if let Some(arch) = &architecture {
        let declared = |name: &str| {
            let key = format!("{arch}.{name}");
            integers.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
        };
        if let Some(layers) = declared("block_count") {
            if layers > tensors {
                return Err(format!(
                    "{arch}.block_count = {layers}, but the file holds only {tensors} tensors"
                ));
            }
        }
        let bounds = [
            ("context_length", MAX_CONTEXT),
            ("embedding_length", MAX_WIDTH),
            ("feed_forward_length", MAX_WIDTH * 8),
            ("attention.head_count", MAX_WIDTH),
            ("attention.head_count_kv", MAX_WIDTH),
            ("attention.key_length", MAX_WIDTH),
            ("attention.value_length", MAX_WIDTH),
        ];
        for (name, max) in bounds {
            if let Some(value) = declared(name) {
                if value > max {
                    return Err(format!("{arch}.{name} = {value} (at most {max})"));
                }
            }
        }
    }
    let mut extents = Vec::new();
    for _ in 0..tensors {
        let name = r.string()?;
        let dims = r.u32()?;
        if dims == 0 || dims > MAX_DIMS {
            return Err(format!(
                "tensor `{name}` has {dims} dimensions (1 to {MAX_DIMS})"
            ));
        }
        let mut elements: u64 = 1;
        for _ in 0..dims {
            let dim = r.length()?;
            elements = elements
                .checked_mul(dim)
                .filter(|&n| n <= MAX_ELEMENTS)
                .ok_or_else(|| format!("tensor `{name}` has more than {MAX_ELEMENTS} elements"))?;
        }
        let code = r.u32()?;
        let dtype = ggml_type(code)
            .ok_or_else(|| format!("tensor `{name}` has unknown or unsupported type {code}"))?;
        let block = dtype.block_size() as u64;
        if !elements.is_multiple_of(block) {
            return Err(format!(
                "tensor `{name}`: {elements} elements are not a whole number of {block}-element blocks"
            ));
        }
        let bytes = (elements / block)
            .checked_mul(dtype.type_size() as u64)
            .ok_or_else(|| format!("tensor `{name}` is too large"))?;
        let offset = r.u64()?;
        extents.push((name, offset, bytes));
    }
    let data = r.position.div_ceil(alignment).saturating_mul(alignment);
    for (name, offset, bytes) in extents {
        let end = data.checked_add(offset).and_then(|s| s.checked_add(bytes));
        if end.is_none_or(|end| end > size) {
            return Err(format!(
                "tensor `{name}` ({bytes} bytes at offset {offset}) runs past the end of the file ({size} bytes)"
            ));
        }
    }
    Ok(())
}

/// The tensor types candle reads, by their GGML code (candle's own table is private).
fn ggml_type(code: u32) -> Option<GgmlDType> {
    Some(match code {
        0 => GgmlDType::F32,
        1 => GgmlDType::F16,
        2 => GgmlDType::Q4_0,
        3 => GgmlDType::Q4_1,
        6 => GgmlDType::Q5_0,
        7 => GgmlDType::Q5_1,
        8 => GgmlDType::Q8_0,
        9 => GgmlDType::Q8_1,
        10 => GgmlDType::Q2K,
        11 => GgmlDType::Q3K,
        12 => GgmlDType::Q4K,
        13 => GgmlDType::Q5K,
        14 => GgmlDType::Q6K,
        15 => GgmlDType::Q8K,
        30 => GgmlDType::BF16,
        _ => return None,
    })
}

/// Reads little-endian fields, never past the end of the file.
struct Walker<'a, R> {
    reader: &'a mut R,
    size: u64,
    position: u64,
    /// Lengths and counts are u64 (GGUF 2 and 3) rather than u32 (GGUF 1).
    wide: bool,
}

impl<R: Read + Seek> Walker<'_, R> {
    fn remaining(&self) -> u64 {
        self.size.saturating_sub(self.position)
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut buffer = [0u8; N];
        self.reader
            .read_exact(&mut buffer)
            .map_err(|_| "the header is cut short".to_string())?;
        self.position += N as u64;
        Ok(buffer)
    }

    fn u32(&mut self) -> Result<u32, String> {
        self.bytes::<4>().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, String> {
        self.bytes::<8>().map(u64::from_le_bytes)
    }

    fn length(&mut self) -> Result<u64, String> {
        if self.wide {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }

    fn skip(&mut self, n: u64) -> Result<(), String> {
        if n > self.remaining() {
            return Err("the header is cut short".into());
        }
        let offset = i64::try_from(n).map_err(|_| "the header is cut short".to_string())?;
        self.reader
            .seek(SeekFrom::Current(offset))
            .map_err(|e| e.to_string())?;
        self.position += n;
        Ok(())
    }

    fn string_length(&mut self) -> Result<u64, String> {
        let length = self.length()?;
        if length > MAX_STRING || length > self.remaining() {
            return Err(format!(
                "a string of {length} bytes (at most {MAX_STRING}, and {} left in the file)",
                self.remaining()
            ));
        }
        Ok(length)
    }

    fn string(&mut self) -> Result<String, String> {
        let length = self.string_length()?;
        let mut text = Vec::new();
        (&mut *self.reader)
            .take(length)
            .read_to_end(&mut text)
            .map_err(|e| e.to_string())?;
        if text.len() as u64 != length {
            return Err("the header is cut short".into());
        }
        self.position += length;
        Ok(String::from_utf8_lossy(&text).into_owned())
    }

    /// An unsigned integer of metadata type `kind` (0 u8, 2 u16, 4 u32, 10 u64).
    fn unsigned(&mut self, kind: u32) -> Result<u64, String> {
        Ok(match kind {
            0 => u64::from(self.bytes::<1>()?[0]),
            2 => u64::from(u16::from_le_bytes(self.bytes::<2>()?)),
            4 => u64::from(self.u32()?),
            _ => self.u64()?,
        })
    }

    /// Skips one metadata value of type `kind`, checking lengths against the file.
    fn skip_value(&mut self, kind: u32, depth: u32) -> Result<(), String> {
        match kind {
            0 | 1 | 7 => self.skip(1),
            2 | 3 => self.skip(2),
            4..=6 => self.skip(4),
            10..=12 => self.skip(8),
            8 => {
                let length = self.string_length()?;
                self.skip(length)
            }
            9 => {
                if depth >= MAX_NESTING {
                    return Err(format!("metadata arrays nested deeper than {MAX_NESTING}"));
                }
                let element = self.u32()?;
                let count = self.length()?;
                let smallest = match element {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10..=12 => 8,
                    9 => 12,
                    other => return Err(format!("unknown metadata type {other}")),
                };
                if count > MAX_ARRAY || count.saturating_mul(smallest) > self.remaining() {
                    return Err(format!(
                        "a metadata array of {count} elements (at most {MAX_ARRAY}, and {} bytes left in the file)",
                        self.remaining()
                    ));
                }
                match element {
                    8 | 9 => (0..count).try_for_each(|_| self.skip_value(element, depth + 1)),
                    _ => self.skip(count * smallest),
                }
            }
            other => Err(format!("unknown metadata type {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GGUF 3 header: metadata (key, type, value bytes) and tensors (name, dims, type,
    /// offset), then `data` bytes at 32-byte alignment.
    fn gguf(
        metadata: &[(&str, u32, Vec<u8>)],
        tensors: &[(&str, &[u64], u32, u64)],
        data: usize,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(MAGIC.to_le_bytes());
        out.extend(3u32.to_le_bytes());
        out.extend((tensors.len() as u64).to_le_bytes());
        out.extend((metadata.len() as u64).to_le_bytes());
        let string = |out: &mut Vec<u8>, s: &str| {
            out.extend((s.len() as u64).to_le_bytes());
            out.extend(s.as_bytes());
        };
        for (key, kind, value) in metadata {
            string(&mut out, key);
            out.extend(kind.to_le_bytes());
            out.extend(value);
        }
        for (name, dims, dtype, offset) in tensors {
            string(&mut out, name);
            out.extend((dims.len() as u32).to_le_bytes());
            for d in *dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(dtype.to_le_bytes());
            out.extend(offset.to_le_bytes());
        }
        out.resize(out.len().div_ceil(32) * 32 + data, 0);
        out
    }

    fn checked(bytes: &[u8]) -> Result<(), String> {
        check(&mut std::io::Cursor::new(bytes), bytes.len() as u64)
    }

    fn text(s: &str) -> Vec<u8> {
        let mut v = (s.len() as u64).to_le_bytes().to_vec();
        v.extend(s.as_bytes());
        v
    }

    #[test]
    fn a_well_formed_header_passes() {
        let file = gguf(
            &[
                ("general.architecture", 8, text("llama")),
                ("llama.block_count", 4, 1u32.to_le_bytes().to_vec()),
            ],
            &[("w", &[4, 2], 0, 0)],
            32,
        );
        assert_eq!(checked(&file), Ok(()));
    }

    #[test]
    fn alignment_zero_is_refused() {
        // candle 0.11 divides by the alignment: 0 panicked before this check.
        let file = gguf(
            &[("general.alignment", 4, 0u32.to_le_bytes().to_vec())],
            &[],
            0,
        );
        assert!(checked(&file)
            .unwrap_err()
            .contains("general.alignment = 0"));
        let file = gguf(
            &[("general.alignment", 4, 24u32.to_le_bytes().to_vec())],
            &[],
            0,
        );
        assert!(checked(&file).is_err());
    }

    #[test]
    fn huge_declarations_are_refused_before_allocation() {
        let mut file = gguf(&[], &[], 0);
        file[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(checked(&file).unwrap_err().contains("tensors"));
        let file = gguf(&[], &[("w", &[1 << 30, 1 << 30, 1 << 30], 0, 0)], 0);
        assert!(checked(&file).unwrap_err().contains("elements"));
        let file = gguf(&[], &[("w", &[1024, 1024], 0, 0)], 64);
        assert!(checked(&file).unwrap_err().contains("past the end"));
        let file = gguf(
            &[
                ("general.architecture", 8, text("llama")),
                ("llama.block_count", 4, 5000u32.to_le_bytes().to_vec()),
            ],
            &[("w", &[8], 0, 0)],
            32,
        );
        assert!(checked(&file).unwrap_err().contains("block_count = 5000"));
        // A string longer than what is left of the file.
        let mut long = (1u64 << 20).to_le_bytes().to_vec();
        long.extend(b"abc");
        let file = gguf(&[("k", 8, long)], &[], 0);
        assert!(checked(&file).unwrap_err().contains("string"));
        // An array of 2^30 u64.
        let mut array = 10u32.to_le_bytes().to_vec();
        array.extend((1u64 << 30).to_le_bytes());
        let file = gguf(&[("k", 9, array)], &[], 0);
        assert!(checked(&file).unwrap_err().contains("array"));
    }

    #[test]
    fn truncation_anywhere_is_an_error_not_a_panic() {
        let file = gguf(
            &[
                ("general.architecture", 8, text("llama")),
                ("tokens", 9, {
                    let mut v = 8u32.to_le_bytes().to_vec();
                    v.extend(2u64.to_le_bytes());
                    v.extend(text("a"));
                    v.extend(text("bc"));
                    v
                }),
            ],
            &[("w", &[4, 2], 0, 0)],
            32,
        );
        for cut in 0..file.len() - 32 {
            assert!(checked(&file[..cut]).is_err(), "cut at {cut}");
        }
    }

    /// Seeded byte flips, insertions and cuts of a well-formed header (a smoke test of what
    /// the fuzz target `gguf_header` explores at length): an error or Ok, never a panic.
    #[test]
    fn mutated_headers_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut array = 8u32.to_le_bytes().to_vec();
        array.extend(3u64.to_le_bytes());
        for word in ["<s>", "a", "bc"] {
            array.extend(text(word));
        }
        let file = gguf(
            &[
                ("general.architecture", 8, text("llama")),
                ("general.alignment", 4, 32u32.to_le_bytes().to_vec()),
                ("llama.block_count", 4, 1u32.to_le_bytes().to_vec()),
                ("tokenizer.ggml.tokens", 9, array),
            ],
            &[("w", &[4, 2], 0, 0), ("q", &[32], 2, 32)],
            64,
        );
        assert_eq!(checked(&file), Ok(()));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
        for _ in 0..20_000 {
            let mut bytes = file.clone();
            for _ in 0..rng.gen_range(1..6) {
                let i = rng.gen_range(0..bytes.len());
                match rng.gen_range(0..4) {
                    0 => bytes[i] = rng.gen(),
                    1 => bytes[i] ^= 1 << rng.gen_range(0..8),
                    2 => bytes.insert(i, rng.gen()),
                    _ => bytes.truncate(i.max(1)),
                }
            }
            let _ = checked(&bytes);
        }
    }

    /// The real test model's header passes (when the models are fetched).
    #[test]
    fn the_smollm2_gguf_passes() {
        let dir = fixtures::models();
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
            panic!("{}: {e}: run scripts/fetch-models.sh first", dir.display())
        });
        let mut checked = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "gguf") {
                assert_eq!(check_file(&path), Ok(()), "{}", path.display());
                checked += 1;
            }
        }
        assert!(
            checked > 0,
            "no GGUF file in {}: run scripts/fetch-models.sh first",
            dir.display()
        );
    }
}
