//! Box containment: `box_contains(ra, dec, ra_c, dec_c, width, height)`, the ADQL `BOX`
//! (coordinate box around a centre; wraps at RA 0/360 and continues over the poles, see
//! [`crate::sphere::SkyBox`]). Degrees.

use crate::args::{OutBool, dense_f64, f64_args, map_rows};
use crate::sphere::SkyBox;
use arrow::array::BooleanArray;
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use std::sync::Arc;

/// `box_contains(ra, dec, ra_c, dec_c, width, height) -> Boolean`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BoxContains {
    signature: Signature,
}

impl BoxContains {
    pub fn new() -> Self {
        BoxContains {
            signature: Signature::uniform(6, vec![DataType::Float64], Volatility::Immutable),
        }
    }
}

impl Default for BoxContains {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for BoxContains {
    fn name(&self) -> &str {
        "box_contains"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = f64_args(self.name(), &args.args)?;
        let consts: Option<Vec<f64>> = a[2..].iter().map(|x| x.scalar().flatten()).collect();
        if let (Some(c), Some(ra), Some(dec)) = (consts, dense_f64(&a[0]), dense_f64(&a[1])) {
            let b = SkyBox {
                ra_c: c[0],
                dec_c: c[1],
                width: c[2],
                height: c[3],
            };
            let out: BooleanArray = ra
                .iter()
                .zip(dec)
                .map(|(&r, &d)| Some(b.contains(r, d)))
                .collect();
            return Ok(ColumnarValue::Array(Arc::new(out)));
        }
        Ok(map_rows::<6, OutBool>(
            &a,
            args.number_rows,
            |[ra, dec, ra_c, dec_c, width, height]| {
                Some(
                    SkyBox {
                        ra_c,
                        dec_c,
                        width,
                        height,
                    }
                    .contains(ra, dec),
                )
            },
        ))
    }
}
