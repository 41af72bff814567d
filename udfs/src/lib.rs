//! Astronomy functions for Apache DataFusion.
//!
//! Every function works on Arrow `Float64` arrays (other numeric types are coerced), has a
//! fast path for the common case where the query constants (cone centre, radius, zero point)
//! are scalars, and propagates NULL. Angles are in **degrees** (ICRS unless stated),
//! HEALPix indices are NESTED (Górski et al. 2005) as computed by the `cdshealpix` crate.
//!
//! | function | family file | meaning |
//! | --- | --- | --- |
//! | `ang_sep_deg(ra1, dec1, ra2, dec2)` | `separation.rs` | great-circle distance, degrees (Vincenty formula, exact at 0 and 180°) |
//! | `cone_contains(ra, dec, ra0, dec0, radius_deg)` | `cone.rs` | true when (ra, dec) lies within `radius_deg` of (ra0, dec0) |
//! | `healpix_nested(order, ra, dec)` | `healpix.rs` | NESTED HEALPix index at `order` (0..=29), Int64 |
//! | `healpix_29(ra, dec)` | `healpix.rs` | the HATS spatial index `_healpix_29` |
//! | `flux_to_mag(flux, zp)` / `mag_to_flux(mag, zp)` | `photometry.rs` | `zp - 2.5 log10(flux)`; NULL for flux ≤ 0 |
//!
//! Register them all on a context with [`register_all`]; the crate has no other dependency on
//! astropipe and can serve any DataFusion user.

mod args;
pub mod cone;
pub mod healpix;
pub mod photometry;
pub mod separation;
pub mod sphere;

use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::ScalarUDF;
use std::sync::Arc;

/// Every scalar UDF of this crate.
pub fn all_udfs() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::from(separation::AngSepDeg::new())),
        Arc::new(ScalarUDF::from(cone::ConeContains::new())),
        Arc::new(ScalarUDF::from(healpix::HealpixNested::new())),
        Arc::new(ScalarUDF::from(healpix::Healpix29::new())),
        Arc::new(ScalarUDF::from(photometry::FluxToMag::new())),
        Arc::new(ScalarUDF::from(photometry::MagToFlux::new())),
    ]
}

/// Registers every function of this crate on `registry` (a `SessionContext` or `SessionState`).
pub fn register_all(registry: &mut dyn FunctionRegistry) -> datafusion::error::Result<()> {
    for udf in all_udfs() {
        registry.register_udf(udf)?;
    }
    Ok(())
}
