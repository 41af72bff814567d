//! ADQL geometry values (DALI 1.1 §3.3: a point is `double[2]` with `xtype="point"`, a circle
//! `double[3]` `xtype="circle"`, a polygon `double[*]` `xtype="polygon"`, all ICRS degrees)
//! and the ADQL functions over them:
//!
//! - `point(ra, dec)`, `circle(ra, dec, radius)`, `polygon(ra1, dec1, ..., raN, decN)` (N ≥ 3)
//!   and `box_polygon(ra, dec, width, height)` (ADQL's BOX as the polygon of its corners);
//!   their Arrow fields carry the `xtype`, which result encoders declare;
//! - `area(g)`: square degrees, as ADQL 2.1 defines it (0 for a point, 2π(1−cos r) for a
//!   circle, the spherical excess for a polygon);
//! - `centroid(g)`: a point (a circle's centre; a polygon's area-weighted centre);
//! - `coordsys(g)`: `'ICRS'`;
//! - `region_contains(g, ra, dec)`: whether the region value `g` (a column such as ObsCore's
//!   `s_region`, or a constructed one) contains the position;
//! - `region_intersects(g1, g2)`: whether two regions overlap (circle/polygon/point, exact for
//!   circles and points, polygons by vertices, edges and distance to the edges);
//! - `in_unit(x, 'unit')`: `x` converted to `unit` from the unit its column declares
//!   (angles: deg, arcmin, arcsec, mas, uas, rad, h; times: s, min, h, d, yr); NULL units
//!   or unknown conversions are an error at planning.
//!
//! The kind of a geometry argument is read from its field's `xtype` (the column's metadata or
//! the constructor's result); without one, a 2-element array is a point, 3 a circle, more a
//! polygon.

use crate::args::{F64Arg, f64_args};
use crate::sphere::{Polygon, ang_sep_deg, unit_vector};
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, FixedSizeListArray, Float64Array, Float64Builder,
    ListBuilder, StringArray,
};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use std::collections::HashMap;
use std::sync::Arc;

/// A geometry value.
#[derive(Debug, Clone, PartialEq)]
pub enum Geometry {
    Point(f64, f64),
    Circle(f64, f64, f64),
    Polygon(Vec<(f64, f64)>),
}

fn xtype_field(name: &str, dt: DataType, xtype: &str) -> FieldRef {
    Arc::new(
        Field::new(name, dt, true)
            .with_metadata(HashMap::from([("xtype".to_string(), xtype.to_string())])),
    )
}

fn fixed(n: i32) -> DataType {
    DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float64, true)), n)
}

fn list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Float64, true)))
}

impl Geometry {
    /// Reads a value given its flat coordinates and its declared kind.
    pub fn from_coords(v: &[f64], xtype: Option<&str>) -> Option<Geometry> {
        if v.iter().any(|x| !x.is_finite()) {
            return None;
        }
        match (xtype, v.len()) {
            (Some("point") | None, 2) => Some(Geometry::Point(v[0], v[1])),
            (Some("circle") | None, 3) => Some(Geometry::Circle(v[0], v[1], v[2])),
            (Some("polygon") | None, n) if n >= 6 && n % 2 == 0 => Some(Geometry::Polygon(
                v.chunks(2).map(|c| (c[0], c[1])).collect(),
            )),
            _ => None,
        }
    }

    /// Square degrees.
    pub fn area_deg2(&self) -> Option<f64> {
        let sr = match self {
            Geometry::Point(..) => 0.0,
            Geometry::Circle(_, _, r) => {
                2.0 * std::f64::consts::PI * (1.0 - r.clamp(0.0, 180.0).to_radians().cos())
            }
            Geometry::Polygon(v) => polygon_area_sr(v)?,
        };
        Some(sr * (180.0 / std::f64::consts::PI).powi(2))
    }

    pub fn centroid(&self) -> Option<(f64, f64)> {
        match self {
            Geometry::Point(a, b) | Geometry::Circle(a, b, _) => Some((*a, *b)),
            Geometry::Polygon(v) => polygon_centroid(v),
        }
    }

