//! Functions that can build values far larger than their inputs — `repeat`, `lpad`/`rpad`,
//! `array_repeat`, `array_resize`, `range`/`generate_series`, `replace`, `regexp_replace`,
//! and the concatenations that add such values up — run behind a check made *before* they
//! allocate: from the arguments of each batch the largest value and the batch's total are
//! bounded from above, and the call is refused when one value would exceed
//! `--max-value-mb` or the batch would exceed the call's share of the query's memory.
//!
//! DataFusion's memory pool does not see the buffers scalar functions allocate, so the
//! query's memory limit is split between the bounded calls its plan holds: all of them
//! together, evaluated on one batch, stay within it. The bounds are upper bounds (a `lpad`
//! counts 4 bytes per character); legal queries are far from them.

use super::limits::LimitExceeded;
use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Int64Type, IntervalMonthDayNanoType, TimeUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How a function's output grows with its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Growth {
    /// `repeat(s, n)`: `len(s) * n`.
    Repeat,
    /// `lpad|rpad(s, n [, fill])`: `n` characters.
    Pad,
    /// `array_repeat(e, n)`: `n` copies of `e`.
    ArrayRepeat,
    /// `array_resize(a, n [, v])`: `n` elements.
    ArrayResize,
    /// `range|generate_series([start,] stop [, step])` as a list value.
    Range,
    /// `replace(s, from, to)`.
    Replace,
    /// `regexp_replace(s, pattern, replacement [, flags])`.
    RegexpReplace,
    /// `concat(a, b, ...)`, `concat_ws(sep, a, ...)`: the sum of the inputs.
    Concat,
}

const BOUNDED: &[(&str, Growth)] = &[
    ("repeat", Growth::Repeat),
    ("lpad", Growth::Pad),
    ("rpad", Growth::Pad),
    ("array_repeat", Growth::ArrayRepeat),
    ("array_resize", Growth::ArrayResize),
    ("range", Growth::Range),
    ("generate_series", Growth::Range),
    ("replace", Growth::Replace),
    ("regexp_replace", Growth::RegexpReplace),
    ("concat", Growth::Concat),
    ("concat_ws", Growth::Concat),
];

/// What the bounded calls of one query may build: one value at most `max_value` bytes; one
/// call on one batch at most `share` bytes (set once the plan's calls are counted).
#[derive(Debug)]
pub struct ValueBudget {
    max_value: u64,
    share: AtomicU64,
}

impl ValueBudget {
    /// A budget whose calls share `query_memory` bytes (set with [`ValueBudget::split`]).
    pub fn new(max_value: usize, query_memory: Option<usize>) -> Arc<Self> {
        Arc::new(ValueBudget {
            max_value: max_value as u64,
            share: AtomicU64::new(query_memory.map_or(u64::MAX, |m| m as u64)),
        })
    }

    /// Splits the query's memory between the `calls` bounded calls of its plan.
    pub fn split(&self, query_memory: Option<usize>, calls: usize) {
        if let Some(m) = query_memory {
            self.share
                .store((m / calls.max(1)) as u64, Ordering::Release);
        }
    }
}

/// Registers, on one query's state, the bounded versions of the value-building functions.
pub fn register(state: &mut SessionState, budget: &Arc<ValueBudget>) -> Result<()> {
    for (name, growth) in BOUNDED {
        let Some(inner) = state.scalar_functions().get(*name).cloned() else {
            continue;
        };
        let any: &dyn std::any::Any = inner.inner().as_ref();
        if any.is::<Bounded>() {
            continue;
        }
        let udf = ScalarUDF::new_from_impl(Bounded {
            inner: inner.as_ref().clone(),
            growth: *growth,
            budget: budget.clone(),
        });
        state.register_udf(Arc::new(udf))?;
    }
    Ok(())
}

