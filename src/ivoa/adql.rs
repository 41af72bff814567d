//! ADQL 2.0/2.1 → DataFusion SQL, for TAP.
//!
//! ADQL is SQL-92 plus a few things; this translator rewrites those and passes the rest
//! through token by token (keywords and unquoted identifiers are case-insensitive in both):
//! - `SELECT [ALL|DISTINCT] TOP n ...` → `... LIMIT n` at the end of that query block (before
//!   an `OFFSET`), in subqueries too;
//! - `CONTAINS(POINT(..), CIRCLE|BOX|POLYGON(..)) = 1` and `INTERSECTS(...) = 1` (either
//!   order, `= 0` negates) → `cone_contains` / `box_contains` / `polygon_contains`, which the
//!   catalog's tables turn into HEALPix range pruning; elsewhere (`SELECT CONTAINS(...)`) they
//!   become 0/1 integers. `INTERSECTS` of two circles compares the centre distance with the
//!   sum of the radii;
//! - `DISTANCE(POINT, POINT)` and ADQL 2.1's `DISTANCE(ra1, dec1, ra2, dec2)` → `ang_sep_deg`;
//!   `COORD1(POINT(a, b))` → `a`, `COORD2` → `b`;
//! - the coordinate-system argument is optional (ADQL 2.1); it must be ICRS (or empty, J2000,
//!   FK5): other frames are refused rather than silently mixed up;
//! - functions whose names differ: `LOG` (natural) → `ln`, `CEILING` → `ceil`,
//!   `TRUNCATE` → `trunc`, `RAND` → `random`, `MOD(a, b)` → `a % b`.
//!
//! - geometry values (ADQL 2.1 §4.2): `POINT`, `CIRCLE`, `POLYGON` anywhere else → the
//!   `point`/`circle`/`polygon` functions, whose results carry the DALI `xtype`; `BOX` → the
//!   polygon of its corners (`box_polygon`); `AREA`, `CENTROID`, `COORDSYS` → `area`,
//!   `centroid`, `coordsys`; `CONTAINS`/`INTERSECTS` with a region *column* (ObsCore's
//!   `s_region`) → `region_contains`/`region_intersects`. `CONTAINS(region, POINT)` — the
//!   region inside the point — is true only for a circle of radius 0 at that point, as ADQL
//!   defines it (not silently swapped);
//! - hexadecimal literals (`0x1F`, ADQL 2.1) → decimal; `IN_UNIT(x, 'unit')` → `in_unit`,
//!   which converts from the unit the column declares.
//!
//! `REGION` (STC-S strings) is refused with a clear error.

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
#[error("ADQL: {0}")]
pub struct AdqlError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, AdqlError> {
    Err(AdqlError(m.into()))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// Identifier or keyword (unquoted).
    Word(String),
    /// Anything else, verbatim: quoted identifiers, strings, numbers, operators.
    Other(String),
    Str(String),
    Num(String),
    Open,
    Close,
    Comma,
    Space,
}

impl Tok {
    fn text(&self) -> &str {
        match self {
            Tok::Word(s) | Tok::Other(s) | Tok::Str(s) | Tok::Num(s) => s,
            Tok::Open => "(",
            Tok::Close => ")",
            Tok::Comma => ",",
            Tok::Space => " ",
        }
    }
}

