//! `GET /v1/tables` (names and row counts), `GET /v1/tables/{name}` (columns with types,
//! units, UCDs and descriptions) and `GET /v1/tables/{name}/moc` (its sky coverage).

use crate::http::errors::ApiError;
use crate::service::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
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
    let provider = state
        .ctx
        .table_provider(name.as_str())
        .await
        .map_err(|_| unknown_table(&name))?;
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

/// The query string of [`moc`].
#[derive(Debug, serde::Deserialize)]
pub struct MocParams {
    order: Option<u8>,
    format: Option<String>,
}

/// The order of a MOC when none is asked for: cells of about 3.4′.
pub const DEFAULT_MOC_ORDER: u8 = 10;

/// `GET /v1/tables/{name}/moc?order=K&format=json|fits`: where the table has rows, as an IVOA
/// MOC 2.0 at order `K` (default 10, at most 29) made from its `_healpix_29` index; JSON
/// unless `format=fits` or the client accepts `application/fits` and not JSON. It runs as a
/// query under the service's time and memory limits; a MOC of more cells than the row
/// limit is refused (ask for a lower order) rather than cut.
pub async fn moc(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(p): Query<MocParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    use crate::ivoa::moc::{CellBits, INDEX_COLUMN, MAX_BITS_ORDER, MAX_ORDER, Moc};
    let order = p.order.unwrap_or(DEFAULT_MOC_ORDER);
    if order > MAX_ORDER {
        return Err(ApiError::bad_request(format!(
            "order must be 0 to {MAX_ORDER}, not {order}"
        )));
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let fits = match p.format.as_deref() {
        Some("fits") => true,
        Some("json") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format must be json or fits, not {other:?}"
            )));
        }
        None => accept.contains("application/fits") && !accept.contains("json"),
    };
    if !table_names(&state).contains(&name) {
        return Err(unknown_table(&name));
    }
    let hp = INDEX_COLUMN;
    let provider = state
        .ctx
        .table_provider(name.as_str())
        .await
        .map_err(|_| unknown_table(&name))?;
    if provider.schema().field_with_name(hp).map_or(true, |f| {
        f.data_type() != &arrow::datatypes::DataType::Int64
    }) {
        return Err(ApiError::bad_request(format!(
            "table {name} has no {hp} column (BIGINT) to make a MOC from"
        )));
    }
    let shift = 2 * (u32::from(MAX_ORDER) - u32::from(order));
    let table = name.replace('"', "\"\"");
    // Up to order 11 the cells go into a bitmap of fixed size (6 MiB at most), so a dense
    // all-sky table of any size has its MOC; deeper, the distinct cells come back as rows,
    // within the row limit.
    let dense = order <= MAX_BITS_ORDER;
    let (distinct, limits) = if dense {
        // Every row's cell comes back (into the bitmap); nothing is sent, so no result cap.
        let limits = crate::query::Limits {
            max_rows: None,
            max_result_bytes: None,
            ..state.limits.clone()
        };
        ("", limits)
    } else {
        ("DISTINCT ", state.limits.clone())
    };
    let sql = format!(
        "SELECT {distinct}\"{hp}\" >> {shift} AS cell FROM \"{table}\" WHERE \"{hp}\" IS NOT NULL"
    );
    let limited = crate::query::execute(&state.ctx, &sql, None, &limits, &state.budget).await?;
    let truncated = limited.truncated.clone();
    let mut stream = limited.stream;
    let mut bits = dense.then(|| CellBits::new(order));
    let mut cells = Vec::new();
    while let Some(b) = stream.next().await {
        let b = b.map_err(|e| crate::query::QueryError::from_execution(&e))?;
        let c = b
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .ok_or_else(|| ApiError::internal("MOC cells are not BIGINT"))?;
        match &mut bits {
            Some(bits) => c.iter().flatten().for_each(|v| bits.set(v as u64)),
            None => cells.extend(c.iter().flatten().map(|v| v as u64)),
        }
    }
    // A MOC is at most as many cells as a result is rows.
    let max_cells = state.limits.max_rows.unwrap_or(usize::MAX);
    let too_large = |cells: String| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "moc_too_large",
            format!(
                "the MOC of {name} at order {order} has {cells} cells, more than the row limit ({max_cells}); ask for a lower order"
            ),
        )
    };
    if truncated.load(std::sync::atomic::Ordering::Acquire) {
        return Err(too_large("more".into()));
    }
    let moc = match bits {
        Some(bits) => Moc::from_bits(bits, max_cells).map_err(|n| too_large(n.to_string()))?,
        None => Moc::from_cells(order, cells),
    };
    let mut resp = if fits {
        let mut r = moc.to_fits().into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/fits"),
        );
        r
    } else {
        Json(moc.to_json()).into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&moc.sky_fraction().to_string()) {
        resp.headers_mut().insert("x-moc-sky-fraction", v);
    }
    Ok(resp)
}

fn unknown_table(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_table",
        format!("no table {name:?}"),
    )
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
