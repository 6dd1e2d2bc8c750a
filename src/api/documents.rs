//! `/v1/documents`: a dealership's knowledge base. Uploads are checked (size, type by
//! content), stored with their bytes and ingested in the background; the list shows
//! each document's status (queued, processing, ready, failed with the reason).

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use crate::auth::{Principal, Role};
use crate::clock::rfc3339;
use crate::db::Tenant;
use crate::db::audit::{self, NewAuditEntry};
use crate::db::documents::{self, Document};
use crate::knowledge::ingest::{DeleteError, UploadError};
use crate::state::AppState;

const ADMINS: &[Role] = &[Role::SuperAdmin, Role::DealershipAdmin];

/// A document and its ingestion state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DocumentOut {
    /// Unique id of the document.
    pub id: String,
    /// Id of the dealership (tenant) it belongs to.
    pub dealership_id: String,
    /// Display name (from the upload, sanitised).
    pub filename: String,
    /// Type decided from the content: `pdf`, `docx`, `markdown`, `text` or `csv`.
    pub kind: String,
    /// MIME type of the original file.
    pub content_type: String,
    /// Bytes.
    pub size_bytes: i64,
    /// sha256 of the original file, hex.
    pub sha256: String,
    /// `queued`, `processing`, `ready` or `failed`.
    pub status: String,
    /// Why ingestion failed.
    pub error: Option<String>,
    /// Chunks searchable.
    pub chunk_count: i32,
    /// Where its vectors live once ready.
    pub vector_store: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<Document> for DocumentOut {
    fn from(d: Document) -> Self {
        Self {
            id: d.id,
            dealership_id: d.dealership_id,
            filename: d.filename,
            kind: d.kind,
            content_type: d.content_type,
            size_bytes: d.size_bytes,
            sha256: d.sha256,
            status: d.status,
            error: d.error,
            chunk_count: d.chunk_count,
            vector_store: d.vector_store,
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
        }
    }
}

/// Which dealership (super_admin only; others always act on their own).
#[derive(Debug, Deserialize, IntoParams)]
pub struct DealershipQuery {
    /// Dealership id: required for a super_admin's upload, a filter for lists.
    pub dealership_id: Option<String>,
}

/// The multipart form of an upload.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file: PDF, DOCX, Markdown or plain text.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// How many documents were queued.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReindexOut {
    /// Documents queued for ingestion.
    pub queued: usize,
}

/// Uploads a document (multipart field `file`); it is ingested in the background.
#[utoipa::path(post, path = "/v1/documents", tag = "documents", security(("bearer" = [])),
    params(DealershipQuery),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 202, body = DocumentOut), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`dealership_id` names no dealership"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<DealershipQuery>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<DocumentOut>), ApiError> {
    principal.require(ADMINS)?;
    let dealership_id = match (&principal.dealership_id, q.dealership_id) {
        (_, Some(id)) if principal.is_super() => id,
        (Some(own), _) => own.clone(),
        (None, _) => {
            return Err(ApiError::validation(
                "dealership_id",
                "a super_admin names the dealership: ?dealership_id=…",
            ));
        }
    };
    if crate::db::dealerships::get(&state.db, Tenant::All, &dealership_id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound);
    }
    let mut multipart = multipart.map_err(|e| {
        ApiError::UnsupportedMediaType(format!("send the file as multipart/form-data: {e}"))
    })?;
    let limit = state.settings.knowledge.max_upload_bytes;
    let mut file: Option<(String, Vec<u8>)> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("document").to_owned();
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if bytes.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        file = Some((name, bytes));
        break;
    }
    let Some((name, bytes)) = file else {
        return Err(ApiError::validation("file", "the form has no `file` field"));
    };
    if bytes.is_empty() {
        return Err(ApiError::validation("file", "the file is empty"));
    }
    let doc = state
        .realtime
        .knowledge
        .upload(&dealership_id, &name, &bytes, Some(&principal.user_id))
        .await
        .map_err(|e| match e {
            UploadError::Unsupported(why) => ApiError::UnsupportedMediaType(why),
            UploadError::Mismatch(why) => ApiError::validation("file", why),
            UploadError::Db(e) => e.into(),
        })?;
    audit::record(
        &state.db,
        NewAuditEntry {
            dealership_id: Some(&doc.dealership_id),
            actor_user_id: Some(&principal.user_id),
            action: "document.upload",
            target_type: "document",
            target_id: &doc.id,
            details: serde_json::json!({"filename": doc.filename, "kind": doc.kind, "size_bytes": doc.size_bytes}),
        },
        state.clock.now(),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(doc.into())))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// The dealership's documents with their ingestion status, newest first.