fn tokenize(src: &str) -> Result<Vec<Tok>, AdqlError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            out.push(Tok::Space);
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            out.push(Tok::Space);
        } else if c == '\'' || c == '"' {
            let start = i;
            i += 1;
            loop {
                match chars.get(i) {
                    None => return err(format!("unterminated {c}...{c} at character {start}")),
                    Some(&q) if q == c => {
                        if chars.get(i + 1) == Some(&c) {
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    }
                    Some(_) => i += 1,
                }
            }
            let s: String = chars[start..i].iter().collect();
            out.push(if c == '\'' {
                Tok::Str(s)
            } else {
                Tok::Other(s)
            });
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric()
                    || chars[i] == '.'
                    || ((chars[i] == '+' || chars[i] == '-') && matches!(chars[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        } else {
            i += 1;
            out.push(match c {
                '(' => Tok::Open,
                ')' => Tok::Close,
                ',' => Tok::Comma,
                _ => Tok::Other(c.to_string()),
            });
        }
    }
    Ok(out)
}

/// Translates one ADQL query to DataFusion SQL, with the default nesting limit.
pub fn to_sql(adql: &str) -> Result<String, AdqlError> {
    to_sql_with_depth(adql, crate::query::limits::DEFAULT_MAX_DEPTH)
}

thread_local! {
    /// Nesting of the translation now under way on this thread, and its limit. The
    /// translation recurses into parentheses and function arguments; this bound keeps any
    /// input, however deep, from exhausting the stack.
    static DEPTH: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, usize::MAX)) };
}

/// One level of nesting, released when dropped.
struct Nested;

impl Nested {
    fn enter() -> Result<Nested, AdqlError> {
        DEPTH.with(|d| {
            let (now, max) = d.get();
            if now >= max {
                return err(format!(
                    "the query nests parentheses or functions more than {max} deep (--max-query-depth)"
                ));
            }
            d.set((now + 1, max));
            Ok(Nested)
        })
    }
}

impl Drop for Nested {
    fn drop(&mut self) {
        DEPTH.with(|d| {
            let (now, max) = d.get();
            d.set((now.saturating_sub(1), max));
        });
    }
}

/// Translates one ADQL query to DataFusion SQL, refusing nesting deeper than `max_depth`.
pub fn to_sql_with_depth(adql: &str, max_depth: usize) -> Result<String, AdqlError> {
    let previous = DEPTH.with(|d| d.replace((0, max_depth.max(1))));
    let r = translate(adql);
    DEPTH.with(|d| d.set(previous));
    r
}

fn translate(adql: &str) -> Result<String, AdqlError> {
    let toks = tokenize(adql)?;
    let mut pos = 0;
    let out = block(&toks, &mut pos)?;
    if pos < toks.len() {
        return err("unbalanced parentheses: an extra ')'");
    }
    Ok(out.trim().trim_end_matches(';').trim().to_string())
}

/// A geometry argument.
#[derive(Debug)]
enum Geom {
    Point(String, String),
    Circle(String, String, String),
    Box(String, String, String, String),
    Polygon(Vec<String>),
}

/// Translates tokens up to the matching `)` (not consumed) or the end: one query block.
fn block(toks: &[Tok], pos: &mut usize) -> Result<String, AdqlError> {
    let _level = Nested::enter()?;
    let mut out: Vec<String> = Vec::new();
    let mut top: Option<String> = None;
    let mut offset_at: Option<usize> = None;
    let mut after_select = false;
    while *pos < toks.len() {
        let t = &toks[*pos];
        match t {
            Tok::Close => break,
            Tok::Open => {
                *pos += 1;
                let inner = block(toks, pos)?;
                if toks.get(*pos) != Some(&Tok::Close) {
                    return err("unbalanced parentheses: a '(' is never closed");
                }
                *pos += 1;
                out.push(format!("({inner})"));
            }
            Tok::Word(w) => {
                let upper = w.to_ascii_uppercase();
                if upper == "SELECT" {
                    after_select = true;
                    out.push(w.clone());
                    *pos += 1;
                    continue;
                }
                if upper == "TOP" && after_select {
                    *pos += 1;
                    skip_space(toks, pos);
                    match toks.get(*pos) {
                        Some(Tok::Num(n)) if n.chars().all(|c| c.is_ascii_digit()) => {
                            top = Some(n.clone());
                            *pos += 1;
                        }
                        _ => return err("TOP needs a whole number"),
                    }
                    after_select = false;
                    continue;
                }
                if !(upper == "ALL" || upper == "DISTINCT") {
                    after_select = false;
                }
                if upper == "OFFSET" && offset_at.is_none() {
                    offset_at = Some(out.len());
                }
                let next_open =
                    next_non_space(toks, *pos + 1).map(|i| &toks[i]) == Some(&Tok::Open);
                if next_open && let Some(s) = function(&upper, toks, pos, &mut out)? {
                    out.push(s);
                    continue;
                }
                out.push(w.clone());
                *pos += 1;
            }
            Tok::Space => {
                if !matches!(out.last().map(String::as_str), Some(" ")) {
                    out.push(" ".into());
                }
                *pos += 1;
            }
            Tok::Num(n) if n.len() > 2 && (n.starts_with("0x") || n.starts_with("0X")) => {
                let v = i64::from_str_radix(&n[2..], 16)
                    .map_err(|_| AdqlError(format!("{n} is not a hexadecimal integer")))?;
                out.push(v.to_string());
                *pos += 1;
            }
            other => {
                out.push(other.text().to_string());
                *pos += 1;
            }
        }
    }
    if let Some(n) = top {
        match offset_at {
            Some(i) => out.insert(i, format!("LIMIT {n} ")),
            None => {
                while matches!(out.last().map(String::as_str), Some(" " | ";")) {
                    out.pop();
                }
                out.push(format!(" LIMIT {n}"));
            }
        }
    }
    Ok(out.concat())
}

