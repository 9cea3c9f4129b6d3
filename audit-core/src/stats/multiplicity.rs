//! Multiplicity corrections: Holm (family-wise error) and Benjamini–Hochberg (false discovery
//! rate) adjusted p-values, NaN-safe.

/// Indices of the non-NaN p-values, sorted by p ascending (stable, so ties keep input order).
fn sorted_finite(p_values: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p_values.len())
        .filter(|&i| !p_values[i].is_nan())
        .collect();
    order.sort_by(|&i, &j| p_values[i].total_cmp(&p_values[j]));
    order
}

/// Holm step-down adjusted p-values (as statsmodels `multipletests(method = "holm")`): with the
/// `m` p-values sorted ascending, `p̃(i) = min(1, max_{j ≤ i} (m − j + 1) p(j))`.
///
/// NaN p-values stay NaN and are not counted in `m`; an empty slice gives an empty vector.
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let order = sorted_finite(p_values);
    let m = order.len();
    let mut adjusted = vec![f64::NAN; p_values.len()];
    let mut running = 0.0_f64;
    for (rank, &i) in order.iter().enumerate() {
        let value = ((m - rank) as f64 * p_values[i]).min(1.0);
        running = running.max(value);
        adjusted[i] = running;
    }
    adjusted
}

/// Benjamini–Hochberg step-up adjusted p-values (as statsmodels `multipletests(method =
/// "fdr_bh")`): with the `m` p-values sorted ascending, `p̃(i) = min(1, min_{j ≥ i} m p(j) / j)`.
///
/// NaN p-values stay NaN and are not counted in `m`; an empty slice gives an empty vector.
pub fn benjamini_hochberg(p_values: &[f64]) -> Vec<f64> {
    let order = sorted_finite(p_values);
    let m = order.len();
    let mut adjusted = vec![f64::NAN; p_values.len()];
    let mut running = f64::INFINITY;
    for (rank, &i) in order.iter().enumerate().rev() {
        let value = p_values[i] * m as f64 / (rank + 1) as f64;
        running = running.min(value);
        adjusted[i] = running.min(1.0);
    }
    adjusted
}
