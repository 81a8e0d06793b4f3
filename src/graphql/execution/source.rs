//! A request as it arrived — a POST body or a GET query string — and its
//! decoding into async-graphql requests. The raw bytes are the cache key,
//! so a cache hit never even decodes the JSON.

use async_graphql::{BatchRequest, Request as GqlRequest, http::parse_query_string};
use bytes::Bytes;

/// The raw request.
#[derive(Debug, Clone)]
pub enum Source {
    /// A JSON body (one request or a batch); the HTTP layer has checked
    /// its media type and size.
    Body(Bytes),
    /// A GET query string.
    Query(String),
}

impl Source {
    pub fn raw(&self) -> &[u8] {
        match self {
            Self::Body(bytes) => bytes,
            Self::Query(query) => query.as_bytes(),
        }
    }

    /// Whether it arrived over GET (where mutations are refused).
    pub fn over_get(&self) -> bool {
        matches!(self, Self::Query(_))
    }

    /// A JSON object, not a batch array.
    pub fn is_single(&self) -> bool {
        match self {
            Self::Body(bytes) => bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'),
            Self::Query(_) => true,
        }
    }

    /// One request or a batch; the message says what is wrong otherwise.
    pub fn decode_batch(&self) -> Result<BatchRequest, String> {
        match self {
            // Decoded by shape: serde would take `[]` for a request with
            // every field defaulted (an empty document), not an empty batch.
            Self::Body(bytes) if self.is_single() => serde_json::from_slice::<GqlRequest>(bytes)
                .map(BatchRequest::Single)
                .map_err(|e| format!("the body is not a GraphQL request: {e}")),
            Self::Body(bytes) => serde_json::from_slice::<Vec<GqlRequest>>(bytes)
                .map(BatchRequest::Batch)
                .map_err(|e| format!("the body is not a GraphQL request or a batch: {e}")),
            Self::Query(query) => {
                let mut request = parse_query_string(query)
                    .map_err(|e| format!("the query string is not a GraphQL request: {e}"))?;
                if request.operation_name.is_none() {
                    request.operation_name = operation_name_param(query);
                }
                Ok(BatchRequest::Single(request))
            }
        }
    }

    /// Exactly one request.
    pub fn decode(&self) -> Result<GqlRequest, String> {
        match self.decode_batch()? {
            BatchRequest::Single(request) => Ok(request),
            BatchRequest::Batch(_) => Err("expected one request, not a batch".to_owned()),
        }
    }
}

/// The `operationName` URL parameter of the GraphQL-over-HTTP spec.
#[derive(serde::Deserialize)]
struct OperationNameParam {
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
}

/// async-graphql's `parse_query_string` reads only `operation_name`, so a
/// GET naming one of several operations the spec's way was refused as if
/// it named none; read `operationName` here.
fn operation_name_param(query: &str) -> Option<String> {
    serde_urlencoded::from_str::<OperationNameParam>(query)
        .ok()?
        .operation_name
        .filter(|name| !name.is_empty())
}