fn skip_space(toks: &[Tok], pos: &mut usize) {
    while toks.get(*pos) == Some(&Tok::Space) {
        *pos += 1;
    }
}

fn next_non_space(toks: &[Tok], mut i: usize) -> Option<usize> {
    while toks.get(i) == Some(&Tok::Space) {
        i += 1;
    }
    (i < toks.len()).then_some(i)
}

/// The raw argument token lists of a call whose name is at `*pos`; leaves `*pos` after `)`.
fn call_args<'a>(toks: &'a [Tok], pos: &mut usize) -> Result<Vec<&'a [Tok]>, AdqlError> {
    let open = next_non_space(toks, *pos + 1).expect("caller checked");
    let mut depth = 0usize;
    let mut args = Vec::new();
    let mut start = open + 1;
    let mut i = open;
    loop {
        match toks.get(i) {
            None => return err("a function call's '(' is never closed"),
            Some(Tok::Open) => depth += 1,
            Some(Tok::Close) => {
                depth -= 1;
                if depth == 0 {
                    args.push(&toks[start..i]);
                    break;
                }
            }
            Some(Tok::Comma) if depth == 1 => {
                args.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    *pos = i + 1;
    if args.len() == 1 && args[0].iter().all(|t| *t == Tok::Space) {
        args.clear();
    }
    Ok(args)
}

/// Translates an expression argument.
fn expr(toks: &[Tok]) -> Result<String, AdqlError> {
    let mut p = 0;
    let s = block(toks, &mut p)?;
    if p < toks.len() {
        return err("unbalanced parentheses in a function argument");
    }
    let s = s.trim().to_string();
    if s.is_empty() {
        return err("an empty function argument");
    }
    Ok(s)
}

/// The called function's name if `toks` is exactly one call (`NAME(...)`).
fn call_name(toks: &[Tok]) -> Option<String> {
    let first = next_non_space(toks, 0)?;
    let Tok::Word(w) = &toks[first] else {
        return None;
    };
    if toks[next_non_space(toks, first + 1)?] != Tok::Open {
        return None;
    }
    let mut q = first;
    call_args(toks, &mut q).ok()?;
    next_non_space(toks, q)
        .is_none()
        .then(|| w.to_ascii_uppercase())
}

/// Checks an optional leading coordinate-system argument; returns the coordinate arguments.
fn coords<'a>(name: &str, args: &[&'a [Tok]]) -> Result<Vec<&'a [Tok]>, AdqlError> {
    let first_is_str = args.first().is_some_and(|a| {
        let s: Vec<&Tok> = a.iter().filter(|t| **t != Tok::Space).collect();
        s.len() == 1 && matches!(s[0], Tok::Str(_))
    });
    if !first_is_str {
        return Ok(args.to_vec());
    }
    let frame = args[0]
        .iter()
        .find_map(|t| match t {
            Tok::Str(s) => Some(s.trim_matches('\'').trim().to_ascii_uppercase()),
            _ => None,
        })
        .unwrap_or_default();
    let system = frame.split_whitespace().next().unwrap_or("");
    if !matches!(system, "" | "ICRS" | "J2000" | "FK5" | "UNKNOWNFRAME") {
        return err(format!(
            "{name}: coordinate system {frame:?} is not supported; the catalog is ICRS (convert with galactic_to_ra/galactic_to_dec)"
        ));
    }
    Ok(args[1..].to_vec())
}

