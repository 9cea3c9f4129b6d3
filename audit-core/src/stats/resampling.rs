//! Seeded random streams for resampling: one ChaCha8 stream per `(seed, resample index)`, so a
//! resample's draws never depend on which thread computes it or in what order.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::distributions::binomial_pmf;

/// The generator of resample `index` under `seed`: ChaCha8 keyed by the seed, on stream `index`.
pub(crate) fn stream(seed: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    rng
}

/// A uniform draw in `[0, bound)` without modulo bias (Lemire's nearly divisionless
/// multiply-and-reject method), from 32 random bits when the bound fits (half the generator's
/// work) and 64 otherwise. The division that sets the rejection threshold runs only when the
/// low half of the product falls below the bound, which is rare for small bounds.
pub(crate) fn below(rng: &mut ChaCha8Rng, bound: u64) -> u64 {
    if bound <= 1 {
        return 0;
    }
    if let Ok(bound32) = u32::try_from(bound) {
        let mut product = u64::from(rng.next_u32()) * u64::from(bound32);
        if (product as u32) < bound32 {
            let threshold = bound32.wrapping_neg() % bound32;
            while (product as u32) < threshold {
                product = u64::from(rng.next_u32()) * u64::from(bound32);
            }
        }
        return product >> 32;
    }
    let mut product = u128::from(rng.next_u64()) * u128::from(bound);
    if (product as u64) < bound {
        let threshold = bound.wrapping_neg() % bound;
        while (product as u64) < threshold {
            product = u128::from(rng.next_u64()) * u128::from(bound);
        }
    }
    (product >> 64) as u64
}

/// Uniform indices in `[0, bound)` for one resample, `bound < 2³²`, the same sequence as
/// repeated [`below`] calls on the same generator: the generator fills a block
/// of 32-bit words at a time (cheaper than one call per word) and each word becomes an index by
/// Lemire's multiply-and-reject method. The sequence depends only on the stream, not on threads.
pub(crate) struct IndexStream {
    rng: ChaCha8Rng,
    words: [u32; 256],
    next: usize,
    bound: u32,
    threshold: u32,
}

impl IndexStream {
    /// Indices below `bound` (at least 1) from `rng`.
    pub(crate) fn new(rng: ChaCha8Rng, bound: u32) -> Self {
        let bound = bound.max(1);
        Self {
            rng,
            words: [0; 256],
            next: 256,
            bound,
            threshold: bound.wrapping_neg() % bound,
        }
    }

    fn word(&mut self) -> u32 {
        if self.next == self.words.len() {
            self.rng.fill(&mut self.words[..]);
            self.next = 0;
        }
        let word = self.words[self.next];
        self.next += 1;
        word
    }

    pub(crate) fn index(&mut self) -> usize {
        loop {
            let product = u64::from(self.word()) * u64::from(self.bound);
            if (product as u32) >= self.threshold {
                return (product >> 32) as usize;
            }
        }
    }
}

/// A uniform draw in `[0, 1)` with 53 random bits.
pub(crate) fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Exact binomial sampling by inversion of a precomputed distribution table: `Bin(n, p)`'s
/// cumulative probabilities over the range where the probabilities exceed 1e-25 times the
/// mode's (the mass left out is below the 2⁻⁵³ resolution of the uniform draw). Written by hand
/// because `rand` 0.8 has no binomial and inversion of an accurate table is exact and, for many
/// draws from one distribution, faster than BTPE.
pub(crate) struct BinomialSampler {
    offset: u64,
    cumulative: Vec<f64>,
}

impl BinomialSampler {
    pub(crate) fn new(n: u64, p: f64) -> Self {
        if n == 0 || p <= 0.0 {
            return Self {
                offset: 0,
                cumulative: vec![1.0],
            };
        }
        if p >= 1.0 {
            return Self {
                offset: n,
                cumulative: vec![1.0],
            };
        }
        let mode = ((n as f64 + 1.0) * p).floor().min(n as f64) as u64;
        const CUTOFF: f64 = 1e-25;
        let mode_mass = binomial_pmf(mode, n, p);
        // Walk out from the mode by the pmf ratio until the terms vanish.
        let (nf, q) = (n as f64, 1.0 - p);
        let mut below_terms = Vec::new();
        let mut term = mode_mass;
        let mut k = mode;
        while k > 0 {
            let kf = k as f64;
            term *= kf / (nf - kf + 1.0) * (q / p);
            if term < CUTOFF * mode_mass || term == 0.0 {
                break;
            }
            below_terms.push(term);
            k -= 1;
        }
        let offset = mode - below_terms.len() as u64;
        let mut masses: Vec<f64> = below_terms.into_iter().rev().collect();
        masses.push(mode_mass);
        let mut term = mode_mass;
        let mut k = mode;
        while k < n {
            let kf = k as f64;
            term *= (nf - kf) / (kf + 1.0) * (p / q);
            if term < CUTOFF * mode_mass || term == 0.0 {
                break;
            }
            masses.push(term);
            k += 1;
        }
        let total: f64 = masses.iter().sum();
        let mut running = 0.0;
        let cumulative = masses
            .iter()
            .map(|m| {
                running += m / total;
                running
            })
            .collect();
        Self { offset, cumulative }
    }

    pub(crate) fn sample(&self, rng: &mut ChaCha8Rng) -> u64 {
        let u = unit(rng);
        let index = self.cumulative.partition_point(|&c| c <= u);
        self.offset + index.min(self.cumulative.len() - 1) as u64
    }
}
