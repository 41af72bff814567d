//! The documented example queries, compiled in from `sql/examples/` (the files are the single
//! copy): the demo prints them, the tests run every one against a demo-like catalog, the
//! `examples` bench times them, and a test fails when a file there is missing from this list.

/// The query language of an example.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// DataFusion SQL with our functions (`/v1/sql`, Flight SQL, `astropipe sql`).
    Sql,
    /// ADQL (`/tap/sync`, `/tap/async`).
    Adql,
}

/// One example: its file name under `sql/examples/`, language, and text (leading `--`
/// comment lines say what it does).
#[derive(Debug, Clone, Copy)]
pub struct Example {
    pub file: &'static str,
    pub lang: Lang,
    pub text: &'static str,
}

macro_rules! example {
    ($file:literal, $lang:expr) => {
        Example {
            file: $file,
            lang: $lang,
            text: include_str!(concat!("../sql/examples/", $file)),
        }
    };
}

/// Every example, in the order the demo prints them.
pub const EXAMPLES: &[Example] = &[
    example!("sources_per_exposure.sql", Lang::Sql),
    example!("cone_search.sql", Lang::Sql),
    example!("bright_sources_with_magnitudes.sql", Lang::Sql),
    example!("healpix_density.sql", Lang::Sql),
    example!("cone_search.adql", Lang::Adql),
    example!("bright_sources.adql", Lang::Adql),
    example!("images_at_a_position.adql", Lang::Adql),
];

impl Example {
    /// What the example does: its leading comment lines joined into one sentence.
    pub fn title(&self) -> String {
        self.text
            .lines()
            .map_while(|l| l.trim().strip_prefix("--"))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The example of that file name.
    pub fn named(file: &str) -> Option<&'static Example> {
        EXAMPLES.iter().find(|e| e.file == file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_listed_and_titled() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/examples");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = EXAMPLES.iter().map(|e| e.file.to_string()).collect();
        listed.sort();
        assert_eq!(on_disk, listed, "sql/examples/ and EXAMPLES differ");
        for e in EXAMPLES {
            assert!(!e.title().is_empty(), "{} has no leading comment", e.file);
            let ext = if e.lang == Lang::Adql {
                ".adql"
            } else {
                ".sql"
            };
            assert!(e.file.ends_with(ext), "{}", e.file);
        }
    }
}
