//! `GET /v1/exposures/{exposure_id}/file`: the original FITS file of an exposure, streamed
//! from where it was ingested (a local path or an object store URI; ObsCore's `access_url`).
//! 404 when no exposure has that id, or when its file is no longer there (an uploaded file is
//! deleted once processed).

use crate::http::errors::ApiError;
use crate::service::AppState;
use crate::storage::Location;
use arrow::array::AsArray;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use std::sync::Arc;

pub async fn file(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if id.is_empty()
        || id.len() > 128
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::not_found(format!("no exposure {id:?}")));
    }
    let sql = format!("SELECT file_uri FROM exposures WHERE exposure_id = '{id}' LIMIT 1");
    let limited =
        crate::query::execute(&state.ctx, &sql, None, &state.limits, &state.budget).await?;
    let mut stream = limited.stream;
    let mut uri = None;
    while let Some(b) = stream.next().await {
        let b = b.map_err(|e| crate::query::QueryError::from_execution(&e))?;
        if b.num_rows() > 0 {
            let c = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            uri = Some(c.as_string::<i32>().value(0).to_string());
            break;
        }
    }
    let Some(uri) = uri else {
        return Err(ApiError::not_found(format!("no exposure {id:?}")));
    };
    let gone = || ApiError::not_found(format!("the file of exposure {id} is no longer at {uri}"));
    let (dir, name) = uri.rsplit_once('/').ok_or_else(gone)?;
    let loc =
        Location::open_existing(if dir.is_empty() { "/" } else { dir }).map_err(|_| gone())?;
    let got = loc.store.get(&loc.path(name)).await.map_err(|_| gone())?;
    let size = got.meta.size;
    let mut resp = Response::new(Body::from_stream(got.into_stream()));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fits"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        name.replace(['"', '\\', '\r', '\n'], "_")
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
