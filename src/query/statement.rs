//! The checks a statement passes before it is planned: its size, its bracket nesting (before
//! parsing, so the parser never recurses deeply), and the shape of its syntax tree — nesting
//! of expressions, subqueries and joined tables, and the length of the left-deep chains the
//! parser builds without recursion (`a + b + c ...`, `x OR y OR ...`, `UNION ... UNION`,
//! `FROM a, b, c ...`) but which the planner walks recursively. Each refusal names the limit.

use super::limits::{LimitExceeded, Limits};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    Expr, Query, Select, SetExpr, Statement, TableFactor, Visit, Visitor,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use std::ops::ControlFlow;

/// Refuses statements longer than the limit, and bracket nesting deeper than it (checked on
/// tokens, so quotes and comments are understood). Runs before the parser.
pub fn check_text(sql: &str, limits: &Limits) -> Result<(), LimitExceeded> {
    if sql.len() > limits.max_statement_bytes {
        return Err(LimitExceeded::StatementSize {
            size: sql.len(),
            max: limits.max_statement_bytes,
        });
    }
    // Text the tokenizer rejects is left to the parser, which reports it properly.
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        return Ok(());
    };
    let mut depth = 0usize;
    for t in tokens {
        match t {
            Token::LParen | Token::LBracket | Token::LBrace => {
                depth += 1;
                if depth > limits.max_depth {
                    return Err(LimitExceeded::Depth {
                        what: "brackets",
                        max: limits.max_depth,
                    });
                }
            }
            Token::RParen | Token::RBracket | Token::RBrace => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Refuses a parsed statement whose tree is deeper (or whose chains are longer) than the limit.
pub fn check_tree(stmt: &DFStatement, limits: &Limits) -> Result<(), LimitExceeded> {
    match stmt {
        DFStatement::Statement(s) => check_sql(s, limits.max_depth),
        DFStatement::Explain(e) => check_tree(&e.statement, limits),
        // Refused later by the read-only guard; nothing of theirs is planned deeply first.
        _ => Ok(()),
    }
}

fn check_sql(s: &Statement, max: usize) -> Result<(), LimitExceeded> {
    let mut v = Depth {
        depth: 0,
        max,
        refused: None,
    };
    let _ = s.visit(&mut v);
    match v.refused {
        Some(what) => Err(LimitExceeded::Depth { what, max }),
        None => Ok(()),
    }
}

/// Tracks nesting while the tree is walked, and stops the walk at the first excess.
struct Depth {
    depth: usize,
    max: usize,
    refused: Option<&'static str>,
}

impl Depth {
    fn enter(&mut self, what: &'static str) -> ControlFlow<()> {
        self.depth += 1;
        if self.depth > self.max {
            self.refused = Some(what);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
    fn leave(&mut self) -> ControlFlow<()> {
        self.depth = self.depth.saturating_sub(1);
        ControlFlow::Continue(())
    }
    fn chain(&mut self, what: &'static str, len: usize) -> ControlFlow<()> {
        if self.depth + len > self.max {
            self.refused = Some(what);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

/// Depth of a set-operation tree (`UNION`, `EXCEPT`, `INTERSECT`), walked without recursion.
fn set_depth(body: &SetExpr) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(body, 1usize)];
    while let Some((e, d)) = stack.pop() {
        deepest = deepest.max(d);
        match e {
            SetExpr::SetOperation { left, right, .. } => {
                stack.push((left, d + 1));
                stack.push((right, d + 1));
            }
            SetExpr::Query(q) => stack.push((&q.body, d + 1)),
            _ => {}
        }
    }
    deepest
}

impl Visitor for Depth {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        self.enter("subqueries")?;
        self.chain("UNION/EXCEPT/INTERSECT", set_depth(&q.body))
    }
    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.leave()
    }
    fn pre_visit_select(&mut self, s: &Select) -> ControlFlow<()> {
        let tables: usize = s.from.iter().map(|t| 1 + t.joins.len()).sum();
        self.chain("joined tables", tables)
    }
    fn pre_visit_table_factor(&mut self, _: &TableFactor) -> ControlFlow<()> {
        self.enter("nested joins")
    }
    fn post_visit_table_factor(&mut self, _: &TableFactor) -> ControlFlow<()> {
        self.leave()
    }
    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.enter("expressions")
    }
    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.leave()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParser;

    fn limits(max_depth: usize) -> Limits {
        Limits {
            max_depth,
            ..Limits::default()
        }
    }

    fn tree(sql: &str, max: usize) -> Result<(), LimitExceeded> {
        let mut s = DFParser::parse_sql(sql).unwrap();
        check_tree(&s.pop_front().unwrap(), &limits(max))
    }

    #[test]
    fn chains_and_nesting_are_measured() {
        let chain = |op: &str, n: usize| {
            let terms: Vec<String> = (0..n).map(|i| format!("a = {i}")).collect();
            format!("SELECT * FROM t WHERE {}", terms.join(op))
        };
        assert!(tree(&chain(" OR ", 20), 64).is_ok());
        assert!(matches!(
            tree(&chain(" OR ", 100), 64),
            Err(LimitExceeded::Depth {
                what: "expressions",
                ..
            })
        ));
        let sum = format!("SELECT {}", vec!["1"; 200].join("+"));
        assert!(tree(&sum, 64).is_err());
        let unions = vec!["SELECT 1"; 80].join(" UNION ALL ");
        assert!(matches!(
            tree(&unions, 64),
            Err(LimitExceeded::Depth {
                what: "UNION/EXCEPT/INTERSECT",
                ..
            })
        ));
        let tables: Vec<String> = (0..80).map(|i| format!("t{i}")).collect();
        assert!(tree(&format!("SELECT 1 FROM {}", tables.join(", ")), 64).is_err());
        assert!(tree("SELECT (SELECT (SELECT 1))", 64).is_ok());
    }

    #[test]
    fn text_checks_size_and_brackets_but_not_quoted_text() {
        let l = limits(16);
        assert!(check_text("SELECT ((((1))))", &l).is_ok());
        let deep = format!("SELECT {}1{}", "(".repeat(17), ")".repeat(17));
        assert!(matches!(
            check_text(&deep, &l),
            Err(LimitExceeded::Depth {
                what: "brackets",
                ..
            })
        ));
        assert!(check_text(&format!("SELECT '{}'", "(".repeat(100)), &l).is_ok());
        let big = Limits {
            max_statement_bytes: 10,
            ..Limits::default()
        };
        assert!(matches!(
            check_text("SELECT 1 + 1", &big),
            Err(LimitExceeded::StatementSize { size: 12, max: 10 })
        ));
    }
}
