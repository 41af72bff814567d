//! Table functions:
//!
//! - `cone_search('table', ra, dec, radius_deg)`: the rows of a sky table within the cone, with
//!   `sep_arcsec` from the centre (pruned like any cone predicate);
//! - `xmatch('left', 'right', radius_arcsec [, k])`: pairs of rows closer than the radius (or
//!   each left row's k nearest within it), left columns suffixed `_<left>`, right columns
//!   `_<right>` (`_left`/`_right` for a self-match), and `sep_arcsec` ([`super::xmatch`]).

use super::session::SkyTables;
use super::xmatch::XmatchTable;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::datasource::{TableProvider, ViewTable, provider_as_source};
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, ScalarUDF, col, lit};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

/// Registers the table functions on `ctx`, looking tables up in `tables`.
pub fn register(ctx: &SessionContext, tables: Arc<SkyTables>) {
    ctx.register_udtf(
        "cone_search",
        Arc::new(ConeSearch {
            tables: tables.clone(),
        }),
    );
    ctx.register_udtf("xmatch", Arc::new(Xmatch { tables }));
}

fn string_arg(f: &str, e: &Expr, what: &str) -> Result<String> {
    match e {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
            _,
        ) => Ok(s.clone()),
        _ => plan_err!("{f}: the {what} must be a string literal (a table name in quotes)"),
    }
}

fn number_arg(f: &str, e: &Expr, what: &str) -> Result<f64> {
    let v = match e {
        Expr::Literal(v, _) => v.clone(),
        Expr::Negative(inner) => match inner.as_ref() {
            Expr::Literal(v, _) => v.arithmetic_negate()?,
            _ => return plan_err!("{f}: the {what} must be a number"),
        },
        _ => return plan_err!("{f}: the {what} must be a number"),
    };
    match v.cast_to(&arrow::datatypes::DataType::Float64)? {
        ScalarValue::Float64(Some(x)) if x.is_finite() => Ok(x),
        _ => plan_err!("{f}: the {what} must be a finite number"),
    }
}

#[derive(Debug)]
struct ConeSearch {
    tables: Arc<SkyTables>,
}

impl TableFunctionImpl for ConeSearch {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        const F: &str = "cone_search('table', ra, dec, radius_deg)";
        let a = args.exprs();
        if a.len() != 4 {
            return plan_err!("{F} takes 4 arguments, got {}", a.len());
        }
        let name = string_arg(F, &a[0], "table")?;
        let (ra, dec, r) = (
            number_arg(F, &a[1], "ra")?,
            number_arg(F, &a[2], "dec")?,
            number_arg(F, &a[3], "radius")?,
        );
        if !(0.0..=180.0).contains(&r) || dec.abs() > 90.0 {
            return plan_err!("{F}: radius must be in [0, 180] and dec in [-90, 90]");
        }
        let Some(t) = self.tables.get(&name) else {
            return plan_err!(
                "{F}: no table {name:?} (tables: {})",
                self.tables.names().join(", ")
            );
        };
        let Some(sp) = t.spatial.clone() else {
            return plan_err!("{F}: table {name} has no sky position (ra, dec, _healpix_29)");
        };
        let cone = Arc::new(ScalarUDF::from(astropipe_udfs::cone::ConeContains::new()));
        let sep = Arc::new(ScalarUDF::from(astropipe_udfs::separation::AngSepDeg::new()));
        let mut cols: Vec<Expr> = t
            .schema
            .fields()
            .iter()
            .map(|f| col(f.name().as_str()))
            .collect();
        cols.push(
            (sep.call(vec![
                col(sp.ra.as_str()),
                col(sp.dec.as_str()),
                lit(ra),
                lit(dec),
            ]) * lit(3600.0))
            .alias("sep_arcsec"),
        );
        let plan = LogicalPlanBuilder::scan(name.as_str(), provider_as_source(t.clone()), None)?
            .filter(cone.call(vec![
                col(sp.ra.as_str()),
                col(sp.dec.as_str()),
                lit(ra),
                lit(dec),
                lit(r),
            ]))?
            .project(cols)?
            .build()?;
        Ok(Arc::new(ViewTable::new(plan, None)))
    }
}

#[derive(Debug)]
struct Xmatch {
    tables: Arc<SkyTables>,
}

impl TableFunctionImpl for Xmatch {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        const F: &str = "xmatch('left', 'right', radius_arcsec [, k])";
        let a = args.exprs();
        if !(3..=4).contains(&a.len()) {
            return plan_err!("{F} takes 3 or 4 arguments, got {}", a.len());
        }
        let (l, r) = (
            string_arg(F, &a[0], "left table")?,
            string_arg(F, &a[1], "right table")?,
        );
        let radius = number_arg(F, &a[2], "radius")?;
        let k = match a.get(3) {
            Some(e) => {
                let k = number_arg(F, e, "k")?;
                if k < 1.0 || k.fract() != 0.0 {
                    return plan_err!("{F}: k must be a positive integer");
                }
                Some(k as usize)
            }
            None => None,
        };
        let get = |n: &str| {
            self.tables.get(n).ok_or_else(|| {
                datafusion::error::DataFusionError::Plan(format!(
                    "{F}: no table {n:?} (tables: {})",
                    self.tables.names().join(", ")
                ))
            })
        };
        Ok(Arc::new(XmatchTable::new(get(&l)?, get(&r)?, radius, k)?))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The functions our session adds to DataFusion's, by name (scalar and table functions).
    fn ours() -> BTreeSet<String> {
        let dir = tempfile::tempdir().unwrap();
        let loc = crate::storage::Location::open(&dir.path().display().to_string()).unwrap();
        let ctx = crate::query::session::new_context(&loc).unwrap();
        let plain = datafusion::prelude::SessionContext::new();
        let (s, p) = (ctx.state(), plain.state());
        let scalar = s
            .scalar_functions()
            .keys()
            .filter(|k| !p.scalar_functions().contains_key(*k));
        let table = s
            .table_functions()
            .keys()
            .filter(|k| !p.table_functions().contains_key(*k));
        scalar.chain(table).cloned().collect()
    }

    /// The functions `sql/README.md` documents: the names in its table's first column.
    fn documented() -> BTreeSet<String> {
        include_str!("../../sql/README.md")
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('(').map(|(name, _)| name.to_string()))
            .collect()
    }

    #[test]
    fn sql_readme_lists_every_function_of_the_registry() {
        let (ours, documented) = (ours(), documented());
        assert!(ours.len() >= 20, "{ours:?}");
        assert_eq!(
            ours.difference(&documented).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "registered but not in sql/README.md"
        );
        assert_eq!(
            documented.difference(&ours).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "in sql/README.md but not registered"
        );
    }
}