/// How many bounded calls a plan makes (subqueries included).
pub fn count_calls(plan: &LogicalPlan) -> usize {
    let mut n = 0usize;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|x| {
                if let Expr::ScalarFunction(f) = x
                    && BOUNDED.iter().any(|(name, _)| *name == f.name())
                {
                    n += 1;
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    n
}

/// A value-building function behind its size check.
#[derive(Debug)]
struct Bounded {
    inner: ScalarUDF,
    growth: Growth,
    budget: Arc<ValueBudget>,
}

impl PartialEq for Bounded {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
            && self.growth == other.growth
            && Arc::ptr_eq(&self.budget, &other.budget)
    }
}

impl Eq for Bounded {}

impl Hash for Bounded {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
        self.growth.hash(state);
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        self.inner.inner().schema_name(args)
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.inner().return_type(arg_types)
    }
    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> Result<arrow::datatypes::FieldRef> {
        self.inner.return_field_from_args(args)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.inner().coerce_types(arg_types)
    }
    fn documentation(&self) -> Option<&datafusion::logical_expr::Documentation> {
        self.inner.documentation()
    }
    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        let inner = self.inner.inner().with_updated_config(config)?;
        Some(ScalarUDF::new_from_impl(Bounded {
            inner,
            growth: self.growth,
            budget: self.budget.clone(),
        }))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = if args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)))
        {
            1
        } else {
            args.number_rows
        };
        let (largest, total) = estimate(self.growth, &args.args, rows)?;
        self.check(largest, total)?;
        let out = self.inner.invoke_with_args(args)?;
        // The estimate is an upper bound; this catches anything it missed.
        let built = match &out {
            ColumnarValue::Array(a) => a.get_array_memory_size() as u64,
            ColumnarValue::Scalar(s) => s.size() as u64,
        };
        self.check(0, built)?;
        Ok(out)
    }
}

impl Bounded {
    fn check(&self, largest: u64, total: u64) -> Result<()> {
        let max_value = self.budget.max_value;
        if largest > max_value {
            return Err(LimitExceeded::Value {
                function: self.name().to_string(),
                bytes: largest,
                max: max_value as usize,
            }
            .into_datafusion());
        }
        let share = self.budget.share.load(Ordering::Acquire);
        if total > share {
            return Err(LimitExceeded::Batch {
                function: self.name().to_string(),
                bytes: total,
                max: share.min(usize::MAX as u64) as usize,
            }
            .into_datafusion());
        }
        Ok(())
    }
}

/// One argument, row by row (a scalar stands for every row).
enum Arg<T> {
    Scalar(T),
    Rows(Vec<T>),
}

impl<T: Copy> Arg<T> {
    fn at(&self, i: usize) -> T {
        match self {
            Arg::Scalar(v) => *v,
            Arg::Rows(v) => v[i],
        }
    }
}

/// The byte size of each row of an argument: exact for strings and binaries, the average
/// row's share of the array otherwise.
fn sizes(v: &ColumnarValue) -> Arg<u64> {
    match v {
        ColumnarValue::Scalar(s) => Arg::Scalar(scalar_size(s)),
        ColumnarValue::Array(a) => Arg::Rows(array_sizes(a)),
    }
}

fn scalar_size(s: &ScalarValue) -> u64 {
    match s {
        ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => {
            v.as_ref().map_or(0, |s| s.len() as u64)
        }
        ScalarValue::Binary(v) | ScalarValue::LargeBinary(v) | ScalarValue::BinaryView(v) => {
            v.as_ref().map_or(0, |s| s.len() as u64)
        }
        other => other.size() as u64,
    }
}

fn array_sizes(a: &ArrayRef) -> Vec<u64> {
    fn diffs<O: arrow::array::OffsetSizeTrait>(o: &[O]) -> Vec<u64> {
        o.windows(2)
            .map(|w| (w[1].as_usize() - w[0].as_usize()) as u64)
            .collect()
    }
    match a.data_type() {
        DataType::Utf8 => diffs(a.as_string::<i32>().value_offsets()),
        DataType::LargeUtf8 => diffs(a.as_string::<i64>().value_offsets()),
        DataType::Binary => diffs(a.as_binary::<i32>().value_offsets()),
        DataType::LargeBinary => diffs(a.as_binary::<i64>().value_offsets()),
        DataType::Utf8View => a
            .as_string_view()
            .views()
            .iter()
            .map(|v| (*v as u32) as u64)
            .collect(),
        DataType::BinaryView => a
            .as_binary_view()
            .views()
            .iter()
            .map(|v| (*v as u32) as u64)
            .collect(),
        _ => {
            let n = a.len().max(1) as u64;
            vec![(a.get_array_memory_size() as u64).div_ceil(n); a.len()]
        }
    }
}