    pub fn contains(&self, ra: f64, dec: f64) -> bool {
        match self {
            Geometry::Point(a, b) => ang_sep_deg(*a, *b, ra, dec) == 0.0,
            Geometry::Circle(a, b, r) => ang_sep_deg(*a, *b, ra, dec) <= *r,
            Geometry::Polygon(v) => Polygon::new(v).is_some_and(|p| p.contains(ra, dec)),
        }
    }

    /// Whether two regions overlap.
    pub fn intersects(&self, other: &Geometry) -> bool {
        use Geometry::*;
        match (self, other) {
            (Point(a, b), g) | (g, Point(a, b)) => g.contains(*a, *b),
            (Circle(a, b, r), Circle(c, d, s)) => ang_sep_deg(*a, *b, *c, *d) <= r + s,
            (Circle(a, b, r), Polygon(v)) | (Polygon(v), Circle(a, b, r)) => {
                let poly = Geometry::Polygon(v.clone());
                poly.contains(*a, *b)
                    || v.iter().any(|(x, y)| ang_sep_deg(*a, *b, *x, *y) <= *r)
                    || edges(v).any(|(p, q)| distance_to_arc_deg((*a, *b), p, q) <= *r)
            }
            (Polygon(u), Polygon(v)) => {
                let (pu, pv) = (Geometry::Polygon(u.clone()), Geometry::Polygon(v.clone()));
                u.iter().any(|(a, b)| pv.contains(*a, *b))
                    || v.iter().any(|(a, b)| pu.contains(*a, *b))
                    || edges(u).any(|(p, q)| edges(v).any(|(r, s)| arcs_cross(p, q, r, s)))
            }
        }
    }
}

fn edges(v: &[(f64, f64)]) -> impl Iterator<Item = ((f64, f64), (f64, f64))> + '_ {
    (0..v.len()).map(move |i| (v[i], v[(i + 1) % v.len()]))
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}
fn to_deg(v: [f64; 3]) -> (f64, f64) {
    let n = norm(v);
    let ra = v[1].atan2(v[0]).to_degrees().rem_euclid(360.0);
    let dec = (v[2] / n).clamp(-1.0, 1.0).asin().to_degrees();
    (ra, dec)
}

/// Signed area (steradians) of the triangle a, b, c on the unit sphere (Van Oosterom &
/// Strackee 1983).
fn triangle_sr(a: [f64; 3], b: [f64; 3], c: [f64; 3]) -> f64 {
    let num = dot(a, cross(b, c));
    let den = 1.0 + dot(a, b) + dot(b, c) + dot(c, a);
    2.0 * num.atan2(den)
}

fn polygon_area_sr(v: &[(f64, f64)]) -> Option<f64> {
    if v.len() < 3 {
        return None;
    }
    let p: Vec<[f64; 3]> = v.iter().map(|&(a, d)| unit_vector(a, d)).collect();
    let total: f64 = (1..p.len() - 1)
        .map(|i| triangle_sr(p[0], p[i], p[i + 1]))
        .sum();
    Some(total.abs())
}

fn polygon_centroid(v: &[(f64, f64)]) -> Option<(f64, f64)> {
    if v.len() < 3 {
        return None;
    }
    let p: Vec<[f64; 3]> = v.iter().map(|&(a, d)| unit_vector(a, d)).collect();
    let mut acc = [0.0; 3];
    for i in 1..p.len() - 1 {
        let w = triangle_sr(p[0], p[i], p[i + 1]);
        for k in 0..3 {
            acc[k] += w * (p[0][k] + p[i][k] + p[i + 1][k]);
        }
    }
    if norm(acc) < 1e-300 {
        // Degenerate: the mean of the vertices.
        acc = p
            .iter()
            .fold([0.0; 3], |s, x| [s[0] + x[0], s[1] + x[1], s[2] + x[2]]);
    }
    (norm(acc) > 0.0).then(|| to_deg(acc))
}

