//! Frame conversions between ICRS (ra, dec) and galactic (l, b) or ecliptic (λ, β; mean
//! ecliptic and equinox of J2000), degrees, with astropy's definitions ([`crate::frames`]):
//!
//! | function | result |
//! | --- | --- |
//! | `galactic_l(ra, dec)`, `galactic_b(ra, dec)` | galactic longitude, latitude |
//! | `galactic_to_ra(l, b)`, `galactic_to_dec(l, b)` | ICRS of a galactic position |
//! | `ecliptic_lon(ra, dec)`, `ecliptic_lat(ra, dec)` | ecliptic longitude, latitude |
//! | `ecliptic_to_ra(lon, lat)`, `ecliptic_to_dec(lon, lat)` | ICRS of an ecliptic position |

use crate::args::{OutF64, f64_args, map_rows};
use crate::frames;
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// A two-argument coordinate function (degrees in, degrees out; NULL for invalid input).
/// Functions are equal when their names are (each name has one conversion).
#[derive(Debug)]
pub struct CoordFn {
    name: &'static str,
    signature: Signature,
    f: fn(f64, f64) -> (f64, f64),
    /// Which component of `f`'s result: 0 = longitude, 1 = latitude.
    component: usize,
}

impl PartialEq for CoordFn {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for CoordFn {}

impl std::hash::Hash for CoordFn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl CoordFn {
    fn new(name: &'static str, f: fn(f64, f64) -> (f64, f64), component: usize) -> Self {
        CoordFn {
            name,
            signature: Signature::uniform(2, vec![DataType::Float64], Volatility::Immutable),
            f,
            component,
        }
    }
}

impl ScalarUDFImpl for CoordFn {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = f64_args(self.name, &args.args)?;
        let (f, c) = (self.f, self.component);
        Ok(map_rows::<2, OutF64>(&a, args.number_rows, |[lon, lat]| {
            if !lon.is_finite() || !lat.is_finite() || lat.abs() > 90.0 {
                return None;
            }
            let r = f(lon, lat);
            let v = if c == 0 { r.0 } else { r.1 };
            v.is_finite().then_some(v)
        }))
    }
}

/// The eight conversion functions.
pub fn all() -> Vec<CoordFn> {
    vec![
        CoordFn::new("galactic_l", frames::icrs_to_galactic, 0),
        CoordFn::new("galactic_b", frames::icrs_to_galactic, 1),
        CoordFn::new("galactic_to_ra", frames::galactic_to_icrs, 0),
        CoordFn::new("galactic_to_dec", frames::galactic_to_icrs, 1),
        CoordFn::new("ecliptic_lon", frames::icrs_to_ecliptic, 0),
        CoordFn::new("ecliptic_lat", frames::icrs_to_ecliptic, 1),
        CoordFn::new("ecliptic_to_ra", frames::ecliptic_to_icrs, 0),
        CoordFn::new("ecliptic_to_dec", frames::ecliptic_to_icrs, 1),
    ]
}