/// The integer value of each row of an argument (nulls and non-numbers count as 0).
fn ints(v: &ColumnarValue) -> Arg<i64> {
    match v {
        ColumnarValue::Scalar(s) => Arg::Scalar(
            s.cast_to(&DataType::Int64)
                .ok()
                .and_then(|x| match x {
                    ScalarValue::Int64(v) => v,
                    _ => None,
                })
                .unwrap_or(0),
        ),
        ColumnarValue::Array(a) => {
            let rows = match arrow::compute::cast(a, &DataType::Int64) {
                Ok(c) => {
                    let p = c.as_primitive::<Int64Type>();
                    (0..p.len())
                        .map(|i| if p.is_null(i) { 0 } else { p.value(i) })
                        .collect()
                }
                Err(_) => vec![0; a.len()],
            };
            Arg::Rows(rows)
        }
    }
}

/// A range bound as nanoseconds for dates and timestamps, as itself for integers.
fn range_points(v: &ColumnarValue) -> Arg<i64> {
    let ns = DataType::Timestamp(TimeUnit::Nanosecond, None);
    match v.data_type() {
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) => {
            let casted = match v {
                ColumnarValue::Scalar(s) => s.cast_to(&ns).map(ColumnarValue::Scalar),
                ColumnarValue::Array(a) => arrow::compute::cast(a, &ns)
                    .map(ColumnarValue::Array)
                    .map_err(Into::into),
            };
            match casted {
                Ok(c) => ints(&c),
                Err(_) => Arg::Scalar(0),
            }
        }
        _ => ints(v),
    }
}

/// A range step in the units of [`range_points`]: intervals as nanoseconds, with months
/// counted as 28 days (the shortest, so the count is an upper bound).
fn range_steps(v: &ColumnarValue) -> Arg<i64> {
    const DAY: i64 = 86_400_000_000_000;
    let of = |months: i32, days: i32, nanos: i64| -> i64 {
        (months as i64 * 28 + days as i64)
            .saturating_mul(DAY)
            .saturating_add(nanos)
            .unsigned_abs()
            .min(i64::MAX as u64) as i64
    };
    match v {
        ColumnarValue::Scalar(ScalarValue::IntervalMonthDayNano(Some(i))) => {
            Arg::Scalar(of(i.months, i.days, i.nanoseconds))
        }
        ColumnarValue::Array(a) if matches!(a.data_type(), DataType::Interval(_)) => {
            match a.as_primitive_opt::<IntervalMonthDayNanoType>() {
                Some(p) => Arg::Rows(
                    (0..p.len())
                        .map(|i| {
                            let x = p.value(i);
                            of(x.months, x.days, x.nanoseconds)
                        })
                        .collect(),
                ),
                None => Arg::Scalar(1),
            }
        }
        other => ints(other),
    }
}