/// Angular distance (degrees) from point p to the great-circle arc a–b.
fn distance_to_arc_deg(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (pv, av, bv) = (
        unit_vector(p.0, p.1),
        unit_vector(a.0, a.1),
        unit_vector(b.0, b.1),
    );
    let n = cross(av, bv);
    let nn = norm(n);
    let ends = ang_sep_deg(p.0, p.1, a.0, a.1).min(ang_sep_deg(p.0, p.1, b.0, b.1));
    if nn < 1e-15 {
        return ends;
    }
    let n = [n[0] / nn, n[1] / nn, n[2] / nn];
    // The foot of the perpendicular, if it falls between a and b.
    let foot = sub(
        pv,
        [n[0] * dot(pv, n), n[1] * dot(pv, n), n[2] * dot(pv, n)],
    );
    if norm(foot) < 1e-15 {
        return ends;
    }
    let within = dot(cross(av, foot), n) >= 0.0 && dot(cross(foot, bv), n) >= 0.0;
    if within {
        dot(pv, n).abs().clamp(0.0, 1.0).asin().to_degrees()
    } else {
        ends
    }
}

/// Whether great-circle arcs p–q and r–s cross.
fn arcs_cross(p: (f64, f64), q: (f64, f64), r: (f64, f64), s: (f64, f64)) -> bool {
    let (p, q, r, s) = (
        unit_vector(p.0, p.1),
        unit_vector(q.0, q.1),
        unit_vector(r.0, r.1),
        unit_vector(s.0, s.1),
    );
    let n1 = cross(p, q);
    let n2 = cross(r, s);
    let side = |n: [f64; 3], x: [f64; 3]| dot(n, x).signum();
    side(n1, r) != side(n1, s) && side(n2, p) != side(n2, q) && {
        // The two candidate intersections ±(n1 × n2): one must lie on both arcs.
        let x = cross(n1, n2);
        [x, [-x[0], -x[1], -x[2]]].iter().any(|&x| {
            dot(cross(p, x), n1) >= 0.0
                && dot(cross(x, q), n1) >= 0.0
                && dot(cross(r, x), n2) >= 0.0
                && dot(cross(x, s), n2) >= 0.0
        })
    }
}

/// The kind a geometry argument declares.
fn xtype_of(f: &Field) -> Option<&str> {
    f.metadata().get("xtype").map(String::as_str)
}

/// Reads an STC-S region (`Polygon ICRS 10 20 11 20 11 21`, `Circle ICRS 10 20 0.5`,
/// `Position ICRS 10 20`), the form ObsCore's `s_region` takes (ADQL's REGION type). The
/// frame must be ICRS or left out; a reference position or flavour word may follow it.
pub fn parse_stcs(s: &str) -> Option<Geometry> {
    let mut words = s.split_whitespace();
    let shape = words.next()?.to_ascii_lowercase();
    let mut numbers = Vec::new();
    for w in words {
        match w.parse::<f64>() {
            Ok(x) => numbers.push(x),
            Err(_) if numbers.is_empty() => match w.to_ascii_uppercase().as_str() {
                "ICRS" | "UNKNOWNFRAME" | "BARYCENTER" | "GEOCENTER" | "TOPOCENTER"
                | "UNKNOWNREFPOS" | "SPHERICAL2" => {}
                _ => return None,
            },
            Err(_) => return None,
        }
    }
    let kind = match shape.as_str() {
        "position" | "point" => "point",
        "circle" => "circle",
        "polygon" => "polygon",
        _ => return None,
    };
    Geometry::from_coords(&numbers, Some(kind))
}

impl Geometry {
    /// The region in STC-S (ICRS), as ObsCore's `s_region` holds it.
    pub fn to_stcs(&self) -> String {
        let mut out = String::new();
        match self {
            Geometry::Point(a, b) => out.push_str(&format!("Position ICRS {a} {b}")),
            Geometry::Circle(a, b, r) => out.push_str(&format!("Circle ICRS {a} {b} {r}")),
            Geometry::Polygon(v) => {
                out.push_str("Polygon ICRS");
                for (a, b) in v {
                    out.push_str(&format!(" {a} {b}"));
                }
            }
        }
        out
    }
}

