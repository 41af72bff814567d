//! Cone containment: `cone_contains(ra, dec, ra0, dec0, radius_deg)`.

use crate::args::{OutBool, dense_f64, f64_args, map_rows};
use crate::sphere::Cone;
use arrow::array::BooleanArray;
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use std::sync::Arc;

/// `cone_contains(ra, dec, ra0, dec0, radius_deg) -> Boolean`: true when (ra, dec) is within
/// `radius_deg` of the centre (ra0, dec0), all in degrees. Correct across RA = 0/360 and at the
/// poles (it compares unit vectors). With a constant centre and radius, the test costs one
/// dot product per row.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ConeContains {
    signature: Signature,
}

impl ConeContains {
    pub fn new() -> Self {
        ConeContains {
            signature: Signature::uniform(5, vec![DataType::Float64], Volatility::Immutable),
        }
    }
}

impl Default for ConeContains {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for ConeContains {
    fn name(&self) -> &str {
        "cone_contains"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = f64_args(self.name(), &args.args)?;
        // Fast path: constant cone, dense coordinate columns.
        if let (Some(Some(ra0)), Some(Some(dec0)), Some(Some(r))) =
            (a[2].scalar(), a[3].scalar(), a[4].scalar())
            && let (Some(ra), Some(dec)) = (dense_f64(&a[0]), dense_f64(&a[1]))
        {
            let cone = Cone::new(ra0, dec0, r);
            let out: BooleanArray = ra
                .iter()
                .zip(dec)
                .map(|(&ra, &dec)| Some(cone.contains(ra, dec)))
                .collect();
            return Ok(ColumnarValue::Array(Arc::new(out)));
        }
        Ok(map_rows::<5, OutBool>(
            &a,
            args.number_rows,
            |[ra, dec, ra0, dec0, r]| Some(Cone::new(ra0, dec0, r).contains(ra, dec)),
        ))
    }
}