/// The largest value and the total bytes a call on `rows` rows can build.
fn estimate(growth: Growth, args: &[ColumnarValue], rows: usize) -> Result<(u64, u64)> {
    let get = |i: usize| args.get(i);
    let mut largest = 0u64;
    let mut total = 0u64;
    let mut add = |v: u64| {
        largest = largest.max(v);
        total = total.saturating_add(v);
    };
    let count = |n: i64| n.max(0) as u64;
    match growth {
        Growth::Repeat | Growth::Pad | Growth::ArrayRepeat | Growth::ArrayResize => {
            let (Some(a), Some(n)) = (get(0), get(1)) else {
                return Ok((0, 0));
            };
            let (s, n) = (sizes(a), ints(n));
            let fill = get(2).map(sizes);
            for i in 0..rows {
                let k = count(n.at(i));
                add(match growth {
                    Growth::Repeat => s.at(i).saturating_mul(k),
                    Growth::Pad => k.saturating_mul(4),
                    Growth::ArrayRepeat => (s.at(i) + 8).saturating_mul(k),
                    _ => {
                        let elem = fill.as_ref().map_or(16, |f| f.at(i).max(16));
                        elem.saturating_mul(k)
                    }
                });
            }
        }
        Growth::Range => {
            let (start, stop, step) = match args.len() {
                1 => (Arg::Scalar(0), range_points(&args[0]), Arg::Scalar(1)),
                2 => (
                    range_points(&args[0]),
                    range_points(&args[1]),
                    Arg::Scalar(1),
                ),
                _ => (
                    range_points(&args[0]),
                    range_points(&args[1]),
                    range_steps(&args[2]),
                ),
            };
            for i in 0..rows {
                let span = (stop.at(i) as i128 - start.at(i) as i128).unsigned_abs();
                let step = (step.at(i) as i128).unsigned_abs().max(1);
                let n = (span / step + 1).min(u64::MAX as u128 / 8) as u64;
                add(n * 8);
            }
        }
        Growth::Replace => {
            let (Some(s), Some(from), Some(to)) = (get(0), get(1), get(2)) else {
                return Ok((0, 0));
            };
            let (s, from, to) = (sizes(s), sizes(from), sizes(to));
            for i in 0..rows {
                let hits = s.at(i) / from.at(i).max(1) + 1;
                add(s.at(i).saturating_add(hits.saturating_mul(to.at(i))));
            }
        }
        Growth::RegexpReplace => {
            let (Some(s), Some(repl)) = (get(0), get(2)) else {
                return Ok((0, 0));
            };
            let global = match get(3) {
                None => false,
                Some(ColumnarValue::Scalar(f)) => f.to_string().contains('g'),
                Some(_) => true,
            };
            // Group references (`\1`, `$1`) can copy the whole input once each.
            let refs = match repl {
                ColumnarValue::Scalar(r) => {
                    let r = r.to_string();
                    Arg::Scalar(r.matches(['\\', '$']).count() as u64)
                }
                ColumnarValue::Array(_) => match sizes(repl) {
                    Arg::Rows(v) => Arg::Rows(v.into_iter().map(|l| l / 2).collect()),
                    Arg::Scalar(l) => Arg::Scalar(l / 2),
                },
            };
            let (s, r) = (sizes(s), sizes(repl));
            for i in 0..rows {
                let one = r.at(i).saturating_add(refs.at(i).saturating_mul(s.at(i)));
                let hits = if global { s.at(i) + 1 } else { 1 };
                add(s.at(i).saturating_add(hits.saturating_mul(one)));
            }
        }
        Growth::Concat => {
            let parts: Vec<Arg<u64>> = args.iter().map(sizes).collect();
            for i in 0..rows {
                let sum = parts.iter().fold(0u64, |a, p| a.saturating_add(p.at(i)));
                // concat_ws repeats its separator between the parts.
                add(sum.saturating_mul(2));
            }
        }
    }
    Ok((largest, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;

    fn s(v: &str) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(v.into())))
    }
    fn i(v: i64) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Int64(Some(v)))
    }

    #[test]
    fn estimates_bound_what_the_functions_build() {
        assert_eq!(
            estimate(Growth::Repeat, &[s("ab"), i(1000)], 1).unwrap(),
            (2000, 2000)
        );
        let col = ColumnarValue::Array(Arc::new(StringArray::from(vec!["a", "bcd", ""])));
        assert_eq!(
            estimate(Growth::Repeat, &[col, i(10)], 3).unwrap(),
            (30, 40)
        );
        assert_eq!(estimate(Growth::Pad, &[s("x"), i(-5)], 1).unwrap(), (0, 0));
        assert_eq!(estimate(Growth::Range, &[i(0), i(999)], 1).unwrap().0, 8000);
        assert_eq!(
            estimate(Growth::Replace, &[s("aaaa"), s("a"), s("bb")], 1)
                .unwrap()
                .0,
            4 + 5 * 2
        );
        let (big, _) = estimate(
            Growth::RegexpReplace,
            &[s("abc"), s("."), s("\\0\\0"), s("g")],
            1,
        )
        .unwrap();
        assert!(big >= 3 * 2 * 3, "{big}");
    }
}
