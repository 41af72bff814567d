//! `GET /v1/tables` (names and row counts) and `GET /v1/tables/{name}` (columns with types,
//! units, UCDs and descriptions).

use crate::http::errors::ApiError;
use crate::service::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

pub async fn list(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let mut out = Vec::new();
    for name in table_names(&state) {
        out.push(json!({ "name": name }));
    }
    Ok(Json(json!({ "tables": out })))
}

pub async fn describe(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let provider = state.ctx.table_provider(name.as_str()).await.map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_table",
            format!("no table {name:?}"),
        )
    })?;
    let schema = provider.schema();
    let columns: Vec<Value> = schema
        .fields()
        .iter()
        .map(|f| {
            let md = f.metadata();
            json!({
                "name": f.name(),
                "type": f.data_type().to_string(),
                "nullable": f.is_nullable(),
                "unit": md.get("unit"),
                "ucd": md.get("ucd"),
                "description": md.get("description"),
            })
        })
        .collect();
    Ok(Json(json!({ "name": name, "columns": columns })))
}

fn table_names(state: &AppState) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(cat) = state.ctx.catalog("astropipe")
        && let Some(schema) = cat.schema("public")
    {
        names = schema.table_names();
    }
    names.sort();
    names
}
