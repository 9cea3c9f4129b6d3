//! Measures, on real GGUF weights, `x W^T` three ways for batches of 1 to 4,096 rows: candle's
//! quantized matmul (activations quantized to Q8 on the fly), dequantizing the weight to f32
//! just before a gemm, and a weight dequantized once at load (the f32 mode's cost per call).
//!
//! cargo run --release -p runners --example quantized_matmul -- FILE.gguf [TENSOR...]
use candle_core::quantized::{gguf_file, QMatMul};
use candle_core::{Device, Module, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: quantized_matmul FILE.gguf [TENSOR...]")?;
    let mut names: Vec<String> = args.collect();
    if names.is_empty() {
        names = [
            "blk.0.ffn_up.weight",
            "blk.0.ffn_down.weight",
            "blk.0.attn_q.weight",
        ]
        .map(String::from)
        .to_vec();
    }
    let dev = Device::Cpu;
    let mut file = std::fs::File::open(&path)?;
    let content = gguf_file::Content::read(&mut file)?;
    for name in &names {
        let q = content.tensor(&mut file, name, &dev)?;
        let (n, k) = q.shape().dims2()?;
        let dtype = q.dtype();
        let dense = q.dequantize(&dev)?;
        let wt = dense.t()?.contiguous()?;
        let qm = QMatMul::from_qtensor(q)?;
        let QMatMul::QTensor(qt) = &qm else {
            return Err("not kept quantized".into());
        };
        let data = qt.data()?;
        let row_bytes = data.len() / n;
        let head = QMatMul::from_qtensor(candle_core::quantized::ggml_file::qtensor_from_ggml(
            dtype,
            &data[..(n - 1) * row_bytes],
            vec![n - 1, k],
            &dev,
        )?)?;
        let tail = QMatMul::from_qtensor(candle_core::quantized::ggml_file::qtensor_from_ggml(
            dtype,
            &data[(n - 1) * row_bytes..],
            vec![1, k],
            &dev,
        )?)?;
        for m in [1usize, 4, 16, 64, 256, 1024, 4096] {
            let x = Tensor::randn(0f32, 1.0, (m, k), &dev)?;
            let reps = (4096 / m).clamp(3, 50);
            let time = |f: &dyn Fn() -> candle_core::Result<Tensor>| -> candle_core::Result<f64> {
                f()?;
                let start = std::time::Instant::now();
                for _ in 0..reps {
                    f()?;
                }
                Ok(start.elapsed().as_secs_f64() * 1e3 / reps as f64)
            };
            let t_q = time(&|| qm.forward(&x))?;
            // The same blocks as two matrices of n - 1 and 1 rows: n - 1 is no multiple of 16,
            // so candle keeps no repacked copy (its x86 tiles hold 16 rows).
            let t_split = time(&|| Tensor::cat(&[head.forward(&x)?, tail.forward(&x)?], 1))?;
            let t_deq = time(&|| x.matmul(&qt.dequantize(&dev)?.t()?))?;
            let t_dense = time(&|| x.matmul(&wt))?;
            let yq = qm.forward(&x)?;
            let yd = x.matmul(&wt)?;
            let err = (yq - &yd)?.abs()?.max_all()?.to_scalar::<f32>()?;
            let scale = yd.abs()?.max_all()?.to_scalar::<f32>()?;
            println!(
                "{name} {dtype:?} ({n}x{k}) m={m:5}: qmatmul {t_q:8.2} ms, without repacked copy {t_split:8.2} ms, dequantize+gemm {t_deq:8.2} ms, dense {t_dense:8.2} ms; max |q - dense| {err:.2e} of {scale:.1}"
            );
        }
    }
    Ok(())
}