/// Reads row `i` of a geometry column (list or fixed-size list of float64, or STC-S text).
fn geometry_at(a: &ArrayRef, i: usize, xtype: Option<&str>) -> Option<Geometry> {
    if a.is_null(i) {
        return None;
    }
    match a.data_type() {
        DataType::Utf8 => return parse_stcs(a.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => return parse_stcs(a.as_string::<i64>().value(i)),
        DataType::Utf8View => return parse_stcs(a.as_string_view().value(i)),
        _ => {}
    }
    let values = match a.data_type() {
        DataType::FixedSizeList(..) => a.as_fixed_size_list().value(i),
        DataType::List(_) => a.as_list::<i32>().value(i),
        DataType::LargeList(_) => a.as_list::<i64>().value(i),
        _ => return None,
    };
    let values = arrow::compute::cast(&values, &DataType::Float64).ok()?;
    let f = values.as_primitive::<Float64Type>();
    let v: Vec<f64> = (0..f.len())
        .map(|k| if f.is_null(k) { f64::NAN } else { f.value(k) })
        .collect();
    Geometry::from_coords(&v, xtype)
}

fn is_geometry_type(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::FixedSizeList(..)
            | DataType::List(_)
            | DataType::LargeList(_)
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
    )
}

/// A geometry argument as an array of `rows` rows.
fn geometry_arg(v: &ColumnarValue, rows: usize) -> Result<ArrayRef> {
    v.to_array(rows)
}

macro_rules! simple_new {
    ($ty:ident, $sig:expr) => {
        impl $ty {
            pub fn new() -> Self {
                $ty { signature: $sig }
            }
        }
        impl Default for $ty {
            fn default() -> Self {
                Self::new()
            }
        }
    };
}

/// `point(ra, dec)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PointFn {
    signature: Signature,
}
simple_new!(
    PointFn,
    Signature::uniform(2, vec![DataType::Float64], Volatility::Immutable)
);

/// `circle(ra, dec, radius)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CircleFn {
    signature: Signature,
}
simple_new!(
    CircleFn,
    Signature::uniform(3, vec![DataType::Float64], Volatility::Immutable)
);

/// `polygon(ra1, dec1, ..., raN, decN)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PolygonFn {
    signature: Signature,
}
simple_new!(
    PolygonFn,
    Signature::variadic(vec![DataType::Float64], Volatility::Immutable)
);

/// `box_polygon(ra, dec, width, height)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BoxPolygonFn {
    signature: Signature,
}
simple_new!(
    BoxPolygonFn,
    Signature::uniform(4, vec![DataType::Float64], Volatility::Immutable)
);

fn fixed_array(rows: impl Iterator<Item = Option<Vec<f64>>>, n: i32) -> ArrayRef {
    let mut values = Float64Builder::new();
    let mut valid = Vec::new();
    for r in rows {
        match r {
            Some(v) => {
                values.append_slice(&v);
                valid.push(true);
            }
            None => {
                values.append_slice(&vec![f64::NAN; n as usize]);
                valid.push(false);
            }
        }
    }
    Arc::new(FixedSizeListArray::new(
        Arc::new(Field::new("item", DataType::Float64, true)),
        n,
        Arc::new(values.finish()),
        Some(valid.into()),
    ))
}

fn list_array(rows: impl Iterator<Item = Option<Vec<f64>>>) -> ArrayRef {
    let mut b = ListBuilder::new(Float64Builder::new());
    for r in rows {
        match r {
            Some(v) => {
                b.values().append_slice(&v);
                b.append(true);
            }
            None => b.append(false),
        }
    }
    Arc::new(b.finish())
}

/// Evaluates a constructor row by row; a scalar result when every argument is a scalar.
fn construct(
    args: &ScalarFunctionArgs,
    name: &str,
    f: impl Fn(&[f64]) -> Option<Vec<f64>>,
    out: impl Fn(&mut dyn Iterator<Item = Option<Vec<f64>>>) -> ArrayRef,
) -> Result<ColumnarValue> {
    let a = f64_args(name, &args.args)?;
    let scalar = a.iter().all(|x| x.scalar().is_some());
    let rows = if scalar { 1 } else { args.number_rows };
    let row = |i: usize| -> Option<Vec<f64>> {
        let v: Option<Vec<f64>> = a.iter().map(|x: &F64Arg| x.get(i)).collect();
        f(&v?)
    };
    let array = out(&mut (0..rows).map(row));
    if scalar {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &array, 0,
        )?))
    } else {
        Ok(ColumnarValue::Array(array))
    }
}

