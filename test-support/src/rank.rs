//! The nearest-rank quantile, for the figures the tests and demos print
//! and check.

/// The `q` quantile (0 to 1) of `sorted` by nearest rank: the smallest
/// value with at least `q` of all values at or below it. `sorted` is not
/// empty.
pub fn nearest_rank<T: Copy>(sorted: &[T], q: f64) -> T {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
