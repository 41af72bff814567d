//! Angular separation: `ang_sep_deg(ra1, dec1, ra2, dec2)` in degrees.

use crate::args::{OutF64, f64_args, map_rows};
use crate::sphere;
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// `ang_sep_deg(ra1, dec1, ra2, dec2) -> Float64`: great-circle distance in degrees between
/// two positions given in degrees (Vincenty formula; exact across the RA wrap and at the poles).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AngSepDeg {
    signature: Signature,
}

impl AngSepDeg {
    pub fn new() -> Self {
        AngSepDeg {
            signature: Signature::uniform(4, vec![DataType::Float64], Volatility::Immutable),
        }
    }
}

impl Default for AngSepDeg {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for AngSepDeg {
    fn name(&self) -> &str {
        "ang_sep_deg"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = f64_args(self.name(), &args.args)?;
        Ok(map_rows::<4, OutF64>(
            &a,
            args.number_rows,
            |[r1, d1, r2, d2]| Some(sphere::ang_sep_deg(r1, d1, r2, d2)),
        ))
    }
}
