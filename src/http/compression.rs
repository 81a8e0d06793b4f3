//! Response compression: zstd, brotli or gzip, whichever `Accept-Encoding`
//! prefers (zstd first at equal weight: the cheapest to produce), for
//! GraphQL answers and GraphiQL's assets of at least
//! `COMPRESSION_MIN_BYTES`.
//!
//! A cached answer is the same bytes for every reader, so compressed forms
//! are remembered by the hash of the body: the hit path compresses a given
//! answer once, not once per request.

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::Response,
};
use std::io::Write;

use super::AppState;

/// A content coding the service produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Zstd,
    Brotli,
    Gzip,
}

impl Encoding {
    /// Preference at equal weight: cheapest to produce first.
    const ALL: [Self; 3] = [Self::Zstd, Self::Brotli, Self::Gzip];

    fn token(self) -> &'static str {
        match self {
            Self::Zstd => "zstd",
            Self::Brotli => "br",
            Self::Gzip => "gzip",
        }
    }

    fn compress(self, body: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Self::Zstd => zstd::bulk::compress(body, 3),
            Self::Brotli => {
                let mut out = Vec::with_capacity(body.len() / 4);
                {
                    // Quality 4: most of brotli's gain at a fraction of 11's cost.
                    let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 4, 22);
                    writer.write_all(body)?;
                    writer.flush()?;
                }
                Ok(out)
            }
            Self::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(body.len() / 4),
                    flate2::Compression::new(5),
                );
                encoder.write_all(body)?;
                encoder.finish()
            }
        }
    }
}

/// The coding to use for a request's `Accept-Encoding` (q-values
/// honoured, `*` standing for any coding not named), if any.
pub fn negotiate(accept_encoding: &str) -> Option<Encoding> {
    let mut weights: [Option<f32>; 3] = [None; 3];
    let mut any: Option<f32> = None;
    for (coding, q) in super::weighted::items(accept_encoding) {
        if coding == "*" {
            any = Some(q);
        } else if let Some(i) = Encoding::ALL.iter().position(|e| e.token() == coding) {
            weights[i] = Some(q);
        }
    }
    let mut best: Option<(f32, Encoding)> = None;
    for (i, encoding) in Encoding::ALL.into_iter().enumerate() {
        let q = weights[i].or(any).unwrap_or(0.0);
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, encoding));
        }
    }
    best.map(|(_, e)| e)
}

/// Compresses bodies and remembers the results of recent ones.
pub struct Compressor {
    min_bytes: usize,
    memo: moka::sync::Cache<(u128, Encoding), Bytes>,
}

impl Compressor {
    /// `min_bytes == 0` turns compression off.
    pub fn new(min_bytes: usize) -> Self {
        Self {
            min_bytes,
            // 32 MiB of compressed answers: the hot set of a busy replica.
            memo: moka::sync::Cache::builder()
                .max_capacity(32 * 1024 * 1024)
                .weigher(|_, v: &Bytes| u32::try_from(v.len()).unwrap_or(u32::MAX))
                .build(),
        }
    }

    fn enabled(&self) -> bool {
        self.min_bytes > 0
    }

    /// The compressed body, or `None` when it is too small or compression
    /// does not make it smaller.
    pub fn compress(&self, body: &Bytes, encoding: Encoding) -> Option<Bytes> {
        if !self.enabled() || body.len() < self.min_bytes {
            return None;
        }
        let key = (xxhash_rust::xxh3::xxh3_128(body), encoding);
        if let Some(done) = self.memo.get(&key) {
            return (!done.is_empty()).then_some(done);
        }
        let compressed = match encoding.compress(body) {
            Ok(c) if c.len() < body.len() => Bytes::from(c),
            // Remembered as empty: not worth compressing.
            _ => Bytes::new(),
        };
        self.memo.insert(key, compressed.clone());
        (!compressed.is_empty()).then_some(compressed)
    }
}

/// Whether a response of this type is text worth compressing.
fn compressible(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json"
        || mime == "application/graphql-response+json"
        || mime == "text/javascript"
        || mime == "text/css"
        || mime == "text/html"
}

/// Middleware: compresses a whole-body text response the client can
/// decode. Streams (`text/event-stream`), upgrades, bodies already encoded
/// and `HEAD`/304 answers pass untouched.
pub async fn compress_response(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let compressor = state.compressor();
    let encoding = if compressor.enabled() && request.method() != Method::HEAD {
        request
            .headers()
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .and_then(negotiate)
    } else {
        None
    };
    let response = next.run(request).await;
    let Some(content_type) = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return response;
    };
    if !compressible(content_type)
        || response.status() == StatusCode::NOT_MODIFIED
        || response.status() == StatusCode::SWITCHING_PROTOCOLS
        || response.headers().contains_key(header::CONTENT_ENCODING)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // GraphQL answers already name Accept-Encoding (a static header);
    // other compressible bodies (GraphiQL's) get it here.
    let named = parts
        .headers
        .get(header::VARY)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("Accept-Encoding"));
    if !named {
        parts
            .headers
            .append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    let Some(encoding) = encoding else {
        return Response::from_parts(parts, body);
    };
    // Whole bodies only: these responses are built in memory.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    match compressor.compress(&bytes, encoding) {
        Some(compressed) => {
            parts.headers.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(encoding.token()),
            );
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(compressed))
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_picks_the_coding() {
        assert_eq!(negotiate("gzip, deflate, br, zstd"), Some(Encoding::Zstd));
        assert_eq!(negotiate("gzip, deflate, br"), Some(Encoding::Brotli));
        assert_eq!(negotiate("gzip"), Some(Encoding::Gzip));
        assert_eq!(negotiate("br;q=0.5, gzip"), Some(Encoding::Gzip));
        assert_eq!(negotiate("*"), Some(Encoding::Zstd));
        assert_eq!(negotiate("*, zstd;q=0"), Some(Encoding::Brotli));
        assert_eq!(negotiate("identity"), None);
        assert_eq!(negotiate("deflate"), None);
        assert_eq!(negotiate("gzip;q=0"), None);
    }

    #[test]
    fn each_coding_round_trips_and_small_bodies_stay_plain() {
        let compressor = Compressor::new(100);
        let body = Bytes::from(r#"{"data":{"jobs":[{"id":"1","title":"Engineer"}]}}"#.repeat(40));
        for encoding in Encoding::ALL {
            let packed = compressor.compress(&body, encoding).unwrap();
            assert!(packed.len() < body.len() / 4, "{encoding:?}");
            let unpacked = match encoding {
                Encoding::Zstd => zstd::bulk::decompress(&packed, body.len()).unwrap(),
                Encoding::Brotli => {
                    let mut out = Vec::new();
                    brotli::BrotliDecompress(&mut &packed[..], &mut out).unwrap();
                    out
                }
                Encoding::Gzip => {
                    let mut out = Vec::new();
                    std::io::Read::read_to_end(
                        &mut flate2::read::GzDecoder::new(&packed[..]),
                        &mut out,
                    )
                    .unwrap();
                    out
                }
            };
            assert_eq!(unpacked, body);
            // The second time comes from the memo: the same bytes.
            assert_eq!(compressor.compress(&body, encoding).unwrap(), packed);
        }
        assert!(
            compressor
                .compress(&Bytes::from_static(b"{}"), Encoding::Gzip)
                .is_none()
        );
        assert!(Compressor::new(0).compress(&body, Encoding::Gzip).is_none());
    }
}