/// Parses a geometry constructor argument.
fn geom(toks: &[Tok]) -> Result<Geom, AdqlError> {
    let _level = Nested::enter()?;
    let Some(name) = call_name(toks) else {
        return err("expected POINT, CIRCLE, BOX or POLYGON");
    };
    let mut p = next_non_space(toks, 0).expect("a call");
    let raw = call_args(toks, &mut p)?;
    let args = coords(&name, &raw)?;
    let e = |i: usize| expr(args[i]);
    match (name.as_str(), args.len()) {
        ("POINT", 2) => Ok(Geom::Point(e(0)?, e(1)?)),
        ("CIRCLE", 3) => Ok(Geom::Circle(e(0)?, e(1)?, e(2)?)),
        ("CIRCLE", 2) => match geom(args[0])? {
            Geom::Point(a, b) => Ok(Geom::Circle(a, b, e(1)?)),
            _ => err("CIRCLE(centre, radius) needs a POINT centre"),
        },
        ("BOX", 4) => Ok(Geom::Box(e(0)?, e(1)?, e(2)?, e(3)?)),
        ("BOX", 3) => match geom(args[0])? {
            Geom::Point(a, b) => Ok(Geom::Box(a, b, e(1)?, e(2)?)),
            _ => err("BOX(centre, width, height) needs a POINT centre"),
        },
        ("POLYGON", n) if n >= 6 && n % 2 == 0 => Ok(Geom::Polygon(
            args.iter().map(|a| expr(a)).collect::<Result<_, _>>()?,
        )),
        ("POLYGON", n)
            if n >= 3
                && args
                    .iter()
                    .all(|a| call_name(a).as_deref() == Some("POINT")) =>
        {
            let mut v = Vec::with_capacity(2 * n);
            for a in &args {
                if let Geom::Point(x, y) = geom(a)? {
                    v.push(x);
                    v.push(y);
                }
            }
            Ok(Geom::Polygon(v))
        }
        (n @ ("POINT" | "CIRCLE" | "BOX" | "POLYGON"), k) => err(format!(
            "{n} with {k} arguments: expected POINT(ra, dec), CIRCLE(ra, dec, r), BOX(ra, dec, w, h) or POLYGON(ra1, dec1, ..., at least 3 vertices), each optionally after a coordinate system"
        )),
        (other, _) => err(format!(
            "{other} is not a geometry (POINT, CIRCLE, BOX, POLYGON)"
        )),
    }
}

/// The boolean SQL of "point inside region".
fn inside(p: (&str, &str), region: &Geom) -> Result<String, AdqlError> {
    let (ra, dec) = p;
    Ok(match region {
        Geom::Circle(a, b, r) => format!("cone_contains({ra}, {dec}, {a}, {b}, {r})"),
        Geom::Box(a, b, w, h) => format!("box_contains({ra}, {dec}, {a}, {b}, {w}, {h})"),
        Geom::Polygon(v) => format!("polygon_contains({ra}, {dec}, {})", v.join(", ")),
        Geom::Point(a, b) => format!("({ra} = {a} AND {dec} = {b})"),
    })
}

