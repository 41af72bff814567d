//! A typed, ordered view of one HDU's header, built from the cards fitsrs parsed.

use serde_json::{Value as Json, json};

/// The value of one header card.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    /// A keyword with an empty value field.
    Undefined,
}

/// One card, in file order. Commentary cards (COMMENT, HISTORY, blank) have no value.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    pub key: String,
    pub value: Option<HeaderValue>,
    pub comment: Option<String>,
}

/// All cards of a header, with keyword lookup (the last occurrence wins, as in cfitsio).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    cards: Vec<Card>,
}

impl Header {
    pub fn new(cards: Vec<Card>) -> Self {
        Header { cards }
    }

    /// Converts fitsrs cards (CONTINUE already spliced into long strings).
    pub fn from_fitsrs<'a>(cards: impl Iterator<Item = &'a fitsrs::card::Card>) -> Self {
        use fitsrs::card::{Card as F, Value as V};
        let mut out = Vec::new();
        for c in cards {
            let card = match c {
                F::Value { name, value } | F::Hierarch { name, value } => {
                    let (v, comment) = match value {
                        V::Integer { value, comment } => (HeaderValue::Int(*value), comment),
                        V::Float { value, comment } => (HeaderValue::Float(*value), comment),
                        V::Logical { value, comment } => (HeaderValue::Bool(*value), comment),
                        V::String { value, comment } => {
                            (HeaderValue::Str(value.trim_end().to_string()), comment)
                        }
                        V::Undefined => (HeaderValue::Undefined, &None),
                        V::Invalid(s) => (HeaderValue::Str(s.trim().to_string()), &None),
                    };
                    Card {
                        key: name.trim().to_string(),
                        value: Some(v),
                        comment: comment.clone(),
                    }
                }
                F::Xtension { x, comment } => Card {
                    key: "XTENSION".into(),
                    value: Some(HeaderValue::Str(x.as_str().to_string())),
                    comment: comment.clone(),
                },
                F::Comment(s) => Card {
                    key: "COMMENT".into(),
                    value: None,
                    comment: Some(s.clone()),
                },
                F::History(s) => Card {
                    key: "HISTORY".into(),
                    value: None,
                    comment: Some(s.clone()),
                },
                F::Undefined(s) => Card {
                    key: s.get(..8).unwrap_or(s).trim().to_string(),
                    value: None,
                    comment: Some(s.trim_end().to_string()),
                },
                F::Continuation { .. } | F::Space | F::End => continue,
            };
            out.push(card);
        }
        Header { cards: out }
    }

    pub fn cards(&self) -> &[Card] {
        &self.cards
    }

    pub fn get(&self, key: &str) -> Option<&HeaderValue> {
        self.cards
            .iter()
            .rev()
            .find(|c| c.key == key && c.value.is_some())
            .and_then(|c| c.value.as_ref())
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// A numeric value (integers widen to f64). Strings holding a number are accepted too,
    /// as some writers quote numeric values.
    pub fn f64(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            HeaderValue::Float(v) => Some(*v),
            HeaderValue::Int(v) => Some(*v as f64),
            HeaderValue::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn i64(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            HeaderValue::Int(v) => Some(*v),
            HeaderValue::Float(v) if v.fract() == 0.0 && v.abs() < 9.0e18 => Some(*v as i64),
            _ => None,
        }
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            HeaderValue::Str(s) => Some(s.as_str()),
            _ => None,
        }
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            HeaderValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// All cards as a JSON array of `{"key", "value", "comment"}` objects, in file order.
    pub fn to_json(&self) -> Json {
        Json::Array(
            self.cards
                .iter()
                .map(|c| {
                    let v = match &c.value {
                        None | Some(HeaderValue::Undefined) => Json::Null,
                        Some(HeaderValue::Int(i)) => json!(i),
                        Some(HeaderValue::Float(f)) if f.is_finite() => json!(f),
                        Some(HeaderValue::Float(f)) => json!(f.to_string()),
                        Some(HeaderValue::Bool(b)) => json!(b),
                        Some(HeaderValue::Str(s)) => json!(s),
                    };
                    let mut o = serde_json::Map::new();
                    o.insert("key".into(), json!(c.key));
                    o.insert("value".into(), v);
                    if let Some(cm) = &c.comment {
                        o.insert("comment".into(), json!(cm));
                    }
                    Json::Object(o)
                })
                .collect(),
        )
    }
}