fn valid_position(ra: f64, dec: f64) -> bool {
    ra.is_finite() && dec.is_finite() && dec.abs() <= 90.0
}

impl ScalarUDFImpl for PointFn {
    fn name(&self) -> &str {
        "point"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(fixed(2))
    }
    fn return_field_from_args(&self, _: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(xtype_field(self.name(), fixed(2), "point"))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        construct(
            &args,
            self.name(),
            |v| valid_position(v[0], v[1]).then(|| vec![v[0].rem_euclid(360.0), v[1]]),
            |rows| fixed_array(rows, 2),
        )
    }
}

impl ScalarUDFImpl for CircleFn {
    fn name(&self) -> &str {
        "circle"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(fixed(3))
    }
    fn return_field_from_args(&self, _: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(xtype_field(self.name(), fixed(3), "circle"))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        construct(
            &args,
            self.name(),
            |v| {
                (valid_position(v[0], v[1]) && (0.0..=180.0).contains(&v[2]))
                    .then(|| vec![v[0].rem_euclid(360.0), v[1], v[2]])
            },
            |rows| fixed_array(rows, 3),
        )
    }
}

impl ScalarUDFImpl for PolygonFn {
    fn name(&self) -> &str {
        "polygon"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if args.len() < 6 || !args.len().is_multiple_of(2) {
            return plan_err!(
                "polygon(ra1, dec1, ra2, dec2, ra3, dec3, ...) takes at least three vertices, got {} arguments",
                args.len()
            );
        }
        Ok(list())
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        Ok(xtype_field(
            self.name(),
            self.return_type(&types)?,
            "polygon",
        ))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        construct(
            &args,
            self.name(),
            |v| {
                v.chunks(2)
                    .all(|c| valid_position(c[0], c[1]))
                    .then(|| v.to_vec())
            },
            |rows| list_array(rows),
        )
    }
}

impl ScalarUDFImpl for BoxPolygonFn {
    fn name(&self) -> &str {
        "box_polygon"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(list())
    }
    fn return_field_from_args(&self, _: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(xtype_field(self.name(), list(), "polygon"))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        construct(
            &args,
            self.name(),
            |v| {
                let (ra, dec, w, h) = (v[0], v[1], v[2] / 2.0, v[3] / 2.0);
                if !(valid_position(ra, dec) && w >= 0.0 && h >= 0.0) {
                    return None;
                }
                let lo = (dec - h).max(-90.0);
                let hi = (dec + h).min(90.0);
                let c = |a: f64| a.rem_euclid(360.0);
                Some(vec![
                    c(ra - w),
                    lo,
                    c(ra + w),
                    lo,
                    c(ra + w),
                    hi,
                    c(ra - w),
                    hi,
                ])
            },
            |rows| list_array(rows),
        )
    }
}

/// What a one-geometry function computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Measure {
    Area,
    Centroid,
    Coordsys,
}

/// `area(g)`, `centroid(g)`, `coordsys(g)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GeometryMeasure {
    signature: Signature,
    measure: Measure,
}

impl GeometryMeasure {
    fn new(measure: Measure) -> Self {
        GeometryMeasure {
            signature: Signature::any(1, Volatility::Immutable),
            measure,
        }
    }
    pub fn area() -> Self {
        Self::new(Measure::Area)
    }
    pub fn centroid() -> Self {
        Self::new(Measure::Centroid)
    }
    pub fn coordsys() -> Self {
        Self::new(Measure::Coordsys)
    }
}