/// The SQL value of a geometry constructor (DALI point/circle/polygon).
fn geom_sql(g: &Geom) -> String {
    match g {
        Geom::Point(a, b) => format!("point({a}, {b})"),
        Geom::Circle(a, b, r) => format!("circle({a}, {b}, {r})"),
        Geom::Box(a, b, w, h) => format!("box_polygon({a}, {b}, {w}, {h})"),
        Geom::Polygon(v) => format!("polygon({})", v.join(", ")),
    }
}

/// A geometry argument: a constructor, or any other expression (a region column).
enum GeomArg {
    Made(Geom),
    Value(String),
}

fn geom_arg(toks: &[Tok]) -> Result<GeomArg, AdqlError> {
    match call_name(toks).as_deref() {
        Some("POINT" | "CIRCLE" | "BOX" | "POLYGON") => Ok(GeomArg::Made(geom(toks)?)),
        Some("REGION") => err(REGION),
        _ => Ok(GeomArg::Value(expr(toks)?)),
    }
}

fn geom_arg_sql(g: &GeomArg) -> String {
    match g {
        GeomArg::Made(g) => geom_sql(g),
        GeomArg::Value(v) => v.clone(),
    }
}

const REGION: &str =
    "REGION(...) (STC-S region strings) is not supported: use POINT, CIRCLE, BOX or POLYGON";

