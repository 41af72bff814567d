//! Polygon containment: `polygon_contains(ra, dec, ra1, dec1, ra2, dec2, ra3, dec3, ...)`:
//! true when (ra, dec) lies inside the spherical polygon with great-circle edges through the
//! vertices (at least three; closed implicitly; either orientation; smaller than a
//! hemisphere). Degrees. See [`crate::sphere::Polygon`].

use crate::args::{F64Arg, dense_f64, f64_args};
use crate::sphere::Polygon;
use arrow::array::BooleanArray;
use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use std::sync::Arc;

/// `polygon_contains(ra, dec, ra1, dec1, ..., raN, decN) -> Boolean`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PolygonContains {
    signature: Signature,
}

impl PolygonContains {
    pub fn new() -> Self {
        PolygonContains {
            signature: Signature::variadic(vec![DataType::Float64], Volatility::Immutable),
        }
    }
}

impl Default for PolygonContains {
    fn default() -> Self {
        Self::new()
    }
}

fn vertices(a: &[F64Arg], row: usize) -> Option<Vec<(f64, f64)>> {
    a[2..]
        .chunks(2)
        .map(|c| Some((c[0].get(row)?, c[1].get(row)?)))
        .collect()
}

impl ScalarUDFImpl for PolygonContains {
    fn name(&self) -> &str {
        "polygon_contains"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if args.len() < 8 || !args.len().is_multiple_of(2) {
            return plan_err!(
                "polygon_contains(ra, dec, ra1, dec1, ra2, dec2, ra3, dec3, ...) takes a point and at least three vertices, got {} arguments",
                args.len()
            );
        }
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = f64_args(self.name(), &args.args)?;
        let n = args.number_rows;
        let constant = a[2..].iter().all(|x| x.scalar().is_some());
        if constant {
            let poly = vertices(&a, 0).and_then(|v| Polygon::new(&v));
            if let (Some(p), Some(ra), Some(dec)) = (&poly, dense_f64(&a[0]), dense_f64(&a[1])) {
                let out: BooleanArray = ra
                    .iter()
                    .zip(dec)
                    .map(|(&r, &d)| Some(p.contains(r, d)))
                    .collect();
                return Ok(ColumnarValue::Array(Arc::new(out)));
            }
            let point = |i: usize| Some((a[0].get(i)?, a[1].get(i)?));
            let eval = |i: usize| match (&poly, point(i)) {
                (Some(p), Some((r, d))) => Some(p.contains(r, d)),
                _ => None,
            };
            if a[0].scalar().is_some() && a[1].scalar().is_some() {
                return Ok(ColumnarValue::Scalar(ScalarValue::Boolean(eval(0))));
            }
            return Ok(ColumnarValue::Array(Arc::new(
                (0..n).map(eval).collect::<BooleanArray>(),
            )));
        }
        let out: BooleanArray = (0..n)
            .map(|i| {
                let p = Polygon::new(&vertices(&a, i)?)?;
                Some(p.contains(a[0].get(i)?, a[1].get(i)?))
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