#[utoipa::path(get, path = "/v1/documents", tag = "documents", security(("bearer" = [])),
    params(DealershipQuery),
    responses((status = 200, body = Vec<DocumentOut>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<DealershipQuery>,
) -> Result<Json<Vec<DocumentOut>>, ApiError> {
    principal.require(ADMINS)?;
    let docs = documents::list(&state.db, principal.list_scope(q.dealership_id.as_deref())).await?;
    Ok(Json(docs.into_iter().map(DocumentOut::from).collect()))
}

/// One document.
#[utoipa::path(get, path = "/v1/documents/{id}", tag = "documents", security(("bearer" = [])),
    responses((status = 200, body = DocumentOut), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<DocumentOut>, ApiError> {
    principal.require(ADMINS)?;
    let doc = documents::get(&state.db, principal.tenant(), &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(doc.into()))
}

/// The original file, as uploaded.
#[utoipa::path(get, path = "/v1/documents/{id}/content", tag = "documents", security(("bearer" = [])),
    responses((status = 200, description = "the original file, with the content type it was uploaded as",
        content_type = "*/*"),
        (status = 404, body = ErrorBody)))]
pub async fn content(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    principal.require(ADMINS)?;
    let doc = documents::get(&state.db, principal.tenant(), &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let bytes = documents::bytes(&state.db, principal.tenant(), &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let mut response = Body::from(bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&doc.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&doc.filename)) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// `attachment` with an ASCII fallback name and the exact UTF-8 name (RFC 6266/5987).
pub fn content_disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " ._-()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = filename
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// Deletes a document: its vectors leave the store and cached answers of the dealership
/// are forgotten.
#[utoipa::path(delete, path = "/v1/documents/{id}", tag = "documents", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(ADMINS)?;
    let doc = match state
        .realtime
        .knowledge
        .delete(principal.tenant(), &id)
        .await
    {
        Ok(Some(doc)) => doc,
        Ok(None) => return Err(ApiError::NotFound),
        Err(DeleteError::Store(e)) => {
            tracing::error!(document = %id, error = %e, "vector store refused the deletion");
            return Err(ApiError::Unavailable);
        }
        Err(DeleteError::Db(e)) => return Err(e.into()),
    };
    audit::record(
        &state.db,
        NewAuditEntry {
            dealership_id: Some(&doc.dealership_id),
            actor_user_id: Some(&principal.user_id),
            action: "document.delete",
            target_type: "document",
            target_id: &id,
            details: serde_json::json!({"filename": doc.filename}),
        },
        state.clock.now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ingests a document again (e.g. after a failure, or to move it to another store).
#[utoipa::path(post, path = "/v1/documents/{id}/reindex", tag = "documents", security(("bearer" = [])),
    responses((status = 202, body = DocumentOut), (status = 404, body = ErrorBody)))]
pub async fn reindex(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<DocumentOut>), ApiError> {
    principal.require(ADMINS)?;
    let doc = state
        .realtime
        .knowledge
        .reindex(principal.tenant(), &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok((StatusCode::ACCEPTED, Json(doc.into())))
}

/// Ingests every document of the dealership again (super_admin: of every dealership, or
/// of `dealership_id`).
#[utoipa::path(post, path = "/v1/documents/reindex", tag = "documents", security(("bearer" = [])),
    params(DealershipQuery),
    responses((status = 202, body = ReindexOut), (status = 403, body = ErrorBody)))]
pub async fn reindex_all(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<DealershipQuery>,
) -> Result<(StatusCode, Json<ReindexOut>), ApiError> {
    principal.require(ADMINS)?;
    let queued = state
        .realtime
        .knowledge
        .reindex_all(principal.list_scope(q.dealership_id.as_deref()))
        .await?;
    Ok((StatusCode::ACCEPTED, Json(ReindexOut { queued })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_are_quoted_safely() {
        assert_eq!(
            content_disposition("Prix \"été\".pdf"),
            "attachment; filename=\"Prix __t__.pdf\"; filename*=UTF-8''Prix%20%22%C3%A9t%C3%A9%22.pdf"
        );
    }
}
