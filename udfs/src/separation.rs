//! Angular separation: `ang_sep_deg(ra1, dec1, ra2, dec2)` in degrees.

use crate::args::{OutF64, f64_args, map_rows};
use crate::sphere;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use std::collections::HashMap;
use std::sync::Arc;

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
    /// Carries its unit (and UCD), so that `in_unit(ang_sep_deg(...), 'arcsec')` converts and
    /// a VOTable result says what the number is.
    fn return_field_from_args(&self, _: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(
            Field::new(self.name(), DataType::Float64, true).with_metadata(HashMap::from([
                ("unit".to_string(), "deg".to_string()),
                ("ucd".to_string(), "pos.angDistance".to_string()),
            ])),
        ))
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
