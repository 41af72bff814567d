//! HEALPix (Górski et al. 2005) indices via `cdshealpix`: `healpix_nested(order, ra, dec)`,
//! `healpix_ring(order, ra, dec)` and `healpix_29(ra, dec)` (the HATS `_healpix_29` index,
//! NESTED at order 29).

use crate::args::{OutI64, f64_args, map_rows};
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// The deepest HEALPix order an `i64` index can hold (cdshealpix's limit too).
pub const MAX_ORDER: u8 = 29;

/// NESTED index of (ra, dec) in degrees at `order`, or `None` for a non-finite position,
/// |dec| > 90 or an order outside 0..=29. RA is taken modulo 360.
#[inline]
pub fn nested_index(order: u8, ra_deg: f64, dec_deg: f64) -> Option<i64> {
    if order > MAX_ORDER || !ra_deg.is_finite() || !dec_deg.is_finite() || dec_deg.abs() > 90.0 {
        return None;
    }
    let lon = ra_deg.rem_euclid(360.0).to_radians();
    let lat = dec_deg.to_radians();
    Some(cdshealpix::nested::hash(order, lon, lat) as i64)
}

/// `healpix_nested(order, ra, dec) -> Int64`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HealpixNested {
    signature: Signature,
}

impl HealpixNested {
    pub fn new() -> Self {
        HealpixNested {
            signature: Signature::uniform(3, vec![DataType::Float64], Volatility::Immutable),
        }
    }
}

impl Default for HealpixNested {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for HealpixNested {
    fn name(&self) -> &str {
        "healpix_nested"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = f64_args(self.name(), &args.args)?;
        Ok(map_rows::<3, OutI64>(
            &a,
            args.number_rows,
            |[order, ra, dec]| {
                if order.fract() != 0.0 || !(0.0..=MAX_ORDER as f64).contains(&order) {
                    return None;
                }
                nested_index(order as u8, ra, dec)
            },
        ))
    }
}

/// RING index of (ra, dec) in degrees at `order` (NSIDE = 2^order), with the same validity
/// rules as [`nested_index`].
#[inline]
pub fn ring_index(order: u8, ra_deg: f64, dec_deg: f64) -> Option<i64> {
    if order > MAX_ORDER || !ra_deg.is_finite() || !dec_deg.is_finite() || dec_deg.abs() > 90.0 {
        return None;
    }
    let lon = ra_deg.rem_euclid(360.0).to_radians();
    let lat = dec_deg.to_radians();
    Some(cdshealpix::ring::hash(1u32 << order, lon, lat) as i64)
}

/// `healpix_ring(order, ra, dec) -> Int64`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HealpixRing {
    signature: Signature,
}

impl HealpixRing {
    pub fn new() -> Self {
        HealpixRing {
            signature: Signature::uniform(3, vec![DataType::Float64], Volatility::Immutable),
        }
    }
}

impl Default for HealpixRing {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for HealpixRing {
    fn name(&self) -> &str {
        "healpix_ring"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = f64_args(self.name(), &args.args)?;
        Ok(map_rows::<3, OutI64>(
            &a,
            args.number_rows,
            |[order, ra, dec]| {
                if order.fract() != 0.0 || !(0.0..=MAX_ORDER as f64).contains(&order) {
                    return None;
                }
                ring_index(order as u8, ra, dec)
            },
        ))
    }
}

/// `healpix_29(ra, dec) -> Int64`: the HATS spatial index (NESTED, order 29).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Healpix29 {
    signature: Signature,
}

impl Healpix29 {
    pub fn new() -> Self {
        Healpix29 {
            signature: Signature::uniform(2, vec![DataType::Float64], Volatility::Immutable),
        }
    }
}

impl Default for Healpix29 {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for Healpix29 {
    fn name(&self) -> &str {
        "healpix_29"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = f64_args(self.name(), &args.args)?;
        Ok(map_rows::<2, OutI64>(&a, args.number_rows, |[ra, dec]| {
            nested_index(MAX_ORDER, ra, dec)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_indices() {
        // Order 0 has 12 base pixels; the equatorial ones, 4..=7, are centred on
        // longitudes 0, 90, 180 and 270 degrees.
        assert_eq!(nested_index(0, 0.0, 0.0), Some(4));
        assert_eq!(nested_index(0, 90.0, 0.0), Some(5));
        assert_eq!(nested_index(0, 270.0, 1.0), Some(7));
        // The north pole lies in base pixels 0..=3, the south pole in 8..=11.
        assert!(nested_index(0, 10.0, 89.99).unwrap() < 4);
        assert!(nested_index(0, 10.0, -89.99).unwrap() >= 8);
        // Order 29 of a point refines its order-10 index by 2*(29-10) bits.
        let i29 = nested_index(29, 123.4, -45.6).unwrap();
        let i10 = nested_index(10, 123.4, -45.6).unwrap();
        assert_eq!(i29 >> 38, i10);
        assert_eq!(nested_index(30, 0.0, 0.0), None);
        assert_eq!(nested_index(5, f64::NAN, 0.0), None);
        assert_eq!(nested_index(5, 0.0, 91.0), None);
        assert_eq!(nested_index(5, -10.0, 0.0), nested_index(5, 350.0, 0.0));
    }
}
