//! Argument handling shared by the UDFs: each argument is either a scalar (the query constant,
//! the fast path) or a `Float64`/`Int64` array, after DataFusion's coercion.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::ColumnarValue;

/// One evaluated argument, viewed as optional f64 values.
pub(crate) enum F64Arg {
    Scalar(Option<f64>),
    Array(ArrayRef),
}

impl F64Arg {
    pub(crate) fn new(name: &str, value: &ColumnarValue) -> Result<Self> {
        match value {
            ColumnarValue::Scalar(s) => Ok(F64Arg::Scalar(scalar_f64(name, s)?)),
            ColumnarValue::Array(a) => match a.data_type() {
                DataType::Float64 | DataType::Int64 | DataType::Null => {
                    Ok(F64Arg::Array(a.clone()))
                }
                other => exec_err!("{name}: expected a Float64 argument, got {other}"),
            },
        }
    }

    pub(crate) fn scalar(&self) -> Option<Option<f64>> {
        match self {
            F64Arg::Scalar(v) => Some(*v),
            F64Arg::Array(_) => None,
        }
    }

    /// The value at row `i` (NULL as `None`).
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<f64> {
        match self {
            F64Arg::Scalar(v) => *v,
            F64Arg::Array(a) => {
                if a.is_null(i) {
                    return None;
                }
                match a.data_type() {
                    DataType::Float64 => Some(a.as_primitive::<Float64Type>().value(i)),
                    DataType::Int64 => Some(a.as_primitive::<Int64Type>().value(i) as f64),
                    _ => None,
                }
            }
        }
    }
}

fn scalar_f64(name: &str, s: &ScalarValue) -> Result<Option<f64>> {
    if s.is_null() {
        return Ok(None);
    }
    match s.cast_to(&DataType::Float64)? {
        ScalarValue::Float64(v) => Ok(v),
        other => exec_err!("{name}: cannot use {other:?} as a number"),
    }
}

/// Converts all arguments; the number of rows of the batch is `number_rows`.
pub(crate) fn f64_args(name: &str, args: &[ColumnarValue]) -> Result<Vec<F64Arg>> {
    args.iter().map(|a| F64Arg::new(name, a)).collect()
}

/// True when every argument is a scalar, so the result is a scalar too.
pub(crate) fn all_scalar(args: &[F64Arg]) -> bool {
    args.iter().all(|a| a.scalar().is_some())
}

/// Evaluates `f` row by row over N arguments, producing a column of `O` (or a scalar when
/// every argument is a scalar). Any NULL argument gives NULL; `f` may also answer NULL.
pub(crate) fn map_rows<const N: usize, O: OutputKind>(
    args: &[F64Arg],
    number_rows: usize,
    f: impl Fn([f64; N]) -> Option<O::Native>,
) -> ColumnarValue {
    let row = |i: usize| -> Option<O::Native> {
        let mut v = [0.0; N];
        for (k, a) in args.iter().enumerate().take(N) {
            v[k] = a.get(i)?;
        }
        f(v)
    };
    if all_scalar(args) {
        return ColumnarValue::Scalar(O::scalar(row(0)));
    }
    // Fast path: every argument a non-null scalar or a Float64 array without nulls, so each
    // row is read straight from slices.
    let fast: Option<Vec<Fast<'_>>> = args
        .iter()
        .map(|a| match (a.scalar(), dense_f64(a)) {
            (Some(Some(v)), _) => Some(Fast::Scalar(v)),
            (_, Some(s)) => Some(Fast::Slice(s)),
            _ => None,
        })
        .collect();
    if let Some(fast) = fast {
        let fast_row = |i: usize| -> Option<O::Native> {
            let mut v = [0.0; N];
            for (k, a) in fast.iter().enumerate().take(N) {
                v[k] = match a {
                    Fast::Scalar(x) => *x,
                    Fast::Slice(s) => s[i],
                };
            }
            f(v)
        };
        return ColumnarValue::Array(O::array((0..number_rows).map(fast_row)));
    }
    ColumnarValue::Array(O::array((0..number_rows).map(row)))
}

enum Fast<'a> {
    Scalar(f64),
    Slice(&'a [f64]),
}

/// Output column types of the UDFs.
pub(crate) trait OutputKind {
    type Native;
    fn scalar(v: Option<Self::Native>) -> ScalarValue;
    fn array(values: impl Iterator<Item = Option<Self::Native>>) -> ArrayRef;
}

pub(crate) struct OutF64;
impl OutputKind for OutF64 {
    type Native = f64;
    fn scalar(v: Option<f64>) -> ScalarValue {
        ScalarValue::Float64(v)
    }
    fn array(values: impl Iterator<Item = Option<f64>>) -> ArrayRef {
        std::sync::Arc::new(values.collect::<arrow::array::Float64Array>())
    }
}

pub(crate) struct OutI64;
impl OutputKind for OutI64 {
    type Native = i64;
    fn scalar(v: Option<i64>) -> ScalarValue {
        ScalarValue::Int64(v)
    }
    fn array(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
        std::sync::Arc::new(values.collect::<arrow::array::Int64Array>())
    }
}

pub(crate) struct OutBool;
impl OutputKind for OutBool {
    type Native = bool;
    fn scalar(v: Option<bool>) -> ScalarValue {
        ScalarValue::Boolean(v)
    }
    fn array(values: impl Iterator<Item = Option<bool>>) -> ArrayRef {
        std::sync::Arc::new(values.collect::<arrow::array::BooleanArray>())
    }
}

/// The `Float64` values and validity of an array argument without nulls, for fast paths.
pub(crate) fn dense_f64(arg: &F64Arg) -> Option<&[f64]> {
    match arg {
        F64Arg::Array(a) if a.null_count() == 0 && a.data_type() == &DataType::Float64 => {
            Some(a.as_primitive::<Float64Type>().values().as_ref())
        }
        _ => None,
    }
}
