//! Compressed request bodies: `Content-Encoding: gzip`, `deflate` (zlib, or
//! raw deflate as some clients send it) and `zstd`. `--max-body` bounds the
//! *decompressed* size: inflating stops one byte past it, so a small body
//! that would inflate to gigabytes costs at most `--max-body` of work and
//! memory before its `413`.

use std::io::Read;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_ENCODING;

/// How a body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Deflate,
    Zstd,
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// An encoding ingest does not read: 415.
    #[error("content encoding {0:?} is not supported; send gzip, deflate, zstd or identity")]
    Unsupported(String),
    /// The body inflates past `--max-body`: 413.
    #[error("decompressed body larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The body is not valid in its declared encoding: 400.
    #[error("body is not valid {encoding}: {reason}")]
    Corrupt {
        encoding: &'static str,
        reason: String,
    },
}

impl Encoding {
    /// The encoding `Content-Encoding` declares; a list may name one coding
    /// besides `identity`.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Unsupported`] for anything else.
    pub fn of(headers: &HeaderMap) -> Result<Self, DecodeError> {
        let mut found = Encoding::Identity;
        for value in headers.get_all(CONTENT_ENCODING) {
            let value = String::from_utf8_lossy(value.as_bytes()).to_ascii_lowercase();
            for coding in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                let encoding = match coding {
                    "identity" => continue,
                    "gzip" | "x-gzip" => Encoding::Gzip,
                    "deflate" => Encoding::Deflate,
                    "zstd" => Encoding::Zstd,
                    other => return Err(DecodeError::Unsupported(other.to_owned())),
                };
                if found != Encoding::Identity {
                    return Err(DecodeError::Unsupported(value.clone()));
                }
                found = encoding;
            }
        }
        Ok(found)
    }

    fn name(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
            Encoding::Zstd => "zstd",
        }
    }

    /// `body` decoded, at most `limit` bytes.
    ///
    /// # Errors
    ///
    /// [`DecodeError::TooLarge`] past `limit`, [`DecodeError::Corrupt`] if
    /// the body is not valid in this encoding.
    pub fn decode(self, body: Bytes, limit: usize) -> Result<Bytes, DecodeError> {
        let corrupt = |err: std::io::Error| DecodeError::Corrupt {
            encoding: self.name(),
            reason: err.to_string(),
        };
        let reader: Box<dyn Read + '_> = match self {
            Encoding::Identity => return Ok(body),
            Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&body[..])),
            Encoding::Deflate if is_zlib(&body) => {
                Box::new(flate2::read::ZlibDecoder::new(&body[..]))
            }
            Encoding::Deflate => Box::new(flate2::read::DeflateDecoder::new(&body[..])),
            Encoding::Zstd => {
                Box::new(zstd::stream::read::Decoder::new(&body[..]).map_err(corrupt)?)
            }
        };
        let mut decoded = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
        let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        reader
            .take(cap)
            .read_to_end(&mut decoded)
            .map_err(corrupt)?;
        if decoded.len() > limit {
            return Err(DecodeError::TooLarge { limit });
        }
        Ok(Bytes::from(decoded))
    }
}

/// Whether `body` starts with a zlib header (RFC 1950): deflate, a window
/// size, and a check that makes the first two bytes a multiple of 31.
fn is_zlib(body: &[u8]) -> bool {
    match body {
        [cmf, flg, ..] => cmf & 0x0F == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use axum::http::HeaderValue;

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_ENCODING,
            HeaderValue::from_str(value).expect("header"),
        );
        headers
    }

    fn gzip(bytes: &[u8]) -> Bytes {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).expect("compresses");
        Bytes::from(encoder.finish().expect("finishes"))
    }

    #[test]
    fn declared_encodings_are_read_and_others_refused() {
        assert_eq!(Encoding::of(&HeaderMap::new()), Ok(Encoding::Identity));
        assert_eq!(Encoding::of(&headers("GZIP")), Ok(Encoding::Gzip));
        assert_eq!(Encoding::of(&headers("identity, zstd")), Ok(Encoding::Zstd));
        assert_eq!(Encoding::of(&headers("deflate")), Ok(Encoding::Deflate));
        assert!(
            matches!(Encoding::of(&headers("br")), Err(DecodeError::Unsupported(c)) if c == "br")
        );
        assert!(Encoding::of(&headers("gzip, gzip")).is_err());
    }

    #[test]
    fn every_encoding_round_trips() {
        let json = br#"{"key": "0b6c2c56-9a43-4f1e-8a8e-0e1d2f3a4b5c", "value": 3}"#;
        assert_eq!(
            Encoding::Gzip.decode(gzip(json), 1024).expect("gzip"),
            &json[..]
        );
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(json).expect("compresses");
        let zlib = Bytes::from(zlib.finish().expect("finishes"));
        assert_eq!(
            Encoding::Deflate.decode(zlib, 1024).expect("zlib"),
            &json[..]
        );
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(json).expect("compresses");
        let raw = Bytes::from(raw.finish().expect("finishes"));
        assert_eq!(
            Encoding::Deflate.decode(raw, 1024).expect("raw deflate"),
            &json[..]
        );
        let zstd = Bytes::from(zstd::encode_all(&json[..], 3).expect("compresses"));
        assert_eq!(Encoding::Zstd.decode(zstd, 1024).expect("zstd"), &json[..]);
    }

    #[test]
    fn a_bomb_stops_one_byte_past_the_limit_and_garbage_is_corrupt() {
        let bomb = gzip(&vec![b' '; 64 << 20]);
        assert!(bomb.len() < 128 << 10, "64 MiB of spaces compress well");
        assert_eq!(
            Encoding::Gzip.decode(bomb, 1 << 20),
            Err(DecodeError::TooLarge { limit: 1 << 20 })
        );
        assert!(matches!(
            Encoding::Gzip.decode(Bytes::from_static(b"not gzip"), 1024),
            Err(DecodeError::Corrupt {
                encoding: "gzip",
                ..
            })
        ));
        assert!(matches!(
            Encoding::Zstd.decode(Bytes::from_static(b"not zstd"), 1024),
            Err(DecodeError::Corrupt {
                encoding: "zstd",
                ..
            })
        ));
    }
}
