//! Measures candle CPU matmul time for row-major weights used as `w.t()` against weights stored
//! transposed (gemm packs the first layout on every call).
use candle_core::{Device, Tensor};
fn main() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    for (m, k, n) in [
        (16usize, 576usize, 1536usize),
        (16, 576, 49152),
        (2048, 576, 1536),
    ] {
        let x = Tensor::randn(0f32, 1.0, (m, k), &dev)?;
        let w = Tensor::randn(0f32, 1.0, (n, k), &dev)?;
        let wt = w.t()?.contiguous()?;
        for (name, rhs) in [("w.t()", w.t()?), ("wt", wt.clone())] {
            let _ = x.matmul(&rhs)?;
            let start = std::time::Instant::now();
            for _ in 0..10 {
                let _ = x.matmul(&rhs)?;
            }
            println!(
                "m={m} k={k} n={n} {name}: {:.2} ms",
                start.elapsed().as_secs_f64() * 100.0
            );
        }
    }
    Ok(())
}
