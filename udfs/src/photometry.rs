//! Flux ↔ magnitude: `flux_to_mag(flux, zp)`, `mag_to_flux(mag, zp)`.
//!
//! `mag = zp - 2.5 log10(flux)`; fluxes in the units the zero point refers to (ADU for the
//! catalog's raw fluxes). A non-positive or non-finite flux has no magnitude (NULL).

use crate::args::{OutF64, f64_args, map_rows};
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// Magnitude of `flux` with zero point `zp`, or `None` when flux ≤ 0 or not finite.
#[inline]
pub fn flux_to_mag(flux: f64, zp: f64) -> Option<f64> {
    (flux > 0.0 && flux.is_finite()).then(|| zp - 2.5 * flux.log10())
}

/// Flux of magnitude `mag` with zero point `zp`.
#[inline]
pub fn mag_to_flux(mag: f64, zp: f64) -> Option<f64> {
    let f = 10f64.powf(0.4 * (zp - mag));
    f.is_finite().then_some(f)
}

macro_rules! binary_udf {
    ($ty:ident, $sql:literal, $f:path) => {
        #[derive(Debug, PartialEq, Eq, Hash)]
        pub struct $ty {
            signature: Signature,
        }
        impl $ty {
            pub fn new() -> Self {
                $ty {
                    signature: Signature::uniform(
                        2,
                        vec![DataType::Float64],
                        Volatility::Immutable,
                    ),
                }
            }
        }
        impl Default for $ty {
            fn default() -> Self {
                Self::new()
            }
        }
        impl ScalarUDFImpl for $ty {
            fn name(&self) -> &str {
                $sql
            }
            fn signature(&self) -> &Signature {
                &self.signature
            }
            fn return_type(&self, _: &[DataType]) -> Result<DataType> {
                Ok(DataType::Float64)
            }
            fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
                let a = f64_args(self.name(), &args.args)?;
                Ok(map_rows::<2, OutF64>(&a, args.number_rows, |[x, zp]| {
                    $f(x, zp)
                }))
            }
        }
    };
}

binary_udf!(FluxToMag, "flux_to_mag", flux_to_mag);
binary_udf!(MagToFlux, "mag_to_flux", mag_to_flux);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_edges() {
        assert_eq!(flux_to_mag(1.0, 25.0), Some(25.0));
        assert!((flux_to_mag(100.0, 25.0).unwrap() - 20.0).abs() < 1e-12);
        assert_eq!(flux_to_mag(0.0, 25.0), None);
        assert_eq!(flux_to_mag(-3.0, 25.0), None);
        let m = flux_to_mag(1234.5, 27.1).unwrap();
        assert!((mag_to_flux(m, 27.1).unwrap() - 1234.5).abs() < 1e-9);
    }
}
