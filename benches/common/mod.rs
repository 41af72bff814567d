//! Timing helpers shared by the benches that print JSON for the Python drivers.

use std::time::Instant;

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median seconds of `reps` calls of `f` (after one warm-up call) and the last result.
pub fn time<T>(reps: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    time_consuming(reps, || (), |()| f())
}

/// Like [`time`], with a fresh input from `setup` for each call, not timed (e.g. the image
/// buffer extract consumes: ingest moves the decoded image in, no copy).
#[allow(dead_code)] // not every bench consumes its input
pub fn time_consuming<I, T>(
    reps: usize,
    setup: impl Fn() -> I,
    mut f: impl FnMut(I) -> T,
) -> (f64, T) {
    let mut out = f(setup());
    let mut t = Vec::new();
    for _ in 0..reps {
        let input = setup();
        let t0 = Instant::now();
        out = f(input);
        t.push(t0.elapsed().as_secs_f64());
    }
    (median(t), out)
}