/// Translates a function call at `*pos` when ADQL needs it; None passes it through.
fn function(
    upper: &str,
    toks: &[Tok],
    pos: &mut usize,
    out: &mut Vec<String>,
) -> Result<Option<String>, AdqlError> {
    let simple = |sql: &str, pos: &mut usize| -> Result<String, AdqlError> {
        let args = call_args(toks, pos)?;
        let a: Vec<String> = args.iter().map(|a| expr(a)).collect::<Result<_, _>>()?;
        Ok(format!("{sql}({})", a.join(", ")))
    };
    Ok(Some(match upper {
        "LOG" => simple("ln", pos)?,
        "CEILING" => simple("ceil", pos)?,
        "TRUNCATE" => simple("trunc", pos)?,
        "RAND" => {
            call_args(toks, pos)?;
            "random()".to_string()
        }
        "MOD" => {
            let args = call_args(toks, pos)?;
            if args.len() != 2 {
                return err("MOD takes two arguments");
            }
            format!("(({}) % ({}))", expr(args[0])?, expr(args[1])?)
        }
        "COORD1" | "COORD2" => {
            let args = call_args(toks, pos)?;
            if args.len() != 1 {
                return err(format!("{upper} takes one POINT"));
            }
            match geom(args[0])? {
                Geom::Point(a, b) => {
                    if upper == "COORD1" {
                        format!("({a})")
                    } else {
                        format!("({b})")
                    }
                }
                _ => return err(format!("{upper} takes a POINT")),
            }
        }
        "DISTANCE" => {
            let args = call_args(toks, pos)?;
            let (a, b, c, d) = match args.len() {
                2 => match (geom(args[0])?, geom(args[1])?) {
                    (Geom::Point(a, b), Geom::Point(c, d)) => (a, b, c, d),
                    _ => return err("DISTANCE takes two POINTs"),
                },
                4 => (
                    expr(args[0])?,
                    expr(args[1])?,
                    expr(args[2])?,
                    expr(args[3])?,
                ),
                _ => return err("DISTANCE takes two POINTs (or ra1, dec1, ra2, dec2)"),
            };
            format!("ang_sep_deg({a}, {b}, {c}, {d})")
        }
        "CONTAINS" | "INTERSECTS" => {
            let args = call_args(toks, pos)?;
            if args.len() != 2 {
                return err(format!("{upper} takes two geometries"));
            }
            let (g1, g2) = (geom_arg(args[0])?, geom_arg(args[1])?);
            use GeomArg::{Made, Value};
            let cond = match (upper, &g1, &g2) {
                (_, Made(Geom::Point(a, b)), Made(region)) => inside((a, b), region)?,
                ("INTERSECTS", Made(region), Made(Geom::Point(a, b))) => inside((a, b), region)?,
                ("INTERSECTS", Made(Geom::Circle(a, b, r)), Made(Geom::Circle(c, d, s))) => {
                    format!("(ang_sep_deg({a}, {b}, {c}, {d}) <= ({r}) + ({s}))")
                }
                ("CONTAINS", Made(Geom::Circle(a, b, r)), Made(Geom::Circle(c, d, s))) => {
                    format!("(ang_sep_deg({a}, {b}, {c}, {d}) + ({r}) <= ({s}))")
                }
                // A region inside a point: only a circle of radius 0 at that very point.
                ("CONTAINS", Made(Geom::Circle(a, b, r)), Made(Geom::Point(c, d))) => {
                    format!("(({r}) <= 0 AND ang_sep_deg({a}, {b}, {c}, {d}) <= 0)")
                }
                ("CONTAINS", Made(Geom::Box(..) | Geom::Polygon(_)), Made(Geom::Point(..))) => {
                    "(1 = 0)".to_string()
                }
                (_, Made(Geom::Point(a, b)), Value(region)) => {
                    format!("region_contains({region}, {a}, {b})")
                }
                ("INTERSECTS", Value(region), Made(Geom::Point(a, b))) => {
                    format!("region_contains({region}, {a}, {b})")
                }
                ("INTERSECTS", x, y) => {
                    format!(
                        "region_intersects({}, {})",
                        geom_arg_sql(x),
                        geom_arg_sql(y)
                    )
                }
                _ => {
                    return err(format!(
                        "{upper} is supported for a POINT in a region (CIRCLE, BOX, POLYGON or a region column), between CIRCLEs, and INTERSECTS of any two regions"
                    ));
                }
            };
            compare(cond, toks, pos, out)
        }
        "POINT" | "CIRCLE" | "BOX" | "POLYGON" => {
            // A geometry as a value: the call at *pos is parsed whole.
            let start = *pos;
            let args = call_args(toks, pos)?;
            let _ = args;
            geom_sql(&geom(&toks[start..*pos])?)
        }
        "AREA" | "CENTROID" | "COORDSYS" => {
            let args = call_args(toks, pos)?;
            if args.len() != 1 {
                return err(format!("{upper} takes one geometry"));
            }
            let g = geom_arg(args[0])?;
            format!("{}({})", upper.to_ascii_lowercase(), geom_arg_sql(&g))
        }
        "REGION" => return err(REGION),
        _ => return Ok(None),
    }))
}