impl ScalarUDFImpl for GeometryMeasure {
    fn name(&self) -> &str {
        match self.measure {
            Measure::Area => "area",
            Measure::Centroid => "centroid",
            Measure::Coordsys => "coordsys",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if !is_geometry_type(&args[0]) {
            return plan_err!(
                "{}() takes a geometry (POINT, CIRCLE, POLYGON, or a region column), got {}",
                self.name(),
                args[0]
            );
        }
        Ok(match self.measure {
            Measure::Area => DataType::Float64,
            Measure::Centroid => fixed(2),
            Measure::Coordsys => DataType::Utf8,
        })
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let dt = self.return_type(&[args.arg_fields[0].data_type().clone()])?;
        Ok(match self.measure {
            Measure::Centroid => xtype_field(self.name(), dt, "point"),
            Measure::Area => Arc::new(
                Field::new(self.name(), dt, true)
                    .with_metadata(HashMap::from([("unit".to_string(), "deg**2".to_string())])),
            ),
            Measure::Coordsys => Arc::new(Field::new(self.name(), dt, true)),
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let rows = if scalar { 1 } else { args.number_rows };
        let a = geometry_arg(&args.args[0], rows)?;
        let xtype = xtype_of(&args.arg_fields[0]).map(str::to_string);
        let geoms = (0..rows).map(|i| geometry_at(&a, i, xtype.as_deref()));
        let out: ArrayRef = match self.measure {
            Measure::Area => Arc::new(
                geoms
                    .map(|g| g.and_then(|g| g.area_deg2()))
                    .collect::<Float64Array>(),
            ),
            Measure::Centroid => fixed_array(
                geoms.map(|g| g.and_then(|g| g.centroid()).map(|(a, b)| vec![a, b])),
                2,
            ),
            Measure::Coordsys => {
                Arc::new(geoms.map(|g| g.map(|_| "ICRS")).collect::<StringArray>())
            }
        };
        if scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

/// `region_contains(g, ra, dec)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RegionContains {
    signature: Signature,
}
simple_new!(
    RegionContains,
    Signature::user_defined(Volatility::Immutable)
);

impl ScalarUDFImpl for RegionContains {
    fn name(&self) -> &str {
        "region_contains"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        if args.len() != 3 {
            return plan_err!("region_contains(region, ra, dec) takes 3 arguments");
        }
        Ok(vec![args[0].clone(), DataType::Float64, DataType::Float64])
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if !is_geometry_type(&args[0]) {
            return plan_err!(
                "region_contains(region, ra, dec) takes a region first, got {}",
                args[0]
            );
        }
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let g = geometry_arg(&args.args[0], rows)?;
        let xtype = xtype_of(&args.arg_fields[0]).map(str::to_string);
        let p = f64_args(self.name(), &args.args[1..])?;
        let out: BooleanArray = (0..rows)
            .map(|i| {
                let gi = if g.len() == 1 { 0 } else { i };
                let geom = geometry_at(&g, gi, xtype.as_deref())?;
                Some(geom.contains(p[0].get(i)?, p[1].get(i)?))
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `region_intersects(g1, g2)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RegionIntersects {
    signature: Signature,
}
simple_new!(RegionIntersects, Signature::any(2, Volatility::Immutable));

impl ScalarUDFImpl for RegionIntersects {
    fn name(&self) -> &str {
        "region_intersects"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if !(is_geometry_type(&args[0]) && is_geometry_type(&args[1])) {
            return plan_err!("region_intersects(a, b) takes two regions");
        }
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let a = geometry_arg(&args.args[0], rows)?;
        let b = geometry_arg(&args.args[1], rows)?;
        let (xa, xb) = (
            xtype_of(&args.arg_fields[0]).map(str::to_string),
            xtype_of(&args.arg_fields[1]).map(str::to_string),
        );
        let out: BooleanArray = (0..rows)
            .map(|i| {
                let ga = geometry_at(&a, if a.len() == 1 { 0 } else { i }, xa.as_deref())?;
                let gb = geometry_at(&b, if b.len() == 1 { 0 } else { i }, xb.as_deref())?;
                Some(ga.intersects(&gb))
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// Factor from `unit` to the base of its dimension (degrees for angles, seconds for times).
fn unit_factor(unit: &str) -> Option<(&'static str, f64)> {
    Some(match unit.trim() {
        // Angles in milliarcseconds, so that the common ratios are exact.
        "deg" => ("angle", 3.6e6),
        "arcmin" => ("angle", 6e4),
        "arcsec" => ("angle", 1e3),
        "mas" => ("angle", 1.0),
        "uas" => ("angle", 1e-3),
        "rad" => ("angle", 3.6e6 * 180.0 / std::f64::consts::PI),
        "h" | "hourangle" => ("angle-or-time", 15.0 * 3.6e6),
        "s" => ("time", 1.0),
        "min" => ("time", 60.0),
        "d" => ("time", 86_400.0),
        "yr" | "a" => ("time", 365.25 * 86_400.0),
        _ => return None,
    })
}

/// The factor converting `from` into `to`, when both are known units of one dimension.
pub fn unit_conversion(from: &str, to: &str) -> Option<f64> {
    let (df, ff) = unit_factor(from)?;
    let (dt, ft) = unit_factor(to)?;
    let (df, ff) = if df == "angle-or-time" {
        if dt == "time" {
            ("time", 3600.0)
        } else {
            ("angle", ff)
        }
    } else {
        (df, ff)
    };
    let (dt, ft) = if dt == "angle-or-time" {
        if df == "time" {
            ("time", 3600.0)
        } else {
            ("angle", ft)
        }
    } else {
        (dt, ft)
    };
    (df == dt).then(|| ff / ft)
}

/// `in_unit(x, 'unit')`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct InUnit {
    signature: Signature,
}
simple_new!(InUnit, Signature::user_defined(Volatility::Immutable));

impl InUnit {
    fn factor(from: Option<&str>, to: Option<&ScalarValue>) -> Result<f64> {
        let to = match to {
            Some(
                ScalarValue::Utf8(Some(s))
                | ScalarValue::Utf8View(Some(s))
                | ScalarValue::LargeUtf8(Some(s)),
            ) => s.clone(),
            _ => return plan_err!("IN_UNIT(value, 'unit'): the unit must be a string literal"),
        };
        let Some(from) = from.filter(|u| !u.is_empty()) else {
            return plan_err!(
                "IN_UNIT: the value has no unit (use a column whose unit is declared, such as ra or fwhm_arcsec)"
            );
        };
        unit_conversion(from, &to).ok_or_else(|| {
            datafusion::error::DataFusionError::Plan(format!(
                "IN_UNIT: cannot convert {from} to {to} (angles: deg, arcmin, arcsec, mas, uas, rad, h; times: s, min, h, d, yr)"
            ))
        })
    }
}

impl ScalarUDFImpl for InUnit {
    fn name(&self) -> &str {
        "in_unit"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        if args.len() != 2 {
            return plan_err!("in_unit(value, 'unit') takes 2 arguments");
        }
        Ok(vec![DataType::Float64, args[1].clone()])
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let from = args.arg_fields[0]
            .metadata()
            .get("unit")
            .map(String::as_str);
        Self::factor(from, args.scalar_arguments.get(1).copied().flatten())?;
        let to = match args.scalar_arguments.get(1).copied().flatten() {
            Some(ScalarValue::Utf8(Some(s))) => s.clone(),
            _ => String::new(),
        };
        Ok(Arc::new(
            Field::new(self.name(), DataType::Float64, true)
                .with_metadata(HashMap::from([("unit".to_string(), to)])),
        ))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let from = args.arg_fields[0].metadata().get("unit").cloned();
        let to = match &args.args[1] {
            ColumnarValue::Scalar(s) => Some(s.clone()),
            _ => None,
        };
        let k = Self::factor(from.as_deref(), to.as_ref())?;
        let x = f64_args(self.name(), &args.args[..1])?;
        match &x[0] {
            F64Arg::Scalar(v) => Ok(ColumnarValue::Scalar(ScalarValue::Float64(
                v.map(|v| v * k),
            ))),
            F64Arg::Array(_) => {
                let out: Float64Array = (0..args.number_rows)
                    .map(|i| x[0].get(i).map(|v| v * k))
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
        }
    }
}

/// Errors a geometry column of another shape may give at run time.
#[allow(dead_code)]
fn not_geometry(name: &str) -> Result<ColumnarValue> {
    exec_err!("{name}: not a geometry value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_centroids_and_containment() {
        // A circle of 1° radius: 2π(1 − cos 1°) sr.
        let c = Geometry::Circle(10.0, 20.0, 1.0);
        assert!((c.area_deg2().unwrap() - 3.14143).abs() < 1e-4);
        // The whole sky is 41 252.96 deg².
        assert!((Geometry::Circle(0.0, 0.0, 180.0).area_deg2().unwrap() - 41_252.96).abs() < 0.01);
        // An octant (three right angles): 1/8 of the sky, either orientation.
        let oct = Geometry::Polygon(vec![(0.0, 0.0), (90.0, 0.0), (0.0, 90.0)]);
        assert!((oct.area_deg2().unwrap() - 41_252.96 / 8.0).abs() < 0.01);
        let rev = Geometry::Polygon(vec![(0.0, 90.0), (90.0, 0.0), (0.0, 0.0)]);
        assert!((rev.area_deg2().unwrap() - 41_252.96 / 8.0).abs() < 0.01);
        let (ra, dec) = oct.centroid().unwrap();
        assert!(
            (ra - 45.0).abs() < 1e-9 && (dec - 35.264).abs() < 0.01,
            "{ra} {dec}"
        );
        assert!(oct.contains(30.0, 30.0) && !oct.contains(120.0, 30.0));
        assert_eq!(Geometry::Point(1.0, 2.0).area_deg2(), Some(0.0));
    }

    #[test]
    fn intersections() {
        let sq = Geometry::Polygon(vec![(10.0, -1.0), (12.0, -1.0), (12.0, 1.0), (10.0, 1.0)]);
        // A circle beside the square's edge, not containing any vertex nor its centre.
        assert!(sq.intersects(&Geometry::Circle(13.0, 0.0, 1.2)));
        assert!(!sq.intersects(&Geometry::Circle(13.0, 0.0, 0.8)));
        let cross = Geometry::Polygon(vec![(11.0, -3.0), (11.5, -3.0), (11.5, 3.0), (11.0, 3.0)]);
        assert!(sq.intersects(&cross));
        assert!(!sq.intersects(&Geometry::Polygon(vec![
            (20.0, 0.0),
            (21.0, 0.0),
            (21.0, 1.0)
        ])));
    }

    #[test]
    fn stcs_regions_read_and_write() {
        let p = parse_stcs("Polygon ICRS 10 20 11 20 11 21").unwrap();
        assert_eq!(
            p,
            Geometry::Polygon(vec![(10.0, 20.0), (11.0, 20.0), (11.0, 21.0)])
        );
        assert_eq!(parse_stcs(&p.to_stcs()), Some(p));
        assert_eq!(
            parse_stcs("circle 1 2 0.5"),
            Some(Geometry::Circle(1.0, 2.0, 0.5))
        );
        assert_eq!(
            parse_stcs("Position ICRS BARYCENTER 1 2"),
            Some(Geometry::Point(1.0, 2.0))
        );
        assert_eq!(parse_stcs("Polygon GALACTIC 1 2 3 4 5 6"), None);
        assert_eq!(parse_stcs("Polygon ICRS 1 2 3 4"), None);
        assert_eq!(parse_stcs("Circle ICRS 1 x 2"), None);
        assert_eq!(parse_stcs(""), None);
    }

    #[test]
    fn units() {
        assert_eq!(unit_conversion("deg", "arcsec"), Some(3600.0));
        assert_eq!(unit_conversion("arcsec", "mas"), Some(1000.0));
        assert!((unit_conversion("h", "deg").unwrap() - 15.0).abs() < 1e-12);
        assert_eq!(unit_conversion("d", "h"), Some(24.0));
        assert_eq!(unit_conversion("deg", "s"), None);
        assert_eq!(unit_conversion("adu", "deg"), None);
    }
}
