//! Time: `mjd_to_timestamp(mjd)` → `Timestamp(µs, UTC)` and `timestamp_to_mjd(ts)` → Float64
//! (Modified Julian Date, days; MJD 0 = 1858-11-17T00:00 UTC). UTC days of 86400 s: leap
//! seconds are not counted, as in the POSIX time Arrow timestamps use.

use crate::args::f64_args;
use arrow::array::{Array, AsArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use std::sync::Arc;

/// MJD of the Unix epoch 1970-01-01T00:00 UTC.
pub const MJD_UNIX_EPOCH: f64 = 40_587.0;
const MICROS_PER_DAY: f64 = 86_400_000_000.0;

/// Microseconds since the Unix epoch of an MJD (`None` when out of range or not finite).
pub fn mjd_to_micros(mjd: f64) -> Option<i64> {
    let us = ((mjd - MJD_UNIX_EPOCH) * MICROS_PER_DAY).round();
    (us.is_finite() && us.abs() < 9.0e18).then_some(us as i64)
}

/// MJD of microseconds since the Unix epoch.
pub fn micros_to_mjd(us: i64) -> f64 {
    MJD_UNIX_EPOCH + us as f64 / MICROS_PER_DAY
}

fn utc() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// `mjd_to_timestamp(mjd) -> Timestamp(Microsecond, "UTC")`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MjdToTimestamp {
    signature: Signature,
}

impl MjdToTimestamp {
    pub fn new() -> Self {
        MjdToTimestamp {
            signature: Signature::uniform(1, vec![DataType::Float64], Volatility::Immutable),
        }
    }
}

impl Default for MjdToTimestamp {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for MjdToTimestamp {
    fn name(&self) -> &str {
        "mjd_to_timestamp"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(utc())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = f64_args(self.name(), &args.args)?;
        if let Some(v) = a[0].scalar() {
            return Ok(ColumnarValue::Scalar(ScalarValue::TimestampMicrosecond(
                v.and_then(mjd_to_micros),
                Some("UTC".into()),
            )));
        }
        let out: TimestampMicrosecondArray = (0..args.number_rows)
            .map(|i| a[0].get(i).and_then(mjd_to_micros))
            .collect::<TimestampMicrosecondArray>()
            .with_timezone("UTC");
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `timestamp_to_mjd(ts) -> Float64` for a timestamp of any unit (a timestamp without a time
/// zone is taken as UTC).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TimestampToMjd {
    signature: Signature,
}

impl TimestampToMjd {
    pub fn new() -> Self {
        TimestampToMjd {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl Default for TimestampToMjd {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for TimestampToMjd {
    fn name(&self) -> &str {
        "timestamp_to_mjd"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args.first() {
            Some(DataType::Timestamp(_, _))
            | Some(DataType::Date32)
            | Some(DataType::Date64)
            | Some(DataType::Null) => Ok(DataType::Float64),
            other => plan_err!("timestamp_to_mjd expects a timestamp, got {other:?}"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let target = DataType::Timestamp(TimeUnit::Microsecond, None);
        match &args.args[0] {
            ColumnarValue::Scalar(s) => {
                let v = s.cast_to(&target)?;
                let ScalarValue::TimestampMicrosecond(us, _) = v else {
                    return exec_err!("timestamp_to_mjd: cannot convert {s:?}");
                };
                Ok(ColumnarValue::Scalar(ScalarValue::Float64(
                    us.map(micros_to_mjd),
                )))
            }
            ColumnarValue::Array(arr) => {
                let cast = arrow::compute::cast(arr, &target)?;
                let ts = cast.as_primitive::<TimestampMicrosecondType>();
                let out: arrow::array::Float64Array = (0..ts.len())
                    .map(|i| (!ts.is_null(i)).then(|| micros_to_mjd(ts.value(i))))
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
        }
    }
}