/// Folds a comparison of a predicate with 1 or 0 (`x = 1`, `1 = x`, `x = 0`, `x <> 0`)
/// into the predicate itself, so filters stay plain (prunable) predicates; otherwise the
/// predicate becomes an integer as ADQL defines.
fn compare(cond: String, toks: &[Tok], pos: &mut usize, out: &mut Vec<String>) -> String {
    let truth = |n: &str| n.parse::<f64>().ok().map(|v| v != 0.0);
    // Trailing: `= 1`, `!= 0`, `<> 0`.
    let mut i = *pos;
    let op_tokens = |i: &mut usize| -> Option<String> {
        let a = next_non_space(toks, *i)?;
        let t1 = toks[a].text().to_string();
        match t1.as_str() {
            "=" => {
                *i = a + 1;
                Some("=".into())
            }
            "!" | "<" => {
                let b = a + 1;
                let t2 = toks.get(b)?.text();
                if (t1 == "!" && t2 == "=") || (t1 == "<" && t2 == ">") {
                    *i = b + 1;
                    Some("<>".into())
                } else {
                    None
                }
            }
            _ => None,
        }
    };
    if let Some(op) = op_tokens(&mut i)
        && let Some(n) = next_non_space(toks, i)
        && let Tok::Num(v) = &toks[n]
        && let Some(t) = truth(v)
    {
        *pos = n + 1;
        let positive = (op == "=") == t;
        return if positive {
            cond
        } else {
            format!("(NOT {cond})")
        };
    }
    // Leading: `1 = ` already emitted.
    let mut j = out.len();
    let skip_sp = |j: &mut usize| {
        while *j > 0 && out[*j - 1] == " " {
            *j -= 1;
        }
    };
    skip_sp(&mut j);
    if j > 0 && out[j - 1] == "=" {
        let mut k = j - 1;
        skip_sp(&mut k);
        if k > 0
            && let Some(t) = truth(&out[k - 1])
        {
            out.truncate(k - 1);
            return if t { cond } else { format!("(NOT {cond})") };
        }
    }
    format!("CAST({cond} AS INT)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(a: &str) -> String {
        to_sql(a).unwrap()
    }

    #[test]
    fn top_becomes_limit_in_every_block() {
        assert_eq!(
            t("SELECT TOP 5 ra FROM sources"),
            "SELECT ra FROM sources LIMIT 5"
        );
        assert_eq!(
            t("select distinct top 3 ra from sources order by ra;"),
            "select distinct ra from sources order by ra LIMIT 3"
        );
        assert_eq!(
            t("SELECT TOP 2 * FROM (SELECT TOP 10 ra FROM sources) AS s OFFSET 1"),
            "SELECT * FROM (SELECT ra FROM sources LIMIT 10) AS s LIMIT 2 OFFSET 1"
        );
        assert!(to_sql("SELECT TOP x ra FROM s").is_err());
    }

    #[test]
    fn geometry_predicates_become_prunable_udfs() {
        assert_eq!(
            t(
                "SELECT * FROM sources WHERE CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 10, -5.5, 0.1)) = 1"
            ),
            "SELECT * FROM sources WHERE cone_contains(ra, dec, 10, -5.5, 0.1)"
        );
        assert_eq!(
            t("SELECT * FROM s WHERE 1=contains(point(ra, dec), circle(point(10, 20), 1e-2))"),
            "SELECT * FROM s WHERE cone_contains(ra, dec, 10, 20, 1e-2)"
        );
        assert_eq!(
            t("SELECT * FROM s WHERE CONTAINS(POINT('', ra, dec), BOX('ICRS', 1, 2, 3, 4)) = 0"),
            "SELECT * FROM s WHERE (NOT box_contains(ra, dec, 1, 2, 3, 4))"
        );
        assert_eq!(
            t(
                "SELECT * FROM s WHERE INTERSECTS(POLYGON('ICRS', 1, 1, 2, 1, 2, 2), POINT('ICRS', ra, dec)) = 1"
            ),
            "SELECT * FROM s WHERE polygon_contains(ra, dec, 1, 1, 2, 1, 2, 2)"
        );
        assert_eq!(
            t("SELECT CONTAINS(POINT(ra, dec), CIRCLE(1, 2, 3)) AS inside FROM s"),
            "SELECT CAST(cone_contains(ra, dec, 1, 2, 3) AS INT) AS inside FROM s"
        );
        assert_eq!(
            t(
                "SELECT DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', 1.5, (2+1))) AS d, COORD1(POINT(ra, dec)) FROM s"
            ),
            "SELECT ang_sep_deg(ra, dec, 1.5, (2+1)) AS d, (ra) FROM s"
        );
    }

    #[test]
    fn geometry_values_measures_and_region_columns() {
        assert_eq!(
            t(
                "SELECT POINT('ICRS', ra, dec) AS p, CIRCLE(1, 2, 0.5), AREA(CIRCLE('ICRS', 1, 2, 3)) FROM s"
            ),
            "SELECT point(ra, dec) AS p, circle(1, 2, 0.5), area(circle(1, 2, 3)) FROM s"
        );
        assert_eq!(
            t(
                "SELECT CENTROID(POLYGON(1, 1, 2, 1, 2, 2)), COORDSYS(s_region), AREA(BOX(10, 20, 1, 2)) FROM o"
            ),
            "SELECT centroid(polygon(1, 1, 2, 1, 2, 2)), coordsys(s_region), area(box_polygon(10, 20, 1, 2)) FROM o"
        );
        assert_eq!(
            t("SELECT * FROM o WHERE CONTAINS(POINT('ICRS', 10, 20), s_region) = 1"),
            "SELECT * FROM o WHERE region_contains(s_region, 10, 20)"
        );
        assert_eq!(
            t("SELECT * FROM o WHERE INTERSECTS(s_region, CIRCLE('ICRS', 10, 20, 1)) = 1"),
            "SELECT * FROM o WHERE region_intersects(s_region, circle(10, 20, 1))"
        );
        // The region inside the point: ADQL's meaning, not the arguments swapped.
        assert_eq!(
            t("SELECT * FROM s WHERE CONTAINS(CIRCLE(1, 2, 3), POINT(ra, dec)) = 1"),
            "SELECT * FROM s WHERE ((3) <= 0 AND ang_sep_deg(1, 2, ra, dec) <= 0)"
        );
        assert_eq!(t("SELECT 0x1F, 0x2 + 1 FROM s"), "SELECT 31, 2 + 1 FROM s");
        assert_eq!(
            t("SELECT IN_UNIT(ra, 'arcsec') FROM s"),
            "SELECT IN_UNIT(ra, 'arcsec') FROM s"
        );
        assert!(to_sql("SELECT 0xZZ FROM s").is_err());
    }

    #[test]
    fn any_nesting_is_refused_cleanly_not_by_the_stack() {
        let parens = format!(
            "SELECT {}1{} FROM s",
            "(".repeat(10_000),
            ")".repeat(10_000)
        );
        assert!(to_sql(&parens).unwrap_err().0.contains("nests"));
        let logs = format!("SELECT {}x{} FROM s", "LOG(".repeat(1000), ")".repeat(1000));
        assert!(to_sql(&logs).unwrap_err().0.contains("nests"));
        let points = format!(
            "SELECT * FROM s WHERE CONTAINS(POINT(ra, dec), CIRCLE({}1, 2{}, 3)) = 1",
            "POINT(".repeat(500),
            ")".repeat(500)
        );
        assert!(to_sql(&points).is_err());
        assert!(to_sql_with_depth("SELECT ((1)) FROM s", 3).is_ok());
        assert!(to_sql_with_depth("SELECT (((1))) FROM s", 3).is_err());
        // The limit is restored for the next translation.
        assert!(to_sql("SELECT ((((((1)))))) FROM s").is_ok());
    }

    #[test]
    fn renamed_functions_strings_and_errors() {
        assert_eq!(
            t(
                "SELECT LOG(flux), log10(flux), CEILING(x), MOD(npix, 2) FROM s WHERE id = 'TOP 1 CONTAINS('"
            ),
            "SELECT ln(flux), log10(flux), ceil(x), ((npix) % (2)) FROM s WHERE id = 'TOP 1 CONTAINS('"
        );
        assert_eq!(
            t("SELECT \"TOP\" FROM s -- TOP 3\n"),
            "SELECT \"TOP\" FROM s"
        );
        let e = to_sql("SELECT * FROM s WHERE CONTAINS(POINT('GALACTIC', l, b), CIRCLE('GALACTIC', 1, 2, 3)) = 1")
            .unwrap_err();
        assert!(e.0.contains("GALACTIC"), "{e}");
        assert!(
            to_sql("SELECT REGION('Circle ICRS 1 2 3') FROM s")
                .unwrap_err()
                .0
                .contains("STC-S")
        );
        assert!(to_sql("SELECT (ra FROM s").is_err());
        assert!(
            to_sql("SELECT * FROM s WHERE CONTAINS(POINT(ra, dec), CIRCLE(1, 2)) = 1").is_err()
        );
    }
}
