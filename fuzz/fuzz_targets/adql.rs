//! Fuzzes the ADQL translator and the statement checks that follow it: any text, however
//! deep or malformed, gets a translation or an error — never a panic or a stack overflow.
#![no_main]

use astropipe::ivoa::adql;
use astropipe::query::{Limits, statement};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let limits = Limits::default();
    if statement::check_text(&text, &limits).is_err() {
        return;
    }
    if let Ok(sql) = adql::to_sql(&text) {
        // What the translator writes goes through the same checks as SQL from a client.
        if statement::check_text(&sql, &limits).is_ok()
            && let Ok(mut stmts) = datafusion::sql::parser::DFParser::parse_sql(&sql)
            && let Some(s) = stmts.pop_front()
        {
            let _ = statement::check_tree(&s, &limits);
        }
    }
});
